#!/usr/bin/env bash
# One command, fresh machine -> a trained and evaluated hybrid_act_c, on CPU, in about ten minutes:
#   1. builds .venv if needed (scripts/setup_env.sh);
#   2. records scripted docking demonstrations, every layout along both routes (hybrid-act-record
#      --routes-per-layout 2, layout seeds 0..);
#   3. trains hybrid_act_c through lerobot-train (configs/hybrid_act_cpu_docking.args);
#   4. evaluates it through lerobot-eval on held-out seeds (1000..) and prints success with a 95% CI;
#   5. draws 8 rollouts from one start, coloured by route, to $OUT/routes.png (examples/route_picture.py),
#      with LeRobot act beside it for COMPARE_ACT=1.
# The recipe is the `modes` ablation profile's docking recipe (50 layouts x 2 routes, the same flags, training seed 1,
# then hybrid_act_c's 1000 head-only steps) at 4000 policy steps instead of the profile's 5000, so that the whole run
# fits in ten minutes. 4000 was chosen on the design episodes (lerobot-eval seeds 3000-3049), never the printed ones:
# three data orders docked 45, 32 and 47 of 50 at 4000 steps (83%), against 233 of 300 (78%) for six at 5000
# (docs/training.md, "Quickstart steps"). On 2 CPU cores (AMD EPYC), venv in place, nothing else running: README,
# "Two commands".
# One intra-op thread (OMP_NUM_THREADS=1 unless set): torch's default spin-waits beside other work on a small machine.
# One dataloader worker (NUM_WORKERS=1 unless set) loads batches on the second core: ~0.12 s per step instead of
# ~0.18 s (the profile runs use 0 workers, one run per core). The worker's seed is drawn from torch's random stream,
# so the trained weights differ from the profile's seed-1 run.
# COMPARE_ACT=1 also trains LeRobot's act on the same demos (configs/act_cpu_docking.args, the profile's act recipe),
# on the second core while the hybrid trains (NUM_WORKERS then defaults to 0: one process per core), evaluates it
# the same way and draws its rollouts beside the hybrid's. One core per training is slower (~15 min).
# Knobs: POLICY (hybrid_act_a|b|c), STEPS, EPISODES (layouts), EVAL_EPISODES, SEED, NUM_WORKERS, COMPARE_ACT, OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
BIN=${VENV:-.venv}/bin
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} MUJOCO_GL=${MUJOCO_GL:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
POLICY=${POLICY:-hybrid_act_c}
STEPS=${STEPS:-4000}
EPISODES=${EPISODES:-50}
EVAL_EPISODES=${EVAL_EPISODES:-50}
SEED=${SEED:-1}
COMPARE_ACT=${COMPARE_ACT:-0}
if [ "$COMPARE_ACT" = 1 ]; then NUM_WORKERS=${NUM_WORKERS:-0}; else NUM_WORKERS=${NUM_WORKERS:-1}; fi
OUT=${OUT:-outputs/quickstart}
DATA="$OUT/data/docking_${EPISODES}x2"
RUN="$OUT/train/${POLICY}_s${SEED}_${STEPS}"
ACT_RUN="$OUT/train/act_s${SEED}_${STEPS}"

mkdir -p "$OUT"
# The steps lerobot-train adds for each policy's sampling head (hybrid_act_c's prior_fit_steps, as the profile adds
# them), looked up on the second core while the demos are recorded.
"$BIN/python" -c "from lerobot_hybrid_act.configuration_hybrid_act import default_head_fit_steps as f
for p in ('$POLICY', 'act'): print(p, f(p))" > "$OUT/head_fit_steps.txt" &
FIT_PID=$!
if [ ! -f "$DATA/meta/info.json" ]; then
    "$BIN/hybrid-act-record" --task docking --episodes "$((EPISODES * 2))" --routes-per-layout 2 \
        --repo-id local/docking_quickstart --root "$DATA" --cameras none --noise 0.05 --seed 0
fi
wait "$FIT_PID"
train() {  # train <policy type> <recipe> <run dir>, unless the run dir holds its final checkpoint
    if [ ! -f "$3/checkpoints/last/pretrained_model/model.safetensors" ]; then
        rm -rf "$3"
        # STEPS for the policy, then its head-fit steps for the sampling head alone
        local total
        total=$((STEPS + $(awk -v p="$1" '$1 == p {print $2}' "$OUT/head_fit_steps.txt")))
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
        --eval.use_async_envs=false --seed=1000 --output_dir="$2/eval"
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
fi
# The picture is drawn on the second core while lerobot-eval runs.
"$BIN/python" examples/route_picture.py "${PANELS[@]}" --seed 1000 --rollouts 8 --out "$OUT/routes.png" \
    > "$OUT/routes.log" 2>&1 &
PICTURE_PID=$!
if [ "$COMPARE_ACT" = 1 ]; then evaluate act "$ACT_RUN"; fi
evaluate "$POLICY" "$RUN"
wait "$PICTURE_PID" || { cat "$OUT/routes.log" >&2; echo "the route picture failed" >&2; exit 1; }
tail -n 1 "$OUT/routes.log"
