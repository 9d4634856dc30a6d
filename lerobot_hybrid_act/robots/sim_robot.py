"""``SimRobot``: a simulated task behind LeRobot's ``Robot`` interface, for LeRobot's deployment tools.

One ``send_action`` is one control step of the simulator. When an episode ends (success, failure or
``episode_length`` steps) the robot records the result, logs it and starts the next layout at once (seed
``config.seed + episode index``), so ``robot.episodes`` and ``config.episode_log`` hold the success of every
episode a deployment tool ran, although those tools know nothing of episodes. (Nor do they reset the policy
at an episode boundary: the rest of a chunk queued during one episode is played at the start of the next.)

Features: LeRobot builds a robot's dataset and policy features from the robot's own keys
(``hw_to_dataset_features``): every scalar goes into ``observation.state`` and every ``(H, W, 3)`` entry
becomes ``observation.images.<key>``; there is no ``observation.environment_state``, and ``lerobot-rollout``
keeps only scalars named ``*.pos`` / ``*.vel``. So a sim robot exposes its task's recorded
``observation.state`` names followed by the ``observation.environment_state`` names, each with one of those
suffixes, plus its cameras. The ``*SimRecorder`` classes (``hybrid-act-record --task docking_sim`` ...)
record the scripted demos in that layout (``to_robot_frame``).
"""

import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lerobot.robots.config import RobotConfig
from lerobot.robots.robot import Robot
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE, OBS_STR
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from lerobot.utils.feature_utils import hw_to_dataset_features

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class SimRobotConfig(RobotConfig):
    """What every sim robot takes (the robot types' configs add their task's options)."""

    episode_length: int  # control steps per episode; each robot type defaults to its task's
    seed: int = 1000  # layout seed of the first episode (lerobot-eval's seeds start at 1000 too)
    # Artificial latency. An action sent at control step t is applied at step t + actuation_delay_steps
    # (zero actions fill the gap at the start of an episode); get_observation() takes
    # observation_latency_s seconds of wall time, like a slow sensor or link.
    actuation_delay_steps: int = 0
    observation_latency_s: float = 0.0
    # One JSON line per finished episode: {"episode", "seed", "success", "steps", ...task-specific}.
    episode_log: Path | None = None
    # One JSON line per applied action: {"episode", "step", "action": [...]} (what the simulator received, after
    # any actuation delay), written as it happens: to inspect or test what a deployment tool sent.
    action_log: Path | None = None

    def __post_init__(self):
        super().__post_init__()
        name = self.type
        if self.episode_length < 1:
            raise ValueError(f"{name} episode_length must be >= 1, got {self.episode_length}")
        if self.actuation_delay_steps < 0:
            raise ValueError(f"{name} actuation_delay_steps must be >= 0, got {self.actuation_delay_steps}")
        if self.observation_latency_s < 0:
            raise ValueError(f"{name} observation_latency_s must be >= 0, got {self.observation_latency_s}")


def robot_key(name: str, velocities: tuple[str, ...] = ()) -> str:
    """A recorded feature name as a robot key: ``<name>.vel`` for the given velocities, else ``<name>.pos``."""
    return f"{name}.vel" if name in velocities else f"{name}.pos"


def robot_dataset_features(observation_features: dict, action_features: dict, use_video: bool = True) -> dict:
    """The LeRobotDataset features a recording with this robot has (what ``lerobot-record`` builds)."""
    return {
        **hw_to_dataset_features(action_features, ACTION, use_video),
        **hw_to_dataset_features(observation_features, OBS_STR, use_video),
    }


def to_robot_frame(frame: dict) -> dict:
    """A recorded frame in the robot layout: ``observation.environment_state`` appended to ``observation.state``."""
    frame = dict(frame)
    frame[OBS_STATE] = np.concatenate([frame[OBS_STATE], frame.pop(OBS_ENV_STATE)]).astype(np.float32)
    return frame


class SimRobot(Robot):
    """Subclasses set ``config_class``, ``name``, ``state_keys``, ``action_keys`` and implement the hooks
    ``_make_env``, ``_cameras``, ``_state`` (raw env observation -> state vector) and ``_result``."""

    state_keys: list[str]
    action_keys: list[str]

    def __init__(self, config: SimRobotConfig):
        super().__init__(config)
        self.config = config
        self.env = None
        self.episodes: list[dict] = []  # one result per finished episode
        self.actions_received = 0
        self._raw_obs: dict | None = None
        self._steps = 0
        self._pending: deque[np.ndarray] = deque()
        self._action_log = None

    # ------------------------------------------------------------------ task hooks
    def _make_env(self):
        raise NotImplementedError

    def _cameras(self) -> dict[str, tuple[int, int, int]]:
        """Camera name -> (H, W, 3)."""
        raise NotImplementedError

    def _state(self, raw_obs: dict) -> np.ndarray:
        raise NotImplementedError

    def _result(self, info: dict) -> dict:
        """Task-specific fields of a finished episode's result (besides episode, seed, success, steps)."""
        return {}

    def _on_step(self, reward: float) -> None:
        """Called after each simulator step with its reward (e.g. to accumulate a per-episode measure)."""

    def _clip(self, action: np.ndarray) -> np.ndarray:
        """The action the simulator actually applies (returned by ``send_action``)."""
        return action

    # ------------------------------------------------------------------ Robot interface
    @property
    def observation_features(self) -> dict:
        return {**dict.fromkeys(self.state_keys, float), **self._cameras()}

    @property
    def action_features(self) -> dict:
        return dict.fromkeys(self.action_keys, float)

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
        self.env = self._make_env()
        if self.config.action_log is not None:
            self._action_log = open(self.config.action_log, "a", buffering=1)  # line-buffered: readable live
        self._start_episode()

    @property
    def episode_seed(self) -> int:
        return self.config.seed + len(self.episodes)

    def _start_episode(self) -> None:
        self._raw_obs, _ = self.env.reset(seed=self.episode_seed)
        self._steps = 0
        zero = np.zeros(len(self.action_keys), dtype=np.float32)
        self._pending = deque([zero] * self.config.actuation_delay_steps)

    def _finish_episode(self, success: bool, info: dict) -> None:
        result = {
            "episode": len(self.episodes),
            "seed": self.episode_seed,
            "success": bool(success),
            "steps": self._steps,
            **self._result(info),
        }
        self.episodes.append(result)
        logger.info(
            "%s episode %d (seed %d): success=%s in %d steps",
            self.name, result["episode"], result["seed"], result["success"], result["steps"],
        )  # fmt: skip
        if self.config.episode_log is not None:
            with open(self.config.episode_log, "a") as f:
                f.write(json.dumps(result) + "\n")

    def get_observation(self) -> dict:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        if self.config.observation_latency_s > 0:
            time.sleep(self.config.observation_latency_s)
        state = self._state(self._raw_obs)
        obs = {key: float(v) for key, v in zip(self.state_keys, state, strict=True)}
        for cam in self._cameras():
            obs[cam] = self._raw_obs["pixels"][cam].copy()  # writable, for torch.from_numpy
        return obs

    def send_action(self, action: dict) -> dict:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        if set(action) != set(self.action_keys):
            hint = ""
            if set(action) <= set(self.state_keys):
                hint = (
                    " lerobot-rollout sends the observed `.pos` values back at shutdown to return an arm to its"
                    f" start pose; {self.name} cannot do that: pass --return_to_initial_position=false."
                )
            raise ValueError(f"{self.name} expects action keys {self.action_keys}, got {sorted(action)}.{hint}")
        sent = self._clip(np.array([action[k] for k in self.action_keys], dtype=np.float32))
        self.actions_received += 1
        self._pending.append(sent)
        applied = self._pending.popleft()
        if self._action_log is not None:
            line = {"episode": len(self.episodes), "step": self._steps, "action": applied.tolist()}
            self._action_log.write(json.dumps(line) + "\n")
        self._raw_obs, reward, terminated, truncated, info = self.env.step(applied)
        self._steps += 1
        self._on_step(float(reward))
        if terminated or truncated or self._steps >= self.config.episode_length:
            self._finish_episode(info["is_success"], info)
            self._start_episode()
        return {key: float(v) for key, v in zip(self.action_keys, sent, strict=True)}

    def disconnect(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self} is not connected")
        if self._steps > 0:
            logger.info("%s: episode %d left unfinished after %d steps", self.name, len(self.episodes), self._steps)
        self.env.close()
        self.env = None
        if self._action_log is not None:
            self._action_log.close()
            self._action_log = None
