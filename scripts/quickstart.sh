#!/usr/bin/env bash
# One command, fresh machine -> a trained and evaluated hybrid_act_c, on CPU, in about ten minutes:
#   1. builds .venv if needed (scripts/setup_env.sh);
#   2. records scripted docking demonstrations, every layout along both routes (hybrid-act-record
#      --routes-per-layout 2, layout seeds 0..);
#   3. trains hybrid_act_c through lerobot-train (configs/hybrid_act_cpu_docking.args);
#   4. evaluates it through lerobot-eval on held-out seeds (1000..) and prints success with a 95% CI;
#   5. draws 8 rollouts from one start, coloured by route, to $OUT/routes.png (examples/route_picture.py),
#      with LeRobot act beside it for COMPARE_ACT=1.
# The defaults are the `modes` ablation profile's docking recipe (50 layouts x 2 routes, 5000 steps and then
# hybrid_act_c's 1000 head-only steps, training seed 1, the same flags). On 2 CPU cores (AMD EPYC) with the venv in
# place it docked 46/50 in 1327 s beside a training on the other core (45/50 with hold_scale 6, C's default since;
# README, "Two commands").
# One intra-op thread (OMP_NUM_THREADS=1 unless set): torch's default spin-waits beside other work on a small machine.
# One dataloader worker (NUM_WORKERS=1 unless set) loads batches on the second core: ~0.10 s per step instead of
# ~0.15 s (the profile runs use 0 workers, one run per core). The worker's seed is drawn from torch's random stream,
# so the trained weights differ from the profile's seed-1 run.
# COMPARE_ACT=1 also trains LeRobot's act on the same demos (configs/act_cpu_docking.args, the profile's act recipe),
# on the second core while the hybrid trains (NUM_WORKERS then defaults to 0: one process per core), evaluates it
# the same way and draws its rollouts beside the hybrid's. One core per training is slower: the profile's seed-1 runs
# took 612 s (act) and 690 s (C) of training.
# Knobs: POLICY (hybrid_act_a|b|c), STEPS, EPISODES (layouts), EVAL_EPISODES, SEED, NUM_WORKERS, COMPARE_ACT, OUT.
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
COMPARE_ACT=${COMPARE_ACT:-0}
if [ "$COMPARE_ACT" = 1 ]; then NUM_WORKERS=${NUM_WORKERS:-0}; else NUM_WORKERS=${NUM_WORKERS:-1}; fi
OUT=${OUT:-outputs/quickstart}
DATA="$OUT/data/docking_${EPISODES}x2"
RUN="$OUT/train/${POLICY}_s${SEED}_${STEPS}"
ACT_RUN="$OUT/train/act_s${SEED}_${STEPS}"

if [ ! -f "$DATA/meta/info.json" ]; then
    "$BIN/hybrid-act-record" --task docking --episodes "$((EPISODES * 2))" --routes-per-layout 2 \
        --repo-id local/docking_quickstart --root "$DATA" --cameras none --noise 0.05 --seed 0
fi
train() {  # train <policy type> <recipe> <run dir>, unless the run dir holds its final checkpoint
    if [ ! -f "$3/checkpoints/last/pretrained_model/model.safetensors" ]; then
        rm -rf "$3"
        # STEPS for the policy, then hybrid_act_c's prior_fit_steps for its sampling head alone (as the profile does)
        local fit total
        fit=$("$BIN/python" -c "from lerobot_hybrid_act.configuration_hybrid_act import default_head_fit_steps as f; print(f('$1'))")
        total=$((STEPS + fit))
        # shellcheck disable=SC2046
        "$BIN/lerobot-train" --policy.type="$1" $(grep -v '^#' "$2") \
            --dataset.repo_id=local/docking_quickstart --dataset.root="$DATA" --policy.push_to_hub=false \
            --steps="$total" --save_freq="$total" --log_freq=200 --seed="$SEED" --num_workers="$NUM_WORKERS" \
            --output_dir="$3"
    fi
}
evaluate() {  # evaluate <policy type> <run dir>: lerobot-eval on the held-out seeds, then success with its 95% CI
    rm -rf "$2/eval"
    "$BIN/lerobot-eval" --policy.path="$2/checkpoints/last/pretrained_model" --policy.device=cpu \
        --env.type=docking --env.episode_length=200 --eval.n_episodes="$EVAL_EPISODES" --eval.batch_size=10 \
        --seed=1000 --output_dir="$2/eval"
    "$BIN/python" - "$2/eval/eval_info.json" "$1" <<'PY'
import json, sys
from lerobot_hybrid_act.stats import wilson_interval
path, policy = sys.argv[1:]
info = json.load(open(path))["overall"]
n = info["n_episodes"]; k = round(info["pc_success"] * n / 100)
lo, hi = wilson_interval(k, n)
print(f"\n{policy} on docking: success {k}/{n} = {100*k/n:.0f}% (95% Wilson CI {100*lo:.0f}-{100*hi:.0f}%), "
      f"eval seeds 1000-{1000+n-1}; details: {path}")
PY
}

PANELS=(--checkpoint "$RUN/checkpoints/last/pretrained_model")
if [ "$COMPARE_ACT" = 1 ]; then
    train act configs/act_cpu_docking.args "$ACT_RUN" > "$OUT/act_train.log" 2>&1 &
    ACT_PID=$!
    trap 'kill "$ACT_PID" 2>/dev/null || true' EXIT  # a failed hybrid training does not leave act training on
    echo "[quickstart] training LeRobot act beside $POLICY (log: $OUT/act_train.log)"
fi
train "$POLICY" configs/hybrid_act_cpu_docking.args "$RUN"
if [ "$COMPARE_ACT" = 1 ]; then
    wait "$ACT_PID" || { echo "act training failed; see $OUT/act_train.log" >&2; exit 1; }
    PANELS+=(--checkpoint "$ACT_RUN/checkpoints/last/pretrained_model")
    evaluate act "$ACT_RUN"
fi
evaluate "$POLICY" "$RUN"
"$BIN/python" examples/route_picture.py "${PANELS[@]}" --seed 1000 --rollouts 8 --out "$OUT/routes.png"
