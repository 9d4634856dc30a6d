"""Deployment end to end on the simulated robot `docking_sim`, through LeRobot's own tools: a tiny
hybrid_act_c trained with lerobot-train on a `docking_sim` recording, then run by `lerobot-rollout`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
IMAGE = 32
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
ROBOT = [
    "--robot.type=docking_sim",
    f"--robot.image_height={IMAGE}",
    f"--robot.image_width={IMAGE}",
    "--robot.episode_length=20",
]


def run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)
    assert out.returncode == 0, f"{cmd}\n--- stdout\n{out.stdout[-4000:]}\n--- stderr\n{out.stderr[-6000:]}"
    return out


def read_episodes(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory) -> Path:
    """hybrid_act_c trained for 4 steps on 3 demos recorded in docking_sim's layout (like
    `hybrid-act-record --task docking_sim`, with PNG frames instead of videos to stay fast)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from lerobot_hybrid_act.robots.docking_sim import DockingSimRecorder

    tmp = tmp_path_factory.mktemp("deploy")
    rec = DockingSimRecorder()
    rec.use_video = False
    features = rec.features((IMAGE, IMAGE), ["top"])
    ds = LeRobotDataset.create("local/docking_sim_tiny", fps=rec.fps, features=features, root=tmp / "ds", use_videos=False)
    for seed in range(3):
        frames, success, _ = rec.record_episode(seed, 0.05, (IMAGE, IMAGE), ["top"])
        assert success
        for frame in frames:
            ds.add_frame({**frame, "task": rec.task_description})
        ds.save_episode()
    ds.finalize()

    overrides = [f"--policy.{k}={'null' if v is None else v}" for k, v in TINY.items()]
    run([BIN / "lerobot-train", "--policy.type=hybrid_act_c", "--dataset.repo_id=local/docking_sim_tiny",
         f"--dataset.root={tmp / 'ds'}", "--policy.device=cpu", "--policy.push_to_hub=false", *overrides,
         "--steps=4", "--batch_size=4", "--save_freq=4", "--num_workers=0", f"--output_dir={tmp / 'train'}",
         "--wandb.enable=false"], cwd=tmp)  # fmt: skip
    return tmp / "train" / "checkpoints" / "last" / "pretrained_model"


def rollout(policy_path: Path, log: Path, duration: float, *extra: str) -> subprocess.CompletedProcess:
    return run([BIN / "lerobot-rollout", f"--policy.path={policy_path}", *ROBOT, f"--robot.episode_log={log}",
                "--fps=50", f"--duration={duration}", "--return_to_initial_position=false", "--play_sounds=false",
                *extra], cwd=log.parent)  # fmt: skip


def check_episodes(episodes: list[dict], proc: subprocess.CompletedProcess) -> None:
    assert len(episodes) >= 2, proc.stderr[-3000:]
    assert [e["seed"] for e in episodes] == list(range(1000, 1000 + len(episodes)))
    for e in episodes:
        assert isinstance(e["success"], bool) and 0 < e["steps"] <= 20
        assert e["travelled"] > 0  # the policy's actions reached the robot and moved the vehicle


def test_lerobot_rollout_sync_with_and_without_torch_compile(policy_path, tmp_path):
    plain = rollout(policy_path, tmp_path / "plain.jsonl", 3)
    check_episodes(read_episodes(tmp_path / "plain.jsonl"), plain)
    assert "docking_sim episode 0 (seed 1000): success=" in plain.stderr

    # torch.compile wraps predict_action_chunk; the eager backend keeps dynamo's tracing but skips the
    # C++ code generation of inductor (which also works, after ~1 min of compiling on 2 CPU cores).
    compiled = rollout(policy_path, tmp_path / "compiled.jsonl", 10, "--use_torch_compile=true",
                       "--torch_compile_backend=eager")  # fmt: skip
    assert "torch.compile configured for predict_action_chunk" in compiled.stderr
    check_episodes(read_episodes(tmp_path / "compiled.jsonl"), compiled)
