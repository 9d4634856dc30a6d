"""Metric definitions of the ablation.

Pure functions (unit-tested on hand-made arrays):

- ``chunk_mse(pred, gt, mask)``: mean squared error between a predicted chunk and the ground-truth chunk,
  averaged over valid (non-padded) time steps and action dimensions. The ablation evaluates it in the
  *standardised* action space of the training dataset ((a - mean) / std per action dimension, the same
  for every policy, whatever normalisation the policy itself uses), on the first ``fidelity_steps``
  steps of the chunk (the part every policy executes).
- ``best_of_k_mse(samples, gt, mask)``: min over K sampled chunks of ``chunk_mse`` (how close the *closest*
  sample gets: high-fidelity multimodal policies score low even when the mean is far off).
- ``mean_of_k_mse(samples, gt, mask)``: ``chunk_mse`` of the average of K chunks (the mode-averaged chunk).
- ``pairwise_diversity(samples)``: mean over pairs i < j of the RMS distance between chunks i and j
  (sqrt of the mean squared difference over steps and dims); 0 for a deterministic policy.
- ``action_smoothness(actions, chunk_len)``: for one executed trajectory (T, A):
  ``mean_step`` = mean_t ||a_{t+1} - a_t||_2; ``jerk_rms`` = sqrt(mean_t ||Δ³a_t||²) (third finite
  difference per control step); ``boundary_jump`` = mean ||a_t - a_{t-1}|| at the steps t = k·chunk_len
  where the action queue was refilled by a new chunk; ``interior_step`` = the same over all other steps;
  ``boundary_ratio`` = boundary_jump / interior_step (1 = chunk boundaries are invisible).
- ``nearest_centroid_loo_accuracy(Z, y)``: leave-one-out nearest-class-centroid accuracy of labels y
  from vectors Z (how well z predicts the route).
- ``kl_stats(kl_per_dim)``: mean total KL (nats, summed over latent terms) and number of *active*
  terms (batch-mean KL > ``ACTIVE_UNIT_KL``, the policy's own threshold).
- ``same_route_fraction(groups)``: fraction of groups (rollouts with one held z) whose known routes all agree.

Their evaluation on a trained checkpoint (rollouts, chunk sampling, latent probes) is in ``probes.py``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np



# ------------------------------------------------------------------------------------------ pure metrics
def _mask(gt: np.ndarray, mask) -> np.ndarray:
    if mask is None:
        return np.ones(gt.shape[0], dtype=bool)
    m = np.asarray(mask, dtype=bool).reshape(-1)
    if m.shape[0] != gt.shape[0]:
        raise ValueError(f"mask has {m.shape[0]} steps, chunk has {gt.shape[0]}")
    return m


def chunk_mse(pred, gt, mask=None) -> float:
    """MSE over valid steps (``mask`` True = valid) and action dims of one (T, A) chunk."""
    p, g = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ")
    m = _mask(g, mask)
    if not m.any():
        return float("nan")
    return float(((p[m] - g[m]) ** 2).mean())


def best_of_k_mse(samples, gt, mask=None) -> float:
    """min_k chunk_mse(samples[k], gt) for samples (K, T, A)."""
    return float(min(chunk_mse(s, gt, mask) for s in np.asarray(samples)))


def mean_of_k_mse(samples, gt, mask=None) -> float:
    """chunk_mse(mean_k samples[k], gt)."""
    return chunk_mse(np.asarray(samples, dtype=np.float64).mean(0), gt, mask)


def pairwise_diversity(samples) -> float:
    """Mean RMS distance between every pair of K chunks (K, T, A); 0 if K < 2."""
    s = np.asarray(samples, dtype=np.float64)
    if len(s) < 2:
        return 0.0
    d = [math.sqrt(((s[i] - s[j]) ** 2).mean()) for i, j in itertools.combinations(range(len(s)), 2)]
    return float(np.mean(d))


def action_smoothness(actions, chunk_len: int | None = None) -> dict:
    """Smoothness of one executed action trajectory (T, A); see the module docstring."""
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    out = {"mean_step": float("nan"), "jerk_rms": float("nan"), "boundary_jump": float("nan"),
           "interior_step": float("nan"), "boundary_ratio": float("nan"), "T": int(len(a))}
    if len(a) < 2:
        return out
    steps = np.linalg.norm(np.diff(a, axis=0), axis=1)  # steps[t-1] = ||a_t - a_{t-1}||
    out["mean_step"] = float(steps.mean())
    if len(a) >= 4:
        j = np.diff(a, n=3, axis=0)
        out["jerk_rms"] = float(math.sqrt((j**2).sum(1).mean()))
    if chunk_len:
        t = np.arange(1, len(a))
        b = t % chunk_len == 0
        if b.any():
            out["boundary_jump"] = float(steps[b].mean())
        if (~b).any():
            out["interior_step"] = float(steps[~b].mean())
        if b.any() and (~b).any() and out["interior_step"] > 0:
            out["boundary_ratio"] = out["boundary_jump"] / out["interior_step"]
    return out


def nearest_centroid_loo_accuracy(Z, y) -> float:
    """Leave-one-out nearest-centroid accuracy (labels < 0 are ignored); nan if < 2 classes."""
    Z = np.asarray(Z, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    keep = y >= 0
    Z, y = Z[keep], y[keep]
    classes = np.unique(y)
    if len(classes) < 2 or len(y) < 3:
        return float("nan")
    correct = 0
    for i in range(len(y)):
        others = np.arange(len(y)) != i
        best, best_d = None, np.inf
        for c in classes:
            sel = others & (y == c)
            if not sel.any():
                continue
            d = np.linalg.norm(Z[i] - Z[sel].mean(0))
            if d < best_d:
                best, best_d = c, d
        correct += int(best == y[i])
    return correct / len(y)


def kl_stats(kl_per_dim) -> dict:
    """kl_per_dim (N, d) nats -> {kl: mean over N of the sum over dims, active_dims, per_dim}."""
    from lerobot_hybrid_act.modeling_hybrid_act import ACTIVE_UNIT_KL as ACTIVE_KL

    k = np.asarray(kl_per_dim, dtype=np.float64)
    per_dim = k.mean(0)
    return {"kl": float(k.sum(1).mean()), "active_dims": int((per_dim > ACTIVE_KL).sum()),
            "latent_dim": int(k.shape[1]), "per_dim": [float(v) for v in per_dim]}


def same_route_fraction(groups) -> float:
    """Fraction of groups (lists of route labels) whose known labels (>= 0) are all equal; nan if none usable."""
    usable = [[r for r in g if r >= 0] for g in groups]
    usable = [g for g in usable if len(g) >= 2]
    if not usable:
        return float("nan")
    return float(np.mean([len(set(g)) == 1 for g in usable]))


def summarize(values) -> dict:
    """mean with a 95% bootstrap CI over the items (nan-free), and n."""
    from lerobot_hybrid_act.stats import bootstrap_mean_ci

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "ci": None, "n": 0}
    m, lo, hi = bootstrap_mean_ci(v)
    return {"mean": m, "ci": [lo, hi], "n": int(v.size)}
