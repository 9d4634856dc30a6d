"""Smoke test of benchmarks/speed.py --quick (tiny models, one repeat): the script runs end to end and its
JSON has every row. No timing assertions: the script reports speed, tests check correctness."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLICIES = ("act", "diffusion", "hybrid_act_a", "hybrid_act_b", "hybrid_act_c")
OURS_AND_ACT = ("act", "hybrid_act_a", "hybrid_act_b", "hybrid_act_c")


def test_speed_benchmark_quick(tmp_path):
    out, plot = tmp_path / "speed.json", tmp_path / "fidelity.png"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "speed.py"), "--quick", "--threads", "1", "--out", str(out), "--plot", str(plot)],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())

    for clock in ("wall_ms", "cpu_ms"):
        for key, policies in (("chunk_aloha", POLICIES), ("train_aloha", POLICIES), ("chunk_state", OURS_AND_ACT),
                              ("select_state", OURS_AND_ACT)):  # fmt: skip
            assert set(r[clock][key]) == set(policies), (clock, key)
            assert all(v > 0 for v in r[clock][key].values()), (clock, key, r[clock][key])
    assert set(r["select_action_ensembled_hz"]) == set(OURS_AND_ACT)
    assert all(v["wall"] > 0 for v in r["select_action_ensembled_hz"].values())
    assert set(r["memory_aloha"]) == set(POLICIES)
    for p, m in r["memory_aloha"].items():
        assert m["params_m"] > 0 and m["infer_peak_mb"] >= 0 and m["train_peak_mb"] > 0, (p, m)
    for clock in ("wall", "cpu"):
        assert all(v > 0 for v in r["ratios"][clock].values()), r["ratios"]

    fid = r["fidelity"]
    assert [row["num_inference_steps"] for row in fid["rows"]] == sorted({1, 2, 4, 8, 10, 16, 32, fid["default_steps"]})
    assert all(row["mse_to_data"] > 0 and row["mse_to_ref"] >= 0 for row in fid["rows"])
    assert plot.stat().st_size > 0
    # The printed table is the format of the table in docs/speed.md.
    assert "| `hybrid_act_c` |" in proc.stdout and "DDIM steps" in proc.stdout
