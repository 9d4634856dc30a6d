import pytest

from lerobot_hybrid_act.stats import bootstrap_mean_ci, paired_success_difference, wilson_interval


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


def test_paired_success_difference_counts_discordant_episodes_and_mcnemar_p():
    # 20 episodes: 10 both succeed, 2 both fail, 1 only the first, 7 only the second.
    first = [True] * 10 + [False] * 2 + [True] + [False] * 7
    second = [True] * 10 + [False] * 2 + [False] + [True] * 7
    r = paired_success_difference(first, second)
    assert (r["only_first"], r["only_second"]) == (1, 7)
    assert r["difference"] == pytest.approx(6 / 20)
    assert r["mcnemar_p"] == pytest.approx(2 * (1 + 8) / 2**8)  # binomial(8, 1/2): P(X <= 1) twice
    assert r["ci95"][0] <= r["difference"] <= r["ci95"][1]
    swapped = paired_success_difference(second, first)
    assert swapped["difference"] == pytest.approx(-r["difference"]) and swapped["mcnemar_p"] == r["mcnemar_p"]
    same = paired_success_difference(first, first)
    assert same["difference"] == 0 and same["mcnemar_p"] == 1.0 and same["ci95"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="equally long"):
        paired_success_difference(first, second[:-1])
