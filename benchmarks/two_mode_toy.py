"""Two-mode toy: does hybrid_act_c's z carry the mode, and does its prior sample both modes and nothing between?

The data: an observation o ~ N(0, I) and, independently of o, one of two chunks, mode +1 or mode -1:

    a_t(o, m) = m * s(t) + offset(o) + noise,     P(m = +1) = P(m = -1) = 1/2,

so the observation says where the chunk is but never which mode it is in (every training observation is
demonstrated with both modes, as docking with ``--routes-per-layout 2``). Only z can carry the mode.

A decoded chunk x is labelled with the mode m whose template a(o, m) is nearest, if its RMS distance to that
template is below ``BETWEEN`` x the RMS distance between the two templates; otherwise it lies *between* the modes.
Four numbers, on held-out observations:

- ``prior``: fractions of +1 / -1 / between over chunks decoded from fresh draws z ~ p(z|o) (``sample_style``);
- ``held_z_agreement``: for one z held, the share of decodes (fresh diffusion noise) that give that z's majority mode;
- ``posterior_hit``: z = ``infer_style`` of a mode's chunk, decoded: the share that reproduces that mode.

    python benchmarks/two_mode_toy.py --out benchmarks/results/two_mode_toy.json

trains hybrid_act_c at its defaults (tiny widths, the diffusion and latent settings untouched) and a few
alternatives, one after another on one thread, and prints the table. Nothing here reads an evaluation seed of any
task: settings chosen from it are chosen on synthetic data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

CHUNK, ACTION_DIM, OBS_DIM = 8, 2, 3
BETWEEN = 0.25  # a chunk farther than this x the inter-template distance from both templates lies between them
# Tiny widths: the toy tests the latent, not capacity. Everything else stays at the policy's defaults.
TINY = dict(
    chunk_size=CHUNK, n_action_steps=CHUNK, dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1,
    n_vae_encoder_layers=1, n_decoder_layers=1, denoiser_dim_model=32, denoiser_dim_feedforward=64, latent_dim=4,
    pretrained_backbone_weights=None, dropout=0.0,
)  # fmt: skip
# Alternatives measured next to the defaults (label -> config overrides).
ALTERNATIVES = {
    "defaults": {},
    "gaussian prior, kl 0.01": {"latent_prior": "gaussian", "kl_weight": 0.01},
    "gaussian prior, kl 0.1": {"latent_prior": "gaussian", "kl_weight": 0.1},
    "gaussian prior, kl 1": {"latent_prior": "gaussian", "kl_weight": 1.0},
    "categorical code, kl 0.01": {"latent_prior": "categorical", "kl_weight": 0.01},
    "categorical code, kl 0.1": {"latent_prior": "categorical", "kl_weight": 0.1},
    "categorical code, kl 1": {"latent_prior": "categorical", "kl_weight": 1.0},
    "mixture prior, kl 0.01": {"latent_prior": "mixture", "kl_weight": 0.01},
    "fitted mixture, kl 0.01": {"latent_prior": "fitted_mixture", "kl_weight": 0.01},
    "mixture prior, kl 0.1": {"latent_prior": "mixture", "kl_weight": 0.1},
    "gaussian prior, kl 0.01, no reconstruction term": {"latent_prior": "gaussian", "kl_weight": 0.01, "recon_weight": 0.0},
    "categorical code, kl 0.1, annealed over 2000 steps": {"latent_prior": "categorical", "kl_weight": 0.1,
                                                           "kl_anneal": "linear", "kl_anneal_steps": 2000},
    "old C defaults (gaussian, kl 1 annealed, no recon, leading)": {
        "latent_prior": "gaussian", "kl_weight": 1.0, "kl_anneal": "linear", "kl_anneal_steps": 2000,
        "recon_weight": 0.0, "timestep_spacing": "leading",
    },
}


def templates(obs: torch.Tensor) -> torch.Tensor:
    """(N, 2, CHUNK, ACTION_DIM): the chunk of mode +1 (index 0) and of mode -1 (index 1) for each observation."""
    t = torch.linspace(0.0, 1.0, CHUNK)
    shape = torch.stack([0.2 + 0.5 * t, 0.5 * torch.sin(3.0 * t)], dim=-1)  # (CHUNK, 2), never 0 on both dims
    offset = 0.3 * torch.tanh(obs[:, :ACTION_DIM]).unsqueeze(1)  # (N, 1, 2)
    return torch.stack([offset + shape, offset - shape], dim=1)


def paired_dataset(n_obs: int, seed: int, noise: float = 0.02) -> dict[str, torch.Tensor]:
    """Every observation twice, once per mode (what ``--routes-per-layout 2`` gives docking)."""
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_obs, OBS_DIM, generator=g)
    chunks = templates(obs).flatten(0, 1)  # (2 N, CHUNK, A): obs 0 mode +1, obs 0 mode -1, ...
    return {
        "observation.environment_state": obs.repeat_interleave(2, dim=0),
        "action": (chunks + noise * torch.randn(chunks.shape, generator=g)).clamp(-1, 1),
    }


def make_toy_policy(seed: int = 0, **overrides):
    from lerobot.configs import FeatureType, PolicyFeature
    from lerobot.policies.factory import get_policy_class

    import lerobot_hybrid_act  # noqa: F401  (registers the policy types)
    from lerobot_hybrid_act.configuration_hybrid_act import HybridActCConfig

    torch.manual_seed(seed)
    config = HybridActCConfig(
        device="cpu",
        input_features={"observation.environment_state": PolicyFeature(FeatureType.ENV, (OBS_DIM,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        **{**TINY, **overrides},
    )
    return get_policy_class("hybrid_act_c")(config)


def train(policy, data: dict[str, torch.Tensor], steps: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0):
    """Plain Adam on random mini-batches of ``data`` (what lerobot-train does, without the dataset machinery)."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(policy.get_optim_params(), lr=lr)
    n = len(data["action"])
    policy.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        loss, _ = policy({k: v[idx] for k, v in data.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    return policy


def label(chunks: torch.Tensor, tmpl: torch.Tensor) -> torch.Tensor:
    """Mode index per chunk (0: +1, 1: -1, 2: between) for chunks (N, CHUNK, A) and templates (N, 2, CHUNK, A)."""
    d = (chunks.unsqueeze(1) - tmpl).pow(2).mean((-1, -2)).sqrt()  # (N, 2)
    gap = (tmpl[:, 0] - tmpl[:, 1]).pow(2).mean((-1, -2)).sqrt()
    nearest = d.argmin(-1)
    return torch.where(d.min(-1).values < BETWEEN * gap, nearest, torch.full_like(nearest, 2))


def evaluate(policy, n_obs: int = 64, draws: int = 8, seed: int = 10_000) -> dict:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_obs, OBS_DIM, generator=g)
    tmpl = templates(obs)
    batch = {"observation.environment_state": obs}
    gen = lambda j: torch.Generator().manual_seed(seed + 1 + j)  # noqa: E731

    # Fresh z ~ p(z|o) for every chunk.
    prior = torch.cat([label(policy.predict_action_chunk(batch, z=policy.sample_style(batch, gen(j)),
                                                         generator=gen(100 + j)), tmpl) for j in range(draws)])
    counts = torch.bincount(prior, minlength=3).float() / len(prior)
    # One z held, fresh diffusion noise: do the decodes agree?
    agree = []
    for j in range(draws // 2):
        z = policy.sample_style(batch, gen(200 + j))
        labels = torch.stack([label(policy.predict_action_chunk(batch, z=z, generator=gen(300 + 10 * j + r)), tmpl)
                              for r in range(draws)], dim=1)  # (N, draws)
        majority = torch.stack([torch.bincount(row[row < 2], minlength=2).argmax() for row in labels])
        agree.append((labels == majority.unsqueeze(1)).float().mean(1))
    # z inferred from a mode's chunk, decoded: that mode again?
    hits = []
    for m in range(2):
        z = policy.infer_style({**batch, "action": tmpl[:, m]})
        for r in range(draws // 2):
            hits.append((label(policy.predict_action_chunk(batch, z=z, generator=gen(500 + r)), tmpl) == m).float())
    return {
        "prior_mode_plus": counts[0].item(),
        "prior_mode_minus": counts[1].item(),
        "prior_minority": min(counts[0].item(), counts[1].item()),
        "prior_between": counts[2].item(),
        "held_z_agreement": torch.cat(agree).mean().item(),
        "posterior_hit": torch.cat(hits).mean().item(),
        "n_obs": n_obs,
        "draws": draws,
    }


def run(overrides: dict, steps: int, n_train_obs: int, seed: int) -> dict:
    t0 = time.perf_counter()
    policy = train(make_toy_policy(seed, **overrides), paired_dataset(n_train_obs, seed), steps, seed=seed)
    return {**evaluate(policy), "train_s": time.perf_counter() - t0}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--n-train-obs", type=int, default=128)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="*", default=None, help=f"labels among {list(ALTERNATIVES)}")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = {}
    for name, overrides in ALTERNATIVES.items():
        if a.only and name not in a.only:
            continue
        per_seed = [run(overrides, a.steps, a.n_train_obs, s) for s in a.seeds]
        mean = {k: sum(r[k] for r in per_seed) / len(per_seed) for k in per_seed[0]}
        rows[name] = {"overrides": overrides, "mean": mean, "per_seed": per_seed}
        print(f"{name:38s} minority {mean['prior_minority']:.2f}  between {mean['prior_between']:.2f}  "
              f"held-z {mean['held_z_agreement']:.2f}  posterior {mean['posterior_hit']:.2f}  "
              f"({mean['train_s']:.0f}s/run)", flush=True)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"steps": a.steps, "n_train_obs": a.n_train_obs, "seeds": a.seeds,
                                     "between_threshold": BETWEEN, "command": " ".join(["python"] + sys.argv),
                                     "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
