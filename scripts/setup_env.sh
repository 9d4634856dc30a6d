#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment at ${VENV:-.venv} with Python >= 3.12 and install
# the plugin editable with its test extra (pytest and the [ablation] extra, so the whole suite runs).
# Idempotent: a second run only checks that it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

pick_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    # pyenv's shim refuses python3.12 unless a version is selected; 3.12.1 is what our machines carry.
    if command -v pyenv >/dev/null 2>&1 && [ -x "$(pyenv root)/versions/3.12.1/bin/python3.12" ]; then
        echo "$(pyenv root)/versions/3.12.1/bin/python3.12"; return
    fi
    for cand in python3.13 python3.12 python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$cand"; return
        fi
    done
    echo "error: Python >= 3.12 is required by lerobot 0.6 (set PYTHON=/path/to/python3.12)" >&2
    exit 1
}

# torchcodec (LeRobot's default video decoder) needs FFmpeg's shared libraries; without them LeRobot prints
# a long traceback and falls back to pyav. Install them where we can (Debian/Ubuntu as root).
if ! ldconfig -p 2>/dev/null | grep -q 'libavutil\.so'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing FFmpeg shared libraries for torchcodec"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4 >/dev/null \
            || echo "[setup] warning: could not install FFmpeg libraries; pass --dataset.video_backend=pyav"
    else
        echo "[setup] note: no FFmpeg shared libraries; install them (e.g. apt install ffmpeg) or pass --dataset.video_backend=pyav"
    fi
fi

# MuJoCo renders offscreen through EGL (MUJOCO_GL=egl); Mesa provides a software EGL on machines without a GPU.
if ! ldconfig -p 2>/dev/null | grep -q 'libEGL\.so\.1'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing EGL/Mesa libraries for MuJoCo offscreen rendering"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 libgl1 >/dev/null \
            || echo "[setup] warning: could not install EGL libraries; ALOHA rendering will fail"
    else
        echo "[setup] note: no libEGL found; install libegl1 + Mesa for ALOHA rendering (MUJOCO_GL=egl)"
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    PY=$(pick_python)
    echo "[setup] creating $VENV with $PY ($("$PY" --version))"
    "$PY" -m venv "$VENV"
fi
# One interpreter start checks the install and reports the versions (each start costs seconds of imports).
CHECK='import lerobot_policy_hybrid_act, pytest, matplotlib, lerobot, torch; print(f"lerobot {lerobot.__version__}, torch {torch.__version__}")'
if ! READY=$("$VENV/bin/python" -c "$CHECK" 2>/dev/null); then
    echo "[setup] installing lerobot_policy_hybrid_act[test] (pulls lerobot[training,aloha,diffusion]==0.6.x, torch; the test extra includes [ablation], i.e. matplotlib)"
    # (grep drops pip's warnings about this machine's unused local index paths; pipefail keeps pip's status)
    "$VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
    "$VENV/bin/python" -m pip install --quiet -e ".[test]" 2>&1 | { grep -v "^WARNING: Location" || true; }
    READY=$("$VENV/bin/python" -c "$CHECK")
fi
echo "[setup] ready: $READY"
