#!/usr/bin/env bash
# One command, fresh machine -> a trained and evaluated hybrid_act_c, on CPU, in about ten minutes:
#   1. builds .venv if needed (scripts/setup_env.sh);
#   2. records scripted docking demonstrations, every layout along both routes (hybrid-act-record
#      --routes-per-layout 2, layout seeds 0..);
#   3. trains hybrid_act_c through lerobot-train (configs/hybrid_act_cpu_docking.args);
#   4. evaluates it through lerobot-eval on held-out seeds (1000..) and prints success with a 95% CI;
#   5. draws 8 rollouts from one start, coloured by route, to $OUT/routes.png (examples/route_picture.py).
# The defaults are the `modes` ablation profile's docking recipe (50 layouts x 2 routes, 5000 steps, training seed
# 1, the same flags). On 2 CPU cores with the venv in place it took 608 s and docked 39/50.
# One intra-op thread (OMP_NUM_THREADS=1 unless set): torch's default spin-waits beside other work on a small machine.
# One dataloader worker (NUM_WORKERS=1 unless set) loads batches on the second core: ~0.10 s per step instead of
# ~0.15 s (the profile runs use 0 workers, one run per core). The worker's seed is drawn from torch's random stream,
# so the trained weights differ from the profile's seed-1 run.
# Knobs: POLICY (hybrid_act_a|b|c), STEPS, EPISODES (layouts), EVAL_EPISODES, SEED, NUM_WORKERS, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
BIN=${VENV:-.venv}/bin
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
POLICY=${POLICY:-hybrid_act_c}
STEPS=${STEPS:-5000}
EPISODES=${EPISODES:-50}
EVAL_EPISODES=${EVAL_EPISODES:-50}
SEED=${SEED:-1}
NUM_WORKERS=${NUM_WORKERS:-1}
OUT=${OUT:-outputs/quickstart}
DATA="$OUT/data/docking_${EPISODES}x2"
RUN="$OUT/train/${POLICY}_s${SEED}_${STEPS}"

if [ ! -f "$DATA/meta/info.json" ]; then
    "$BIN/hybrid-act-record" --task docking --episodes "$((EPISODES * 2))" --routes-per-layout 2 \
        --repo-id local/docking_quickstart --root "$DATA" --cameras none --noise 0.05 --seed 0
fi
if [ ! -f "$RUN/checkpoints/last/pretrained_model/model.safetensors" ]; then
    rm -rf "$RUN"
    # shellcheck disable=SC2046
    "$BIN/lerobot-train" --policy.type="$POLICY" $(grep -v '^#' configs/hybrid_act_cpu_docking.args) \
        --dataset.repo_id=local/docking_quickstart --dataset.root="$DATA" --policy.push_to_hub=false \
        --steps="$STEPS" --save_freq="$STEPS" --log_freq=200 --seed="$SEED" --num_workers="$NUM_WORKERS" \
        --output_dir="$RUN"
fi
rm -rf "$RUN/eval"
"$BIN/lerobot-eval" --policy.path="$RUN/checkpoints/last/pretrained_model" --policy.device=cpu \
    --env.type=docking --env.episode_length=200 --eval.n_episodes="$EVAL_EPISODES" --eval.batch_size=10 \
    --seed=1000 --output_dir="$RUN/eval"
"$BIN/python" - "$RUN/eval/eval_info.json" "$POLICY" "$EPISODES" "$SEED" "$STEPS" <<'PY'
import json, sys
from lerobot_hybrid_act.stats import wilson_interval
path, policy, n_demos, seed, steps = sys.argv[1:]
info = json.load(open(path))["overall"]
n = info["n_episodes"]; k = round(info["pc_success"] * n / 100)
lo, hi = wilson_interval(k, n)
print(f"\n{policy} on docking: success {k}/{n} = {100*k/n:.0f}% (95% Wilson CI {100*lo:.0f}-{100*hi:.0f}%), "
      f"eval seeds 1000-{1000+n-1}; details: {path}")
PY
"$BIN/python" examples/route_picture.py --checkpoint "$RUN/checkpoints/last/pretrained_model" --seed 1000 \
    --rollouts 8 --out "$OUT/routes.png"
