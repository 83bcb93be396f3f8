#!/usr/bin/env bash
# Install the connector the way its image does (Dockerfile): the wheel built from this checkout
# and its locked dependencies (uv.lock: no dev group, no extras, so no Streamlit and no sandbox),
# into the Python interpreter given, compiled to bytecode (the image runs as a user that cannot
# write next to the installed files, so nothing would be cached at run time).
# integration_tests/test_connector_install.py runs this into a fresh venv, since no container
# engine runs on the dev machines or CI.
#
#   scripts/install-connector.sh PYTHON [OUT_DIR]    (OUT_DIR: where the wheel goes; default dist)
set -euo pipefail
python="$1"
out="${2:-dist}"
uv="${UV:-uv}"
cd "$(dirname "$0")/.."
mkdir -p "$out"
$uv build --wheel --out-dir "$out" --quiet
$uv export --frozen --no-dev --no-emit-project --format requirements.txt \
    --output-file "$out/requirements.txt" --quiet
install=($uv pip install --python "$python" --compile-bytecode --quiet)
"${install[@]}" --require-hashes --requirement "$out/requirements.txt"
"${install[@]}" --no-deps "$out"/destination_codat_expenses-*.whl
