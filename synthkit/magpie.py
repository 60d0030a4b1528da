"""Magpie: instructions from an aligned model prompted with nothing but its own template.

An aligned chat model has seen millions of conversations laid out by its chat template.
Give it the template *up to the point where a user's words would begin* and it writes a
plausible user message by itself: an instruction with no human seed.
"""
from __future__ import annotations

import re

from .models.chat import render_chat
from .models.sampling import Sampling
from .records import provenance

_SENTINEL = "SYNTHKITUSERCONTENTMARKER"


def pre_query_template(chat_template: str, bos_token: str = "") -> str:
    """The text `chat_template` renders before a user message's content.

    Derived by rendering one user turn whose content is a marker and cutting at the
    marker, so it works for any template (ChatML, Llama 3, Mistral, Gemma, ...) with no
    per-model table, and it keeps any default system turn the template adds by itself.
    """
    text = render_chat(chat_template, [{"role": "user", "content": _SENTINEL}],
                       bos_token=bos_token, add_generation_prompt=False)
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
                          cache=True, progress: bool = True) -> list[dict]:
    """`n` instructions written by `model` from its pre-query template alone."""
    prefix = pre_query_template(model.chat_template or "", model.bos_token)
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
                   max_repeat: float = 0.3, near_dup_threshold: float = 0.7) -> list[str | None]:
    """Why each record is rejected (None = kept), Magpie-style: incomplete, too short or
    long, looping, not English, or a near-duplicate of an earlier kept instruction."""
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
    return [("near-duplicate" if why is None and i not in keep else why) for i, why in enumerate(reasons)]


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
                 response_sampling: Sampling | None = None) -> tuple[list[dict], list[dict]]:
    """The whole Magpie run: returns (kept records, rejected records with a `reason`)."""
    records = generate_instructions(model, n, sampling=instruction_sampling, seed=seed,
                                    cache=cache, progress=progress)
    pre = filter_reasons(records)
    candidates = [r for r, why in zip(records, pre) if why is None]
    rejected = [{**r, "reason": why} for r, why in zip(records, pre) if why is not None]
    if responses and candidates:
        candidates = add_responses(model, candidates, sampling=response_sampling, seed=seed,
                                   cache=cache, progress=progress)
        post = [("response incomplete (hit max_tokens)" if r["response_finish_reason"] == "length"
                 else "empty response" if not r["output"] else None) for r in candidates]
        rejected += [{**r, "reason": why} for r, why in zip(candidates, post) if why]
        candidates = [r for r, why in zip(candidates, post) if not why]
    return candidates, rejected
