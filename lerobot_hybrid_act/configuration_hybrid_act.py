"""Configs of the three hybrid ACT x diffusion policies.

All three share every field; they differ only in ``style_mode`` (a class constant, see the bottom of this
file), which selects how the chunk-level style latent z is produced:

- ``hybrid_act_a`` (``style_mode = "none"``): no z; diffusion conditioned on the observation only.
- ``hybrid_act_b`` (``style_mode = "deterministic"``): z = f(obs), learned jointly with the denoiser.
- ``hybrid_act_c`` (``style_mode = "cvae"``): posterior q(z|a, obs) at training, learned conditional
  prior p(z|obs) at inference; loss = diffusion MSE + beta * KL(q || p) with annealing and free bits.

Field names follow LeRobot's ``ACTConfig`` where they mean the same thing (``chunk_size``,
``n_action_steps``, ``temporal_ensemble_coeff``, ``vision_backbone``, ``dim_model``, ``n_heads``,
``n_encoder_layers``, ``n_decoder_layers``, ``latent_dim``, ``kl_weight``, the optimizer presets, ...).
"""

from dataclasses import dataclass, field
from typing import ClassVar

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig

STYLE_MODES = ("none", "deterministic", "cvae")
KL_ANNEAL_SCHEDULES = ("none", "linear", "cyclic")
Z_MODES = ("sample", "hold", "mean")
PREDICTION_TYPES = ("epsilon", "sample")
NOISE_SCHEDULERS = ("DDIM", "DDPM")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
TIMESTEP_SPACINGS = ("trailing", "leading", "linspace")
LATENT_PRIORS = ("categorical", "mixture", "gaussian")


@dataclass
class HybridActConfig(PreTrainedConfig):
    """Shared configuration of ``hybrid_act_a`` / ``hybrid_act_b`` / ``hybrid_act_c``.

    Inputs: at least one ``observation.images.*`` camera and/or ``observation.environment_state``
    (as for ACT, the robot state alone does not show the task); ``observation.state`` is optional.
    Output: ``action``.

    Architecture (one shared core, see ``modeling_hybrid_act.py``):
        observation encoder: ResNet feature tokens + state tokens through a transformer encoder
            (``dim_model``, ``n_heads``, ``dim_feedforward``, ``n_encoder_layers``), run ONCE per chunk;
        style module: none / z = f(obs) / q(z|a,obs) + p(z|obs) (``latent_dim``, ``n_vae_encoder_layers``);
        denoiser: a transformer over the chunk's positions (``denoiser_dim_model``,
            ``denoiser_dim_feedforward``, ``n_decoder_layers``) that cross-attends to the cached
            observation tokens and is FiLM-modulated by [timestep embedding, z].

    Diffusion: DDPM forward process for training (``num_train_timesteps``), ``noise_scheduler_type``
    (DDIM by default) with ``num_inference_steps`` for sampling, both from diffusers.

    KL (``hybrid_act_c`` only): ``loss = mse + beta(step) * KL``, ``beta(step) = kl_weight * ramp(step)``
    where ``ramp`` is 1 (``none``), a linear warm-up over ``kl_anneal_steps`` (``linear``) or a sawtooth of
    period ``kl_anneal_steps`` whose first half ramps 0 -> 1 (``cyclic``). ``kl_free_bits`` is a floor in
    nats per latent dimension below which that dimension's KL is not penalised (against posterior collapse).

    Inference style control (``hybrid_act_b`` / ``hybrid_act_c``):
        z_mode: "sample" draws z ~ p(z|obs) for every chunk; "hold" draws once per episode (kept until
            ``reset()``); "mean" uses the prior's mean (B is always deterministic).
        prior_temperature: scales the prior's standard deviation when sampling (0 == prior mean).
        An explicit z can be passed with ``policy.set_style(z)`` or ``predict_action_chunk(batch, z=z)``.
    """

    # Input / output structure.
    n_obs_steps: int = 1
    chunk_size: int = 100
    n_action_steps: int = 100

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ENV": NormalizationMode.MEAN_STD,
            # Diffusion assumes targets in [-1, 1] (sample clipping, unit-variance noise), as LeRobot's
            # diffusion policy does.
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )

    # Vision backbone (as ACT). Use `pretrained_backbone_weights=None` where ImageNet weights are unreachable.
    vision_backbone: str = "resnet18"
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    replace_final_stride_with_dilation: bool = False

    # Observation encoder transformer (as ACT's encoder).
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    dropout: float = 0.1

    # Denoiser transformer (ACT's decoder, now iterated): kept narrower than the encoder because it runs
    # `num_inference_steps` times per chunk while the encoder runs once. Defaults chosen by measurement
    # (README "Speed", benchmarks/speed.py): at these sizes a chunk costs about what ACT's does on CPU. A
    # wider denoiser (256, 1024, 4 layers) fits better per training step but costs ~6x per denoising step.
    denoiser_dim_model: int = 128
    denoiser_dim_feedforward: int = 512
    n_decoder_layers: int = 2

    # Style latent.
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    latent_prior: str = "categorical"
    n_latent_modes: int = 4

    # Diffusion.
    num_train_timesteps: int = 100
    num_inference_steps: int = 4  # DDIM; fidelity vs steps flattens from ~4 (README "Speed")
    noise_scheduler_type: str = "DDIM"
    timestep_spacing: str = "trailing"
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    # The denoiser predicts the clean chunk ("sample", x0), not the noise: on scripted ALOHA transfer-cube demos it
    # gave far lower held-out chunk MSE at equal training (README "Denoiser target", benchmarks/prediction_type.py).
    # With few DDIM steps, x0 recovered from a predicted epsilon amplifies its error at high noise levels.
    prediction_type: str = "sample"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    # ACT-style reconstruction term (0 = off): an extra x0 loss on the denoiser's output from pure Gaussian noise
    # at the sampler's first timestep, which is exactly where inference starts. Only obs and z can tell that
    # chunk, so hybrid_act_c's posterior z is pushed to carry what the observation leaves open (on docking: the
    # route). With the diffusion loss alone, C's z stayed unused on docking: the denoiser memorised each training
    # layout's route from its observation instead (README "Does C use z?").
    recon_weight: float = 0.0

    # KL (hybrid_act_c).
    kl_weight: float = 1.0
    kl_anneal: str = "none"
    kl_anneal_steps: int = 2000
    kl_free_bits: float = 0.05

    # Inference.
    temporal_ensemble_coeff: float | None = None
    z_mode: str = "sample"
    prior_temperature: float = 1.0

    # Training preset.
    optimizer_lr: float = 1e-4
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5
    # Exponential moving average of the weights, updated after every optimizer step (lerobot-train calls
    # ``policy.update()``); inference uses the averaged weights. 0 disables it.
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
        if self.kl_free_bits < 0:
            raise ValueError(f"`kl_free_bits` must be >= 0 nats per dimension, got {self.kl_free_bits}.")
        if self.prior_temperature < 0:
            raise ValueError(f"`prior_temperature` must be >= 0, got {self.prior_temperature}.")
        if self.clip_sample_range <= 0:
            raise ValueError(f"`clip_sample_range` must be > 0, got {self.clip_sample_range}.")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise ValueError(f"`{name}` must be one of {choices}, got {getattr(self, name)!r}.")

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.optimizer_lr, weight_decay=self.optimizer_weight_decay)

    def get_scheduler_preset(self) -> None:
        return None

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
    """Variant C: posterior q(z|a, obs) + learned conditional prior p(z|obs), KL-regularised."""

    style_mode: ClassVar[str] = "cvae"
    recon_weight: float = 1.0
    kl_weight: float = 0.1
    z_mode: str = "hold"
