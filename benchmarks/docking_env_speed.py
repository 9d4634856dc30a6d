"""Docking env throughput (issue 4 asks >= 10k steps/s state-only on this CPU).

    /work/venv/bin/python benchmarks/docking_env_speed.py [--steps 50000] [--image-size 96]

Measures single-env steps/s (random actions in [-1, 1], reset on termination) for obs_type="state" and
"pixels_state", env.render() frames/s, a gymnasium SyncVectorEnv built by the LeRobot `docking` env config,
and the scripted expert (episodes/s and success rate). Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lerobot_hybrid_act.docking.env import DockingEnv
from lerobot_hybrid_act.docking.expert import run_expert_episode


def bench_env(obs_type: str, steps: int, image_size: int) -> dict:
    env = DockingEnv(obs_type=obs_type, image_size=image_size)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    env.reset(seed=0)
    episodes = 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
            episodes += 1
    dt = time.perf_counter() - t0
    return {"bench": f"env_{obs_type}", "steps": steps, "episodes": episodes, "steps_per_s": round(steps / dt)}


def bench_render(frames: int, size: int) -> dict:
    env = DockingEnv(render_size=size)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(frames):
        env.step([0.2, 0.1])
        env.render()
    dt = time.perf_counter() - t0
    return {"bench": "render", "size": size, "frames": frames, "frames_per_s": round(frames / dt)}


def bench_vector(n_envs: int, steps: int) -> dict:
    import lerobot_hybrid_act  # noqa: F401
    from lerobot.envs.factory import make_env, make_env_config

    vec = make_env(make_env_config("docking"), n_envs=n_envs)["docking"][0]
    vec.reset(seed=list(range(1000, 1000 + n_envs)))
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, n_envs, 2)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        vec.step(a)
    dt = time.perf_counter() - t0
    vec.close()
    return {"bench": "sync_vector_env", "n_envs": n_envs, "env_steps_per_s": round(steps * n_envs / dt)}


def bench_expert(episodes: int, noise: float) -> dict:
    env = DockingEnv()
    t0 = time.perf_counter()
    eps = [run_expert_episode(env, s, noise=noise, record_obs=False) for s in range(episodes)]
    dt = time.perf_counter() - t0
    succ = np.array([e["success"] for e in eps])
    steps = np.array([e["steps"] for e in eps])
    return {
        "bench": "expert",
        "episodes": episodes,
        "noise": noise,
        "success_rate": float(succ.mean()),
        "left_fraction": float(np.mean([e["route"] == 0 for e in eps])),
        "steps_mean": float(steps.mean()),
        "steps_max": int(steps.max()),
        "episodes_per_s": round(episodes / dt, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--render-size", type=int, default=256)
    p.add_argument("--n-envs", type=int, default=8)
    p.add_argument("--expert-episodes", type=int, default=200)
    p.add_argument("--noise", type=float, default=0.05)
    args = p.parse_args()
    results = [
        bench_env("state", args.steps, args.image_size),
        bench_env("pixels_state", max(1000, args.steps // 10), args.image_size),
        bench_render(1000, args.render_size),
        bench_vector(args.n_envs, max(100, args.steps // (10 * args.n_envs))),
        bench_expert(args.expert_episodes, args.noise),
    ]
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
