"""`aloha_fast`: LeRobot env type for ALOHA sim with gym-aloha's physics/reward/success at a fraction of the cost.

    lerobot-eval --env.type=aloha_fast --env.task=transfer_cube --env.observation_height=96 \\
        --env.observation_width=128 --env.cameras='[top]' ...      # or --env.cameras='[]' for state-only

Observations (mapped by LeRobot's `preprocess_observation`): `observation.state` (14 joint positions),
`observation.environment_state` (cube pose 7 / peg+socket poses 14) and `observation.images.<camera>` for each
camera in `cameras` (rendered at `observation_height` x `observation_width` with cheap render settings; none
when `cameras` is empty). `render()` (lerobot-eval videos) shows `render_camera` at the visualization size;
`render_video=false` makes it return black frames at no cost.

This module must stay cheap to import (it is imported with the plugin): MuJoCo, dm_control and gym_aloha are
imported in `create_envs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

from ..vec_env import make_vec_env
from . import CAMERAS, ENV_STATE_DIM, EPISODE_LENGTH, TASKS
_TASK_ALIASES = {
    "transfer_cube": "transfer_cube",
    "aloha_transfer_cube": "transfer_cube",
    "AlohaTransferCube-v0": "transfer_cube",
    "insertion": "insertion",
    "aloha_insertion": "insertion",
    "AlohaInsertion-v0": "insertion",
}


def _make_aloha_fast_env(episode_length: int, **kwargs):
    import gymnasium as gym

    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    return gym.wrappers.TimeLimit(AlohaFastEnv(**kwargs), max_episode_steps=episode_length)


@EnvConfig.register_subclass("aloha_fast")
@dataclass
class AlohaFastEnvConfig(EnvConfig):
    task: str | None = "transfer_cube"
    fps: int = 50
    episode_length: int = EPISODE_LENGTH
    # Cameras the policy reads (observation.images.<camera>); [] for state-only policies.
    cameras: list[str] = field(default_factory=lambda: ["top"])
    observation_height: int = 480
    observation_width: int = 640
    # What render() returns (lerobot-eval writes it to videos).
    render_camera: str = "top"
    visualization_height: int = 240
    visualization_width: int = 320
    render_video: bool = True
    render_mode: str = "rgb_array"
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in _TASK_ALIASES:
            raise ValueError(f"aloha_fast: unknown task {self.task!r}; expected one of {list(TASKS)}")
        self.task = _TASK_ALIASES[self.task]
        if isinstance(self.cameras, str):
            self.cameras = [c.strip() for c in self.cameras.split(",") if c.strip()]
        self.cameras = [c for c in self.cameras if c.lower() != "none"]
        for cam in [*self.cameras, self.render_camera]:
            if cam not in CAMERAS:
                raise ValueError(f"aloha_fast: unknown camera {cam!r}; expected one of {list(CAMERAS)}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"aloha_fast: duplicate cameras in {self.cameras}")
        for name in ("observation_height", "observation_width", "visualization_height", "visualization_width"):
            v = getattr(self, name)
            if not 8 <= int(v) <= 4096:
                raise ValueError(f"aloha_fast: {name} must be in [8, 4096], got {v}")
        if self.episode_length < 1:
            raise ValueError(f"aloha_fast: episode_length must be >= 1, got {self.episode_length}")

        self.features = {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(14,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(14,)),
            "environment_state": PolicyFeature(type=FeatureType.ENV, shape=(ENV_STATE_DIM[self.task],)),
        }
        self.features_map = {
            ACTION: ACTION,
            "agent_pos": OBS_STATE,
            "environment_state": OBS_ENV_STATE,
        }
        for cam in self.cameras:
            self.features[f"pixels/{cam}"] = PolicyFeature(
                type=FeatureType.VISUAL, shape=(self.observation_height, self.observation_width, 3)
            )
            self.features_map[f"pixels/{cam}"] = f"{OBS_IMAGES}.{cam}"

    @property
    def gym_kwargs(self) -> dict:
        return {
            "task": self.task,
            "cameras": list(self.cameras),
            "observation_height": self.observation_height,
            "observation_width": self.observation_width,
            "visualization_height": self.visualization_height,
            "visualization_width": self.visualization_width,
            "render_camera": self.render_camera,
            "render_mode": self.render_mode,
            "render_video": self.render_video,
        }

    def create_envs(self, n_envs: int, use_async_envs: bool = False):
        make_one = partial(_make_aloha_fast_env, self.episode_length, **self.gym_kwargs)
        return {self.type: {0: make_vec_env(make_one, n_envs, use_async_envs)}}
