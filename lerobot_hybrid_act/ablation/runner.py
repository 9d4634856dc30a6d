"""Run a profile: record datasets once, then train -> eval -> extra metrics per run; resumable.

Layout (``work`` defaults to ``outputs/ablation/<profile>``, gitignored; ``out`` is e.g. ``results/quick``):

    work/data/<task>_n<N>        training demos (hybrid-act-record, seeds demo_seed..)
    work/data/<task>_heldout     held-out demos (seeds heldout_seed.., disjoint from training and eval seeds)
    work/train/<run>             lerobot-train output (checkpoints/last/pretrained_model)
    work/eval/<run>[_ens|_hold]  lerobot-eval output (eval_info.json): plain, temporal ensembling, z held (C)
    out/runs/<run>.json          one result file per finished run, written as soon as the run ends
    out/logs/<run>.log           subprocess logs

A run whose ``out/runs/<run>.json`` exists is skipped; a checkpoint or eval that already exists is reused,
so an interrupted profile resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .profiles import HYBRID, VARIANTS, Profile, TaskSpec, policy_type

BIN = Path(sys.executable).parent


def job_env() -> dict:
    """The environment every subprocess of a run gets: offline Hub, EGL rendering, one intra-op thread."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("MUJOCO_GL", "egl")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # One intra-op thread per process: on a shared 2-core machine torch's default (2 threads) spin-waits
    # against the other jobs and ran 10-80x slower here (a hybrid chunk: ~20 ms vs 0.5-2 s).
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    return env


def run_logged(cmd: list[str], log: Path, timeout: int) -> float:
    """Run ``cmd`` with its output appended to ``log``; its wall seconds, or RuntimeError with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=job_env(), timeout=timeout)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"command failed ({p.returncode}): {' '.join(cmd)}\n--- log tail ({log}) ---\n{tail}")
    return dt


def record_dataset(task: TaskSpec, n: int, seed: int, root: Path, log: Path) -> Path:
    """``n`` layouts of demos (``n`` x ``task.routes_per_layout`` episodes) from seed ``seed`` on, recorded once."""
    if (root / "meta" / "info.json").is_file():
        return root
    cmd = [str(BIN / "hybrid-act-record"), "--task", task.record_task, "--episodes", str(n * task.routes_per_layout),
           "--repo-id", f"local/ablation_{root.name}", "--root", str(root), "--noise", str(task.noise),
           "--seed", str(seed), "--cameras", *(task.cameras or ("none",))]
    if task.image_size:
        cmd += ["--image-size", task.image_size]
    if task.routes_per_layout != 1:
        cmd += ["--routes-per-layout", str(task.routes_per_layout)]
    run_logged(cmd, log, timeout=3600)
    return root


def env_state_normalization(policy: str) -> str:
    """A ``--policy.normalization_mapping`` flag for LeRobot's ``act`` / ``diffusion``: their defaults plus
    ``ENV`` normalized like their ``STATE``.

    Their default mappings name no mode for ``ENV`` features, so LeRobot would pass
    ``observation.environment_state`` through unnormalized (IDENTITY) while our policies standardize it: on docking
    the obstacle's position would vary by ~0.15 around an offset of ~4.9. Equal footing means equally normalized
    inputs; the README compares the runs trained both ways ("Superseded runs")."""
    from dataclasses import fields

    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

    configs = {"act": ACTConfig, "diffusion": DiffusionConfig}
    if policy not in configs:
        raise ValueError(f"env_state_normalization is for LeRobot's {sorted(configs)}, not {policy!r}: our policies "
                         "already normalize ENV features in their own config")
    # the field's default, not ``cls()``: instantiating a config probes devices and logs warnings into every run
    default = next(f for f in fields(configs[policy]) if f.name == "normalization_mapping").default_factory()
    modes = {k: v.value for k, v in default.items()}
    modes["ENV"] = modes["STATE"]
    return "--policy.normalization_mapping=" + json.dumps(modes)


def policy_args(label: str, task: TaskSpec, steps: int, cameras: bool) -> list[str]:
    """lerobot-train --policy.* flags: each policy's defaults except the sizes shared by all and, for LeRobot's
    act and diffusion, a normalized ``observation.environment_state`` (``env_state_normalization``); for a
    ``VARIANTS`` label, also the variant's own flags."""
    policy, variant_flags = VARIANTS.get(label, (label, ()))  # a plain policy type has no flags of its own
    s = task.sizes
    common = ["--policy.device=cpu", "--policy.push_to_hub=false"]
    if not cameras:
        common.append("--policy.pretrained_backbone_weights=null")
    if policy == "diffusion":
        n_obs, horizon = s.diffusion_n_obs_steps, s.diffusion_horizon or s.chunk_size
        n_act = s.diffusion_n_action_steps or min(s.n_action_steps, horizon - n_obs + 1)
        return [
            "--policy.type=diffusion", *common, env_state_normalization("diffusion"),
            f"--policy.horizon={horizon}", f"--policy.n_obs_steps={n_obs}", f"--policy.n_action_steps={n_act}",
            f"--policy.drop_n_last_frames={horizon - n_act - n_obs + 1}",
            f"--policy.down_dims=[{','.join(str(d) for d in s.diffusion_down_dims)}]",
            "--policy.noise_scheduler_type=DDIM", f"--policy.num_inference_steps={s.diffusion_num_inference_steps}",
            f"--policy.optimizer_lr={s.lr}",
        ]
    shared = [
        f"--policy.dim_model={s.dim_model}", f"--policy.n_heads={s.n_heads}",
        f"--policy.dim_feedforward={s.dim_feedforward}", f"--policy.n_encoder_layers={s.n_encoder_layers}",
        f"--policy.n_vae_encoder_layers={s.n_vae_encoder_layers}", f"--policy.chunk_size={s.chunk_size}",
        f"--policy.n_action_steps={s.n_action_steps}", f"--policy.latent_dim={s.latent_dim}",
        f"--policy.optimizer_lr={s.lr}",
    ]
    if policy == "act":
        return ["--policy.type=act", *common, env_state_normalization("act"), *shared]
    if policy in HYBRID:
        own_defaults = [f"--policy.{k}={v}" for k, v in (("kl_anneal_steps", s.kl_anneal_steps),
                                                         ("num_inference_steps", s.num_inference_steps)) if v is not None]
        return [
            f"--policy.type={policy}", *common, *shared,
            f"--policy.n_decoder_layers={s.n_decoder_layers}", f"--policy.denoiser_dim_model={s.denoiser_dim_model}",
            f"--policy.denoiser_dim_feedforward={s.denoiser_dim_feedforward}", "--policy.dropout=0.0",
            *own_defaults, f"--policy.prediction_type={s.prediction_type}", *variant_flags,
        ]
    raise ValueError(f"unknown policy {policy!r}")


def train_cmd(run: dict, task: TaskSpec, data: Path, out: Path, profile: Profile) -> list[str]:
    steps, fit = run["steps"], run.get("prior_fit_steps", 0)
    fit_flag = [f"--policy.prior_fit_steps={fit}"] if fit and profile.prior_fit_steps is not None else []
    return [
        str(BIN / "lerobot-train"), *policy_args(run["policy"], task, steps, bool(task.cameras)), *fit_flag,
        *profile.extra_train_args,
        f"--dataset.repo_id=local/ablation_{data.name}", f"--dataset.root={data}",
        f"--batch_size={task.sizes.batch_size}", f"--steps={steps}",
        f"--save_freq={max(1, (steps - fit) // profile.checkpoints_per_run)}",  # over the policy's steps
        f"--log_freq={max(1, min(100, steps // 10))}", f"--seed={run['seed']}", "--num_workers=0",
        "--wandb.enable=false", f"--output_dir={out}",
    ]


def eval_variants(profile: Profile, policy: str) -> list[tuple[str, str, list[str]]]:
    """(result key, eval dir suffix, extra lerobot-eval flags) of every evaluation a run of ``policy`` gets.

    ``eval_steps<k>`` (the sampler-steps sweep) and ``eval_hold_scale<s>[_ens]`` (the held z's scale) run on the
    task's ``sweep_seed`` episodes, not the headline ones."""
    out, policy = [("eval", "", [])], policy_type(policy)
    ensemble = [f"--policy.temporal_ensemble_coeff={profile.ensemble_coeff}", "--policy.n_action_steps=1"]
    if profile.ensemble_eval and policy != "diffusion":
        out.append(("eval_ensemble", "_ens", ensemble))
    if policy in profile.hold_eval_policies:
        out.append(("eval_hold", "_hold", ["--policy.z_mode=hold"]))
    if policy in profile.sample_eval_policies:
        out.append(("eval_sample_z", "_samplez", ["--policy.z_mode=sample"]))
    if policy == "hybrid_act_c":
        out += [(f"eval_steps{k}", f"_steps{k}", [f"--policy.num_inference_steps={k}", SWEEP_SEED_FLAG])
                for k in profile.steps_sweep]
        for w in profile.hold_scale_sweep:
            flags = [f"--policy.hold_scale={w:g}", SWEEP_SEED_FLAG]
            out.append((f"eval_hold_scale{w:g}", f"_holdscale{w:g}", flags))
            if profile.ensemble_eval:
                out.append((f"eval_hold_scale{w:g}_ens", f"_holdscale{w:g}_ens", flags + ensemble))
    return out


SWEEP_SEED_FLAG = "--seed=sweep"  # placeholder in ``eval_variants``: ``eval_cmd`` puts the task's sweep seed there


def eval_seed(task: TaskSpec, extra) -> int:
    """The first episode seed of an evaluation: the task's sweep seed for a sweep, else its headline eval seed."""
    return task.sweep_seed if SWEEP_SEED_FLAG in extra else task.eval_seed


def eval_cmd(ckpt: Path, task: TaskSpec, n_episodes: int, out: Path, extra: list[str] = ()) -> list[str]:
    return [str(BIN / "lerobot-eval"), f"--policy.path={ckpt}", "--policy.device=cpu", *task.env_args,
            f"--eval.n_episodes={n_episodes}", f"--eval.batch_size={min(task.eval_batch_size, n_episodes)}",
            "--eval.use_async_envs=false", f"--seed={eval_seed(task, extra)}", f"--output_dir={out}",
            *(a for a in extra if a != SWEEP_SEED_FLAG)]


def run_evals(profile: Profile, run: dict, task: TaskSpec, ckpt: Path, work: Path, logs: Path, log,
              keys: set[str] | None = None) -> dict:
    """lerobot-eval the checkpoint once per variant (or only ``keys``); an existing eval_info.json is reused."""
    evals = {}
    for key, suffix, extra in eval_variants(profile, run["policy"]):
        if keys is not None and key not in keys:
            continue
        evals[key] = _eval_once(profile, task, ckpt, work / "eval" / (run["name"] + suffix), extra,
                                logs / f"{run['name']}.{key}.log")
        evals[key]["flags"] = [a for a in extra if a != SWEEP_SEED_FLAG]
        if key == "eval_ensemble":
            evals[key]["temporal_ensemble_coeff"] = profile.ensemble_coeff
        log(f"  {key}: {evals[key]['successes']}/{evals[key]['n']}")
    return evals


def _eval_once(profile: Profile, task: TaskSpec, ckpt: Path | None, edir: Path, extra: list[str], log: Path) -> dict:
    """lerobot-eval ``ckpt`` into ``edir`` unless its eval_info.json exists already; the parsed result."""
    if not (edir / "eval_info.json").is_file():
        shutil.rmtree(edir, ignore_errors=True)
        run_logged(eval_cmd(ckpt, task, profile.eval_episodes, edir, extra), log, profile.timeout_s)
    return parse_eval(edir / "eval_info.json", eval_seed(task, extra))


def backfill(profile: Profile, run: dict, res_path: Path, work: Path, logs: Path, log) -> bool:
    """Add what was introduced after a run finished to its result file: evaluation variants (e.g. ``eval_hold``)
    and C's ``metrics.latent.z_usage``.

    Only the missing pieces are computed, on the run's own final checkpoint; training and the other numbers are
    untouched. Returns False when the checkpoint is gone (then the result stays as it is)."""
    r = json.loads(res_path.read_text())
    missing = {k for k, _, _ in eval_variants(profile, run["policy"])} - set(r)
    latent = r.get("metrics", {}).get("latent", {})
    need_z = policy_type(run["policy"]) == "hybrid_act_c" and "z_usage" not in latent
    if not missing and not need_z:
        return True
    ckpt = Path(r.get("checkpoint", ""))
    if not (ckpt / "model.safetensors").is_file():
        log(f"  cannot add {sorted(missing) + (['z_usage'] if need_z else [])}: checkpoint {ckpt} is gone")
        return False
    task = profile.task(run["task"])
    if missing:
        log(f"  adding {sorted(missing)}")
        r.update(run_evals(profile, run, task, ckpt, work, logs, log, keys=missing))
    if need_z:
        from .probes import z_usage_of_checkpoint

        log("  adding metrics.latent.z_usage")
        latent["z_usage"] = z_usage_of_checkpoint(ckpt, task, profile, Path(r["heldout"]), Path(r["dataset"]))
    tmp = res_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=1, default=json_default))
    tmp.replace(res_path)
    return True


def parse_eval(path: Path, seed0: int) -> dict:
    """Per-episode successes / max rewards from lerobot-eval's eval_info.json + Wilson CI."""
    from lerobot_hybrid_act.stats import wilson_interval

    info = json.loads(path.read_text())
    succ, maxr = [], []
    for t in info["per_task"]:
        succ += [bool(x) for x in t["metrics"]["successes"]]
        maxr += [float(x) for x in t["metrics"]["max_rewards"]]
    k, n = sum(succ), len(succ)
    lo, hi = wilson_interval(k, n)
    return {"successes": k, "n": n, "success_rate": k / n, "wilson95": [lo, hi], "per_episode_success": succ,
            "max_rewards": maxr, "max_reward_mean": sum(maxr) / n, "eval_seeds": [seed0, seed0 + n - 1],
            "eval_s": info["overall"].get("eval_s")}


_UPDT = re.compile(r"step:(\S+) .*?updt_s:([0-9.]+)")


def parse_train_log(log: Path) -> dict:
    """Mean update time per step from lerobot-train's log lines (``updt_s``), and the loss trace."""
    txt = log.read_text() if log.exists() else ""
    updt = [float(m.group(2)) for m in _UPDT.finditer(txt)]
    losses = [float(x) for x in re.findall(r" loss:([0-9.eE+-]+)", txt)]
    return {"updt_s_mean": sum(updt) / len(updt) if updt else None, "loss_trace": losses}


def hardware() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import platform

    import torch

    return {"nproc": os.cpu_count(), "cpu_model": cpu, "torch": torch.__version__, "python": platform.python_version(),
            "torch_threads": torch.get_num_threads(), "gpu": torch.cuda.is_available()}


def select_runs(profile: Profile, only: list[str] | None) -> list[dict]:
    """The profile's runs in order; ``only`` keeps runs named exactly so, or whose name contains an entry."""
    plan = profile.runs()
    if not only:
        return plan
    names = {r["name"] for r in plan}
    exact = {o for o in only if o in names}
    return [r for r in plan if r["name"] in exact or any(o in r["name"] for o in only if o not in exact)]


def _record_datasets(profile: Profile, run: dict, work: Path, logs: Path) -> tuple[Path, Path]:
    """The run's training demos and its task's held-out demos, recorded on first use."""
    task = profile.task(run["task"])
    data = record_dataset(task, run["n_demos"], task.demo_seed, work / "data" / f"{task.name}_n{run['n_demos']}",
                          logs / f"record_{task.name}_n{run['n_demos']}.log")
    held = record_dataset(task, profile.n_heldout, task.heldout_seed, work / "data" / f"{task.name}_heldout",
                          logs / f"record_{task.name}_heldout.log")
    return data, held


def run_parallel(profile: Profile, out: Path, work: Path, only: list[str] | None, jobs: int, log=print) -> None:
    """Run the profile with ``jobs`` runs at a time, each in its own ``hybrid-act-ablation --only <run>`` process.

    Runs are handed out in profile order as workers free up (an ALOHA run takes ~5x a docking run, so a
    fixed split would leave one core idle). Datasets are recorded first, here, so that workers never
    record the same dataset at once. Each run writes its own result file; the caller writes the report.
    """
    import threading

    out, work = Path(out), Path(work)
    plan = select_runs(profile, only)
    for run in plan:
        _record_datasets(profile, run, work, out / "logs")
    queue, active, failed = list(plan), {}, []
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))  # `kill` also runs the ``finally``

    def forward(pipe, tag):
        for line in pipe:
            log(f"{tag} {line.rstrip()}")

    try:
        while queue or active:
            while queue and len(active) < jobs:
                run = queue.pop(0)
                slot = min(set(range(jobs)) - {s for s, _ in active.values()})
                cmd = [sys.executable, "-m", "lerobot_hybrid_act.ablation.cli", "--profile", profile.name,
                       "--out", str(out), "--work", str(work), "--only", run["name"], "--no-report"]
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=job_env(),
                                        start_new_session=True)  # its own process group: see ``finally``
                threading.Thread(target=forward, args=(proc.stdout, f"w{slot + 1}|"), daemon=True).start()
                log(f"[{len(plan) - len(queue)}/{len(plan)}] w{slot + 1}: {run['name']}")
                active[proc] = (slot, run["name"])
            time.sleep(1)
            for proc in [p for p in active if p.poll() is not None]:
                _, name = active.pop(proc)
                if proc.returncode != 0:
                    failed.append(name)
    finally:
        for proc in active:  # interrupted: stop each worker with its lerobot-train/-eval; runs resume later
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed: {failed} (see {out / 'failed'})")


def supersede(res_path: Path, out: Path, changed_defaults: list[str]) -> Path:
    """Move a finished run's result to ``<out>/stale/`` (not counted; the report lists it). With
    ``changed_defaults`` (its flags may be today's) they are written into it as ``superseded_because``."""
    r = json.loads(res_path.read_text())
    stale = out / "stale" / f"{r['name']}.{int(time.time())}.json"
    stale.parent.mkdir(exist_ok=True)
    if changed_defaults:
        r["superseded_because"] = changed_defaults
    stale.write_text(json.dumps(r, indent=1))
    res_path.unlink()
    return stale


def run_profile(profile: Profile, out: Path, work: Path, only: list[str] | None = None, log=print) -> list[Path]:
    out, work = Path(out), Path(work)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    plan = select_runs(profile, only)
    done, failed = [], []
    for i, run in enumerate(plan):
        res_path = out / "runs" / f"{run['name']}.json"
        settings = run_settings(profile, run)
        ckpt = work / "train" / run["name"] / "checkpoints" / "last" / "pretrained_model"
        changed = changed_defaults(ckpt, policy_type(run["policy"]), settings)
        reevaluated = []
        if changed and not retraining_needed(changed):
            log(f"[{i + 1}/{len(plan)}] {run['name']}: evaluated before an inference default changed "
                f"({'; '.join(changed)}); re-evaluating its checkpoint at today's")
            if res_path.exists():
                supersede(res_path, out, changed)
            reevaluated = adopt_inference_defaults(ckpt, policy_type(run["policy"]), changed)
            _forget_evals(work, run["name"])
            changed = []
        elif changed:
            log(f"[{i + 1}/{len(plan)}] {run['name']}: trained before a default changed ({'; '.join(changed)})")
        if res_path.exists() and (changed or not result_matches(res_path, run, profile, settings)):
            stale = supersede(res_path, out, changed)
            _forget(work, run["name"])
            log(f"[{i + 1}/{len(plan)}] {run['name']}: result from other settings moved to {stale}; retraining")
        elif changed:  # an unfinished run's checkpoint from before the change
            _forget(work, run["name"])
        if res_path.exists():
            log(f"[{i + 1}/{len(plan)}] {run['name']}: done already, skipped")
            try:
                backfill(profile, run, res_path, work, logs, log)
            except Exception as e:  # the finished run stays valid without the new variant
                log(f"  backfill FAILED: {str(e)[:2000]}")
            done.append(res_path)
            continue
        try:
            _do_run(profile, run, i, len(plan), out, work, logs, res_path, log, reevaluated)
        except Exception as e:  # one failed run must not stop the others; the report lists it as missing
            failed.append(run["name"])
            (out / "failed").mkdir(exist_ok=True)
            (out / "failed" / f"{run['name']}.txt").write_text(str(e))
            log(f"  FAILED: {str(e)[:2000]}")
            continue
        (out / "failed" / f"{run['name']}.txt").unlink(missing_ok=True)
        done.append(res_path)
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed: {failed} (see {out / 'failed'})")
    return done


def _forget(work: Path, name: str) -> None:
    """Delete a run's checkpoints and evals (they were made with other settings)."""
    shutil.rmtree(work / "train" / name, ignore_errors=True)
    (work / "train" / f"{name}.segments.json").unlink(missing_ok=True)
    for e in (work / "eval").glob(name + "*"):
        shutil.rmtree(e)


def _forget_evals(work: Path, name: str) -> None:
    """Delete a run's evaluations of its final checkpoint (those of intermediate checkpoints, which are deleted once
    evaluated, cannot be redone and stay)."""
    for e in (work / "eval").glob(name + "*"):
        if not re.fullmatch(rf"{re.escape(name)}_step\d+.*", e.name):
            shutil.rmtree(e)


def _do_run(profile, run, i, n_runs, out, work, logs, res_path, log, reevaluated=()):
    task = profile.task(run["task"])
    t_run = time.perf_counter()
    log(f"[{i + 1}/{n_runs}] {run['name']}")
    data, held = _record_datasets(profile, run, work, logs)
    train_dir = work / "train" / run["name"]
    ckpt = train_dir / "checkpoints" / "last" / "pretrained_model"
    train_log = logs / f"{run['name']}.train.log"
    meta_path = train_dir / "ablation_train.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("settings") != run_settings(profile, run):
        _forget(work, run["name"])  # trained with other settings (or before settings were recorded): retrain
    if not meta_path.exists() or not (ckpt / "model.safetensors").is_file():
        train_to_end(profile, run, task, data, train_dir, train_log, log)
    meta = json.loads(meta_path.read_text())
    wall = meta["wall_s"]
    train = {"wall_s": wall, "steps": run["steps"], "batch_size": task.sizes.batch_size,
             "resumed_from_steps": meta.get("resumed_from_steps", []), **parse_train_log(train_log)}
    train["wall_s_per_step"] = wall / run["steps"] if wall else None
    log(f"  trained: {wall:.0f}s" if wall else "  trained")
    evals = run_evals(profile, run, task, ckpt, work, logs, log)
    late = late_checkpoint_evals(profile, run, task, train_dir, work, logs, log)
    from .probes import evaluate_checkpoint

    extra = evaluate_checkpoint(ckpt, task, profile, held, data, log=log)
    result = {
        **{k: run[k] for k in ("name", "task", "policy", "n_demos", "seed", "steps")},
        "profile": profile.name,
        "train": train,
        **evals,
        "late_checkpoints": late + [{"step": run["steps"], **{k: _slim(evals[k]) for k in STABILITY if k in evals}}],
        "metrics": extra,
        "dataset": str(data), "heldout": str(held), "checkpoint": str(ckpt),
        "train_command": train_cmd(run, task, data, train_dir, profile),
        "hardware": hardware(),
        **({"reevaluated_at_inference_defaults": list(reevaluated)} if reevaluated else {}),
        "run_wall_s": time.perf_counter() - t_run,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    tmp = res_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=json_default))
    tmp.replace(res_path)
    log(f"  -> {res_path} ({result['run_wall_s']:.0f}s)")
    return res_path


STABILITY = ("eval", "eval_ensemble")  # the variants compared across late checkpoints


def _slim(ev: dict) -> dict:
    return {k: ev[k] for k in ("successes", "n", "success_rate", "wilson95")}


def late_checkpoint_evals(profile: Profile, run: dict, task: TaskSpec, train_dir: Path, work: Path, logs: Path,
                          log) -> list[dict]:
    """Ensembling stability: lerobot-eval each intermediate checkpoint kept by ``train_to_end`` with and without
    temporal ensembling (same episodes and seeds as the final one), then delete it. ``[{step, eval, ...}]``.
    A run with a head-fitting phase (``prior_fit_steps``) has none: its earlier checkpoints carry a head that was
    never fitted to the final posterior, which is not the policy the run ships."""
    out = []
    dirs = {int(d.name): d for d in (train_dir / "checkpoints").iterdir() if d.name.isdigit()
            and int(d.name) < run["steps"] and not run.get("prior_fit_steps")}
    # a rerun after a crash past this point finds the evaluations without their (deleted) checkpoints
    done = {int(m.group(1)) for e in (work / "eval").glob(f"{run['name']}_step*/eval_info.json")
            if (m := re.fullmatch(rf"{re.escape(run['name'])}_step(\d+)", e.parent.name))}
    for step in sorted(set(dirs) | done):
        ev = {"step": step}
        for key, suffix, extra in eval_variants(profile, run["policy"]):
            if key not in STABILITY:
                continue
            edir = work / "eval" / f"{run['name']}_step{step}{suffix}"
            if step not in dirs and not (edir / "eval_info.json").is_file():
                continue  # its checkpoint is gone and this variant was never measured: keep what was
            ckpt = dirs[step] / "pretrained_model" if step in dirs else None
            ev[key] = _slim(_eval_once(profile, task, ckpt, edir, extra, logs / f"{run['name']}.step{step}.{key}.log"))
        log(f"  step {step}: " + ", ".join(f"{k} {v['successes']}/{v['n']}" for k, v in ev.items() if k != "step"))
        out.append(ev)
    for d in dirs.values():  # evaluated: only ``last`` is kept
        shutil.rmtree(d)
    return out


def checkpoint_step(train_dir: Path) -> int | None:
    """The step of ``train_dir``'s last complete checkpoint (LeRobot moves ``last`` only after a full save)."""
    f = train_dir / "checkpoints" / "last" / "training_state" / "training_step.json"
    try:
        return int(json.loads(f.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return None


def train_unless_done(cmd: list[str], train_dir: Path, steps: int, log: Path, timeout: int = 4 * 3600) -> float | None:
    """Run a ``lerobot-train`` command unless ``train_dir`` already holds its final checkpoint (benchmark scripts).

    A missing or unfinished ``train_dir`` is trained from scratch. Returns the wall seconds, or None when reused.
    """
    if checkpoint_step(train_dir) == steps:
        return None
    shutil.rmtree(train_dir, ignore_errors=True)
    return run_logged(cmd, log, timeout)


def train_to_end(profile: Profile, run: dict, task: TaskSpec, data: Path, train_dir: Path, train_log: Path, log):
    """lerobot-train the run, resuming from its last checkpoint if an earlier invocation was stopped.

    Checkpoints every ``steps // profile.checkpoints_per_run`` steps, so a run stopped at the end of a session loses
    at most that much work; ``lerobot-train --resume=true`` restores weights, optimizer, scheduler, RNG and data
    order (not bit for bit: see the README's "Checkpoints and the Hub"), and the result records where it resumed.
    Wall time counts each stopped segment up to its last checkpoint. Writes ``ablation_train.json`` at the end and
    removes the intermediate checkpoints except the last ``profile.late_checkpoints`` (evaluated, then removed, by
    ``late_checkpoint_evals``)."""
    # beside train_dir, not in it: lerobot-train refuses to start a fresh run in an existing output directory
    seg_path, meta_path = train_dir.with_name(train_dir.name + ".segments.json"), train_dir / "ablation_train.json"
    settings = run_settings(profile, run)
    step = checkpoint_step(train_dir)
    segments = json.loads(seg_path.read_text()) if step and seg_path.exists() else []
    if segments and segments[0].get("settings") != settings:
        segments = []  # a stopped run with other settings: not resumable
    if not step or not segments:  # nothing to resume: start clean
        shutil.rmtree(train_dir, ignore_errors=True)
        train_log.unlink(missing_ok=True)
        segments, step = [], None
        cmd = train_cmd(run, task, data, train_dir, profile)
    else:
        last = segments[-1]
        if "wall_s" not in last:  # stopped: count its time up to the checkpoint we resume from
            saved = (train_dir / "checkpoints" / "last").resolve().stat().st_mtime
            last["wall_s"], last["to_step"] = max(0.0, saved - last["started"]), step
        log(f"  resuming lerobot-train from step {step}")
        cfg = train_dir / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
        cmd = [str(BIN / "lerobot-train"), "--resume=true", f"--config_path={cfg}"]
    if step != run["steps"]:  # (a stop between lerobot-train's last save and our meta file needs no training)
        train_dir.parent.mkdir(parents=True, exist_ok=True)
        segments.append({"from_step": step or 0, "started": time.time(), "settings": settings})
        seg_path.write_text(json.dumps(segments))
        segments[-1]["wall_s"] = run_logged(cmd, train_log, profile.timeout_s)
        segments[-1]["to_step"] = run["steps"]
        seg_path.write_text(json.dumps(segments))
    meta_path.write_text(json.dumps({"wall_s": sum(s["wall_s"] for s in segments), "steps": run["steps"],
                                     "settings": settings,
                                     "resumed_from_steps": [s["from_step"] for s in segments[1:]],
                                     "segments": segments}))
    seg_path.unlink()
    steps = sorted(d for d in (train_dir / "checkpoints").iterdir() if d.name.isdigit())
    keep = 1 if run.get("prior_fit_steps") else profile.late_checkpoints  # (see ``late_checkpoint_evals``)
    for d in steps[: max(0, len(steps) - keep)]:
        shutil.rmtree(d)


def training_settings(cmd: list[str]) -> list[str]:
    """The flags of a lerobot-train command that change the trained model (not paths, logging or checkpointing)."""
    keep = ("--policy.", "--batch_size=", "--steps=", "--seed=", "--dataset.repo_id=")
    return sorted(a for a in cmd if a.startswith(keep))


def changed_defaults(ckpt: Path, policy: str, cmd: list[str]) -> list[str]:
    """The fields of a hybrid checkpoint's ``config.json`` that its command left at the default and that differ from
    today's default (a default changed since it was trained, so its results are not the shipped policy's). [] for
    other policy types or a missing checkpoint. A field the checkpoint predates counts only if it is read at
    inference alone (``INFERENCE_ONLY_FIELDS``) and today's default differs from the base config's, the value that
    does what the code did before the field existed; other fields it predates are not compared."""
    from dataclasses import MISSING, fields

    from lerobot.configs.policies import PreTrainedConfig

    from lerobot_hybrid_act.configuration_hybrid_act import INFERENCE_ONLY_FIELDS, HybridActConfig

    cfg_path = Path(ckpt) / "config.json"
    if policy not in HYBRID or not cfg_path.is_file():
        return []
    saved = json.loads(cfg_path.read_text())
    flagged = {a.split("=", 1)[0].removeprefix("--policy.") for a in cmd if a.startswith("--policy.")}
    before_the_field = {f.name: f.default for f in fields(HybridActConfig) if f.name in INFERENCE_ONLY_FIELDS}
    changed = []
    for f in fields(PreTrainedConfig.get_choice_class(policy)):
        if f.name in flagged or f.default is MISSING:
            continue
        if f.name not in saved:
            if f.name in before_the_field and before_the_field[f.name] != f.default:
                changed.append(f"{f.name}: evaluated before the field existed (as {before_the_field[f.name]!r}), "
                               f"default now {f.default!r}")
            continue
        if isinstance(f.default, (bool, int, float, str, type(None))) and saved[f.name] != f.default:
            changed.append(f"{f.name}: trained with {saved[f.name]!r}, default now {f.default!r}")
    return changed


def changed_field(entry: str) -> str:
    """The field name of a ``changed_defaults`` entry."""
    return entry.split(":", 1)[0]


def retraining_needed(changed: list[str]) -> bool:
    """Whether ``changed_defaults`` names a field that training reads (else new evaluations are enough)."""
    from lerobot_hybrid_act.configuration_hybrid_act import INFERENCE_ONLY_FIELDS

    return any(changed_field(c) not in INFERENCE_ONLY_FIELDS for c in changed)


def adopt_inference_defaults(ckpt: Path, policy: str, changed: list[str]) -> list[str]:
    """Set the inference-only fields (``INFERENCE_ONLY_FIELDS``) among ``changed_defaults``' entries ``changed`` to
    today's defaults in the checkpoint's ``config.json`` (what lerobot-eval reads) and ``train_config.json``'s policy,
    so that it acts as a policy trained today would. Returns the entries it applied."""
    from dataclasses import fields

    from lerobot.configs.policies import PreTrainedConfig

    from lerobot_hybrid_act.configuration_hybrid_act import INFERENCE_ONLY_FIELDS

    applied = [c for c in changed if changed_field(c) in INFERENCE_ONLY_FIELDS]
    today = {f.name: f.default for f in fields(PreTrainedConfig.get_choice_class(policy))}
    update = {changed_field(c): today[changed_field(c)] for c in applied}
    for path, key in ((ckpt / "config.json", None), (ckpt / "train_config.json", "policy")):
        if path.is_file():
            cfg = json.loads(path.read_text())
            (cfg[key] if key else cfg).update(update)
            path.write_text(json.dumps(cfg, indent=4))
    return applied


def run_settings(profile: Profile, run: dict) -> list[str]:
    """``training_settings`` of the run as the profile plans it today (paths do not matter)."""
    task = profile.task(run["task"])
    return training_settings(train_cmd(run, task, Path(f"{task.name}_n{run['n_demos']}"), Path("out"), profile))


def result_matches(res_path: Path, run: dict, profile: Profile, settings: list[str]) -> bool:
    """A finished result counts only if it was trained with today's settings and evaluated with the same budget."""
    try:
        r = json.loads(res_path.read_text())
    except json.JSONDecodeError:
        return False
    return (r.get("steps") == run["steps"] and _get_n(r) == profile.eval_episodes
            and training_settings(r.get("train_command", [])) == settings)


def _get_n(r: dict):
    return (r.get("eval") or {}).get("n")


def json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o)}")
