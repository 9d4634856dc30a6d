"""Scripted ALOHA demonstrations (the ACT paper's recipe, re-implemented for MuJoCo 3.x).

1. A waypoint policy drives gym_aloha's end-effector (mocap) task: both grippers follow piecewise-linear
   poses computed from the initial object pose.
2. After each mocap step, the arm joint positions are read back and the grippers' *commanded* (normalized)
   control is substituted for the observed finger position: that is the joint-space action.
3. These joint actions are replayed in the joint-space task (gym_aloha's physics, via
   :class:`~lerobot_hybrid_act.aloha.env.AlohaFastEnv`), which is what gets recorded; success is judged
   there (max reward 4 at any step).

MuJoCo >= 3 fixes (see ``shared/notes/aloha-on-cpu.md``): the mocap weld's torquescale is raised
(:data:`~lerobot_hybrid_act.aloha.sim.WELD_TORQUESCALE`), and the insertion pushes the peg deeper into the
socket than the original waypoints.

Noise (``--noise``, as in ACT's ``inject_noise``): uniform per-step jitter of the mocap targets' xyz. Measured
scripted success: transfer cube 50/50 at 0.0 and at 0.01; insertion 48/50 at 0.0, 20/20 at 0.002, 18/20 at
0.005, but only 10/50 at 0.01 (the peg misses the socket) -- use <= 0.005 for insertion.

Seeding: demo seed ``s`` uses ``sample_*_pose(s)`` for the objects, i.e. exactly the pose of
``reset(seed=s)`` in gym_aloha and in ``aloha_fast``; the optional waypoint noise uses
``numpy.random.default_rng(s)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gym_aloha.constants import normalize_puppet_gripper_position

from . import EPISODE_LENGTH, sim
# How much deeper (m, per arm, along x) than the original ACT waypoints the insertion pushes peg and socket.
INSERTION_EXTRA_DEPTH = 0.015


# ---------------------------------------------------------------------------------------------- quaternions
def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of two (w, x, y, z) quaternions."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def quat_axis_angle(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    half = np.deg2rad(degrees) / 2.0
    return np.concatenate([[np.cos(half)], np.sin(half) * axis])


# ---------------------------------------------------------------------------------------------- waypoints
@dataclass
class Waypoints:
    """Piecewise-linear end-effector path of one arm: rows of (t, xyz[3], quat[4], gripper)."""

    rows: list[tuple[float, np.ndarray, np.ndarray, float]] = field(default_factory=list)

    def add(self, t, xyz, quat, gripper) -> "Waypoints":
        self.rows.append((float(t), np.asarray(xyz, float), np.asarray(quat, float), float(gripper)))
        return self

    def __call__(self, t: float) -> np.ndarray:
        """Pose + gripper command (8,) at time step t (held constant after the last waypoint)."""
        times = [r[0] for r in self.rows]
        i = int(np.searchsorted(times, t, side="right")) - 1
        i = min(max(i, 0), len(self.rows) - 1)
        if i == len(self.rows) - 1:
            _, xyz, quat, g = self.rows[i]
        else:
            (t0, x0, q0, g0), (t1, x1, q1, g1) = self.rows[i], self.rows[i + 1]
            f = (t - t0) / (t1 - t0)
            xyz, quat, g = x0 + (x1 - x0) * f, q0 + (q1 - q0) * f, g0 + (g1 - g0) * f
        quat = quat / np.linalg.norm(quat)
        return np.concatenate([xyz, quat, [g]])


def transfer_cube_waypoints(first_obs: dict) -> tuple[Waypoints, Waypoints]:
    """Right arm picks the cube and hands it over mid-air to the left arm."""
    left0, right0 = first_obs["mocap_pose_left"], first_obs["mocap_pose_right"]
    cube = np.asarray(first_obs["env_state"])[:3]
    pick_q = quat_mul(right0[3:], quat_axis_angle([0, 1, 0], -60))
    meet_left_q = quat_axis_angle([1, 0, 0], 90)
    flat_q = np.array([1.0, 0, 0, 0])
    meet = np.array([0.0, 0.5, 0.25])

    left = (
        Waypoints()
        .add(0, left0[:3], left0[3:], 0)
        .add(100, meet + [-0.1, 0, -0.02], meet_left_q, 1)  # approach the meeting point
        .add(260, meet + [0.02, 0, -0.02], meet_left_q, 1)  # reach around the cube
        .add(310, meet + [0.02, 0, -0.02], meet_left_q, 0)  # grasp
        .add(360, meet + [-0.1, 0, -0.02], flat_q, 0)  # pull away with the cube
        .add(EPISODE_LENGTH, meet + [-0.1, 0, -0.02], flat_q, 0)
    )
    right = (
        Waypoints()
        .add(0, right0[:3], right0[3:], 0)
        .add(90, cube + [0, 0, 0.08], pick_q, 1)  # above the cube
        .add(130, cube + [0, 0, -0.015], pick_q, 1)  # down
        .add(170, cube + [0, 0, -0.015], pick_q, 0)  # grasp
        .add(200, meet + [0.05, 0, 0], pick_q, 0)  # lift towards the meeting point
        .add(220, meet, pick_q, 0)
        .add(310, meet, pick_q, 1)  # release once the left gripper holds it
        .add(360, meet + [0.1, 0, 0], pick_q, 1)  # retreat
        .add(EPISODE_LENGTH, meet + [0.1, 0, 0], pick_q, 1)
    )
    return left, right


def insertion_waypoints(first_obs: dict, extra_depth: float = INSERTION_EXTRA_DEPTH) -> tuple[Waypoints, Waypoints]:
    """Left arm picks the socket, right arm the peg; both meet mid-air and the peg goes into the socket."""
    left0, right0 = first_obs["mocap_pose_left"], first_obs["mocap_pose_right"]
    state = np.asarray(first_obs["env_state"])
    peg, socket = state[:3], state[7:10]
    right_q = quat_mul(right0[3:], quat_axis_angle([0, 1, 0], -60))
    left_q = quat_mul(right0[3:], quat_axis_angle([0, 1, 0], 60))
    meet = np.array([0.0, 0.5, 0.15])
    lift_right = 0.00715
    d_in = 0.05 - extra_depth  # final half-distance between the grippers along x

    left = (
        Waypoints()
        .add(0, left0[:3], left0[3:], 0)
        .add(120, socket + [0, 0, 0.08], left_q, 1)
        .add(170, socket + [0, 0, -0.03], left_q, 1)
        .add(220, socket + [0, 0, -0.03], left_q, 0)
        .add(285, meet + [-0.1, 0, 0], left_q, 0)
        .add(340, meet + [-d_in, 0, 0], left_q, 0)
        .add(EPISODE_LENGTH, meet + [-d_in, 0, 0], left_q, 0)
    )
    right = (
        Waypoints()
        .add(0, right0[:3], right0[3:], 0)
        .add(120, peg + [0, 0, 0.08], right_q, 1)
        .add(170, peg + [0, 0, -0.03], right_q, 1)
        .add(220, peg + [0, 0, -0.03], right_q, 0)
        .add(285, meet + [0.1, 0, lift_right], right_q, 0)
        .add(340, meet + [d_in, 0, lift_right], right_q, 0)
        .add(EPISODE_LENGTH, meet + [d_in, 0, lift_right], right_q, 0)
    )
    return left, right


WAYPOINTS = {"transfer_cube": transfer_cube_waypoints, "insertion": insertion_waypoints}


# ---------------------------------------------------------------------------------------------- rollout
@dataclass
class ScriptedEpisode:
    seed: int
    object_pose: np.ndarray
    joint_actions: np.ndarray  # (T, 14) joint-space actions to replay
    ee_max_reward: float


class ScriptedDemonstrator:
    """Runs the waypoint policy in the end-effector env (no rendering) and returns joint-space actions."""

    def __init__(self, task: str, episode_length: int = EPISODE_LENGTH):
        self.task = sim.check_task(task)
        self.episode_length = int(episode_length)
        self._env = sim.make_environment(task, end_effector=True)

    def run(self, seed: int, noise: float = 0.0) -> ScriptedEpisode:
        pose = sim.sample_object_pose(self.task, seed)
        self._env.task.object_pose = pose
        ts = self._env.reset()
        left, right = WAYPOINTS[self.task](ts.observation)
        rng = np.random.default_rng(seed)
        actions = np.zeros((self.episode_length, 14))
        max_reward = 0.0
        for t in range(self.episode_length):
            a_left, a_right = left(t), right(t)
            if noise > 0:
                a_left[:3] += rng.uniform(-noise, noise, 3)
                a_right[:3] += rng.uniform(-noise, noise, 3)
            ts = self._env.step(np.concatenate([a_left, a_right]))
            max_reward = max(max_reward, float(ts.reward))
            joint = ts.observation["qpos"].copy()
            ctrl = ts.observation["gripper_ctrl"]
            joint[6] = normalize_puppet_gripper_position(ctrl[0])
            joint[13] = normalize_puppet_gripper_position(ctrl[2])
            actions[t] = joint
        return ScriptedEpisode(seed=seed, object_pose=pose, joint_actions=actions, ee_max_reward=max_reward)


def replay(env, episode: ScriptedEpisode, on_step=None) -> tuple[float, int | None]:
    """Replays ``episode`` in a joint-space :class:`AlohaFastEnv`; returns (max reward, first success step).

    ``on_step(t, obs, action, reward)`` is called with the observation *before* action ``t`` (recording
    hook). The episode is not cut at success: all ``len(joint_actions)`` steps run.
    """
    obs, _ = env.reset(seed=episode.seed)
    if not np.allclose(env.object_pose, episode.object_pose):
        raise RuntimeError("object pose of the replay differs from the scripted episode")
    max_reward, first_success = 0.0, None
    for t, action in enumerate(episode.joint_actions):
        next_obs, reward, terminated, _, _ = env.step(action)
        if on_step is not None:
            on_step(t, obs, action, reward)
        obs = next_obs
        max_reward = max(max_reward, float(reward))
        if terminated and first_success is None:
            first_success = t
    return max_reward, first_success
