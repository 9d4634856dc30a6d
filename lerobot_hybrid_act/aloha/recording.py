"""``hybrid-act-record`` tasks ``aloha_transfer_cube`` and ``aloha_insertion`` (see ``lerobot_hybrid_act.record``).

Each episode: the scripted end-effector demonstration for seed ``s`` (no rendering), then its joint-space
replay in :class:`~lerobot_hybrid_act.aloha.env.AlohaFastEnv` rendering only the requested cameras; the
replay's observations and joint actions are the recorded frames. Success = the replay reaches reward 4.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gym_aloha.constants import JOINTS

from . import CAMERAS, ENV_STATE_DIM, EPISODE_LENGTH, scripted
from .env import TASK_DESCRIPTIONS, AlohaFastEnv

ENV_STATE_NAMES = {
    "transfer_cube": [f"cube_{k}" for k in ("x", "y", "z", "qw", "qx", "qy", "qz")],
    "insertion": [f"{o}_{k}" for o in ("peg", "socket") for k in ("x", "y", "z", "qw", "qx", "qy", "qz")],
}


class _AlohaRecorder:
    aloha_task: str = ""
    fps: int = 50
    default_image_size: tuple[int, int] = (480, 640)  # gym-aloha's / LeRobot's aloha_sim datasets
    episode_length: int = EPISODE_LENGTH

    def __init__(self):
        self.task_description = TASK_DESCRIPTIONS[self.aloha_task]
        self._demonstrator: scripted.ScriptedDemonstrator | None = None
        self._env: AlohaFastEnv | None = None
        self._env_key = None

    def features(self, image_size: tuple[int, int], cameras: Sequence[str]) -> dict:
        for cam in cameras:
            if cam not in CAMERAS:
                raise ValueError(f"Unknown camera {cam!r} for ALOHA; expected one of {list(CAMERAS)}.")
        h, w = image_size
        feats = {
            "observation.state": {"dtype": "float32", "shape": (14,), "names": list(JOINTS)},
            "observation.environment_state": {
                "dtype": "float32",
                "shape": (ENV_STATE_DIM[self.aloha_task],),
                "names": ENV_STATE_NAMES[self.aloha_task],
            },
            "action": {"dtype": "float32", "shape": (14,), "names": list(JOINTS)},
        }
        for cam in cameras:
            feats[f"observation.images.{cam}"] = {
                "dtype": "video",
                "shape": (h, w, 3),
                "names": ["height", "width", "channels"],
            }
        return feats

    def _get_env(self, image_size, cameras) -> AlohaFastEnv:
        key = (tuple(image_size), tuple(cameras))
        if self._env is None or self._env_key != key:
            if self._env is not None:
                self._env.close()
            h, w = image_size
            self._env = AlohaFastEnv(self.aloha_task, cameras=list(cameras), observation_height=h, observation_width=w)
            self._env_key = key
        return self._env

    def record_episode(self, seed: int, noise: float, image_size, cameras) -> tuple[list[dict], bool, dict]:
        if self._demonstrator is None:
            self._demonstrator = scripted.ScriptedDemonstrator(self.aloha_task, self.episode_length)
        episode = self._demonstrator.run(seed, noise)
        env = self._get_env(image_size, cameras)
        frames: list[dict] = []

        def on_step(t, obs, action, reward):
            frame = {
                "observation.state": obs["agent_pos"].astype(np.float32),
                "observation.environment_state": obs["environment_state"].astype(np.float32),
                "action": np.asarray(action, dtype=np.float32),
            }
            for cam in cameras:
                frame[f"observation.images.{cam}"] = obs["pixels"][cam]
            frames.append(frame)

        max_reward, first_success = scripted.replay(env, episode, on_step)
        success = max_reward >= 4
        info = {
            "seed": int(seed),
            "max_reward": float(max_reward),
            "first_success_step": first_success,
            "end_effector_max_reward": float(episode.ee_max_reward),
        }
        return frames, success, info

    def close(self):
        if self._env is not None:
            self._env.close()
            self._env = None


class AlohaTransferCubeRecorder(_AlohaRecorder):
    aloha_task = "transfer_cube"


class AlohaInsertionRecorder(_AlohaRecorder):
    aloha_task = "insertion"
