"""Deployment end to end on the simulated robot `docking_sim`, through LeRobot's own tools: a tiny
hybrid_act_c trained with lerobot-train on a `docking_sim` recording, then run by `lerobot-rollout` (sync and
real-time chunking) and by LeRobot's async robot client against `hybrid-act-policy-server` (on 127.0.0.1 only)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
IMAGE = 32
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
TIMEOUT = 240  # seconds, for each wait on a background process (generous: CI machines may be loaded)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@contextmanager
def process(cmd: list, log: Path):
    """A background process writing to `log`; always stopped on exit (SIGTERM, then SIGKILL)."""
    with open(log, "w") as out:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=subprocess.STDOUT, env=ENV, cwd=log.parent)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.2)


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


def rollout(policy_path: Path, log: Path, *extra: str) -> str:
    """lerobot-rollout on docking_sim until two episodes are logged, then Ctrl-C (its clean shutdown)."""
    out = log.with_suffix(".log")
    cmd = [BIN / "lerobot-rollout", f"--policy.path={policy_path}", *ROBOT, f"--robot.episode_log={log}", "--fps=50",
           "--duration=300", "--return_to_initial_position=false", "--play_sounds=false", *extra]  # fmt: skip
    with process(cmd, out) as proc:
        wait_for(lambda: proc.poll() is not None or len(read_episodes(log)) >= 2, TIMEOUT, "two rollout episodes")
        assert proc.poll() is None, out.read_text()[-3000:]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()[-3000:]
    return out.read_text()


def check_episodes(episodes: list[dict]) -> None:
    assert len(episodes) >= 2
    assert [e["seed"] for e in episodes] == list(range(1000, 1000 + len(episodes)))
    for e in episodes:
        assert isinstance(e["success"], bool) and 0 < e["steps"] <= 20
        assert e["travelled"] > 0  # the policy's actions reached the robot and moved the vehicle


def test_lerobot_rollout_sync_with_and_without_torch_compile(policy_path, tmp_path):
    plain = rollout(policy_path, tmp_path / "plain.jsonl")
    check_episodes(read_episodes(tmp_path / "plain.jsonl"))
    assert "docking_sim episode 0 (seed 1000): success=" in plain and "Rollout finished" in plain

    # torch.compile wraps predict_action_chunk; the eager backend keeps dynamo's tracing but skips the
    # C++ code generation of inductor (which also works, after ~1 min of compiling on 2 CPU cores).
    compiled = rollout(policy_path, tmp_path / "compiled.jsonl", "--use_torch_compile=true",
                       "--torch_compile_backend=eager")  # fmt: skip
    assert "torch.compile configured for predict_action_chunk" in compiled
    check_episodes(read_episodes(tmp_path / "compiled.jsonl"))


# ------------------------------------------------------------------------------------- real-time chunking


def read_actions(log: Path) -> list[list[float]]:
    return [json.loads(line)["action"] for line in log.read_text().splitlines()]


def test_lerobot_rollout_rtc_inpaints_the_previous_chunk(policy_path, tmp_path):
    """--inference.type=rtc: LeRobot's background thread passes each chunk's leftover as prev_chunk_left_over.
    With the ONES schedule over the whole chunk (execution_horizon = chunk_size) every new chunk must equal the
    leftover (padded by LeRobot with zeros, the normalised mean action), so after the first chunk the robot only
    receives actions of that first chunk or the mean action; a policy that ignored the leftover would send a new
    sample at every step."""
    chunk_size = TINY["chunk_size"]
    actions_log = tmp_path / "rtc_actions.jsonl"
    out = rollout(policy_path, tmp_path / "rtc.jsonl", "--inference.type=rtc",
                  "--inference.rtc.prefix_attention_schedule=ONES", f"--inference.rtc.execution_horizon={chunk_size}",
                  f"--robot.action_log={actions_log}")  # fmt: skip
    assert "RTC inference thread started" in out and "RTC inference error" not in out
    episodes = read_episodes(tmp_path / "rtc.jsonl")
    check_episodes(episodes)
    actions = np.array(read_actions(actions_log))
    assert len(actions) >= sum(e["steps"] for e in episodes) and len(actions) >= 3 * chunk_size
    distinct = [a for i, a in enumerate(actions) if i == 0 or np.abs(actions[:i] - a).max(axis=1).min() > 1e-4]
    assert 2 <= len(distinct) <= chunk_size + 1, len(distinct)


def test_lerobot_rollout_rtc_reports_a_policy_that_cannot_inpaint(policy_path, tmp_path):
    """A checkpoint trained with prediction_type=epsilon cannot inpaint its clean-chunk prediction: lerobot-rollout
    calls ``init_rtc_processor`` while it builds the rollout, which refuses with our message before any action."""
    epsilon = tmp_path / "epsilon"
    shutil.copytree(policy_path, epsilon)
    config = json.loads((epsilon / "config.json").read_text())
    # (the reconstruction term needs prediction_type='sample', so an epsilon checkpoint has recon_weight 0)
    (epsilon / "config.json").write_text(json.dumps({**config, "prediction_type": "epsilon", "recon_weight": 0.0}))
    out = tmp_path / "epsilon.log"
    cmd = [BIN / "lerobot-rollout", f"--policy.path={epsilon}", *ROBOT, "--fps=50", "--duration=300",
           "--return_to_initial_position=false", "--play_sounds=false", "--inference.type=rtc"]  # fmt: skip
    with process(cmd, out) as proc:
        returncode = proc.wait(timeout=TIMEOUT)
    text = out.read_text()
    assert returncode != 0, text[-3000:]
    assert "this policy was trained with prediction_type='epsilon'; use a checkpoint trained with " in text
    assert "RTC inference error" not in text  # refused at startup, not retried in the inference thread


# ---------------------------------------------------------------------------------------- async inference


def client(port: int, policy_path: Path, log: Path, policy_type: str = "hybrid_act_c", *robot: str) -> list:
    """LeRobot's own robot client (as its README runs it) driving docking_sim."""
    return [sys.executable, "-m", "lerobot.async_inference.robot_client", f"--server_address=127.0.0.1:{port}",
            *ROBOT, *robot, f"--robot.episode_log={log}", f"--policy_type={policy_type}",
            f"--pretrained_name_or_path={policy_path}", "--policy_device=cpu", "--actions_per_chunk=8", "--fps=20",
            "--task=dock"]  # fmt: skip


def test_async_inference_server_serves_lerobot_robot_client(policy_path, tmp_path):
    port = free_port()
    server_log = tmp_path / "server.log"
    server_cmd = [sys.executable, "-m", "lerobot_hybrid_act.deploy.policy_server", "--host=127.0.0.1",
                  f"--port={port}", "--fps=20", "--inference_latency=0"]  # fmt: skip
    with process(server_cmd, server_log) as server:
        wait_for(lambda: server.poll() is not None or port_open(port), TIMEOUT, "the policy server to listen")
        assert server.poll() is None, server_log.read_text()[-3000:]

        # Refusals reach LeRobot's client as the server's message; the client then exits.
        refusals = [
            ("hybrid_act_z", [], "Policy type 'hybrid_act_z' is not served here"),
            ("hybrid_act_c", ["--robot.camera=false"], "needs observation.images.top, the robot's cameras are []"),
        ]
        for policy_type, robot, message in refusals:
            out = run(client(port, policy_path, tmp_path / "refused.jsonl", policy_type, *robot), tmp_path, timeout=TIMEOUT)
            assert "INVALID_ARGUMENT" in out.stderr + out.stdout and message in out.stderr + out.stdout

        # A client that disconnects abruptly mid-episode (SIGKILL) ...
        def chunks() -> int:
            return server_log.read_text().count("Action chunk #")

        served = chunks()
        with process(client(port, policy_path, tmp_path / "a.jsonl", "hybrid_act_c", "--robot.episode_length=200"),
                     tmp_path / "a.log") as first:  # fmt: skip
            wait_for(lambda: first.poll() is not None or chunks() >= served + 2, TIMEOUT, "the first client's chunks")
            assert first.poll() is None, (tmp_path / "a.log").read_text()[-3000:]
            first.kill()
            first.wait(timeout=20)

        # ... leaves the server serving the next client.
        log = tmp_path / "b.jsonl"
        with process(client(port, policy_path, log), tmp_path / "b.log") as second:
            wait_for(lambda: second.poll() is not None or len(read_episodes(log)) >= 2, TIMEOUT, "two async episodes")
            assert second.poll() is None, (tmp_path / "b.log").read_text()[-3000:]
            second.send_signal(signal.SIGINT)  # Ctrl-C: LeRobot's client stops its loop and disconnects the robot
            try:
                second.wait(timeout=30)
            except subprocess.TimeoutExpired:  # LeRobot's client sometimes hangs in its own shutdown: not ours to test
                second.kill()
                second.wait(timeout=30)
        assert server.poll() is None
    episodes = read_episodes(log)
    assert [e["seed"] for e in episodes] == list(range(1000, 1000 + len(episodes)))
    assert all(isinstance(e["success"], bool) and e["travelled"] > 0 for e in episodes)
    server_out = server_log.read_text()
    assert server_out.count("Refusing policy instructions") == 2
    assert server_out.count("connected and ready") == 4
