#!/usr/bin/env bash
# The project's test command: set up (or reuse) the environment, lint, and run the
# whole test suite, slow end-to-end tests included. Extra arguments go to pytest.
# For the quick default selection while developing: .venv/bin/python -m pytest
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
VENV="${COUPLEFACE_VENV:-$ROOT/.venv}"
cd "$ROOT"
"$VENV/bin/python" -m ruff check coupleface tools tests
# Two pytest-xdist workers, one compute thread each: many tests wait on subprocesses
# (imports, torchrun, CLI tools), so two at a time finish the suite in ~10.5 min on 2 cores
# instead of ~15.5 (measured on fresh clones, 2026-12-07); COUPLEFACE_TEST_WORKERS=0 runs
# it serially (with 2 compute threads), COUPLEFACE_TEST_WORKERS=N in N workers.
WORKERS="${COUPLEFACE_TEST_WORKERS:-2}"
if [ "$WORKERS" = 0 ]; then
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
  "$VENV/bin/python" -m pytest -m "slow or not slow" -p no:cacheprovider "$@"
else
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
  "$VENV/bin/python" -m pytest -m "slow or not slow" -p no:cacheprovider -n "$WORKERS" "$@"
fi
