#!/usr/bin/env bash
# Install voxsplat with its test dependencies (CPU torch unless one is already installed) and run
# the CPU test suite. README's test command and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if ! "$py" -c "import torch" 2>/dev/null; then
  "$py" -m pip install -q torch==2.13.0
fi
# open3d (the TSDF reference in the tests, `--mesher poisson`) loads libusb-1.0 at import time.
if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0) \
      >/dev/null 2>&1 || echo "could not install libusb-1.0-0; open3d tests will be skipped"
  fi
fi
"$py" -m pip install -q -e '.[test]'
# Two test processes (pytest-xdist), a file at a time each (module fixtures train once), one
# thread each: the long training tests share the two cores of CI (860 -> 680 s on this kind of
# machine). VOXSPLAT_TEST_WORKERS=1 runs them in one process.
workers=${VOXSPLAT_TEST_WORKERS:-2}
args=()
if [ "$workers" != 1 ] && "$py" -c "import xdist" 2>/dev/null; then
  args=(-n "$workers" --dist loadfile)
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi
set +e
"$py" -m pytest -q ${args[@]+"${args[@]}"} "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests (e.g. a -k filter that matched nothing).
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  exit 0
fi
exit "$rc"
