"""Magpie: instructions from an aligned model prompted with nothing but its own template.

An aligned chat model has seen millions of conversations laid out by its chat template.
Give it the template *up to the point where a user's words would begin* and it writes a
plausible user message by itself: an instruction with no human seed.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .models.chat import render_chat
from .models.sampling import Sampling, sequence_seed
from .records import provenance

_SENTINEL = "SYNTHKITUSERCONTENTMARKER"


def pre_query_template(chat_template: str, bos_token: str = "", system: str | None = None) -> str:
    """The text `chat_template` renders before a user message's content.

    Derived by rendering one user turn whose content is a marker and cutting at the
    marker, so it works for any template (ChatML, Llama 3, Mistral, Gemma, ...) with no
    per-model table, and it keeps any default system turn the template adds by itself.

    With `system`, the conversation opens with that system message instead: the Magpie
    paper's way to steer the topic ("You are an AI assistant that helps with maths ..."),
    since the user the model imagines is the one such an assistant would meet.
    """
    messages = [{"role": "user", "content": _SENTINEL}]
    if system is not None:
        messages.insert(0, {"role": "system", "content": system})
    text = render_chat(chat_template, messages, bos_token=bos_token, add_generation_prompt=False)
    cut = text.find(_SENTINEL)
    if cut < 0:
        raise ValueError("the chat template does not render the user's content verbatim, "
                         "so no pre-query prefix can be cut from it; write the prefix by hand")
    return text[:cut]


# ---------------------------------------------------------------------------------------
# The pipeline: instructions from nothing, then responses, then filters.
# ---------------------------------------------------------------------------------------
# Magpie samples instructions hot: the diversity is the point. Responses are cooler.
INSTRUCTION_SAMPLING = Sampling(temperature=1.0, top_p=1.0, top_k=0, max_tokens=96)
RESPONSE_SAMPLING = Sampling(temperature=0.7, top_p=0.9, top_k=50, max_tokens=256)

_LEAKED_TURN = re.compile(r"<\|[a-z_]+\|>|\n(?:assistant|user|system)\n", re.IGNORECASE)


def clean_instruction(text: str) -> str:
    """The user message alone: cut at any role marker the model ran on into."""
    return _LEAKED_TURN.split(text, maxsplit=1)[0].strip()


def generate_instructions(model, n: int, *, sampling: Sampling | None = None, seed: int = 0,
                          cache=True, progress: bool = True, system: str | None = None) -> list[dict]:
    """`n` instructions written by `model` from its pre-query template alone (opened by
    the system message `system`, if given, to steer the topic)."""
    prefix = pre_query_template(model.chat_template or "", model.bos_token, system=system)
    s = (sampling or INSTRUCTION_SAMPLING).replace(seed=seed)
    gens = model.generate(prefix, n=n, sampling=s, cache=cache, progress=progress,
                          desc="magpie instructions")
    return [{"instruction": clean_instruction(g.text), "input": "", "finish_reason": g.finish_reason,
             "provenance": provenance(g, "magpie", model.license, role="instruction")}
            for g in gens]


def add_responses(model, records: list[dict], *, sampling: Sampling | None = None, seed: int = 0,
                  cache=True, progress: bool = True) -> list[dict]:
    """Answer each record's instruction with the model's ordinary chat turn."""
    s = (sampling or RESPONSE_SAMPLING).replace(seed=seed)
    gens = model.chat([r["instruction"] for r in records], s, cache=cache, progress=progress,
                      desc="magpie responses")
    return [{**r, "output": g.text.strip(), "response_finish_reason": g.finish_reason,
             "response_provenance": provenance(g, "magpie", model.license, role="response")}
            for r, g in zip(records, gens)]


def filter_reasons(records: list[dict], *, min_words: int = 3, max_words: int = 150,
                   max_repeat: float = 0.3, near_dup_threshold: float = 0.7,
                   min_distance: float | None = None) -> list[str | None]:
    """Why each record is rejected (None = kept): incomplete, too short or long, looping,
    not English, or a near-duplicate of an earlier kept instruction (MinHash on characters).

    These are cheap rules of our own. With `min_distance`, the paper's embedding filter runs
    last on the survivors: an instruction within that cosine distance of an earlier one
    (all-MiniLM-L6-v2 embeddings, see `distance_filter`) is a "semantic near-duplicate"."""
    from .filters import duplicate_ngram_fraction, near_dedup

    reasons: list[str | None] = []
    for r in records:
        words = r["instruction"].split()
        if r.get("finish_reason") == "length":
            reasons.append("incomplete (hit max_tokens)")
        elif len(words) < min_words:
            reasons.append(f"too short (< {min_words} words)")
        elif len(words) > max_words:
            reasons.append(f"too long (> {max_words} words)")
        elif duplicate_ngram_fraction([w.lower() for w in words]) > max_repeat:
            reasons.append("repetitive")
        elif not looks_english(r["instruction"]):
            reasons.append("not English")
        else:
            reasons.append(None)
    alive = [i for i, why in enumerate(reasons) if why is None]
    keep = set(alive[j] for j in near_dedup([records[i]["instruction"] for i in alive],
                                            threshold=near_dup_threshold))
    reasons = [("near-duplicate" if why is None and i not in keep else why) for i, why in enumerate(reasons)]
    if min_distance is not None:
        from .metrics import embed
        alive = [i for i, why in enumerate(reasons) if why is None]
        if alive:
            mask = distance_filter(embed([records[i]["instruction"] for i in alive]), min_distance)
            for i, kept in zip(alive, mask):
                if not kept:
                    reasons[i] = f"semantic near-duplicate (cosine distance <= {min_distance:g})"
    return reasons


# ---------------------------------------------------------------------------------------
# The paper's diversity filter: distance to the nearest neighbour in embedding space
# ---------------------------------------------------------------------------------------
# The Magpie authors embedded every instruction (all-mpnet-base-v2), found each one's nearest
# neighbours with FAISS and recorded the distance to the closest ("min_neighbor_distance");
# their code also marks the earliest instruction within a small distance, so that of each
# group of near-copies the first can be kept. Magpie-Pro-300K-Filtered itself asked only for
# a distance above 0, i.e. no exact repeat (the paper's Table 5). This is a stricter variant:
# an instruction is kept only if no instruction before it lies within `min_distance`, so of
# each group of rewordings exactly the first survives. The order is the order of generation
# and the distance is cosine distance, 1 - cos(a, b), on the unit vectors `metrics.embed`
# returns. MinHash (above) catches copies with a few words changed; this catches the same
# request in other words.

# With all-MiniLM-L6-v2, the same request in other words sits at about 0.03-0.13 ("Which city
# is the capital of Australia?" / "What is the capital city of Australia?": 0.03), related but
# different requests at 0.2 and more, unrelated ones near 0.9. 0.15 splits the two.
MIN_DISTANCE = 0.15
_BLOCK = 1024  # rows compared at a time: memory stays ~8 MB per block however many texts


def _unit_rows(embeddings) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.size == 0:
        return x.reshape(0, x.shape[-1] if x.ndim == 2 else 0)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (one row per text), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError(f"row {int(np.argmin(norms))} of the embeddings is all zeros: a cosine "
                         f"distance needs a direction; embed a non-empty text there")
    return x / norms


def distance_filter(embeddings, min_distance: float = MIN_DISTANCE) -> np.ndarray:
    """Keep-mask: True for each row whose cosine distance to every EARLIER row is above
    `min_distance`, so the first of each group of near neighbours is kept and the rest go.

    A chain a ~ b ~ c drops both b and c even if a and c are far apart: c has a near
    neighbour before it. That is the released Magpie rule, and it makes the decision for a
    row depend only on the rows before it, as a stream needs.
    """
    if not isinstance(min_distance, (int, float)) or math.isnan(min_distance):
        raise ValueError(f"min_distance must be a number (a cosine distance in [0, 2]), got {min_distance!r}")
    x = _unit_rows(embeddings)
    keep = np.ones(len(x), dtype=bool)
    for start in range(0, len(x), _BLOCK):
        block = x[start:start + _BLOCK]
        distance = 1.0 - block @ x[:start + len(block)].T
        earlier = np.arange(start + len(block))[None, :] < np.arange(start, start + len(block))[:, None]
        keep[start:start + len(block)] = ~np.any(earlier & (distance <= min_distance), axis=1)
    return keep


def min_neighbour_distance(embeddings) -> np.ndarray:
    """Each row's cosine distance to its nearest other row (the paper's per-instruction tag);
    inf for a lone row. Small values mark the crowded corners of a data set."""
    x = _unit_rows(embeddings)
    out = np.full(len(x), np.inf)
    for start in range(0, len(x), _BLOCK):
        distance = 1.0 - x[start:start + _BLOCK] @ x.T
        rows = np.arange(len(distance))
        distance[rows, rows + start] = np.inf
        if x.shape[0] > 1:
            out[start:start + len(distance)] = distance.min(axis=1)
    return out


_STOP = {"the", "a", "an", "of", "to", "and", "in", "is", "for", "what", "how", "you", "can",
         "i", "my", "me", "it", "on", "with", "are", "be", "this", "that", "do", "write", "please"}


def looks_english(text: str) -> bool:
    """Mostly ASCII letters and at least one common English function word."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    ascii_share = sum(c.isascii() for c in letters) / len(letters)
    words = set(re.findall(r"[a-z']+", text.lower()))
    return ascii_share > 0.9 and bool(words & _STOP)


def make_dataset(model, n: int, *, seed: int = 0, responses: bool = True, cache=True,
                 progress: bool = True, instruction_sampling: Sampling | None = None,
                 response_sampling: Sampling | None = None,
                 max_candidates: int | None = None) -> tuple[list[dict], list[dict]]:
    """The whole Magpie run: returns (kept records, rejected records with a `reason`).

    `n` is the number of records wanted, not of draws: a small model's answers often run
    past max_tokens or its instructions fail a filter, so instructions are drawn in rounds
    until `n` records pass every filter or `max_candidates` (default 10 * n) instructions
    have been drawn. Each round after the first has its own seed, so it never repeats an
    earlier round from the cache, and a re-run replays all of them. Records beyond `n` are
    rejected as surplus; fewer than `n` come back only when the cap is reached.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1; got {n!r}")
    cap = 10 * n if max_candidates is None else max_candidates
    if cap < n:
        raise ValueError(f"max_candidates ({cap}) is below n ({n}): allow at least n draws")
    kept: list[dict] = []
    rejected: list[dict] = []
    passed: list[dict] = []  # every instruction that passed the instruction filters so far
    drawn = round_ = 0
    while len(kept) < n and drawn < cap:
        ask = _next_round_size(n - len(kept), len(kept), drawn, cap)
        round_seed = seed if round_ == 0 else sequence_seed(seed, "magpie round", round_)
        if progress and round_:
            print(f"magpie: {len(kept)}/{n} records after {drawn} instructions; drawing {ask} more "
                  f"(cap {cap})", flush=True)
        records = generate_instructions(model, ask, sampling=instruction_sampling, seed=round_seed,
                                        cache=cache, progress=progress)
        drawn, round_ = drawn + ask, round_ + 1
        pre = filter_reasons(passed + records)[len(passed):]  # near-duplicates of earlier rounds too
        candidates = [r for r, why in zip(records, pre) if why is None]
        rejected += [{**r, "reason": why} for r, why in zip(records, pre) if why is not None]
        passed += candidates
        if responses and candidates:
            candidates = add_responses(model, candidates, sampling=response_sampling, seed=seed,
                                       cache=cache, progress=progress)
            post = [("response incomplete (hit max_tokens)" if r["response_finish_reason"] == "length"
                     else "empty response" if not r["output"] else None) for r in candidates]
            rejected += [{**r, "reason": why} for r, why in zip(candidates, post) if why]
            candidates = [r for r, why in zip(candidates, post) if not why]
        room = n - len(kept)
        kept += candidates[:room]
        rejected += [{**r, "reason": "surplus: n already reached"} for r in candidates[room:]]
    return kept, rejected


def _next_round_size(need: int, kept: int, drawn: int, cap: int) -> int:
    """How many instructions to draw next: `need` at first, then enough for the yield seen
    so far (with a margin, and as if at least a quarter passed), never beyond the cap."""
    if drawn == 0:
        return min(need, cap)
    rate = max(kept / drawn, 0.25)
    return max(1, min(cap - drawn, math.ceil(need / rate * 1.25)))
