# Sourced by scripts/up and scripts/test: make .venv and install the project
# (with the test extra when asked), only when pyproject.toml changed.
# Usage: `source _venv.sh` or `source _venv.sh test`. A sourced file sees the
# sourcing script's own arguments when it is given none, so only the known extra
# is taken from $1; anything else (`./scripts/up --port 9000`) is not ours.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
EXTRA=""
[ "${1:-}" = "test" ] && EXTRA="test"

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
base="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
stamp="$base${EXTRA:+-$EXTRA}"
# an install with the test extra also serves the plain one
if [ ! -f "$stamp" ] && { [ -n "$EXTRA" ] || [ ! -f "$base-test" ]; }; then
  echo "==> installing comfy-multi${EXTRA:+ [$EXTRA]} into .venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "$ROOT${EXTRA:+[$EXTRA]}"
  touch "$stamp"
fi
