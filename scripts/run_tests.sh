#!/usr/bin/env bash
# The test command (README): builds the environment if needed, then runs the whole suite, slow
# end-to-end tests (lerobot-train / lerobot-eval subprocesses) included. Extra args go to pytest,
# e.g. `bash scripts/run_tests.sh -m "not slow"` for the fast subset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export HF_HUB_OFFLINE=1 MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
exec "${VENV:-.venv}/bin/python" -m pytest -ra --durations=15 "$@"
