#!/usr/bin/env bash
# Install voxsplat with its test dependencies (CPU torch unless one is already installed) and run
# the CPU test suite. README's test command and .ci/run both call this.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if ! "$py" -c "import torch" 2>/dev/null; then
  "$py" -m pip install -q torch==2.13.0
fi
"$py" -m pip install -q -e '.[test]'
set +e
"$py" -m pytest -q "$@"
rc=$?
set -e
# pytest exits 5 when it collected no tests (e.g. a -k filter that matched nothing).
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  exit 0
fi
exit "$rc"
