"""Where does hybrid_act_c fail on paired-route docking, and what makes it commit to a route? Checkpoint probes on the
design episodes (seeds 3000..), never the headline ones (1000..).

    HF_HUB_OFFLINE=1 python benchmarks/mode_commitment.py handover --checkpoint <C checkpoint>
    HF_HUB_OFFLINE=1 python benchmarks/mode_commitment.py posterior --checkpoint <C checkpoint>
    HF_HUB_OFFLINE=1 python benchmarks/mode_commitment.py fit-prior --checkpoint <Gaussian C> --dataset <its demos> \
        --out <new checkpoint>
    HF_HUB_OFFLINE=1 python benchmarks/mode_commitment.py components --checkpoint <C checkpoint>
    HF_HUB_OFFLINE=1 python benchmarks/mode_commitment.py settings --checkpoint <C checkpoint> \
        --settings '[{"hold_steps": 10, "hold_scale": 4.0}]'

Every command appends its rows to ``--out-json`` (default ``benchmarks/results/mode_commitment.json``):

- ``handover``: the scripted expert drives the first K control steps (route r = seed % 2, mid style), then the
  policy. If success is high from a small K, everything after the first second is solved and the failures are the
  route decision itself.
- ``posterior``: z = ``infer_style`` of the expert's first chunk along route r, moved away from the Gaussian prior's
  mean by ``scale`` (``z = mean + scale * (z_post - mean)``), held for the first ``--hold-steps`` control steps, then
  the prior's most likely z (``z_mode="mean"``). Does a route's posterior z steer the rollout onto that route?
- ``fit-prior``: fits ``latent_prior="fitted_mixture"``'s sampling head post hoc on a Gaussian C checkpoint, or fits
  a jointly trained head further (the other weights are kept; the head's loss cannot change them) and saves a new
  checkpoint. The head is the only thing that differs, so the comparison isolates the sampling prior.
- ``components``: where the sampling prior's components lie at an episode's first observation, on the line from
  the posterior z of the expert's first chunk along the left route (0) to that along the right route (1): each
  component's weight and position, before and after ``hold_scale``. ``between_mass`` is the weight of the
  components whose scaled mean still lies between 0.25 and 0.75, where the decoder averages the routes.
- ``settings``: in-process success for a list of inference-setting overrides (``hold_steps``, ``hold_scale``,
  ``z_mode``, ``temporal_ensemble_coeff``, ...).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lerobot_hybrid_act.ablation.metrics import action_smoothness
from lerobot_hybrid_act.ablation.probes import load_checkpoint, obs_batch, policy_act_fn
from lerobot_hybrid_act.docking.env import DockingEnv
from lerobot_hybrid_act.docking.expert import ROUTE_LEFT, ROUTE_RIGHT, DockingExpert, run_expert_episode
from lerobot_hybrid_act.docking.metrics import collect_rollout, route_label, summarize_rollouts

DESIGN_SEED = 3000  # disjoint from lerobot-eval's 1000.. and from the ablation's other seed ranges


def _summary(rolls: list[dict], routes: list[int] | None = None) -> dict:
    s = summarize_rollouts(rolls)
    out = {"n": len(rolls), "success_rate": s["success_rate"], "collision_rate": s["collision_rate"],
           "mode_averaging_rate": s["mode_averaging_rate"], "route_fractions": s["routes"]["fractions"],
           "jerk_rms": float(np.nanmean([action_smoothness(r["actions"])["jerk_rms"] for r in rolls]))}
    if routes is not None:
        out["follows_route"] = float(np.mean([route_label(r["xy"], r["layout"]) == k for r, k in zip(rolls, routes)]))
    return out


def _load(ckpt: Path, ensemble: float | None = None, **overrides):
    return load_checkpoint(ckpt, temporal_ensemble_coeff=ensemble, **overrides)


def handover(ckpt: Path, seeds: list[int], steps: list[int]) -> list[dict]:
    policy, pre, post = _load(ckpt)
    act = policy_act_fn(policy, pre, post)
    env = DockingEnv(render_mode=None)
    rows = []
    for k in steps:
        rolls = []
        for j, seed in enumerate(seeds):
            policy.reset()
            torch.manual_seed(j)
            state = {"t": 0, "expert": None}

            def drive(obs, state=state, seed=seed, k=k):
                if state["expert"] is None:
                    state["expert"] = DockingExpert.from_observation(obs["agent_pos"], obs["environment_state"],
                                                                     route=seed % 2, style=0.5)
                state["t"] += 1
                a_policy = act(obs)  # the policy runs every step, so its queue is where it would be
                return state["expert"].act_obs(obs["agent_pos"]) if state["t"] <= k else a_policy

            rolls.append(collect_rollout(env, drive, seed=seed))
        rows.append({"probe": "handover", "expert_steps": k, **_summary(rolls)})
        print(rows[-1], flush=True)
    return rows


def posterior(ckpt: Path, seeds: list[int], scales: list[float], hold_steps: int) -> list[dict]:
    policy, pre, post = _load(ckpt, z_mode="mean")
    act = policy_act_fn(policy, pre, post)
    env = DockingEnv(render_mode=None)
    T = policy.config.chunk_size
    held = {}
    for seed in seeds:
        demo = run_expert_episode(env, seed, route=seed % 2)
        obs = demo["observations"][0]
        batch = pre({**obs_batch(obs["agent_pos"], obs["environment_state"]),
                     "action": torch.as_tensor(demo["actions"][:T]).unsqueeze(0)})
        batch["action_is_pad"] = torch.zeros(1, T, dtype=torch.bool)
        held[seed] = (policy.infer_style(batch), policy.style_centre(batch))
    rows = []
    for scale in scales:
        rolls = []
        for j, seed in enumerate(seeds):
            z_post, centre = held[seed]
            policy.reset()
            policy.set_style(centre + scale * (z_post - centre))
            torch.manual_seed(j)
            state = {"t": 0}

            def drive(obs, state=state):
                state["t"] += 1
                if state["t"] == hold_steps + 1:
                    policy.set_style(None)  # z_mode="mean": the prior's most likely z from here on
                return act(obs)

            rolls.append(collect_rollout(env, drive, seed=seed))
        policy.set_style(None)
        rows.append({"probe": "posterior", "scale": scale, "hold_steps": hold_steps,
                     **_summary(rolls, [s % 2 for s in seeds])})
        print(rows[-1], flush=True)
    return rows


def components(ckpt: Path, seeds: list[int]) -> list[dict]:
    policy, pre, _ = _load(ckpt)
    env = DockingEnv(render_mode=None)
    T, scale = policy.config.chunk_size, policy.config.hold_scale
    per_seed = []
    for seed in seeds:
        z_route = []
        for route in (ROUTE_LEFT, ROUTE_RIGHT):
            demo = run_expert_episode(env, seed, route=route)
            obs = demo["observations"][0]
            batch = pre({**obs_batch(obs["agent_pos"], obs["environment_state"]),
                         "action": torch.as_tensor(demo["actions"][:T]).unsqueeze(0)})
            batch["action_is_pad"] = torch.zeros(1, T, dtype=torch.bool)
            z_route.append(policy.infer_style(batch)[0])
        weights, means = (x[0] for x in policy.style_components(batch))
        centre = policy.style_centre(batch)[0]
        axis = z_route[1] - z_route[0]

        def position(z: torch.Tensor) -> float:
            return float((z - z_route[0]) @ axis / (axis @ axis))

        comps = [{"weight": float(w), "position": position(m), "scaled_position": position(centre + scale * (m - centre))}
                 for w, m in sorted(zip(weights, means), key=lambda wm: -float(wm[0]))]
        per_seed.append({"seed": seed, "centre": position(centre), "components": comps,
                         "between_mass": sum(c["weight"] for c in comps if 0.25 < c["scaled_position"] < 0.75)})
    row = {"probe": "components", "hold_scale": scale, "n": len(seeds),
           "between_mass_mean": float(np.mean([p["between_mass"] for p in per_seed])),
           "heaviest_position_mean": float(np.mean([p["components"][0]["position"] for p in per_seed])),
           "heaviest_weight_mean": float(np.mean([p["components"][0]["weight"] for p in per_seed])),
           "per_seed": per_seed}
    print({k: v for k, v in row.items() if k != "per_seed"}, flush=True)
    return [row]


def settings(ckpt: Path, seeds: list[int], variants: list[dict]) -> list[dict]:
    rows = []
    env = DockingEnv(render_mode=None)
    for overrides in variants:
        overrides = dict(overrides)
        ensemble = overrides.pop("temporal_ensemble_coeff", None)
        policy, pre, post = _load(ckpt, ensemble, **overrides)
        act = policy_act_fn(policy, pre, post)
        rolls = []
        for j, seed in enumerate(seeds):
            policy.reset()
            torch.manual_seed(j)
            rolls.append(collect_rollout(env, act, seed=seed))
        rows.append({"probe": "settings", "overrides": {**overrides, "temporal_ensemble_coeff": ensemble},
                         **_summary(rolls)})
        print(rows[-1], flush=True)
    return rows


def fit_prior(ckpt: Path, dataset: Path, out: Path, steps: int, batch_size: int = 64, lr: float = 1e-3) -> list[dict]:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.policies.factory import get_policy_class

    torch.manual_seed(0)
    policy, pre, _ = _load(ckpt)
    cfg = policy.config
    if cfg.latent_prior == "fitted_mixture":  # a jointly fitted head: fit it further, from where training left it
        fitted = policy
    elif cfg.latent_prior == "gaussian":
        cfg.latent_prior = "fitted_mixture"
        fitted = get_policy_class(cfg.type)(cfg)
        missing, unexpected = fitted.load_state_dict(policy.state_dict(), strict=False)
        expected = {f"model.style.fitted.{k}" for k in fitted.model.style.fitted.state_dict()}
        if set(missing) - expected or unexpected:
            raise SystemExit(f"unexpected weights: missing {sorted(set(missing) - expected)}, unexpected {unexpected}")
    else:
        raise SystemExit(f"fit-prior needs a 'gaussian' or 'fitted_mixture' checkpoint, got {cfg.latent_prior!r}")
    head = fitted.model.style.fitted
    ds = LeRobotDataset("local/fit_prior", root=dataset,
                        delta_timestamps={"action": [i / ds_fps(dataset) for i in range(cfg.chunk_size)]})
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True)
    opt = torch.optim.Adam(head.parameters(), lr=lr)  # only the head moves; its loss cannot reach the rest
    fitted.train()
    it, t0, nll = iter(loader), time.time(), []
    for step in range(steps):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        loss, info = fitted.forward(pre(batch))
        fitted.zero_grad()
        loss.backward()  # reaches the head only through its own NLL; only the head is stepped
        opt.step()
        nll.append(info["prior_fit_nll"])
        if step % 500 == 0:
            print(f"step {step}: fit NLL {nll[-1]:.2f}", flush=True)
    fitted.eval()
    shutil.copytree(ckpt, out, dirs_exist_ok=True)  # processors and the rest of the checkpoint
    fitted.save_pretrained(out)
    row = {"probe": "fit-prior", "from": str(ckpt), "to": str(out), "steps": steps,
           "fit_nll_last100": float(np.mean(nll[-100:])), "s": time.time() - t0}
    print(row, flush=True)
    return [row]


def ds_fps(root: Path) -> int:
    return int(json.loads((root / "meta" / "info.json").read_text())["fps"])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("probe", choices=["handover", "posterior", "components", "settings", "fit-prior"])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--first-seed", type=int, default=DESIGN_SEED)
    p.add_argument("--expert-steps", default="0,10,20,30")
    p.add_argument("--scales", default="0,1,2,4")
    p.add_argument("--hold-steps", type=int, default=10)
    p.add_argument("--settings", default="[{}]", help="JSON list of config overrides")
    p.add_argument("--dataset", type=Path, help="fit-prior: the checkpoint's training demos (LeRobotDataset root)")
    p.add_argument("--out", type=Path, help="fit-prior: where to write the new checkpoint")
    p.add_argument("--fit-steps", type=int, default=3000)
    p.add_argument("--out-json", type=Path, default=Path(__file__).parent / "results" / "mode_commitment.json")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if a.first_seed < DESIGN_SEED:
        raise SystemExit(f"--first-seed must be >= {DESIGN_SEED}: lower seeds are the ablation's evaluation episodes")
    seeds = list(range(a.first_seed, a.first_seed + a.episodes))
    if a.probe == "handover":
        rows = handover(a.checkpoint, seeds, [int(k) for k in a.expert_steps.split(",")])
    elif a.probe == "posterior":
        rows = posterior(a.checkpoint, seeds, [float(s) for s in a.scales.split(",")], a.hold_steps)
    elif a.probe == "components":
        rows = components(a.checkpoint, seeds)
    elif a.probe == "settings":
        rows = settings(a.checkpoint, seeds, json.loads(a.settings))
    else:
        if a.dataset is None or a.out is None:
            raise SystemExit("fit-prior needs --dataset and --out")
        rows = fit_prior(a.checkpoint, a.dataset, a.out, a.fit_steps)
    stamp = {"command": " ".join(["python"] + sys.argv), "checkpoint": str(a.checkpoint),
             "seeds": [seeds[0], seeds[-1]] if a.probe != "fit-prior" else None}
    old = json.loads(a.out_json.read_text()) if a.out_json.is_file() else []
    a.out_json.parent.mkdir(parents=True, exist_ok=True)
    a.out_json.write_text(json.dumps(old + [{**stamp, **r} for r in rows], indent=1))


if __name__ == "__main__":
    main()
