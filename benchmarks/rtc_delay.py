"""Chunk execution under inference delay on docking: plain chunking vs temporal ensembling vs real-time chunking.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/rtc_delay.py \\
        --checkpoint outputs/ablation/modes/train/docking__hybrid_act_c__n50__s1/checkpoints/last/pretrained_model \\
        --checkpoint ...s2... --checkpoint ...s3...      # one per training seed; --episodes 50 each (default)

Each checkpoint (a docking policy on ``observation.state`` + ``observation.environment_state``, loaded like
lerobot-eval loads it: policy + saved pre/post processors) drives ``DockingEnv`` in-process from the episode seeds
2000, 2001, ... (``--first-seed``; lerobot-eval's headline seeds are 1000-1999, settings such as
``--execution-horizon`` are chosen on 3000+). The episodes of one
(scheme, delay) run as one batch of environments; the policy's noise comes from ``torch.Generator(seed=0)``.

How an inference delay of d control steps is simulated (H = chunk_size from the checkpoint's config; E = the
chunk period, d + E <= H):
- A chunk is requested at step r from the observation o_r and is ready at step r + d. Its action i is meant for
  step r + i, so its first d actions (for steps that have passed) are never executed. The vehicle is at rest before
  the episode starts, so a request at r < 0 uses o_0 (the first chunk is requested d steps before the clock starts).
- plain: a chunk every E steps. The chunk executed over steps [kE, kE + E) was requested at kE - d; it runs its
  actions [d, d + E). While it is computed, the previous chunk keeps running (its actions [E, E + d)).
- rtc: as plain, but the chunk is sampled with ``inference_delay=d`` and ``prev_chunk_left_over`` = the previous
  chunk's actions from the request step on (its actions [E, H), normalised), under ``RTCConfig(execution_horizon=
  --execution-horizon)`` (default n_action_steps) and ``policy.init_rtc_processor()``: what
  ``lerobot-rollout --inference.type=rtc`` calls. Its first d actions should equal the leftover (reported as
  ``rtc_prefix_max_abs_diff``).
- The period E: the checkpoint's n_action_steps by default; with ``--queue-threshold N``, the schedule of LeRobot's
  RTC engine with ``--inference.queue_threshold=N`` (``chunk_period``), for plain and rtc alike.
- ensemble: LeRobot's ``ACTTemporalEnsembler`` (coefficient --te-coeff, ACT's 0.01). A chunk is requested at every
  step; the chunk that enters the ensemble at step t was requested at t - d, so the ensembler (built with
  chunk_size H - d) receives its actions [d, H), and at step t averages every received chunk's action for t.

Reported per checkpoint and pooled over checkpoints, for each scheme and d in --delays: success rate with its 95%
Wilson interval; the chunk-boundary jump ratio (mean |a_t - a_(t-1)| where a_t is the first executed action of a new
chunk, over the mean of the other steps; per episode, then the mean over episodes with a 95% bootstrap interval;
not defined for ensembling, where every step starts a new chunk); jerk RMS (third difference of the executed
actions, per episode, mean and 95% bootstrap interval). Where plain and rtc both ran at a delay, RTC's success
minus plain's, paired over the same episodes (``rtc_minus_plain``: the difference with a 95% bootstrap interval over
episodes, the episodes only one of them docks, McNemar's exact p). And the extra cost of RTC per chunk: the median
wall time of ``predict_action_chunk`` with and without the leftover (batch 1, one thread, calls interleaved, same
process).

Writes ``benchmarks/results/rtc_delay_docking.json`` and ``.png`` and prints the pooled table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SCHEMES = ("plain", "ensemble", "rtc")
COLORS = {"plain": "tab:blue", "ensemble": "tab:green", "rtc": "tab:orange"}
FIRST_SEED = 2000
RESULTS = Path(__file__).resolve().parent / "results"


def _delays(text: str) -> list[int]:
    try:
        delays = sorted({int(d) for d in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--delays takes comma-separated control steps, e.g. 0,2,4,8; got {text!r}")
    if not delays or delays[0] < 0:
        raise argparse.ArgumentTypeError(f"--delays must be >= 0 control steps, got {text!r}")
    return delays


def observations(obs: list[dict]) -> dict:
    """One policy batch from the environments' current observations."""
    import torch

    from lerobot_hybrid_act.ablation.probes import obs_batch

    batches = [obs_batch(o["agent_pos"], o["environment_state"]) for o in obs]
    return {key: torch.cat([b[key] for b in batches]) for key in batches[0]}


def chunk_period(chunk_size: int, delay: int, queue_threshold: int | None, n_action_steps: int) -> int:
    """Control steps between two chunks: ``n_action_steps`` without a ``queue_threshold``; with one, as LeRobot's RTC
    engine schedules them: a chunk leaves ``chunk_size - delay`` actions queued, the next is requested once at most
    ``queue_threshold`` are left and arrives ``delay`` steps later (back to back, every ``delay`` steps, when the
    threshold is at least ``chunk_size - delay``)."""
    if queue_threshold is None:
        return n_action_steps
    return max(delay, chunk_size - queue_threshold, 1)


def run_episodes(policy, pre, post, scheme: str, delay: int, seeds: list[int], te_coeff: float,
                 queue_threshold: int | None = None) -> dict:  # fmt: skip
    """Roll out one batch of episodes (one per seed) under `scheme` with a delay of `delay` control steps; plain
    and rtc chunks every ``chunk_period`` steps (``queue_threshold`` None: every n_action_steps)."""
    import torch
    from lerobot.policies.act.modeling_act import ACTTemporalEnsembler

    from lerobot_hybrid_act.docking.env import DockingEnv

    chunk_size = policy.config.chunk_size
    n_steps = chunk_period(chunk_size, delay, queue_threshold, policy.config.n_action_steps)
    envs = [DockingEnv(render_mode=None) for _ in seeds]
    current = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    history = [list(current)]  # history[t]: the observations at step t (a finished episode keeps its last one)
    policy.reset()  # a new style latent z for every episode (z_mode="hold")
    generator = torch.Generator().manual_seed(0)
    ensembler = ACTTemporalEnsembler(te_coeff, chunk_size - delay)
    done = [False] * len(envs)
    actions: list[list[np.ndarray]] = [[] for _ in envs]
    success, collision = [False] * len(envs), [False] * len(envs)
    chunk = executed = None
    prefix_diff = []

    def request(t: int, left_over=None):
        batch = pre(observations(history[max(t - delay, 0)]))
        return policy.predict_action_chunk(batch, generator=generator, inference_delay=delay,
                                           prev_chunk_left_over=left_over)  # fmt: skip

    t = 0
    while not all(done):
        if scheme == "ensemble":
            step_actions = post(ensembler.update(request(t)[:, delay:]))
        else:
            if t % n_steps == 0:
                left_over = chunk[:, n_steps:] if scheme == "rtc" and chunk is not None else None
                chunk = request(t, left_over)
                if left_over is not None and delay > 0:
                    prefix_diff.append(float((chunk[:, :delay] - left_over[:, :delay]).abs().max()))
                executed = post(chunk)
            step_actions = executed[:, delay + t % n_steps]
        step_actions = step_actions.cpu().numpy()
        for i, env in enumerate(envs):
            if done[i]:
                continue
            actions[i].append(step_actions[i])
            current[i], _, terminated, truncated, info = env.step(step_actions[i])
            if terminated or truncated:
                done[i], success[i], collision[i] = True, bool(info["is_success"]), bool(info["collision"])
        history.append(list(current))
        t += 1
    for env in envs:
        env.close()
    return {"success": success, "collision": collision, "actions": [np.asarray(a) for a in actions],
            "period": None if scheme == "ensemble" else n_steps,
            "rtc_prefix_max_abs_diff": max(prefix_diff) if prefix_diff else None}  # fmt: skip


def summarize(episodes: dict) -> dict:
    from lerobot_hybrid_act.ablation.metrics import action_smoothness
    from lerobot_hybrid_act.stats import bootstrap_mean_ci, wilson_interval

    smooth = [action_smoothness(a, episodes["period"]) for a in episodes["actions"]]

    def mean_ci(key: str) -> dict:
        values = [s[key] for s in smooth if np.isfinite(s[key])]
        if not values:
            return {"mean": None, "ci95": None, "n": 0}
        mean, lo, hi = bootstrap_mean_ci(values)
        return {"mean": mean, "ci95": [lo, hi], "n": len(values)}

    n, k = len(episodes["success"]), int(sum(episodes["success"]))
    return {
        "episodes": n,
        "successes": k,
        "success_rate": k / n,
        "success_ci95": list(wilson_interval(k, n)),
        "collision_rate": float(np.mean(episodes["collision"])),
        "mean_steps": float(np.mean([len(a) for a in episodes["actions"]])),
        "chunk_period": episodes["period"],
        "boundary_ratio": mean_ci("boundary_ratio"),
        "jerk_rms": mean_ci("jerk_rms"),
        "mean_step": mean_ci("mean_step"),
        "rtc_prefix_max_abs_diff": episodes["rtc_prefix_max_abs_diff"],
    }


def rtc_cost(policy, pre, seed: int, delay: int, calls: int) -> dict:
    """Median wall time (ms) of one chunk for batch 1, plain vs with the RTC leftover, calls interleaved."""
    import torch

    from lerobot_hybrid_act.docking.env import DockingEnv

    env = DockingEnv(render_mode=None)
    batch = pre(observations([env.reset(seed=seed)[0]]))
    env.close()
    policy.reset()
    generator = torch.Generator().manual_seed(0)
    left_over = policy.predict_action_chunk(batch, generator=generator)[:, policy.config.n_action_steps :]
    times = {"plain": [], "rtc": []}
    for i in range(calls + 2):  # the first two calls of each kind are warm-up
        for kind in ("plain", "rtc"):
            start = time.perf_counter()
            policy.predict_action_chunk(batch, generator=generator, inference_delay=delay,
                                        prev_chunk_left_over=left_over if kind == "rtc" else None)  # fmt: skip
            if i >= 2:
                times[kind].append(1000 * (time.perf_counter() - start))
    plain, rtc = statistics.median(times["plain"]), statistics.median(times["rtc"])
    return {"plain_ms": plain, "rtc_ms": rtc, "ratio": rtc / plain, "calls": calls, "delay": delay,
            "threads": torch.get_num_threads()}  # fmt: skip


def plot(rows: list[dict], delays: list[int], n_checkpoints: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_b) = plt.subplots(1, 2, figsize=(10, 4))
    for scheme in [x for x in SCHEMES if any(r["scheme"] == x for r in rows)]:
        mine = [r for r in rows if r["scheme"] == scheme]
        rate = np.array([r["success_rate"] for r in mine])
        ci = np.array([r["success_ci95"] for r in mine])
        ax_s.errorbar(delays, rate, yerr=[rate - ci[:, 0], ci[:, 1] - rate], marker="o", capsize=3, label=scheme,
                     color=COLORS[scheme])  # fmt: skip
        if scheme != "ensemble":  # every step starts a new chunk: no boundaries
            ratio = np.array([r["boundary_ratio"]["mean"] or np.nan for r in mine], dtype=float)
            ax_b.plot(delays, ratio, marker="o", label=scheme, color=COLORS[scheme])
    ax_s.set(xlabel="inference delay (control steps)", ylabel="success rate (95% Wilson)", ylim=(0, 1.05))
    ax_b.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax_b.set(xlabel="inference delay (control steps)", ylabel="chunk-boundary jump ratio")
    ax_s.legend()
    ax_b.legend()
    fig.suptitle(f"docking: chunk execution under inference delay ({n_checkpoints} checkpoint(s) pooled)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    def fmt(stat: dict) -> str:
        if stat["mean"] is None:
            return "-"
        return f"{stat['mean']:.2f} [{stat['ci95'][0]:.2f}, {stat['ci95'][1]:.2f}]"

    lines = ["| scheme | delay d | chunk every | success (95% CI) | collisions | boundary jump ratio (95% CI) | jerk RMS (95% CI) |",
             "|---|---:|---:|---|---:|---|---|"]  # fmt: skip
    for r in rows:
        lo, hi = r["success_ci95"]
        period = "1" if r["chunk_period"] is None else str(r["chunk_period"])  # ensembling: a chunk every step
        lines.append(f"| {r['scheme']} | {r['delay']} | {period} | {r['successes']}/{r['episodes']} = {r['success_rate']:.2f} "
                     f"[{lo:.2f}, {hi:.2f}] | {r['collision_rate']:.2f} | {fmt(r['boundary_ratio'])} | {fmt(r['jerk_rms'])} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", action="append", type=Path, required=True,
                    help="a trained docking pretrained_model directory; repeat once per training seed")  # fmt: skip
    ap.add_argument("--episodes", type=int, default=50, help="episodes per checkpoint, scheme and delay")
    ap.add_argument("--first-seed", type=int, default=FIRST_SEED,
                    help=f"first episode seed (default {FIRST_SEED}); settings are chosen on 3000+, never on 1000-1999")
    ap.add_argument("--delays", type=_delays, default="0,2,4,8")
    ap.add_argument("--schemes", default=",".join(SCHEMES),
                    help=f"comma-separated among {SCHEMES} (ensembling computes a chunk every step: the slow one)")
    ap.add_argument("--execution-horizon", type=int, default=None, help="RTC's; default: n_action_steps")
    ap.add_argument("--queue-threshold", type=int, default=None,
                    help="plain and RTC chunks as LeRobot's RTC engine schedules them with --inference.queue_threshold"
                         "=N (its default 30: back to back, a new chunk every d steps); default: every n_action_steps")
    ap.add_argument("--schedule", choices=["LINEAR", "EXP"], default="LINEAR",
                    help="RTC's prefix_attention_schedule (LeRobot's default LINEAR; the RTC paper's soft mask is EXP)")
    ap.add_argument("--te-coeff", type=float, default=0.01, help="temporal ensembling coefficient (ACT's default)")
    ap.add_argument("--timing-calls", type=int, default=50)
    ap.add_argument("--out", type=Path, default=RESULTS / "rtc_delay_docking.json")
    ap.add_argument("--plot", type=Path, default=None, help="default: --out with .png")
    a = ap.parse_args(argv)
    if a.episodes < 1:
        ap.error(f"--episodes must be >= 1, got {a.episodes}")
    schemes = [x.strip() for x in a.schemes.split(",") if x.strip()]
    if not schemes or set(schemes) - set(SCHEMES):
        ap.error(f"--schemes must list some of {SCHEMES}, got {a.schemes!r}")

    import torch
    from lerobot.configs.types import RTCAttentionSchedule
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    from lerobot_hybrid_act.ablation.probes import load_checkpoint
    from lerobot_hybrid_act.stats import paired_success_difference

    torch.set_num_threads(1)
    if a.first_seed < FIRST_SEED:
        raise SystemExit(f"--first-seed must be >= {FIRST_SEED}: seeds 1000-1999 are lerobot-eval's headline episodes")
    seeds = list(range(a.first_seed, a.first_seed + a.episodes))
    per_checkpoint, pooled_episodes, costs, shapes, rtc_modes = [], {}, [], set(), []
    for path in a.checkpoint:
        if not (path / "model.safetensors").is_file():
            sys.exit(f"{path} has no model.safetensors: pass a checkpoint's pretrained_model directory.")
        policy, pre, post = load_checkpoint(path)
        cfg = policy.config
        if not policy.supports_rtc():
            sys.exit(f"{path}: policy type {cfg.type} does not support real-time chunking.")
        shapes.add((cfg.chunk_size, cfg.n_action_steps))
        if len(shapes) > 1:
            sys.exit(f"The checkpoints' (chunk_size, n_action_steps) differ: {sorted(shapes)}; the pooled rows need "
                     "one chunking. Run the script once per configuration.")  # fmt: skip
        horizon = a.execution_horizon or cfg.n_action_steps
        for delay in a.delays:
            period = chunk_period(cfg.chunk_size, delay, a.queue_threshold, cfg.n_action_steps)
            if delay + period > cfg.chunk_size:
                sys.exit(f"{path}: a delay of {delay} plus a chunk period of {period} steps exceeds chunk_size="
                         f"{cfg.chunk_size}: the queue would run dry. Pass smaller --delays or a larger "
                         "--queue-threshold.")  # fmt: skip
        cfg.rtc_config = RTCConfig(execution_horizon=horizon,
                                   prefix_attention_schedule=RTCAttentionSchedule[a.schedule])
        policy.init_rtc_processor()
        rtc_modes.append({"checkpoint": str(path), "rtc_train_max_delay": cfg.rtc_train_max_delay,
                          "rtc": "a given prefix (trained)" if cfg.rtc_train_max_delay > 0 else "inpainting"})
        for scheme in schemes:
            for delay in a.delays:
                start = time.perf_counter()
                episodes = run_episodes(policy, pre, post, scheme, delay, seeds, a.te_coeff, a.queue_threshold)
                row = {"checkpoint": str(path), "scheme": scheme, "delay": delay, **summarize(episodes)}
                per_checkpoint.append(row)
                pooled = pooled_episodes.setdefault((scheme, delay), {"success": [], "collision": [], "actions": [],
                                                                       "diff": [], "period": episodes["period"]})  # fmt: skip
                pooled["success"] += episodes["success"]
                pooled["collision"] += episodes["collision"]
                pooled["actions"] += episodes["actions"]
                if episodes["rtc_prefix_max_abs_diff"] is not None:
                    pooled["diff"].append(episodes["rtc_prefix_max_abs_diff"])
                print(f"{path.parts[-4] if len(path.parts) >= 4 else path}: {scheme} d={delay}: "
                      f"{row['successes']}/{row['episodes']} ({time.perf_counter() - start:.0f}s)", flush=True)  # fmt: skip
        timing_delay = 4 if 4 in a.delays else max(a.delays)
        costs.append({"checkpoint": str(path), **rtc_cost(policy, pre, FIRST_SEED, timing_delay, a.timing_calls)})

    rows = []
    for (scheme, delay), ep in pooled_episodes.items():
        ep = {"success": ep["success"], "collision": ep["collision"], "actions": ep["actions"], "period": ep["period"],
              "rtc_prefix_max_abs_diff": max(ep["diff"]) if ep["diff"] else None}  # fmt: skip
        rows.append({"checkpoint": "pooled", "scheme": scheme, "delay": delay, **summarize(ep)})
    # The schemes ran on the same episodes (seeds x checkpoints, in one order), so RTC and plain pair up episode by
    # episode: a paired difference is much tighter than two independent intervals.
    paired = [{"delay": d, **paired_success_difference(pooled_episodes[("plain", d)]["success"],
                                                       pooled_episodes[("rtc", d)]["success"])}
              for d in a.delays if ("plain", d) in pooled_episodes and ("rtc", d) in pooled_episodes]  # fmt: skip
    result = {
        "command": "python benchmarks/rtc_delay.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "checkpoints": [str(p) for p in a.checkpoint],
        "episode_seeds": [seeds[0], seeds[-1]],
        "policy_noise_seed": 0,
        "chunk_size": cfg.chunk_size,
        "n_action_steps": cfg.n_action_steps,
        "execution_horizon": horizon,
        "queue_threshold": a.queue_threshold,
        "prefix_attention_schedule": a.schedule,
        "te_coeff": a.te_coeff,
        "delays": a.delays,
        "schemes": schemes,
        "rtc_mode": rtc_modes,
        "pooled": rows,
        "rtc_minus_plain": paired,
        "per_checkpoint": per_checkpoint,
        "rtc_cost": costs,
        "torch": torch.__version__,
        "load_average_1min_at_end": os.getloadavg()[0],  # the machine's other jobs slow the timings
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, a.delays, len(a.checkpoint), a.plot or a.out.with_suffix(".png"))
    schedule = (f"a chunk every n_action_steps = {cfg.n_action_steps} steps" if a.queue_threshold is None else
                f"a chunk every max(d, {cfg.chunk_size} - {a.queue_threshold}) steps (queue_threshold {a.queue_threshold})")  # fmt: skip
    print(f"\ndocking, {len(a.checkpoint)} checkpoint(s) x {a.episodes} episodes (seeds {seeds[0]}-{seeds[-1]}), "
          f"chunk_size {cfg.chunk_size}, {schedule}, RTC execution_horizon {horizon}\n")  # fmt: skip
    print(table(rows))
    for r in paired:
        print(f"\nd={r['delay']}: RTC minus plain, paired over the same episodes: {100 * r['difference']:+.1f} points "
              f"[{100 * r['ci95'][0]:+.1f}, {100 * r['ci95'][1]:+.1f}] (only plain docks {r['only_first']}, only RTC "
              f"{r['only_second']}; McNemar p = {r['mcnemar_p']:.3f})")
    for c in costs:
        print(f"\nRTC cost per chunk ({c['checkpoint']}): {c['rtc_ms']:.1f} ms vs plain {c['plain_ms']:.1f} ms "
              f"(median of {c['calls']}, d={c['delay']}, {c['threads']} thread): ratio {c['ratio']:.2f}")  # fmt: skip
    print(f"\nwrote {a.out}")


if __name__ == "__main__":
    main()
