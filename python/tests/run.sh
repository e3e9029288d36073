#!/usr/bin/env bash
# Runs one pytest file of the Python module from CTest.
# Usage: run.sh PYTHON BUILD_PYTHON_DIR QPRUNE_CLI SOURCE_DIR WHY_NOT_BUILT TEST_FILE
# Exit 77 (CTest: skipped) with the reason on stdout when the module, NumPy or pytest is missing;
# under CI=true that is a failure instead, so CI never passes by skipping.
set -uo pipefail
python=$1 build_python=$2 cli=$3 source_dir=$4 why_not=$5 test_file=$6
cannot_run() {
  echo "python tests cannot run: $1"
  if [[ ${CI:-} == true ]]; then echo "CI=true: failing instead of skipping"; exit 1; fi
  exit 77
}
[[ -z $why_not ]] || cannot_run "the module was not built: $why_not"
command -v "$python" >/dev/null || cannot_run "no interpreter $python"
"$python" -c "import numpy" 2>/dev/null || cannot_run "$python cannot import numpy (apt-get install python3-numpy)"
"$python" -c "import pytest" 2>/dev/null || cannot_run "$python cannot import pytest (apt-get install python3-pytest)"
export PYTHONPATH="$build_python${PYTHONPATH:+:$PYTHONPATH}"
export QPRUNE_CLI=$cli QPRUNE_SOURCE_DIR=$source_dir PYTHONDONTWRITEBYTECODE=1
# -rs: every skipped test prints its reason; no cache folder in the source tree.
exec "$python" -m pytest -q -rs -p no:cacheprovider "$test_file"
