"""Confidence intervals used wherever we report a number (README, quickstart, ablation)."""

import math

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (well-behaved at 0% and 100%, unlike the normal one)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # At 0% (100%) the lower (upper) bound is exactly 0 (1); float rounding would put it a hair inside, below the
    # observed rate, which then plots as a negative error bar.
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def bootstrap_mean_ci(values, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap CI of the mean."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_mean_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    return float(x.mean()), float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def paired_success_difference(first, second) -> dict:
    """The second's success rate minus the first's on the same episodes (paired outcomes, in the same order): the
    difference with its 95% bootstrap interval over episodes, the discordant counts (episodes only one of them
    succeeds in) and McNemar's exact two-sided p-value (a binomial test on the discordant episodes)."""
    a, b = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired outcomes need two equally long, non-empty 1-D sequences, got {a.shape} and {b.shape}")
    only_first, only_second = int((a & ~b).sum()), int((b & ~a).sum())
    diff, lo, hi = bootstrap_mean_ci(b.astype(float) - a.astype(float))
    n, k = only_first + only_second, min(only_first, only_second)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return {"difference": diff, "ci95": [lo, hi], "only_first": only_first, "only_second": only_second,
            "mcnemar_p": p}
