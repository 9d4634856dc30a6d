"""Time one action chunk of trained checkpoints, interleaved in one process, as ratios to the first (LeRobot act).

    OMP_NUM_THREADS=1 python benchmarks/chunk_latency.py --checkpoint <act> --checkpoint <hybrid_act_c> \
        [--steps 1,2,4] [--calls 200] [--episode-chunks 20] [--out benchmarks/results/chunk_latency_docking.json]

Each checkpoint is loaded as lerobot-eval loads it (``from_pretrained``). ``--steps`` also times every diffusion
checkpoint (ours: anything with ``num_inference_steps``) at those DDIM steps. A call is
``predict_action_chunk`` on one batch-1 observation of already-normalised random inputs (processors are not timed),
after a ``reset()`` every ``--episode-chunks`` calls (default 1: every call is an episode's first chunk, where C
draws its z; 20 is a docking episode, 200 steps of 10 actions, whose later chunks reuse or re-derive z),
under ``torch.inference_mode``, on 1 intra-op thread; the policies take turns call by call, so a load on the machine
hits all of them alike. Prints the median ms per chunk and its ratio to the first checkpoint's (and, with
``--episode-chunks`` > 1, the same for first and later chunks apart); writes every sample to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import lerobot_hybrid_act  # noqa: E402,F401  (registers hybrid_act_a/b/c)
from lerobot.configs.policies import PreTrainedConfig  # noqa: E402
from lerobot.policies.factory import get_policy_class  # noqa: E402


def load(path: str, cfg: PreTrainedConfig, steps: int | None):
    cfg = copy.deepcopy(cfg)
    cfg.device = "cpu"
    if steps is not None:
        cfg.num_inference_steps = steps
    return get_policy_class(cfg.type).from_pretrained(path, config=cfg)


def run_name(path: str) -> str:
    """``<run>`` of ``<run>/checkpoints/<step>/pretrained_model``, else the directory's own name."""
    p = Path(path).resolve()
    return p.parents[2].name if p.name == "pretrained_model" and p.parents[1].name == "checkpoints" else p.name


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", action="append", required=True, help="pretrained_model dir; the first is the reference")
    ap.add_argument("--steps", default="", help="comma-separated DDIM steps to time the diffusion checkpoints at")
    ap.add_argument("--calls", type=int, default=200, help="timed calls per policy (after 10 warm-up calls)")
    ap.add_argument("--episode-chunks", type=int, default=1, help="calls per episode (a reset() before the first)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    policies = {}
    for path in args.checkpoint:
        cfg = PreTrainedConfig.from_pretrained(path)
        sweep = [int(s) for s in args.steps.split(",") if s] if hasattr(cfg, "num_inference_steps") else []
        for steps in sweep or [None]:
            label = f"{cfg.type} ({run_name(path)})" + (f", {steps} steps" if steps else "")
            policies[label] = load(path, cfg, steps)
    features = next(iter(policies.values())).config.input_features
    for label, policy in policies.items():
        if policy.config.input_features.keys() != features.keys():
            raise ValueError(f"{label} reads {sorted(policy.config.input_features)}, the first checkpoint "
                             f"{sorted(features)}: time checkpoints trained on the same features.")
    batch = {key: torch.randn(1, *ft.shape) for key, ft in features.items()}

    if args.episode_chunks < 1:
        raise ValueError(f"--episode-chunks must be >= 1, got {args.episode_chunks}")
    samples = {label: [] for label in policies}
    warmup = 10 * args.episode_chunks
    with torch.inference_mode():
        for call in range(warmup + args.calls):
            for label, policy in policies.items():
                if call % args.episode_chunks == 0:
                    policy.reset()
                t0 = time.perf_counter()
                policy.predict_action_chunk(batch)
                if call >= warmup:
                    samples[label].append(1000 * (time.perf_counter() - t0))
    first = [i % args.episode_chunks == 0 for i in range(args.calls)]  # (warm-up is whole episodes)

    def medians(v: list[float]) -> dict:
        later = [x for x, f in zip(v, first) if not f]
        return {"ms_median": statistics.median(v), "ms_first_chunk": statistics.median([x for x, f in zip(v, first) if f]),
                "ms_later_chunks": statistics.median(later) if later else None}

    stats = {label: medians(v) for label, v in samples.items()}
    ref = next(iter(stats.values()))
    rows = []
    for label, m in stats.items():
        row = {"policy": label, "num_inference_steps": getattr(policies[label].config, "num_inference_steps", None),
               **m, "ratio": m["ms_median"] / ref["ms_median"]}
        if m["ms_later_chunks"] is not None:
            row["ratio_first_chunk"] = m["ms_first_chunk"] / ref["ms_first_chunk"]
            row["ratio_later_chunks"] = m["ms_later_chunks"] / ref["ms_later_chunks"]
        rows.append(row)
    if args.episode_chunks == 1:
        print("| policy | ms per chunk (median) | x first |\n|---|---:|---:|")
        for r in rows:
            print(f"| {r['policy']} | {r['ms_median']:.2f} | {r['ratio']:.2f} |")
    else:
        print(f"| policy | ms per chunk (median, {args.episode_chunks} per episode) | x first | episode's first chunk "
              "| x first | later chunks | x first |\n|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['policy']} | {r['ms_median']:.2f} | {r['ratio']:.2f} | {r['ms_first_chunk']:.2f} | "
                  f"{r['ratio_first_chunk']:.2f} | {r['ms_later_chunks']:.2f} | {r['ratio_later_chunks']:.2f} |")
    result = {"command": "python benchmarks/chunk_latency.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "checkpoints": args.checkpoint, "calls": args.calls, "episode_chunks": args.episode_chunks,
              "torch": torch.__version__,
              "threads": torch.get_num_threads(), "load_average": os.getloadavg(), "rows": rows, "samples_ms": samples}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
