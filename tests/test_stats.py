import pytest

from lerobot_hybrid_act.stats import bootstrap_mean_ci, wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(45, 50)  # 90%
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-3)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_wilson_interval_contains_the_observed_rate_exactly_at_the_ends():
    for n in (1, 7, 50, 100, 150):
        assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0
        for k in range(n + 1):
            lo, hi = wilson_interval(k, n)
            assert lo <= k / n <= hi


def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    mean, lo, hi = bootstrap_mean_ci([1.0, 2.0, 3.0, 4.0] * 5)
    assert lo < mean == 2.5 < hi
    _, lo2, hi2 = bootstrap_mean_ci([1.0, 2.0, 3.0, 4.0] * 50)
    assert hi2 - lo2 < hi - lo
