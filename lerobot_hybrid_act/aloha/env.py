"""``AlohaFastEnv``: gym_aloha's physics, reward and success, rendering only what the policy reads.

Observation (a ``gymnasium.spaces.Dict``), keyed like LeRobot's ``preprocess_observation`` expects:

- ``agent_pos`` (14,) float64 -> ``observation.state`` (gym_aloha's ``qpos``: 6 joints + normalized gripper, x2);
- ``environment_state`` (7 or 14,) float64 -> ``observation.environment_state`` (cube / peg+socket poses);
- ``pixels/<camera>`` (H, W, 3) uint8 -> ``observation.images.<camera>``, only when ``cameras`` is non-empty.

``reset(seed=s)`` places the objects exactly as ``gym_aloha``'s ``reset(seed=s)`` does; ``step`` calls the same
dm_control environment step, so the same seed and actions give the same trajectory, rewards and success
(``terminated = is_success = reward == 4``). ``render()`` returns the ``render_camera`` at the visualization
size (for ``lerobot-eval`` videos).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from collections.abc import Sequence  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from . import CAMERAS, ENV_STATE_DIM, sim  # noqa: E402

TASK_DESCRIPTIONS = {
    "transfer_cube": "Pick up the red cube with the right arm and hand it over to the left arm.",
    "insertion": "Pick up the peg and the socket with both arms and insert the peg into the socket.",
}


class AlohaFastEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str = "transfer_cube",
        cameras: Sequence[str] = ("top",),
        observation_height: int = 480,
        observation_width: int = 640,
        visualization_height: int = 240,
        visualization_width: int = 320,
        render_camera: str = "top",
        render_mode: str = "rgb_array",
        render_video: bool = True,
    ):
        super().__init__()
        self.task = sim.check_task(task)
        self.task_description = TASK_DESCRIPTIONS[task]
        self.cameras = list(cameras)
        for cam in [*self.cameras, render_camera]:
            if cam not in CAMERAS:
                raise ValueError(f"Unknown camera {cam!r}; expected one of {list(CAMERAS)}.")
        for name, v in [
            ("observation_height", observation_height),
            ("observation_width", observation_width),
            ("visualization_height", visualization_height),
            ("visualization_width", visualization_width),
        ]:
            if int(v) < 8 or int(v) > 4096:
                raise ValueError(f"{name} must be in [8, 4096], got {v}")
        if render_mode != "rgb_array":
            raise ValueError(f"render_mode must be 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_height = int(observation_height)
        self.observation_width = int(observation_width)
        self.visualization_height = int(visualization_height)
        self.visualization_width = int(visualization_width)
        self.render_camera = render_camera
        self.render_video = bool(render_video)

        self._env = sim.make_environment(task, end_effector=False)
        self.physics = self._env.physics
        self._renderer = sim.Renderer(
            self.physics,
            max(self.observation_height, self.visualization_height),
            max(self.observation_width, self.visualization_width),
        )

        obs_spaces: dict[str, spaces.Space] = {
            "agent_pos": spaces.Box(low=-1000.0, high=1000.0, shape=(14,), dtype=np.float64),
            "environment_state": spaces.Box(
                low=-1000.0, high=1000.0, shape=(ENV_STATE_DIM[task],), dtype=np.float64
            ),
        }
        if self.cameras:
            obs_spaces["pixels"] = spaces.Dict(
                {
                    cam: spaces.Box(
                        low=0, high=255, shape=(self.observation_height, self.observation_width, 3), dtype=np.uint8
                    )
                    for cam in self.cameras
                }
            )
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = spaces.Box(low=-1, high=1, shape=(14,), dtype=np.float32)
        self.object_pose: np.ndarray | None = None

    # -- observation -----------------------------------------------------------------------------------
    def _format_obs(self, raw) -> dict:
        obs = {
            "agent_pos": np.asarray(raw["qpos"], dtype=np.float64).copy(),
            "environment_state": np.asarray(raw["env_state"], dtype=np.float64).copy(),
        }
        if self.cameras:
            obs["pixels"] = {
                cam: self._renderer.render(cam, self.observation_height, self.observation_width)
                for cam in self.cameras
            }
        return obs

    def render_camera_image(self, camera: str, height: int, width: int) -> np.ndarray:
        return self._renderer.render(camera, height, width)

    # -- gym API ---------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is None:
            # gym_aloha draws an unseeded pose; draw it from the env's RNG so that reset() stays reproducible
            # after a seeded reset.
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self.object_pose = sim.sample_object_pose(self.task, seed)
        self._env.task.object_pose = self.object_pose
        ts = self._env.reset()
        return self._format_obs(ts.observation), {"is_success": False}

    def step(self, action):
        action = np.asarray(action)
        if action.ndim != 1 or action.shape[0] != 14:
            raise ValueError(f"expected an action of shape (14,), got {action.shape}")
        ts = self._env.step(action)
        reward = ts.reward
        terminated = is_success = reward == 4
        return self._format_obs(ts.observation), reward, terminated, False, {"is_success": is_success}

    def render(self):
        if not self.render_video:
            return np.zeros((self.visualization_height, self.visualization_width, 3), dtype=np.uint8)
        return self._renderer.render(self.render_camera, self.visualization_height, self.visualization_width)

    def close(self):
        if getattr(self, "_renderer", None) is not None:
            self._renderer.close()
            self._renderer = None
