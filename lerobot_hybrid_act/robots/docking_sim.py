"""``DockingSim`` (``--robot.type=docking_sim``): the docking task (``lerobot_hybrid_act.docking``) as a
LeRobot ``Robot`` (see ``sim_robot`` for episodes, latency and the feature rules).

=====================================================  =====================================
robot key                                              dataset feature (``dataset_features``)
=====================================================  =====================================
``x.pos y.pos cos_h.pos sin_h.pos v.vel omega.vel``    ``observation.state`` [0:6]
``port_x.pos ... obstacle_r.pos`` (7)                  ``observation.state`` [6:13]
``top`` (H, W, 3) uint8                                ``observation.images.top``
``accel.vel yaw_rate.vel`` (actions, in [-1, 1])       ``action``
=====================================================  =====================================

Datasets for this robot are recorded with ``hybrid-act-record --task docking_sim`` (``DockingSimRecorder``):
the docking demos in exactly this layout. Each episode's result adds ``collision`` and ``travelled`` (path
length in metres) to the common fields.
"""

import math

import numpy as np
from lerobot.utils.constants import OBS_IMAGES

from ..docking.env import ACTION_NAMES, ENV_STATE_NAMES, STATE_NAMES, DockingEnv
from ..docking.recording import ROUTE_KEY, STYLE_KEY, DockingRecorder
from .config_docking_sim import DockingSimConfig
from .sim_robot import SimRobot, robot_dataset_features, robot_key, to_robot_frame

CAMERA = "top"
_VELOCITIES = ("v", "omega", "accel", "yaw_rate")
STATE_KEYS = [robot_key(n, _VELOCITIES) for n in (*STATE_NAMES, *ENV_STATE_NAMES)]
ACTION_KEYS = [robot_key(n, _VELOCITIES) for n in ACTION_NAMES]


class DockingSim(SimRobot):
    config_class = DockingSimConfig
    name = "docking_sim"
    state_keys = STATE_KEYS
    action_keys = ACTION_KEYS

    def _make_env(self) -> DockingEnv:
        return DockingEnv(
            obs_type="pixels_state" if self.config.camera else "state",
            image_size=(self.config.image_height, self.config.image_width),
            render_mode=None,
            episode_length=self.config.episode_length,
            jitter=self.config.jitter,
        )

    def _cameras(self) -> dict:
        return {CAMERA: (self.config.image_height, self.config.image_width, 3)} if self.config.camera else {}

    def _state(self, raw_obs: dict) -> np.ndarray:
        return np.concatenate([raw_obs["agent_pos"], raw_obs["environment_state"]])

    def _start_episode(self) -> None:
        super()._start_episode()
        self._travelled = 0.0
        self._position = self.env.pose[:2]

    def _on_step(self, reward: float) -> None:
        position = self.env.pose[:2]
        self._travelled += math.dist(position, self._position)
        self._position = position

    def _clip(self, action: np.ndarray) -> np.ndarray:
        return np.clip(action, -1.0, 1.0)

    def _result(self, info: dict) -> dict:
        # travelled: path length in metres, i.e. the actions moved the vehicle
        return {"collision": bool(info["collision"]), "travelled": round(self._travelled, 4)}


def dataset_features(config: DockingSimConfig, use_video: bool = True) -> dict:
    """The LeRobotDataset features of a ``docking_sim`` recording (what ``lerobot-record`` builds from the
    robot's features), plus the docking labels ``episode.route`` / ``episode.style``."""
    robot = DockingSim(config)
    labels = DockingRecorder().features(None, [])
    return {
        **robot_dataset_features(robot.observation_features, robot.action_features, use_video),
        ROUTE_KEY: labels[ROUTE_KEY],
        STYLE_KEY: labels[STYLE_KEY],
    }


class DockingSimRecorder(DockingRecorder):
    """``hybrid-act-record --task docking_sim``: the docking demos in ``docking_sim``'s feature layout
    (state and environment state concatenated into ``observation.state``), so a policy trained on them can
    be deployed with ``--robot.type=docking_sim``."""

    use_video = True

    def features(self, image_size=None, cameras=None) -> dict:
        recorded = super().features(image_size, cameras)  # validates cameras and image size
        camera = recorded.get(f"{OBS_IMAGES}.{CAMERA}")
        h, w, _ = camera["shape"] if camera else (96, 96, 3)
        config = DockingSimConfig(camera=camera is not None, image_height=h, image_width=w)
        return dataset_features(config, self.use_video)

    def record_episode(self, seed: int, noise: float, image_size=None, cameras=None) -> tuple[list[dict], bool, dict]:
        frames, success, info = super().record_episode(seed, noise, image_size, cameras)
        return [to_robot_frame(f) for f in frames], success, info
