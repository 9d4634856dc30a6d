"""``DockingSim``: the docking task (``lerobot_hybrid_act.docking``) as a LeRobot ``Robot``.

It lets LeRobot's deployment tools drive a policy offline: ``lerobot-rollout --robot.type=docking_sim``
and the async ``RobotClient``. One ``send_action`` is one control step of the simulator; when an episode
ends (success, collision or ``episode_length`` steps) the robot logs the result and starts the next layout
at once, so ``robot.episodes`` (and ``config.episode_log``) hold the success of every episode.

Features
--------
LeRobot builds a robot's dataset and policy features from the robot's own keys
(``hw_to_dataset_features``): every scalar goes into ``observation.state`` and every ``(H, W, 3)`` entry
becomes ``observation.images.<key>``; there is no ``observation.environment_state``. ``lerobot-rollout``
also keeps only scalars named ``*.pos`` / ``*.vel``. So the robot exposes the docking dataset's
``observation.state`` names followed by its ``observation.environment_state`` names, with those suffixes:

=====================================================  =====================================
robot key                                              dataset feature (``dataset_features``)
=====================================================  =====================================
``x.pos y.pos cos_h.pos sin_h.pos v.vel omega.vel``    ``observation.state`` [0:6]
``port_x.pos ... obstacle_r.pos`` (7)                  ``observation.state`` [6:13]
``top`` (H, W, 3) uint8                                ``observation.images.top``
``accel.vel yaw_rate.vel`` (actions, in [-1, 1])       ``action``
=====================================================  =====================================

Datasets for this robot are recorded with ``hybrid-act-record --task docking_sim`` (``DockingSimRecorder``):
the docking demos in exactly this layout.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque

import numpy as np
from lerobot.robots.robot import Robot
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE, OBS_STR
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from lerobot.utils.feature_utils import hw_to_dataset_features

from ..docking.env import ACTION_NAMES, ENV_STATE_NAMES, STATE_NAMES, DockingEnv
from ..docking.recording import ROUTE_KEY, STYLE_KEY, DockingRecorder
from .config_docking_sim import DockingSimConfig

logger = logging.getLogger(__name__)

CAMERA = "top"
_VELOCITIES = ("v", "omega", "accel", "yaw_rate")  # named `.vel`, the rest `.pos`


def _robot_key(name: str) -> str:
    return f"{name}.vel" if name in _VELOCITIES else f"{name}.pos"


STATE_KEYS = [_robot_key(n) for n in (*STATE_NAMES, *ENV_STATE_NAMES)]
ACTION_KEYS = [_robot_key(n) for n in ACTION_NAMES]


def observation_features(config: DockingSimConfig) -> dict:
    features: dict = dict.fromkeys(STATE_KEYS, float)
    if config.camera:
        features[CAMERA] = (config.image_height, config.image_width, 3)
    return features


def action_features() -> dict:
    return dict.fromkeys(ACTION_KEYS, float)


def dataset_features(config: DockingSimConfig, use_video: bool = True) -> dict:
    """The LeRobotDataset features of a ``docking_sim`` recording (what ``lerobot-record`` builds from the
    robot's features), plus the docking labels ``episode.route`` / ``episode.style``."""
    labels = DockingRecorder().features(None, [])
    return {
        **hw_to_dataset_features(action_features(), ACTION, use_video),
        **hw_to_dataset_features(observation_features(config), OBS_STR, use_video),
        ROUTE_KEY: labels[ROUTE_KEY],
        STYLE_KEY: labels[STYLE_KEY],
    }


class DockingSim(Robot):
    config_class = DockingSimConfig
    name = "docking_sim"

    def __init__(self, config: DockingSimConfig):
        super().__init__(config)
        self.config = config
        self.env: DockingEnv | None = None
        self.episodes: list[dict] = []  # one result per finished episode
        self.actions_received = 0
        self._raw_obs: dict | None = None
        self._pending: deque[np.ndarray] = deque()

    @property
    def observation_features(self) -> dict:
        return observation_features(self.config)

    @property
    def action_features(self) -> dict:
        return action_features()

    @property
    def is_connected(self) -> bool:
        return self.env is not None

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        pass

    def configure(self) -> None:
        pass

    def connect(self, calibrate: bool = True) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self} is already connected")
        self.env = DockingEnv(
            obs_type="pixels_state" if self.config.camera else "state",
            image_size=(self.config.image_height, self.config.image_width),
            render_mode=None,
            episode_length=self.config.episode_length,
            jitter=self.config.jitter,
        )
        self._start_episode()

    @property
    def episode_seed(self) -> int:
        return self.config.seed + len(self.episodes)

    def _start_episode(self) -> None:
        self._raw_obs, _ = self.env.reset(seed=self.episode_seed)
        zero = np.zeros(len(ACTION_KEYS), dtype=np.float32)
        self._pending = deque([zero] * self.config.actuation_delay_steps)
        self._travelled = 0.0

    def _finish_episode(self, info: dict) -> None:
        result = {
            "episode": len(self.episodes),
            "seed": self.episode_seed,
            "success": bool(info["is_success"]),
            "collision": bool(info["collision"]),
            "steps": int(info["steps"]),
            "travelled": round(self._travelled, 4),  # path length in metres: the actions moved the vehicle
        }
        self.episodes.append(result)
        logger.info("docking_sim episode %(episode)d (seed %(seed)d): success=%(success)s in %(steps)d steps", result)
        if self.config.episode_log is not None:
            with open(self.config.episode_log, "a") as f:
                f.write(json.dumps(result) + "\n")

    def get_observation(self) -> dict:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        if self.config.observation_latency_s > 0:
            time.sleep(self.config.observation_latency_s)
        values = np.concatenate([self._raw_obs["agent_pos"], self._raw_obs["environment_state"]])
        obs = {key: float(v) for key, v in zip(STATE_KEYS, values, strict=True)}
        if self.config.camera:
            obs[CAMERA] = self._raw_obs["pixels"][CAMERA].copy()  # writable, for torch.from_numpy
        return obs

    def send_action(self, action: dict) -> dict:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        if set(action) != set(ACTION_KEYS):
            hint = ""
            if set(action) <= set(STATE_KEYS):
                hint = (
                    " lerobot-rollout sends the observed `.pos` values back at shutdown to return an arm to its"
                    " start pose; a simulated vehicle cannot do that: pass --return_to_initial_position=false."
                )
            raise ValueError(f"{self.name} expects action keys {ACTION_KEYS}, got {sorted(action)}.{hint}")
        sent = np.clip(np.array([action[k] for k in ACTION_KEYS], dtype=np.float32), -1.0, 1.0)
        self.actions_received += 1
        self._pending.append(sent)
        x, y, _, _ = self.env.pose
        self._raw_obs, _, terminated, truncated, info = self.env.step(self._pending.popleft())
        self._travelled += math.hypot(self.env.pose[0] - x, self.env.pose[1] - y)
        if terminated or truncated:
            self._finish_episode(info)
            self._start_episode()
        return {key: float(v) for key, v in zip(ACTION_KEYS, sent, strict=True)}

    def disconnect(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        if self.env.elapsed_steps > 0:
            logger.info("docking_sim: episode %d left unfinished after %d steps", len(self.episodes), self.env.elapsed_steps)
        self.env.close()
        self.env = None


class DockingSimRecorder(DockingRecorder):
    """``hybrid-act-record --task docking_sim``: the docking demos in ``docking_sim``'s feature layout
    (state and environment state concatenated into ``observation.state``), so a policy trained on them can
    be deployed with ``--robot.type=docking_sim``."""

    use_video = True

    def _config(self, image_size, cameras) -> DockingSimConfig:
        cams = super().features(image_size, cameras)  # validates cameras and image size
        shape = cams.get(f"{OBS_IMAGES}.{CAMERA}", {}).get("shape", (96, 96, 3))
        return DockingSimConfig(
            camera=f"{OBS_IMAGES}.{CAMERA}" in cams,
            image_height=shape[0],
            image_width=shape[1],
            episode_length=self.episode_length,
        )

    def features(self, image_size=None, cameras=None) -> dict:
        return dataset_features(self._config(image_size, cameras), self.use_video)

    def record_episode(self, seed: int, noise: float, image_size=None, cameras=None) -> tuple[list[dict], bool, dict]:
        frames, success, info = super().record_episode(seed, noise, image_size, cameras)
        for frame in frames:
            frame[OBS_STATE] = np.concatenate([frame[OBS_STATE], frame.pop(OBS_ENV_STATE)])
        return frames, success, info
