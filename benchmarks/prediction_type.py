"""Denoiser target: epsilon (noise) vs sample (clean chunk, x0), judged on held-out demonstrations only.

    HF_HUB_OFFLINE=1 python benchmarks/prediction_type.py            # ~15 min on 2 CPU cores
    ... --task docking --policy hybrid_act_c --steps 5000             # the multimodal check

For each target: ``lerobot-train`` the policy on the ablation's recorded demos (50 scripted demos, the full
profile's sizes, seed 1; recorded first with ``hybrid-act-record`` if missing), then the ablation's chunk-fidelity
metric on held-out demos (seeds 500..; never the evaluation seeds 1000..): chunk MSE in standardised action space,
best-of-K, mean-of-K and diversity (K=8), at 10 DDIM steps (the profile's) and 100. This is the measurement that
chose ``prediction_type="sample"`` as our default. Writes ``benchmarks/results/prediction_type_<task>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from lerobot_hybrid_act import POLICY_TYPES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="aloha_transfer_cube", choices=("aloha_transfer_cube", "aloha_insertion", "docking"))
    ap.add_argument("--policy", default="hybrid_act_a", choices=POLICY_TYPES)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--targets", default="epsilon,sample")
    ap.add_argument("--work", default="outputs/ablation/full", help="datasets (shared with the full ablation)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import torch

    from lerobot_hybrid_act.ablation import probes as P
    from lerobot_hybrid_act.ablation import runner
    from lerobot_hybrid_act.ablation.profiles import FULL

    torch.set_num_threads(1)
    prof = replace(FULL, steps={**FULL.steps, a.task: a.steps})
    task = prof.task(a.task)
    work, logs = Path(a.work), Path("outputs/prediction_type/logs")
    data = runner.record_dataset(task, 50, task.demo_seed, work / "data" / f"{task.name}_n50",
                                 logs / f"record_{task.name}_n50.log")
    held = runner.record_dataset(task, prof.n_heldout, task.heldout_seed, work / "data" / f"{task.name}_heldout",
                                 logs / f"record_{task.name}_heldout.log")
    hold, stats = P.HeldOut(held), P.load_action_stats(data)
    horizon = task.sizes.n_action_steps if task.is_docking else min(50, task.sizes.n_action_steps)
    rows = []
    for target in a.targets.split(","):
        run = {"task": task.name, "policy": a.policy, "n_demos": 50, "seed": a.seed, "steps": a.steps,
               "name": f"{task.name}__{a.policy}__{target}__{a.steps}__s{a.seed}"}
        out = Path("outputs/prediction_type") / run["name"]
        ckpt = out / "checkpoints" / "last" / "pretrained_model"
        cmd = [x for x in runner.train_cmd(run, task, data, out, prof) if not x.startswith("--policy.prediction_type")]
        cmd.append(f"--policy.prediction_type={target}")
        cmd.append("--policy.prior_fit_steps=0")  # chunk fidelity only: no head-fitting phase (as before it existed)
        wall = runner.train_unless_done(cmd, out, a.steps, logs / f"{run['name']}.log")
        for ddim in (10, 100):
            policy, pre, post = P.load_checkpoint(ckpt, num_inference_steps=ddim)
            t0 = time.perf_counter()
            fid = P.chunk_metrics(P.ChunkSampler(policy, pre, post), hold, stats, prof.fidelity_obs, prof.k_samples,
                                  horizon)
            rows.append({"target": target, "ddim_steps": ddim, "train_wall_s": wall, "eval_s": time.perf_counter() - t0,
                         **{k: fid[k] for k in ("chunk_mse", "best_of_k_mse", "mean_of_k_mse", "diversity")}})
            r = rows[-1]
            print(f"{target:8s} DDIM {ddim:3d}: chunk MSE {r['chunk_mse']['mean']:.4f} {r['chunk_mse']['ci']}  "
                  f"best-of-{prof.k_samples} {r['best_of_k_mse']['mean']:.4f}  diversity {r['diversity']['mean']:.4f}",
                  flush=True)
    res = {"command": "python benchmarks/prediction_type.py " + " ".join(
               f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if v is not None),
           "task": task.name, "policy": a.policy, "steps": a.steps, "seed": a.seed, "n_demos": 50,
           "heldout_observations": prof.fidelity_obs, "k": prof.k_samples, "horizon": horizon, "rows": rows}
    path = Path(a.out or f"benchmarks/results/prediction_type_{task.name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1))
    print("\n| target | DDIM steps | chunk MSE [95% CI] | best-of-K | mean-of-K | diversity |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        c = r["chunk_mse"]
        print(f"| {r['target']} | {r['ddim_steps']} | {c['mean']:.4f} [{c['ci'][0]:.4f}, {c['ci'][1]:.4f}] | "
              f"{r['best_of_k_mse']['mean']:.4f} | {r['mean_of_k_mse']['mean']:.4f} | {r['diversity']['mean']:.4f} |")
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
