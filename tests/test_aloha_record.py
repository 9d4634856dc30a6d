"""`hybrid-act-record`: datasets that load back, scripted success, seed bookkeeping, bad input."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import json  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lerobot_hybrid_act import record  # noqa: E402


def run(argv):
    return record.main([str(a) for a in argv])


def load(repo_id, root, **kw):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    # torchcodec cannot load here (no system FFmpeg libraries): decode with PyAV.
    return LeRobotDataset(repo_id, root=root, video_backend="pyav", **kw)


# ------------------------------------------------------------------------------------------ a fake task
class FakeRecorder:
    """Protocol-conforming task; seed 1 fails. Registered through `record.TASKS` by the fixture."""

    fps = 10
    task_description = "fake task"
    calls: list = []

    def features(self, image_size, cameras):
        return {"observation.state": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]},
                "action": {"dtype": "float32", "shape": (2,), "names": ["a", "b"]}}

    def record_episode(self, seed, noise, image_size, cameras):
        FakeRecorder.calls.append(seed)
        frames = [{"observation.state": np.full(2, seed, np.float32), "action": np.full(2, t, np.float32)}
                  for t in range(5)]
        return frames, seed != 1, {"seed": seed}


@pytest.fixture
def fake_task(monkeypatch):
    mod = types.ModuleType("fake_hybrid_act_task")
    mod.FakeRecorder = FakeRecorder
    monkeypatch.setitem(sys.modules, "fake_hybrid_act_task", mod)
    monkeypatch.setitem(record.TASKS, "fake", "fake_hybrid_act_task:FakeRecorder")
    FakeRecorder.calls = []
    return "fake"


def test_failed_episodes_are_dropped_counted_and_seeds_recorded(fake_task, tmp_path, capsys):
    root = tmp_path / "ds"
    assert run(["--task", "fake", "--episodes", 3, "--repo-id", "local/fake", "--root", root, "--cameras", "none"]) == 0
    assert FakeRecorder.calls == [0, 1, 2, 3]
    info = json.loads((root / record.RECORDING_INFO_FILE).read_text())
    assert info["seeds"] == [0, 2, 3] and info["failed_seeds"] == [1] and info["attempts"] == 4
    assert info["scripted_success_rate"] == pytest.approx(0.75)
    assert "75.0%" in capsys.readouterr().out
    ds = load("local/fake", root)
    assert ds.num_episodes == 3 and len(ds) == 15
    # dataset episode i was recorded with seeds[i]
    assert [float(ds[i * 5]["observation.state"][0]) for i in range(3)] == [0.0, 2.0, 3.0]


def test_existing_dataset_is_never_overwritten_silently(fake_task, tmp_path, capsys):
    root = tmp_path / "ds"
    base = ["--task", "fake", "--repo-id", "local/fake", "--root", root, "--cameras", "none"]
    assert run([*base, "--episodes", 1]) == 0
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    info_before = (root / "meta" / "info.json").read_text()
    assert run([*base, "--episodes", 2]) == 2
    assert "already holds a LeRobot dataset" in capsys.readouterr().err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert (root / "meta" / "info.json").read_text() == info_before
    # explicit --overwrite replaces it
    assert run([*base, "--episodes", 2, "--overwrite"]) == 0
    assert load("local/fake", root).num_episodes == 2


def test_non_dataset_directory_is_refused_even_with_overwrite(fake_task, tmp_path, capsys):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    code = run(["--task", "fake", "--episodes", 1, "--repo-id", "local/fake", "--root", root, "--overwrite"])
    assert code == 2 and "not empty" in capsys.readouterr().err
    assert (root / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--task", "stack_blocks"], "Unknown task 'stack_blocks'"),
        (["--episodes", 0], "--episodes must be >= 1"),
        (["--image-size", "0x0"], "outside"),
        (["--image-size", "96"], "HxW"),
        (["--image-size", "97x128"], "even"),
        (["--image-size", "96x100000"], "outside"),
        (["--noise", "-0.1"], "--noise"),
        (["--seed", 995], "overlap LeRobot's evaluation seeds"),
        (["--seed", 1000], "overlap"),
        (["--episodes", 980], "overlap"),
        (["--cameras", "nope"], "Unknown camera"),
    ],
)
def test_bad_input_gives_a_clear_error(extra, match, tmp_path, capsys):
    argv = {"--task": "aloha_transfer_cube", "--episodes": 2, "--repo-id": "local/x", "--root": tmp_path / "ds",
            "--image-size": "32x48"}
    for k, v in zip(extra[::2], extra[1::2]):
        argv[k] = v
    code = run([x for kv in argv.items() for x in kv])
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_missing_task_module_gives_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(record.TASKS, "ghost", "lerobot_hybrid_act.no_such_module:Recorder")
    assert run(["--task", "ghost", "--episodes", 1, "--repo-id", "local/x", "--root", tmp_path / "ds"]) == 2
    assert "not available" in capsys.readouterr().err


def test_docking_task_is_registered():
    assert record.TASKS["docking"] == "lerobot_hybrid_act.docking.recording:DockingRecorder"


def test_seeds_above_the_eval_range_are_allowed():
    record.check_seed_range(record.EVAL_SEED_END, 10)
    record.check_seed_range(0, record.EVAL_SEED_START)
    with pytest.raises(record.RecordError):
        record.check_seed_range(0, record.EVAL_SEED_START + 1)


# ------------------------------------------------------------------------------------------ real ALOHA
def test_record_transfer_cube_writes_a_loadable_dataset(tmp_path):
    root = tmp_path / "tc"
    argv = ["--task", "aloha_transfer_cube", "--episodes", 2, "--repo-id", "local/tc", "--root", root,
            "--image-size", "32x48", "--cameras", "top"]
    assert run(argv) == 0
    ds = load("local/tc", root, delta_timestamps={"action": [i / 50 for i in range(10)]})
    assert ds.num_episodes == 2 and len(ds) == 800 and ds.fps == 50
    item = ds[0]
    assert item["observation.images.top"].shape == (3, 32, 48)
    assert 0.05 < float(item["observation.images.top"].mean()) < 0.95
    assert item["observation.state"].shape == (14,) and item["observation.environment_state"].shape == (7,)
    assert item["action"].shape == (10, 14)
    assert item["task"].startswith("Pick up the red cube")
    # episode 1 is seed 1: its first environment_state is gym_aloha's reset(seed=1) cube pose
    from gym_aloha.utils import sample_box_pose

    np.testing.assert_allclose(ds[400]["observation.environment_state"].numpy(), sample_box_pose(1), atol=1e-6)
    info = json.loads((root / record.RECORDING_INFO_FILE).read_text())
    assert info["seeds"] == [0, 1] and info["image_size"] == [32, 48] and info["cameras"] == ["top"]
    assert all(e["max_reward"] == 4 for e in info["episodes_info"])

    # The recorded (float32) actions, replayed from reset(seed=1) in the eval env, solve the task again.
    from lerobot_hybrid_act.aloha.env import AlohaFastEnv

    actions = ds.hf_dataset.with_format("numpy")["action"][400:800]
    env = AlohaFastEnv("transfer_cube", cameras=[])
    obs, _ = env.reset(seed=1)
    np.testing.assert_allclose(obs["agent_pos"], ds[400]["observation.state"].numpy(), atol=1e-6)
    rewards = [env.step(np.asarray(a, dtype=np.float64))[1] for a in actions]
    assert max(rewards) == 4


def test_record_insertion_state_only(tmp_path):
    root = tmp_path / "ins"
    argv = ["--task", "aloha_insertion", "--episodes", 1, "--repo-id", "local/ins", "--root", root, "--cameras",
            "none", "--noise", "0.005", "--seed", 3]
    assert run(argv) == 0
    ds = load("local/ins", root)
    assert ds.num_episodes == 1 and len(ds) == 400
    assert not ds.meta.video_keys and not ds.meta.image_keys
    assert ds[0]["observation.environment_state"].shape == (14,)


def test_scripted_demo_is_deterministic_per_seed_and_noise_is_seeded():
    from lerobot_hybrid_act.aloha.scripted import ScriptedDemonstrator

    demo = ScriptedDemonstrator("transfer_cube")
    a = demo.run(5).joint_actions
    np.testing.assert_array_equal(a, demo.run(5).joint_actions)
    assert not np.allclose(a, demo.run(6).joint_actions)
    n1, n2 = demo.run(5, noise=0.01).joint_actions, demo.run(5, noise=0.01).joint_actions
    np.testing.assert_array_equal(n1, n2)
    assert not np.allclose(a, n1)


@pytest.mark.slow
@pytest.mark.parametrize("task,n,min_ok", [("transfer_cube", 50, 48), ("insertion", 50, 45)])
def test_scripted_success_rate(task, n, min_ok):
    """Issue targets: >= 95% transfer cube, >= 90% insertion over 50 seeds (measured 50/50 and 48/50)."""
    from lerobot_hybrid_act.aloha.env import AlohaFastEnv
    from lerobot_hybrid_act.aloha.scripted import ScriptedDemonstrator, replay

    demo, env = ScriptedDemonstrator(task), AlohaFastEnv(task, cameras=[])
    ok = sum(replay(env, demo.run(seed))[0] == 4 for seed in range(n))
    assert ok >= min_ok, f"{task}: {ok}/{n}"
