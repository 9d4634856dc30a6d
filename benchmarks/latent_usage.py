"""Does hybrid_act_c's denoiser use z? KL weight and reconstruction term vs latent usage on docking, judged off
the evaluation seeds.

    HF_HUB_OFFLINE=1 python benchmarks/latent_usage.py --kl-weights 1.0,0.01 --recon-weights 0,1
        # one training per (kl_weight, recon_weight) pair, ~15-60 min each on 2 CPU cores

The full ablation found C's z unused on docking: K prior draws of z with one shared diffusion noise spread the
chunks by ~0.01, against ~0.19 for one z and K noises. One candidate cause is the loss scale: the diffusion
MSE is a *mean* over the chunk's T x A entries, while the KL is a *sum* over latent dims per sample, so
``kl_weight = 1`` prices a nat of route information far above what knowing the route saves in mean MSE. This
script trains C with the full profile's docking recipe (50 demos, 5000 steps, seed 1; ``kl_weight = 1`` is that
run exactly) at several ``kl_weight`` values, with and without the reconstruction term (``recon_weight``: an x0
loss from pure noise at the sampler's first timestep, where only obs and z can tell the chunk), and measures,
for each:

- **z steering** (counterfactual): from each start layout (seeds 900.., the ablation's route starts), the
  scripted expert's first chunk for *each* route (same style, no noise) gives two posterior means z_left,
  z_right = E q(z | obs, chunk). Decoding K chunks with each z (shared noises) and labelling every chunk by the
  nearer expert chunk (standardised MSE) gives ``chunk_follows_z``; rolling out whole episodes with z held
  gives ``rollout_follows_z`` (route of the full trajectory). 0.5 means the denoiser ignores z; 1 means z picks
  the route. ``posterior_route_gap`` = RMS of z_left - z_right (does the posterior
  separate the routes at all? results committed before issue 24 measured it in units of the Gaussian prior's std); ``both_routes_from_prior`` is the share of layouts where K prior draws decode
  into both routes.
- **demo route recalled**: at the first frame of each training / held-out demo's layout, the share of chunks decoded
  with prior draws of z that take the route the expert drew for that layout. The draw is a coin flip independent
  of the layout, so ~1 on the training layouts means the decoder memorised each demo's route from its observation.
- the ablation's own latent metrics on held-out demos (seeds 500..): KL and active dims, route accuracy of the
  posterior / prior means, ``z_usage``; and its route coverage over R rollouts per start (seeds 900..).
- in-process success over 50 episodes on seeds 2000.. (the ablation's rollout seeds; ``lerobot-eval``'s seeds
  1000.. are not touched here).

Writes ``--out`` (JSON, default ``benchmarks/results/latent_usage_docking.json``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np


def expert_chunks(env, seed: int, T: int, style: float) -> tuple[dict, np.ndarray]:
    """(first observation, (2, T, A) expert chunks for route left / right) from start layout ``seed``."""
    from lerobot_hybrid_act.docking.expert import ROUTE_LEFT, ROUTE_RIGHT, run_expert_episode

    chunks, obs0 = [], None
    for route in (ROUTE_LEFT, ROUTE_RIGHT):
        ep = run_expert_episode(env, seed, noise=0.0, route=route, style=style)
        a = np.asarray(ep["actions"])
        chunks.append(np.concatenate([a[:T], np.repeat(a[-1:], max(0, T - len(a)), axis=0)]))
        obs0 = ep["observations"][0]
    return obs0, np.stack(chunks)


def _start(env, sampler, stats, seed: int, T: int, style: float):
    """Normalised first observation of layout ``seed``, its two expert chunks (left, right; raw and standardised) and
    a labeller giving the route of a decoded (1, T, A) chunk: the nearer expert chunk (standardised MSE)."""
    from lerobot_hybrid_act.ablation import metrics as M

    mean, std = stats
    obs0, g = expert_chunks(env, seed, T, style)
    gs = (g - mean) / std
    batch = sampler.normalize(obs0["agent_pos"], obs0["environment_state"])

    def route_of(chunk) -> int:
        c = (sampler.unnormalise(chunk)[0] - mean) / std
        return int(np.argmin([M.chunk_mse(c, gs[r]) for r in (0, 1)]))

    return obs0, g, gs, batch, route_of


def _prior_routes(policy, batch, route_of, k: int) -> list[int]:
    """Routes of K chunks decoded with z drawn from the prior (draw j: z seed 100 + j, noise seed 200 + j)."""
    import torch

    gen = lambda j: torch.Generator().manual_seed(j)  # noqa: E731
    return [route_of(policy.predict_action_chunk(batch, z=policy.sample_style(batch, gen(100 + j)), generator=gen(200 + j)))
            for j in range(k)]


def z_steering(policy, pre, post, stats, start_seeds, k: int, reps: int, style: float) -> dict:
    """Counterfactual z steering (see the module docstring), per start layout then summarised."""
    import torch

    from lerobot_hybrid_act.ablation import metrics as M
    from lerobot_hybrid_act.ablation import probes as P
    from lerobot_hybrid_act.docking.env import DockingEnv
    from lerobot_hybrid_act.docking.metrics import collect_rollout, route_label

    T = policy.config.chunk_size
    env = DockingEnv(render_mode=None)
    act = P.policy_act_fn(policy, pre, post)
    sampler = P.ChunkSampler(policy, pre, post)
    gen = lambda j: torch.Generator().manual_seed(j)  # noqa: E731
    chunk_follow, rollout_follow, both_prior, gap, z_gap = [], [], [], [], []
    for s in start_seeds:
        obs0, g, gs, batch, route_of = _start(env, sampler, stats, int(s), T, style)
        gap.append(M.chunk_mse(gs[0], gs[1]))
        z_route = []
        for r in (0, 1):
            a_norm = pre({**P.obs_batch(obs0["agent_pos"], obs0["environment_state"]),
                          "action": torch.as_tensor(g[r : r + 1], dtype=torch.float32)})["action"]
            z_route.append(policy.infer_style({**batch, "action": a_norm}))
        z_gap.append(float((z_route[0] - z_route[1]).pow(2).mean().sqrt()))
        hits = [route_of(policy.predict_action_chunk(batch, z=z_route[r], generator=gen(j))) == r
                for r in (0, 1) for j in range(k)]
        prior = _prior_routes(policy, batch, route_of, k)
        chunk_follow.append(float(np.mean(hits)))
        both_prior.append(float(len(set(prior)) == 2))
        ro_hits = []
        for r in (0, 1):
            for rep in range(reps):
                policy.reset()
                policy.set_style(z_route[r])
                torch.manual_seed(40_000 + rep)
                ro = collect_rollout(env, act, seed=int(s))
                ro_hits.append(route_label(ro["xy"], ro["layout"]) == r)
        policy.set_style(None)
        rollout_follow.append(float(np.mean(ro_hits)))
    env.close()
    return {"chunk_follows_z": M.summarize(chunk_follow), "rollout_follows_z": M.summarize(rollout_follow),
            "both_routes_from_prior": M.summarize(both_prior), "expert_route_gap_mse": M.summarize(gap),
            "posterior_route_gap": M.summarize(z_gap),
            "starts": [int(s) for s in start_seeds], "k": k, "reps": reps, "style": style}


def route_recall(policy, pre, post, stats, seeds, k: int, style: float) -> dict:
    """Share of K chunks decoded (z from the prior) at the first frame of layout ``seed`` that take the route the
    expert drew for that seed. On the training demos' layouts ~1 means the decoder recalls each demo's route from
    its observation (memorised: z is not needed); on other layouts that draw is a coin flip (~0.5)."""
    from lerobot_hybrid_act.ablation import metrics as M
    from lerobot_hybrid_act.ablation import probes as P
    from lerobot_hybrid_act.docking.env import DockingEnv
    from lerobot_hybrid_act.docking.expert import expert_rng, sample_route_style

    T = policy.config.chunk_size
    env = DockingEnv(render_mode=None)
    sampler = P.ChunkSampler(policy, pre, post)
    recall = []
    for s in seeds:
        drawn = sample_route_style(expert_rng(int(s)))[0]
        _, _, _, batch, route_of = _start(env, sampler, stats, int(s), T, style)
        recall.append(float(np.mean([r == drawn for r in _prior_routes(policy, batch, route_of, k)])))
    env.close()
    return M.summarize(recall)


def _weights(flag: str, allow_zero: bool, example: str):
    """Parser of comma-separated floats, checked before any training starts (C refuses kl_weight <= 0)."""
    def parse(text: str) -> list[str]:
        out = []
        for w in text.split(","):
            try:
                ok = float(w) > 0 or (allow_zero and float(w) == 0)
            except ValueError:
                ok = False
            if not ok:
                kind = "non-negative" if allow_zero else "positive"
                raise argparse.ArgumentTypeError(f"{w!r} is not a {kind} number; e.g. {flag} {example}")
            out.append(w.strip())
        return out
    return parse


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _unit(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"the expert's style must be in [0, 1], got {text!r}")
    return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kl-weights", type=_weights("--kl-weights", False, "1.0,0.01"), default="1.0,0.01")
    ap.add_argument("--recon-weights", type=_weights("--recon-weights", True, "0,1"), default="0,1",
                    help="recon_weight values (0: the ablation's C); every pair with --kl-weights is trained")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--starts", type=_positive, default=20, help="start layouts (seeds 900..)")
    ap.add_argument("--k", type=_positive, default=8, help="decoded chunks per z / prior draws per start")
    ap.add_argument("--reps", type=_positive, default=2, help="rollouts per start and route with z held")
    ap.add_argument("--episodes", type=_positive, default=50, help="in-process success episodes (seeds 2000..)")
    ap.add_argument("--style", type=_unit, default=0.5, help="expert style of the counterfactual chunks")
    ap.add_argument("--work", default="outputs/ablation/full", help="datasets (shared with the full ablation)")
    ap.add_argument("--out", default="benchmarks/results/latent_usage_docking.json")
    a = ap.parse_args()

    import torch

    from lerobot_hybrid_act.ablation import probes as P
    from lerobot_hybrid_act.ablation import runner
    from lerobot_hybrid_act.ablation.profiles import FULL

    torch.set_num_threads(1)
    task, prof = FULL.task("docking"), FULL
    steps, work, logs = prof.steps["docking"], Path(a.work), Path("outputs/latent_usage/logs")
    data = runner.record_dataset(task, 50, task.demo_seed, work / "data" / "docking_n50", logs / "record_docking_n50.log")
    held = runner.record_dataset(task, prof.n_heldout, task.heldout_seed, work / "data" / "docking_heldout",
                                 logs / "record_docking_heldout.log")
    hold, stats = P.HeldOut(held), P.load_action_stats(data)
    demo_seeds = json.loads((data / "meta" / "hybrid_act_recording.json").read_text())["seeds"]
    held_seeds = json.loads((held / "meta" / "hybrid_act_recording.json").read_text())["seeds"]
    rows = []
    for w, rw in [(w, rw) for rw in a.recon_weights for w in a.kl_weights]:
        recon = float(rw) > 0
        run = {"task": "docking", "policy": "hybrid_act_c", "n_demos": 50, "seed": a.seed, "steps": steps,
               "name": f"docking__hybrid_act_c__kl{w}{f'_recon{rw}' if recon else ''}__s{a.seed}"}
        out = Path("outputs/latent_usage") / run["name"]
        # no head-fitting phase: these runs measure the decoder's use of z, as they did before the phase existed
        cmd = runner.train_cmd(run, task, data, out, prof) + [f"--policy.kl_weight={w}", "--policy.prior_fit_steps=0"]
        cmd += [f"--policy.recon_weight={rw}"] if recon else []
        wall = runner.train_unless_done(cmd, out, steps, logs / f"{run['name']}.log")
        policy, pre, post = P.load_checkpoint(out / "checkpoints" / "last" / "pretrained_model")
        t0 = time.perf_counter()
        probe = P.latent_probe(policy, pre, hold, policy.config.chunk_size)
        usage = P.z_usage(P.ChunkSampler(policy, pre, post), hold, stats, prof.fidelity_obs, prof.k_samples,
                          P.fidelity_steps(task))
        steer = z_steering(policy, pre, post, stats, [task.route_seed + i for i in range(a.starts)], a.k, a.reps,
                           a.style)
        recall = {"train": route_recall(policy, pre, post, stats, demo_seeds, a.k, a.style),
                  "heldout": route_recall(policy, pre, post, stats, held_seeds, a.k, a.style)}
        routes = P.route_diversity(policy, pre, post, [task.route_seed + i for i in range(prof.route_starts)],
                                   prof.route_rollouts, 0)
        ro = P.docking_rollouts(policy, pre, post, [task.rollout_seed + i for i in range(a.episodes)],
                                policy.config.n_action_steps)["summary"]
        rows.append({"kl_weight": float(w), "recon_weight": float(rw), "train_wall_s": wall, "eval_s": time.perf_counter() - t0,
                     "kl": probe["kl"], "route_accuracy": probe["route_accuracy"], "z_usage": usage, **steer, "route_recall": recall,
                     "route_coverage": routes["coverage"], "success": ro["success_rate"], "episodes": a.episodes,
                     "collision": ro["collision_rate"]})
        r = rows[-1]
        print(f"kl_weight {w}, recon_weight {rw}: KL {r['kl']['kl']:.3f} ({r['kl']['active_dims']} active), chunk follows z "
              f"{r['chunk_follows_z']['mean']:.2f}, demo route recalled {r['route_recall']['train']['mean']:.2f} (train) / "
              f"{r['route_recall']['heldout']['mean']:.2f} (held-out), rollout follows z {r['rollout_follows_z']['mean']:.2f}, "
              f"success {r['success']:.2f}", flush=True)
    res = {"command": "python benchmarks/latent_usage.py " + " ".join(
               f"--{k.replace('_', '-')} {','.join(v) if isinstance(v, list) else v}" for k, v in vars(a).items()),
           "task": "docking", "policy": "hybrid_act_c", "n_demos": 50, "steps": steps, "seed": a.seed,
           "heldout_observations": prof.fidelity_obs, "rows": rows}
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1, default=runner.json_default))
    print(table(rows))
    print(f"JSON: {path}")


def table(rows: list[dict]) -> str:
    def ci(m: dict) -> str:
        return f"{m['mean']:.2f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]"

    lines = ["| kl_weight | recon_weight | KL nats (active/dims) | route acc. posterior / prior mean | z_usage from z / noise | "
             "posterior route gap (prior std) | chunk follows z | demo route recalled: train / held-out starts | rollout follows z | both routes from prior | route coverage | success (seeds 2000..) |",
             "|---:|---:|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc = r["route_accuracy"]
        lines.append(
            f"| {r['kl_weight']:g} | {r.get('recon_weight', 0):g} | {r['kl']['kl']:.3f} ({r['kl']['active_dims']}/{r['kl']['latent_dim']}) | "
            f"{acc['posterior_mean']['0']:.2f} / {acc['prior_mean']['0']:.2f} | "
            f"{r['z_usage']['from_z']['mean']:.3f} / {r['z_usage']['from_noise']['mean']:.3f} | "
            f"{ci(r['posterior_route_gap'])} | {ci(r['chunk_follows_z'])} | "
            f"{ci(r['route_recall']['train'])} / {ci(r['route_recall']['heldout'])} | {ci(r['rollout_follows_z'])} | {ci(r['both_routes_from_prior'])} | "
            f"{ci(r['route_coverage'])} | {round(r['success'] * r['episodes'])}/{r['episodes']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
