"""hybrid-act-policy-server: the plugin's types join LeRobot's SUPPORTED_POLICIES, and policy instructions
LeRobot's server could not serve are refused with a message naming the fix (end to end: test_deploy.py)."""

import tomllib
from pathlib import Path

import pytest
from conftest import make_config
from lerobot.configs import FeatureType, PolicyFeature

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # LeRobot's async modules open a log file under ./logs when imported
    from lerobot_hybrid_act.deploy import policy_server

    policy_server.register_plugin_policies()
    return policy_server


def save_checkpoint_config(path: Path, image: bool = True, env_state: bool = False) -> str:
    config = make_config("hybrid_act_c", image=image)
    if not env_state:
        del config.input_features["observation.environment_state"]
    config.input_features["observation.state"] = PolicyFeature(FeatureType.STATE, (13,))
    config.save_pretrained(path)
    return str(path)


def specs(server, path: str, policy_type: str = "hybrid_act_c", state: int = 13, cameras=("top",)):
    features = {"observation.state": {"dtype": "float32", "shape": (state,), "names": None}}
    for cam in cameras:
        features[f"observation.images.{cam}"] = {"dtype": "image", "shape": (32, 32, 3), "names": None}
    return server.RemotePolicyConfig(policy_type, path, features, actions_per_chunk=8)


def test_plugin_types_join_lerobots_supported_policies(server):
    from lerobot.async_inference import policy_server as lerobot_server

    server.register_plugin_policies()  # idempotent
    for t in ("hybrid_act_a", "hybrid_act_b", "hybrid_act_c"):
        assert lerobot_server.SUPPORTED_POLICIES.count(t) == 1  # the list LeRobot's server checks
    assert "act" in lerobot_server.SUPPORTED_POLICIES


def test_console_script_points_at_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["hybrid-act-policy-server"] == "lerobot_hybrid_act.deploy.policy_server:main"


def test_matching_instructions_are_accepted(server, tmp_path):
    path = save_checkpoint_config(tmp_path / "ckpt")
    assert server.check_policy_instructions(specs(server, path)) is None
    # images are resized by the server, so another camera resolution is fine
    other = specs(server, path)
    other.lerobot_features["observation.images.top"]["shape"] = (96, 96, 3)
    assert server.check_policy_instructions(other) is None


def test_refusals_name_the_fix(server, tmp_path):
    path = save_checkpoint_config(tmp_path / "ckpt")
    check = server.check_policy_instructions

    msg = check(specs(server, path, policy_type="hybrid_act_z"))
    assert "'hybrid_act_z' is not served here" in msg and "hybrid_act_c" in msg and "--policy_type" in msg
    assert "--policy_type=hybrid_act_c" in check(specs(server, path, policy_type="hybrid_act_a"))
    assert "Cannot load the policy config" in check(specs(server, str(tmp_path / "missing")))

    msg = check(specs(server, path, state=6))
    assert "the policy needs observation.state of shape (13,), the robot sends (6,)" in msg
    assert "hybrid-act-record --task docking_sim" in msg
    msg = check(specs(server, path, cameras=("front",)))
    assert "the policy needs observation.images.top, the robot's cameras are ['front']" in msg
    # LeRobot's server would fail on every observation with a camera the policy does not take
    msg = check(specs(server, path, cameras=("top", "front")))
    assert "the robot sends observation.images.front, which the policy does not take: drop that camera" in msg

    with_env = save_checkpoint_config(tmp_path / "env", env_state=True)
    msg = check(specs(server, with_env))
    assert "the policy needs observation.environment_state, which LeRobot's robot client never sends" in msg
