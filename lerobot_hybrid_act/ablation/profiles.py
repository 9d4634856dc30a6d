"""Declarative ablation profiles.

A profile fixes everything a run depends on: the tasks (dataset recording, env flags for ``lerobot-eval``,
the sizes shared by every policy), the policies, the demo counts, the training seeds, the number of gradient
steps and the evaluation budget. Changing a profile changes the run names' inputs, so never edit a profile
while its output directory holds runs you want to keep: add a new profile instead.

Seed discipline (never tune on evaluation seeds):

- training demos: seeds ``demo_seed, demo_seed + 1, ...`` (< 500; failed scripted attempts are skipped);
- held-out demos for chunk fidelity / latent probes: seeds ``heldout_seed ...`` (500-599);
- docking route-coverage starts: seeds ``route_seed ...`` (900-999);
- evaluation: ``lerobot-eval --seed=1000`` (episodes 1000, 1001, ...), and the in-process rollouts for
  smoothness/collisions use seeds 2000+ so that they are also disjoint from everything above.
Nothing in this package chooses a hyper-parameter from an evaluation result.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lerobot_hybrid_act.aloha import EPISODE_LENGTH as ALOHA_EPISODE_LENGTH
from lerobot_hybrid_act.configuration_hybrid_act import POLICY_TYPES as HYBRID
from lerobot_hybrid_act.configuration_hybrid_act import default_head_fit_steps
from lerobot_hybrid_act.docking import EPISODE_LENGTH as DOCKING_EPISODE_LENGTH

POLICIES = ("act", "diffusion", *HYBRID)
# Variants: a policy type with non-default flags, reported as its own column (label -> (type, --policy.* flags)).
# hybrid_act_c_recon: C with the reconstruction term. With C's defaults the denoiser ignores z on docking (the full
# profile's z-usage table); benchmarks/latent_usage.py found that recon_weight=1 with kl_weight=0.01 makes z pick
# the route (the README's "Does C use z?"), judged on seeds disjoint from lerobot-eval's.
# The modes_prior variants: C's latent prior and KL weight named explicitly (they were chosen between on paired
# docking, docs/latent-modes.md), so that a run keeps its meaning when C's defaults change.
_C_LATENTS = {
    "categorical": ("--policy.latent_prior=categorical", "--policy.kl_weight=0.1"),
    "mixture": ("--policy.latent_prior=mixture", "--policy.kl_weight=0.1"),
    "mixture_kl001": ("--policy.latent_prior=mixture", "--policy.kl_weight=0.01"),
    "gaussian_kl001": ("--policy.latent_prior=gaussian", "--policy.kl_weight=0.01"),
    "gaussian_kl001_ema": ("--policy.latent_prior=gaussian", "--policy.kl_weight=0.01", "--policy.ema_decay=0.999"),
}
# Design runs after modes_prior (docs/latent-modes.md): C at the Gaussian kl 0.01 defaults plus one change each.
_C_DESIGN = {
    "cosine": ("--policy.latent_prior=gaussian", "--policy.kl_weight=0.01", "--policy.scheduler_name=cosine"),
}
VARIANTS = {"hybrid_act_c_recon": ("hybrid_act_c", ("--policy.recon_weight=1.0", "--policy.kl_weight=0.01")),
            **{f"hybrid_act_c_{k}": ("hybrid_act_c", flags) for k, flags in {**_C_LATENTS, **_C_DESIGN}.items()}}


POLICY_ORDER = (*POLICIES, *VARIANTS)  # the order of the report's tables and plots


def policy_rank(label: str) -> int:
    """A policy label's place in ``POLICY_ORDER`` (unknown labels last)."""
    return POLICY_ORDER.index(label) if label in POLICY_ORDER else len(POLICY_ORDER)


def policy_type(label: str) -> str:
    """The registered policy type behind a profile's policy label (a type, or a key of ``VARIANTS``)."""
    return VARIANTS[label][0] if label in VARIANTS else label


def head_fit_steps(label: str) -> int:
    """Steps a policy trains after a profile's shared ``steps`` fitting only its sampling head (hybrid_act_c's
    ``prior_fit_steps`` with a fitted head; 0 for the variants with another ``latent_prior``). The runner adds them
    to lerobot-train's ``--steps``, so that every policy's weights get the profile's number of updates."""
    policy, flags = VARIANTS.get(label, (label, ()))
    prior = next((f.partition("=")[2] for f in flags if f.startswith("--policy.latent_prior=")), None)
    return default_head_fit_steps(policy, prior)


@dataclass(frozen=True)
class Sizes:
    """Sizes shared by every policy (where the architecture has the field)."""

    dim_model: int
    n_heads: int
    dim_feedforward: int
    n_encoder_layers: int
    n_vae_encoder_layers: int
    chunk_size: int
    n_action_steps: int
    latent_dim: int
    batch_size: int
    lr: float
    # ours only (the denoiser); LeRobot act keeps its own decoder depth (1)
    n_decoder_layers: int = 2
    denoiser_dim_model: int = 128
    denoiser_dim_feedforward: int = 512
    # ours: None = the policy's shipped default (the flag is not passed)
    kl_anneal_steps: int | None = 500
    # LeRobot diffusion: U-Net widths (shrunk for CPU), horizon (None = chunk_size; a multiple of
    # 2 ** len(diffusion_down_dims)), executed actions (None = as many as the horizon allows, capped at
    # n_action_steps), n_obs_steps = 2 (its default), DDIM with ``diffusion_num_inference_steps``.
    diffusion_down_dims: tuple[int, ...] = (64, 128)
    diffusion_n_obs_steps: int = 2
    diffusion_horizon: int | None = None
    diffusion_n_action_steps: int | None = None
    diffusion_num_inference_steps: int = 10
    # ours: sampler steps (None = the shipped default)
    num_inference_steps: int | None = 10
    # ours: the denoiser's target (our default since it was chosen on held-out demo fidelity; explicit here so that
    # runs trained with the earlier "epsilon" default count as other settings and are retrained)
    prediction_type: str = "sample"


@dataclass(frozen=True)
class TaskSpec:
    name: str  # docking | aloha_transfer_cube | aloha_insertion
    record_task: str  # hybrid-act-record --task
    env_args: tuple[str, ...]  # lerobot-eval --env.* flags
    sizes: Sizes
    episode_length: int
    noise: float
    cameras: tuple[str, ...] = ()
    image_size: str | None = None
    demo_seed: int = 0
    heldout_seed: int = 500
    route_seed: int = 900
    rollout_seed: int = 2000
    eval_seed: int = 1000
    eval_batch_size: int = 10
    # multimodal demos: every layout demonstrated once per route (hybrid-act-record --routes-per-layout); a run's
    # ``n_demos`` then counts layouts and its dataset holds n_demos x routes_per_layout episodes
    routes_per_layout: int = 1
    # settings sweeps (e.g. sampler steps) are evaluated on these seeds, disjoint from ``eval_seed``'s episodes
    sweep_seed: int = 3000

    @property
    def is_docking(self) -> bool:
        return self.name == "docking"


DOCKING_SIZES = Sizes(
    dim_model=128, n_heads=4, dim_feedforward=512, n_encoder_layers=2, n_vae_encoder_layers=2,
    chunk_size=20, n_action_steps=10, latent_dim=8, batch_size=32, lr=1e-4,
)
# The CPU budget measured in /work/shared/notes/aloha-on-cpu.md (LeRobot act reaches ~85-90% at ~10k steps).
ALOHA_SIZES = Sizes(
    dim_model=256, n_heads=8, dim_feedforward=1024, n_encoder_layers=2, n_vae_encoder_layers=2,
    chunk_size=100, n_action_steps=100, latent_dim=32, batch_size=8, lr=1e-4,
    denoiser_dim_model=128, denoiser_dim_feedforward=512, kl_anneal_steps=2000,
)

DOCKING = TaskSpec(
    name="docking", record_task="docking", sizes=DOCKING_SIZES, episode_length=DOCKING_EPISODE_LENGTH, noise=0.05,
    env_args=("--env.type=docking", f"--env.episode_length={DOCKING_EPISODE_LENGTH}", "--env.render_size=64"),
)


def _aloha(task: str) -> TaskSpec:
    return TaskSpec(
        name=f"aloha_{task}", record_task=f"aloha_{task}", sizes=ALOHA_SIZES, episode_length=ALOHA_EPISODE_LENGTH,
        noise=0.0,
        env_args=(
            "--env.type=aloha_fast", f"--env.task={task}", "--env.cameras=[]",
            f"--env.episode_length={ALOHA_EPISODE_LENGTH}",
            "--env.render_video=false",
        ),
    )


ALOHA_TC = _aloha("transfer_cube")
ALOHA_INS = _aloha("insertion")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    tasks: tuple[TaskSpec, ...]
    policies: tuple[str, ...]
    steps: dict[str, int]  # per task
    main_n_demos: dict[str, int]  # per task: every policy is trained with this many demos
    extra_n_demos: dict[str, tuple[int, ...]] = field(default_factory=dict)  # sample-efficiency points
    sample_efficiency_policies: tuple[str, ...] = POLICIES
    # per task: more policy labels (``VARIANTS``) trained at the main demo count with every seed
    variant_policies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (1,)
    eval_episodes: int = 50
    ensemble_eval: bool = True  # second lerobot-eval with temporal ensembling (act and hybrids)
    ensemble_coeff: float = 0.01
    # third lerobot-eval with --policy.z_mode=hold (one z ~ p(z|obs) per episode instead of one per chunk): does a
    # committed style fix the chunk-to-chunk mode switching of per-chunk sampling? (C only: A has no z, B's is f(obs));
    # policy types, so C's variants get it too
    hold_eval_policies: tuple[str, ...] = ("hybrid_act_c",)
    # C again with a fresh z ~ p(z|obs) for every chunk (--policy.z_mode=sample), next to its default held z
    sample_eval_policies: tuple[str, ...] = ()
    # C's sampler steps swept on ``TaskSpec.sweep_seed`` episodes (report-only: which default the data favour)
    steps_sweep: tuple[int, ...] = ()
    # C's hold_scale swept on ``TaskSpec.sweep_seed`` episodes, plain and with temporal ensembling
    hold_scale_sweep: tuple[float, ...] = ()
    # per task: the policies trained there (default: ``policies``)
    task_policies: dict[str, tuple[str, ...]] = field(default_factory=dict)
    n_heldout: int = 50  # held-out demos (chunk fidelity, latent probes)
    fidelity_obs: int = 64  # held-out observations for chunk fidelity
    k_samples: int = 8  # K chunks per observation (best-of-K, mean-of-K, diversity)
    smooth_episodes: int = 10  # in-process rollouts per mode (queue / ensembling) for smoothness
    route_starts: int = 3  # docking: start states for route coverage
    route_rollouts: int = 10  # docking: rollouts R per start
    control_z: int = 5  # docking B/C: held z draws, 2 rollouts each
    runnable: bool = True  # False: configured and documented, not meant for this CPU machine
    extra_train_args: tuple[str, ...] = ()
    # per subprocess (one lerobot-train segment or one lerobot-eval): a guard against hung processes, not a budget.
    # An ALOHA act run took 42 min in one session here and needed > 2 h on the same 2 cores in a busier one.
    timeout_s: int = 5 * 3600
    # hybrid_act_c's head-fitting phase (``prior_fit_steps``, added to ``steps``); None: the policy's default
    prior_fit_steps: int | None = None
    # checkpoints per training run: a run stopped (end of a session) resumes from the last one
    checkpoints_per_run: int = 5
    # ensembling stability: the last N of them are each evaluated with and without temporal ensembling (issue 7:
    # ACT with ensembling swung between 26% and 80% across late checkpoints); 1 = the final checkpoint only
    late_checkpoints: int = 3

    def n_demos(self, task: str) -> list[int]:
        return sorted({self.main_n_demos[task], *self.extra_n_demos.get(task, ())})

    def runs(self) -> list[dict]:
        """Every run of the profile (task, policy, n_demos, seed), in execution order.

        The main comparison (main demo count, every seed) comes before the sample-efficiency points
        (other demo counts), so a full profile stopped part-way has its headline table with all seeds.
        """
        out = []
        for main_pass in (True, False):
            for seed in self.seeds:
                for t in self.tasks:
                    main = self.main_n_demos[t.name]
                    ns = [main] if main_pass else sorted(set(self.extra_n_demos.get(t.name, ())) - {main})
                    for n in ns:
                        policies = self.task_policies.get(t.name, self.policies)
                        for p in policies + (self.variant_policies.get(t.name, ()) if main_pass else ()):
                            if not main_pass and p not in self.sample_efficiency_policies:
                                continue
                            fit = head_fit_steps(p)
                            fit = fit if self.prior_fit_steps is None or not fit else self.prior_fit_steps
                            out.append({"task": t.name, "policy": p, "n_demos": n, "seed": seed,
                                        "steps": self.steps[t.name] + fit, "prior_fit_steps": fit,
                                        "name": run_name(t.name, p, n, seed)})
        return out

    def task(self, name: str) -> TaskSpec:
        return next(t for t in self.tasks if t.name == name)


def run_name(task: str, policy: str, n_demos: int, seed: int) -> str:
    return f"{task}__{policy}__n{n_demos}__s{seed}"


SMOKE = Profile(
    name="smoke",
    description="smoke test of the harness (tiny: 20 steps, 2 eval episodes); its numbers mean nothing",
    tasks=(DOCKING,), policies=("act", "hybrid_act_c"), steps={"docking": 20}, prior_fit_steps=4,
    main_n_demos={"docking": 6}, seeds=(1,), eval_episodes=2, n_heldout=4, fidelity_obs=8, k_samples=3,
    smooth_episodes=1, route_starts=1, route_rollouts=3, control_z=2, late_checkpoints=2,
)

QUICK = Profile(
    name="quick",
    description=(
        "QUICK profile: docking only, 1 training seed, 2000 gradient steps, 30 eval "
        "episodes; a sanity "
        "check of the protocol on a shared 2-core CPU, not the ablation's answer (see the full profile)"
    ),
    tasks=(DOCKING,), policies=POLICIES, steps={"docking": 2000},
    main_n_demos={"docking": 50}, extra_n_demos={"docking": (10,)},
    sample_efficiency_policies=("act", "hybrid_act_c"),
    seeds=(1,), eval_episodes=30, n_heldout=20, fidelity_obs=32, k_samples=6, smooth_episodes=4,
    route_starts=2, route_rollouts=8, control_z=4,
)

FULL = Profile(
    name="full",
    description=(
        "FULL profile: docking (10/25/50/100 demos, 5000 steps) and ALOHA transfer cube / insertion "
        "(50 scripted demos, 10000 steps), 3 training seeds, 50 eval episodes per checkpoint"
    ),
    tasks=(DOCKING, ALOHA_TC, ALOHA_INS), policies=POLICIES,
    steps={"docking": 5000, "aloha_transfer_cube": 10000, "aloha_insertion": 10000},
    main_n_demos={"docking": 50, "aloha_transfer_cube": 50, "aloha_insertion": 50},
    extra_n_demos={"docking": (10, 25, 100)}, variant_policies={"docking": ("hybrid_act_c_recon",)},
    seeds=(1, 2, 3), eval_episodes=50, n_heldout=50, fidelity_obs=128, k_samples=8, smooth_episodes=10,
    route_starts=5, route_rollouts=20, control_z=10,
)

# Issue 24: docking with every layout demonstrated once per route, so that p(route | observation) is 50/50 on the
# training set and no policy can memorise a layout's route; every policy at its shipped defaults except what all share
# (widths, lr, batch, steps). LeRobot diffusion at its own recommended chunking (horizon 16, 8 executed actions,
# 2 observation steps; U-Net widths shrunk for CPU; DDIM 10 steps as in the full profile, for CPU evaluation cost).
DOCKING_MODES = replace(
    DOCKING, routes_per_layout=2,
    sizes=replace(DOCKING_SIZES, kl_anneal_steps=None, num_inference_steps=None, diffusion_horizon=16,
                  diffusion_n_action_steps=8),
)
# hybrid_act_c on insertion at its shipped defaults too (the full profile passed the old C's KL warm-up and 10 steps).
ALOHA_INS_MODES = replace(ALOHA_INS, sizes=replace(ALOHA_SIZES, kl_anneal_steps=None, num_inference_steps=None))
MODES = Profile(
    name="modes",
    description=(
        "MODES profile: docking with paired routes (every layout demonstrated left and right; 50 layouts, plus 10 "
        "and 25 for sample efficiency), 5000 steps, every policy at its shipped defaults, 3 training seeds, 50 eval "
        "episodes per checkpoint; hybrid_act_c at its new defaults on ALOHA insertion (10000 steps, 3 seeds)"
    ),
    tasks=(DOCKING_MODES, ALOHA_INS_MODES), policies=POLICIES,
    task_policies={"aloha_insertion": ("hybrid_act_c",)},
    steps={"docking": 5000, "aloha_insertion": 10000},
    main_n_demos={"docking": 50, "aloha_insertion": 50},
    extra_n_demos={"docking": (10, 25)},
    seeds=(1, 2, 3), eval_episodes=50, n_heldout=25, fidelity_obs=128, k_samples=8, smooth_episodes=10,
    route_starts=5, route_rollouts=20, control_z=10,
    hold_eval_policies=(), sample_eval_policies=("hybrid_act_c",), steps_sweep=(1, 2, 4, 8),
)

# The design choice behind C's defaults, made before MODES trains C and on episodes MODES never evaluates (3000+):
# C's latent prior and KL weight, the sampler steps (1, 2, 4, 8) and the held z's scale, on paired docking, one seed.
MODES_PRIOR = replace(
    MODES, name="modes_prior",
    description=(
        "MODES_PRIOR profile: hybrid_act_c's latent prior (categorical code, mixture, Gaussian) and KL weight on "
        "paired docking (50 layouts x 2 routes, 5000 steps, 1 seed), evaluated on episodes 3000+ (disjoint from "
        "MODES' 1000+), with the sampler-steps sweep: the choice of C's defaults"
    ),
    tasks=(replace(DOCKING_MODES, eval_seed=3000),), policies=(), task_policies={},
    variant_policies={"docking": tuple(f"hybrid_act_c_{k}" for k in {**_C_LATENTS, **_C_DESIGN})},
    steps={"docking": 5000}, main_n_demos={"docking": 50}, extra_n_demos={}, seeds=(1,),
    hold_scale_sweep=(1.0, 2.0, 4.0, 8.0),
)

# Images (top camera 480x640, ImageNet ResNet18 backbone for every policy), LeRobot act's default sizes.
# Configured and documented; not run on the CPU machine.
_GPU_SIZES = replace(
    ALOHA_SIZES, dim_model=512, dim_feedforward=3200, n_encoder_layers=4, n_vae_encoder_layers=4,
    denoiser_dim_model=256, denoiser_dim_feedforward=1024, n_decoder_layers=4,
    diffusion_down_dims=(256, 512, 1024),
)
GPU = Profile(
    name="gpu",
    description=(
        "GPU profile: ALOHA transfer cube / insertion with the top camera (480x640, ImageNet ResNet18), "
        "LeRobot act's default sizes, 50 demos, 100000 steps, batch 8, 3 seeds, 50 eval episodes"
    ),
    tasks=tuple(
        replace(t, sizes=_GPU_SIZES, cameras=("top",), image_size="480x640",
                env_args=tuple(a for a in t.env_args if not a.startswith("--env.cameras"))
                + ("--env.cameras=[top]", "--env.observation_height=480", "--env.observation_width=640"))
        for t in (ALOHA_TC, ALOHA_INS)
    ),
    policies=POLICIES,
    steps={"aloha_transfer_cube": 100_000, "aloha_insertion": 100_000},
    main_n_demos={"aloha_transfer_cube": 50, "aloha_insertion": 50},
    seeds=(1, 2, 3), eval_episodes=50, runnable=False,
    extra_train_args=("--policy.device=cuda",),
    timeout_s=24 * 3600,
)

PROFILES = {p.name: p for p in (SMOKE, QUICK, FULL, MODES, MODES_PRIOR, GPU)}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
