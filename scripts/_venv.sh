# Shared by scripts/demo and scripts/test: a project virtualenv with celeriac installed (editable).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
install_extras() {
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$1]"
}
