"""The ablation harness: metric functions on hand-made data, the report on fabricated runs, the smoke profile."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from lerobot.processor import NormalizerProcessorStep
from lerobot.utils.constants import OBS_ENV_STATE

from lerobot_hybrid_act.ablation import metrics as M
from lerobot_hybrid_act.ablation import probes as P
from lerobot_hybrid_act.ablation.cli import main as ablation_main
from lerobot_hybrid_act.ablation.profiles import (
    FULL, PROFILES, QUICK, SMOKE, VARIANTS, get_profile, policy_type, run_name,
)
from lerobot_hybrid_act.ablation.plots import plot_n_demos
from lerobot_hybrid_act.ablation.report import (
    aggregate,
    coverage_table,
    run_hardware,
    run_wall_s,
    stability_table,
    superseded_table,
    write_report,
)
from lerobot_hybrid_act.ablation.runner import (
    adopt_inference_defaults,
    changed_defaults,
    retraining_needed,
    env_state_normalization, eval_variants, policy_args, select_runs, train_cmd,
)


# ------------------------------------------------------------------------------------------- smoothness
def test_smoothness_constant_and_ramp():
    const = np.ones((30, 2))
    s = M.action_smoothness(const, chunk_len=10)
    assert s["mean_step"] == 0 and s["jerk_rms"] == 0 and s["boundary_jump"] == 0
    ramp = np.stack([np.arange(30) * 0.1, np.zeros(30)], 1)
    s = M.action_smoothness(ramp, chunk_len=10)
    assert s["mean_step"] == pytest.approx(0.1)
    assert s["jerk_rms"] == pytest.approx(0.0, abs=1e-12)
    assert s["boundary_ratio"] == pytest.approx(1.0)
    # quadratic: third difference is zero too; cubic t^3: third difference is 6
    cubic = (np.arange(20.0) ** 3)[:, None]
    assert M.action_smoothness(cubic)["jerk_rms"] == pytest.approx(6.0)


def test_chunk_boundary_discontinuity():
    # piecewise constant chunks of length 5 with a jump of 1.0 at every boundary, plus a small in-chunk ramp
    a = np.concatenate([k + 0.01 * np.arange(5) for k in range(4)])[:, None]
    s = M.action_smoothness(a, chunk_len=5)
    # boundaries at t = 5, 10, 15: |a_t - a_{t-1}| = 1 - 0.04
    assert s["boundary_jump"] == pytest.approx(0.96)
    assert s["interior_step"] == pytest.approx(0.01)
    assert s["boundary_ratio"] == pytest.approx(96.0)
    assert math.isnan(M.action_smoothness(a)["boundary_ratio"])
    assert M.action_smoothness(np.zeros((1, 2)))["T"] == 1


# -------------------------------------------------------------------------------------- fidelity metrics
def test_chunk_mse_mask_best_and_mean_of_k():
    gt = np.zeros((4, 2))
    pred = np.ones((4, 2))
    assert M.chunk_mse(pred, gt) == 1.0
    pred2 = pred.copy()
    pred2[2:] = 10.0
    assert M.chunk_mse(pred2, gt, mask=[True, True, False, False]) == 1.0  # padded steps ignored
    assert math.isnan(M.chunk_mse(pred, gt, mask=[False] * 4))
    # two modes at +1 and -1: each sample has MSE 1, best-of-K is 1, their mean is exactly the gt (0)
    samples = np.stack([np.ones((4, 2)), -np.ones((4, 2)), 3 * np.ones((4, 2))])
    assert M.best_of_k_mse(samples, gt) == pytest.approx(1.0)
    assert M.mean_of_k_mse(samples[:2], gt) == pytest.approx(0.0)
    assert M.mean_of_k_mse(samples, gt) == pytest.approx(1.0)  # mean = 1
    with pytest.raises(ValueError):
        M.chunk_mse(np.zeros((3, 2)), gt)


def test_pairwise_diversity():
    assert M.pairwise_diversity(np.zeros((1, 5, 2))) == 0.0
    assert M.pairwise_diversity(np.zeros((4, 5, 2))) == 0.0
    s = np.stack([np.zeros((5, 2)), np.ones((5, 2)), 3 * np.ones((5, 2))])
    # pair RMS distances: 1, 3, 2 -> mean 2
    assert M.pairwise_diversity(s) == pytest.approx(2.0)


def test_nearest_centroid_same_route_and_kl():
    Z = np.array([[0, 0], [0.1, 0], [0, 0.1], [5, 5], [5.1, 5], [5, 5.1]])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert M.nearest_centroid_loo_accuracy(Z, y) == 1.0
    assert M.nearest_centroid_loo_accuracy(Z, np.zeros(6)) != M.nearest_centroid_loo_accuracy(Z, np.zeros(6))  # nan
    # uninformative latent: identical vectors -> ties resolved to one class -> 50%
    assert M.nearest_centroid_loo_accuracy(np.zeros((6, 2)), y) == pytest.approx(0.5)
    assert M.same_route_fraction([[0, 0], [1, 0], [1, 1], [-1, 0]]) == pytest.approx(2 / 3)
    assert math.isnan(M.same_route_fraction([[-1, 0]]))
    k = M.kl_stats(np.array([[0.5, 0.001, 0.02], [0.3, 0.003, 0.0]]))
    assert k["kl"] == pytest.approx((0.521 + 0.303) / 2)
    assert k["active_dims"] == 1  # dim 0 (0.4); dim 2 averages to 0.01, not > 0.01
    assert k["latent_dim"] == 3


# --------------------------------------------------------------------------------------------- profiles
def test_only_selects_exact_names_or_name_parts(capsys):
    names = lambda only: [r["name"] for r in select_runs(FULL, only)]  # noqa: E731
    assert names([run_name("docking", "act", 10, 1)]) == [run_name("docking", "act", 10, 1)]  # not n100
    assert names(["docking__act__n10"]) == [run_name("docking", "act", n, s) for s in (1, 2, 3) for n in (10, 100)]
    assert len(names(["aloha_"])) == 30 and names(None) == [r["name"] for r in FULL.runs()]
    from lerobot_hybrid_act.ablation.cli import main

    with pytest.raises(SystemExit):  # a typo must not silently run nothing
        main(["--profile", "full", "--only", "dokcing__", "--report-only"])
    assert "matches no run of profile 'full'" in capsys.readouterr().err


def test_profiles_plan_and_policy_flags():
    assert set(PROFILES) >= {"smoke", "quick", "full", "gpu"}
    with pytest.raises(ValueError):
        get_profile("nope")
    assert len(SMOKE.runs()) == 2
    names = [r["name"] for r in QUICK.runs()]
    assert names[0] == run_name("docking", "act", 50, 1) and len(names) == len(set(names))
    # full: >= 3 seeds for every (task, policy) at the main demo count, ALOHA ~10k steps, >= 50 eval episodes
    assert len(FULL.seeds) >= 3 and FULL.eval_episodes >= 50
    assert FULL.steps["aloha_transfer_cube"] == 10000
    # the headline comparison (main demo count, all seeds) runs before any sample-efficiency point
    is_main = [r["n_demos"] == FULL.main_n_demos[r["task"]] for r in FULL.runs()]
    assert is_main == sorted(is_main, reverse=True) and not all(is_main)
    for t in FULL.tasks:
        assert t.demo_seed + 150 < t.heldout_seed < t.route_seed < t.eval_seed < t.rollout_seed
    d = FULL.task("docking")
    flags = {p: policy_args(p, d, 100, False) for p in ("act", "diffusion", "hybrid_act_c")}
    for p in ("act", "hybrid_act_c"):
        assert "--policy.dim_model=128" in flags[p] and "--policy.chunk_size=20" in flags[p]
    assert "--policy.horizon=20" in flags["diffusion"] and "--policy.down_dims=[64,128]" in flags["diffusion"]
    assert all("--policy.pretrained_backbone_weights=null" in f for f in flags.values())
    # LeRobot's act/diffusion get environment_state normalized like their state (their defaults leave it raw)
    norm = {p: json.loads(f.split("=", 1)[1]) for p in flags for f in flags[p]
            if f.startswith("--policy.normalization_mapping=")}
    assert set(norm) == {"act", "diffusion"}
    assert norm["act"]["ENV"] == norm["act"]["STATE"] == "MEAN_STD" and norm["act"]["VISUAL"] == "MEAN_STD"
    assert norm["diffusion"]["ENV"] == norm["diffusion"]["STATE"] == norm["diffusion"]["ACTION"] == "MIN_MAX"
    with pytest.raises(ValueError, match="hybrid_act_c"):
        env_state_normalization("hybrid_act_c")
    # a variant: C's own flags plus its two, trained at docking's main demo count with every seed, and only there
    recon = policy_args("hybrid_act_c_recon", d, 100, False)
    assert recon == flags["hybrid_act_c"] + ["--policy.recon_weight=1.0", "--policy.kl_weight=0.01"]
    assert policy_type("hybrid_act_c_recon") == "hybrid_act_c" and policy_type("act") == "act"
    variant = [(r["task"], r["n_demos"], r["seed"]) for r in FULL.runs() if r["policy"] == "hybrid_act_c_recon"]
    assert variant == [("docking", 50, s) for s in FULL.seeds]
    assert not any(r["policy"] in VARIANTS for r in QUICK.runs() + SMOKE.runs())


@pytest.mark.slow
def test_stopped_training_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    """A run stopped mid-training (end of a session) continues from its last checkpoint via lerobot-train --resume."""
    from dataclasses import replace

    from lerobot_hybrid_act.ablation import runner

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    prof = replace(SMOKE, steps={"docking": 60}, checkpoints_per_run=3)
    run = next(r for r in prof.runs() if r["policy"] == "hybrid_act_c")
    task = prof.task("docking")
    data = runner.record_dataset(task, 6, 0, tmp_path / "data", tmp_path / "record.log")
    train_dir, log = tmp_path / "train", tmp_path / "train.log"
    real_run = runner.run_logged

    def run_then_stop(cmd, logf, timeout):  # the first segment is killed right after its first checkpoint
        with open(logf, "a") as f:
            p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=runner.job_env())
            while runner.checkpoint_step(train_dir) is None and p.poll() is None:
                time.sleep(0.05)
            p.kill()
            p.wait()
        raise RuntimeError("stopped")

    monkeypatch.setattr(runner, "run_logged", run_then_stop)
    with pytest.raises(RuntimeError, match="stopped"):
        runner.train_to_end(prof, run, task, data, train_dir, log, print)
    stopped_at = runner.checkpoint_step(train_dir)
    assert stopped_at in (20, 40) and not (train_dir / "ablation_train.json").exists()
    monkeypatch.setattr(runner, "run_logged", real_run)
    runner.train_to_end(prof, run, task, data, train_dir, log, print)
    meta = json.loads((train_dir / "ablation_train.json").read_text())
    end = 60 + prof.prior_fit_steps  # C's sampling head is fitted alone after the policy's 60 steps
    assert run["steps"] == end
    assert f"--policy.prior_fit_steps={prof.prior_fit_steps}" in runner.train_cmd(run, task, data, train_dir, prof)
    assert meta["resumed_from_steps"] == [stopped_at] and meta["steps"] == end
    assert runner.checkpoint_step(train_dir) == end and "--resume=true" in log.read_text()
    assert all(seg["wall_s"] >= 0 for seg in meta["segments"]) and meta["wall_s"] > 0
    kept = sorted(d.name for d in (train_dir / "checkpoints").iterdir())
    assert kept == [f"{end:06d}", "last"]  # with a head-fitting phase only the final checkpoint is the shipped policy
    assert (train_dir / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()


def test_train_unless_done_reuses_only_a_finished_training(tmp_path, monkeypatch):
    """Benchmarks reuse a train dir holding the final step; an unfinished one is wiped and trained from scratch."""
    from lerobot_hybrid_act.ablation import runner

    calls = []
    monkeypatch.setattr(runner, "run_logged", lambda cmd, log, timeout: calls.append(cmd) or 12.5)

    def checkpoint(step: int) -> Path:
        d = tmp_path / "train" / "checkpoints" / "last" / "training_state"
        d.mkdir(parents=True, exist_ok=True)
        (d / "training_step.json").write_text(json.dumps({"step": step}))
        return d

    checkpoint(100)
    assert runner.train_unless_done(["train"], tmp_path / "train", 100, tmp_path / "log") is None and calls == []
    checkpoint(40)  # a stopped run: its partial checkpoints must not be mistaken for the result
    assert runner.train_unless_done(["train"], tmp_path / "train", 100, tmp_path / "log") == 12.5
    assert calls == [["train"]] and not (tmp_path / "train").exists()


def test_results_trained_with_other_settings_are_stale(tmp_path):
    """A run file counts only if its lerobot-train flags (policy, batch, steps, seed, data) are today's."""
    from lerobot_hybrid_act.ablation import runner

    run = next(r for r in FULL.runs() if r["policy"] == "hybrid_act_c")
    task = FULL.task(run["task"])
    cmd = runner.train_cmd(run, task, tmp_path / "data", tmp_path / "train", FULL)
    now = runner.training_settings(cmd)
    assert "--policy.type=hybrid_act_c" in now and not any(a.startswith("--output_dir") for a in now)
    res = tmp_path / "r.json"
    for command, ok in ((cmd, True),
                        ([a if not a.startswith("--save_freq") else "--save_freq=1" for a in cmd], True),  # bookkeeping
                        ([*cmd, "--policy.prediction_type=epsilon"], False),
                        ([a if not a.startswith("--batch_size") else "--batch_size=64" for a in cmd], False),
                        ([], False)):
        res.write_text(json.dumps({"steps": run["steps"], "eval": {"n": FULL.eval_episodes}, "train_command": command}))
        assert runner.result_matches(res, run, FULL, now) is ok


def test_eval_variants_per_policy():
    pols = ("act", "diffusion", "hybrid_act_b", "hybrid_act_c", "hybrid_act_c_recon")
    keys = {p: [k for k, _, _ in eval_variants(FULL, p)] for p in pols}
    assert keys == {"act": ["eval", "eval_ensemble"], "diffusion": ["eval"],
                    "hybrid_act_b": ["eval", "eval_ensemble"], "hybrid_act_c": ["eval", "eval_ensemble", "eval_hold"],
                    "hybrid_act_c_recon": ["eval", "eval_ensemble", "eval_hold"]}  # a C variant: z can be held
    hold = dict((k, f) for k, _, f in eval_variants(FULL, "hybrid_act_c"))["eval_hold"]
    assert hold == ["--policy.z_mode=hold"]  # no ensembling flags: one change at a time


def test_modes_profile_pairs_routes_and_keeps_shipped_defaults():
    """issue 24's profile: paired-route docking, hybrids at their own sampler/KL defaults (no flag), LeRobot
    diffusion at its recommended chunking, C evaluated with fresh z and over sampler steps on the sweep seeds."""
    from lerobot_hybrid_act.ablation.profiles import MODES, MODES_PRIOR
    from lerobot_hybrid_act.ablation.runner import eval_cmd

    d = MODES.task("docking")
    assert d.routes_per_layout == 2 and MODES.main_n_demos["docking"] == 50
    assert sorted(MODES.n_demos("docking")) == [10, 25, 50] and MODES.seeds == (1, 2, 3)
    c = policy_args("hybrid_act_c", d, 100, False)
    assert not any(f.startswith(("--policy.num_inference_steps", "--policy.kl_anneal_steps")) for f in c)
    assert "--policy.chunk_size=20" in c and "--policy.optimizer_lr=0.0001" in c
    diff = policy_args("diffusion", d, 100, False)
    assert {"--policy.horizon=16", "--policy.n_action_steps=8", "--policy.n_obs_steps=2",
            "--policy.drop_n_last_frames=7"} <= set(diff)
    assert {r["policy"] for r in MODES.runs() if r["task"] == "aloha_insertion"} == {"hybrid_act_c"}
    variants = {k: f for k, _, f in eval_variants(MODES, "hybrid_act_c")}
    assert set(variants) == {"eval", "eval_ensemble", "eval_sample_z", "eval_steps1", "eval_steps2", "eval_steps4",
                             "eval_steps8"}
    assert variants["eval_sample_z"] == ["--policy.z_mode=sample"]
    sweep = eval_cmd(Path("ckpt"), d, 50, Path("out"), variants["eval_steps2"])
    assert "--seed=3000" in sweep and "--policy.num_inference_steps=2" in sweep and "--seed=sweep" not in sweep
    assert "--seed=1000" in eval_cmd(Path("ckpt"), d, 50, Path("out"), variants["eval"])
    assert [k for k, _, _ in eval_variants(MODES, "act")] == ["eval", "eval_ensemble"]
    # the design-choice profile never evaluates on the headline episodes
    assert MODES_PRIOR.tasks[0].eval_seed == MODES_PRIOR.tasks[0].sweep_seed == 3000
    assert [r["policy"] for r in MODES_PRIOR.runs()][:2] == ["hybrid_act_c_categorical", "hybrid_act_c_mixture"]
    assert all(any(f.startswith("--policy.latent_prior=") for f in VARIANTS[r["policy"]][1]) for r in MODES_PRIOR.runs())


def test_backfill_adds_only_missing_evals_and_z_usage(tmp_path, monkeypatch):
    """A C run finished before ``eval_hold`` and ``z_usage`` existed gets exactly those added; the rest is kept."""
    from lerobot_hybrid_act.ablation import probes, runner

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    run = next(r for r in FULL.runs() if r["policy"] == "hybrid_act_c")
    res_path = tmp_path / f"{run['name']}.json"
    old = {"name": run["name"], "eval": {"n": 50}, "eval_ensemble": {"n": 50}, "checkpoint": str(ckpt), "x": 1,
           "heldout": "H", "dataset": "D", "metrics": {"latent": {"kl": {"kl": 0.1}}}}
    res_path.write_text(json.dumps(old))
    calls = []
    monkeypatch.setattr(runner, "run_evals", lambda *a, keys=None, **k: calls.append(keys) or {"eval_hold": {"n": 50}})
    monkeypatch.setattr(probes, "z_usage_of_checkpoint",
                        lambda c, task, prof, held, data: calls.append((c, task.name, str(held), str(data))) or {"from_z": 1})
    assert not runner.backfill(FULL, run, res_path, tmp_path, tmp_path, print)  # no model.safetensors yet
    assert json.loads(res_path.read_text()) == old and calls == []
    (ckpt / "model.safetensors").write_bytes(b"")
    assert runner.backfill(FULL, run, res_path, tmp_path, tmp_path, print)
    assert calls == [{"eval_hold"}, (ckpt, run["task"], "H", "D")]
    assert json.loads(res_path.read_text()) == {
        **old, "eval_hold": {"n": 50}, "metrics": {"latent": {"kl": {"kl": 0.1}, "z_usage": {"from_z": 1}}}}
    assert runner.backfill(FULL, run, res_path, tmp_path, tmp_path, print) and len(calls) == 2  # complete now
    b = next(r for r in FULL.runs() if r["policy"] == "hybrid_act_b")  # no z_usage for B (its z is f(obs))
    res_b = tmp_path / "b.json"
    res_b.write_text(json.dumps({**old, "name": b["name"]}))
    assert runner.backfill(FULL, b, res_b, tmp_path, tmp_path, print) and len(calls) == 2


def test_late_checkpoints_evaluated_then_deleted_and_found_again_after_a_crash(tmp_path, monkeypatch):
    from lerobot_hybrid_act.ablation import runner

    run = next(r for r in SMOKE.runs() if r["policy"] == "act")
    train_dir, work = tmp_path / "work" / "train" / run["name"], tmp_path / "work"
    for step in ("000012", "000016", "000020"):
        (train_dir / "checkpoints" / step / "pretrained_model").mkdir(parents=True)
    calls = []

    def fake_run(cmd, log, timeout):  # writes what lerobot-eval would: 1 success in 2 episodes
        calls.append(cmd)
        out = Path(next(a for a in cmd if a.startswith("--output_dir=")).split("=", 1)[1])
        out.mkdir(parents=True)
        info = {"per_task": [{"metrics": {"successes": [True, False], "max_rewards": [1.0, 0.0]}}], "overall": {}}
        (out / "eval_info.json").write_text(json.dumps(info))
        return 0.0

    monkeypatch.setattr(runner, "run_logged", fake_run)
    task = SMOKE.task("docking")
    late = runner.late_checkpoint_evals(SMOKE, run, task, train_dir, work, tmp_path, print)
    assert [c["step"] for c in late] == [12, 16] and len(calls) == 4  # plain + ensembled at 12 and 16
    assert late[0]["eval"]["successes"] == 1 and late[1]["eval_ensemble"]["n"] == 2
    assert sorted(d.name for d in (train_dir / "checkpoints").iterdir()) == ["000020"]  # final kept
    # rerun (e.g. the run crashed before its result was written): same numbers, nothing re-evaluated
    assert runner.late_checkpoint_evals(SMOKE, run, task, train_dir, work, tmp_path, print) == late
    assert len(calls) == 4


def test_a_head_fitting_phase_adds_steps_and_leaves_one_checkpoint(tmp_path, monkeypatch):
    """C's ``prior_fit_steps`` come on top of the profile's steps (every policy's weights get the same number of
    updates), checkpoints stay spaced over the policy's steps, and only the final checkpoint, the one whose head
    was fitted to the final posterior, is evaluated."""
    from lerobot_hybrid_act.ablation import runner
    from lerobot_hybrid_act.ablation.profiles import MODES, head_fit_steps
    from lerobot_hybrid_act.configuration_hybrid_act import default_head_fit_steps

    assert head_fit_steps("act") == head_fit_steps("hybrid_act_b") == 0
    assert head_fit_steps("hybrid_act_c") == default_head_fit_steps("hybrid_act_c") > 0
    assert head_fit_steps("hybrid_act_c_gaussian_kl001") == 0  # no fitted head, nothing to fit
    run = {**next(r for r in SMOKE.runs() if r["policy"] == "hybrid_act_c"), "steps": 25, "prior_fit_steps": 5}
    cmd = train_cmd(run, SMOKE.task("docking"), Path("D"), Path("O"), SMOKE)
    assert "--steps=25" in cmd and f"--save_freq={20 // SMOKE.checkpoints_per_run}" in cmd
    c = next(r for r in MODES.runs() if r["policy"] == "hybrid_act_c" and r["task"] == "docking")
    a = next(r for r in MODES.runs() if r["policy"] == "act" and r["task"] == "docking")
    assert c["steps"] - c["prior_fit_steps"] == a["steps"] == MODES.steps["docking"] and c["prior_fit_steps"] > 0
    train_dir = tmp_path / "train" / run["name"]
    for step in ("000016", "000020", "000025"):
        (train_dir / "checkpoints" / step / "pretrained_model").mkdir(parents=True)
    monkeypatch.setattr(runner, "run_logged", lambda *a: pytest.fail("nothing to evaluate"))
    assert runner.late_checkpoint_evals(SMOKE, run, SMOKE.task("docking"), train_dir, tmp_path, tmp_path, print) == []


# ----------------------------------------------------------------------------------------------- report
def _fake_run(policy, n, seed, k, n_ep=10, stochastic=True):
    fit = next(r["prior_fit_steps"] for r in SMOKE.runs() if r["policy"] == policy)  # as the profile plans it
    ci = {"mean": 0.5, "ci": [0.4, 0.6], "n": 8}
    sm = {m: ci for m in ("mean_step", "jerk_rms", "boundary_jump", "interior_step", "boundary_ratio")}
    ev = {"successes": k, "n": n_ep, "success_rate": k / n_ep, "wilson95": [0, 1], "max_reward_mean": 0.3,
          "per_episode_success": [True] * k + [False] * (n_ep - k)}
    return {
        "name": run_name("docking", policy, n, seed), "task": "docking", "policy": policy, "n_demos": n,
        "seed": seed, "steps": 20, "profile": "smoke",
        "train": {"wall_s": 10.0, "wall_s_per_step": 0.5, "updt_s_mean": 0.1},
        "train_command": train_cmd({"policy": policy, "n_demos": n, "seed": seed, "steps": SMOKE.steps["docking"] + fit,
                                    "prior_fit_steps": fit}, SMOKE.task("docking"), Path(f"d/docking_n{n}"), Path("o"), SMOKE),
        "eval": ev, "eval_ensemble": ev,
        "metrics": {
            "fidelity": {"chunk_mse": {"mean": 0.2 + seed, "ci": [0.1, 0.3], "n": 8},
                         "best_of_k_mse": ci if stochastic else None, "mean_of_k_mse": ci if stochastic else None,
                         "diversity": ci, "k": 3},
            "inference": {"ms_per_chunk": 12.0},
            "latent": {"kl": {"kl": 0.3, "active_dims": 2, "latent_dim": 8},
                       "route_accuracy": {"posterior_mean": {"0": 0.9}},
                       "z_scatter": {"posterior_mean": {"z": [[0, 1], [1, 0], [2, 2]], "route": [0, 1, 1]}}},
            "rollouts": {"summary": {"success_rate": 0.5, "collision_rate": 0.25, "mode_averaging_rate": 0.0, "n": 4},
                         "smoothness": sm},
            "rollouts_ensemble": {"summary": {"success_rate": 0.5, "collision_rate": 0.0, "n": 4}, "smoothness": sm},
            "routes": {"coverage": {"mean": 1.0, "ci": [1, 1], "n": 1}, "entropy": {"mean": 1.0, "ci": [1, 1], "n": 1},
                       "same_route_free": 0.5, "same_route_held_z": 1.0, "R": 3,
                       "trajectories": [{"start": 900, "route": r, "success": True,
                                         "xy": [[1, 0], [2, r * 2 - 1], [3, 0]]} for r in (0, 1)]},
        },
    }


def test_report_on_fabricated_runs(tmp_path):
    out = tmp_path / "res"
    (out / "runs").mkdir(parents=True)
    runs = [_fake_run("act", 6, 1, 3, stochastic=False), _fake_run("hybrid_act_c", 6, 1, 7),
            _fake_run("hybrid_act_c", 6, 2, 9)]
    for r, from_z in zip(runs[1:], (0.01, 0.03)):
        r["metrics"]["latent"]["z_usage"] = {"from_z": {"mean": from_z, "ci": [0, 1], "n": 8},
                                             "from_noise": {"mean": 0.2, "ci": [0, 1], "n": 8}}
    for r in runs:
        (out / "runs" / f"{r['name']}.json").write_text(json.dumps(r))
    (out / "runs" / "broken.json").write_text("{not json")  # a run being written: ignored
    paths = write_report(out, SMOKE, command="hybrid-act-ablation --profile smoke")
    names = {p.name for p in paths}
    assert {"results.json", "README.md", "success.png", "smoothness.png",
            "docking_routes.png", "z_scatter.png"} <= names
    assert "success_vs_demos.png" not in names  # one demo count: nothing to plot against
    res = json.loads((out / "results.json").read_text())
    assert res["profile"] == "smoke" and res["hardware"][0]["nproc"] >= 1
    assert res["runs_missing"] == []  # smoke plans act + C at seed 1; both present
    # a run file trained with other settings of the profile is not counted, and the report says so
    stale = _fake_run("act", 6, 1, 3, stochastic=False)
    stale["train_command"] = [*stale["train_command"], "--policy.kl_weight=99"]
    (out / "runs" / f"{stale['name']}.json").write_text(json.dumps(stale))
    write_report(out, SMOKE, command="c")
    res2 = json.loads((out / "results.json").read_text())
    assert res2["runs_missing"] == [stale["name"]] and "Not counted: 1 run file" in (out / "README.md").read_text()
    (out / "runs" / f"{stale['name']}.json").write_text(json.dumps(runs[0]))
    (out / "stale").mkdir()
    (out / "stale" / f"{stale['name']}.123.json").write_text(json.dumps(stale))
    table = superseded_table(out, SMOKE)
    assert f"| {stale['name']} | `--policy.kl_weight=99` | 30% (3/10;" in table
    # same flags as today, trained before a default changed: the runner's reason is the difference shown
    from lerobot_hybrid_act.ablation.runner import supersede

    current = out / "runs" / f"{stale['name']}.json"
    moved = supersede(current, out, ["recon_weight: trained with 1.0, default now 4.0"])
    assert not current.exists() and moved.parent == out / "stale"
    assert f"| {stale['name']} | recon_weight: trained with 1.0, default now 4.0 |" in superseded_table(out, SMOKE)
    current.write_text(json.dumps(runs[0]))
    # a run re-evaluated at a changed inference default (not retrained) is counted, and the report names it
    runs[1]["reevaluated_at_inference_defaults"] = ["hold_scale: trained with 3.0, default now 6.0"]
    runs[1]["run_wall_s"] = runs[2]["run_wall_s"] = 60.0
    (out / "runs" / f"{runs[1]['name']}.json").write_text(json.dumps(runs[1]))
    paths = write_report(out, SMOKE, command="hybrid-act-ablation --profile smoke")
    assert f"without retraining (their checkpoints predate a default read only at inference): {runs[1]['name']}." in (
        out / "README.md").read_text()
    assert run_wall_s(runs[1]) == 60.0 + runs[1]["train"]["wall_s"]  # the training it kept counts
    assert run_wall_s(runs[2]) == 60.0
    c = next(g for g in res["groups"] if g["policy"] == "hybrid_act_c")
    assert c["seeds"] == [1, 2]
    assert c["success"]["k"] == 16 and c["success"]["n"] == 20  # pooled over seeds
    lo, hi = c["success"]["wilson95"]
    assert lo < 0.8 < hi
    assert c["chunk_mse"]["mean"] == pytest.approx(1.7) and c["chunk_mse"]["ci_over"] == "seeds"
    a = next(g for g in res["groups"] if g["policy"] == "act")
    assert a["best_of_k_mse"] is None and a["chunk_mse"]["ci_over"] == "items"
    md = (out / "README.md").read_text()
    assert "| hybrid_act_c | 80% (16/20;" in md and "profile 'smoke'" in md
    assert "; per seed 70/90% |" in md and "| act | 30% (3/10; 11–60) |" in md  # seed spread only with >1 seed
    assert "| docking | 6 | hybrid_act_c | 1, 2 | 0.020 [0.010, 0.030] | 0.200 [0.200, 0.200] |" in md  # z usage
    assert "hybrid-act-ablation --profile smoke" in md and "CPU cores" in md and "- **chunk_mse**: MSE of" in md
    # the page lives beside its plots: every image it shows is a file next to it
    images = [line[line.index("](") + 2:-1] for line in md.splitlines() if line.startswith("![")]
    assert "success.png" in images and all((out / name).is_file() for name in images)
    # aggregate is pure: same groups from the same runs
    assert len(aggregate(runs)) == 2
    # a second demo count adds the sample-efficiency plot; per-task plots stay on the profile's main demo count
    (out / "runs" / "extra.json").write_text(json.dumps(_fake_run("act", 3, 1, 1)))
    names = {p.name for p in write_report(out, SMOKE, command="c")}
    assert {"success.png", "success_vs_demos.png"} <= names
    assert plot_n_demos("docking", aggregate(runs + [_fake_run("act", 30, 1, 1)]), SMOKE.main_n_demos) == 6
    assert plot_n_demos("docking", aggregate([_fake_run("act", 30, 1, 1)]), SMOKE.main_n_demos) == 30


def test_stability_table_spread_over_late_checkpoints():
    ev = lambda k: {"successes": k, "n": 10, "success_rate": k / 10, "wilson95": [0, 1]}  # noqa: E731
    r = _fake_run("act", 6, 1, 3)
    r["late_checkpoints"] = [{"step": 12, "eval": ev(8), "eval_ensemble": ev(2)},
                             {"step": 16, "eval": ev(5), "eval_ensemble": ev(6)},
                             {"step": 20, "eval": ev(3), "eval_ensemble": ev(3)}]
    old = _fake_run("hybrid_act_c", 6, 1, 7)  # finished before late checkpoints were evaluated: no row
    md = stability_table([r, old])
    assert f"| {r['name']} | 12: 8/10 / 2/10 | 16: 5/10 / 6/10 | 20: 3/10 / 3/10 | 0.50 | 0.40 |" in md
    assert old["name"] not in md and stability_table([old]) == ""


def test_report_with_no_runs(tmp_path):
    paths = write_report(tmp_path, QUICK, command="x")
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["groups"] == [] and len(res["runs_missing"]) == len(QUICK.runs())
    md = (tmp_path / "README.md").read_text()
    assert "no finished runs" in md and "Runs finished: 0/7" in md
    assert all(p.exists() for p in paths)


def test_report_names_the_hardware_the_runs_trained_on(tmp_path):
    """A report regenerated on another machine still states where its runs trained (their run files say so)."""
    (tmp_path / "runs").mkdir()
    amd = {"nproc": 2, "cpu_model": "AMD EPYC", "torch": "2.11.0", "gpu": False}
    intel = {**amd, "cpu_model": "Intel Xeon"}
    runs = [_fake_run("act", 6, 1, 3) | {"hardware": amd}, _fake_run("hybrid_act_c", 6, 1, 7) | {"hardware": amd}]
    assert run_hardware(runs) == [amd]
    assert run_hardware(runs + [runs[0] | {"hardware": intel}]) == [amd, intel]
    assert run_hardware([_fake_run("act", 6, 1, 3)])[0]["nproc"] >= 1  # no record: this machine
    for r in runs:
        (tmp_path / "runs" / f"{r['name']}.json").write_text(json.dumps(r))
    write_report(tmp_path, SMOKE, command="c")
    assert "Hardware: 2 CPU cores (AMD EPYC), torch 2.11.0, GPU: False, 1 intra-op thread" in (
        tmp_path / "README.md").read_text()
    (tmp_path / "runs" / f"{runs[1]['name']}.json").write_text(json.dumps(runs[1] | {"hardware": intel}))
    write_report(tmp_path, SMOKE, command="c")
    assert "(AMD EPYC), torch 2.11.0, GPU: False (1 run); 2 CPU cores (Intel Xeon), torch 2.11.0, GPU: False (1 run)" in (
        tmp_path / "README.md").read_text()


def test_ablation_cli_asks_for_the_extra_without_matplotlib(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in an install without the [ablation] extra
    with pytest.raises(SystemExit) as e:
        ablation_main(["--profile", "smoke", "--out", "unused", "--report-only"])
    assert e.value.code == 2
    assert 'pip install "lerobot_policy_hybrid_act[ablation]"' in capsys.readouterr().err


def test_coverage_table_marks_each_finished_seed():
    table = coverage_table(FULL, ["docking__act__n50__s2", "aloha_insertion__hybrid_act_c__n50__s1"])
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    rows = {tuple(c[:2]): dict(zip(cells[0], c)) for c in cells[2:]}
    assert rows["docking", "50"]["act"] == "· s2 ·"  # seeds 1, 2, 3 in plan order
    assert rows["aloha_insertion", "50"]["hybrid_act_c"] == "s1 · ·"
    assert rows["docking", "50"]["hybrid_act_c_recon"] == "· · ·"  # a variant: planned where the profile has it
    assert rows["aloha_insertion", "50"]["hybrid_act_c_recon"] == "n/a"
    assert not any(f"s{i}" in c for c in rows["docking", "10"].values() for i in (1, 2, 3))  # none with 10 demos


# -------------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path):
    """The real CLI, two runs at a time: record -> lerobot-train -> lerobot-eval -> metrics -> report; rerun = no-op."""
    exe = Path(sys.executable).parent / "hybrid-act-ablation"
    out, work = tmp_path / "results", tmp_path / "work"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl"}
    cmd = [str(exe), "--profile", "smoke", "--out", str(out), "--work", str(work)]
    p = subprocess.run([*cmd, "--jobs", "2"], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert {line.split("|")[0] for line in p.stdout.splitlines() if "|" in line[:4]} == {"w1", "w2"}
    res = json.loads((out / "results.json").read_text())
    assert sorted(res["runs_present"]) == sorted(r["name"] for r in SMOKE.runs())
    for g in res["groups"]:
        assert g["success"]["n"] == SMOKE.eval_episodes and g["seeds"] == [1]
        assert g["chunk_mse"]["mean"] is not None and g["ms_per_chunk"]["mean"] > 0
    run = json.loads((out / "runs" / f"{run_name('docking', 'hybrid_act_c', 6, 1)}.json").read_text())
    assert run["metrics"]["latent"]["kl"]["latent_dim"] == 8  # KL terms: one per dim of C's default Gaussian z
    assert "same_route_held_z" in run["metrics"]["routes"]
    assert run["metrics"]["routes"]["follows_posterior_z_n"] == 2 * SMOKE.route_starts  # both routes per start
    zu = run["metrics"]["latent"]["z_usage"]
    assert zu["from_z"]["n"] == zu["from_noise"]["n"] == SMOKE.fidelity_obs and zu["from_noise"]["mean"] > 0
    assert "Does `hybrid_act_c`'s denoiser use z?" in (out / "README.md").read_text()
    assert run["eval_hold"]["n"] == SMOKE.eval_episodes and run["eval_hold"]["flags"] == ["--policy.z_mode=hold"]
    assert "z_mode=hold" in (out / "logs" / f"{run['name']}.eval_hold.log").read_text()
    act = json.loads((out / "runs" / f"{run_name('docking', 'act', 6, 1)}.json").read_text())
    assert "eval_hold" not in act and act["eval_ensemble"]["n"] == SMOKE.eval_episodes
    assert (out / "success.png").stat().st_size > 0
    # ensembling stability: the last 2 of 5 checkpoints (steps 16, 20) evaluated both ways; the 16 one then deleted
    assert [c["step"] for c in act["late_checkpoints"]] == [16, 20]
    assert all(c["eval"]["n"] == c["eval_ensemble"]["n"] == SMOKE.eval_episodes for c in act["late_checkpoints"])
    assert act["late_checkpoints"][-1]["eval"]["successes"] == act["eval"]["successes"]
    assert sorted(d.name for d in (Path(act["checkpoint"]).parents[1]).iterdir()) == ["000020", "last"]
    assert "Ensembling stability" in (out / "README.md").read_text() and (out / "checkpoint_stability.png").is_file()
    # The in-process metrics (collisions, routes, smoothness) roll out the same policy on the same env as
    # lerobot-eval: act (z = 0, no dropout at eval) is deterministic, so on lerobot-eval's seeds the episodes match.
    policy, pre, post = P.load_checkpoint(Path(act["checkpoint"]))
    # the normalization flag went through lerobot-train into act's saved preprocessor: environment_state at its
    # dataset mean comes out at zero (unnormalized it would stay at the mean)
    stats = json.loads((Path(act["dataset"]) / "meta" / "stats.json").read_text())
    normalizer = next(s for s in pre.steps if isinstance(s, NormalizerProcessorStep))
    from lerobot.processor import TransitionKey, create_transition

    at_mean = create_transition(observation={OBS_ENV_STATE: torch.tensor([stats[OBS_ENV_STATE]["mean"]])})
    out = normalizer(at_mean)[TransitionKey.OBSERVATION]
    assert out[OBS_ENV_STATE].abs().max() < 1e-4
    seeds = list(range(act["eval"]["eval_seeds"][0], act["eval"]["eval_seeds"][1] + 1))
    ro = P.docking_rollouts(policy, pre, post, seeds, policy.config.n_action_steps)
    assert [float(r["rewards"].max()) for r in ro["rollouts"]] == pytest.approx(act["eval"]["max_rewards"], abs=1e-4)
    p2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p2.returncode == 0 and p2.stdout.count("done already, skipped") == 2


def test_z_usage_is_zero_when_the_denoiser_ignores_z():
    """from_z measures the denoiser's use of z: exactly 0 once the z inputs of its conditioning MLP are cut."""
    import torch

    from conftest import make_batch, make_policy, observation
    from lerobot_hybrid_act.ablation.metrics import pairwise_diversity
    from lerobot_hybrid_act.ablation.probes import ChunkSampler

    policy = make_policy("hybrid_act_c", image=False)
    policy.eval()
    with torch.no_grad():  # FiLM starts at zero (identity); give it weights as training would
        for layer in policy.model.denoiser.layers:
            torch.nn.init.normal_(layer.film.weight, std=0.1)
    sampler = ChunkSampler(policy, None, lambda a: a)
    batch = {k: v[:1] for k, v in observation(make_batch(image=False)).items()}
    by_z, by_noise = sampler.sample_z_vs_noise(batch, k=4, seed=0)
    assert by_z.shape == by_noise.shape == (4, policy.config.chunk_size, policy.config.action_feature.shape[0])
    assert pairwise_diversity(by_z) > 1e-4 and pairwise_diversity(by_noise) > 1e-4
    with torch.no_grad():
        z_dim = policy.sample_style(batch).shape[-1]
        policy.model.denoiser.cond[0].weight[:, -z_dim:] = 0.0  # the z columns
    by_z, by_noise = sampler.sample_z_vs_noise(batch, k=4, seed=0)
    assert pairwise_diversity(by_z) < 1e-6 and pairwise_diversity(by_noise) > 1e-4


@pytest.mark.parametrize("policy,recipe_file", [("hybrid_act_c", "hybrid_act_cpu_docking.args"),
                                                ("act", "act_cpu_docking.args")])
def test_quickstart_recipe_is_the_modes_profile_recipe(policy, recipe_file):
    """The configs/ recipes (scripts/quickstart.sh) train C, and act for COMPARE_ACT=1, exactly as the `modes`
    profile does: the same lerobot-train flags, apart from the run's own (data, steps, seed, output, checkpointing,
    logging). JSON values compare parsed (the recipe writes them without spaces, for the shell's word splitting)."""
    from lerobot_hybrid_act.ablation.profiles import MODES

    def canonical(flag: str) -> str:
        key, _, value = flag.partition("=")
        return f"{key}={json.dumps(json.loads(value), sort_keys=True)}" if value.startswith("{") else flag

    args = Path(__file__).parents[1] / "configs" / recipe_file
    lines = [line.strip() for line in args.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert not any(" " in flag for flag in lines), "a recipe flag with a space breaks $(grep ...) in the quickstart"
    recipe = {canonical(flag) for flag in lines}
    run = next(r for r in MODES.runs() if r["policy"] == policy and r["task"] == "docking")
    own = ("--dataset.", "--steps=", "--save_freq=", "--log_freq=", "--seed=", "--output_dir=", "--policy.type=",
           "--policy.push_to_hub=")
    profile = {canonical(f) for f in train_cmd(run, MODES.tasks[0], Path("D"), Path("O"), MODES)[1:]
               if not f.startswith(own)}
    assert recipe == profile


def _saved_defaults(policy: str) -> dict:
    """What a checkpoint of ``policy`` trained at today's defaults saves for the fields ``changed_defaults`` compares."""
    from dataclasses import MISSING, fields

    from lerobot.configs.policies import PreTrainedConfig

    return {f.name: f.default for f in fields(PreTrainedConfig.get_choice_class(policy))
            if f.default is not MISSING and isinstance(f.default, (bool, int, float, str, type(None)))}  # fmt: skip


def test_a_checkpoint_trained_before_a_default_changed_is_not_reused(tmp_path):
    """The runner compares flags, so a changed default would leave old runs looking current: it also checks the
    checkpoint's config.json against today's defaults for the fields the command did not set."""
    today = _saved_defaults("hybrid_act_c")
    saved = {**today, "recon_weight": today["recon_weight"] + 1.0}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    changed = changed_defaults(tmp_path, "hybrid_act_c", ["--policy.chunk_size=20"])
    assert len(changed) == 1 and changed[0].startswith("recon_weight: trained with"), changed
    assert changed_defaults(tmp_path, "hybrid_act_c", [f"--policy.recon_weight={saved['recon_weight']}"]) == []
    assert changed_defaults(tmp_path, "act", []) == []  # LeRobot's own policies: flags only
    assert changed_defaults(tmp_path / "missing", "hybrid_act_c", []) == []
    # Fields a checkpoint predates: a training field is not compared; an inference-only field whose default is no
    # longer the base config's (what the code did before the field existed) is, so the checkpoint is re-evaluated.
    older = {k: v for k, v in today.items() if k not in ("hold_candidates", "rtc_train_max_delay")}
    (tmp_path / "config.json").write_text(json.dumps(older))
    changed = changed_defaults(tmp_path, "hybrid_act_c", [])
    assert changed == [f"hold_candidates: evaluated before the field existed (as 1), default now "
                       f"{today['hold_candidates']}"] and not retraining_needed(changed)
    assert changed_defaults(tmp_path, "hybrid_act_c", ["--policy.hold_candidates=1"]) == []


def test_a_changed_inference_default_re_evaluates_instead_of_retraining(tmp_path):
    """A default read only at inference (hold_scale) changed: the checkpoint is today's training, so the runner sets
    the field to today's default in its configs and evaluates again; a default that training reads retrains."""
    from lerobot_hybrid_act.configuration_hybrid_act import HybridActCConfig

    old_scale = HybridActCConfig.hold_scale + 1.0
    flagged_steps = HybridActCConfig.hold_steps + 5
    saved = {**_saved_defaults("hybrid_act_c"), "type": "hybrid_act_c", "hold_scale": old_scale,
             "hold_steps": flagged_steps}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    (tmp_path / "train_config.json").write_text(json.dumps({"steps": 10, "policy": saved}))
    cmd = [f"--policy.hold_steps={flagged_steps}"]  # set by the command: stays as trained
    changed = changed_defaults(tmp_path, "hybrid_act_c", cmd)
    assert [c.split(":")[0] for c in changed] == ["hold_scale"] and not retraining_needed(changed)
    assert adopt_inference_defaults(tmp_path, "hybrid_act_c", changed) == changed
    for cfg in (json.loads((tmp_path / "config.json").read_text()),
                json.loads((tmp_path / "train_config.json").read_text())["policy"]):
        assert cfg["hold_scale"] == HybridActCConfig.hold_scale and cfg["hold_steps"] == flagged_steps
        assert cfg["recon_weight"] == HybridActCConfig.recon_weight
    assert changed_defaults(tmp_path, "hybrid_act_c", cmd) == []  # now current
    assert retraining_needed([f"recon_weight: trained with 1.0, default now {HybridActCConfig.recon_weight!r}",
                              "hold_scale: trained with 6.0, default now 3.0"])
