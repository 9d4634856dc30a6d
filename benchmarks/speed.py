"""Speed of hybrid_act_a/b/c next to LeRobot's `act` and `diffusion` (issue 5).

    HF_HUB_OFFLINE=1 /work/venv/bin/python benchmarks/speed.py [--device cpu|cuda|mps] [--repeats 7] \
        [--out benchmarks/results/speed.json] [--plot benchmarks/results/speed_fidelity.png]
    ... --quick                 # smoke run: 1 repeat, 2 diffusion steps, short fidelity training

Every policy is built through LeRobot's own config classes and ``make_policy`` (input/output features set
explicitly, ``pretrained_backbone_weights=None``, otherwise DEFAULT configs: ACT chunk 100, Diffusion 100
DDPM steps / horizon 64 / 2 observation steps, ours chunk 100 with our defaults), on identical features:

- ``aloha``: 14-d ``observation.state`` + one 3x96x128 camera ``observation.images.top``, 14-d action;
- ``state``: 14-d ``observation.state`` + 7-d ``observation.environment_state``, 14-d action.

Measured (medians over ``--repeats``, the policies interleaved round by round so that the shared-CPU load
hits all of them alike; inputs are already-normalised random tensors, processors are not timed):

- ``predict_action_chunk`` latency, batch 1 (both profiles);
- ``select_action`` with temporal ensembling (``temporal_ensemble_coeff=0.01``, ``n_action_steps=1``, i.e. a
  new chunk every control step) on the state profile, as ms and Hz;
- one training step (forward + backward + optimizer step with the policy's optimizer preset), batch 8;
- peak memory: on CPU the peak RSS rise above the post-build RSS during 1 inference call / 2 training
  steps, each policy in a fresh child process (a shared process would reuse freed allocator pages); on
  CUDA ``torch.cuda.max_memory_allocated`` above the post-build allocation.

Then a fidelity-vs-steps curve: a default-size ``hybrid_act_c`` (state profile) trained on a fixed synthetic
batch, and the chunk MSE of DDIM sampling with num_inference_steps in {1, 2, 4, 8, 10, 16, 32} against the
data and against a 100-step DDIM reference from the same initial noise and z (the prior mean).

Prints a markdown table and writes everything to ``--out`` (JSON); the fidelity plot goes to ``--plot``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from lerobot.configs import FeatureType, PolicyFeature  # noqa: E402
from lerobot.policies.factory import make_policy, make_policy_config  # noqa: E402

import lerobot_hybrid_act  # noqa: E402,F401  (registers hybrid_act_a/b/c)

ACTION_DIM = 14
CHUNK = 100
TRAIN_BATCH = 8
PROFILES = {
    "aloha": {"observation.state": (14,), "observation.images.top": (3, 96, 128)},
    "state": {"observation.state": (14,), "observation.environment_state": (7,)},
}
OURS = lerobot_hybrid_act.POLICY_TYPES
FIDELITY_STEPS = (1, 2, 4, 8, 10, 16, 32)
ENSEMBLE_COEFF = 0.01


class _DatasetMeta:
    """The part of ``LeRobotDatasetMetadata`` that ``make_policy`` reads (features in dataset format)."""

    def __init__(self, profile: str):
        self.features = {"action": {"dtype": "float32", "shape": (ACTION_DIM,), "names": None}}
        for key, shape in PROFILES[profile].items():
            if len(shape) == 3:
                self.features[key] = {"dtype": "video", "shape": (shape[1], shape[2], shape[0]),
                                      "names": ["height", "width", "channels"]}  # fmt: skip
            else:
                self.features[key] = {"dtype": "float32", "shape": shape, "names": None}
        self.stats = None


def policy_features(profile: str) -> tuple[dict, dict]:
    inputs = {}
    for key, shape in PROFILES[profile].items():
        kind = FeatureType.VISUAL if len(shape) == 3 else FeatureType.ENV if "environment" in key else FeatureType.STATE
        inputs[key] = PolicyFeature(kind, shape)
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}


# --quick only: tiny models, so that the smoke test checks the plumbing in seconds (numbers meaningless).
TINY = {
    "act": dict(dim_model=32, dim_feedforward=64, n_encoder_layers=1, n_decoder_layers=1, n_vae_encoder_layers=1, n_heads=2),
    "diffusion": dict(down_dims=(16, 32), diffusion_step_embed_dim=16, spatial_softmax_num_keypoints=4, horizon=16,
                      n_action_steps=8),
    "ours": dict(dim_model=32, dim_feedforward=64, n_encoder_layers=1, n_vae_encoder_layers=1, n_heads=2,
                 denoiser_dim_model=32, denoiser_dim_feedforward=64, n_decoder_layers=1, latent_dim=4),
}  # fmt: skip
_tiny = False


def build(policy_type: str, profile: str, device: str, diffusion_steps: int | None = None, **overrides):
    inputs, outputs = policy_features(profile)
    kwargs = dict(device=device, pretrained_backbone_weights=None, input_features=inputs, output_features=outputs)
    if _tiny:
        kwargs.update(TINY["ours" if policy_type.startswith("hybrid_act") else policy_type])
    if policy_type == "diffusion" and diffusion_steps is not None:
        kwargs["num_inference_steps"] = diffusion_steps
    cfg = make_policy_config(policy_type, **{**kwargs, **overrides})
    policy = make_policy(cfg, ds_meta=_DatasetMeta(profile))
    return policy


def make_batch(policy, profile: str, batch_size: int, device: str, train: bool, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    obs_steps = policy.config.n_obs_steps if policy.config.type == "diffusion" else None
    batch = {}
    for key, shape in PROFILES[profile].items():
        full = (batch_size, obs_steps, *shape) if obs_steps else (batch_size, *shape)
        batch[key] = torch.randn(full, generator=g)
    if train:
        horizon = policy.config.horizon if policy.config.type == "diffusion" else policy.config.chunk_size
        batch["action"] = torch.rand(batch_size, horizon, ACTION_DIM, generator=g) * 2 - 1
        batch["action_is_pad"] = torch.zeros(batch_size, horizon, dtype=torch.bool)
    return {k: v.to(device) for k, v in batch.items()}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def timed(fn, device: str) -> tuple[float, float]:
    """(wall ms, process CPU ms) of one call. With ``--threads 1`` on a shared CPU the CPU time is what the
    call would take on an idle core; the wall time includes waiting for other jobs."""
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


class Trainer:
    """One optimisation step of a policy with its own optimizer preset (as lerobot-train builds it)."""

    def __init__(self, policy, batch):
        self.policy, self.batch = policy, batch
        self.optimizer = policy.config.get_optimizer_preset().build(policy.get_optim_params())

    def step(self) -> None:
        self.policy.train()
        loss, _ = self.policy.forward(dict(self.batch))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def interleaved(tasks: dict[str, callable], repeats: dict[str, int], device: str, warmup: int) -> dict[str, list[float]]:
    """Median-ready samples: round r times every task whose repeat budget is not used up, in turn."""
    for name, fn in tasks.items():
        for _ in range(warmup):
            fn()
    samples = {name: [] for name in tasks}
    for r in range(max(repeats.values())):
        for name, fn in tasks.items():
            if r < repeats[name]:
                samples[name].append(timed(fn, device))
    return samples


def n_params(policy) -> int:
    return sum(p.numel() for p in policy.parameters())


# ------------------------------------------------------------------------------------------ memory


class PeakRSS:
    """Samples this process's RSS every millisecond on a thread; ``peak - start`` in MB."""

    def __init__(self):
        import psutil

        self.proc = psutil.Process()

    def __enter__(self):
        self.start = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.delta_mb = (self.peak - self.start) / 2**20


def _glibc_release_freed_memory() -> None:
    """Make RSS track tensor memory: serve large blocks by mmap (returned to the OS on free) and give back
    what is already cached. No-op where glibc is not the allocator."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD: fixed, so glibc stops raising it after frees
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory(policy_type: str, profile: str, device: str, diffusion_steps: int | None) -> dict:
    """Peak memory of inference (batch 1) and training (batch 8) above the freshly built policy's."""
    if device == "cpu":
        _glibc_release_freed_memory()
    torch.manual_seed(0)
    policy = build(policy_type, profile, device, diffusion_steps)
    infer_batch = make_batch(policy, profile, 1, device, train=False)
    train_batch = make_batch(policy, profile, TRAIN_BATCH, device, train=True)
    out = {"params_m": n_params(policy) / 1e6}
    if device == "cuda":
        for kind, fn in (("infer", lambda: policy.predict_action_chunk(dict(infer_batch))), ("train", None)):
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            if kind == "train":
                trainer = Trainer(policy, train_batch)
                fn = trainer.step
            for _ in range(2):
                fn()
            torch.cuda.synchronize()
            out[f"{kind}_peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        return out
    with PeakRSS() as m:
        policy.predict_action_chunk(dict(infer_batch))
    out["infer_peak_mb"] = m.delta_mb
    _glibc_release_freed_memory()
    with PeakRSS() as m:
        trainer = Trainer(policy, train_batch)
        for _ in range(2):
            trainer.step()
    out["train_peak_mb"] = m.delta_mb
    return out


def memory_table(policy_types, profile: str, device: str, diffusion_steps: int | None, threads: int | None,
                 subprocess_mode: bool = True) -> dict:
    if device != "cpu" or not subprocess_mode:
        return {p: measure_memory(p, profile, device, diffusion_steps) for p in policy_types}
    results = {}
    for p in policy_types:  # a fresh process each, so that no policy reuses another's freed pages
        cmd = [sys.executable, __file__, "--memory-child", p, profile, "--device", device]
        if threads:
            cmd += ["--threads", str(threads)]
        if diffusion_steps is not None:
            cmd += ["--diffusion-steps", str(diffusion_steps)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"memory child for {p} failed:\n{proc.stderr[-3000:]}")
        results[p] = json.loads(proc.stdout.strip().splitlines()[-1])
    return results


# ------------------------------------------------------------------------------------------ fidelity


def synthetic_chunks(batch_size: int, seed: int = 0) -> dict:
    """State-profile observations and smooth, observation-dependent 14-d action chunks in [-0.9, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(batch_size, 14, generator=g)
    env = torch.randn(batch_size, 7, generator=g)
    mix = torch.randn(21, 2 * ACTION_DIM, generator=torch.Generator().manual_seed(1)) / 21**0.5
    phase, amp = (torch.cat([state, env], dim=1) @ mix).chunk(2, dim=1)  # (B, 14) each
    t = torch.linspace(0, 1, CHUNK).view(1, CHUNK, 1)
    freq = torch.linspace(1.0, 4.0, ACTION_DIM).view(1, 1, ACTION_DIM)
    action = 0.9 * torch.tanh(amp).unsqueeze(1).abs().clamp_min(0.3) * torch.sin(2 * torch.pi * freq * t + phase.unsqueeze(1))
    return {
        "observation.state": state,
        "observation.environment_state": env,
        "action": action,
        "action_is_pad": torch.zeros(batch_size, CHUNK, dtype=torch.bool),
    }


# The fidelity run trains a SMALL observation encoder / posterior (what is measured is the sampler and the
# denoiser, which keep their defaults) so that a few hundred steps fit in minutes on 2 CPU cores.
FIDELITY_OVERRIDES = dict(dim_model=128, dim_feedforward=512, n_encoder_layers=2, n_vae_encoder_layers=2, optimizer_lr=5e-4)


def fidelity_curve(device: str, train_steps: int, batch_size: int, eval_seeds: int, **overrides) -> dict:
    torch.manual_seed(0)
    policy = build("hybrid_act_c", "state", device, **{**FIDELITY_OVERRIDES, **overrides})
    batch = {k: v.to(device) for k, v in synthetic_chunks(batch_size).items()}
    trainer = Trainer(policy, batch)
    t0 = time.perf_counter()
    losses = []
    for _ in range(train_steps):
        policy.train()
        loss, info = policy.forward(dict(batch))
        loss.backward()
        trainer.optimizer.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        losses.append(info["diffusion_loss"])
    train_s = time.perf_counter() - t0
    policy.eval()
    obs = {k: v for k, v in batch.items() if k.startswith("observation.")}
    z = policy.sample_style(obs, generator=torch.Generator(device).manual_seed(0))
    default_steps = policy.config.num_inference_steps
    steps_list = sorted(set(FIDELITY_STEPS) | {default_steps})
    ref_steps = policy.config.num_train_timesteps

    def sample(steps: int, seed: int) -> torch.Tensor:
        policy.config.num_inference_steps = steps
        return policy.predict_action_chunk(obs, z=z, generator=torch.Generator(device).manual_seed(seed))

    refs = [sample(ref_steps, s) for s in range(eval_seeds)]
    rows = []
    for steps in steps_list:
        outs = [sample(steps, s) for s in range(eval_seeds)]
        rows.append({
            "num_inference_steps": steps,
            "mse_to_data": statistics.mean(float(((o - batch["action"]) ** 2).mean()) for o in outs),
            "mse_to_ref": statistics.mean(float(((o - r) ** 2).mean()) for o, r in zip(outs, refs, strict=True)),
        })  # fmt: skip
    policy.config.num_inference_steps = default_steps
    ref_to_data = statistics.mean(float(((r - batch["action"]) ** 2).mean()) for r in refs)
    return {
        "policy": "hybrid_act_c, state profile, default denoiser/sampler, small encoder",
        "overrides": {**FIDELITY_OVERRIDES, **overrides},
        "denoiser": {k: getattr(policy.config, k) for k in ("denoiser_dim_model", "denoiser_dim_feedforward", "n_decoder_layers")},
        "sampler": policy.config.noise_scheduler_type,
        "train_steps": train_steps,
        "train_batch": batch_size,
        "train_seconds": train_s,
        "final_diffusion_loss": statistics.mean(losses[-10:]),
        "data_variance": float(batch["action"].var()),
        "eval_seeds": eval_seeds,
        "reference_steps": ref_steps,
        "reference_mse_to_data": ref_to_data,
        "default_steps": default_steps,
        "rows": rows,
    }


def plot_fidelity(fid: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["num_inference_steps"] for r in fid["rows"]]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.plot(steps, [r["mse_to_data"] for r in fid["rows"]], "o-", label="chunk MSE to data")
    ax.plot(steps, [r["mse_to_ref"] for r in fid["rows"]], "s--", label=f"chunk MSE to {fid['reference_steps']}-step DDIM")
    ax.axhline(fid["reference_mse_to_data"], color="gray", lw=0.8, label=f"{fid['reference_steps']}-step DDIM to data")
    ax.axvline(fid["default_steps"], color="C3", lw=0.8, ls=":", label=f"default ({fid['default_steps']})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlabel("num_inference_steps (DDIM)")
    ax.set_ylabel("MSE (normalised actions)")
    ax.set_title(f"hybrid_act_c fidelity vs steps ({fid['train_steps']} train steps)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ main


def load_report() -> dict:
    info = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    try:
        info["loadavg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def run(args) -> dict:
    device = args.device
    types = ("act", "diffusion", *OURS)
    t_start = time.perf_counter()
    results = {
        "command": " ".join(["python", *sys.argv]),
        "device": device,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "quick_tiny_models": args.quick,
        "repeats": args.repeats,
        "diffusion_repeats": args.diffusion_repeats,
        "diffusion_steps": args.diffusion_steps or "default (100 DDPM)",
        "load_at_start": load_report(),
    }
    med = statistics.median
    wall, cpu = {}, {}

    def record(name: str, samples: dict[str, list[tuple[float, float]]]) -> None:
        wall[name] = {p: med(x[0] for x in v) for p, v in samples.items()}
        cpu[name] = {p: med(x[1] for x in v) for p, v in samples.items()}

    # -- chunk latency (batch 1) and training step (batch 8), ALOHA shapes.
    log("building policies (aloha profile)")
    torch.manual_seed(0)
    policies = {p: build(p, "aloha", device, args.diffusion_steps) for p in types}
    results["params_m"] = {p: n_params(pol) / 1e6 for p, pol in policies.items()}
    results["config"] = {
        p: {k: getattr(pol.config, k) for k in ("chunk_size", "n_action_steps", "num_inference_steps", "noise_scheduler_type",
                                                "dim_model", "n_decoder_layers", "denoiser_dim_model", "denoiser_dim_feedforward",
                                                "horizon", "n_obs_steps") if hasattr(pol.config, k)}
        for p, pol in policies.items()
    }  # fmt: skip
    reps = {p: (args.diffusion_repeats if p == "diffusion" else args.repeats) for p in types}
    log("timing predict_action_chunk (aloha, batch 1)")
    infer = {p: make_batch(pol, "aloha", 1, device, train=False) for p, pol in policies.items()}
    record("chunk_aloha", interleaved({p: (lambda p=p: policies[p].predict_action_chunk(dict(infer[p]))) for p in types},
                                      reps, device, args.warmup))  # fmt: skip
    log("timing training step (aloha, batch 8)")
    trainers = {p: Trainer(pol, make_batch(pol, "aloha", TRAIN_BATCH, device, train=True)) for p, pol in policies.items()}
    record("train_aloha", interleaved({p: trainers[p].step for p in types}, reps, device, 0 if args.quick else max(args.warmup, 1)))
    del policies, trainers, infer

    # -- state profile: chunk latency and select_action with temporal ensembling (a chunk every step).
    log("timing state profile")
    state_types = ("act", *OURS)
    torch.manual_seed(0)
    state_pol = {p: build(p, "state", device) for p in state_types}
    ens_pol = {p: build(p, "state", device, temporal_ensemble_coeff=ENSEMBLE_COEFF, n_action_steps=1) for p in state_types}
    s_infer = {p: make_batch(pol, "state", 1, device, train=False) for p, pol in state_pol.items()}
    record("chunk_state", interleaved({p: (lambda p=p: state_pol[p].predict_action_chunk(dict(s_infer[p]))) for p in state_types},
                                      dict.fromkeys(state_types, args.repeats), device, args.warmup))  # fmt: skip
    select = {p: [] for p in state_types}
    for _ in range(args.select_episodes):
        for p in state_types:  # one short episode per policy, in turn; its first call is a warm-up
            pol = ens_pol[p]
            pol.reset()
            steps = [timed(lambda pol=pol, p=p: pol.select_action(dict(s_infer[p])), device) for _ in range(args.select_steps + 1)]
            select[p].extend(steps[1:])
    record("select_state", select)
    del state_pol, ens_pol

    results["wall_ms"], results["cpu_ms"] = wall, cpu
    results["select_action_ensembled_hz"] = {
        p: {"wall": 1e3 / wall["select_state"][p], "cpu": 1e3 / cpu["select_state"][p]} for p in state_types
    }

    log("peak memory")
    results["memory_aloha"] = memory_table(types, "aloha", device, args.diffusion_steps, args.threads, subprocess_mode=not args.quick)

    c = "hybrid_act_c"
    results["ratios"] = {
        clock: {
            "chunk_latency_c_over_act": t["chunk_aloha"][c] / t["chunk_aloha"]["act"],
            "chunk_latency_diffusion_over_c": t["chunk_aloha"]["diffusion"] / t["chunk_aloha"][c],
            "train_step_c_over_act": t["train_aloha"][c] / t["train_aloha"]["act"],
            "select_action_ensembled_hz_c": 1e3 / t["select_state"][c],
        }
        for clock, t in (("wall", wall), ("cpu", cpu))
    }
    results["targets_met"] = {
        clock: {
            "chunk_latency_c_over_act<=1.5": r["chunk_latency_c_over_act"] <= 1.5,
            "chunk_latency_diffusion_over_c>=10": r["chunk_latency_diffusion_over_c"] >= 10,
            "train_step_c_over_act<=1.3": r["train_step_c_over_act"] <= 1.3,
            "select_action_ensembled_hz_c>=50": r["select_action_ensembled_hz_c"] >= 50,
        }
        for clock, r in results["ratios"].items()
    }

    if not args.skip_fidelity:
        log("fidelity vs steps")
        results["fidelity"] = fidelity_curve(device, args.fidelity_train_steps, args.fidelity_batch, args.fidelity_seeds,
                                             **_fidelity_overrides(args))  # fmt: skip
        if args.plot:
            plot_fidelity(results["fidelity"], Path(args.plot))
            results["fidelity"]["plot"] = args.plot
    results["load_at_end"] = load_report()
    results["wall_seconds"] = time.perf_counter() - t_start
    return results


def _fidelity_overrides(args) -> dict:
    out = {}
    if args.fidelity_denoiser:
        d, ff, layers = (int(x) for x in args.fidelity_denoiser.split(","))
        out.update(denoiser_dim_model=d, denoiser_dim_feedforward=ff, n_decoder_layers=layers)
    if args.fidelity_prediction_type:
        out["prediction_type"] = args.fidelity_prediction_type
    return out


def log(msg: str) -> None:
    print(f"[speed] {msg} ...", file=sys.stderr, flush=True)


def markdown(r: dict) -> str:
    w, c = r["wall_ms"], r["cpu_ms"]
    mem = r["memory_aloha"]
    both = lambda key, p, f="{:.0f}": f"{f.format(w[key][p])} ({f.format(c[key][p])})" if p in w[key] else "–"  # noqa: E731
    ratio = lambda key, p: f"{w[key][p] / w[key]['act']:.2f} ({c[key][p] / c[key]['act']:.2f})"  # noqa: E731
    lines = [
        "| policy | params (M) | chunk, ALOHA shapes (ms) | ÷ act | chunk, state-only (ms) "
        "| select_action + ensembling, state-only (Hz) | train step, batch 8 (ms) | ÷ act | peak mem infer / train (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in ("act", "diffusion", *OURS):
        hz = r["select_action_ensembled_hz"].get(p)
        hz = f"{hz['wall']:.0f} ({hz['cpu']:.0f})" if hz else "–"
        lines.append(
            f"| `{p}` | {r['params_m'][p]:.1f} | {both('chunk_aloha', p)} | {ratio('chunk_aloha', p)} | {both('chunk_state', p, '{:.1f}')} "
            f"| {hz} | {both('train_aloha', p)} | {ratio('train_aloha', p)} "
            f"| {mem[p]['infer_peak_mb']:.0f} / {mem[p]['train_peak_mb']:.0f} |"
        )
    rw, rc = r["ratios"]["wall"], r["ratios"]["cpu"]
    lines += [
        "",
        "Wall-clock medians, process CPU time in parentheses. Targets (wall / CPU): "
        f"hybrid_act_c ÷ act chunk latency **{rw['chunk_latency_c_over_act']:.2f} / {rc['chunk_latency_c_over_act']:.2f}** (≤ 1.5); "
        f"diffusion ÷ hybrid_act_c **{rw['chunk_latency_diffusion_over_c']:.0f}× / {rc['chunk_latency_diffusion_over_c']:.0f}×** (≥ 10); "
        f"hybrid_act_c select_action with ensembling **{rw['select_action_ensembled_hz_c']:.0f} / {rc['select_action_ensembled_hz_c']:.0f} Hz** (≥ 50); "
        f"train step hybrid_act_c ÷ act **{rw['train_step_c_over_act']:.2f} / {rc['train_step_c_over_act']:.2f}** (≤ 1.3).",
    ]
    if "fidelity" in r:
        f = r["fidelity"]
        lines += [
            "",
            f"Fidelity vs DDIM steps ({f['policy']}: denoiser {f['denoiser']}, {f['train_steps']} training steps on a fixed "
            f"synthetic batch of {f['train_batch']}, final diffusion loss {f['final_diffusion_loss']:.3f}; action variance "
            f"{f['data_variance']:.3f}; z = prior mean; mean of {f['eval_seeds']} initial noises; {f['reference_steps']}-step "
            f"DDIM → data {f['reference_mse_to_data']:.4f}):",
            "",
            "| DDIM steps | " + " | ".join(str(x["num_inference_steps"]) for x in f["rows"]) + " |",
            "|---|" + "---:|" * len(f["rows"]),
            "| chunk MSE to data | " + " | ".join(f"{x['mse_to_data']:.4f}" for x in f["rows"]) + " |",
            f"| chunk MSE to {f['reference_steps']}-step DDIM | " + " | ".join(f"{x['mse_to_ref']:.4f}" for x in f["rows"]) + " |",
        ]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"))
    ap.add_argument("--repeats", type=int, default=7, help="timed calls per policy and measurement (median reported)")
    ap.add_argument("--diffusion-repeats", type=int, default=3, help="repeats for LeRobot diffusion (~40 s/chunk on CPU)")
    ap.add_argument("--diffusion-steps", type=int, default=None, help="override Diffusion's 100 DDPM steps (NOT the default)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--select-steps", type=int, default=20, help="timed control steps per select_action episode")
    ap.add_argument("--select-episodes", type=int, default=3, help="select_action episodes per policy (interleaved)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's). Use 1 on a CPU shared with other jobs: "
                         "oversubscribed OpenMP threads make timings several times slower and erratic")
    ap.add_argument("--fidelity-train-steps", type=int, default=300)
    ap.add_argument("--fidelity-batch", type=int, default=16)
    ap.add_argument("--fidelity-seeds", type=int, default=3)
    ap.add_argument("--skip-fidelity", action="store_true")
    ap.add_argument("--fidelity-only", action="store_true", help="only the fidelity-vs-steps curve")
    ap.add_argument("--fidelity-denoiser", metavar="DIM,FF,LAYERS", default=None,
                    help="denoiser_dim_model,denoiser_dim_feedforward,n_decoder_layers for the fidelity run (default: ours)")
    ap.add_argument("--fidelity-prediction-type", choices=("epsilon", "sample"), default=None,
                    help="the denoiser's target for the fidelity run (default: ours)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 2 diffusion steps, short fidelity run")
    ap.add_argument("--out", default="benchmarks/results/speed.json")
    ap.add_argument("--plot", default="benchmarks/results/speed_fidelity.png")
    ap.add_argument("--memory-child", nargs=2, metavar=("POLICY", "PROFILE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(measure_memory(*args.memory_child, args.device, args.diffusion_steps)))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        global _tiny
        _tiny = True
        args.repeats, args.diffusion_repeats, args.warmup, args.select_steps, args.select_episodes = 1, 1, 0, 2, 1
        args.diffusion_steps = args.diffusion_steps or 2
        args.fidelity_train_steps, args.fidelity_batch, args.fidelity_seeds = 2, 2, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but torch.cuda.is_available() is False")
    if args.fidelity_only:
        fid = fidelity_curve(args.device, args.fidelity_train_steps, args.fidelity_batch, args.fidelity_seeds,
                             **_fidelity_overrides(args))  # fmt: skip
        if args.plot:
            plot_fidelity(fid, Path(args.plot))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"command": " ".join(["python", *sys.argv]), "fidelity": fid}, indent=1))
        print(json.dumps(fid, indent=1))
        return
    results = run(args)
    table = markdown(results)
    results["markdown"] = table
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(table)
    print(f"\ntorch threads {torch.get_num_threads()}; load average (1/5/15 min) at start "
          f"{results['load_at_start'].get('loadavg_1_5_15')}, at end {results['load_at_end'].get('loadavg_1_5_15')} "
          f"on {os.cpu_count()} CPUs; {results['wall_seconds']:.0f} s; JSON: {out}")  # fmt: skip


if __name__ == "__main__":
    main()
