"""Model collapse: what happens when each model learns only from the one before it.

Fit a model to data, sample a new data set from the model, fit the next model to that,
and repeat. Every fit is made from a finite sample, so every generation inherits the last
one's estimation error and adds its own; nothing pulls the chain back toward the truth.
Shumailov et al. (2024, *Nature*: "AI models collapse when trained on recursively
generated data") show the tails of the original distribution disappear first and the
learned distribution drifts toward a point of small variance. Gerstgrasser et al. (2024,
"Is model collapse inevitable?") show the outcome depends on what happens to the old data:
**replacing** it with each generation's samples collapses, **accumulating** real and
synthetic data keeps the error bounded. Kazdan et al. (2024, "Collapse or thrive?") add a
fixed-budget middle road, **accumulate-and-subsample**: the pool grows, each fit sees only
as many points as the first one did.

Three settings, from exact to real:

* `gaussian_recursion`: fit a normal distribution (mean and variance), sample N, refit.
  The replace regime has closed forms (`expected_variance`, `typical_variance`,
  `half_life`, `expected_mean_error`) that the simulation is tested against. Generation 0
  is itself a fit (to the real points), so generation g is the (g+1)-th fit: the closed
  forms carry the exponent g+1.
* `categorical_recursion`: a Zipf-like distribution over categories, resampled N times per
  generation and re-estimated from the counts. A category drawn zero times is gone for
  good; one generation keeps category i with probability 1 - (1 - p_i)^N
  (`survival_probability`), so the rare ones go first.
* `run_chain`: tiny language models (``synthkit.train.tiny``) trained from scratch on real
  Wikipedia at generation 0 and on their parent's samples afterwards, under replace,
  accumulate, or a fixed share of fresh real text, optionally dropping the most confident
  samples; `two_teachers` trains a student on two separate lineages' samples. Each
  generation is measured by `describe_generation`: perplexity on held-out real text (per
  text, for paired tests), and, on the first W words of its samples (the same W for every
  generation, since more text covers more words), `tail_coverage` (how many of the real
  text's rare words the samples still use), distinct-2 and `unigram_entropy`.
  `seed_gap` turns the spread of >= 3 generation-0 seeds into a noise threshold.
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import SynthkitError
from .metrics import distinct_n

REGIMES = ("replace", "accumulate", "accumulate-subsample")
LM_REGIMES = ("replace", "accumulate", "fresh")


class CollapseError(SynthkitError, ValueError):
    """A collapse experiment was asked for something it cannot do (the message says the fix)."""


def _check_regime(regime: str, allowed: Sequence[str]) -> str:
    if regime not in allowed:
        raise CollapseError(f"unknown regime {regime!r}; choose one of {', '.join(allowed)}")
    return regime


def _check_sizes(n: int, generations: int, runs: int = 1) -> None:
    if int(n) != n or n < 2:
        raise CollapseError(f"n={n!r}: each generation needs at least 2 samples to fit a variance")
    if int(generations) != generations or generations < 0:
        raise CollapseError(f"generations={generations!r}: give a whole number >= 0")
    if int(runs) != runs or runs < 1:
        raise CollapseError(f"runs={runs!r}: give a whole number >= 1")


def _digamma(x: float) -> float:
    """The digamma function (d/dx log Gamma): shift x above 6, then the asymptotic series."""
    out = 0.0
    while x < 6:
        out -= 1 / x
        x += 1
    f = 1 / (x * x)
    return out + math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))))


# ---------------------------------------------------------------------------------------
# The Gaussian recursion
# ---------------------------------------------------------------------------------------
# Generation 0 fits N real points from N(mu, sigma^2). Generation g >= 1 draws N points from
# the fit of generation g-1 and fits again, on:
#   replace               the N new points only;
#   accumulate            every point so far (the real N plus all synthetic batches);
#   accumulate-subsample  N points drawn without replacement from that growing pool.
# "Fit" is maximum likelihood (ddof=0: divide by N), as training a model by likelihood does;
# ddof=1 gives the unbiased variance, whose *expectation* never moves, yet whose typical
# value still goes to zero (see typical_variance).


def gaussian_step(data, n: int, regime: str = "replace", rng=None, ddof: int = 0) -> np.ndarray:
    """One generation: fit a normal to `data`, draw `n` points from the fit, and return the
    next generation's training data (the new points under "replace"; `data` followed by the
    new points under "accumulate"). `rng` is a seed or a numpy Generator."""
    _check_regime(regime, ("replace", "accumulate"))
    data = np.asarray(data, dtype=float)
    if data.ndim != 1 or data.size < 2:
        raise CollapseError("data must be a flat array of at least 2 numbers")
    rng = np.random.default_rng(rng)
    new = rng.normal(data.mean(), data.std(ddof=ddof), size=int(n))
    return new if regime == "replace" else np.concatenate([data, new])


def gaussian_recursion(n: int, generations: int, *, regime: str = "replace", runs: int = 1,
                       mu: float = 0.0, sigma: float = 1.0, ddof: int = 0, seed: int = 0) -> dict:
    """Run `runs` independent chains of the fit-sample-refit recursion.

    Returns {"mean": array (runs, generations+1), "variance": same shape, plus the
    settings}: column g is the fit of generation g (column 0 is the fit to real data).
    All chains advance together as numpy arrays, so thousands of runs cost a second.
    """
    _check_regime(regime, REGIMES)
    _check_sizes(n, generations, runs)
    rng = np.random.default_rng(seed)
    means = np.empty((runs, generations + 1))
    variances = np.empty_like(means)
    data = rng.normal(mu, sigma, size=(runs, n))          # generation 0: real data
    pool = data                                           # what has accumulated so far
    for g in range(generations + 1):
        if g > 0:
            new = rng.normal(means[:, g - 1:g], np.sqrt(variances[:, g - 1:g]), size=(runs, n))
            if regime == "replace":
                data = new
            else:
                pool = np.concatenate([pool, new], axis=1)
                if regime == "accumulate":
                    data = pool
                else:  # a fresh subset of N from the pool, without replacement, per run
                    pick = np.argpartition(rng.random(pool.shape), n - 1, axis=1)[:, :n]
                    data = np.take_along_axis(pool, pick, axis=1)
        means[:, g] = data.mean(axis=1)
        variances[:, g] = data.var(axis=1, ddof=ddof)
    return {"mean": means, "variance": variances, "n": n, "regime": regime, "ddof": ddof,
            "mu": mu, "sigma": sigma, "runs": runs}


def expected_variance(n: int, generations: int, *, sigma: float = 1.0, ddof: int = 0) -> np.ndarray:
    """E[fitted variance] at generations 0..G under **replace**, in closed form:
    sigma^2 * ((N-1)/(N-ddof))^(g+1) at generation g.

    Given the parent's variance v, the fit to N of its samples is v * chi2(N-1) / (N - ddof),
    so each fit multiplies the expectation by (N-1)/(N-ddof): by (N-1)/N for the
    maximum-likelihood fit (ddof=0), by exactly 1 for the unbiased one (ddof=1). Generation 0
    is already one fit (to the real points), so generation g has had g+1 of them.
    """
    _check_sizes(n, generations)
    factor = (n - 1) / (n - ddof)
    return sigma ** 2 * factor ** np.arange(1, generations + 2)


def _log_typical_factor(n: int, ddof: int) -> float:
    """E[log(fitted variance / parent's variance)] for one fit: E[log chi2(N-1)] - log(N - ddof),
    with E[log chi2(k)] = digamma(k/2) + log 2."""
    return _digamma((n - 1) / 2) + math.log(2) - math.log(n - ddof)


def typical_variance(n: int, generations: int, *, sigma: float = 1.0, ddof: int = 0) -> np.ndarray:
    """exp(E[log fitted variance]) at generations 0..G under **replace**: the geometric mean
    over chains, which the median chain follows closely. In closed form it is
    sigma^2 * exp((g+1) * l) at generation g, l = `_log_typical_factor` (g+1 fits, as in
    `expected_variance`). l < 0 even for ddof=1, where it is about -1/(N-1): unbiased in
    expectation, the variance still shrinks in almost every chain and goes to zero in the
    limit. For the maximum-likelihood fit (ddof=0) the bias adds about -1/N, so l is about
    -1/N - 1/(N-1), roughly -2/N.
    """
    _check_sizes(n, generations)
    return sigma ** 2 * np.exp(_log_typical_factor(n, ddof) * np.arange(1, generations + 2))


def half_life(n: int, *, ddof: int = 0) -> float:
    """Generations for the typical variance (`typical_variance`) to halve under **replace**:
    ln 2 / -l, the same from any generation to the one that many later, since the decay is
    exponential. From the approximations of l in `typical_variance`: about N * ln 2 / 2 for
    the maximum-likelihood fit (6.6 for N = 20; within 5% of it from N = 20 on), about
    (N-1) * ln 2 for the unbiased fit (12.9 for N = 20). Either way, proportional to N.
    (Measured from the true sigma^2, the typical variance is down to half at generation
    half_life - 1, because generation 0 is already one fit.)
    """
    _check_sizes(n, 0)
    return math.log(2) / -_log_typical_factor(n, ddof)


def expected_mean_error(n: int, generations: int, *, regime: str = "replace", sigma: float = 1.0,
                        ddof: int = 0) -> np.ndarray:
    """E[(fitted mean - mu)^2] at generations 0..G.

    Each generation's new points are centred on the parent's mean plus fresh noise of
    variance v/N. Under **replace** the noise adds up like a random walk: the error grows
    linearly in g (exactly sigma^2 (g+1)/N for ddof=1; for ddof=0 each step's v has shrunk
    by (N-1)/N). Under **accumulate** the g-th batch is one of g+1 equal batches, so its
    noise enters divided by g+1: the error is sigma^2/N * sum 1/j^2 over j = 1..g+1, bounded
    by sigma^2/N * pi^2/6 however long the chain (Gerstgrasser et al.'s bound, in its simplest
    case; it treats each parent's variance as sigma^2, so it is close, not exact).
    """
    _check_regime(regime, ("replace", "accumulate"))
    _check_sizes(n, generations)
    g = np.arange(generations + 1)
    if regime == "replace":
        steps = np.concatenate([[sigma ** 2], expected_variance(n, generations, sigma=sigma, ddof=ddof)[:-1]])
        return np.cumsum(steps) / n
    return sigma ** 2 / n * np.cumsum(1.0 / (g + 1) ** 2)


# ---------------------------------------------------------------------------------------
# The tail goes first: resampling a categorical distribution
# ---------------------------------------------------------------------------------------


def zipf_probs(k: int, s: float = 1.1) -> np.ndarray:
    """p_i proportional to 1 / i^s for i = 1..k: a few common categories and a long tail,
    the shape of word frequencies in real text."""
    if int(k) != k or k < 1:
        raise CollapseError(f"k={k!r}: give the number of categories, a whole number >= 1")
    p = 1.0 / np.arange(1, k + 1) ** float(s)
    return p / p.sum()


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isfinite(p).all():
        raise CollapseError("probs must be a flat, non-empty array of probabilities >= 0")
    if abs(p.sum() - 1) > 1e-6:
        raise CollapseError(f"probs sum to {p.sum():.6g}, not 1: divide by their sum first")
    return p


def survival_probability(probs, n: int) -> np.ndarray:
    """Chance that each category is drawn at least once in `n` samples: 1 - (1 - p)^n,
    computed as -expm1(n log1p(-p)) so a tiny p does not round to zero."""
    p = np.clip(np.asarray(probs, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore"):  # p = 1: log1p(-1) = -inf, and the category surely survives
        return -np.expm1(n * np.log1p(-p))


def expected_survivors(probs, n: int) -> float:
    """Expected number of categories that appear in `n` samples from `probs`: the sum of
    their survival probabilities (linearity of expectation; no independence needed)."""
    return float(survival_probability(_check_probs(probs), n).sum())


def categorical_recursion(probs, n: int, generations: int, *, runs: int = 1, seed: int = 0) -> dict:
    """Resample a categorical distribution: draw `n` samples, re-estimate the probabilities
    from the counts (maximum likelihood), repeat.

    Returns {"alive": array (runs, generations+1) of categories with non-zero probability
    (column 0 is the truth), "first": array (runs, k) of booleans, which categories survived
    generation 1, "final": (runs, k) probabilities after the last generation}.
    A category drawn zero times has probability zero from then on: it never comes back.
    """
    p = _check_probs(probs)
    _check_sizes(n, generations, runs)
    rng = np.random.default_rng(seed)
    current = np.tile(p, (runs, 1))
    alive = np.empty((runs, generations + 1), dtype=int)
    alive[:, 0] = (p > 0).sum()
    first = None
    for g in range(1, generations + 1):
        counts = rng.multinomial(n, current)
        current = counts / n
        alive[:, g] = (counts > 0).sum(axis=1)
        if first is None:
            first = counts > 0
    if first is None:
        first = np.tile(p > 0, (runs, 1))
    return {"alive": alive, "first": first, "final": current, "n": n, "probs": p}


# ---------------------------------------------------------------------------------------
# Measuring a language model's samples
# ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+")


def words(text: str) -> list[str]:
    """The words of `text`: runs of letters (any alphabet), lowercased. Digits and
    punctuation separate words and are not words themselves."""
    return _WORD.findall(text.lower())


def word_counts(texts: Sequence[str]) -> Counter:
    """How often each word occurs across `texts`."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(words(t))
    return counts


def rare_words(texts: Sequence[str], min_count: int = 2, max_count: int = 5) -> set[str]:
    """The tail of the real text: words that occur between `min_count` and `max_count`
    times across `texts`. (Words seen once are left out by default: a model has barely a
    chance to learn them, and they are as much typos and names as vocabulary.)"""
    if min_count < 1 or max_count < min_count:
        raise CollapseError(f"need 1 <= min_count <= max_count, got {min_count} and {max_count}")
    return {w for w, c in word_counts(texts).items() if min_count <= c <= max_count}


def first_words(texts: Sequence[str], budget: int | None = None) -> list[list[str]]:
    """The `words` of each text, in order, stopping after `budget` words in all (the last text
    kept is cut short; texts after it are left out). None keeps every word.

    Later generations write shorter or longer texts than the first, and more words cover
    more of the tail, repeat more word pairs and show more distinct words: measures of a
    sample are only comparable at the same number of words, so every generation is measured
    on its first `budget` words."""
    out = [words(t) for t in texts]
    if budget is None:
        return out
    if int(budget) != budget or budget < 1:
        raise CollapseError(f"budget={budget!r}: give a whole number of words >= 1, or None")
    cut, left = [], int(budget)
    for w in out:
        if left <= 0:
            break
        cut.append(w[:left])
        left -= len(cut[-1])
    if left > 0:
        raise CollapseError(f"the texts hold {budget - left} words, fewer than the budget of {budget}: "
                            f"draw more samples (ChainSettings.measure_words tops them up) or lower the budget")
    return cut


def coverage_items(texts: Sequence[str], rare: set[str], budget: int | None = None) -> np.ndarray:
    """For each of the `rare` words, in sorted order, 1 if it appears in the first `budget` words
    of `texts`, else 0: the items of a paired test between two sample sets (McNemar on the
    words one set uses and the other does not)."""
    seen = {w for ws in first_words(texts, budget) for w in ws}
    return np.array([w in seen for w in sorted(rare)], dtype=float)


def tail_coverage(texts: Sequence[str], rare: set[str], budget: int | None = None) -> float:
    """Share of the `rare` words that appear at least once in the first `budget` words of
    `texts` (all of them when `budget` is None; 0.0 when `rare` is empty). Compare sample sets
    only at the same budget: more text covers more words."""
    return float(coverage_items(texts, rare, budget).mean()) if rare else 0.0


def unigram_entropy(texts: Sequence[str]) -> float:
    """Shannon entropy, in bits, of the word distribution pooled over `texts`: how many
    yes/no questions a typical next word costs. A model that repeats a few words scores
    low; 0.0 when there are no words."""
    counts = np.array(list(word_counts(texts).values()), dtype=float)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def coverage_by_band(texts: Sequence[str], counts: Counter,
                     bands: Sequence[tuple[int, int]] = ((1, 1), (2, 5), (6, 20), (21, 100), (101, 10**9)),
                     budget: int | None = None) -> dict[str, float]:
    """`tail_coverage` for each band of real-text frequency (counts from `word_counts` of the
    real text), on the first `budget` words of `texts`: the language version of "which
    categories survived", common to rare."""
    out = {}
    for lo, hi in bands:
        band = {w for w, c in counts.items() if lo <= c <= hi}
        label = f"{lo}" if lo == hi else (f"{lo}+" if hi >= 10**9 else f"{lo}-{hi}")
        out[label] = tail_coverage(texts, band, budget)
    return out


# ---------------------------------------------------------------------------------------
# Noise: how far apart two runs land by the training seed alone
# ---------------------------------------------------------------------------------------
# One |seed0 - seed1| is a poor threshold: a third run, with nothing changed, lands farther
# from seed 0 than that half the time. Two times the sd of 3 seeds is crossed about a
# quarter of the time, because 3 seeds estimate the sd itself badly. The honest rule is
# Student's: the sd of k seeds, times sqrt(2) (a difference of two single runs), times the
# t quantile with k-1 degrees of freedom (4.30 for 3 seeds, 3.18 for 4, 1.96 for infinitely
# many). tests/test_collapse.py measures all three rules' false-alarm rates.


def _t_within(t: float, df: int) -> float:
    """P(|T| <= t) for Student's T with a whole number `df` of degrees of freedom, in closed
    form (Abramowitz & Stegun 26.7.3 and 26.7.4): a finite series in cos(theta)^2,
    theta = atan(t / sqrt(df))."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    term = series = 1.0
    if df % 2 == 0:
        for k in range(1, df // 2):
            term *= (2 * k - 1) / (2 * k) * c2
            series += term
        return math.sin(theta) * series
    for k in range(1, (df - 1) // 2):
        term *= 2 * k / (2 * k + 1) * c2
        series += term
    inner = math.sin(theta) * math.cos(theta) * series if df > 1 else 0.0
    return 2 / math.pi * (theta + inner)


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """The t with P(|T| <= t) = `confidence` for Student's T with `df` degrees of freedom
    (two-sided: 12.71, 4.30, 3.18 for df = 1, 2, 3 at 95%), by bisection on `_t_within`."""
    if isinstance(df, bool) or int(df) != df or df < 1:
        raise CollapseError(f"df={df!r}: give a whole number of degrees of freedom >= 1")
    if not 0 < confidence < 1:
        raise CollapseError(f"confidence={confidence!r} must be between 0 and 1")
    lo, hi = 0.0, 1.0
    while _t_within(hi, int(df)) < confidence:
        lo, hi = hi, hi * 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_within(mid, int(df)) < confidence else (lo, mid)
    return (lo + hi) / 2


def seed_gap(values, confidence: float = 0.95) -> float:
    """How far apart two single runs may land by their seeds alone: at 95%, two runs that differ
    only in their seed differ by more than this about 1 time in 20 (if seed noise is roughly
    normal; a little less often when one of the two runs is itself among the `values`).

    `values` is one measure of >= 3 runs that differ only in their seed (the lab's generation-0
    models). Their sd (ddof=1) estimates one run's seed noise sigma; a difference of two runs has
    sd sqrt(2) sigma; and because sigma comes from only k runs, the multiplier is Student's t
    quantile with k-1 degrees of freedom, not 1.96. With 3 seeds that is 6.1 sd: few seeds buy
    a wide threshold, and that is the honest price of few seeds.
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size < 3 or not np.isfinite(v).all():
        raise CollapseError(f"seed_gap needs the measure of at least 3 seeds (finite numbers), got {v.size}: "
                            f"one difference of two seeds is crossed by chance half the time")
    return t_quantile(v.size - 1, confidence) * math.sqrt(2) * float(v.std(ddof=1))


# ---------------------------------------------------------------------------------------
# Language models trained on their parent's text
# ---------------------------------------------------------------------------------------
# Generation 0 is a tiny GPT trained from scratch on real Wikipedia passages. Each later
# generation is a fresh model trained, for the same number of steps (equal compute), on:
#   replace     n texts sampled from its parent;
#   accumulate  the real passages plus every generation's samples so far;
#   fresh       (1 - share) of n from its parent plus share of n real passages never used before.
# `reject_share` adds a mitigation to any regime: drop that share of the lowest-perplexity
# (most confident) samples, drawing extra to keep n. `two_teachers` is the other one: a
# student learns from two lineages that each train only on their own samples.

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9À-Ý\"'(])")


def wiki_passages(max_words: int = 60, seed: int = 0, lang: str = "en") -> list[str]:
    """Every Wikipedia summary cut to its leading whole sentences (at most `max_words` words,
    at least the first sentence), shuffled with `seed`: split the list for training,
    held-out and fresh text, and no passage is in two of them."""
    import random

    from .data import wiki_summaries

    out = []
    for record in wiki_summaries(lang):
        kept: list[str] = []
        for sentence in _SENTENCE.split(record["text"].strip()):
            if kept and len(" ".join(kept + [sentence]).split()) > max_words:
                break
            kept.append(sentence)
        if kept:
            out.append(" ".join(kept))
    random.Random(seed).shuffle(out)
    return out


def _tiny():
    from .train import tiny  # torch is imported only when a chain runs
    return tiny


@dataclass
class ChainSettings:
    """The size of every generation: `n_texts` texts in each corpus (real at generation 0,
    sampled afterwards), `steps` training steps per model (the same every generation),
    and how samples are drawn (up to `max_tokens` tokens at `temperature`, no top-k: the
    parent's whole distribution, tail included). `measure_words` is W: every generation's
    samples are measured on their first W words, topped up with more samples when the n
    texts hold fewer (None: measure all n texts, whatever their length)."""

    n_texts: int
    steps: int
    batch_size: int = 32
    lr: float = 3e-3
    max_tokens: int = 96
    temperature: float = 1.0
    sample_batch: int = 64
    measure_words: int | None = None

    def __post_init__(self):
        for name in ("n_texts", "steps", "batch_size", "max_tokens", "sample_batch", "measure_words"):
            value = getattr(self, name)
            if name == "measure_words" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CollapseError(f"ChainSettings.{name} must be a whole number >= 1; got {value!r}")


def _sample(model, tokenizer, settings: ChainSettings, n: int, seed: int) -> list[str]:
    return _tiny().sample(model, tokenizer, n, max_tokens=settings.max_tokens, temperature=settings.temperature,
                          seed=seed, batch_size=settings.sample_batch, progress=False)


def _top_up(model, tokenizer, settings: ChainSettings, texts: list[str], seed: int) -> list[str]:
    """`texts`, followed by further samples until they hold `settings.measure_words` words."""
    need = settings.measure_words
    have = sum(len(words(t)) for t in texts)
    extra = 0
    while need is not None and have < need:
        if extra >= 4 * max(len(texts), settings.sample_batch):
            raise CollapseError(f"{len(texts) + extra} samples hold only {have} words, short of "
                                f"measure_words={need}: the model writes almost nothing; lower measure_words")
        more = _sample(model, tokenizer, settings, settings.sample_batch, seed + 7919 + extra)
        texts, have, extra = texts + more, have + sum(len(words(t)) for t in more), extra + len(more)
    return texts


def draw(model, tokenizer, settings: ChainSettings, n: int, *, seed: int = 0,
         reject_share: float = 0.0) -> tuple[list[str], list[str]]:
    """The samples `model` is measured on, and the `n` the next generation trains on.

    The measured samples are the first n drawn (plus more, when they hold fewer than
    `settings.measure_words` words). Without rejection the training set is those first n.
    With `reject_share` s, n / (1 - s) samples are drawn and the training set keeps the n with
    the *highest* perplexity under the model itself, in their drawn order: the most confident
    s are dropped."""
    if not 0 <= reject_share < 1:
        raise CollapseError(f"reject_share={reject_share!r} must be in [0, 1)")
    total = math.ceil(n / (1 - reject_share)) if reject_share else n
    texts = _sample(model, tokenizer, settings, total, seed)
    measured = _top_up(model, tokenizer, settings, texts[:n], seed)
    if not reject_share:
        return measured, texts
    ppl = np.array(_tiny().text_perplexities(model, tokenizer, [t if t.strip() else " " for t in texts]))
    keep = np.sort(np.argsort(-np.nan_to_num(ppl, nan=np.inf), kind="stable")[:n])
    return measured, [texts[i] for i in keep]


def held_out_log_ppl(model, tokenizer, eval_texts: Sequence[str]) -> np.ndarray:
    """Each held-out real text's log-perplexity under `model`: its mean loss per token, in nats.
    Kept per text so that two models can be compared on the same texts (a paired test); the
    lab's perplexity is exp of their mean, every text counting once."""
    losses = _tiny().token_losses(model, tokenizer, list(eval_texts))
    if any(len(l) == 0 for l in losses):
        raise CollapseError("every held-out text needs at least one token: drop the empty ones")
    return np.array([float(l.mean()) for l in losses])


def describe_generation(samples: Sequence[str], *, doc_log_ppl=None, rare: set[str] | None = None,
                        budget: int | None = None) -> dict:
    """The numbers the lab follows per generation: perplexity on held-out real text (exp of the
    mean of `doc_log_ppl`, when given) and, on the first `budget` words of the samples, tail
    coverage of the real text's rare words, distinct-2 and unigram entropy (both on the words
    as `words` splits them), plus the samples' mean length in words."""
    out = {}
    if doc_log_ppl is not None:
        out["log_ppl"] = float(np.mean(doc_log_ppl))
        out["perplexity"] = math.exp(out["log_ppl"])
    cut = [" ".join(ws) for ws in first_words(samples, budget)]
    out["tail_coverage"] = tail_coverage(cut, rare or set())
    out["distinct_2"] = distinct_n(cut, 2)
    out["entropy"] = unigram_entropy(cut)
    out["mean_words"] = float(np.mean([len(words(t)) for t in samples])) if samples else 0.0
    return out


def _train(texts, tokenizer, config, settings: ChainSettings, seed: int, desc: str, progress: bool):
    return _tiny().pretrain(texts, tokenizer=tokenizer, config=config, steps=settings.steps,
                            batch_size=settings.batch_size, lr=settings.lr, seed=seed,
                            progress=progress, desc=desc)


def _measure(model, tokenizer, settings: ChainSettings, eval_texts, rare, samples) -> tuple[dict, np.ndarray]:
    doc = held_out_log_ppl(model, tokenizer, eval_texts)
    return describe_generation(samples, doc_log_ppl=doc, rare=rare, budget=settings.measure_words), doc


def generation_zero(real_texts: Sequence[str], eval_texts: Sequence[str], rare: set[str], *, tokenizer,
                    config, settings: ChainSettings, seed: int = 0, progress: bool = True) -> dict:
    """Train a generation-0 model on the real passages, draw its `n_texts` samples and
    measure them. Every regime starts from the seed-0 model; the others measure the noise."""
    start = time.perf_counter()
    run = _train(list(real_texts), tokenizer, config, settings, seed, f"generation 0 (real, seed {seed})", progress)
    samples, corpus = draw(run.model, tokenizer, settings, settings.n_texts, seed=seed + 50)
    measures, doc = _measure(run.model, tokenizer, settings, eval_texts, rare, samples)
    row = {"regime": "real", "generation": 0, "seed": seed, **measures,
           "train_texts": len(real_texts), "real_share": 1.0, "seconds": time.perf_counter() - start,
           "tokens_per_s": run.tokens_per_s}
    return {"model": run.model, "samples": samples, "corpus": corpus, "row": row, "doc_log_ppl": doc, "run": run}


def _next_corpus(regime: str, synthetic: list[str], history: list[list[str]], real: list[str],
                 fresh_pool: Sequence[str], fresh_used: int, fresh_share: float) -> tuple[list[str], int, int]:
    """(training texts, real texts among them, fresh texts used so far) for one generation."""
    if regime == "replace":
        return list(synthetic), 0, fresh_used
    if regime == "accumulate":
        return list(real) + [t for batch in history for t in batch], len(real), fresh_used
    k = round(fresh_share * len(synthetic))
    if fresh_used + k > len(fresh_pool):
        raise CollapseError(f"the fresh regime needs {fresh_used + k} fresh real texts but fresh_pool has "
                            f"{len(fresh_pool)}: pass a longer fresh_pool or a smaller fresh_share")
    fresh = list(fresh_pool[fresh_used:fresh_used + k])
    return list(synthetic[:len(synthetic) - k]) + fresh, k, fresh_used + k


def run_chain(start: dict, real_texts: Sequence[str], eval_texts: Sequence[str], rare: set[str], *,
              regime: str, generations: int, tokenizer, config, settings: ChainSettings,
              fresh_pool: Sequence[str] = (), fresh_share: float = 0.2, reject_share: float = 0.0,
              name: str | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Generations 1..`generations` of one regime, from the generation-0 model in `start` (what
    `generation_zero` returns).

    Returns {"rows": one dict of measurements per generation (generation 0 included),
    "samples": each generation's measured samples, "corpora": what each generation's child
    trains on (before the regime adds real text), "doc_log_ppl": each generation's per-text
    log-perplexities on `eval_texts`, "model": the last generation's model}.
    """
    _check_regime(regime, LM_REGIMES)
    if not 0 <= fresh_share < 1:
        raise CollapseError(f"fresh_share={fresh_share!r} must be in [0, 1)")
    name = name or regime
    model, n = start["model"], settings.n_texts
    synthetic = start["corpus"][:n]
    if reject_share:  # the gen-0 parent's training set, filtered like every later one
        synthetic = draw(model, tokenizer, settings, n, seed=seed + 70, reject_share=reject_share)[1]
    rows = [{**start["row"], "regime": name, "generation": 0}]
    samples, corpora, docs = [start["samples"]], [synthetic], [start["doc_log_ppl"]]
    fresh_used = 0
    for g in range(1, generations + 1):
        began = time.perf_counter()
        corpus, real_count, fresh_used = _next_corpus(regime, synthetic, corpora, list(real_texts),
                                                      fresh_pool, fresh_used, fresh_share)
        model = _train(corpus, tokenizer, config, settings, seed + 100 * g, f"{name}: generation {g}", progress).model
        measured, synthetic = draw(model, tokenizer, settings, n, seed=seed + 100 * g + 50, reject_share=reject_share)
        measures, doc = _measure(model, tokenizer, settings, eval_texts, rare, measured)
        rows.append({"regime": name, "generation": g, **measures, "train_texts": len(corpus),
                     "real_share": real_count / len(corpus), "seconds": time.perf_counter() - began})
        samples.append(measured)
        corpora.append(synthetic)
        docs.append(doc)
    return {"rows": rows, "samples": samples, "corpora": corpora, "doc_log_ppl": docs, "model": model}


def two_teachers(lineages: Sequence[dict], eval_texts: Sequence[str], rare: set[str], *, generations: int,
                 tokenizer, config, settings: ChainSettings, name: str = "two teachers", seed: int = 0,
                 progress: bool = True) -> dict:
    """A student of two teachers from separate lineages, at generations 1..`generations`.

    `lineages` are two `run_chain` results (replace, from two generation-0 models), run for at
    least `generations` - 1 generations: each trains only on its own lineage's samples, so the
    two make their errors independently. The student of generation g trains on n/2 of lineage
    A's generation-(g-1) corpus and n/2 of lineage B's: the same n texts and steps as a
    one-teacher child (the replace chain's generation g, trained on n of A's), so only the
    number of independent sources differs. Its samples feed no one: the lineages never mix.
    Returns what `run_chain` returns; row 0 is lineage A's generation 0, the common start.
    """
    if len(lineages) != 2:
        raise CollapseError(f"two_teachers takes two lineages (run_chain results); got {len(lineages)}")
    short = [len(lin["corpora"]) for lin in lineages if len(lin["corpora"]) < generations]
    if short:
        raise CollapseError(f"a lineage has {short[0] - 1} generations after generation 0; generation "
                            f"{generations} of the student needs {generations - 1}")
    a, b = lineages
    n = settings.n_texts
    rows = [{**a["rows"][0], "regime": name, "generation": 0}]
    samples, corpora, docs, model = [a["samples"][0]], [a["corpora"][0]], [a["doc_log_ppl"][0]], None
    for g in range(1, generations + 1):
        began = time.perf_counter()
        corpus = a["corpora"][g - 1][:n // 2] + b["corpora"][g - 1][:n - n // 2]
        model = _train(corpus, tokenizer, config, settings, seed + 100 * g + 7, f"{name}: generation {g}",
                       progress).model
        measured, _ = draw(model, tokenizer, settings, n, seed=seed + 100 * g + 57)
        measures, doc = _measure(model, tokenizer, settings, eval_texts, rare, measured)
        rows.append({"regime": name, "generation": g, **measures, "train_texts": len(corpus),
                     "real_share": 0.0, "seconds": time.perf_counter() - began})
        samples.append(measured)
        corpora.append(corpus)
        docs.append(doc)
    return {"rows": rows, "samples": samples, "corpora": corpora, "doc_log_ppl": docs, "model": model}
