"""Smoke test of benchmarks/speed.py --quick (tiny models, one repeat): the script runs end to end and its
JSON has every row. No timing assertions: the script reports speed, tests check correctness."""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

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


def _save(policy, path: Path) -> str:
    target = path / "checkpoints" / "last" / "pretrained_model"
    policy.save_pretrained(target)
    return str(target)


def test_chunk_latency_times_each_checkpoint_and_each_step_count(tmp_path):
    """benchmarks/chunk_latency.py: one row per checkpoint (per step count for ours), ratios to the first, and
    policies reading other inputs refused by name."""
    import importlib.util

    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    from conftest import ACTION_DIM, make_policy, tiny_features

    spec = importlib.util.spec_from_file_location("chunk_latency", REPO / "benchmarks" / "chunk_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    def tiny_act(image: bool) -> ACTPolicy:
        return ACTPolicy(ACTConfig(device="cpu", input_features=tiny_features(image=image),
                                   output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
                                   dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1,
                                   n_vae_encoder_layers=1, chunk_size=8, n_action_steps=8, latent_dim=4,
                                   pretrained_backbone_weights=None))

    act = tiny_act(image=False)
    hybrid = make_policy("hybrid_act_c", image=False)
    paths = [_save(act, tmp_path / "act"), _save(hybrid, tmp_path / "c")]
    r = bench.main(["--checkpoint", paths[0], "--checkpoint", paths[1], "--steps", "1,3", "--calls", "3",
                    "--out", str(tmp_path / "lat.json")])
    assert [row["policy"] for row in r["rows"]] == ["act (act)", "hybrid_act_c (c), 1 steps", "hybrid_act_c (c), 3 steps"]
    assert [row["num_inference_steps"] for row in r["rows"]] == [None, 1, 3]
    assert r["rows"][0]["ratio"] == 1.0 and all(row["ms_median"] > 0 for row in r["rows"])
    assert all(len(v) == 3 for v in r["samples_ms"].values())
    assert json.loads((tmp_path / "lat.json").read_text())["rows"] == r["rows"]
    # episodes of 3 chunks: the first chunk of each (where C draws its z) timed apart from the later ones
    r = bench.main(["--checkpoint", paths[0], "--checkpoint", paths[1], "--calls", "6", "--episode-chunks", "3"])
    assert all(len(v) == 6 for v in r["samples_ms"].values())
    for row in r["rows"]:
        v = r["samples_ms"][row["policy"]]
        assert row["ms_first_chunk"] == statistics.median([v[0], v[3]])
        assert row["ms_later_chunks"] == statistics.median([v[1], v[2], v[4], v[5]])
    assert r["rows"][0]["ratio_first_chunk"] == r["rows"][0]["ratio_later_chunks"] == 1.0

    image_act = tiny_act(image=True)
    with pytest.raises(ValueError, match="time checkpoints trained on the same features"):
        bench.main(["--checkpoint", _save(image_act, tmp_path / "act_img"), "--checkpoint", paths[1], "--calls", "1"])
