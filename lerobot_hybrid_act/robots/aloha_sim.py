"""``AlohaSim`` (``--robot.type=aloha_sim``): ALOHA sim (``lerobot_hybrid_act.aloha.env.AlohaFastEnv``) as a
LeRobot ``Robot`` (see ``sim_robot`` for episodes, latency and the feature rules).

==================================================  =====================================
robot key                                           dataset feature
==================================================  =====================================
``left_arm_waist.pos ... right_arm_gripper.pos``    ``observation.state`` [0:14] (joint positions)
``cube_x.pos ... cube_qz.pos`` (7; insertion: 14)   ``observation.state`` [14:]  (object poses)
``<camera>`` (H, W, 3) uint8, in ``camera_names``  ``observation.images.<camera>``
``left_arm_waist.pos ... right_arm_gripper.pos``    ``action`` (14 joint targets)
==================================================  =====================================

Datasets for this robot are recorded with ``hybrid-act-record --task aloha_sim_transfer_cube`` (or
``aloha_sim_insertion``): the scripted ALOHA demos in exactly this layout. Each episode's result adds
``max_reward`` (gym-aloha's 0-4 stages; 4 = success).
"""

import numpy as np
from gym_aloha.constants import JOINTS

from ..aloha.env import AlohaFastEnv
from ..aloha.recording import ENV_STATE_NAMES, AlohaInsertionRecorder, AlohaTransferCubeRecorder
from .config_aloha_sim import AlohaSimConfig
from .sim_robot import SimRobot, robot_dataset_features, robot_key, to_robot_frame

ACTION_KEYS = [robot_key(j) for j in JOINTS]


def state_keys(task: str) -> list[str]:
    return [robot_key(n) for n in (*JOINTS, *ENV_STATE_NAMES[task])]


class AlohaSim(SimRobot):
    config_class = AlohaSimConfig
    name = "aloha_sim"
    action_keys = ACTION_KEYS

    def __init__(self, config: AlohaSimConfig):
        super().__init__(config)
        self.state_keys = state_keys(config.task)

    def _make_env(self) -> AlohaFastEnv:
        return AlohaFastEnv(
            self.config.task,
            cameras=self.config.camera_names,
            observation_height=self.config.image_height,
            observation_width=self.config.image_width,
            render_video=False,
        )

    def _cameras(self) -> dict:
        return {cam: (self.config.image_height, self.config.image_width, 3) for cam in self.config.camera_names}

    def _state(self, raw_obs: dict) -> np.ndarray:
        return np.concatenate([raw_obs["agent_pos"], raw_obs["environment_state"]])

    def _start_episode(self) -> None:
        super()._start_episode()
        self._max_reward = 0.0

    def _on_step(self, reward: float) -> None:
        self._max_reward = max(self._max_reward, reward)

    def _result(self, info: dict) -> dict:
        return {"max_reward": self._max_reward}


def dataset_features(config: AlohaSimConfig, use_video: bool = True) -> dict:
    """The LeRobotDataset features of an ``aloha_sim`` recording (what ``lerobot-record`` builds)."""
    robot = AlohaSim(config)
    return robot_dataset_features(robot.observation_features, robot.action_features, use_video)


class _AlohaSimRecorder:
    """The scripted ALOHA demos (``hybrid-act-record --task aloha_<task>``) in ``aloha_sim``'s layout."""

    recorder_class: type
    use_video = True

    def __init__(self):
        self._recorder = self.recorder_class()
        self.fps = self._recorder.fps
        self.task_description = self._recorder.task_description
        self.default_image_size = self._recorder.default_image_size

    def features(self, image_size: tuple[int, int], cameras: list[str]) -> dict:
        self._recorder.features(image_size, cameras)  # validates cameras
        h, w = image_size
        config = AlohaSimConfig(task=self._recorder.aloha_task, camera_names=list(cameras), image_height=h, image_width=w)
        return dataset_features(config, self.use_video)

    def record_episode(self, seed: int, noise: float, image_size, cameras) -> tuple[list[dict], bool, dict]:
        frames, success, info = self._recorder.record_episode(seed, noise, image_size, cameras)
        return [to_robot_frame(f) for f in frames], success, info

    def close(self) -> None:
        self._recorder.close()


class AlohaSimTransferCubeRecorder(_AlohaSimRecorder):
    recorder_class = AlohaTransferCubeRecorder


class AlohaSimInsertionRecorder(_AlohaSimRecorder):
    recorder_class = AlohaInsertionRecorder
