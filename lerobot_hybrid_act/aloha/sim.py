"""gym_aloha's simulation, minus its per-step rendering.

gym_aloha's tasks render three cameras at 480x640 inside ``get_observation`` on every step (~0.2 s on a CPU).
The classes here subclass gym_aloha's own tasks (so ``before_step`` / ``get_reward`` / physics are exactly
gym_aloha's) and only replace:

- ``get_observation``: joint positions/velocities and object poses, no images (images are rendered on
  demand by :class:`Renderer`);
- ``initialize_episode`` (joint-space tasks): takes the object pose from the task instance instead of
  gym_aloha's module-level ``BOX_POSE`` global, with the same assignments in the same order.
"""

from __future__ import annotations

import atexit
import collections
import os
import weakref

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from dm_control import mujoco as dm_mujoco  # noqa: E402
from dm_control.rl import control  # noqa: E402
from dm_control.suite import base  # noqa: E402
from gym_aloha.constants import ASSETS_DIR, DT, START_ARM_POSE  # noqa: E402
from gym_aloha.tasks.sim import InsertionTask, TransferCubeTask  # noqa: E402
from gym_aloha.tasks.sim_end_effector import (  # noqa: E402
    InsertionEndEffectorTask,
    TransferCubeEndEffectorTask,
)
from gym_aloha.utils import sample_box_pose, sample_insertion_pose  # noqa: E402

from . import TASKS  # noqa: E402

# The MuJoCo >= 3 mocap weld is too soft to tilt the gripper; stiffen its rotational part (eq_data[10]).
WELD_TORQUESCALE = 5.0


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"Unknown ALOHA task {task!r}; expected one of {list(TASKS)}.")
    return task


def sample_object_pose(task: str, seed: int | None) -> np.ndarray:
    """Initial object pose(s) exactly as ``gym_aloha.env.AlohaEnv.reset(seed=seed)`` samples them."""
    check_task(task)
    if task == "transfer_cube":
        return sample_box_pose(seed)
    return np.concatenate(sample_insertion_pose(seed))


def _state_observation(task, physics) -> collections.OrderedDict:
    obs = collections.OrderedDict()
    obs["qpos"] = task.get_qpos(physics)
    obs["qvel"] = task.get_qvel(physics)
    obs["env_state"] = task.get_env_state(physics)
    return obs


class _JointTaskMixin:
    """Joint-space task: object pose set per instance, observation without images."""

    object_pose: np.ndarray | None = None

    def initialize_episode(self, physics):
        # Same as gym_aloha.tasks.sim.*Task.initialize_episode, with `self.object_pose` for BOX_POSE[0].
        if self.object_pose is None:
            raise RuntimeError("set task.object_pose before resetting the environment")
        n = len(self.object_pose)
        with physics.reset_context():
            physics.named.data.qpos[:16] = START_ARM_POSE
            np.copyto(physics.data.ctrl, START_ARM_POSE)
            physics.named.data.qpos[-n:] = self.object_pose
        # dm_control's base initialization (skipping gym_aloha's override, which reads BOX_POSE).
        base.Task.initialize_episode(self, physics)

    def get_observation(self, physics):
        return _state_observation(self, physics)


class FastTransferCubeTask(_JointTaskMixin, TransferCubeTask):
    pass


class FastInsertionTask(_JointTaskMixin, InsertionTask):
    pass


class _EndEffectorTaskMixin:
    """Mocap (end-effector) task: object pose set per instance, observation without images."""

    object_pose: np.ndarray | None = None

    def initialize_episode(self, physics):
        if self.object_pose is None:
            raise RuntimeError("set task.object_pose before resetting the environment")
        self.initialize_robots(physics)
        n = len(self.object_pose)
        np.copyto(physics.data.qpos[16 : 16 + n], self.object_pose)
        base.Task.initialize_episode(self, physics)

    def get_observation(self, physics):
        obs = _state_observation(self, physics)
        obs["mocap_pose_left"] = np.concatenate([physics.data.mocap_pos[0], physics.data.mocap_quat[0]]).copy()
        obs["mocap_pose_right"] = np.concatenate([physics.data.mocap_pos[1], physics.data.mocap_quat[1]]).copy()
        obs["gripper_ctrl"] = physics.data.ctrl.copy()
        return obs


class FastTransferCubeEndEffectorTask(_EndEffectorTaskMixin, TransferCubeEndEffectorTask):
    pass


class FastInsertionEndEffectorTask(_EndEffectorTaskMixin, InsertionEndEffectorTask):
    pass


def make_environment(task: str, end_effector: bool = False) -> control.Environment:
    """A dm_control environment built exactly like gym_aloha's (same XML, DT, n_sub_steps), no rendering."""
    check_task(task)
    prefix = "bimanual_viperx_end_effector_" if end_effector else "bimanual_viperx_"
    physics = dm_mujoco.Physics.from_xml_path(str(ASSETS_DIR / f"{prefix}{task}.xml"))
    if end_effector:
        physics.model.eq_data[:, 10] = WELD_TORQUESCALE
        task_obj = FastTransferCubeEndEffectorTask() if task == "transfer_cube" else FastInsertionEndEffectorTask()
    else:
        task_obj = FastTransferCubeTask() if task == "transfer_cube" else FastInsertionTask()
    return control.Environment(
        physics, task_obj, float("inf"), control_timestep=DT, n_sub_steps=None, flat_observation=False
    )


class Renderer:
    """Cheap offscreen rendering of named cameras of a dm_control physics (no shadows, no MSAA).

    One ``mujoco.Renderer`` (GL context) per image size, created lazily. The cheap render settings are
    written into the model before the first context exists; they do not affect physics.
    """

    def __init__(self, physics, max_height: int, max_width: int):
        import mujoco

        self._mujoco = mujoco
        self._physics = physics
        model = physics.model.ptr
        model.vis.quality.offsamples = 0
        model.vis.quality.shadowsize = 0
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), int(max_height))
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), int(max_width))
        self._renderers: dict[tuple[int, int], object] = {}
        _LIVE_RENDERERS.add(self)

    def render(self, camera: str, height: int, width: int) -> np.ndarray:
        key = (int(height), int(width))
        r = self._renderers.get(key)
        if r is None:
            r = self._mujoco.Renderer(self._physics.model.ptr, height=key[0], width=key[1])
            self._renderers[key] = r
            _register_atexit_close()
        r.update_scene(self._physics.data.ptr, camera=camera)
        return r.render()

    def close(self):
        for r in self._renderers.values():
            try:
                r.close()
            except Exception:  # noqa: BLE001 - GL teardown at interpreter exit may already be gone
                pass
        self._renderers.clear()


# Free GL contexts before the interpreter tears down the EGL bindings (avoids noisy __del__ errors).
_LIVE_RENDERERS: "weakref.WeakSet[Renderer]" = weakref.WeakSet()


_ATEXIT_REGISTERED = False


def _close_live_renderers():
    for r in list(_LIVE_RENDERERS):
        r.close()


def _register_atexit_close():
    # Registered after MuJoCo's GL backend (imported with the first mujoco.Renderer) registered its own
    # teardown, so that ours runs first (atexit is LIFO).
    global _ATEXIT_REGISTERED
    if not _ATEXIT_REGISTERED:
        atexit.register(_close_live_renderers)
        _ATEXIT_REGISTERED = True
