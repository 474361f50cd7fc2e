# Source on the GPU machine from the repo root, after `source .device-wheels/setup.sh`:
# installs voxsplat (editable, no deps) into /tmp/site once per machine.
if [ ! -f /tmp/site/.voxsplat ]; then
  python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 \
    || python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . --target /tmp/site
  touch /tmp/site/.voxsplat
fi
export PYTHONUNBUFFERED=1
