"""Self-Instruct: a model writes new tasks from a few human ones; a filter keeps the pool varied.

Self-Instruct (Wang et al., 2022) grows a task pool from a small set of human seeds (175 in
the paper, 56 in this course): show the model a few tasks from the pool, let it write more,
and add what survives. What survives is decided by cheap rules, and the most important rule
is about *novelty*: a new instruction enters the pool only if its ROUGE-L similarity to every
instruction already in it is at most 0.7. Without that rule the pool fills with rewordings of the seeds.

The module holds the filters and, at its end, the bootstrap loop itself. ROUGE-L is written
by hand (in `synthkit.rouge`, which the diversity measures share) because it is the point of
the lesson: the naive loop (score every candidate against every pool entry with a
dynamic-programming LCS) is what makes Self-Instruct slow on a laptop. The `rouge-score`
package stays the reference: `rouge_l` gives the very same floats.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from .models.sampling import Sampling
from .rouge import _MARGIN, _f1, _lcs_with_masks, _match_masks, rouge_tokenize
from .rouge import lcs_length, rouge_l, rouge_l_tokens  # noqa: F401  (lab 02 teaches them by these names)
from .records import provenance

# ROUGE-L itself lives in `synthkit.rouge` (metrics use it too); the names are kept here,
# where lab 02 teaches them.

# ---------------------------------------------------------------------------------------
# The novelty filter
# ---------------------------------------------------------------------------------------


def rouge_l_filter(candidates: Iterable[str], pool: Iterable[str] = (),
                   threshold: float = 0.7) -> list[str]:
    """Keep each candidate, in order, whose ROUGE-L F1 with the pool and with the
    candidates kept before it never exceeds `threshold`.

    The decisions are those of the naive loop

        for c in candidates:
            if all(scorer.score(x, c)["rougeL"].fmeasure <= threshold for x in pool + kept):
                kept.append(c)

    on any input, but the work is different. The naive loop pays a quadratic-time LCS
    for every pair, and nearly every pair is unrelated. Here:

    1. every text is tokenized once and its tokens mapped to integers;
    2. an inverted index (token -> texts holding it, with counts) gives, for one
       candidate against all earlier texts at once, the multiset overlap of tokens,
       an exact upper bound on the LCS. Since F1 = 2*LCS/(la+lb), a pair whose bound is
       below the threshold (by a safe margin) cannot be too similar and is skipped;
    3. the few pairs left get a bit-parallel LCS (microseconds each) and rouge-score's
       own float arithmetic, and the first one over the threshold rejects the candidate.

    A bound only ever skips pairs that provably pass, so no decision changes.
    """
    if math.isnan(threshold):
        raise ValueError("threshold is NaN; ROUGE-L thresholds are numbers in [0, 1]")
    candidates, pool = list(candidates), list(pool)
    seqs = _encode([*pool, *candidates])
    index = _OverlapIndex(seqs)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    active = np.zeros(len(seqs), dtype=bool)
    active[:len(pool)] = True
    masks: dict[int, dict[int, int]] = {}
    kept = []
    for i in range(len(pool), len(seqs)):
        if not _too_similar(i, seqs, index, lengths, active, masks, threshold):
            active[i] = True
            kept.append(candidates[i - len(pool)])
    return kept


def _encode(texts: list[str]) -> list[list[int]]:
    """Tokenize each distinct text once and map every token to a small integer."""
    vocab: dict[str, int] = {}
    seen: dict[str, list[int]] = {}
    for text in texts:
        if text not in seen:
            seen[text] = [vocab.setdefault(t, len(vocab)) for t in rouge_tokenize(text)]
    return [seen[text] for text in texts]


class _OverlapIndex:
    """Inverted index: for each token, the texts that contain it (in order) and how often."""

    def __init__(self, seqs: list[list[int]]):
        postings: dict[int, tuple[list[int], list[int]]] = {}
        for doc, seq in enumerate(seqs):
            for tok, count in Counter(seq).items():
                ids, counts = postings.setdefault(tok, ([], []))
                ids.append(doc)
                counts.append(count)
        self.postings = {tok: (np.array(ids), np.array(counts))
                         for tok, (ids, counts) in postings.items()}

    def overlap(self, seq: list[int], upto: int) -> np.ndarray:
        """Multiset overlap sum_t min(count_seq(t), count_doc(t)) with docs 0..upto-1."""
        out = np.zeros(upto, dtype=np.int64)
        for tok, count in Counter(seq).items():
            ids, counts = self.postings[tok]
            stop = np.searchsorted(ids, upto)
            out[ids[:stop]] += np.minimum(counts[:stop], count)
        return out


def _too_similar(i, seqs, index, lengths, active, masks, threshold) -> bool:
    """Whether text i scores above `threshold` with any active text before it."""
    if threshold < 0:            # every score is >= 0, so anything in the pool rejects
        return bool(active[:i].any())
    seq, la = seqs[i], len(seqs[i])
    overlap = index.overlap(seq, i)
    # F1 <= 2*overlap/(la+lb); a score of exactly 0 (no shared token) never exceeds t >= 0.
    maybe = active[:i] & (overlap > 0) & (2 * overlap >= (threshold - _MARGIN) * (la + lengths[:i]))
    for j in np.flatnonzero(maybe):
        if j not in masks:
            masks[j] = _match_masks(seqs[j])
        lcs = _lcs_with_masks(masks[j], int(lengths[j]), seq)
        if _f1(lcs, int(lengths[j]), la) > threshold:
            return True
    return False


# ---------------------------------------------------------------------------------------
# The paper's other filters: tasks a text-only model cannot do, and malformed text
# ---------------------------------------------------------------------------------------

# The reference code (yizhongw/self-instruct, bootstrap_instructions.py) drops an
# instruction of 3 words or fewer or of more than 150: 4 to 150 words are kept.
MIN_WORDS, MAX_WORDS = 4, 150

# Self-Instruct's 13 words: instructions that ask for pictures, files or places. A text
# model can only pretend to do them, so the paper dropped every instruction that names one.
BLACKLIST = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
             "map", "maps", "draw", "plot", "go to")
# Alpaca (Taori et al., 2023) reused the rules and added five words of its own for media a
# text model cannot make either. `bootstrap` uses the longer list; pass blacklist=BLACKLIST
# for the paper's rules alone.
ALPACA_EXTRA = ("video", "audio", "music", "flowchart", "diagram")
ALPACA_BLACKLIST = BLACKLIST + ALPACA_EXTRA
# The paper's model kept tacking "write a program" onto tasks, and it was unclear whether
# the answer should be a program or its output, so those instructions were dropped too.
PROGRAM_PREFIX = "write a program"
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def _blacklist_re(words: tuple[str, ...]) -> re.Pattern | None:
    """Whole words (or phrases) in any case; None for an empty list (nothing forbidden)."""
    if not words:
        return None
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


def rejection_reason(text: str, blacklist: tuple[str, ...] = ALPACA_BLACKLIST) -> str | None:
    """Why the Self-Instruct rules reject `text` as an instruction, or None if they don't.

    The rules are the reference code's: a usable instruction has 4 to 150 words, names
    nothing on `blacklist` (default: the paper's 13 words plus Alpaca's 5), does not start
    with "Write a program" (the paper capitalised each instruction first, so any case of
    it counts), and starts like a sentence, not with ASCII punctuation or a character
    from another script (usually the sign of a broken generation).
    """
    text = text.strip()
    n_words = len(text.split())
    if n_words < MIN_WORDS:
        return f"too short ({n_words} words < {MIN_WORDS})"
    if n_words > MAX_WORDS:
        return f"too long ({n_words} words > {MAX_WORDS})"
    pattern = _blacklist_re(tuple(blacklist))
    if pattern and (match := pattern.search(text)):
        return f"needs more than text ({match.group(0).lower()!r})"
    if text.lower().startswith(PROGRAM_PREFIX):
        return "starts with 'Write a program'"
    if text[0] in _PUNCTUATION:
        return "starts with punctuation"
    if not text[0].isascii():
        return "starts with a non-ASCII character"
    return None


def instruction_ok(text: str, blacklist: tuple[str, ...] = ALPACA_BLACKLIST) -> bool:
    """Whether `text` passes every Self-Instruct rule (see `rejection_reason`)."""
    return rejection_reason(text, blacklist) is None


def filter_instructions(texts: Iterable[str], blacklist: tuple[str, ...] = ALPACA_BLACKLIST
                        ) -> tuple[list[str], list[tuple[str, str]]]:
    """Split `texts` into those kept and (text, reason) for those rejected, in order."""
    kept, rejected = [], []
    for text in texts:
        reason = rejection_reason(text, blacklist)
        if reason is None:
            kept.append(text)
        else:
            rejected.append((text, reason))
    return kept, rejected


# ---------------------------------------------------------------------------------------
# The bootstrap loop: seeds -> new instructions -> filters -> responses
# ---------------------------------------------------------------------------------------

PROMPT_HEADER = ("Come up with a series of new, varied tasks that a helpful assistant could "
                 "be asked to do. Each task is one clear instruction.")
INSTRUCTION_SAMPLING = Sampling(temperature=0.9, top_p=0.95, top_k=50, max_tokens=48,
                                stop=("\nTask", "\n\n"))
RESPONSE_SAMPLING = Sampling(temperature=0.7, top_p=0.9, top_k=50, max_tokens=192)


def build_prompt(examples: list[dict]) -> str:
    """A plain completion prompt listing the examples as Task 1..k and leaving the next
    task number open, as the paper prompted its (non-chat) model."""
    lines = [PROMPT_HEADER, ""]
    lines += [f"Task {i}: {ex['instruction']}" for i, ex in enumerate(examples, 1)]
    lines.append(f"Task {len(examples) + 1}:")
    return "\n".join(lines)


def sample_examples(human: list[dict], machine: list[dict], rng: random.Random,
                    n_human: int = 6, n_machine: int = 2) -> list[dict]:
    """6 human seeds and 2 machine tasks (fewer machine ones while there are fewer),
    shuffled: the mix the paper used so the pool can drift beyond the seeds."""
    take_machine = min(n_machine, len(machine))
    chosen = rng.sample(human, n_human + n_machine - take_machine) + rng.sample(machine, take_machine)
    rng.shuffle(chosen)
    return chosen


def bootstrap(model, n: int, *, seeds: list[dict] | None = None, seed: int = 0,
              batch: int = 32, max_rounds: int = 30, threshold: float = 0.7,
              responses: bool = True, cache=True, progress: bool = True,
              history: list | None = None) -> tuple[list[dict], list[dict]]:
    """Grow `n` new instructions from the seed tasks, then answer them.

    Each round sends `batch` prompts (a fresh 6 + 2 mix each) in one batched call, keeps
    candidates that pass the paper's rules and are no closer than ROUGE-L `threshold` to
    anything already in the pool, and adds them to the pool for the next round. Returns
    (kept records, rejected records with a `reason`). The run is deterministic for a seed,
    so a re-run after a kill replays finished rounds from the generation cache.

    Pass a list as `history` to watch the pool grow: one dict per round is appended, with
    round, prompts, passed_rules (candidates the rules kept), near_duplicates (of those,
    the ones ROUGE-L rejected), added, pool (its size after the round) and the round's
    generation stats (new_tokens, seconds, tokens_per_second, from_cache).
    """
    from .data import seed_tasks
    human = list(seeds or seed_tasks())
    rng = random.Random(seed)
    machine: list[dict] = []
    rejected: list[dict] = []
    sampling = INSTRUCTION_SAMPLING.replace(seed=seed)
    for round_ in range(max_rounds):
        if len(machine) >= n:
            break
        mixes = [sample_examples(human, machine, rng) for _ in range(batch)]
        gens = model.generate([build_prompt(m) for m in mixes], sampling, cache=cache,
                              progress=progress, desc=f"self-instruct round {round_ + 1}")
        fresh = []
        for g, mix in zip(gens, mixes):
            text = g.text.strip()
            record = {"instruction": text, "input": "", "provenance": provenance(
                g, "self-instruct", model.license, round=round_ + 1,
                examples=[ex.get("id", "machine") for ex in mix])}
            why = "incomplete (hit max_tokens)" if g.finish_reason == "length" else rejection_reason(text)
            if why:
                rejected.append({**record, "reason": why})
            else:
                fresh.append(record)
        pool = [t["instruction"] for t in human + machine]
        novel = set(rouge_l_filter([r["instruction"] for r in fresh], pool=pool, threshold=threshold))
        added = near_duplicates = 0
        for r in fresh:
            if r["instruction"] in novel and len(machine) < n:
                novel.discard(r["instruction"])  # an exact repeat within the round is a duplicate
                machine.append(r)
                added += 1
            elif r["instruction"] not in novel:
                rejected.append({**r, "reason": f"ROUGE-L > {threshold} with the pool"})
                near_duplicates += 1
            else:
                rejected.append({**r, "reason": "surplus: n already reached"})
        if history is not None:
            stats = gens.stats
            history.append({"round": round_ + 1, "prompts": len(mixes), "passed_rules": len(fresh),
                            "near_duplicates": near_duplicates, "added": added,
                            "pool": len(human) + len(machine), "new_tokens": stats.completion_tokens,
                            "seconds": round(stats.seconds, 2),
                            "tokens_per_second": round(stats.tokens_per_second, 1),
                            "from_cache": stats.from_cache})
    if responses and machine:
        machine, bad = add_responses(model, machine, seed=seed, cache=cache, progress=progress)
        rejected += bad
    return machine, rejected


def add_responses(model, records: list[dict], *, seed: int = 0, cache=True, progress: bool = True,
                  sampling: Sampling | None = None) -> tuple[list[dict], list[dict]]:
    """Answer each instruction with the model's chat turn; drop empty, cut-off or
    looping answers. Returns (kept, rejected with a `reason`)."""
    from .filters import duplicate_ngram_fraction
    s = (sampling or RESPONSE_SAMPLING).replace(seed=seed)
    asks = [r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "") for r in records]
    gens = model.chat(asks, s, cache=cache, progress=progress, desc="self-instruct responses")
    kept, rejected = [], []
    for r, g in zip(records, gens):
        out = {**r, "output": g.text.strip(),
               "response_provenance": provenance(g, "self-instruct", model.license, role="response")}
        words = out["output"].lower().split()
        why = ("empty response" if not words else
               "response incomplete (hit max_tokens)" if g.finish_reason == "length" else
               "response repeats itself" if duplicate_ngram_fraction(words) > 0.3 else None)
        (rejected if why else kept).append({**out, "reason": why} if why else out)
    return kept, rejected
