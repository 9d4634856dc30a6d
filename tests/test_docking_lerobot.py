"""Docking <-> LeRobot: env type `docking`, make_env, preprocess_observation, recorder -> LeRobotDataset,
and (slow) lerobot-eval of a tiny untrained ACT checkpoint on --env.type=docking."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from lerobot.configs import FeatureType  # noqa: E402
from lerobot.envs.configs import EnvConfig  # noqa: E402
from lerobot.envs.factory import make_env, make_env_config  # noqa: E402
from lerobot.envs.utils import env_to_policy_features, preprocess_observation  # noqa: E402

import lerobot_hybrid_act  # noqa: E402,F401  (registers env types)
from lerobot_hybrid_act.docking.env import DockingEnv  # noqa: E402
from lerobot_hybrid_act.docking.expert import ROUTE_NAMES, DockingExpert, expert_rng, sample_route_style  # noqa: E402
from lerobot_hybrid_act.docking.recording import ROUTE_KEY, STYLE_KEY, DockingRecorder  # noqa: E402


def test_docking_env_type_registered_and_import_is_lazy():
    assert "docking" in EnvConfig.get_known_choices()
    # The env config and the env's constants (numpy + gymnasium) only: no expert, metrics, recorder or renderer.
    allowed = ("lerobot_hybrid_act.docking", "lerobot_hybrid_act.docking.env", "lerobot_hybrid_act.docking.env_config")
    code = (
        "import sys, lerobot_hybrid_act; "
        f"bad = [m for m in sys.modules if m.startswith('lerobot_hybrid_act.docking') and m not in {allowed}]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("obs_type", ["state", "pixels_state"])
def test_make_env_and_preprocess_observation_match_declared_features(obs_type):
    cfg = make_env_config("docking", obs_type=obs_type, observation_height=48, observation_width=64)
    policy_features = env_to_policy_features(cfg)
    expected = {"action": (2,), "observation.state": (6,), "observation.environment_state": (7,)}
    if obs_type == "pixels_state":
        expected["observation.images.top"] = (3, 48, 64)
    assert {k: tuple(f.shape) for k, f in policy_features.items()} == expected
    assert policy_features["observation.environment_state"].type is FeatureType.ENV

    envs = make_env(cfg, n_envs=2)
    vec = envs["docking"][0]
    try:
        assert isinstance(vec, __import__("gymnasium").vector.SyncVectorEnv)
        obs, _ = vec.reset(seed=[1000, 1001])
        batch = preprocess_observation(obs)
        assert set(batch) == set(expected) - {"action"}
        for key, shape in expected.items():
            if key != "action":
                assert tuple(batch[key].shape) == (2, *shape) and batch[key].dtype == torch.float32
        if obs_type == "pixels_state":
            img = batch["observation.images.top"]
            assert 0.0 <= img.min() and img.max() <= 1.0
        assert vec.call("_max_episode_steps") == (cfg.episode_length,) * 2
        assert vec.unwrapped.metadata["render_fps"] == cfg.fps
        assert vec.call("task_description")[0]
        frames = vec.call("render")
        assert frames[0].shape == (cfg.render_size, cfg.render_size, 3)
        # layout of eval seed 1000 == DockingEnv.reset(seed=1000) (what the recorder's env sees)
        np.testing.assert_array_equal(
            obs["environment_state"][0], DockingEnv().reset(seed=1000)[0]["environment_state"]
        )
    finally:
        vec.close()
    with pytest.raises(ValueError):
        make_env_config("docking", obs_type="pixels")


def test_expert_through_vector_env_reports_success_like_lerobot_eval():
    """Drive the vector env the way lerobot-eval does and read is_success from final_info."""
    vec = make_env(make_env_config("docking"), n_envs=2)["docking"][0]
    try:
        obs, _ = vec.reset(seed=[1000, 1001])
        experts = []
        for i in range(2):
            route, style = sample_route_style(expert_rng(1000 + i))
            experts.append(
                DockingExpert.from_observation(obs["agent_pos"][i], obs["environment_state"][i], route, style)
            )
        done = np.zeros(2, dtype=bool)
        success = np.zeros(2, dtype=bool)
        for _ in range(vec.call("_max_episode_steps")[0]):
            action = np.stack([experts[i].act_obs(obs["agent_pos"][i]) for i in range(2)])
            obs, _, term, trunc, info = vec.step(action)
            if "final_info" in info:
                fin = info["final_info"]["is_success"] & info["final_info"]["_is_success"]
                success |= fin & ~done
            done |= term | trunc
            if done.all():
                break
        assert done.all() and success.all()
    finally:
        vec.close()


def test_recorder_features_and_episode():
    rec = DockingRecorder()
    assert rec.fps == 10 and rec.task_description
    feats = rec.features((96, 96), [])
    assert set(feats) == {"observation.state", "observation.environment_state", "action", ROUTE_KEY, STYLE_KEY}
    assert feats[ROUTE_KEY]["dtype"] == "int64" and feats[STYLE_KEY]["shape"] == (1,)
    img_feats = rec.features((48, 64), ["top"])
    assert img_feats["observation.images.top"] == {
        "dtype": "video",
        "shape": (48, 64, 3),
        "names": ["height", "width", "channels"],
    }
    with pytest.raises(ValueError, match="camera"):
        rec.features((48, 64), ["wrist"])

    frames, success, info = rec.record_episode(3, 0.05, (48, 64), ["top"])
    assert success and len(frames) == info["steps"]
    assert info["route_name"] == ROUTE_NAMES[info["route"]] and 0.0 <= info["style"] <= 1.0
    json.dumps(info)
    for f in frames[:3] + frames[-3:]:
        assert set(f) == set(img_feats)
        for k, spec in img_feats.items():
            assert f[k].shape == tuple(spec["shape"]), k
        assert f[ROUTE_KEY][0] == info["route"] and np.isclose(f[STYLE_KEY][0], info["style"])
    # the first frame's observation is the env's reset observation for that seed
    obs0, _ = DockingEnv().reset(seed=3)
    np.testing.assert_array_equal(frames[0]["observation.state"], obs0["agent_pos"])
    np.testing.assert_array_equal(frames[0]["observation.environment_state"], obs0["environment_state"])
    again, _, info2 = rec.record_episode(3, 0.05, None, [])
    assert info2 == info
    np.testing.assert_array_equal(
        np.stack([f["action"] for f in again]), np.stack([f["action"] for f in frames])
    )


def test_recorder_writes_lerobot_dataset_with_route_and_style(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rec = DockingRecorder()
    feats = rec.features(None, [])
    ds = LeRobotDataset.create("local/docking_test", fps=rec.fps, features=feats, root=tmp_path / "ds", use_videos=False)
    infos = []
    for seed in range(6):
        frames, success, info = rec.record_episode(seed, 0.05, None, [])
        assert success
        for f in frames:
            ds.add_frame({**f, "task": rec.task_description})
        ds.save_episode()
        infos.append(info)
    ds.finalize()

    loaded = LeRobotDataset("local/docking_test", root=tmp_path / "ds")
    assert loaded.num_episodes == 6 and loaded.fps == 10
    ep = np.asarray(loaded.hf_dataset["episode_index"]).reshape(-1)
    routes = np.asarray(loaded.hf_dataset[ROUTE_KEY]).reshape(-1)
    styles = np.asarray(loaded.hf_dataset[STYLE_KEY]).reshape(-1)
    for i, info in enumerate(infos):
        assert set(routes[ep == i]) == {info["route"]}
        np.testing.assert_allclose(styles[ep == i], info["style"], rtol=1e-6)
    item = loaded[0]
    assert item["observation.state"].shape == (6,) and item["action"].shape == (2,)
    assert int(item[ROUTE_KEY]) == infos[0]["route"]
    # LeRobot policies do not see the labels as inputs
    from lerobot.utils.feature_utils import dataset_to_policy_features

    assert set(dataset_to_policy_features(loaded.meta.features)) == {
        "observation.state",
        "observation.environment_state",
        "action",
    }


def test_hybrid_act_record_cli_docking(tmp_path):
    """`hybrid-act-record --task docking` dispatches to DockingRecorder and keeps route/style labels."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_hybrid_act import record

    root = tmp_path / "dk"
    argv = ["--task", "docking", "--episodes", "4", "--repo-id", "local/dk_cli", "--root", str(root)]
    assert record.main([*argv, "--cameras", "none", "--noise", "0.05"]) == 0
    summary = json.loads((root / "meta" / "hybrid_act_recording.json").read_text())
    assert summary["episodes"] == 4 and summary["fps"] == 10
    ds = LeRobotDataset("local/dk_cli", root=root)
    ep = np.asarray(ds.hf_dataset["episode_index"]).reshape(-1)
    routes = np.asarray(ds.hf_dataset[ROUTE_KEY]).reshape(-1)
    for info in summary["episodes_info"]:
        assert set(routes[ep == info["episode_index"]]) == {info["route"]}
        assert info["route_name"] in ("left", "right") and 0.0 <= info["style"] <= 1.0


def test_hybrid_act_record_pairs_routes_per_layout(tmp_path):
    """`--routes-per-layout 2`: every layout (seed) once per route, same style and start, written in the meta."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_hybrid_act import record

    root = tmp_path / "paired"
    argv = ["--task", "docking", "--episodes", "6", "--repo-id", "local/dk_paired", "--root", str(root),
            "--cameras", "none", "--noise", "0.05", "--routes-per-layout", "2"]
    assert record.main(argv) == 0
    summary = json.loads((root / "meta" / "hybrid_act_recording.json").read_text())
    assert summary["episodes"] == 6 and summary["routes_per_layout"] == 2
    infos = summary["episodes_info"]
    assert summary["seeds"] == [0, 0, 1, 1, 2, 2]
    for left, right in zip(infos[::2], infos[1::2], strict=True):
        assert (left["route"], right["route"]) == (0, 1)
        assert left["style"] == right["style"] and left["layout"] == right["layout"]
    ds = LeRobotDataset("local/dk_paired", root=root)
    ep = np.asarray(ds.hf_dataset["episode_index"]).reshape(-1)
    state = np.stack(ds.hf_dataset["observation.state"])
    assert np.array_equal(state[ep == 0][0], state[ep == 1][0])  # one start, two demonstrated routes
    routes = np.asarray(ds.hf_dataset[ROUTE_KEY]).reshape(-1)
    assert routes[ep % 2 == 0].tolist() == [0] * int((ep % 2 == 0).sum())
    assert set(routes[ep % 2 == 1]) == {1}


def test_hybrid_act_record_routes_per_layout_errors(tmp_path, capsys):
    from lerobot_hybrid_act import record

    base = ["--repo-id", "local/x", "--root", str(tmp_path / "x"), "--cameras", "none"]
    assert record.main(["--task", "docking", "--episodes", "5", "--routes-per-layout", "2", *base]) == 2
    assert "multiple of --routes-per-layout" in capsys.readouterr().err
    assert record.main(["--task", "docking", "--episodes", "6", "--routes-per-layout", "3", *base]) == 2
    assert "has only 2 routes" in capsys.readouterr().err
    assert record.main(["--task", "aloha_insertion", "--episodes", "2", "--routes-per-layout", "2", *base]) == 2
    assert "has no routes" in capsys.readouterr().err


ACT_CHECKPOINT_SCRIPT = """
import sys
import lerobot_hybrid_act  # registers env type docking
from lerobot.configs import FeatureType
from lerobot.envs.factory import make_env_config
from lerobot.envs.utils import env_to_policy_features
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

feats = env_to_policy_features(make_env_config("docking"))
cfg = ACTConfig(
    device="cpu", chunk_size=10, n_action_steps=10, dim_model=32, n_heads=2, dim_feedforward=64,
    n_encoder_layers=1, n_decoder_layers=1, use_vae=False,
    input_features={k: f for k, f in feats.items() if f.type is not FeatureType.ACTION},
    output_features={k: f for k, f in feats.items() if f.type is FeatureType.ACTION},
)
policy = ACTPolicy(cfg)
pre, post = make_pre_post_processors(cfg, dataset_stats=None)
for obj in (policy, pre, post):
    obj.save_pretrained(sys.argv[1])
"""


@pytest.mark.slow
def test_lerobot_eval_act_on_docking(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    ckpt, out = tmp_path / "act", tmp_path / "eval"
    subprocess.run([sys.executable, "-c", ACT_CHECKPOINT_SCRIPT, str(ckpt)], check=True, env=env)
    lerobot_eval = os.path.join(os.path.dirname(sys.executable), "lerobot-eval")
    proc = subprocess.run(
        [
            lerobot_eval,
            f"--policy.path={ckpt}",
            "--policy.device=cpu",
            "--env.type=docking",
            "--env.episode_length=60",
            "--eval.n_episodes=1",
            "--eval.batch_size=1",
            f"--output_dir={out}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    info = json.loads((out / "eval_info.json").read_text())
    overall = info["overall"]
    assert overall["n_episodes"] == 1 and 0.0 <= overall["pc_success"] <= 100.0
    videos = list((out / "videos").rglob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


@pytest.mark.slow
def test_lerobot_train_act_on_recorded_docking_dataset(tmp_path):
    """Recorder -> LeRobotDataset -> lerobot-train (ACT, 4 steps) with in-training eval on env.type=docking."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    rec = DockingRecorder()
    root = tmp_path / "ds"
    ds = LeRobotDataset.create("local/docking_train", fps=rec.fps, features=rec.features(None, []), root=root)
    for seed in range(4):
        frames, success, _ = rec.record_episode(seed, 0.05, None, [])
        assert success
        for f in frames:
            ds.add_frame({**f, "task": rec.task_description})
        ds.save_episode()
    ds.finalize()

    out = tmp_path / "train"
    lerobot_train = os.path.join(os.path.dirname(sys.executable), "lerobot-train")
    proc = subprocess.run(
        [
            lerobot_train,
            "--policy.type=act",
            "--policy.device=cpu",
            "--policy.push_to_hub=false",
            "--policy.dim_model=32",
            "--policy.n_heads=2",
            "--policy.dim_feedforward=64",
            "--policy.n_encoder_layers=1",
            "--policy.n_decoder_layers=1",
            "--policy.chunk_size=10",
            "--policy.n_action_steps=10",
            "--dataset.repo_id=local/docking_train",
            f"--dataset.root={root}",
            "--env.type=docking",
            "--env.episode_length=40",
            "--steps=4",
            "--batch_size=8",
            "--env_eval_freq=4",
            "--eval.n_episodes=1",
            "--eval.batch_size=1",
            "--save_freq=4",
            "--num_workers=0",
            "--wandb.enable=false",
            f"--output_dir={out}",
        ],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    cfg = json.loads((out / "checkpoints" / "last" / "pretrained_model" / "config.json").read_text())
    assert set(cfg["input_features"]) == {"observation.state", "observation.environment_state"}
    assert cfg["output_features"]["action"]["shape"] == [2]
    assert list((out / "eval").rglob("*.mp4"))
