"""Shared tiny builders for the policy tests (tiny dims so every test runs in seconds on 2 CPU cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402
from lerobot.configs import FeatureType, PolicyFeature  # noqa: E402
from lerobot.policies.factory import get_policy_class  # noqa: E402

import lerobot_hybrid_act  # noqa: E402,F401  (registers the policy types)
from lerobot.configs import PreTrainedConfig  # noqa: E402

VARIANTS = lerobot_hybrid_act.POLICY_TYPES
CHUNK = 8
STATE_DIM, ENV_DIM, ACTION_DIM = 4, 3, 2
IMAGE_SHAPE = (3, 32, 32)

# Tiny architecture, also used as CLI overrides by the lerobot-train tests.
TINY = dict(
    chunk_size=CHUNK,
    n_action_steps=CHUNK,
    dim_model=32,
    n_heads=2,
    dim_feedforward=64,
    n_encoder_layers=1,
    n_vae_encoder_layers=1,
    n_decoder_layers=1,
    denoiser_dim_model=32,
    denoiser_dim_feedforward=64,
    latent_dim=4,
    pretrained_backbone_weights=None,
    num_train_timesteps=20,
    num_inference_steps=4,
    prior_fit_steps=1,  # C's head-only phase: one step, so that a few-step lerobot-train run still trains the policy
    dropout=0.0,
)


def tiny_features(image: bool = True) -> dict[str, PolicyFeature]:
    feats = {
        "observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
        "observation.environment_state": PolicyFeature(FeatureType.ENV, (ENV_DIM,)),
    }
    if image:
        feats["observation.images.top"] = PolicyFeature(FeatureType.VISUAL, IMAGE_SHAPE)
    return feats


def make_config(variant: str, image: bool = True, **overrides):
    cls = PreTrainedConfig.get_choice_class(variant)
    kwargs = {**TINY, **overrides}
    return cls(
        device="cpu",
        input_features=tiny_features(image),
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        **kwargs,
    )


def make_policy(variant: str, image: bool = True, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    config = make_config(variant, image=image, **overrides)
    return get_policy_class(variant)(config)


def make_batch(batch_size: int = 6, image: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Normalised-looking inputs; actions are smooth, observation-dependent curves in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    state = torch.randn(batch_size, STATE_DIM, generator=g)
    t = torch.linspace(0, 1, CHUNK)
    phase = state[:, :1]
    action = torch.stack([torch.sin(3 * t + phase), torch.cos(2 * t - phase)], dim=-1) * 0.8
    batch = {
        "observation.state": state,
        "observation.environment_state": torch.randn(batch_size, ENV_DIM, generator=g),
        "action": action,
        "action_is_pad": torch.zeros(batch_size, CHUNK, dtype=torch.bool),
    }
    if image:
        batch["observation.images.top"] = torch.randn(batch_size, *IMAGE_SHAPE, generator=g)
    return batch


def observation(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k.startswith("observation.")}


def train_steps(policy, batch, steps: int, lr: float = 1e-3):
    policy.train()
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    for _ in range(steps):
        loss, _ = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    return policy


def _nominal_docking_layout():
    from lerobot_hybrid_act.docking import DockingLayout

    # Start, obstacle and port on one axis: left and right around the obstacle are mirror images.
    return DockingLayout(
        start_x=1.0, start_y=0.0, start_heading=0.0, port_x=8.8, port_y=0.0, port_heading=0.0,
        obstacle_x=4.9, obstacle_y=0.0, obstacle_radius=1.2,
    )  # fmt: skip


NOMINAL_DOCKING_LAYOUT = _nominal_docking_layout()


@pytest.fixture(params=VARIANTS)
def variant(request) -> str:
    return request.param
