"""Smoke test of benchmarks/rtc_delay.py on a tiny untrained docking hybrid_act_c, 2 episodes: every scheme x delay
row is written, and the real-time-chunking rows really inpaint the previous chunk. No assertions about success."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import TINY

REPO = Path(__file__).resolve().parents[1]
SCHEMES, DELAYS = {"plain", "ensemble", "rtc"}, {0, 2, 4, 8}


def make_docking_checkpoint(path: Path, **overrides) -> Path:
    """Untrained tiny hybrid_act_c on docking's state + environment state, with saved pre/post processors."""
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    from lerobot_hybrid_act.configuration_hybrid_act import HybridActCConfig

    shapes = {"observation.state": 6, "observation.environment_state": 7, "action": 2}
    kinds = {"observation.state": FeatureType.STATE, "observation.environment_state": FeatureType.ENV}
    # chunk_size 20 / n_action_steps 10: docking's defaults, which leave room for a delay of 8 steps.
    cfg = HybridActCConfig(
        device="cpu",
        input_features={k: PolicyFeature(kind, (shapes[k],)) for k, kind in kinds.items()},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        **{**TINY, "chunk_size": 20, "n_action_steps": 10, **overrides},
    )
    torch.manual_seed(0)
    policy = get_policy_class("hybrid_act_c")(cfg)
    stats = {k: {"mean": torch.zeros(n), "std": torch.ones(n) * 3, "min": -torch.ones(n), "max": torch.ones(n)}
             for k, n in shapes.items()}  # fmt: skip
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    for obj in (policy, pre, post):
        obj.save_pretrained(path)
    return path


def run(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "rtc_delay.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)  # fmt: skip


def test_rtc_delay_benchmark_smoke(tmp_path):
    ckpt = make_docking_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "rtc.json"
    proc = run("--checkpoint", ckpt, "--episodes", 2, "--timing-calls", 3, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())

    assert r["checkpoints"] == [str(ckpt)] and r["episode_seeds"] == [2000, 2001]
    assert (r["chunk_size"], r["n_action_steps"], r["execution_horizon"]) == (20, 10, 10)
    for rows in (r["pooled"], r["per_checkpoint"]):
        assert {(row["scheme"], row["delay"]) for row in rows} == {(s, d) for s in SCHEMES for d in DELAYS}
        assert len(rows) == len(SCHEMES) * len(DELAYS)
        assert all(row["episodes"] == 2 and 0 <= row["successes"] <= 2 for row in rows)
        for row in rows:
            lo, hi = row["success_ci95"]
            assert lo <= row["success_rate"] <= hi
            # Ensembling starts a new chunk at every step: no chunk boundaries to measure.
            assert (row["boundary_ratio"]["mean"] is None) == (row["scheme"] == "ensemble"), row
            assert row["chunk_period"] == (None if row["scheme"] == "ensemble" else 10), row  # n_action_steps
            assert row["jerk_rms"]["mean"] > 0
            # RTC: each new chunk's first d actions (executed by the previous chunk while it was computed) are the
            # previous chunk's leftover, exactly; the other schemes never pass a leftover.
            diff = row["rtc_prefix_max_abs_diff"]
            if row["scheme"] == "rtc" and row["delay"] > 0:
                assert diff is not None and diff < 1e-5, row
            else:
                assert diff is None, row
    assert r["rtc_mode"] == [{"checkpoint": str(ckpt), "rtc_train_max_delay": 0, "rtc": "inpainting"}]
    assert r["rtc_cost"][0]["plain_ms"] > 0 and r["rtc_cost"][0]["rtc_ms"] > 0
    # RTC against plain chunking, paired over the same episodes at every delay: the counts agree with the rows.
    pooled = {(row["scheme"], row["delay"]): row["successes"] for row in r["pooled"]}
    assert [p["delay"] for p in r["rtc_minus_plain"]] == sorted(DELAYS)
    for p in r["rtc_minus_plain"]:
        counts = pooled[("rtc", p["delay"])] - pooled[("plain", p["delay"])]
        assert p["only_second"] - p["only_first"] == counts and p["difference"] == counts / 2, p
    assert out.with_suffix(".png").stat().st_size > 0
    assert "| rtc | 4 |" in proc.stdout and "RTC cost per chunk" in proc.stdout


def test_rtc_delay_benchmark_refuses_a_delay_longer_than_the_chunk_allows(tmp_path):
    ckpt = make_docking_checkpoint(tmp_path / "ckpt")
    proc = run("--checkpoint", ckpt, "--episodes", 1, "--delays", "0,12", "--out", tmp_path / "rtc.json")
    assert proc.returncode != 0
    assert "a delay of 12 plus a chunk period of 10 steps exceeds chunk_size=20" in proc.stderr
    # LeRobot's RTC engine schedule: with a queue threshold of 8, chunks come every 20 - 8 = 12 steps.
    proc = run("--checkpoint", ckpt, "--episodes", 1, "--delays", "0,10", "--queue-threshold", 8, "--out",
               tmp_path / "rtc.json")  # fmt: skip
    assert proc.returncode != 0
    assert "a delay of 10 plus a chunk period of 12 steps exceeds chunk_size=20: the queue would run dry" in proc.stderr


def test_rtc_delay_benchmark_schedules_chunks_like_lerobots_rtc_engine(tmp_path):
    """--queue-threshold N: plain and RTC chunks every max(d, chunk_size - N) steps (back to back once the
    threshold holds every queued action), the boundaries counted at that period, the RTC prefix still exact."""
    ckpt = make_docking_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "rtc.json"
    proc = run("--checkpoint", ckpt, "--episodes", 2, "--delays", "0,4,8", "--schemes", "plain,rtc", "--timing-calls",
               2, "--queue-threshold", 14, "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["queue_threshold"] == 14
    period = {(row["scheme"], row["delay"]): row["chunk_period"] for row in r["pooled"]}
    assert period == {(s, d): p for s in ("plain", "rtc") for d, p in ((0, 6), (4, 6), (8, 8))}
    for row in r["pooled"]:
        assert row["boundary_ratio"]["mean"] > 0
        if row["scheme"] == "rtc" and row["delay"] > 0:
            assert row["rtc_prefix_max_abs_diff"] < 1e-5, row
    assert "| rtc | 4 | 6 |" in proc.stdout and "queue_threshold 14" in proc.stdout


def test_rtc_delay_benchmark_refuses_headline_seeds_and_records_its_settings(tmp_path):
    ckpt = make_docking_checkpoint(tmp_path / "ckpt")
    proc = run("--checkpoint", ckpt, "--first-seed", 1000, "--out", tmp_path / "rtc.json")
    assert proc.returncode != 0 and "seeds 1000-1999 are lerobot-eval's headline episodes" in proc.stderr
    out = tmp_path / "design.json"
    proc = run("--checkpoint", ckpt, "--episodes", 1, "--delays", 4, "--timing-calls", 2, "--first-seed", 3000,
               "--execution-horizon", 7, "--schedule", "EXP", "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["episode_seeds"] == [3000, 3000]
    assert (r["execution_horizon"], r["prefix_attention_schedule"]) == (7, "EXP")


def test_rtc_delay_benchmark_with_a_trained_prefix_and_fewer_schemes(tmp_path):
    """A checkpoint trained with rtc_train_max_delay: RTC gives it the leftover's first d actions (exactly those
    come back), and --schemes leaves the slow ensembling out."""
    ckpt = make_docking_checkpoint(tmp_path / "ckpt", rtc_train_max_delay=8)
    out = tmp_path / "rtc.json"
    proc = run("--checkpoint", ckpt, "--episodes", 2, "--delays", "0,4", "--schemes", "plain,rtc", "--timing-calls", 2,
               "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["schemes"] == ["plain", "rtc"] and r["rtc_mode"][0]["rtc"] == "a given prefix (trained)"
    assert {(row["scheme"], row["delay"]) for row in r["pooled"]} == {(s, d) for s in ("plain", "rtc") for d in (0, 4)}
    rtc4 = next(row for row in r["pooled"] if row["scheme"] == "rtc" and row["delay"] == 4)
    assert rtc4["rtc_prefix_max_abs_diff"] < 1e-5
    assert run("--checkpoint", ckpt, "--schemes", "plain,fast", "--out", out).returncode != 0


def _load_benchmark():
    import importlib.util

    spec = importlib.util.spec_from_file_location("rtc_delay", REPO / "benchmarks" / "rtc_delay.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chunk_period_is_the_schedule_of_lerobots_action_queue():
    """The benchmark's ``chunk_period`` against LeRobot's own RTC ``ActionQueue``, driven as its RTC engine drives it:
    a chunk is requested when at most ``queue_threshold`` actions are queued, is merged ``d`` control steps later
    (its first d actions dropped) while the robot takes one action per step. Chunk k's action i is 100 k + i, so
    the leftover the engine passes shows which actions of the previous chunk it holds."""
    from lerobot.policies.rtc.action_queue import ActionQueue
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    chunk_period = _load_benchmark().chunk_period
    chunk_size = 20

    def chunk(k: int) -> torch.Tensor:
        return (100.0 * k + torch.arange(chunk_size, dtype=torch.float32)).unsqueeze(-1)

    for delay in (1, 2, 4, 8):
        for threshold in (8, 10, 14, 30):
            period = chunk_period(chunk_size, delay, threshold, n_action_steps=10)
            if delay + period > chunk_size:
                continue  # the queue would run dry: the benchmark refuses this
            queue = ActionQueue(RTCConfig(enabled=True))
            queue.merge(chunk(0), chunk(0), delay)
            requests, pending, executed = [], None, []
            for t in range(200):
                if pending is None and queue.qsize() <= threshold:
                    k = len(requests) + 1
                    pending = (t + delay, k, queue.get_action_index())
                    requests.append((t, queue.get_left_over()))
                executed.append(float(queue.get()))
                if pending is not None and t + 1 == pending[0]:
                    queue.merge(chunk(pending[1]), chunk(pending[1]), delay, pending[2])
                    pending = None
            starts = [t for t, _ in requests]
            assert {b - a for a, b in zip(starts, starts[1:])} == {period}, (delay, threshold)
            # The leftover is the previous chunk from action `period` on (the benchmark's chunk[:, period:]) ...
            for k, (_, left_over) in enumerate(requests[1:], start=1):
                assert left_over[0, 0].item() == 100 * k + period, (delay, threshold)
            # ... and every chunk runs its actions [d, d + period).
            assert executed[period:2 * period] == [100.0 + i for i in range(delay, delay + period)]


def test_rtc_frontier_joins_plain_and_rtc_rows_of_one_run_and_refuses_another(tmp_path):
    """benchmarks/rtc_frontier.py: the pooled rows at the asked delay, a plain row shared by two files drawn once,
    ensembling left out, and files of other checkpoints or episodes refused."""
    def row(scheme, delay, period, successes, ratio):
        return {"scheme": scheme, "delay": delay, "chunk_period": period, "successes": successes, "episodes": 100,
                "success_rate": successes / 100, "success_ci95": [0.0, 1.0], "boundary_ratio": {"mean": ratio}}

    def write(name, horizon, schedule, rows, checkpoints=("a", "b")):
        path = tmp_path / name
        path.write_text(json.dumps({"checkpoints": list(checkpoints), "episode_seeds": [3000, 3099],
                                    "execution_horizon": horizon, "prefix_attention_schedule": schedule,
                                    "pooled": rows}))
        return path

    plain = row("plain", 4, 6, 80, 1.8)
    files = [write("h5.json", 5, "LINEAR", [plain, row("rtc", 4, 6, 78, 1.1), row("rtc", 0, 6, 90, 1.0)]),
             write("h6.json", 6, "EXP", [plain, row("rtc", 4, 6, 75, 1.3), row("ensemble", 4, None, 40, None)])]
    script = REPO / "benchmarks" / "rtc_frontier.py"
    proc = subprocess.run([sys.executable, script, *map(str, files), "--delay", "4", "--out", tmp_path / "f.png"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| plain") or line.startswith("| rtc")]
    assert lines == ["| plain | 6 | - | 80/100 = 0.800 | 1.80 |", "| rtc | 6 | H5 | 78/100 = 0.780 | 1.10 |",
                     "| rtc | 6 | H6 EXP | 75/100 = 0.750 | 1.30 |"]  # fmt: skip
    assert (tmp_path / "f.png").stat().st_size > 0
    other = write("other.json", 5, "LINEAR", [plain], checkpoints=("c",))
    proc = subprocess.run([sys.executable, script, str(files[0]), str(other), "--out", tmp_path / "g.png"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "other checkpoints or episode seeds" in proc.stderr
    (tmp_path / "not_rtc.json").write_text(json.dumps({"pooled": []}))
    proc = subprocess.run([sys.executable, script, str(tmp_path / "not_rtc.json"), "--out", tmp_path / "g.png"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "is not a benchmarks/rtc_delay.py result" in proc.stderr
