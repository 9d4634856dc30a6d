"""Robot type `docking_sim`: LeRobot's Robot interface over the docking env (features, episodes, latency,
errors) and the matching recorder (`hybrid-act-record --task docking_sim`)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.utils.errors import DeviceNotConnectedError
from lerobot.utils.feature_utils import hw_to_dataset_features

import lerobot_hybrid_act  # noqa: F401  (registers the robot types)
from lerobot_hybrid_act.docking.env import ACTION_NAMES, ENV_STATE_NAMES, STATE_NAMES, DockingEnv
from lerobot_hybrid_act.docking.expert import DockingExpert, expert_rng, sample_route_style
from lerobot_hybrid_act.docking.recording import ROUTE_KEY, STYLE_KEY
from lerobot_hybrid_act.robots.config_docking_sim import DockingSimConfig
from lerobot_hybrid_act.robots.docking_sim import ACTION_KEYS, STATE_KEYS, DockingSim, DockingSimRecorder, dataset_features


def make_robot(**overrides) -> DockingSim:
    cfg = RobotConfig.get_choice_class("docking_sim")(**{"image_height": 32, "image_width": 32, **overrides})
    robot = make_robot_from_config(cfg)
    robot.connect()
    return robot


def state_vector(obs: dict) -> np.ndarray:
    return np.array([obs[k] for k in STATE_KEYS], dtype=np.float32)


def test_robot_types_registered_and_import_is_lazy():
    assert RobotConfig.get_choice_class("docking_sim") is DockingSimConfig
    assert "aloha_sim" in RobotConfig.get_known_choices()
    # The env configs (and the docking env's constants, numpy + gymnasium) are imported; the simulators are not.
    simulators = (
        "mujoco", "dm_control", "gym_aloha", "lerobot_hybrid_act.aloha.sim", "lerobot_hybrid_act.aloha.env",
        "lerobot_hybrid_act.docking.render", "lerobot_hybrid_act.robots.docking_sim", "lerobot_hybrid_act.robots.aloha_sim",
    )  # fmt: skip
    code = (f"import sys, lerobot_hybrid_act; bad = [m for m in sys.modules if m.split('.')[0] in {simulators} "
            f"or m in {simulators}]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_features_are_the_docking_dataset_layout_as_lerobot_builds_it():
    robot = make_robot()
    try:
        obs_ds = hw_to_dataset_features(robot.observation_features, "observation")
        act_ds = hw_to_dataset_features(robot.action_features, "action")
        assert obs_ds["observation.state"]["names"] == STATE_KEYS
        assert [k.rsplit(".", 1)[0] for k in STATE_KEYS] == [*STATE_NAMES, *ENV_STATE_NAMES]
        assert [k.rsplit(".", 1)[0] for k in ACTION_KEYS] == ACTION_NAMES
        assert obs_ds["observation.images.top"]["shape"] == (32, 32, 3)
        assert act_ds["action"]["names"] == ACTION_KEYS
        # lerobot-rollout routes only `.pos` / `.vel` scalars to the policy
        assert all(k.endswith((".pos", ".vel")) for k in [*STATE_KEYS, *ACTION_KEYS])
        feats = dataset_features(robot.config)
        assert feats == {**act_ds, **obs_ds, ROUTE_KEY: feats[ROUTE_KEY], STYLE_KEY: feats[STYLE_KEY]}

        # first observation == the docking env's reset observation for seed 1000 (lerobot-eval's first seed)
        obs = robot.get_observation()
        env_obs, _ = DockingEnv(obs_type="pixels_state", image_size=32).reset(seed=1000)
        np.testing.assert_array_equal(state_vector(obs), np.concatenate([env_obs["agent_pos"], env_obs["environment_state"]]))
        np.testing.assert_array_equal(obs["top"], env_obs["pixels"]["top"])
        assert obs["top"].dtype == np.uint8
    finally:
        robot.disconnect()
    assert "top" not in make_robot_from_config(DockingSimConfig(camera=False)).observation_features


def test_expert_through_robot_interface_succeeds_and_episodes_are_logged(tmp_path):
    log = tmp_path / "episodes.jsonl"
    robot = make_robot(camera=False, seed=1000, episode_log=log)
    try:
        for episode in range(2):
            obs = robot.get_observation()
            state = state_vector(obs)
            expert = DockingExpert.from_observation(state[:6], state[6:], *sample_route_style(expert_rng(episode)))
            for _ in range(robot.config.episode_length):
                sent = robot.send_action(dict(zip(ACTION_KEYS, expert.act_obs(state[:6]), strict=True)))
                assert set(sent) == set(ACTION_KEYS)
                if len(robot.episodes) > episode:
                    break
                state = state_vector(robot.get_observation())
        # a new layout starts as soon as an episode ends
        assert robot.get_observation()["x.pos"] < 2.0
    finally:
        robot.disconnect()
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged == robot.episodes
    assert [e["seed"] for e in logged] == [1000, 1001]
    assert all(e["success"] and not e["collision"] and 0 < e["steps"] < 200 and e["travelled"] > 5.0 for e in logged)
    assert robot.actions_received == sum(e["steps"] for e in logged)


def test_timeout_ends_an_episode_without_success():
    robot = make_robot(camera=False, episode_length=7)
    try:
        for _ in range(7):
            robot.send_action({"accel.vel": 0.0, "yaw_rate.vel": 0.0})
    finally:
        robot.disconnect()
    assert robot.episodes == [
        {"episode": 0, "seed": 1000, "success": False, "collision": False, "steps": 7, "travelled": 0.0}
    ]


def test_actuation_delay_applies_each_action_that_many_steps_later():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 1.0, size=(12, 2))
    trajectories = {}
    for delay in (0, 3):
        robot = make_robot(camera=False, actuation_delay_steps=delay)
        states = []
        for a in actions:
            robot.send_action(dict(zip(ACTION_KEYS, a, strict=True)))
            states.append(state_vector(robot.get_observation()))
        robot.disconnect()
        trajectories[delay] = np.stack(states)
    start = state_vector(make_robot(camera=False).get_observation())
    # the first 3 delayed steps apply zero actions: the vehicle stays put
    np.testing.assert_allclose(trajectories[3][:3], np.tile(start, (3, 1)), atol=1e-6)
    # afterwards it follows the undelayed trajectory, 3 steps late
    np.testing.assert_allclose(trajectories[3][3:], trajectories[0][:-3], atol=1e-5)


def test_observation_latency_takes_wall_time():
    import time

    robot = make_robot(camera=False, observation_latency_s=0.05)
    try:
        t0 = time.perf_counter()
        for _ in range(3):
            robot.get_observation()
        assert time.perf_counter() - t0 >= 0.15
    finally:
        robot.disconnect()


def test_clear_errors():
    robot = make_robot(camera=False)
    with pytest.raises(ValueError, match=r"expects action keys \['accel.vel', 'yaw_rate.vel'\]"):
        robot.send_action({"accel": 1.0, "yaw_rate": 0.0})
    # what lerobot-rollout sends at shutdown to return an arm to its initial pose
    with pytest.raises(ValueError, match="--return_to_initial_position=false"):
        robot.send_action({"x.pos": 1.0, "y.pos": 0.0})
    robot.disconnect()
    with pytest.raises(DeviceNotConnectedError):
        robot.get_observation()
    with pytest.raises(DeviceNotConnectedError):
        robot.send_action({"accel.vel": 0.0, "yaw_rate.vel": 0.0})
    for bad in ({"episode_length": 0}, {"actuation_delay_steps": -1}, {"image_height": 8}, {"observation_latency_s": -1}):
        with pytest.raises(ValueError, match="docking_sim"):
            DockingSimConfig(**bad)


def test_recorder_writes_the_robot_layout():
    rec = DockingSimRecorder()
    feats = rec.features((32, 32), ["top"])
    assert feats == dataset_features(DockingSimConfig(image_height=32, image_width=32))
    assert "observation.environment_state" not in feats
    frames, success, info = rec.record_episode(3, 0.05, (32, 32), ["top"])
    assert success and len(frames) == info["steps"]
    for f in frames[:2] + frames[-2:]:
        assert set(f) == set(feats)
        for key, spec in feats.items():
            assert f[key].shape == tuple(spec["shape"]), key
    # a demo's first frame is what the robot observes for the same layout seed
    robot = make_robot(seed=3)
    obs = robot.get_observation()
    robot.disconnect()
    np.testing.assert_array_equal(frames[0]["observation.state"], state_vector(obs))
    np.testing.assert_array_equal(frames[0]["observation.images.top"], obs["top"])
    assert set(rec.features(None, [])) == set(feats) - {"observation.images.top"}


def test_hybrid_act_record_task_docking_sim(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_hybrid_act import record

    root = tmp_path / "ds"
    argv = ["--task", "docking_sim", "--episodes", "2", "--repo-id", "local/dk_sim", "--root", str(root)]
    assert record.main([*argv, "--cameras", "top", "--image-size", "32x32", "--noise", "0.05"]) == 0
    ds = LeRobotDataset("local/dk_sim", root=root)
    assert ds.meta.features["observation.state"]["names"] == STATE_KEYS
    assert ds.meta.features["action"]["names"] == ACTION_KEYS
    assert "observation.environment_state" not in ds.meta.features
    assert ds.meta.features["observation.images.top"]["dtype"] == "video"
    assert tuple(ds[0]["observation.images.top"].shape) == (3, 32, 32)


def test_action_log_holds_every_applied_action(tmp_path):
    log = tmp_path / "actions.jsonl"
    robot = make_robot(camera=False, episode_length=3, actuation_delay_steps=1, action_log=log)
    try:
        for i in range(4):
            robot.send_action({"accel.vel": 0.1 * (i + 1), "yaw_rate.vel": 0.0})
    finally:
        robot.disconnect()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["episode"], line["step"]) for line in lines] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    # applied one step late; a new episode starts with an empty actuation queue (a zero action)
    assert [line["action"][0] for line in lines] == pytest.approx([0.0, 0.1, 0.2, 0.0])
