"""Hybrid ACT x action diffusion policies: ``HybridActAPolicy``, ``HybridActBPolicy``, ``HybridActCPolicy``.

One shared core (``HybridActModel``):

    observation ──► ObservationEncoder (ACT's: ResNet tokens + state tokens + transformer encoder)
                        │ tokens (run ONCE per chunk, cached across denoising steps)
                        ├──────────────► style module ──► z   (none | f(obs) | q(z|a,obs) / p(z|obs))
                        ▼                                 │
    noisy chunk a_t ─► ChunkDenoiser: self-attention over the chunk's positions,
                       cross-attention to the observation tokens, FiLM from [emb(t), z] ──► eps or a_0

The variants differ only in the style module, chosen by ``config.style_mode`` in ``make_style_module``.
Training: masked (``action_is_pad``) diffusion MSE (+ beta * KL(q || p) for C). Inference: reverse diffusion
with a diffusers scheduler (DDIM by default, few steps), then an action queue or LeRobot's
``ACTTemporalEnsembler``.
"""

import copy
import math
import warnings
from collections import deque

import einops
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops.misc import FrozenBatchNorm2d

from lerobot.policies.act.modeling_act import (
    ACTEncoder,
    ACTSinusoidalPositionEmbedding2d,
    ACTTemporalEnsembler,
    create_sinusoidal_pos_embedding,
)
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.rtc import RTCProcessor
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

from .configuration_hybrid_act import (
    HEAD_FIT_START_ATTR,
    HybridActAConfig,
    HybridActBConfig,
    HybridActCConfig,
    HybridActConfig,
    PRIOR_FIT_GROUP,
)

ACTION_IS_PAD = "action_is_pad"
# A latent term (dimension, or mode code) counts as "active" when its batch-mean KL(q || p) exceeds this many nats.
ACTIVE_UNIT_KL = 0.01


class HybridActPolicy(PreTrainedPolicy):
    """Shared policy wrapper: loss, action queue / temporal ensembling, inference-time style control."""

    config_class = HybridActConfig
    name = "hybrid_act"

    def __init__(self, config: HybridActConfig, **kwargs):
        if not isinstance(config, self.config_class):
            raise ValueError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__} "
                f"(policy type {getattr(config, 'type', '?')!r}). Load the checkpoint with the policy class of "
                f"its own type, e.g. `get_policy_class(config.type).from_pretrained(path)`."
            )
        super().__init__(config)
        config.validate_features()
        self.config = config
        self.model = HybridActModel(config)
        # Averaged copy of the weights used at inference (not optimised; saved with the checkpoint).
        self.model_ema = None
        if config.ema_decay > 0:
            self.model_ema = copy.deepcopy(self.model).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
        if config.temporal_ensemble_coeff is not None:
            self.temporal_ensembler = ACTTemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
        self._explicit_z: Tensor | None = None
        self.init_rtc_processor()
        self.reset()

    def get_optim_params(self) -> list[dict]:
        """AdamW groups: the policy at ``optimizer_lr``, the image backbone at ``optimizer_lr_backbone`` and the
        fitted sampling head (``latent_prior="fitted_mixture"``) at ``optimizer_lr_prior_fit``."""
        special = {"model.obs_encoder.backbone.": {"lr": self.config.optimizer_lr_backbone},
                   "model.style.fitted.": {"lr": self.config.optimizer_lr_prior_fit, "name": PRIOR_FIT_GROUP}}
        groups = {prefix: [] for prefix in ["", *special]}
        for name, p in self.named_parameters():
            if p.requires_grad:
                groups[next((s for s in special if name.startswith(s)), "")].append(p)
        return [{"params": groups[""]}] + [{"params": groups[s], **opts} for s, opts in special.items() if groups[s]]

    def fitting_head_only(self) -> bool:
        """Whether training is in the last ``prior_fit_steps`` of lerobot-train, where the scheduler holds every
        weight but the fitted sampling head's at learning rate 0: the training steps counted so far (``kl_step``)
        have reached the step that ``HybridActSchedulerConfig`` wrote on the head's parameters when lerobot-train
        built it (fresh or resumed). ``forward`` then runs only what the head's loss needs. False with another
        scheduler (no step written) and under DDP (every replica's parameters must get gradients): the full loss
        then runs, which moves the head the same way, only slower."""
        if self.config.head_fit_steps == 0:
            return False
        start = getattr(next(self.model.style.fitted.parameters()), HEAD_FIT_START_ATTR, None)
        return (
            start is not None
            and int(self.model.kl_step) >= start
            and not (torch.distributed.is_available() and torch.distributed.is_initialized())
        )

    @property
    def inference_model(self) -> "HybridActModel":
        """The weights used to act: the moving average when ``ema_decay > 0``, else the trained ones."""
        return self.model_ema if self.model_ema is not None else self.model

    @torch.no_grad()
    def update(self) -> None:
        """After each optimizer step (called by lerobot-train): move the averaged weights towards the new ones.

        The decay warms up as min(ema_decay, (1 + n) / (10 + n)) after n updates, so that the average is not
        dominated by the random initialisation early in training. Buffers (e.g. ``kl_step``) are copied."""
        if self.model_ema is None:
            return
        n = int(self.ema_updates)
        decay = min(self.config.ema_decay, (1 + n) / (10 + n))
        for avg, new in zip(self.model_ema.parameters(), self.model.parameters(), strict=True):
            avg.lerp_(new, 1.0 - decay)
        self.ema_updates += 1
        for avg, new in zip(self.model_ema.buffers(), self.model.buffers(), strict=True):
            avg.copy_(new)

    def eval_if_training(self) -> None:
        """Switch to eval mode when lerobot-train (or the user) left the policy in train mode. ``eval()`` walks
        every submodule, ~0.3 ms per call on the CPU docking policy (a seventh of a 1-step chunk), so it is not
        repeated when the policy is already in eval mode."""
        if self.training:
            self.eval()

    def reset(self):
        """Clear per-episode state: the action queue or ensembler and a z held for the episode."""
        if self.config.temporal_ensemble_coeff is not None:
            self.temporal_ensembler.reset()
        else:
            self._action_queue = deque([], maxlen=self.config.n_action_steps)
        self._held_z: Tensor | None = None
        self._held_steps = 0  # control steps since the held z was drawn
        self._hold_left: int | None = None  # steps the held z still drives, for the chunk just decoded from it

    def set_style(self, z: Tensor | None) -> None:
        """Use this z (shape (z_dim,) or (B, z_dim)) for every chunk until ``set_style(None)``."""
        self._explicit_z = None if z is None else self._style_module().check_z(z)

    # ----------------------------------------------------------------------------------- public latent API
    def _style_module(self) -> nn.Module:
        if self.config.style_mode == "none":
            raise ValueError(
                f"{self.config.type} has no style latent z (diffusion conditioned on the observation only); "
                "use hybrid_act_b (z = f(obs)) or hybrid_act_c (z ~ p(z|obs)) for style control."
            )
        return self.inference_model.style

    @torch.no_grad()
    def sample_style(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """z for each observation of ``batch``, shape (B, z_dim): a draw from p(z|obs) at ``prior_temperature``
        (hybrid_act_c; ``z_mode="mean"`` gives the prior's most likely z) or f(obs) (hybrid_act_b)."""
        style = self._style_module()
        self.eval_if_training()
        summary = self.inference_model.encode_observation(batch).summary
        mode = "mean" if self.config.z_mode == "mean" else "sample"
        return style.infer(summary, mode, self.config.prior_temperature, generator)

    @torch.no_grad()
    def infer_style(self, batch: dict[str, Tensor]) -> Tensor:
        """The z that explains the batch's (normalised) ``action`` chunk, shape (B, z_dim): the posterior mean of
        q(z|a, obs) (hybrid_act_c; the posterior's most likely mode code for ``latent_prior="categorical"``), or
        f(obs) (hybrid_act_b). Decode it with ``predict_action_chunk(batch, z=...)`` to reproduce that chunk's mode."""
        style = self._style_module()
        actions = self._checked_actions(batch)
        self.eval_if_training()
        summary = self.inference_model.encode_observation(batch).summary
        return style.posterior_mean(summary, actions, batch.get(ACTION_IS_PAD))

    @torch.no_grad()
    def style_centre(self, batch: dict[str, Tensor]) -> Tensor:
        """hybrid_act_c: the prior's mean E[z | obs] at each observation, shape (B, z_dim): the centre between the
        modes' posterior clusters that ``hold_scale`` scales away from (the Gaussian prior's mean for ``gaussian`` and
        ``fitted_mixture``)."""
        if self.config.style_mode != "cvae":
            raise ValueError(f"{self.config.type} has no prior p(z|obs); style_centre is for hybrid_act_c.")
        style = self._style_module()
        self.eval_if_training()
        return style.prior_mean(self.inference_model.encode_observation(batch).summary)

    @torch.no_grad()
    def style_components(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """hybrid_act_c with a mixture prior (``fitted_mixture`` or ``mixture``): the components inference draws z
        from, as (weights (B, n_latent_modes), means (B, n_latent_modes, z_dim)) at each observation."""
        style = self._style_module()
        if not hasattr(style, "components"):
            raise ValueError(
                f"style_components needs hybrid_act_c with latent_prior='fitted_mixture' or 'mixture'; this policy is "
                f"{self.config.type} with latent_prior={self.config.latent_prior!r}."
            )
        self.eval_if_training()
        return style.components(self.inference_model.encode_observation(batch).summary)

    @torch.no_grad()
    def style_kl(self, batch: dict[str, Tensor]) -> Tensor:
        """hybrid_act_c: KL(q(z|a, obs) || p(z|obs)) in nats for each sample of ``batch`` (which needs ``action``),
        shape (B, n_terms): one column per latent dimension (``gaussian``), [code, style dims...]
        (``categorical``) or one Monte-Carlo column (``mixture``). A term is active above ``ACTIVE_UNIT_KL``."""
        if self.config.style_mode != "cvae":
            raise ValueError(f"{self.config.type} has no posterior/prior pair; style_kl is for hybrid_act_c.")
        actions = self._checked_actions(batch)
        self.eval_if_training()
        summary = self.inference_model.encode_observation(batch).summary
        return self.inference_model.style.train_latent(summary, actions, batch.get(ACTION_IS_PAD)).kl

    def _checked_actions(self, batch: dict[str, Tensor]) -> Tensor:
        if ACTION not in batch:
            raise KeyError(
                f"This needs the demonstrated chunk: put the normalised `{ACTION}` chunk of shape (B, chunk_size, "
                f"action_dim) = (B, {self.config.chunk_size}, {self.model.denoiser.action_dim}) in the batch (the "
                f"preprocessor normalises it when the raw batch has `{ACTION}`)."
            )
        actions = batch[ACTION]
        if actions.shape[1:] != (self.config.chunk_size, self.model.denoiser.action_dim):
            raise ValueError(
                f"`{ACTION}` has shape {tuple(actions.shape[1:])} per sample; expected (chunk_size, action_dim) = "
                f"({self.config.chunk_size}, {self.model.denoiser.action_dim}). Check the dataset's action "
                "feature and that `delta_timestamps` come from this config (`action_delta_indices`)."
            )
        if not torch.isfinite(actions).all():
            raise ValueError(f"`{ACTION}` contains NaN or inf; clean the data (training on it would make the weights NaN).")
        return actions

    @torch.inference_mode()
    def select_action(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        self.eval_if_training()
        if self.config.temporal_ensemble_coeff is not None:
            return self.temporal_ensembler.update(self.predict_action_chunk(batch))
        if len(self._action_queue) == 0:
            chunk = self.predict_action_chunk(batch)
            # A chunk decoded from the held z executes only the hold's remaining steps (``hold_steps``).
            steps = self.config.n_action_steps
            if self._hold_left is not None:
                steps = min(steps, self._hold_left)
            self._action_queue.extend(chunk[:, :steps].transpose(0, 1))
        return self._action_queue.popleft()

    def supports_rtc(self) -> bool:
        """Real-time chunking (``lerobot-rollout --inference.type=rtc``): see ``rtc_config`` in the config."""
        return True

    def init_rtc_processor(self) -> None:
        """(Re)build the RTC prefix weighting from ``config.rtc_config`` (lerobot-rollout calls this after setting it,
        before the rollout starts, so a policy that cannot inpaint is refused there)."""
        if self.config.rtc_config is not None:
            self._check_rtc_support()
        self.rtc_processor = RTCProcessor(self.config.rtc_config) if self.config.rtc_config is not None else None

    def _check_rtc_support(self) -> None:
        if self.config.prediction_type != "sample":
            raise ValueError(
                f"Real-time chunking inpaints the denoiser's clean-chunk prediction, but this policy was trained with "
                f"prediction_type={self.config.prediction_type!r}; use a checkpoint trained with "
                "prediction_type='sample' (the default), or --inference.type=sync."
            )

    @torch.inference_mode()
    def predict_action_chunk(
        self,
        batch: dict[str, Tensor],
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        inference_delay: int | None = None,
        prev_chunk_left_over: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """Sample a (B, chunk_size, action_dim) chunk. ``z`` (from ``sample_style`` / ``infer_style``) overrides
        the style latent for this call; ``generator`` makes the draw of z and of the diffusion noise reproducible.
        ``prev_chunk_left_over`` ((B,) T', action_dim; normalised) and ``inference_delay``: real-time chunking (see
        ``rtc_config``)."""
        self.eval_if_training()
        model = self.inference_model
        obs = model.encode_observation(batch)
        prefix = given = None
        if prev_chunk_left_over is not None:
            leftover, weights, delay = self._rtc_prefix(prev_chunk_left_over, inference_delay, obs.tokens)
            if self.config.rtc_train_max_delay > 0:
                given = (leftover, self._known_prefix(delay, leftover))
            else:
                prefix = (leftover, weights)
        return model.sample(obs, self._inference_style(obs, z, generator), generator, prefix, given)

    def _known_prefix(self, delay: int, like: Tensor) -> Tensor:
        """(1, chunk_size, 1): True on the first ``delay`` positions, at most ``rtc_train_max_delay`` (trained)."""
        max_delay = self.config.rtc_train_max_delay
        if delay > max_delay:
            warnings.warn(
                f"inference_delay {delay} exceeds rtc_train_max_delay {max_delay} (the longest prefix this policy was "
                f"trained to continue); giving it the first {max_delay} actions only. Train with a larger "
                "--policy.rtc_train_max_delay for this latency.",
                stacklevel=3,
            )
        return (torch.arange(self.config.chunk_size, device=like.device) < min(delay, max_delay)).view(1, -1, 1)

    def _rtc_prefix(self, prev: Tensor, inference_delay: int | None, like: Tensor) -> tuple[Tensor, Tensor, int]:
        """The previous chunk's leftover padded to chunk_size, RTC's soft prefix mask (1, chunk_size, 1) and the
        delay."""
        c = self.config
        if self.rtc_processor is None:
            raise ValueError(
                "prev_chunk_left_over was given but real-time chunking is not configured: set "
                "`policy.config.rtc_config = RTCConfig(...)` and call `policy.init_rtc_processor()` "
                "(`lerobot-rollout --inference.type=rtc` does both), or pass no prev_chunk_left_over."
            )
        self._check_rtc_support()
        prev = prev.unsqueeze(0) if prev.ndim == 2 else prev
        action_dim = self.model.denoiser.action_dim
        if prev.ndim != 3 or prev.shape[-1] != action_dim:
            raise ValueError(
                f"prev_chunk_left_over must have shape (T, {action_dim}) or (B, T, {action_dim}) (normalised actions "
                f"of the previous chunk not yet executed); got {tuple(prev.shape)}."
            )
        delay = int(inference_delay or 0)
        if delay < 0:
            raise ValueError(f"inference_delay must be >= 0 control steps, got {delay}.")
        steps = min(prev.shape[1], c.chunk_size)
        padded = torch.zeros(prev.shape[0], c.chunk_size, action_dim, dtype=like.dtype, device=like.device)
        padded[:, :steps] = prev[:, :steps].to(padded)
        horizon = min(self.rtc_processor.rtc_config.execution_horizon, steps)
        weights = self.rtc_processor.get_prefix_weights(delay, horizon, c.chunk_size)
        return padded, weights.to(padded).view(1, -1, 1), delay

    def _inference_style(
        self, obs: "EncodedObservation", z: Tensor | None, generator: torch.Generator | None
    ) -> Tensor | None:
        """z for one chunk: the caller's z, else a z held for the episode, else one drawn from the style module."""
        summary = obs.summary
        batch_size = summary.shape[0]
        style = self.inference_model.style
        self._hold_left = None
        z = self._explicit_z if z is None else style.check_z(z)
        if z is not None:
            if z.shape[0] not in (1, batch_size):
                raise ValueError(f"z has batch size {z.shape[0]} but the observation batch has {batch_size}.")
            return z.to(summary).expand(batch_size, -1)
        c = self.config
        if c.z_mode != "hold":
            return style.infer(summary, c.z_mode, c.prior_temperature, generator)
        if self._held_z is None or self._held_z.shape[0] != batch_size:  # the episode's first chunk: draw z
            self._held_z, self._held_steps = self._draw_held_z(obs, generator), 0
        held_for = self._held_steps
        executes = 1 if c.temporal_ensemble_coeff is not None else c.n_action_steps
        if c.hold_steps is None or held_for < c.hold_steps:
            self._hold_left = None if c.hold_steps is None else c.hold_steps - held_for
            self._held_steps += executes if self._hold_left is None else min(executes, self._hold_left)
            return self._held_z
        return style.infer(summary, "mean", c.prior_temperature, generator)

    def _draw_held_z(self, obs: "EncodedObservation", generator: torch.Generator | None) -> Tensor:
        """The episode's held z: a draw from p(z|obs) scaled ``hold_scale`` away from the prior's mean c; with
        ``hold_candidates`` K > 1, the first of K such draws z whose chunk differs from the chunk of its mirror
        2c - z by at least ``hold_min_spread`` times the most any of them does (one decode of 2K chunks); with
        ``hold_mirror``, that draw or its mirror with equal odds."""
        c, model = self.config, self.inference_model
        summary = obs.summary
        uses_centre = c.hold_scale != 1.0 or c.hold_candidates > 1 or c.hold_mirror
        centre = model.style.prior_mean(summary) if uses_centre else None

        def draw() -> Tensor:
            z = model.style.infer(summary, "sample", c.prior_temperature, generator)
            return z if c.hold_scale == 1.0 else centre + c.hold_scale * (z - centre)

        if c.hold_candidates <= 1:
            held = draw()
        else:
            k, batch_size = c.hold_candidates, summary.shape[0]
            zs = torch.stack([draw() for _ in range(k)])  # (K, B, z_dim)
            mirrors = 2 * centre - zs  # reflected through the prior's mean: a draw between the modes stays there
            repeated = EncodedObservation(obs.tokens.repeat(2 * k, 1, 1), obs.pos)
            chunks = model.sample(repeated, torch.cat([zs, mirrors]).flatten(0, 1), generator).unflatten(0, (2 * k, batch_size))
            executed = chunks[:, :, : c.n_action_steps].flatten(2)  # (2K, B, steps * action_dim)
            spread = (executed[:k] - executed[k:]).norm(dim=-1)  # (K, B): a draw's chunk against its mirror's
            first = (spread >= c.hold_min_spread * spread.max(0).values).float().argmax(0)  # (B,)
            held = zs[first, torch.arange(batch_size, device=first.device)]
        if c.hold_mirror:
            coin = torch.rand(held.shape[0], 1, generator=generator, device=generator.device if generator else "cpu")
            held = torch.where(coin.to(held.device) < 0.5, 2 * centre - held, held)
        return held

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict]:
        """Training loss: masked diffusion MSE (+ annealed, free-bits KL for hybrid_act_c; + reconstruction if ``recon_weight``)."""
        actions = self._checked_actions(batch)
        if self.training and self.fitting_head_only():
            return self._head_fit_loss(batch, actions)
        obs = self.model.encode_observation(batch)
        style = self.model.style.train_latent(obs.summary, actions, batch.get(ACTION_IS_PAD))
        known = self._simulated_delay_prefix(actions)
        pred, target, recon = self.model.denoising_target(obs, style.z, actions, known, self.config.recon_weight > 0)
        valid = ~batch[ACTION_IS_PAD].unsqueeze(-1) if ACTION_IS_PAD in batch else torch.ones_like(pred[..., :1], dtype=torch.bool)
        if known is not None:  # given actions are not predicted
            valid = valid & ~known

        def masked_mse(p: Tensor, t: Tensor) -> Tensor:
            return (F.mse_loss(p, t, reduction="none") * valid).sum() / (valid.sum() * p.shape[-1]).clamp_min(1)

        diffusion_loss = masked_mse(pred, target)
        loss = diffusion_loss
        info = {"diffusion_loss": diffusion_loss.item()}
        if self.config.recon_weight > 0:
            recon_loss = masked_mse(recon, actions)
            loss = loss + self.config.recon_weight * recon_loss
            info["recon_loss"] = recon_loss.item()
        if style.fit_nll is not None:  # trains only the fitted sampling prior (its inputs are detached)
            head_loss, head_info = self._head_fit_term(style.fit_nll, style.fit_nearest)
            loss = loss + head_loss
            info.update(head_info)
        if style.kl is not None:
            kl_terms = style.kl.mean(0)  # (n_terms,) batch-mean KL in nats
            beta = self.model.kl_beta(advance=self.training)
            # Free bits: terms already below their floor are not pushed further towards the prior.
            floor = self.config.kl_free_bits * style.kl_floor.to(kl_terms)
            loss = loss + beta * torch.maximum(kl_terms, floor).sum()
            info.update(
                kl=kl_terms.sum().item(),
                kl_min_dim=kl_terms.min().item(),
                kl_beta=beta,
                kl_active_dims=int((kl_terms > ACTIVE_UNIT_KL).sum().item()),
            )
        return loss, info

    def _head_fit_loss(self, batch: dict[str, Tensor], actions: Tensor) -> tuple[Tensor, dict]:
        """The head-fit phase's loss: the sampling head's fit to the posterior means. The full loss would give the head
        the same gradient (its inputs are detached, and nothing else reaches it) and move nothing else (learning rate
        0), so the observation and posterior encoders run without gradients and the denoiser not at all (lerobot-train's
        update on the CPU docking recipe: 0.018 s instead of 0.111)."""
        self.model.kl_beta(advance=True)  # the step still counts
        with torch.no_grad():
            summary = self.model.encode_observation(batch).summary
        return self._head_fit_term(*self.model.style.head_fit_terms(summary, actions, batch.get(ACTION_IS_PAD)))

    @staticmethod
    def _head_fit_term(nll: Tensor, nearest: Tensor) -> tuple[Tensor, dict]:
        """The fitted head's loss term (scaled by ``FIT_LOSS_SCALE``) and what it logs."""
        return (nll + nearest) * FittedMixtureStyle.FIT_LOSS_SCALE, {"prior_fit_nll": nll.item(),
                                                                      "prior_fit_nearest": nearest.item()}

    def _simulated_delay_prefix(self, actions: Tensor) -> Tensor | None:
        """Training-time RTC: (B, chunk_size, 1), True on each chunk's first d ~ U{0..rtc_train_max_delay} actions."""
        max_delay = self.config.rtc_train_max_delay
        if max_delay == 0:
            return None
        delay = torch.randint(0, max_delay + 1, (actions.shape[0], 1), device=actions.device)
        return (torch.arange(actions.shape[1], device=actions.device) < delay).unsqueeze(-1)

    @classmethod
    def _load_as_safetensor(cls, model, model_file: str, map_location: str, strict: bool):
        """Check the weights file before LeRobot loads it, so that a truncated/corrupt file or a checkpoint
        trained with other feature shapes (e.g. another action dim) fails naming the file and the problem
        (safetensors says only "incomplete metadata"; torch lists every mismatched tensor)."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(model_file, framework="pt") as f:
                saved = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as e:
            raise ValueError(
                f"Checkpoint weights file {model_file} is truncated or corrupt ({e}). Copy/download it again, or "
                "use an earlier checkpoint (checkpoints/<step>/pretrained_model)."
            ) from e
        expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
        mismatched = {k: (saved[k], expected[k]) for k in sorted(saved.keys() & expected.keys()) if saved[k] != expected[k]}
        if mismatched:
            action_key = "model.denoiser.action_out.weight"
            hint = ""
            if action_key in mismatched:
                hint = (
                    f" The checkpoint predicts actions of dim {mismatched[action_key][0][0]} but this config/dataset "
                    f"has action dim {mismatched[action_key][1][0]}."
                )
            details = "; ".join(f"{k}: checkpoint {s} vs policy {e}" for k, (s, e) in list(mismatched.items())[:4])
            raise ValueError(
                f"Checkpoint {model_file} was trained with other feature shapes than this config (input/output "
                f"features or architecture fields).{hint} Mismatched tensors: {details}"
                f"{' ...' if len(mismatched) > 4 else ''}. Train a new policy on this dataset, or use a dataset "
                "with the checkpoint's features."
            )
        return super()._load_as_safetensor(model, model_file, map_location, strict)

    def generate_model_card(self, *args, **kwargs):
        card = super().generate_model_card(*args, **kwargs)
        variant = {
            "none": "A: diffusion conditioned on the observation only (no style latent)",
            "deterministic": "B: deterministic style latent z = f(obs)",
            "cvae": "C: posterior q(z|a,obs) + learned conditional prior p(z|obs), KL-regularised",
        }[self.config.style_mode]
        dataset = args[0] if args else kwargs.get("dataset_repo_id")
        card.text += (
            f"\n\n## lerobot_hybrid_act\n\nVariant **{self.config.type}** — {variant}.\n"
            f"Trained on `{dataset}`. Denoiser: {self.config.num_inference_steps} "
            f"{self.config.noise_scheduler_type} steps over {self.config.num_train_timesteps} training timesteps, "
            f"chunk {self.config.chunk_size}.\n\nLoad it with `pip install lerobot_policy_hybrid_act` and "
            f"`lerobot-eval --policy.path=<this repo>`.\n"
        )
        return card


class HybridActAPolicy(HybridActPolicy):
    config_class = HybridActAConfig
    name = "hybrid_act_a"


class HybridActBPolicy(HybridActPolicy):
    config_class = HybridActBConfig
    name = "hybrid_act_b"


class HybridActCPolicy(HybridActPolicy):
    config_class = HybridActCConfig
    name = "hybrid_act_c"


# --------------------------------------------------------------------------------------------- core


class EncodedObservation:
    """Observation tokens of one batch, computed once per chunk and reused by every denoising step."""

    def __init__(self, tokens: Tensor, pos: Tensor):
        self.tokens = tokens  # (B, S, denoiser_dim): keys/values of the denoiser's cross-attention
        self.pos = pos  # (1, S, denoiser_dim)
        self.summary = tokens[:, 0]  # the summary token's output: what the style module reads


class HybridActModel(nn.Module):
    def __init__(self, config: HybridActConfig):
        super().__init__()
        self.config = config
        self.obs_encoder = ObservationEncoder(config)
        self.style = make_style_module(config)
        self.denoiser = ChunkDenoiser(config, z_dim=self.style.z_dim)
        scheduler_kwargs = dict(
            num_train_timesteps=config.num_train_timesteps,
            beta_start=config.beta_start,
            beta_end=config.beta_end,
            beta_schedule=config.beta_schedule,
            clip_sample=config.clip_sample,
            clip_sample_range=config.clip_sample_range,
            prediction_type=config.prediction_type,
        )
        self.train_scheduler = DDPMScheduler(**scheduler_kwargs)
        sampler_cls = DDIMScheduler if config.noise_scheduler_type == "DDIM" else DDPMScheduler
        self.sampler = sampler_cls(**scheduler_kwargs, timestep_spacing=config.timestep_spacing)
        self.sampler.set_timesteps(config.num_inference_steps)
        # DDIM's last step goes to alpha_bar = 1 (set_alpha_to_one, eta 0) and returns its clipped x0 prediction,
        # which a "sample" denoiser outputs directly: ``sample`` then skips the scheduler's arithmetic on that step.
        self.last_step_is_x0 = (
            isinstance(self.sampler, DDIMScheduler)
            and config.prediction_type == "sample"
            and float(self.sampler.final_alpha_cumprod) == 1.0
            and not self.sampler.config.thresholding
        )
        # Training steps seen, for KL annealing; a buffer so that it is checkpointed and resumed.
        self.register_buffer("kl_step", torch.zeros((), dtype=torch.long))

    def encode_observation(self, batch: dict[str, Tensor]) -> EncodedObservation:
        tokens, pos = self.obs_encoder(batch)
        return EncodedObservation(self.denoiser.memory_proj(tokens), self.denoiser.memory_pos_proj(pos))

    def denoising_target(
        self,
        obs: EncodedObservation,
        z: Tensor | None,
        actions: Tensor,
        known: Tensor | None = None,
        reconstruct: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Noise the chunk at random timesteps; return (denoiser prediction, regression target, reconstruction).
        ``known`` (B, chunk_size, 1): positions given clean (``rtc_train_max_delay``). ``reconstruct``: also the x0
        predicted from pure noise at the sampler's first timestep (the start of inference, seen in training; the
        ``recon_weight`` term), in the same denoiser call: one doubled batch whose halves share the observation's
        cross-attention keys/values (a training step of the CPU docking recipe: 102 ms instead of 108); else None."""
        noise = torch.randn_like(actions)
        t = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, t)
        if known is not None:
            noisy = torch.where(known, actions, noisy)
        target = noise if self.config.prediction_type == "epsilon" else actions
        if not reconstruct:
            return self.denoiser(noisy, t, obs, z, known), target, None
        t_first = self.sampler.timesteps[0].to(actions.device).expand(actions.shape[0])
        pure = torch.randn_like(actions)
        if known is not None:
            pure = torch.where(known, actions, pure)

        def twice(x: Tensor | None) -> Tensor | None:
            return None if x is None else torch.cat([x, x])

        memory_kv = [(twice(k), twice(v)) for k, v in self.denoiser.memory_kv(obs)]
        films = self.denoiser.films(torch.cat([t, t_first]), twice(z), twice(known))
        pred, recon = self.denoiser.run(torch.cat([noisy, pure]), films, memory_kv).chunk(2)
        return pred, target, recon

    def sample(
        self,
        obs: EncodedObservation,
        z: Tensor | None,
        generator: torch.Generator | None = None,
        prefix: tuple[Tensor, Tensor] | None = None,
        given: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Reverse diffusion from Gaussian noise on the cached observation tokens. ``prefix`` = (actions, weights):
        at every step the predicted clean chunk is pulled towards ``actions`` by ``weights`` (real-time chunking's
        soft inpainting; weight 1 fixes an action, 0 leaves it free). ``given`` = (actions, known): the positions
        where ``known`` (B, chunk_size, 1) is True hold ``actions`` clean, in the denoiser's input at every step
        (timestep 0 there, as trained with ``rtc_train_max_delay``) and in the returned chunk."""
        batch_size = obs.tokens.shape[0]
        shape = (batch_size, self.config.chunk_size, self.denoiser.action_dim)
        x = torch.randn(shape, generator=generator, device=generator.device if generator else "cpu")
        x = x.to(obs.tokens)
        if len(self.sampler.timesteps) != self.config.num_inference_steps:  # the config was changed after loading
            self.sampler.set_timesteps(self.config.num_inference_steps)
        timesteps = self.sampler.timesteps
        # Everything that does not depend on the noisy chunk is computed once per chunk: the memory's
        # cross-attention keys/values and, for all sampler timesteps at once, every layer's FiLM parameters.
        memory_kv = self.denoiser.memory_kv(obs)
        known = None if given is None else given[1]
        films = self.denoiser.films(timesteps.to(x.device).view(-1, 1).expand(-1, batch_size), z, known)
        for i, t in enumerate(timesteps):
            if given is not None:
                x = torch.where(known, given[0], x)
            model_out = self.denoiser.run(x, [film[i] for film in films], memory_kv)
            if prefix is not None:
                model_out = torch.lerp(model_out, prefix[0], prefix[1])
            if given is not None:
                model_out = torch.where(known, given[0], model_out)
            if self.last_step_is_x0 and i == len(timesteps) - 1:
                c = self.config
                x = model_out.clamp(-c.clip_sample_range, c.clip_sample_range) if c.clip_sample else model_out
            else:
                x = self.sampler.step(model_out, t, x, generator=generator).prev_sample
        return x if given is None else torch.where(known, given[0], x)

    def kl_beta(self, advance: bool) -> float:
        """beta(step) = kl_weight * ramp(step); ``advance`` counts one training step."""
        c = self.config
        step = int(self.kl_step)
        if advance:
            self.kl_step += 1
        if c.kl_anneal == "none":
            ramp = 1.0
        elif c.kl_anneal == "linear":
            ramp = min(1.0, step / c.kl_anneal_steps)
        else:  # cyclic: ramp 0 -> 1 over the first half of each period, then hold.
            ramp = min(1.0, 2.0 * (step % c.kl_anneal_steps) / c.kl_anneal_steps)
        return c.kl_weight * ramp


class ObservationEncoder(nn.Module):
    """ACT's observation encoder: tokens [summary, (state), (env_state), (camera feature pixels)].

    The first token is a learned summary token (ACT's latent slot, freed because z enters the denoiser
    instead); its output summarises the observation for the style module.
    """

    def __init__(self, config: HybridActConfig):
        super().__init__()
        self.config = config
        d = config.dim_model
        self.summary_token = nn.Embedding(1, d)
        if config.robot_state_feature:
            self.state_proj = nn.Linear(config.robot_state_feature.shape[0], d)
        if config.env_state_feature:
            self.env_state_proj = nn.Linear(config.env_state_feature.shape[0], d)
        n_1d = 1 + bool(config.robot_state_feature) + bool(config.env_state_feature)
        self.pos_1d = nn.Embedding(n_1d, d)
        if config.image_features:
            resnet = _make_resnet(config)
            self.backbone = IntermediateLayerGetter(resnet, return_layers={"layer4": "feature_map"})
            self.image_proj = nn.Conv2d(resnet.fc.in_features, d, kernel_size=1)
            self.image_pos = ACTSinusoidalPositionEmbedding2d(d // 2)
        self.encoder = ACTEncoder(config)
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Returns encoder output tokens (B, S, D) and their positional embeddings (1, S, D)."""
        check_inputs(batch, self.config)
        batch_size = batch[next(iter(self.config.input_features))].shape[0]
        tokens = [self.summary_token.weight.expand(batch_size, -1)]
        if self.config.robot_state_feature:
            tokens.append(self.state_proj(batch[OBS_STATE]))
        if self.config.env_state_feature:
            tokens.append(self.env_state_proj(batch[OBS_ENV_STATE]))
        tokens = [torch.stack(tokens, dim=1)]  # (B, n_1d, D)
        pos = [self.pos_1d.weight.unsqueeze(0)]
        for key in self.config.image_features:
            features = self.backbone(batch[key])["feature_map"]
            pos.append(einops.rearrange(self.image_pos(features).to(features.dtype), "1 c h w -> 1 (h w) c"))
            tokens.append(einops.rearrange(self.image_proj(features), "b c h w -> b (h w) c"))
        tokens, pos = torch.cat(tokens, dim=1), torch.cat(pos, dim=1)
        # ACTEncoder is sequence-first.
        out = self.encoder(tokens.transpose(0, 1), pos_embed=pos.transpose(0, 1)).transpose(0, 1)
        return out, pos


def check_inputs(batch: dict[str, Tensor], config: HybridActConfig) -> None:
    """Fail with the key's name on a missing input, a wrong shape or a non-finite value, rather than deep
    inside torch (or, for images, silently: a ResNet accepts any size)."""
    for key, ft in config.input_features.items():
        if key not in batch:
            raise KeyError(f"Input `{key}` is missing from the batch; the policy was configured with inputs {sorted(config.input_features)}.")
        shape = tuple(batch[key].shape[1:])
        if shape != tuple(ft.shape):
            raise ValueError(
                f"Input `{key}` has shape {shape} per sample but the policy expects {tuple(ft.shape)}. "
                "Resize/crop the observation (or the dataset) to the shape the policy was trained on."
            )
        if not torch.isfinite(batch[key]).all():
            raise ValueError(f"Input `{key}` contains NaN or inf; clean the data or the environment observation.")


def _make_resnet(config: HybridActConfig) -> nn.Module:
    try:
        return getattr(torchvision.models, config.vision_backbone)(
            replace_stride_with_dilation=[False, False, config.replace_final_stride_with_dilation],
            weights=config.pretrained_backbone_weights,
            norm_layer=FrozenBatchNorm2d,
        )
    except OSError as e:  # urllib's URLError is an OSError: the weights are not cached and cannot be fetched
        raise RuntimeError(
            f"Could not load the backbone weights {config.pretrained_backbone_weights!r} ({e}). Without network "
            "access, put them in torchvision's cache ($TORCH_HOME/hub/checkpoints) or train the backbone from "
            "scratch with `--policy.pretrained_backbone_weights=null`."
        ) from e


# --------------------------------------------------------------------------------------------- style


class StyleOutput:
    def __init__(self, z: Tensor | None, kl: Tensor | None = None, kl_floor: Tensor | None = None,
                 fit_nll: Tensor | None = None, fit_nearest: Tensor | None = None):
        self.z = z  # (B, z_dim) or None
        self.kl = kl  # (B, n_terms) KL(q || p) in nats, one column per latent term, or None
        self.kl_floor = kl_floor  # (n_terms,) free-bits floor of each term in latent dimensions it covers
        self.fit_nll = fit_nll  # scalar: NLL of the fitted sampling prior (latent_prior="fitted_mixture"), or None
        self.fit_nearest = fit_nearest  # scalar: squared distance to its nearest component's mean (same), or None


def gaussian_kl(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per dimension, in nats."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0)


def gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, var) summed over the last dimension."""
    return -0.5 * (logvar + (z - mu).pow(2) / logvar.exp() + math.log(2 * math.pi)).sum(-1)


def _randn(shape, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise drawn on the generator's device (reproducible), then moved to ``like``."""
    return torch.randn(shape, generator=generator, device=generator.device if generator else "cpu").to(like)


def _sample_categorical(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """Indices drawn from softmax(logits / temperature); the argmax at temperature 0."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs.cpu() if generator is None else probs.to(generator.device), 1, generator=generator)[
        :, 0
    ].to(logits.device)


def _split_mixture(out: Tensor, n_modes: int) -> tuple[Tensor, Tensor, Tensor]:
    """A mixture head's output (B, K * (1 + 2 d)) as (logits (B, K), means (B, K, d), log-variances (B, K, d))."""
    logits, params = out[:, :n_modes], out[:, n_modes:].unflatten(-1, (n_modes, -1))
    mu, logvar = params.chunk(2, dim=-1)
    return logits, mu, logvar


def _sample_component(logits: Tensor, temperature: float, generator: torch.Generator | None, *params: Tensor):
    """Per row, a component drawn from softmax(logits / T) (the most likely at T = 0); each of ``params``
    (B, n_modes, D) at that component."""
    k = _sample_categorical(logits, temperature, generator)
    rows = torch.arange(len(k), device=k.device)
    return tuple(p[rows, k] for p in params)


def _sample_mixture(logits: Tensor, mu: Tensor, logvar: Tensor, temperature: float,
                    generator: torch.Generator | None) -> Tensor:
    """A component drawn from softmax(logits / T), then its mean + T x its spread (the most likely mean at T = 0)."""
    mu, logvar = _sample_component(logits, temperature, generator, mu, logvar)
    if temperature == 0:
        return mu
    return mu + temperature * (0.5 * logvar).exp() * _randn(mu.shape, mu, generator)


class NoStyle(nn.Module):
    """Variant A: the denoiser sees no z; any z passed in is ignored."""

    z_dim = 0

    def train_latent(self, summary, actions, action_is_pad) -> StyleOutput:
        return StyleOutput(None)

    def infer(self, summary, z_mode, temperature, generator) -> None:
        return None

    def check_z(self, z: Tensor) -> None:
        return None


class DeterministicStyle(nn.Module):
    """Variant B: z = f(obs), an MLP on the observation summary, trained only through the denoiser."""

    def __init__(self, config: HybridActConfig):
        super().__init__()
        self.z_dim = config.latent_dim
        self.f = _mlp(config.denoiser_dim_model, config.latent_dim)

    def train_latent(self, summary, actions, action_is_pad) -> StyleOutput:
        return StyleOutput(self.f(summary))

    def infer(self, summary, z_mode, temperature, generator) -> Tensor:
        return self.f(summary)

    def posterior_mean(self, summary, actions, action_is_pad) -> Tensor:
        return self.f(summary)

    def check_z(self, z: Tensor) -> Tensor:
        return _check_z(z, self.z_dim)


class PosteriorEncoder(nn.Module):
    """ACT's VAE encoder: a transformer over [cls, obs summary, a_1..a_k] whose cls output is projected to
    ``n_out`` posterior parameters (ACT reads the robot state where we read the observation summary)."""

    def __init__(self, config: HybridActConfig, n_out: int):
        super().__init__()
        d = config.dim_model
        self.encoder = ACTEncoder(config, is_vae_encoder=True)
        self.cls_token = nn.Embedding(1, d)
        self.summary_proj = nn.Linear(config.denoiser_dim_model, d)
        self.action_proj = nn.Linear(config.action_feature.shape[0], d)
        self.head = nn.Linear(d, n_out)
        self.register_buffer("pos", create_sinusoidal_pos_embedding(2 + config.chunk_size, d).unsqueeze(1))

    def forward(self, summary: Tensor, actions: Tensor, action_is_pad: Tensor | None) -> Tensor:
        batch_size = actions.shape[0]
        tokens = torch.cat(
            [
                self.cls_token.weight.expand(batch_size, -1).unsqueeze(1),
                self.summary_proj(summary).unsqueeze(1),
                self.action_proj(actions),
            ],
            dim=1,
        )
        pad = None
        if action_is_pad is not None:
            pad = torch.cat([torch.zeros_like(action_is_pad[:, :2]), action_is_pad], dim=1)
        return self.head(self.encoder(tokens.transpose(0, 1), pos_embed=self.pos, key_padding_mask=pad)[0])


class GaussianPriorStyle(nn.Module):
    """Variant C, ``latent_prior="gaussian"``: diagonal Gaussian posterior and a diagonal Gaussian prior p(z|obs).

    Exact KL per dimension. One Gaussian per observation cannot cover two posterior clusters without putting mass
    between them (the toy in ``benchmarks/two_mode_toy.py``)."""

    def __init__(self, config: HybridActConfig):
        super().__init__()
        self.z_dim = config.latent_dim
        self.sample_posterior = config.sample_posterior
        self.posterior = PosteriorEncoder(config, 2 * config.latent_dim)
        self.prior = _mlp(config.denoiser_dim_model, 2 * config.latent_dim)

    def train_latent(self, summary, actions, action_is_pad) -> StyleOutput:
        return self._gaussian_latent(summary, actions, action_is_pad)[0]

    def _gaussian_latent(self, summary, actions, action_is_pad) -> tuple[StyleOutput, Tensor]:
        """(the posterior's z for the denoiser, a draw or its mean (``sample_posterior``), with its KL to the Gaussian
        prior; the posterior mean)."""
        mu_q, logvar_q = self.posterior(summary, actions, action_is_pad).chunk(2, dim=-1)
        mu_p, logvar_p = self.prior(summary).chunk(2, dim=-1)
        z = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q) if self.sample_posterior else mu_q
        return StyleOutput(z, gaussian_kl(mu_q, logvar_q, mu_p, logvar_p), torch.ones(self.z_dim)), mu_q

    def prior_mean(self, summary: Tensor) -> Tensor:
        """The Gaussian prior's mean: the centre of the posterior's clusters at this observation."""
        return self.prior(summary).chunk(2, dim=-1)[0]

    def posterior_mean(self, summary, actions, action_is_pad) -> Tensor:
        return self.posterior(summary, actions, action_is_pad).chunk(2, dim=-1)[0]

    def infer(self, summary, z_mode, temperature, generator) -> Tensor:
        mu_p, logvar_p = self.prior(summary).chunk(2, dim=-1)
        if z_mode == "mean" or temperature == 0:
            return mu_p
        return mu_p + temperature * (0.5 * logvar_p).exp() * _randn(mu_p.shape, mu_p, generator)

    def check_z(self, z: Tensor) -> Tensor:
        return _check_z(z, self.z_dim)


class MixturePriorStyle(GaussianPriorStyle):
    """Variant C, ``latent_prior="mixture"``: Gaussian posterior, prior p(z|obs) a mixture of ``n_latent_modes``
    diagonal Gaussians (VampPrior-style, arXiv 1705.07120), so that two posterior clusters can each get a component.

    The KL has no closed form: a one-sample Monte-Carlo estimate log q(z) - log p(z) at the posterior sample,
    reported as one term (free-bits floor ``latent_dim`` x ``kl_free_bits``)."""

    def __init__(self, config: HybridActConfig):
        super().__init__(config)
        self.n_modes = config.n_latent_modes
        self.prior = _mlp(config.denoiser_dim_model, self.n_modes * (1 + 2 * config.latent_dim))

    def _prior(self, summary: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return _split_mixture(self.prior(summary), self.n_modes)

    def train_latent(self, summary, actions, action_is_pad) -> StyleOutput:
        mu_q, logvar_q = self.posterior(summary, actions, action_is_pad).chunk(2, dim=-1)
        z = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        logits, mu_p, logvar_p = self._prior(summary)
        log_p = torch.logsumexp(logits.log_softmax(-1) + gaussian_log_prob(z.unsqueeze(1), mu_p, logvar_p), dim=-1)
        kl = gaussian_log_prob(z, mu_q, logvar_q) - log_p
        return StyleOutput(z, kl.unsqueeze(-1), torch.full((1,), float(self.z_dim)))

    def prior_mean(self, summary: Tensor) -> Tensor:
        """The mixture's mean, between its components."""
        logits, mu_p, _ = self._prior(summary)
        return (logits.softmax(-1).unsqueeze(-1) * mu_p).sum(1)

    def infer(self, summary, z_mode, temperature, generator) -> Tensor:
        return _sample_mixture(*self._prior(summary), 0.0 if z_mode == "mean" else temperature, generator)

    def components(self, summary: Tensor) -> tuple[Tensor, Tensor]:
        logits, mu, _ = self._prior(summary)
        return logits.softmax(-1), mu


class FittedMixtureStyle(GaussianPriorStyle):
    """Variant C, ``latent_prior="fitted_mixture"``: trained exactly as ``gaussian`` (posterior, Gaussian prior,
    KL), plus a mixture of ``n_latent_modes`` Gaussians over z fitted to the posterior means by maximum likelihood
    (a mixture density network, Bishop 1994) with the gradient stopped at its inputs: it cannot pull the posterior
    towards the centre or shape the encoder, as a fitted second-stage prior (Dai & Wipf, arXiv 1903.05789) does
    not. Inference draws a component (softmax(logits / T), the most likely at T = 0 or ``z_mode="mean"``) and
    returns its mean, not a point inside its spread: the spread fitted during training is wider than the posterior's
    clusters (the head tracks a posterior that is still moving), and a draw inside it can land between two modes."""

    LOGVAR_RANGE = (-8.0, 4.0)  # keeps the fit's likelihood finite on tight clusters
    # The fit's loss scale. Adam's step does not depend on it, but lerobot-train clips the *global* gradient norm:
    # unscaled, this NLL's gradients (norm ~300 against ~0.3 for the rest) made every step clip, which shrank the
    # policy's own updates ~30-fold. At 1e-3 the head trains as fast and never triggers the clip.
    FIT_LOSS_SCALE = 1e-3

    def __init__(self, config: HybridActConfig):
        super().__init__(config)
        self.n_modes = config.n_latent_modes
        # Its own random stream: the rest of the model is initialised exactly as with latent_prior="gaussian", so a
        # seed gives the same policy with or without the fitted head.
        with torch.random.fork_rng(devices=[]):
            self.fitted = _mlp(config.denoiser_dim_model, self.n_modes * (1 + 2 * config.latent_dim))

    def _fitted(self, summary: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, mu, logvar = _split_mixture(self.fitted(summary), self.n_modes)
        return logits, mu, logvar.clamp(*self.LOGVAR_RANGE)

    def train_latent(self, summary, actions, action_is_pad) -> StyleOutput:
        out, mu_q = self._gaussian_latent(summary, actions, action_is_pad)
        out.fit_nll, out.fit_nearest = self._fit_terms(summary, mu_q)
        return out

    def head_fit_terms(self, summary, actions, action_is_pad) -> tuple[Tensor, Tensor]:
        """The head's two loss terms alone (the head-fit phase): the posterior mean is computed without gradients."""
        with torch.no_grad():
            mu_q = self.posterior_mean(summary, actions, action_is_pad)
        return self._fit_terms(summary, mu_q)

    def _fit_terms(self, summary: Tensor, mu_q: Tensor) -> tuple[Tensor, Tensor]:
        """(the mixture's NLL of the posterior means, the winner-takes-all term), with the gradient stopped at both
        inputs."""
        logits, mu_f, logvar_f = self._fitted(summary.detach())
        target = mu_q.detach().unsqueeze(1)
        log_f = torch.logsumexp(logits.log_softmax(-1) + gaussian_log_prob(target, mu_f, logvar_f), -1)
        # Winner-takes-all: each posterior mean also pulls the nearest component's mean. The likelihood alone lets one
        # wide component cover two clusters while the others, far from every point, get no gradient (an MDN's mode
        # collapse; Makansi et al., CVPR 2019); its mean then lies between the modes.
        return -log_f.mean(), (target - mu_f).pow(2).sum(-1).min(-1).values.mean()

    def infer(self, summary, z_mode, temperature, generator) -> Tensor:
        logits, mu, _ = self._fitted(summary)
        (mean,) = _sample_component(logits, 0.0 if z_mode == "mean" else temperature, generator, mu)
        return mean

    def components(self, summary: Tensor) -> tuple[Tensor, Tensor]:
        logits, mu, _ = self._fitted(summary)
        return logits.softmax(-1), mu


class CategoricalStyle(nn.Module):
    """Variant C, ``latent_prior="categorical"``: z = [one-hot mode code c, continuous style u].

    c is one of ``n_latent_modes`` codes with a categorical posterior q(c|a,obs) and prior p(c|obs) (exact KL;
    discrete modes as in BeT / VQ-BeT); u (``latent_dim``) is Gaussian with posterior q(u|a,obs) and prior
    p(u|obs,c) conditioned on the code, so that u needs no second mode. Training draws c from q with the
    straight-through estimator (the one-hot forward, softmax gradient). Any z from the prior is a code the
    decoder was trained on: there is no between-the-modes region to sample.
    """

    def __init__(self, config: HybridActConfig):
        super().__init__()
        self.n_modes, self.style_dim = config.n_latent_modes, config.latent_dim
        self.z_dim = self.n_modes + self.style_dim
        self.posterior = PosteriorEncoder(config, self.n_modes + 2 * self.style_dim)
        self.mode_prior = _mlp(config.denoiser_dim_model, self.n_modes)
        self.style_prior = _mlp(config.denoiser_dim_model + self.n_modes, 2 * self.style_dim)

    def _posterior(self, summary, actions, action_is_pad) -> tuple[Tensor, Tensor, Tensor]:
        out = self.posterior(summary, actions, action_is_pad)
        return out[:, : self.n_modes], *out[:, self.n_modes :].chunk(2, dim=-1)

    def _style_prior(self, summary: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
        """p(u | obs, c) for one-hot codes ``code`` of shape (B, K) or (B, M, K)."""
        if code.ndim == 3:
            summary = summary.unsqueeze(1).expand(-1, code.shape[1], -1)
        return self.style_prior(torch.cat([summary, code], dim=-1)).chunk(2, dim=-1)

    def train_latent(self, summary, actions, action_is_pad) -> StyleOutput:
        logits_q, mu_q, logvar_q = self._posterior(summary, actions, action_is_pad)
        q = logits_q.softmax(-1)
        log_q, log_p = logits_q.log_softmax(-1), self.mode_prior(summary).log_softmax(-1)
        kl_code = (q * (log_q - log_p)).sum(-1, keepdim=True)
        # E_{q(c)} KL(q(u) || p(u|obs,c)), exact: the style prior evaluated at every code.
        eye = torch.eye(self.n_modes, device=summary.device, dtype=summary.dtype).expand(len(summary), -1, -1)
        mu_p, logvar_p = self._style_prior(summary, eye)
        kl_style = (q.unsqueeze(-1) * gaussian_kl(mu_q.unsqueeze(1), logvar_q.unsqueeze(1), mu_p, logvar_p)).sum(1)
        hard = F.one_hot(torch.multinomial(q.detach(), 1)[:, 0], self.n_modes).to(q)
        code = hard + q - q.detach()  # straight-through
        u = mu_q + (0.5 * logvar_q).exp() * torch.randn_like(mu_q)
        return StyleOutput(torch.cat([code, u], dim=-1), torch.cat([kl_code, kl_style], dim=-1), torch.ones(1 + self.style_dim))

    def posterior_mean(self, summary, actions, action_is_pad) -> Tensor:
        logits_q, mu_q, _ = self._posterior(summary, actions, action_is_pad)
        return torch.cat([F.one_hot(logits_q.argmax(-1), self.n_modes).to(mu_q), mu_q], dim=-1)

    def prior_mean(self, summary: Tensor) -> Tensor:
        """E[z] under the prior: the codes' probabilities and their styles' probability-weighted mean."""
        probs = self.mode_prior(summary).softmax(-1)
        eye = torch.eye(self.n_modes, device=summary.device, dtype=summary.dtype).expand(len(summary), -1, -1)
        mu_u = self._style_prior(summary, eye)[0]
        return torch.cat([probs, (probs.unsqueeze(-1) * mu_u).sum(1)], dim=-1)

    def infer(self, summary, z_mode, temperature, generator) -> Tensor:
        t = 0.0 if z_mode == "mean" else temperature
        code = F.one_hot(_sample_categorical(self.mode_prior(summary), t, generator), self.n_modes).to(summary)
        mu, logvar = self._style_prior(summary, code)
        if t > 0:
            mu = mu + t * (0.5 * logvar).exp() * _randn(mu.shape, mu, generator)
        return torch.cat([code, mu], dim=-1)

    def check_z(self, z: Tensor) -> Tensor:
        return _check_z(z, self.z_dim)


LATENT_PRIORS = {"gaussian": GaussianPriorStyle, "mixture": MixturePriorStyle, "categorical": CategoricalStyle,
                 "fitted_mixture": FittedMixtureStyle}


def make_style_module(config: HybridActConfig) -> nn.Module:
    """THE place where the variants differ (``config.style_mode`` is a class constant of each config)."""
    if config.style_mode == "none":
        return NoStyle()
    if config.style_mode == "deterministic":
        return DeterministicStyle(config)
    return LATENT_PRIORS[config.latent_prior](config)


def _check_z(z: Tensor, z_dim: int) -> Tensor:
    z = torch.as_tensor(z)
    if z.ndim == 1:
        z = z.unsqueeze(0)
    if z.ndim != 2 or z.shape[-1] != z_dim:
        raise ValueError(
            f"z must have shape (z_dim,) or (batch, z_dim) with z_dim={z_dim} (the size of `sample_style`'s "
            f"output); got {tuple(z.shape)}."
        )
    if not torch.isfinite(z).all():
        raise ValueError("z contains NaN or inf.")
    return z


def _mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_in), nn.Mish(), nn.Linear(d_in, d_out))


# --------------------------------------------------------------------------------------------- denoiser


class ChunkDenoiser(nn.Module):
    """Transformer over the chunk's positions: self-attention, cross-attention to the observation tokens,
    feed-forward; each sub-layer's pre-norm output is FiLM-modulated by [timestep embedding, z].

    Sampling splits the work so that each denoising step runs only what depends on the noisy chunk:
    ``memory_kv`` (cross-attention keys/values of the observation tokens) once per chunk, ``films`` (timestep
    embedding -> conditioning MLP -> every layer's FiLM) once per chunk for all the sampler's timesteps, and
    ``run`` per step. ``forward`` (training, one timestep per sample) composes the three.
    """

    def __init__(self, config: HybridActConfig, z_dim: int):
        super().__init__()
        d = config.denoiser_dim_model
        self.action_dim = config.action_feature.shape[0]
        self.memory_proj = nn.Linear(config.dim_model, d)
        self.memory_pos_proj = nn.Linear(config.dim_model, d, bias=False)
        self.action_in = nn.Linear(self.action_dim, d)
        self.chunk_pos = nn.Parameter(torch.randn(1, config.chunk_size, d) * 0.02)
        self.time_emb = SinusoidalTimeEmbedding(d)
        self.cond = nn.Sequential(nn.Linear(d + z_dim, 4 * d), nn.Mish(), nn.Linear(4 * d, d))
        self.layers = nn.ModuleList([DenoiserLayer(config) for _ in range(config.n_decoder_layers)])
        self.norm_out = nn.LayerNorm(d)
        self.action_out = nn.Linear(d, self.action_dim)

    def forward(
        self, noisy: Tensor, t: Tensor, obs: EncodedObservation, z: Tensor | None, known: Tensor | None = None
    ) -> Tensor:
        return self.run(noisy, self.films(t, z, known), self.memory_kv(obs))

    def films(self, t: Tensor, z: Tensor | None, known: Tensor | None = None) -> list[Tensor]:
        """Every layer's FiLM parameters for timesteps ``t`` of shape (B,) or (T, B): (*t.shape, 1, 9 d) each.
        ``known`` (B, chunk_size, 1), True where the chunk holds given clean actions: those positions get timestep
        0's parameters instead, (*t.shape, chunk_size, 9 d) each (a timestep per position)."""
        films = self._films(t, z)
        if known is None:
            return films
        clean = self._films(torch.zeros_like(t), z)
        return [torch.where(known, c, f) for c, f in zip(clean, films, strict=True)]

    def _films(self, t: Tensor, z: Tensor | None) -> list[Tensor]:
        cond = self.time_emb(t)
        if z is not None:
            cond = torch.cat([cond, z.expand(*t.shape, z.shape[-1])], dim=-1)
        cond = self.cond(cond)
        return [layer.film_params(cond).unsqueeze(-2) for layer in self.layers]

    def memory_kv(self, obs: EncodedObservation) -> list[tuple[Tensor, Tensor]]:
        """Every layer's cross-attention keys and values of the observation tokens (constant over a chunk)."""
        memory_keys = obs.tokens + obs.pos
        return [layer.cross_kv(memory_keys, obs.tokens) for layer in self.layers]

    def run(self, noisy: Tensor, films: list[Tensor], memory_kv: list[tuple[Tensor, Tensor]]) -> Tensor:
        x = self.action_in(noisy) + self.chunk_pos
        for layer, film, (k, v) in zip(self.layers, films, memory_kv, strict=True):
            x = layer(x, film, k, v)
        return self.action_out(self.norm_out(x))


class DenoiserLayer(nn.Module):
    """Pre-norm FiLM transformer layer. The ``nn.MultiheadAttention`` modules hold the attention weights
    (checkpoint layout); the forward pass uses them through ``F.scaled_dot_product_attention`` directly, so
    that the cross-attention keys/values can be computed once per chunk (``cross_kv``)."""

    def __init__(self, config: HybridActConfig):
        super().__init__()
        d = config.denoiser_dim_model
        self.n_heads = config.n_heads
        self.attn_dropout = config.dropout
        self.self_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(d, config.denoiser_dim_feedforward),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.denoiser_dim_feedforward, d),
        )
        self.norms = nn.ModuleList([nn.LayerNorm(d, elementwise_affine=False) for _ in range(3)])
        # FiLM: per sub-layer (scale, shift, gate); zero-initialised so every layer starts as identity.
        self.film = nn.Linear(d, 9 * d)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        # 1 on the scales' slots of the FiLM parameters (sub-layer i: scale, shift, gate at 3 i, 3 i + 1, 3 i + 2).
        offset = torch.zeros(9, d)
        offset[0::3] = 1.0
        self.register_buffer("film_offset", offset.flatten(), persistent=False)
        self.dropout = nn.Dropout(config.dropout)

    def _heads(self, x: Tensor) -> Tensor:  # (B, S, d) -> (B, heads, S, d / heads)
        return x.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)

    def _attend(self, attn: nn.MultiheadAttention, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_dropout if self.training else 0.0)
        return F.linear(out.transpose(1, 2).flatten(2), attn.out_proj.weight, attn.out_proj.bias)

    def cross_kv(self, memory_keys: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        d = memory.shape[-1]
        w, b = self.cross_attn.in_proj_weight, self.cross_attn.in_proj_bias
        return self._heads(F.linear(memory_keys, w[d : 2 * d], b[d : 2 * d])), self._heads(F.linear(memory, w[2 * d :], b[2 * d :]))

    def film_params(self, cond: Tensor) -> Tensor:
        """(..., 9 d) FiLM parameters from the conditioning vector, with 1 added to the three scales (so that a
        sub-layer's modulation is one ``addcmul``, computed once per chunk instead of once per denoising step)."""
        film = self.film(cond)
        return film + self.film_offset.to(film)

    def _modulate(self, x: Tensor, i: int, scale: Tensor, shift: Tensor) -> Tensor:
        return torch.addcmul(shift, F.layer_norm(x, x.shape[-1:], eps=self.norms[i].eps), scale)

    def _dropout(self, x: Tensor) -> Tensor:
        return self.dropout(x) if self.training and self.dropout.p > 0 else x

    def forward(self, x: Tensor, film: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """One layer on the chunk ``x`` (B, chunk_size, d): ``film`` from ``film_params``, ``k``/``v`` from ``cross_kv``.
        Written in few tensor ops (fused modulations and residuals, ``ff``'s weights called directly, no dropout
        calls at inference): at the CPU docking size a step is largely per-op overhead, and this form took C's
        chunk from 1.60x to 1.46x act's (``benchmarks/chunk_latency.py``, docs/speed.md)."""
        scale_sa, shift_sa, gate_sa, scale_ca, shift_ca, gate_ca, scale_ff, shift_ff, gate_ff = film.chunk(9, dim=-1)
        h = self._modulate(x, 0, scale_sa, shift_sa)
        qkv = F.linear(h, self.self_attn.in_proj_weight, self.self_attn.in_proj_bias)  # (B, S, 3 d): q | k | v
        q_s, k_s, v_s = qkv.unflatten(-1, (3, self.n_heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        x = torch.addcmul(x, gate_sa, self._dropout(self._attend(self.self_attn, q_s, k_s, v_s)))
        h = self._modulate(x, 1, scale_ca, shift_ca)
        d = h.shape[-1]
        q = self._heads(F.linear(h, self.cross_attn.in_proj_weight[:d], self.cross_attn.in_proj_bias[:d]))
        x = torch.addcmul(x, gate_ca, self._dropout(self._attend(self.cross_attn, q, k, v)))
        ff_in, _, _, ff_out = self.ff  # Linear, GELU, Dropout, Linear
        h = self._dropout(F.gelu(F.linear(self._modulate(x, 2, scale_ff, shift_ff), ff_in.weight, ff_in.bias)))
        return torch.addcmul(x, gate_ff, self._dropout(F.linear(h, ff_out.weight, ff_out.bias)))


class SinusoidalTimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000) * torch.arange(half) / max(half - 1, 1)))

    def forward(self, t: Tensor) -> Tensor:
        angles = t.float().unsqueeze(-1) * self.freqs
        return torch.cat([angles.sin(), angles.cos()], dim=-1)
