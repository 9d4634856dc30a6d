"""LeRobot env type ``docking`` (issue 4): ``--env.type=docking``.

Imported whenever the plugin is imported; it declares the config, and ``create_envs`` builds
``lerobot_hybrid_act.docking.env.DockingEnv``.

Env observation keys -> LeRobot features (via ``features_map`` and ``preprocess_observation``):

=====================  ===================================  =========================
env key                LeRobot key                          shape
=====================  ===================================  =========================
``agent_pos``          ``observation.state``                (6,)  x, y, cos h, sin h, v, omega
``environment_state``  ``observation.environment_state``    (7,)  port x, y, cos, sin; obstacle x, y, r
``pixels/top``         ``observation.images.top``           (H, W, 3) uint8, only obs_type=pixels_state
``action``             ``action``                           (2,)  accel, yaw rate in [-1, 1]
=====================  ===================================  =========================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

from ..vec_env import make_vec_env
from .env import ACTION_DIM, ENV_STATE_DIM, EPISODE_LENGTH, OBS_TYPES, STATE_DIM, DockingEnv


@EnvConfig.register_subclass("docking")
@dataclass
class DockingEnvConfig(EnvConfig):
    task: str | None = "Docking-v0"
    fps: int = 10
    episode_length: int = EPISODE_LENGTH
    obs_type: str = "state"  # "state" or "pixels_state"
    observation_height: int = 96
    observation_width: int = 96
    render_size: int = 256  # frames of lerobot-eval videos (env.render())
    render_mode: str = "rgb_array"
    jitter: float = 1.0  # layout randomization scale (0 = always the nominal layout)
    features: dict[str, PolicyFeature] = field(
        default_factory=lambda: {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
            "environment_state": PolicyFeature(type=FeatureType.ENV, shape=(ENV_STATE_DIM,)),
        }
    )
    features_map: dict[str, str] = field(
        default_factory=lambda: {
            ACTION: ACTION,
            "agent_pos": OBS_STATE,
            "environment_state": OBS_ENV_STATE,
            "pixels/top": f"{OBS_IMAGES}.top",
        }
    )

    def __post_init__(self):
        if self.obs_type not in OBS_TYPES:
            raise ValueError(f"docking obs_type must be one of {OBS_TYPES}, got {self.obs_type!r}")
        if self.fps <= 0 or self.episode_length <= 0:
            raise ValueError(f"fps and episode_length must be > 0, got {self.fps}, {self.episode_length}")
        if self.obs_type == "pixels_state":
            self.features["pixels/top"] = PolicyFeature(
                type=FeatureType.VISUAL, shape=(self.observation_height, self.observation_width, 3)
            )

    @property
    def gym_kwargs(self) -> dict:
        return {
            "obs_type": self.obs_type,
            "image_size": (self.observation_height, self.observation_width),
            "render_size": self.render_size,
            "render_mode": self.render_mode,
            "episode_length": self.episode_length,
            "fps": self.fps,
            "jitter": self.jitter,
        }

    def create_envs(self, n_envs: int, use_async_envs: bool = False):
        kwargs = self.gym_kwargs
        DockingEnv(**kwargs)  # validate the arguments eagerly, in this process
        return {self.type: {0: make_vec_env(partial(DockingEnv, **kwargs), n_envs, use_async_envs)}}
