"""Configs of the three hybrid ACT x diffusion policies.

All three share every field; they differ only in ``style_mode`` (a class constant, see the bottom of this
file), which selects how the chunk-level style latent z is produced:

- ``hybrid_act_a`` (``style_mode = "none"``): no z; diffusion conditioned on the observation only.
- ``hybrid_act_b`` (``style_mode = "deterministic"``): z = f(obs), learned jointly with the denoiser.
- ``hybrid_act_c`` (``style_mode = "cvae"``): posterior q(z|a, obs) at training, learned conditional
  prior p(z|obs) at inference; loss = diffusion MSE + reconstruction + beta * KL(q || p) with free bits. Its
  defaults differ in the latent fields only (``latent_prior``, ``prior_fit_steps``, ``recon_weight``, ``z_mode``,
  ``hold_steps``, ``hold_scale``, ``num_inference_steps``), declared on ``HybridActCConfig``.

Field names follow LeRobot's ``ACTConfig`` where they mean the same thing (``chunk_size``,
``n_action_steps``, ``temporal_ensemble_coeff``, ``vision_backbone``, ``dim_model``, ``n_heads``,
``n_encoder_layers``, ``n_decoder_layers``, ``latent_dim``, ``kl_weight``, the optimizer presets, ...).
"""

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

import torch
from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig, LRSchedulerConfig
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from torch.optim.lr_scheduler import LambdaLR

# The registered policy types, A / B / C (one tuple for the whole package: server, ablation, benchmarks, tests).
POLICY_TYPES = ("hybrid_act_a", "hybrid_act_b", "hybrid_act_c")
STYLE_MODES = ("none", "deterministic", "cvae")
KL_ANNEAL_SCHEDULES = ("none", "linear", "cyclic")
Z_MODES = ("sample", "hold", "mean")
# The name of the optimizer's parameter group of the fitted sampling head (``get_optim_params``): the schedule below
# keeps it learning while the rest of the policy is frozen for ``prior_fit_steps``.
PRIOR_FIT_GROUP = "prior_fit"
# The attribute the schedule sets on that group's parameters: the training step from which only they learn.
HEAD_FIT_START_ATTR = "head_fit_start"
PREDICTION_TYPES = ("epsilon", "sample")
NOISE_SCHEDULERS = ("DDIM", "DDPM")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
TIMESTEP_SPACINGS = ("trailing", "leading", "linspace")
LATENT_PRIORS = ("gaussian", "categorical", "mixture", "fitted_mixture")
# Fields read only when the policy acts, never in training: a checkpoint trained before one of their defaults changed
# is the policy trained today, acting differently, so it needs new evaluations, not a new training (the ablation
# runner re-evaluates it at today's values).
INFERENCE_ONLY_FIELDS = ("z_mode", "hold_steps", "hold_scale", "hold_candidates", "hold_min_spread", "hold_mirror",
                         "prior_temperature")


def has_fitted_head(style_mode: str, latent_prior: str) -> bool:
    """Whether a policy has the sampling head that ``prior_fit_steps`` fits (C with ``latent_prior="fitted_mixture"``)."""
    return style_mode == "cvae" and latent_prior == "fitted_mixture"


@dataclass
class HybridActConfig(PreTrainedConfig):
    """Shared configuration of ``hybrid_act_a`` / ``hybrid_act_b`` / ``hybrid_act_c``; each field is documented here.

    Inputs: at least one ``observation.images.*`` camera and/or ``observation.environment_state`` (as for ACT, the
    robot state alone does not show the task); ``observation.state`` is optional. Output: ``action``.

    Architecture (one shared core, see ``modeling_hybrid_act.py``): an observation encoder (ACT's) runs once per
    chunk; a style module gives z (none / f(obs) / q(z|a,obs) and p(z|obs)); a small transformer denoiser over the
    chunk's positions cross-attends to the cached observation tokens and is FiLM-modulated by [emb(t), z].

    Input / output structure:
        n_obs_steps: observation frames per chunk; 1 (history is not supported).
        chunk_size: actions per predicted chunk (ACT's).
        n_action_steps: actions executed from each chunk before the next is sampled (<= chunk_size; 1 with temporal
            ensembling, which needs a new chunk every step).
        normalization_mapping: per feature type. Actions are MIN_MAX to [-1, 1] because diffusion assumes targets
            there (sample clipping, unit-variance noise), as LeRobot's diffusion policy does; the rest MEAN_STD.

    Observation encoder (ACT's; same names and meaning as ``ACTConfig``):
        vision_backbone, pretrained_backbone_weights, replace_final_stride_with_dilation: a torchvision ResNet and
            its weights; set ``pretrained_backbone_weights=None`` where ImageNet weights cannot be downloaded.
        pre_norm, dim_model, n_heads, dim_feedforward, feedforward_activation, n_encoder_layers, dropout: the
            transformer encoder over [summary token, state tokens, camera feature pixels].

    Denoiser (ACT's decoder, now iterated):
        denoiser_dim_model, denoiser_dim_feedforward, n_decoder_layers: narrower than the encoder because it runs
            ``num_inference_steps`` times per chunk while the encoder runs once. (256, 1024, 4) fits better per
            training step but costs ~6x per denoising step (``benchmarks/speed.py``). Two layers, not ACT's one: on
            paired docking (the ``modes`` recipe, 3 seeds x 50 episodes, seeds 3000-3049) one layer made C's chunk
            1.34x act's instead of 1.74x but docked 85 of 150 instead of 126 (both trained on one machine;
            ``benchmarks/results/denoiser_depth_docking.json``).

    Style latent (B and C):
        latent_dim: size of B's z = f(obs); for C, of the continuous style part u of z.
        n_vae_encoder_layers: C's posterior encoder (ACT's VAE encoder over [cls, obs summary, a_1..a_k]).
        latent_prior: C's latent and prior. ``"gaussian"``: diagonal Gaussian posterior q(z|a,obs) and prior
            p(z|obs), exact KL. ``"fitted_mixture"`` (C's default): trained exactly as ``"gaussian"``, plus a mixture of
            ``n_latent_modes`` Gaussians over z fitted to the posterior means by maximum likelihood (a mixture
            density network) with the gradient stopped at its inputs, so it cannot pull z towards the prior's centre,
            and a winner-takes-all term (each posterior mean pulls its nearest component's mean: without it, one
            seed of the two-mode toy fitted one wide component across both modes and drew 95% of z between them);
            inference draws a component and takes its mean. ``"categorical"``: z = [one-hot mode code c of
            ``n_latent_modes``, continuous style u], categorical q(c|a,obs) and p(c|obs) with an exact KL and
            straight-through sampling (discrete modes as in BeT / VQ-BeT), Gaussian q(u|a,obs) and p(u|obs,c). ``"mixture"``: Gaussian posterior, prior
            a mixture of ``n_latent_modes`` Gaussians in the KL (one-sample estimate).
            Why the fitted mixture (docs/latent-modes.md): on paired-route docking only the Gaussian's z carried the
            route (the code fell onto one code for both routes, the KL mixture's z went unused), and a route's
            posterior z steers the rollout onto that route; but one Gaussian p(z|obs) spans both routes' posterior
            clusters, and its draws land between them, where the decoder averages the routes into the obstacle. The
            fitted mixture draws z at a cluster's centre: a component's mean, not a point inside its fitted spread,
            which is wider than the cluster (the head tracks a posterior that moves until training ends: its NLL ends
            at -11 to -18 nats, -22 when fitted further on the final model). Design episodes 3000-3099, 3 seeds, first
            z scaled 8x: 87% with the means, 83% drawing inside the spread (at 12x: 88% vs 81%). The KL mixture and
            the code stay for tasks whose modes are visible in most of the data (on the two-mode toy they put 0-1%
            of draws between the modes).
        n_latent_modes: codes (categorical) or mixture components: more than the modes a task is expected to have
            (unused components get no weight).
        sample_posterior: in training the denoiser sees a draw from q(z|a, obs) (True, a VAE's reparameterised
            sample) or its mean (False; ``gaussian`` and ``fitted_mixture`` only). True: on paired docking (design
            episodes 3000-3049, docs/latent-modes.md) the mean rescued two trainings whose decoders ignore z (seed 4:
            21 -> 44 of 50; the quickstart's data order: 1 -> 35) but not a third (seed 2: 46 -> 37, its posterior
            barely separates the routes), and its sampling heads sent 2-28% of rollouts along the left route: with
            no sampling noise the KL no longer bounds what z carries.

    Diffusion (diffusers' schedulers):
        num_train_timesteps, beta_schedule, beta_start, beta_end: DDPM forward process for training.
        noise_scheduler_type, num_inference_steps: the sampler (DDIM by default) and its steps: 4 for A and B, 1
            for C. C's one step is the denoiser's clean chunk from pure noise at t = T-1, the very output its
            reconstruction term trains. On paired-route docking (3 seeds x 50 episodes, seeds 3000-3049) 1, 2, 4
            and 8 steps docked 119, 120, 116 and 113 of 150 (with the head-fitting phase below: 140, 142, 145 and
            143): 1 step is within the interval of the best and costs ~0.4x a 4-step chunk there; on ALOHA
            insertion (3 seeds x 50, seeds 3000-3049) 83, 84, 81 and 83 of 150 (``docs/latent-modes.md``). A and B
            keep 4 (never swept).
        timestep_spacing: which training timesteps a few-step sampler visits. ``"trailing"`` starts at t = T-1,
            where the chunk is pure noise, as inference's starting sample is; diffusers' ``"leading"`` starts a
            4-step DDIM at t = 75 of 100 (sqrt(alpha_bar) ~ 0.37), so the first denoising step saw a partly clean
            chunk in training and pure noise at inference (Lin et al., arXiv 2305.08891).
        prediction_type: the denoiser predicts the clean chunk (``"sample"``, x0), not the noise: on scripted ALOHA
            demos it gave far lower held-out chunk MSE at equal training (``benchmarks/prediction_type.py``); with
            few DDIM steps, x0 recovered from a predicted epsilon amplifies its error at high noise levels.
        clip_sample, clip_sample_range: clip the predicted x0 to the normalised action range.
        recon_weight: weight of an ACT-style reconstruction term: an x0 loss on the denoiser's output from pure noise
            at the sampler's first timestep, exactly where inference starts. Only obs and z can tell that chunk, so
            C's posterior z must carry what the observation leaves open (which mode). 4.0 for C. On docking (Gaussian
            z, kl_weight 0.01, ``benchmarks/latent_usage.py``) 1.0 moved "a chunk decoded with a route's posterior z
            takes that route" from 0.50 to 0.83 (``docs/latent-usage.md``), but over six trainings of paired docking
            (data orders differ) a route's unscaled posterior z steered 8-90% of rollouts onto it at 1.0 and 72-100%
            at 4.0, which docked 233 of 300 design episodes against 195 (one training went down, 49 -> 39 of 50;
            docs/latent-modes.md, "Why some trainings ignore z"). On the two-mode toy at the default KL weight it
            makes no difference (a held z keeps its mode in 95% of decodes with 1.0, 96% without). 0 for A and B
            (no posterior: the term would pull their first step towards the mean of the modes).

    KL (C only): ``loss = diffusion MSE + recon_weight * recon + beta(step) * sum_terms max(KL_term, floor)``.
        kl_weight: beta's final value, 0.01. The KL pulls the posterior towards the prior; too strong, and the z
            the decoder sees in training is mostly noise, so it learns to ignore z (on the toy at 1.0 a held z keeps
            its mode in 76-78% of decodes, at 0.1 in 95-100%; on paired docking at 0.1 every prior's z went unused,
            at 0.01 the Gaussian's carried the route). It must stay > 0, or the prior p(z|obs) is never trained.
        kl_anneal, kl_anneal_steps: beta(step) = kl_weight * ramp(step), ramp 1 (``"none"``, the default: at
            a small kl_weight the toy needs no warm-up (a 2000-step warm-up gives the same 99-100% at 0.1), and no
            schedule then has to match the run's length), a linear warm-up over ``kl_anneal_steps`` (``"linear"``)
            or a sawtooth of that period (``"cyclic"``).
        kl_free_bits: nats per latent dimension (the code counts as one) below which a KL term is not penalised.

    Inference:
        temporal_ensemble_coeff: ACT's temporal ensembling (LeRobot's ``ACTTemporalEnsembler``) when set.
        z_mode: ``"hold"`` (C's default) draws z ~ p(z|obs) at the episode's first chunk and keeps it for
            ``hold_steps`` control steps, so the first chunks follow one mode (temporal ensembling then averages
            chunks of that mode); afterwards each chunk takes the prior's most likely z at its observation, which by
            then shows the mode. ``"sample"`` draws a fresh z for every chunk; ``"mean"`` uses the prior's most likely
            z. B's z is always f(obs). An explicit z: ``policy.set_style(z)`` or ``predict_action_chunk(batch, z=z)``.
        hold_steps: control steps the held z is used for (counted as executed actions: ``n_action_steps`` per chunk,
            1 with temporal ensembling); a chunk decoded from the held z executes only the hold's remaining steps
            (``select_action``), and the next chunk is decoded at the observation that follows. None holds it until
            ``reset()``. C: 2. On paired docking an expert that drives only the first 10 steps and hands over makes
            C succeed 49 times in 50: the route is decided in the first second (``benchmarks/mode_commitment.py``,
            design episodes 3000+). The scaled z need only start it: executed for a whole chunk (10 steps, the
            default before) it exaggerates its style where the route then needs precision. Six trainings, design
            episodes 3000-3049 (``benchmarks/results/hold_steps_docking.json``): lerobot-eval docks 263, 258, 257
            and 233 of 300 with 1, 2, 3 and 10 steps; in-process 90, 90, 89 and 78% with 6.3, 5.0, 6.3 and 7.3%
            of rollouts averaging the routes. 1-3 are level in success; 2 averages least.
        hold_scale: the held z is moved away from the prior's mean E[z|obs] (the centre between the modes' clusters;
            the Gaussian prior's for ``gaussian`` and ``fitted_mixture``) by this factor:
            ``z = mean + hold_scale * (z - mean)``. The decoder's response to z is weak (an MSE-trained denoiser
            shrinks towards the average of what z leaves uncertain); scaling the first chunk's z makes it commit to
            the mode. Scaling a z held for the whole episode also exaggerates its style (wider, faster) where
            precision matters, hence ``hold_steps``. C: 6, chosen on paired docking's design episodes 3000-3049
            over six trainings at ``recon_weight`` 4.0: lerobot-eval docks 233 of 300 at 6 against 218 at 3, and
            in-process (held 10 steps) the share of rollouts that average the routes into the obstacle falls with
            the scale, 15% at 3, 10% at 4, 8% at 5, 7% at 6, mean success 76/74/78/78%, while the first chunk
            gets jerkier (jerk RMS 0.13 at 3, 0.21 at 6; ``benchmarks/results/hold_scale_docking.json``). The scale
            that suits one training differs (seed 2: 24/50 at 3, 41/50 at 6; the quickstart's order: 50 and 45),
            so the default follows the mean. The ``modes`` profile's three C runs, re-evaluated at 6: 130/150 (132
            at 3), route entropy 0.90 bits (0.80), 7% averaging (17%), 84/150 ensembled (103). It was 3 before
            (chosen for smoothness, with success flat); at ``recon_weight`` 1.0 the decoders needed 6 too (49% at 2,
            69% at 3, 84% at 6 on three models; docs/latent-modes.md). On ALOHA insertion (unimodal) the scale
            hardly matters: two trainings at today's defaults insert 4 and 28 of 50 at 3, 5 and 28 at 6.
        hold_candidates, hold_min_spread: with ``hold_candidates`` K > 1, the held z is the first of K scaled draws
            z whose chunk (its first ``n_action_steps`` actions) differs from the chunk of its mirror 2c - z (c: the
            prior's mean) by at least ``hold_min_spread`` times the most any draw's does. A draw between the modes
            stays between them when mirrored, so its two chunks are alike (both the modes' average) and it is passed
            over; a draw on a mode mirrors to the other one. The test is the same for a draw and its mirror, so it
            favours neither mode, and taking the first acceptable draw, not the farthest, keeps the draws' share of
            each. Costs one decode of 2K chunks at the episode's first chunk. C: 4 at 0.6, chosen on paired docking's
            design episodes 3000+ over six trainings (``benchmarks/results/hold_candidates_docking.json``):
            lerobot-eval docks 281 of 300 against 258 with a single draw; in-process 92.8% against 87.3%, 2.8%
            against 7.5% of rollouts averaging the routes, route entropy 0.91 bits either way. Comparing each draw's
            chunk with the prior mean's instead (the first rule tried) skewed one training's routes (entropy 0.96 ->
            0.48) and docked 276.
        hold_mirror: hold the chosen draw or its mirror 2c - z with equal odds, so that two modes lying either
            side of the prior's mean c are taken equally often whatever weights the sampling head gives them. Right
            where the modes are equally likely and mirror images through c, as on paired docking (every layout
            demonstrated once along each route); wrong where they are not. There it evens out a head that favours
            one route, as three of five trainings of the `modes` docking recipe do (72-82%): with it they split 45-58%,
            and the five dock 94.1% of 1500 design episodes against 91.7%, 1.5% averaging the routes against 3.5%
            (``benchmarks/results/mode_commitment_retrained.json``). False (default): not checked on ALOHA or a task
            whose modes are uneven, and the ablation profile was not evaluated at it.
        prior_temperature: scales the prior's spread when sampling (Gaussian std, categorical logits 1/T, the
            fitted mixture's component logits 1/T); 0 gives the most likely z.
        rtc_config: real-time chunking (LeRobot's ``RTCConfig``; ``lerobot-rollout --inference.type=rtc`` sets it).
            With it, ``predict_action_chunk(batch, inference_delay=d, prev_chunk_left_over=prev)`` samples a chunk
            whose first d actions are the previous chunk's (executed while this one was computed) and whose next
            ones blend into it under RTC's soft prefix mask (``prefix_attention_schedule`` up to
            ``execution_horizon``; a delay beyond it fixes only the first ``execution_horizon`` actions, as in
            LeRobot's RTC, which passes no more of the leftover): inpainting on the denoiser's x0 at every DDIM
            step, so no extra network evaluation. None: chunks are sampled independently.
        rtc_train_max_delay: training-time real-time chunking (Black et al., arXiv 2512.05964) instead of
            inpainting. > 0: every training chunk starts with a prefix of d ~ U{0..rtc_train_max_delay} of its own
            clean actions, given to the denoiser as known (clean input, FiLM at timestep 0 on those positions: a
            timestep per position, no new weights) and left out of the loss; with ``rtc_config`` set, the leftover's
            first ``inference_delay`` actions are given the same way and no soft blend is applied (a delay above
            this value is cut to it, with a warning). Meant to let the denoiser continue the executed actions itself
            instead of mixing the old chunk into the new one's output. On docking it did not: at 8 (2 training
            seeds, design episodes, delay 4) RTC docked 30/100 with a chunk-boundary jump ratio of 3.65 against
            inpainting's 65/100 and 1.05, and plain chunking lost success too (docs/deploy.md). 0 (default): not
            trained this way; RTC inpaints. Must stay below ``chunk_size``.

    Training preset: optimizer_lr, optimizer_weight_decay, optimizer_lr_backbone (AdamW, as ACT's).
        optimizer_lr_prior_fit: learning rate of the ``fitted_mixture`` sampling head (its own parameter group;
            its loss reaches nothing else). At the policy's 1e-4 the head lagged the posterior it fits: on paired
            docking its NLL ended at -6 to -12 nats in the three 5000-step runs, where 3000 more steps at 1e-3 on
            the finished seed-2 model reach -21, and that seed's success on the design episodes went from 6/50 to
            50/50 (``benchmarks/mode_commitment.py fit-prior``, then ``settings``).
        prior_fit_steps: the last ``prior_fit_steps`` of lerobot-train's ``--steps`` train only the ``fitted_mixture``
            sampling head; the rest of the policy is held at learning rate 0 (the preset's scheduler,
            ``HybridActSchedulerConfig``). Jointly trained, the head chases a posterior that moves until the last step,
            and the final head can leave weight between the routes' clusters: that is what made C's late checkpoints
            swing. Give lerobot-train ``--steps`` = the policy's own steps + ``prior_fit_steps`` (the ablation and the
            quickstart do). C: 1000. Paired docking, the ``modes`` recipe, seeds 1-3, design episodes 3000-3099
            (100 per seed): 93, 50 and 95 of 100 at step 5000 without the phase, 86, 93 and 99 after it (238 vs 278
            of 300; ``benchmarks/results/head_fit_docking.json``): the seed whose head had been caught between the
            routes recovers. 500 steps were not enough (seed 2: 28 of 50), and a head learning rate decayed to 0 over
            the phase did worse (seeds 1-2, episodes 3000-3049: 42 and 29 of 50 against 45 and 46). In the phase the
            policy's ``forward`` runs only the head's loss (the encoders without gradients, no denoiser; it knows the
            phase from the step ``HybridActSchedulerConfig`` writes on the head's parameters): lerobot-train's update
            takes 0.018 s per step instead of 0.111 on the docking recipe, so a phase step costs about one batch
            load (~0.05 s) and the phase ~1 min of a docking run instead of ~2. Ignored without a fitted head
            (A, B, other priors).
        scheduler_name, scheduler_warmup_steps: a diffusers learning-rate schedule over the run's steps (LeRobot
            diffusion's fields, e.g. ``"cosine"`` with a linear warm-up), so that the last checkpoint is taken at a
            small learning rate; None keeps the learning rate constant, as ACT does.
        ema_decay: exponential moving average of the weights, updated after every optimizer step (lerobot-train
            calls ``policy.update()``); inference uses the average. 0 (off) by default: on paired-route docking an
            average at 0.999 lowered C's success at every late checkpoint (step 5000, design episodes: 74 and 31 of
            100 against 81 and 64 for the trained weights; ``benchmarks/results/ema_design.json``), because C's
            commitment to a route appears only in the last ~1000 steps.
    """

    n_obs_steps: int = 1
    chunk_size: int = 100
    n_action_steps: int = 100
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ENV": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )

    vision_backbone: str = "resnet18"
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    replace_final_stride_with_dilation: bool = False
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    dropout: float = 0.1

    denoiser_dim_model: int = 128
    denoiser_dim_feedforward: int = 512
    n_decoder_layers: int = 2

    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    latent_prior: str = "gaussian"
    n_latent_modes: int = 4
    sample_posterior: bool = True

    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    noise_scheduler_type: str = "DDIM"
    num_inference_steps: int = 4
    timestep_spacing: str = "trailing"
    prediction_type: str = "sample"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    recon_weight: float = 0.0

    kl_weight: float = 0.01
    kl_anneal: str = "none"
    kl_anneal_steps: int = 2000
    kl_free_bits: float = 0.05

    temporal_ensemble_coeff: float | None = None
    z_mode: str = "sample"
    prior_temperature: float = 1.0
    hold_steps: int | None = None
    hold_scale: float = 1.0
    hold_candidates: int = 1
    hold_min_spread: float = 0.6
    hold_mirror: bool = False
    rtc_config: RTCConfig | None = None
    rtc_train_max_delay: int = 0

    optimizer_lr: float = 1e-4
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5
    optimizer_lr_prior_fit: float = 1e-3
    scheduler_name: str | None = None
    scheduler_warmup_steps: int = 500
    prior_fit_steps: int = 0
    ema_decay: float = 0.0

    # Which style strategy this policy type uses: the ONLY difference between A, B and C.
    style_mode: ClassVar[str] = "none"

    def __post_init__(self):
        super().__post_init__()
        if self.style_mode not in STYLE_MODES:
            raise ValueError(f"style_mode must be one of {STYLE_MODES}, got {self.style_mode!r}.")
        if not self.vision_backbone.startswith("resnet"):
            raise ValueError(
                f"`vision_backbone` must be a torchvision ResNet (e.g. 'resnet18'), got {self.vision_backbone!r}."
            )
        if self.n_obs_steps != 1:
            raise ValueError(f"`n_obs_steps` must be 1 (observation history is not supported), got {self.n_obs_steps}.")
        for name in ("chunk_size", "n_action_steps", "dim_model", "n_heads", "dim_feedforward",
                     "denoiser_dim_model", "denoiser_dim_feedforward", "n_encoder_layers", "n_decoder_layers",
                     "num_train_timesteps", "num_inference_steps"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {getattr(self, name)}.")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(
                f"`n_action_steps` ({self.n_action_steps}) cannot exceed `chunk_size` ({self.chunk_size}): "
                "a chunk holds only `chunk_size` actions. Lower `n_action_steps` or raise `chunk_size`."
            )
        if self.temporal_ensemble_coeff is not None and self.n_action_steps > 1:
            raise NotImplementedError(
                f"Temporal ensembling needs a new chunk every step: set `n_action_steps=1` (got "
                f"{self.n_action_steps}) or `temporal_ensemble_coeff=None` to use an action queue."
            )
        for dim_name, heads in (("dim_model", self.n_heads), ("denoiser_dim_model", self.n_heads)):
            if getattr(self, dim_name) % heads:
                raise ValueError(f"`{dim_name}` ({getattr(self, dim_name)}) must be divisible by `n_heads` ({heads}).")
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(
                f"`num_inference_steps` ({self.num_inference_steps}) cannot exceed `num_train_timesteps` "
                f"({self.num_train_timesteps}): the sampler strides over the training timesteps."
            )
        self._check_choice("noise_scheduler_type", NOISE_SCHEDULERS)
        self._check_choice("beta_schedule", BETA_SCHEDULES)
        self._check_choice("prediction_type", PREDICTION_TYPES)
        self._check_choice("kl_anneal", KL_ANNEAL_SCHEDULES)
        self._check_choice("z_mode", Z_MODES)
        self._check_choice("timestep_spacing", TIMESTEP_SPACINGS)
        self._check_choice("latent_prior", LATENT_PRIORS)
        if not self.sample_posterior and self.latent_prior not in ("gaussian", "fitted_mixture"):
            raise ValueError(
                f"`sample_posterior=False` (the denoiser sees the posterior mean in training) is for "
                f"latent_prior='gaussian' or 'fitted_mixture', got {self.latent_prior!r}."
            )
        if self.n_latent_modes < 1:
            raise ValueError(f"`n_latent_modes` must be >= 1, got {self.n_latent_modes}.")
        if self.style_mode != "none" and self.latent_dim <= 0:
            raise ValueError(f"`latent_dim` must be positive for {self.type}, got {self.latent_dim}.")
        if self.style_mode == "cvae":
            if self.kl_weight <= 0:
                raise ValueError(
                    f"`kl_weight` must be > 0 for hybrid_act_c (got {self.kl_weight}): without the KL term the "
                    "prior p(z|obs) is never trained and inference would sample meaningless z. "
                    "Use hybrid_act_b for a deterministic z."
                )
            if self.n_vae_encoder_layers <= 0:
                raise ValueError(f"`n_vae_encoder_layers` must be positive, got {self.n_vae_encoder_layers}.")
            if self.kl_anneal != "none" and self.kl_anneal_steps <= 0:
                raise ValueError(f"`kl_anneal_steps` must be positive with kl_anneal={self.kl_anneal!r}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"`ema_decay` must be in [0, 1) (0 disables the weight average), got {self.ema_decay}.")
        if self.recon_weight < 0:
            raise ValueError(f"`recon_weight` must be >= 0 (0 disables the reconstruction term), got {self.recon_weight}.")
        if self.recon_weight > 0 and self.prediction_type != "sample":
            raise ValueError(
                "`recon_weight` > 0 needs prediction_type='sample': the reconstruction term compares the denoiser's "
                f"output with the clean chunk, but prediction_type={self.prediction_type!r} predicts the noise."
            )
        if self.prior_fit_steps < 0:
            raise ValueError(f"`prior_fit_steps` must be >= 0 (0: no head-only phase), got {self.prior_fit_steps}.")
        if not self.optimizer_lr_prior_fit > 0:
            raise ValueError(f"`optimizer_lr_prior_fit` must be > 0 (the fitted prior head's learning rate), got {self.optimizer_lr_prior_fit}.")
        if self.scheduler_warmup_steps < 0:
            raise ValueError(f"`scheduler_warmup_steps` must be >= 0, got {self.scheduler_warmup_steps}.")
        if self.kl_free_bits < 0:
            raise ValueError(f"`kl_free_bits` must be >= 0 nats per dimension, got {self.kl_free_bits}.")
        if self.hold_steps is not None and self.hold_steps < 1:
            raise ValueError(f"`hold_steps` must be >= 1 control step, or None to hold z for the whole episode; got {self.hold_steps}.")
        if not math.isfinite(self.hold_scale) or self.hold_scale < 0:
            raise ValueError(f"`hold_scale` must be a finite number >= 0 (1: z as drawn), got {self.hold_scale}.")
        if self.hold_scale != 1.0 and self.style_mode != "cvae":
            raise ValueError(
                f"`hold_scale` ({self.hold_scale}) scales the held z away from the prior's mean, which only "
                f"hybrid_act_c has ({self.type} has no prior p(z|obs)). Leave it at 1.0."
            )
        if self.hold_candidates < 1:
            raise ValueError(f"`hold_candidates` must be >= 1 (1: the held z is a single draw), got {self.hold_candidates}.")
        if self.hold_candidates > 1 and self.style_mode != "cvae":
            raise ValueError(
                f"`hold_candidates` ({self.hold_candidates}) chooses among draws from the prior p(z|obs), which only "
                f"hybrid_act_c has ({self.type} has none). Leave it at 1."
            )
        if self.hold_mirror and self.style_mode != "cvae":
            raise ValueError(
                f"`hold_mirror` reflects the held z through the prior's mean, which only hybrid_act_c has ({self.type} "
                "has no prior p(z|obs)). Leave it False."
            )
        if not 0.0 <= self.hold_min_spread <= 1.0:
            raise ValueError(f"`hold_min_spread` must be in [0, 1] (a fraction of the farthest draw's spread), got {self.hold_min_spread}.")
        if not 0 <= self.rtc_train_max_delay < self.chunk_size:
            raise ValueError(
                f"`rtc_train_max_delay` must be in [0, chunk_size={self.chunk_size}) control steps (0: off), got "
                f"{self.rtc_train_max_delay}: a chunk must keep actions after the given prefix."
            )
        if self.rtc_train_max_delay > 0 and self.prediction_type != "sample":
            raise ValueError(
                "`rtc_train_max_delay` > 0 needs prediction_type='sample': the given prefix replaces the denoiser's "
                f"clean-chunk prediction on its positions, but prediction_type={self.prediction_type!r} predicts the noise."
            )
        if self.prior_temperature < 0:
            raise ValueError(f"`prior_temperature` must be >= 0, got {self.prior_temperature}.")
        if self.clip_sample_range <= 0:
            raise ValueError(f"`clip_sample_range` must be > 0, got {self.clip_sample_range}.")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"`{name}` must be one of {choices}, got {getattr(self, name)!r}.")

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, weight_decay=self.optimizer_weight_decay)

    @property
    def head_fit_steps(self) -> int:
        """``prior_fit_steps`` where there is a fitted sampling head to fit (C with ``fitted_mixture``), else 0."""
        return self.prior_fit_steps if has_fitted_head(self.style_mode, self.latent_prior) else 0

    def get_scheduler_preset(self) -> "HybridActSchedulerConfig | None":
        if self.scheduler_name is None and self.head_fit_steps == 0:
            return None
        return HybridActSchedulerConfig(name=self.scheduler_name, num_warmup_steps=self.scheduler_warmup_steps,
                                        prior_fit_steps=self.head_fit_steps)

    def validate_features(self) -> None:
        if not self.image_features and not self.env_state_feature:
            raise ValueError(
                f"{self.type} needs at least one camera (`observation.images.*`) or "
                "`observation.environment_state` among its input features; the robot state alone does not "
                f"show the task. Got input features {sorted(self.input_features or {})}."
            )
        if self.action_feature is None:
            raise ValueError(f"{self.type} needs an `action` output feature; got {sorted(self.output_features or {})}.")
        shapes = {key: tuple(ft.shape) for key, ft in self.image_features.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"All cameras must have the same shape (resize them in the dataset); got {shapes}.")

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list:
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None


@PreTrainedConfig.register_subclass("hybrid_act_a")
@dataclass
class HybridActAConfig(HybridActConfig):
    """Variant A: diffusion conditioned on the observation only (no style latent)."""

    style_mode: ClassVar[str] = "none"


@PreTrainedConfig.register_subclass("hybrid_act_b")
@dataclass
class HybridActBConfig(HybridActConfig):
    """Variant B: deterministic style z = f(obs), learned jointly with the denoiser."""

    style_mode: ClassVar[str] = "deterministic"


@PreTrainedConfig.register_subclass("hybrid_act_c")
@dataclass
class HybridActCConfig(HybridActConfig):
    """Variant C: posterior q(z|a, obs) + learned conditional prior p(z|obs), KL-regularised, with z drawn from a
    mixture fitted to the posterior, alone, in the last ``prior_fit_steps`` of training; trained with the
    reconstruction term; the episode's first z held, scaled and chosen among candidates (see ``latent_prior``,
    ``prior_fit_steps``, ``recon_weight``, ``z_mode``, ``hold_steps``, ``hold_scale`` and ``hold_candidates`` above)."""

    style_mode: ClassVar[str] = "cvae"
    latent_prior: str = "fitted_mixture"
    recon_weight: float = 4.0
    z_mode: str = "hold"
    hold_steps: int | None = 2
    hold_scale: float = 6.0
    hold_candidates: int = 4
    num_inference_steps: int = 1
    prior_fit_steps: int = 1000


def default_head_fit_steps(policy_type: str, latent_prior: str | None = None) -> int:
    """How many steps lerobot-train needs beyond the policy's own to fit the sampling head, for a registered policy
    type at its defaults (``latent_prior`` overrides C's): its ``head_fit_steps``, 0 for types that are not
    hybrids. The ablation and the quickstart add them to ``--steps``."""
    configs = {"hybrid_act_a": HybridActAConfig, "hybrid_act_b": HybridActBConfig, "hybrid_act_c": HybridActCConfig}
    if policy_type not in configs:
        return 0
    cls = configs[policy_type]
    default = {f.name: f.default for f in fields(cls) if f.name in ("prior_fit_steps", "latent_prior")}
    return default["prior_fit_steps"] if has_fitted_head(cls.style_mode, latent_prior or default["latent_prior"]) else 0


@LRSchedulerConfig.register_subclass("hybrid_act")
@dataclass
class HybridActSchedulerConfig(LRSchedulerConfig):
    """The hybrids' learning-rate schedule (``HybridActConfig.get_scheduler_preset``): an optional diffusers schedule
    (``name``, e.g. ``"cosine"``, with ``num_warmup_steps``) over the policy's steps, then, for the last
    ``prior_fit_steps`` of lerobot-train's ``--steps``, learning rate 0 for every parameter group except the fitted
    sampling head's (``PRIOR_FIT_GROUP``), which keeps its own rate throughout. AdamW's step and its decoupled weight
    decay both scale with the learning rate, so the frozen weights do not move at all."""

    name: str | None = None
    num_warmup_steps: int | None = None
    prior_fit_steps: int = 0

    def build(self, optimizer: torch.optim.Optimizer, num_training_steps: int) -> LambdaLR:
        policy_steps = num_training_steps - self.prior_fit_steps
        if policy_steps < 1:
            raise ValueError(
                f"`--steps` ({num_training_steps}) must exceed `policy.prior_fit_steps` ({self.prior_fit_steps}): the "
                "last prior_fit_steps steps train only the sampling head. Raise --steps (e.g. to "
                f"{self.prior_fit_steps + 5000}) or lower --policy.prior_fit_steps."
            )
        # The head's parameters carry the step from which they learn alone: the policy reads it there
        # (``HybridActPolicy.fitting_head_only``) and then computes only the head's loss. A fresh and a resumed run
        # both build their scheduler here, with the run's own --steps.
        for group in optimizer.param_groups:
            if group.get("name") == PRIOR_FIT_GROUP:
                for param in group["params"]:
                    setattr(param, HEAD_FIT_START_ATTR, policy_steps)
        base = lambda step: 1.0  # noqa: E731
        if self.name is not None:  # the diffusers schedule's factor, over the policy's own steps
            from diffusers.optimization import get_scheduler

            probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            base = get_scheduler(self.name, probe, num_warmup_steps=self.num_warmup_steps,
                                 num_training_steps=policy_steps).lr_lambdas[0]

        def policy_factor(step: int) -> float:
            return base(step) if step < policy_steps else 0.0

        def head_factor(step: int) -> float:
            return 1.0

        return LambdaLR(optimizer, [head_factor if group.get("name") == PRIOR_FIT_GROUP else policy_factor
                                    for group in optimizer.param_groups])
