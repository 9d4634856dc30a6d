"""Steps/s of gym-aloha's default env vs `aloha_fast`, in the same run (issue 3 targets: >= 10x with one
120x160 camera, >= 100x state-only).

    MUJOCO_GL=egl python benchmarks/aloha_env_speed.py [--task transfer_cube] [--ref-steps 50] [--fast-steps 1000]

gym-aloha is measured as LeRobot's `--env.type=aloha` builds it (obs_type=pixels_agent_pos; its task renders
top/angle/front_close at 480x640 on every step). Actions replay the start of a scripted demonstration so the
arms move and contacts happen like in a real episode.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402


def steps_per_second(env, actions: np.ndarray, seed: int = 0, render: bool = False) -> float:
    env.reset(seed=seed)
    env.step(actions[0])  # warm-up (GL context creation etc.)
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
        if render:
            env.render()
    return len(actions) / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="transfer_cube", choices=["transfer_cube", "insertion"])
    p.add_argument("--ref-steps", type=int, default=50)
    p.add_argument("--fast-steps", type=int, default=1000)
    args = p.parse_args()

    from gym_aloha.env import AlohaEnv

    from lerobot_hybrid_act.aloha.env import AlohaFastEnv
    from lerobot_hybrid_act.aloha.scripted import ScriptedDemonstrator

    demo = ScriptedDemonstrator(args.task).run(seed=0).joint_actions
    n = max(args.ref_steps, args.fast_steps)
    actions = np.concatenate([demo] * (n // len(demo) + 1))[:n]

    ref = AlohaEnv(args.task, obs_type="pixels_agent_pos")
    ref_sps = steps_per_second(ref, actions[: args.ref_steps])
    print(f"gym-aloha default (pixels_agent_pos, renders 3x 480x640/step): {ref_sps:8.1f} steps/s")

    results = {}
    configs = {
        "aloha_fast, 1 camera 120x160": dict(cameras=["top"], observation_height=120, observation_width=160),
        "aloha_fast, 1 camera 96x128": dict(cameras=["top"], observation_height=96, observation_width=128),
        "aloha_fast, 1 camera 480x640": dict(cameras=["top"], observation_height=480, observation_width=640),
        "aloha_fast, state-only": dict(cameras=[]),
    }
    for name, kw in configs.items():
        env = AlohaFastEnv(args.task, **kw)
        results[name] = steps_per_second(env, actions[: args.fast_steps])
        env.close()
    env = AlohaFastEnv(args.task, cameras=[])
    results["aloha_fast, state-only + render() 240x320 (eval video)"] = steps_per_second(
        env, actions[: args.fast_steps], render=True
    )
    env.close()
    for name, sps in results.items():
        print(f"{name:<58s}: {sps:8.1f} steps/s  = {sps / ref_sps:6.1f}x gym-aloha")

    ratio_cam = results["aloha_fast, 1 camera 120x160"] / ref_sps
    ratio_state = results["aloha_fast, state-only"] / ref_sps
    print(
        f"\nratio (1 camera 120x160): {ratio_cam:.1f}x (target >= 10x: {'OK' if ratio_cam >= 10 else 'MISSED'}); "
        f"ratio (state-only): {ratio_state:.1f}x (target >= 100x: {'OK' if ratio_state >= 100 else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
