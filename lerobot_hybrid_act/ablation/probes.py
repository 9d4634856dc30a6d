"""The ablation's in-process evaluation of a trained checkpoint, with the metrics of ``metrics.py``.

``evaluate_checkpoint`` loads a checkpoint as LeRobot does (``get_policy_class(type).from_pretrained`` +
``make_pre_post_processors(config, pretrained_path=...)``) and computes chunk fidelity and diversity on held-out demos,
latent probes, in-process rollouts (smoothness, docking routes and collisions) and inference cost; docking-specific
outcome/route metrics reuse ``lerobot_hybrid_act.docking.metrics``.

- ``z_usage`` (hybrid_act_c): ``pairwise_diversity`` of K chunks decoded from K prior draws of z with one shared
  diffusion noise (``from_z``) vs from one z with K noises (``from_noise``): does the denoiser use z at all?
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .metrics import (
    action_smoothness,
    best_of_k_mse,
    chunk_mse,
    kl_stats,
    mean_of_k_mse,
    nearest_centroid_loo_accuracy,
    pairwise_diversity,
    same_route_fraction,
    summarize,
)


# ------------------------------------------------------------------------------------ checkpoint loading
def load_checkpoint(path, temporal_ensemble_coeff: float | None = None, **overrides):
    """(policy, preprocessor, postprocessor) exactly as lerobot-eval builds them."""
    import lerobot_hybrid_act  # noqa: F401  (registers our policy types)
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    cfg = PreTrainedConfig.from_pretrained(path)
    cfg.device = "cpu"
    if temporal_ensemble_coeff is not None:
        cfg.temporal_ensemble_coeff = temporal_ensemble_coeff
        cfg.n_action_steps = 1
    for k, v in overrides.items():
        setattr(cfg, k, v)
    policy = get_policy_class(cfg.type).from_pretrained(path, config=cfg)
    policy.eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(path))
    return policy, pre, post


def obs_batch(state, env_state):
    import torch

    return {"observation.state": torch.as_tensor(np.asarray(state), dtype=torch.float32).reshape(1, -1),
            "observation.environment_state": torch.as_tensor(np.asarray(env_state), dtype=torch.float32).reshape(1, -1)}


class HeldOut:
    """Held-out demos (a recorded LeRobotDataset) as arrays: per frame state, env_state, action, episode, route."""

    def __init__(self, root: Path):
        import pandas as pd

        files = sorted(Path(root, "data").rglob("*.parquet"))
        df = pd.concat([pd.read_parquet(f) for f in files]).sort_values("index")
        self.state = np.stack(df["observation.state"].to_numpy()).astype(np.float32)
        self.env_state = np.stack(df["observation.environment_state"].to_numpy()).astype(np.float32)
        self.action = np.stack(df["action"].to_numpy()).astype(np.float32)
        self.episode = df["episode_index"].to_numpy()
        self.frame = df["frame_index"].to_numpy()
        self.route = (np.stack(df["episode.route"].to_numpy()).reshape(-1).astype(int)
                      if "episode.route" in df else np.full(len(df), -1))

    def chunk(self, i: int, T: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth actions i..i+T-1 of frame i's episode, padded (mask False) past the episode end."""
        ep = self.episode[i]
        idx = np.arange(i, i + T)
        valid = (idx < len(self.episode)) & (self.episode[np.minimum(idx, len(self.episode) - 1)] == ep)
        idx = np.where(valid, idx, i)
        return self.action[np.minimum(idx, len(self.action) - 1)], valid

    def prev(self, i: int) -> int:
        return i - 1 if i > 0 and self.episode[i - 1] == self.episode[i] else i

    def spread_frames(self, n: int) -> np.ndarray:
        """Up to n frame indices spread evenly over all held-out frames (the frames every chunk metric uses)."""
        return np.linspace(0, len(self.state) - 1, num=min(n, len(self.state))).astype(int)

    def episode_starts(self) -> np.ndarray:
        return np.flatnonzero(self.frame == 0)


def load_action_stats(dataset_root: Path) -> tuple[np.ndarray, np.ndarray]:
    stats = json.loads(Path(dataset_root, "meta", "stats.json").read_text())
    mean = np.asarray(stats["action"]["mean"], dtype=np.float64)
    std = np.maximum(np.asarray(stats["action"]["std"], dtype=np.float64), 1e-6)
    return mean, std


class ChunkSampler:
    """Chunks (unnormalised, (B, T, A)) for one observation from any of the ablation's policy types."""

    def __init__(self, policy, pre, post):
        self.policy, self.pre, self.post = policy, pre, post
        self.type = policy.config.type

    def normalize(self, state, env_state) -> dict:
        b = self.pre(obs_batch(state, env_state))
        return {k: v for k, v in b.items() if k.startswith("observation.")}

    def encode(self, hold: HeldOut, i: int) -> dict:
        b = self.normalize(hold.state[i], hold.env_state[i])
        if self.type == "diffusion":
            import torch

            p = hold.prev(i)
            bp = self.normalize(hold.state[p], hold.env_state[p])
            b = {k: torch.stack([bp[k], b[k]], dim=1) for k in b}
        return b

    def sample(self, batch: dict, k: int, seed: int):
        """k chunks (k, T, A) in the unnormalised action space."""
        import torch

        out = []
        for j in range(k):
            torch.manual_seed(seed * 1000 + j)
            self.policy.reset()
            if self.type.startswith("hybrid_act"):
                c = self.policy.predict_action_chunk(batch, generator=torch.Generator().manual_seed(seed * 1000 + j))
            else:
                c = self.policy.predict_action_chunk(batch)
            out.append(c[0])
        return self.unnormalise(torch.stack(out))

    def sample_z_vs_noise(self, batch: dict, k: int, seed: int):
        """hybrid_act_c: (k chunks for k prior draws of z and one noise, k chunks for one z and k noises)."""
        import torch

        gen = lambda j: torch.Generator().manual_seed(seed * 1000 + j)  # noqa: E731
        zs = [self.policy.sample_style(batch, gen(j)) for j in range(k)]
        by_z = torch.cat([self.policy.predict_action_chunk(batch, z=z, generator=gen(0)) for z in zs])
        by_noise = torch.cat([self.policy.predict_action_chunk(batch, z=zs[0], generator=gen(j)) for j in range(k)])
        return self.unnormalise(by_z), self.unnormalise(by_noise)

    def unnormalise(self, c):
        """(k, T, A) normalised chunks -> float64 array in the dataset's action units."""
        kk, T, A = c.shape
        flat = self.post(c.reshape(kk * T, A))
        return flat.reshape(kk, T, A).detach().cpu().numpy().astype(np.float64)


def chunk_metrics(sampler: ChunkSampler, hold: HeldOut, stats, n_obs: int, k: int, steps: int) -> dict:
    """Chunk fidelity and diversity on ``n_obs`` held-out frames spread evenly over the held-out demos."""
    mean, std = stats
    idx = hold.spread_frames(n_obs)
    stochastic = sampler.type != "act"
    mse, best, meank, div = [], [], [], []
    for n, i in enumerate(idx):
        gt, valid = hold.chunk(int(i), steps)
        samples = sampler.sample(sampler.encode(hold, int(i)), k if stochastic else 1, seed=n)
        T = min(steps, samples.shape[1])
        s = (samples[:, :T] - mean) / std
        g = (gt[:T] - mean) / std
        mse.append(chunk_mse(s[0], g, valid[:T]))
        if stochastic:
            best.append(best_of_k_mse(s, g, valid[:T]))
            meank.append(mean_of_k_mse(s, g, valid[:T]))
            div.append(pairwise_diversity(s))
    return {
        "chunk_mse": summarize(mse),
        "best_of_k_mse": summarize(best) if stochastic else None,
        "mean_of_k_mse": summarize(meank) if stochastic else None,
        "diversity": summarize(div) if stochastic else {"mean": 0.0, "ci": [0.0, 0.0], "n": len(idx)},
        "k": k if stochastic else 1,
        "steps": steps,
    }


def z_usage(sampler: ChunkSampler, hold: HeldOut, stats, n_obs: int, k: int, steps: int) -> dict:
    """hybrid_act_c: does the denoiser use z? Chunk diversity from z alone vs from the diffusion noise alone.

    On the same held-out frames as ``chunk_metrics``: ``from_z`` decodes K prior draws z_1..z_K with one shared
    initial noise, ``from_noise`` decodes one z with K initial noises (``pairwise_diversity``, standardised
    actions). A denoiser that ignores z has ``from_z`` ~ 0 whatever the KL or the latent probes say.
    """
    mean, std = stats
    idx = hold.spread_frames(n_obs)
    from_z, from_noise = [], []
    for n, i in enumerate(idx):
        by_z, by_noise = sampler.sample_z_vs_noise(sampler.encode(hold, int(i)), k, seed=n)
        T = min(steps, by_z.shape[1])
        from_z.append(pairwise_diversity((by_z[:, :T] - mean) / std))
        from_noise.append(pairwise_diversity((by_noise[:, :T] - mean) / std))
    return {"from_z": summarize(from_z), "from_noise": summarize(from_noise), "k": k, "steps": steps}


def inference_ms(sampler: ChunkSampler, hold: HeldOut, n: int = 20) -> dict:
    """Wall-clock ms of one chunk (batch 1, preprocessing excluded) over n calls after 2 warm-up calls."""
    b = sampler.encode(hold, 0)
    for _ in range(2):
        sampler.sample(b, 1, seed=0)
    t = []
    for j in range(n):
        t0 = time.perf_counter()
        sampler.sample(b, 1, seed=j)
        t.append(1000 * (time.perf_counter() - t0))
    return {"ms_per_chunk": float(np.median(t)), "n": n}


# ---------------------------------------------------------------------------------------- latent probes
def latent_probe(policy, pre, hold: HeldOut, steps_chunk: int, offsets=(0, 10, 20)) -> dict:
    """KL / active dims on held-out chunks, and how well the latent predicts the docking route.

    act: its CVAE posterior q(z|a, state) vs N(0, I); hybrid_act_c: q(z|a, obs) vs the learned prior
    p(z|obs) (``policy.style_kl``: one column per latent term); hybrid_act_b: z = f(obs). Route prediction uses the
    held-out episodes' frame at each offset (steps after the start): posterior means (act, C) or f(obs) (B).
    """
    import torch

    t = policy.config.type
    if t not in ("act", "hybrid_act_b", "hybrid_act_c"):
        return {}

    def batch_for(idx):
        b = {"observation.state": [], "observation.environment_state": [], "action": [], "action_is_pad": []}
        for i in idx:
            a, valid = hold.chunk(int(i), steps_chunk)
            b["observation.state"].append(hold.state[i])
            b["observation.environment_state"].append(hold.env_state[i])
            b["action"].append(a)
            b["action_is_pad"].append(~valid)
        b = {k: torch.as_tensor(np.stack(v)) for k, v in b.items()}
        b = {k: (v.float() if v.dtype != torch.bool else v) for k, v in b.items()}
        return b

    def latents(idx):
        raw = batch_for(idx)
        nb = pre({k: v for k, v in raw.items()})
        nb["action_is_pad"] = raw["action_is_pad"]
        with torch.no_grad():
            if t == "act":
                model = policy.model
                model.training = True  # only the top module: enables the VAE branch, keeps dropout off
                try:
                    _, (mu, logvar) = model(nb)
                finally:
                    model.training = False
                kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
                return {"posterior_mean": mu, "kl": kl}
            if t == "hybrid_act_b":
                return {"f_obs": policy.sample_style(nb)}
            return {"posterior_mean": policy.infer_style(nb), "kl": policy.style_kl(nb)}

    out: dict = {"type": t}
    idx_all = hold.spread_frames(256)
    lat = latents(idx_all)
    if "kl" in lat:
        out["kl"] = kl_stats(lat["kl"].cpu().numpy())
    starts = hold.episode_starts()
    route_acc, scatter = {}, {}
    for off in offsets:
        idx = []
        for s in starts:
            i = s + off
            if i < len(hold.episode) and hold.episode[i] == hold.episode[s]:
                idx.append(i)
        if len(idx) < 3:
            continue
        lat = latents(np.asarray(idx))
        y = hold.route[np.asarray(idx)]
        for key, z in lat.items():
            if key == "kl":
                continue
            z = z.cpu().numpy()
            route_acc.setdefault(key, {})[str(off)] = nearest_centroid_loo_accuracy(z, y)
            if off == offsets[0]:
                scatter[key] = {"z": np.round(z, 4).tolist(), "route": y.tolist()}
    out["route_accuracy"] = route_acc
    out["z_scatter"] = scatter
    return out


# ------------------------------------------------------------------------------------- docking rollouts
def policy_act_fn(policy, pre, post):
    import torch

    def act(obs):
        with torch.no_grad():
            a = policy.select_action(pre(obs_batch(obs["agent_pos"], obs["environment_state"])))
            return post(a)[0].cpu().numpy()

    return act


def docking_rollouts(policy, pre, post, seeds, chunk_len: int | None, torch_seed: int = 0) -> dict:
    """Roll out on docking from each seed: outcome summary, per-episode smoothness and trajectories."""
    import torch

    from lerobot_hybrid_act.docking.env import DockingEnv
    from lerobot_hybrid_act.docking.metrics import collect_rollout, summarize_rollouts

    env = DockingEnv(render_mode=None)
    act = policy_act_fn(policy, pre, post)
    rolls = []
    for j, s in enumerate(seeds):
        policy.reset()
        torch.manual_seed(torch_seed + j)
        rolls.append(collect_rollout(env, act, seed=int(s)))
    env.close()
    summ = summarize_rollouts(rolls)
    smooth = [action_smoothness(r["actions"], chunk_len) for r in rolls]
    return {"summary": summ, "smooth": smooth, "rollouts": rolls}


def aloha_rollouts(policy, pre, post, task: str, seeds, chunk_len: int | None, torch_seed: int = 0) -> dict:
    """Roll out on aloha_fast (state-only) from each seed: success, max reward, per-episode smoothness."""
    import torch

    from lerobot_hybrid_act.aloha import EPISODE_LENGTH as ALOHA_EPISODE_LENGTH
    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    env = AlohaFastEnv(task=task, cameras=(), render_video=False)
    act = policy_act_fn(policy, pre, post)
    succ, maxr, smooth = [], [], []
    for j, s in enumerate(seeds):
        policy.reset()
        torch.manual_seed(torch_seed + j)
        obs, _ = env.reset(seed=int(s))
        acts, rewards, done = [], [], False
        while not done and len(acts) < ALOHA_EPISODE_LENGTH:
            a = act(obs)
            acts.append(a)
            obs, r, done, _, info = env.step(a)
            rewards.append(r)
        succ.append(bool(info["is_success"]))
        maxr.append(float(max(rewards)))
        smooth.append(action_smoothness(np.asarray(acts), chunk_len))
    env.close()
    return {"summary": {"success_rate": float(np.mean(succ)), "max_reward_mean": float(np.mean(maxr)),
                        "n": len(seeds)}, "smooth": smooth}


def _smooth_summary(smooth: list[dict]) -> dict:
    keys = ("mean_step", "jerk_rms", "boundary_jump", "interior_step", "boundary_ratio")
    return {k: summarize([s[k] for s in smooth]) for k in keys}


def route_diversity(policy, pre, post, start_seeds, R: int, control_z: int) -> dict:
    """Docking: route coverage/entropy over R rollouts from each start; controllability for B/C."""
    import torch

    from lerobot_hybrid_act.docking.env import DockingEnv
    from lerobot_hybrid_act.docking.metrics import collect_rollout, mode_stats, route_label

    env = DockingEnv(render_mode=None)
    act = policy_act_fn(policy, pre, post)
    per_start, trajs = [], []
    control_groups, free_groups, follows = [], [], []
    t = policy.config.type
    for s in start_seeds:
        labels = []
        for r in range(R):
            policy.reset()
            torch.manual_seed(10_000 + r)
            ro = collect_rollout(env, act, seed=int(s))
            lab = route_label(ro["xy"], ro["layout"])
            labels.append(lab)
            trajs.append({"start": int(s), "route": int(lab), "success": ro["success"],
                          "xy": np.round(ro["xy"], 3).tolist()})
        st = mode_stats(labels)
        per_start.append({"start_seed": int(s), **st, "labels": labels})
        free_groups.extend([labels[i : i + 2] for i in range(0, len(labels) - 1, 2)])
        if t in ("hybrid_act_b", "hybrid_act_c"):
            obs, _ = env.reset(seed=int(s))
            b = pre(obs_batch(obs["agent_pos"], obs["environment_state"]))
            for m in range(control_z):
                z = policy.sample_style(b, torch.Generator().manual_seed(20_000 + m))
                group = []
                for rep in range(2):
                    policy.reset()
                    policy.set_style(z)
                    torch.manual_seed(30_000 + 10 * m + rep)
                    ro = collect_rollout(env, act, seed=int(s))
                    group.append(route_label(ro["xy"], ro["layout"]))
                policy.set_style(None)
                control_groups.append(group)
        if t == "hybrid_act_c":
            follows.extend(follows_posterior_z(policy, pre, post, env, int(s)))
    env.close()
    out = {
        "coverage": summarize([p["coverage"] for p in per_start]),
        "entropy": summarize([p["entropy"] for p in per_start]),
        "per_start": per_start,
        "R": R,
        "trajectories": trajs,
        # baseline for controllability: two independent rollouts (fresh z) from the same start
        "same_route_free": same_route_fraction(free_groups),
    }
    if control_groups:
        out["same_route_held_z"] = same_route_fraction(control_groups)
        out["held_z_groups"] = control_groups
    if follows:
        out["follows_posterior_z"] = float(np.mean(follows))
        out["follows_posterior_z_n"] = len(follows)
    return out


def follows_posterior_z(policy, pre, post, env, seed: int) -> list[bool]:
    """hybrid_act_c, docking: from start ``seed``, for each route r, z = ``infer_style`` of the expert's first chunk
    along r (same layout and start), held for a whole rollout: does the rollout take route r?"""
    import torch

    from lerobot_hybrid_act.docking.expert import ROUTE_LEFT, ROUTE_RIGHT, run_expert_episode
    from lerobot_hybrid_act.docking.metrics import collect_rollout, route_label

    act = policy_act_fn(policy, pre, post)
    T = policy.config.chunk_size
    out = []
    for route in (ROUTE_LEFT, ROUTE_RIGHT):
        demo = run_expert_episode(env, seed, route=route)
        obs = demo["observations"][0]
        chunk = demo["actions"][:T]
        pad = np.zeros(T, dtype=bool)
        if len(chunk) < T:
            pad[len(chunk):] = True
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], T - len(chunk), axis=0)])
        batch = pre({**obs_batch(obs["agent_pos"], obs["environment_state"]),
                     "action": torch.as_tensor(chunk, dtype=torch.float32).unsqueeze(0)})
        batch["action_is_pad"] = torch.as_tensor(pad).unsqueeze(0)
        z = policy.infer_style(batch)
        policy.reset()
        policy.set_style(z)
        torch.manual_seed(40_000 + seed + route)
        ro = collect_rollout(env, act, seed=seed)
        policy.set_style(None)
        out.append(route_label(ro["xy"], ro["layout"]) == route)
    return out


def _set_threads() -> None:
    """One intra-op thread per process unless OMP_NUM_THREADS says otherwise (see runner._env)."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))


def fidelity_steps(task) -> int:
    """Chunk steps compared in fidelity/diversity metrics: the executed part (at most 50 on ALOHA)."""
    return task.sizes.n_action_steps if task.is_docking else min(50, task.sizes.n_action_steps)


def z_usage_of_checkpoint(ckpt: Path, task, profile, heldout_root: Path, dataset_root: Path) -> dict:
    """``z_usage`` of a hybrid_act_c checkpoint (for runs that finished before the metric existed)."""
    _set_threads()
    sampler = ChunkSampler(*load_checkpoint(ckpt))
    return z_usage(sampler, HeldOut(heldout_root), load_action_stats(dataset_root), profile.fidelity_obs,
                   profile.k_samples, fidelity_steps(task))


def evaluate_checkpoint(ckpt: Path, task, profile, heldout_root: Path, dataset_root: Path,
                        log=print) -> dict:
    """All in-process metrics of one checkpoint (see the module docstring)."""
    _set_threads()
    res: dict = {}
    policy, pre, post = load_checkpoint(ckpt)
    cfg = policy.config
    t = cfg.type
    hold = HeldOut(heldout_root)
    stats = load_action_stats(dataset_root)
    steps = fidelity_steps(task)
    sampler = ChunkSampler(policy, pre, post)
    t0 = time.perf_counter()
    res["fidelity"] = chunk_metrics(sampler, hold, stats, profile.fidelity_obs, profile.k_samples, steps)
    res["inference"] = inference_ms(sampler, hold)
    log(f"  fidelity/inference {time.perf_counter() - t0:.0f}s")
    t0 = time.perf_counter()
    res["latent"] = latent_probe(policy, pre, hold, cfg.chunk_size if t != "diffusion" else cfg.horizon)
    if t == "hybrid_act_c":
        res["latent"]["z_usage"] = z_usage(sampler, hold, stats, profile.fidelity_obs, profile.k_samples, steps)
    log(f"  latent {time.perf_counter() - t0:.0f}s")
    chunk_len = cfg.n_action_steps
    seeds = [task.rollout_seed + i for i in range(profile.smooth_episodes)]
    t0 = time.perf_counter()
    if task.is_docking:
        ro = docking_rollouts(policy, pre, post, seeds, chunk_len)
        res["rollouts"] = {"summary": {k: v for k, v in ro["summary"].items() if k != "route_labels"},
                           "smoothness": _smooth_summary(ro["smooth"]), "seeds": seeds}
        res["routes"] = route_diversity(
            policy, pre, post, [task.route_seed + i for i in range(profile.route_starts)],
            profile.route_rollouts, profile.control_z,
        )
    else:
        ro = aloha_rollouts(policy, pre, post, task.name.removeprefix("aloha_"), seeds, chunk_len)
        res["rollouts"] = {"summary": ro["summary"], "smoothness": _smooth_summary(ro["smooth"]), "seeds": seeds}
    log(f"  rollouts {time.perf_counter() - t0:.0f}s")
    if t != "diffusion" and profile.ensemble_eval:
        t0 = time.perf_counter()
        pe, pre_e, post_e = load_checkpoint(ckpt, temporal_ensemble_coeff=profile.ensemble_coeff)
        if task.is_docking:
            ro = docking_rollouts(pe, pre_e, post_e, seeds, chunk_len)  # same indices as without
            res["rollouts_ensemble"] = {
                "summary": {k: v for k, v in ro["summary"].items() if k != "route_labels"},
                "smoothness": _smooth_summary(ro["smooth"]), "seeds": seeds}
        else:
            ro = aloha_rollouts(pe, pre_e, post_e, task.name.removeprefix("aloha_"), seeds, chunk_len)
            res["rollouts_ensemble"] = {"summary": ro["summary"], "smoothness": _smooth_summary(ro["smooth"]),
                                        "seeds": seeds}
        log(f"  ensemble rollouts {time.perf_counter() - t0:.0f}s")
    return res
