"""Robot type `aloha_sim`: ALOHA sim behind LeRobot's Robot interface, and its recorder layout."""

import json

import numpy as np
import pytest
from gym_aloha.constants import JOINTS
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.utils.feature_utils import hw_to_dataset_features

import lerobot_hybrid_act  # noqa: F401  (registers the robot types)
from lerobot_hybrid_act.robots.config_aloha_sim import AlohaSimConfig


def make_robot(**overrides):
    cfg = RobotConfig.get_choice_class("aloha_sim")(**{"image_height": 24, "image_width": 32, **overrides})
    robot = make_robot_from_config(cfg)
    robot.connect()
    return robot


def state_vector(robot, obs: dict) -> np.ndarray:
    return np.array([obs[k] for k in robot.state_keys], dtype=np.float32)


def test_features_and_first_observation():
    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    robot = make_robot()
    try:
        assert type(robot).__name__ == "AlohaSim"
        obs_ds = hw_to_dataset_features(robot.observation_features, "observation")
        assert obs_ds["observation.state"]["names"] == [
            *(f"{j}.pos" for j in JOINTS), *(f"cube_{k}.pos" for k in ("x", "y", "z", "qw", "qx", "qy", "qz"))
        ]  # fmt: skip
        assert obs_ds["observation.images.top"]["shape"] == (24, 32, 3)
        assert list(robot.action_features) == [f"{j}.pos" for j in JOINTS]
        obs = robot.get_observation()
        env = AlohaFastEnv("transfer_cube", cameras=["top"], observation_height=24, observation_width=32)
        env_obs, _ = env.reset(seed=1000)
        np.testing.assert_allclose(
            state_vector(robot, obs), np.concatenate([env_obs["agent_pos"], env_obs["environment_state"]]), rtol=1e-6
        )
        np.testing.assert_array_equal(obs["top"], env_obs["pixels"]["top"])
        env.close()
    finally:
        robot.disconnect()
    insertion = make_robot_from_config(AlohaSimConfig(task="insertion", camera_names=[]))
    assert len(insertion.observation_features) == 14 + 14
    with pytest.raises(ValueError, match="aloha_sim"):
        AlohaSimConfig(camera_names=["wrist"])
    with pytest.raises(ValueError, match="aloha_sim"):
        AlohaSimConfig(task="stacking")


def test_scripted_demo_replayed_through_the_robot_succeeds(tmp_path):
    """The recorder's demo for seed s, sent action by action to aloha_sim(seed=s), succeeds and is logged."""
    from lerobot_hybrid_act.robots.aloha_sim import AlohaSimTransferCubeRecorder, dataset_features

    rec = AlohaSimTransferCubeRecorder()
    feats = rec.features((24, 32), [])
    assert feats == dataset_features(AlohaSimConfig(camera_names=[], image_height=24, image_width=32))
    frames, success, _ = rec.record_episode(7, 0.0, (24, 32), [])
    rec.close()
    assert success and set(frames[0]) == set(feats)
    log = tmp_path / "episodes.jsonl"
    robot = make_robot(camera_names=[], seed=7, episode_log=log)
    try:
        np.testing.assert_allclose(frames[0]["observation.state"], state_vector(robot, robot.get_observation()), rtol=1e-6)
        for frame in frames:
            robot.send_action(dict(zip(robot.action_keys, frame["action"], strict=True)))
            if robot.episodes:
                break
    finally:
        robot.disconnect()
    assert robot.episodes[0]["success"] and robot.episodes[0]["max_reward"] == 4.0
    assert json.loads(log.read_text()) == robot.episodes[0]


def test_episode_ends_after_episode_length_without_success():
    robot = make_robot(camera_names=[], episode_length=5)
    try:
        hold = {k: robot.get_observation()[k] for k in robot.action_keys}
        for _ in range(5):
            robot.send_action(hold)
        assert robot.episodes == [{"episode": 0, "seed": 1000, "success": False, "steps": 5, "max_reward": 0.0}]
        with pytest.raises(ValueError, match="--return_to_initial_position=false"):
            robot.send_action({**hold, "cube_x.pos": 0.0})
    finally:
        robot.disconnect()
