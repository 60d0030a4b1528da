"""How much faster is `rouge_l_filter` than the naive Self-Instruct loop, at equal answers?

    python benchmarks/bench_rouge.py            # 2,000 candidates (takes a few minutes)
    python benchmarks/bench_rouge.py --quick    # 300 candidates, for a smoke test

The candidates are real sentences from the Wikipedia summaries, 10% of them replaced by
lightly edited copies of earlier ones, and the pool starts with the course's seed tasks,
as in a Self-Instruct round. The reference is the loop a first implementation writes:
`RougeScorer.score` against every pool entry and every candidate kept so far, stopping at
the first score over the threshold. Both must keep exactly the same candidates.
"""
from __future__ import annotations

import argparse
import random
import time

from rouge_score import rouge_scorer

from synthkit.data import plant_near_duplicates, seed_tasks, wiki_sentences
from synthkit.self_instruct import rouge_l_filter


def reference_filter(candidates: list[str], pool: list[str], threshold: float) -> list[str]:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    kept: list[str] = []
    for c in candidates:
        if all(scorer.score(x, c)["rougeL"].fmeasure <= threshold for x in pool + kept):
            kept.append(c)
    return kept


def build_candidates(n: int, seed: int = 0) -> list[str]:
    sentences = random.Random(seed).sample(wiki_sentences("en"), n - n // 10)
    texts, _ = plant_near_duplicates(sentences, n // 10, max_edits=3, seed=seed)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of candidates")
    parser.add_argument("--quick", action="store_true", help="300 candidates instead")
    parser.add_argument("--threshold", type=float, default=0.7)
    args = parser.parse_args()
    n = 300 if args.quick else args.n

    candidates = build_candidates(n)
    pool = [t["instruction"] for t in seed_tasks()]

    start = time.perf_counter()
    fast = rouge_l_filter(candidates, pool, args.threshold)
    fast_s = time.perf_counter() - start

    start = time.perf_counter()
    reference = reference_filter(candidates, pool, args.threshold)
    reference_s = time.perf_counter() - start

    assert fast == reference, "rouge_l_filter disagrees with the reference loop"
    print(f"candidates: {n}, pool: {len(pool)}, threshold: {args.threshold}, kept: {len(fast)}")
    print(f"reference loop (rouge_score): {reference_s:9.3f} s")
    print(f"rouge_l_filter:               {fast_s:9.3f} s")
    print(f"speed-up:                     {reference_s / fast_s:9.1f}x (identical output)")


if __name__ == "__main__":
    main()
