"""`aloha_fast`: equivalence with gym_aloha, declared features vs observations, config validation."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lerobot_hybrid_act  # noqa: E402,F401  (registers aloha_fast)
from lerobot.envs.configs import EnvConfig  # noqa: E402
from lerobot.envs.factory import make_env  # noqa: E402
from lerobot.envs.utils import env_to_policy_features, preprocess_observation  # noqa: E402


def aloha_fast_cfg(**kw):
    return EnvConfig.get_choice_class("aloha_fast")(**kw)


@pytest.fixture(scope="module")
def scripted_actions():
    """Joint actions of one scripted demo per task (seed 7), computed once."""
    from lerobot_hybrid_act.aloha.scripted import ScriptedDemonstrator

    return {task: ScriptedDemonstrator(task).run(seed=7).joint_actions for task in ("transfer_cube", "insertion")}


def test_plugin_import_does_not_load_the_simulator():
    code = (
        "import sys, lerobot_policy_hybrid_act\n"
        "from lerobot.envs.configs import EnvConfig\n"
        "EnvConfig.get_choice_class('aloha_fast')(task='insertion', cameras=[])\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('mujoco', 'dm_control', 'gym_aloha')]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("task", ["transfer_cube", "insertion"])
def test_same_seed_and_actions_as_gym_aloha_give_same_trajectory_and_rewards(task, scripted_actions):
    """Against unmodified gym_aloha (with its 480x640 renders): first 25 steps of a scripted demo."""
    from gym_aloha.env import AlohaEnv

    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    ref = AlohaEnv(task, obs_type="pixels_agent_pos")
    fast = AlohaFastEnv(task, cameras=["top"], observation_height=48, observation_width=64)
    try:
        obs_r, _ = ref.reset(seed=11)
        obs_f, _ = fast.reset(seed=11)
        np.testing.assert_array_equal(obs_r["agent_pos"], obs_f["agent_pos"])
        np.testing.assert_array_equal(ref._env.physics.data.qpos, fast.physics.data.qpos)
        rng = np.random.default_rng(0)
        for t in range(25):
            action = scripted_actions[task][t * 8] + rng.normal(0, 0.02, 14)  # move fast: a visible trajectory
            obs_r, rew_r, term_r, trunc_r, info_r = ref.step(action)
            obs_f, rew_f, term_f, trunc_f, info_f = fast.step(action)
            np.testing.assert_allclose(obs_f["agent_pos"], obs_r["agent_pos"], rtol=0, atol=1e-9)
            np.testing.assert_allclose(fast.physics.data.qpos, ref._env.physics.data.qpos, rtol=0, atol=1e-9)
            np.testing.assert_allclose(fast.physics.data.qvel, ref._env.physics.data.qvel, rtol=0, atol=1e-9)
            assert (rew_f, term_f, trunc_f, info_f) == (rew_r, term_r, trunc_r, info_r)
        # the arms really moved away from the start pose (the comparison is not between two idle robots)
        start_right_arm = np.array([0, -0.96, 1.16, 0, -0.3, 0])
        assert np.max(np.abs(obs_f["agent_pos"][7:13] - start_right_arm)) > 0.05
    finally:
        fast.close()


@pytest.mark.parametrize("task", ["transfer_cube", "insertion"])
def test_full_scripted_episode_rewards_and_success_match_gym_aloha(task, scripted_actions, monkeypatch):
    """400 steps through gym_aloha's own env and task code (images stubbed out, physics/reward untouched):
    reward sequence, success step and final state are identical, and the demo succeeds."""
    from dm_control.mujoco import Physics
    from gym_aloha.env import AlohaEnv

    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    monkeypatch.setattr(Physics, "render", lambda self, height=240, width=320, **kw: np.zeros((height, width, 3), np.uint8))
    ref = AlohaEnv(task, obs_type="pixels_agent_pos")
    fast = AlohaFastEnv(task, cameras=[])
    ref.reset(seed=7)
    fast.reset(seed=7)
    rewards_r, rewards_f, succ_r, succ_f = [], [], [], []
    for action in scripted_actions[task]:
        _, r, _, _, info = ref.step(action)
        rewards_r.append(r)
        succ_r.append(info["is_success"])
        _, r, _, _, info = fast.step(action)
        rewards_f.append(r)
        succ_f.append(info["is_success"])
    assert rewards_f == rewards_r
    assert succ_f == succ_r
    np.testing.assert_allclose(fast.physics.data.qpos, ref._env.physics.data.qpos, rtol=0, atol=1e-9)
    assert max(rewards_f) == 4 and any(succ_f)
    assert {1, 2, 3} & set(rewards_f), "intermediate reward levels never exercised"


@pytest.mark.parametrize("task", ["transfer_cube", "insertion"])
def test_reset_seed_reproduces_gym_aloha_object_pose(task):
    from gym_aloha.utils import sample_box_pose, sample_insertion_pose

    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    env = AlohaFastEnv(task, cameras=[])
    obs1, _ = env.reset(seed=1234)
    expected = sample_box_pose(1234) if task == "transfer_cube" else np.concatenate(sample_insertion_pose(1234))
    np.testing.assert_allclose(obs1["environment_state"], expected, atol=1e-12)
    obs2, _ = env.reset(seed=1235)
    assert not np.allclose(obs1["environment_state"], obs2["environment_state"])
    obs3, _ = env.reset(seed=1234)
    np.testing.assert_array_equal(obs1["environment_state"], obs3["environment_state"])


@pytest.mark.parametrize(
    "task,cameras,h,w",
    [("transfer_cube", ["top"], 96, 128), ("insertion", [], 480, 640), ("insertion", ["top", "left_wrist"], 40, 56)],
)
def test_observations_match_declared_features(task, cameras, h, w):
    cfg = aloha_fast_cfg(task=task, cameras=cameras, observation_height=h, observation_width=w, episode_length=3)
    policy_features = env_to_policy_features(cfg)
    vec = make_env(cfg, n_envs=1)["aloha_fast"][0]
    try:
        obs, _ = vec.reset(seed=[1000])
        batch = preprocess_observation(obs)
        expected_obs = {k: v for k, v in policy_features.items() if k != "action"}
        assert set(batch) == set(expected_obs)
        for key, ft in expected_obs.items():
            assert tuple(batch[key].shape[1:]) == tuple(ft.shape), key
        assert policy_features["action"].shape == vec.single_action_space.shape == (14,)
        assert policy_features["observation.environment_state"].shape == ((7,) if task == "transfer_cube" else (14,))
        for cam in cameras:
            img = obs["pixels"][cam][0]
            assert img.dtype == np.uint8 and img.shape == (h, w, 3) and img.std() > 1  # not blank
        # episode_length is enforced (lerobot-eval reads _max_episode_steps)
        assert vec.call("_max_episode_steps") == (3,)
        assert "peg" in vec.call("task_description")[0] or task == "transfer_cube"
        for _ in range(3):
            obs, _, term, trunc, _ = vec.step(np.asarray(obs["agent_pos"], dtype=np.float64))
        assert trunc[0] and not term[0]
        frame = vec.envs[0].render()
        assert frame.shape == (cfg.visualization_height, cfg.visualization_width, 3) and frame.std() > 1
    finally:
        vec.close()


def test_state_only_env_does_not_render(monkeypatch):
    from lerobot_hybrid_act.aloha import sim
    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    def boom(*a, **k):
        raise AssertionError("rendered an observation although no camera was requested")

    env = AlohaFastEnv("transfer_cube", cameras=[])
    monkeypatch.setattr(sim.Renderer, "render", boom)
    obs, _ = env.reset(seed=0)
    env.step(obs["agent_pos"])
    assert "pixels" not in obs


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"task": "stack_blocks"}, "unknown task"),
        ({"cameras": ["top", "nope"]}, "unknown camera"),
        ({"cameras": ["top", "top"]}, "duplicate"),
        ({"observation_height": 0}, "observation_height"),
        ({"visualization_width": 100000}, "visualization_width"),
        ({"episode_length": 0}, "episode_length"),
    ],
)
def test_config_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        aloha_fast_cfg(**kw)


def test_config_accepts_gym_aloha_task_names():
    assert aloha_fast_cfg(task="AlohaInsertion-v0").task == "insertion"
    assert aloha_fast_cfg(task="aloha_transfer_cube").task == "transfer_cube"
    cfg = aloha_fast_cfg(cameras=[])
    assert set(env_to_policy_features(cfg)) == {"action", "observation.state", "observation.environment_state"}
