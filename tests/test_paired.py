"""synthkit.metrics.paired_difference: the one paired test every before/after verdict uses."""
import math

import numpy as np
import pytest

from synthkit.metrics import paired_difference


def table(both, worse, better, neither):
    before = [1] * both + [1] * worse + [0] * better + [0] * neither
    after = [1] * both + [0] * worse + [1] * better + [0] * neither
    return before, after


def test_mcnemar_exact_p_by_hand():
    # 6 items got better, 1 worse: two-sided binomial p = 2 * (C(7,0) + C(7,1)) / 2^7 = 0.125
    r = paired_difference(*table(3, 1, 6, 10))
    assert r.binary and r.test == "McNemar exact"
    assert r.p == pytest.approx(0.125)
    assert (r.better, r.worse, r.n) == (6, 1, 20)
    assert r.mean == pytest.approx(5 / 20)
    # 8 better, 0 worse: p = 2 / 2^8
    r = paired_difference(*table(0, 0, 8, 2))
    assert r.p == pytest.approx(2 / 256)
    assert r.verdict() == "higher"
    # the items that did not flip carry no evidence: the same p with many more of them
    assert paired_difference(*table(50, 0, 8, 50)).p == pytest.approx(2 / 256)


def test_no_flip_is_no_evidence():
    r = paired_difference([1, 0, 1, 1], [1, 0, 1, 1])
    assert r.p == 1.0 and r.mean == 0 and r.low <= 0 <= r.high
    assert r.verdict() == "no clear difference"


def test_newcombe_interval_matches_wald_for_large_n():
    # at n = 4000 the score interval and the textbook Wald interval for paired rates agree
    both, worse, better, neither = 1200, 300, 420, 2080
    n = both + worse + better + neither
    r = paired_difference(*table(both, worse, better, neither))
    d = (better - worse) / n
    se = math.sqrt((better + worse) / n - d * d) / math.sqrt(n)
    assert r.low == pytest.approx(d - 1.96 * se, abs=0.002)
    assert r.high == pytest.approx(d + 1.96 * se, abs=0.002)


def test_newcombe_interval_stays_in_range_at_the_edges():
    r = paired_difference(*table(0, 0, 5, 0))          # 0/5 -> 5/5
    assert -1 <= r.low <= r.mean == 1.0 <= r.high <= 1
    assert r.low > 0


def test_bootstrap_covers_the_paired_t_interval_on_normal_data():
    rng = np.random.default_rng(1)
    before = rng.normal(5, 2, size=400)
    after = before + rng.normal(0.3, 1, size=400)       # correlated arms, as paired data are
    r = paired_difference(before, after, seed=3)
    d = after - before
    half = 1.966 * d.std(ddof=1) / math.sqrt(len(d))    # t(399) quantile 1.966
    assert not r.binary and r.n == 400
    assert r.mean == pytest.approx(d.mean())
    assert r.low == pytest.approx(d.mean() - half, abs=0.2 * half)
    assert r.high == pytest.approx(d.mean() + half, abs=0.2 * half)
    assert r.p < 0.001 and r.verdict() == "higher"


def test_bootstrap_null_is_not_significant_and_is_seeded():
    rng = np.random.default_rng(2)
    x = rng.normal(size=60)
    y = x + rng.normal(0, 1, size=60) * 0.0 + rng.permutation(rng.normal(0, 0.1, size=60))
    a = paired_difference(x, y, seed=0)
    assert a == paired_difference(x, y, seed=0)
    assert a.low < 0.05 and a.high > -0.05


def test_labels_and_one_line():
    r = paired_difference([0.5, 0.7, 0.9], [0.4, 0.6, 0.9], labels=("hard", "soft"))
    text = str(r)
    assert text.startswith("soft - hard = ") and "\n" not in text and "n = 3" in text


@pytest.mark.parametrize("before, after, words", [
    ([1, 0], [1], "same items"),
    ([], [], "at least one"),
    ([1.0, float("nan")], [1.0, 2.0], "NaN"),
])
def test_clear_errors(before, after, words):
    with pytest.raises(ValueError, match=words):
        paired_difference(before, after)
