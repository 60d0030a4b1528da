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
  `expected_mean_error`) that the simulation is tested against.
* `categorical_recursion`: a Zipf-like distribution over categories, resampled N times per
  generation and re-estimated from the counts. A category drawn zero times is gone for
  good; one generation keeps category i with probability 1 - (1 - p_i)^N
  (`survival_probability`), so the rare ones go first.
* `run_chain`: tiny language models (``synthkit.train.tiny``) trained from scratch on real
  Wikipedia at generation 0 and on their parent's samples afterwards, under replace,
  accumulate, or a fixed share of fresh real text; with the chapter's mitigations (two
  parents, dropping the most confident samples) as options. Each generation is measured
  by `describe_generation`: perplexity on held-out real text, `tail_coverage` (how many of
  the real text's rare words its samples still use), distinct-2 and `unigram_entropy`.
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
    """E[fitted variance] at generations 0..G under **replace**, in closed form.

    Given the parent's variance v, the fit to N of its samples is v * chi2(N-1) / (N - ddof),
    so each generation multiplies the expectation by (N-1)/(N-ddof): by (N-1)/N for the
    maximum-likelihood fit (ddof=0), by exactly 1 for the unbiased one (ddof=1).
    """
    _check_sizes(n, generations)
    factor = (n - 1) / (n - ddof)
    return sigma ** 2 * factor ** np.arange(1, generations + 2)


def typical_variance(n: int, generations: int, *, sigma: float = 1.0, ddof: int = 0) -> np.ndarray:
    """exp(E[log fitted variance]) at generations 0..G under **replace**: the geometric mean,
    which the median of many chains follows. In closed form, per generation it is multiplied by
    exp(E[log chi2(k)] - log(N - ddof)) with k = N-1 and E[log chi2(k)] = digamma(k/2) + log 2.
    That factor is below 1 even for ddof=1 (about exp(-1/(N-1))): unbiased in expectation,
    the variance still shrinks in almost every chain, and goes to zero in the limit.
    """
    _check_sizes(n, generations)
    k = n - 1
    log_factor = _digamma(k / 2) + math.log(2) - math.log(n - ddof)
    return sigma ** 2 * np.exp(log_factor * np.arange(1, generations + 2))


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


def tail_coverage(texts: Sequence[str], rare: set[str]) -> float:
    """Share of the `rare` words that appear at least once in `texts` (0.0 when `rare` is
    empty). Compare only sample sets of the same size: more text covers more words."""
    if not rare:
        return 0.0
    seen = set()
    for t in texts:
        seen.update(words(t))
    return len(rare & seen) / len(rare)


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
                     bands: Sequence[tuple[int, int]] = ((1, 1), (2, 5), (6, 20), (21, 100), (101, 10**9))
                     ) -> dict[str, float]:
    """`tail_coverage` for each band of real-text frequency (counts from `word_counts` of the
    real text): the language version of "which categories survived", common to rare."""
    out = {}
    for lo, hi in bands:
        band = {w for w, c in counts.items() if lo <= c <= hi}
        label = f"{lo}" if lo == hi else (f"{lo}+" if hi >= 10**9 else f"{lo}-{hi}")
        out[label] = tail_coverage(texts, band)
    return out


# ---------------------------------------------------------------------------------------
# Language models trained on their parent's text
# ---------------------------------------------------------------------------------------
# Generation 0 is a tiny GPT trained from scratch on real Wikipedia passages. Each later
# generation is a fresh model trained, for the same number of steps (equal compute), on:
#   replace     n texts sampled from its parent;
#   accumulate  the real passages plus every generation's samples so far;
#   fresh       (1 - share) of n from its parent plus share of n real passages never used before.
# Two options add the chapter's mitigations to any regime: `reject_share` drops that share
# of the lowest-perplexity (most confident) samples, drawing extra to keep n; `teachers=2`
# runs two lineages whose children both learn from n/2 samples of each parent.

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
    parent's whole distribution, tail included)."""

    n_texts: int
    steps: int
    batch_size: int = 32
    lr: float = 3e-3
    max_tokens: int = 96
    temperature: float = 1.0
    sample_batch: int = 64

    def __post_init__(self):
        for name in ("n_texts", "steps", "batch_size", "max_tokens", "sample_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CollapseError(f"ChainSettings.{name} must be a whole number >= 1; got {value!r}")


def draw(model, tokenizer, settings: ChainSettings, n: int, *, seed: int = 0,
         reject_share: float = 0.0) -> tuple[list[str], list[str]]:
    """`n` samples from `model`, and the `n` the next generation trains on.

    Without rejection they are the same list. With `reject_share` s, n / (1 - s) samples
    are drawn; the first n are the model's plain samples (what it is measured on), and the
    training set keeps the n with the *highest* perplexity under the model itself, in their
    drawn order: the most confident s are dropped."""
    if not 0 <= reject_share < 1:
        raise CollapseError(f"reject_share={reject_share!r} must be in [0, 1)")
    tiny = _tiny()
    total = math.ceil(n / (1 - reject_share)) if reject_share else n
    texts = tiny.sample(model, tokenizer, total, max_tokens=settings.max_tokens, temperature=settings.temperature,
                        seed=seed, batch_size=settings.sample_batch, progress=False)
    if not reject_share:
        return texts, texts
    ppl = np.array(tiny.text_perplexities(model, tokenizer, [t if t.strip() else " " for t in texts]))
    keep = np.sort(np.argsort(-np.nan_to_num(ppl, nan=np.inf), kind="stable")[:n])
    return texts[:n], [texts[i] for i in keep]


def describe_generation(samples: Sequence[str], *, model=None, tokenizer=None, eval_texts=None,
                        rare: set[str] | None = None) -> dict:
    """The four numbers the lab follows per generation: perplexity on held-out real text (when a
    model is given), tail coverage of the real text's rare words, distinct-2 and unigram
    entropy of the samples, plus their mean length in words."""
    out = {}
    if model is not None:
        out["perplexity"] = _tiny().perplexity(model, tokenizer, list(eval_texts))
    out["tail_coverage"] = tail_coverage(samples, rare or set())
    out["distinct_2"] = distinct_n(list(samples), 2)
    out["entropy"] = unigram_entropy(samples)
    out["mean_words"] = float(np.mean([len(words(t)) for t in samples])) if samples else 0.0
    return out


def _train(texts, tokenizer, config, settings: ChainSettings, seed: int, desc: str, progress: bool):
    return _tiny().pretrain(texts, tokenizer=tokenizer, config=config, steps=settings.steps,
                            batch_size=settings.batch_size, lr=settings.lr, seed=seed,
                            progress=progress, desc=desc)


def generation_zero(real_texts: Sequence[str], eval_texts: Sequence[str], rare: set[str], *, tokenizer,
                    config, settings: ChainSettings, seed: int = 0, progress: bool = True) -> dict:
    """Train the generation-0 model on the real passages, draw its `n_texts` samples and
    measure them. Every regime starts from this one model (and its samples)."""
    start = time.perf_counter()
    run = _train(list(real_texts), tokenizer, config, settings, seed, f"generation 0 (real, seed {seed})", progress)
    samples, _ = draw(run.model, tokenizer, settings, settings.n_texts, seed=seed + 50)
    row = {"regime": "real", "generation": 0, "seed": seed,
           **describe_generation(samples, model=run.model, tokenizer=tokenizer, eval_texts=eval_texts, rare=rare),
           "train_texts": len(real_texts), "real_share": 1.0, "seconds": time.perf_counter() - start,
           "tokens_per_s": run.tokens_per_s}
    return {"model": run.model, "samples": samples, "row": row, "run": run}


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


def run_chain(starts: Sequence[dict], real_texts: Sequence[str], eval_texts: Sequence[str], rare: set[str], *,
              regime: str, generations: int, tokenizer, config, settings: ChainSettings,
              fresh_pool: Sequence[str] = (), fresh_share: float = 0.2, reject_share: float = 0.0,
              name: str | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Generations 1..`generations` of one regime, from the generation-0 model(s) in `starts`
    (one dict from `generation_zero`, or two for two lineages: diverse teachers).

    Returns {"rows": one dict of measurements per generation (generation 0 included),
    "samples": each generation's samples, "models": the last generation's models}.
    """
    _check_regime(regime, LM_REGIMES)
    if len(starts) not in (1, 2):
        raise CollapseError("run_chain takes one generation-0 model, or two (two teachers)")
    if not 0 <= fresh_share < 1:
        raise CollapseError(f"fresh_share={fresh_share!r} must be in [0, 1)")
    name = name or regime
    n, lineages = settings.n_texts, len(starts)
    part = n // lineages
    models = [s["model"] for s in starts]
    measured = [t for s in starts for t in s["samples"][:part]]
    corpus_parts = measured if not reject_share else None
    if reject_share:  # the gen-0 parents' training sets, filtered like every later one
        corpus_parts = []
        for lineage, m in enumerate(models):
            corpus_parts += draw(m, tokenizer, settings, part, seed=seed + 70 + lineage, reject_share=reject_share)[1]
    row0 = dict(starts[0]["row"]) if lineages == 1 else {
        **describe_generation(measured, rare=rare),
        "perplexity": float(np.mean([s["row"]["perplexity"] for s in starts])),
        "train_texts": len(real_texts), "real_share": 1.0, "seconds": sum(s["row"]["seconds"] for s in starts)}
    rows = [{**row0, "regime": name, "generation": 0}]
    samples, history, fresh_used = [measured], [corpus_parts], 0
    for g in range(1, generations + 1):
        start = time.perf_counter()
        corpus, real_count, fresh_used = _next_corpus(regime, corpus_parts, history, list(real_texts),
                                                      fresh_pool, fresh_used, fresh_share)
        models = [_train(corpus, tokenizer, config, settings, seed + 100 * g + lineage,
                         f"{name}: generation {g}" + (f" ({'AB'[lineage]})" if lineages > 1 else ""), progress).model
                  for lineage in range(lineages)]
        measured, corpus_parts = [], []
        for lineage, m in enumerate(models):
            plain, kept = draw(m, tokenizer, settings, part, seed=seed + 100 * g + 50 + lineage,
                               reject_share=reject_share)
            measured += plain
            corpus_parts += kept
        ppl = float(np.mean([_tiny().perplexity(m, tokenizer, list(eval_texts)) for m in models]))
        rows.append({"regime": name, "generation": g, "perplexity": ppl,
                     **describe_generation(measured, rare=rare), "train_texts": len(corpus),
                     "real_share": real_count / len(corpus), "seconds": time.perf_counter() - start})
        samples.append(measured)
        history.append(corpus_parts)
    return {"rows": rows, "samples": samples, "models": models}
