"""Synthetic pretraining data, Phi-style: a teacher writes textbook passages on a
curriculum of topics, filters keep the clean ones, and a small model learns from them.

    from synthkit import load_model, pretrain
    teacher = load_model()
    topics = pretrain.curriculum(40)                    # subjects x article titles
    passages = pretrain.textbook_passages(teacher, topics)
    kept = [p for p in passages if p["passed"]]         # the quality filters' verdict
    mixed = pretrain.mix(real_texts, [p["text"] for p in kept], tokenizer, tokens=200_000, share=0.5)

What the papers did: phi-1 ("Textbooks Are All You Need", Gunasekar et al. 2023, a 1.3B
code model) pretrained on about 6B tokens of *real* web code (The Stack and StackOverflow,
kept by a classifier trained on GPT-4's judgements of educational value) plus about 1B
tokens of textbooks written by GPT-3.5, then fine-tuned on about 180M tokens of synthetic
exercises. A mostly synthetic corpus came with phi-1.5 (Li et al. 2023): about 20B tokens of
general-domain synthetic textbooks beside phi-1's 7B. This module is the synthetic half, as
a variant (a weak teacher, rule-based filters instead of a trained classifier), in three
parts, one function each:

* **a curriculum**: what to write about. The Wikipedia summaries come with 11 subject
  labels (People, Mathematics, ...) and thousands of article titles, so a topic is a
  (subject, title, one-line description) triple, drawn round-robin over the subjects so
  that none dominates (`curriculum`); `subjects=` aims the teacher at a weak subject.
* **a prompt** asking for one self-contained textbook passage about the topic, in one of
  a few styles (an explanation, a worked example, a "why it matters" piece), so that the
  corpus does not read like one template (`passage_prompt`).
* **quality filters** that need no model: long enough, finished, plain prose (no lists
  or headings), no chat preamble, on topic, not looping (`quality_reasons`).

Then `mix` builds a training set with an exact synthetic share of a token budget,
`held_out_scores` gives a model's pooled perplexity and each held-out text's own loss (the
items of a paired comparison), `subject_perplexity` breaks perplexity down by subject, and
`validation_split` halves the held-out text so that a weak subject is chosen on one half
and judged on the other: the measurements of lab 07. The tiny model itself lives in
`synthkit.train.tiny`.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from pathlib import Path

import numpy as np

from .errors import SynthkitError
from .models import Sampling
from .records import provenance

TECHNIQUE = "textbook-pretraining"
TEXTBOOKS = Path(__file__).parent / "data" / "textbooks.jsonl.gz"  # made by `synthkit textbooks`
UNLABELLED = "Uncategorized"  # the summaries' catch-all label: not a subject to teach

# A passage should fit a tiny model's context a few times over and a teacher's batch.
SAMPLING = Sampling(temperature=0.8, top_p=0.95, max_tokens=200)

# The styles a passage may take; each topic gets one, in turn.
STYLES = {
    "explain": "Explain what it is and why it matters, the way a good teacher would to a curious "
               "fifteen-year-old.",
    "example": "Explain the central idea, then walk through one concrete example step by step.",
    "story": "Tell how it came about or how it works, as a short piece of connected prose with "
             "clear cause and effect.",
}


class PretrainDataError(SynthkitError, ValueError):
    """Bad input to the pretraining-data functions; the message names the fix."""


# --- the curriculum -------------------------------------------------------------------------------

def real_documents(lang: str = "en", *, held_out: float = 0.1) -> tuple[list[dict], list[dict]]:
    """The Wikipedia summaries with a subject, split into (train, held_out) by a hash of the
    title (stable across runs and machines). Each record: title, text, subject, description."""
    from .data import wiki_summaries
    if not 0 < held_out < 1:
        raise PretrainDataError(f"held_out={held_out!r} must be a share between 0 and 1")
    train, test = [], []
    for r in wiki_summaries(lang):
        if r["topic"] == UNLABELLED:
            continue
        doc = {"title": r["title"], "text": r["text"], "subject": r["topic"], "description": r["description"]}
        (test if _bucket(r["title"]) < held_out else train).append(doc)
    return train, test


def _bucket(title: str) -> float:
    """A number in [0, 1) fixed by the title alone."""
    return int(hashlib.sha256(title.encode()).hexdigest()[:8], 16) / 16 ** 8


def subjects(lang: str = "en") -> list[str]:
    """The subject labels of the summaries, largest first (the catch-all label left out)."""
    from collections import Counter
    train, test = real_documents(lang)
    return [s for s, _ in Counter(d["subject"] for d in train + test).most_common()]


def curriculum(n: int, *, seed: int = 0, subjects: list[str] | None = None, lang: str = "en",
               exclude: set[str] | None = None) -> list[dict]:
    """`n` topics to write about: {"subject", "title", "description", "style", "id"}.

    Round-robin over the subjects (or only over `subjects`), a random article of each in
    turn, and never a held-out title: the held-out real text must stay unseen, even as a
    topic. Once a subject's titles are used up it starts over with each title in another
    style (a second "pass"). `curriculum(n)` is the start of `curriculum(n + m)`: a bigger
    corpus extends a smaller one. `exclude`: titles not to use (e.g. already written about)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise PretrainDataError(f"n must be a whole number >= 0; got {n!r}")
    train, _ = real_documents(lang)
    by_subject: dict[str, list[dict]] = {}
    for doc in train:
        if doc["title"] not in (exclude or ()):
            by_subject.setdefault(doc["subject"], []).append(doc)
    chosen = sorted(by_subject) if subjects is None else sorted(set(subjects))
    unknown = [s for s in chosen if s not in by_subject]
    if unknown or not chosen:
        raise PretrainDataError(f"unknown subject {unknown or chosen!r}; choose from {sorted(by_subject)}")
    rng = random.Random(f"curriculum:{seed}")
    order = {s: rng.sample(by_subject[s], len(by_subject[s])) for s in chosen}
    styles = list(STYLES)
    topics = []
    for k in range(n):
        s = chosen[k % len(chosen)]
        turn = k // len(chosen)  # how many topics this subject has had before
        passes, at = divmod(turn, len(order[s]))
        doc = order[s][at]
        topics.append({"subject": s, "title": doc["title"], "description": doc["description"],
                       "style": styles[(turn + passes) % len(styles)], "id": f"{seed}:{passes}:{s}:{doc['title']}"})
    return topics


def passage_prompt(topic: dict) -> str:
    """The teacher's instruction for one topic: one plain-prose textbook passage."""
    about = topic["title"] + (f" ({topic['description']})" if topic.get("description") else "")
    return (f"You are writing a short section of a school textbook on {topic['subject'].lower()}. "
            f"The section is about {about}. {STYLES[topic['style']]} "
            f"Write one or two paragraphs of plain prose, about 100 words, with no headings, no lists "
            f"and no title. Start directly with the content.")


# --- quality filters --------------------------------------------------------------------------------

MIN_WORDS = 40
MIN_DISTINCT_TRIGRAMS = 0.5
PREAMBLES = ("sure", "certainly", "of course", "here is", "here's", "as an ai", "i'm sorry", "i am sorry",
             "absolutely", "great question", "what a ", "title:")
_MARKUP = re.compile(r"^\s*(#|[-*•]\s|\d+[.)]\s|\*\*)")
_WORD = re.compile(r"[A-Za-z]+")


def quality_reasons(text: str, title: str) -> list[str]:
    """Why a passage fails the textbook filters (empty list: it passes). The rules, in order:

    - "short": fewer than MIN_WORDS words (split on whitespace);
    - "markup": a line that starts (after spaces) with '#', '- ', '* ', '• ', '**' or a
      number followed by '.' or ')' and a space: lists and headings are not textbook prose;
    - "preamble": the text starts (case-insensitive, after spaces) with a chat phrase from
      PREAMBLES;
    - "unfinished": the last non-space character is not '.', '!' or '?' (cut off mid-sentence);
    - "off-topic": no word of 4+ letters from the title appears in the text (case-insensitive,
      words are runs of letters A-Z);
    - "repetitive": distinct word trigrams / all word trigrams (lowercased words) below
      MIN_DISTINCT_TRIGRAMS: the teacher is looping.
    """
    reasons = []
    words = text.split()
    if len(words) < MIN_WORDS:
        reasons.append("short")
    if any(_MARKUP.match(line) for line in text.splitlines()):
        reasons.append("markup")
    if text.strip().lower().startswith(PREAMBLES):
        reasons.append("preamble")
    if not text.strip() or text.strip()[-1] not in ".!?":
        reasons.append("unfinished")
    keys = {w.lower() for w in _WORD.findall(title) if len(w) >= 4}
    if keys and not keys & {w.lower() for w in _WORD.findall(text)}:
        reasons.append("off-topic")
    lowered = [w.lower() for w in words]
    grams = [tuple(lowered[i:i + 3]) for i in range(len(lowered) - 2)]
    if grams and len(set(grams)) / len(grams) < MIN_DISTINCT_TRIGRAMS:
        reasons.append("repetitive")
    return reasons


def passes_quality(text: str, title: str) -> bool:
    return not quality_reasons(text, title)


# --- generation -------------------------------------------------------------------------------------

def textbook_passages(model, topics: list[dict], *, sampling: Sampling = SAMPLING, seed: int = 0,
                      progress: bool = True, cache=True, desc: str | None = None) -> list[dict]:
    """One passage per topic, in one batched call, each judged by the quality filters.

    A passage the token limit cut off is trimmed back to its last full sentence first
    ("trimmed": True), as a corpus pipeline would; one with no full sentence stays
    "unfinished". Returns records {"text", "subject", "title", "style", "passed",
    "reasons", "tokens", "trimmed", "finish_reason", "provenance"}, failures included (lab
    07 trains on both kinds to measure what the filters buy). Generations are cached: a
    killed run resumes."""
    if not topics:
        return []
    prompts = [passage_prompt(t) for t in topics]
    gens = model.chat(prompts, sampling.replace(seed=seed), progress=progress, cache=cache,
                      desc=desc or f"{len(topics)} textbook passages")
    out = []
    for topic, g in zip(topics, gens):
        text = g.text.strip()
        trimmed = g.finish_reason != "stop" and _trim(text) != text
        text = _trim(text) if trimmed else text
        reasons = quality_reasons(text, topic["title"])
        out.append({"text": text, "subject": topic["subject"], "title": topic["title"], "style": topic["style"],
                    "passed": not reasons, "reasons": reasons, "tokens": g.completion_tokens, "trimmed": trimmed,
                    "finish_reason": g.finish_reason,
                    "provenance": provenance(g, TECHNIQUE, getattr(model, "license", None), topic=topic["id"])})
    return out


def _trim(text: str) -> str:
    """A passage cut off by the token limit, back to its last full sentence (if it has one)."""
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return text[:ends[-1]] if ends else text


def filter_report(passages: list[dict]) -> dict:
    """Kept share with its 95% interval, and how often each rule fired."""
    from collections import Counter

    from .metrics import share_interval
    kept = sum(p["passed"] for p in passages)
    return {"passages": len(passages), "kept": kept,
            "kept_share": kept / len(passages) if passages else float("nan"),
            "interval": share_interval(kept, len(passages)) if passages else (float("nan"),) * 2,
            "reasons": dict(Counter(r for p in passages for r in p["reasons"]).most_common())}


# --- mixing at a token budget ------------------------------------------------------------------------

def mix(real: list[str], synthetic: list[str], tokenizer, *, tokens: int, share: float,
        seed: int = 0) -> list[str]:
    """Documents whose token counts add up to `tokens`, of which round(share x tokens) are
    synthetic: each source in shuffled order, reused (another epoch) only once all of it
    is used, the last document of each source cut to fit; the two sources interleaved at
    random. Token counts are the tokenizer's (a `tokenizers.Tokenizer`)."""
    ids = mix_ids([e.ids for e in tokenizer.encode_batch(real)] if real else [],
                  [e.ids for e in tokenizer.encode_batch(synthetic)] if synthetic else [],
                  tokens=tokens, share=share, seed=seed)
    return [tokenizer.decode(d) for d in ids]


def mix_ids(real: list[list[int]], synthetic: list[list[int]], *, tokens: int, share: float,
            seed: int = 0) -> list[list[int]]:
    """`mix` on documents already tokenized (lists of ids): exactly `tokens` ids in all, exactly
    round(share x tokens) of them from `synthetic`."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise PretrainDataError(f"tokens must be a whole number >= 0; got {tokens!r}")
    if not 0 <= share <= 1:
        raise PretrainDataError(f"share={share!r} is the synthetic share: a number from 0 to 1")
    rng = random.Random(seed)
    quota = round(share * tokens)
    out = _take(synthetic, quota, rng, "synthetic") + _take(real, tokens - quota, rng, "real")
    rng.shuffle(out)
    return out


def _take(docs: list[list[int]], quota: int, rng: random.Random, name: str) -> list[list[int]]:
    """Documents from `docs` adding up to exactly `quota` tokens, epoch by epoch."""
    if quota == 0:
        return []
    if sum(map(len, docs)) == 0:
        raise PretrainDataError(f"the mix needs {quota} {name} tokens but the {name} documents are empty")
    out, left = [], quota
    while left:
        for i in rng.sample(range(len(docs)), len(docs)):
            if not docs[i]:
                continue
            piece = docs[i][:left]
            out.append(piece)
            left -= len(piece)
            if not left:
                break
    return out


# --- measuring -----------------------------------------------------------------------------------------

def validation_split(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Held-out documents in two halves, (validation, test): choose on one, judge on the other.

    The subject a model looks worst at on some text is partly worst by chance (its documents
    happened to be hard), so on that same text it will look better next time whatever you do:
    regression to the mean. Picking the weak subject on the validation half and measuring the
    cure on the test half keeps that chance out of the verdict. Within each subject the
    documents, ordered by a hash of their title, alternate between the halves, so every subject
    with two or more documents is in both, and the split is the same on every machine."""
    validation, test = [], []
    by_subject: dict[str, list[dict]] = {}
    for d in docs:
        by_subject.setdefault(d["subject"], []).append(d)
    for group in by_subject.values():
        for k, d in enumerate(sorted(group, key=lambda d: _bucket("validation:" + d["title"]))):
            (validation if k % 2 == 0 else test).append(d)
    keep = {id(d) for d in test}
    return [d for d in docs if id(d) not in keep], [d for d in docs if id(d) in keep]


def held_out_scores(model, tokenizer, texts: list[str]) -> tuple[float, np.ndarray]:
    """(perplexity pooled over every token, each text's mean token loss), from one pass.

    The pooled perplexity is the matrix's number; the per-text losses (log-perplexities, in
    nats per token) are the items of a paired comparison: two models scored on the same
    held-out texts differ text by text, and `metrics.paired_difference` decides on those."""
    from .train.tiny import token_losses
    losses = token_losses(model, tokenizer, list(texts))
    if not any(len(l) for l in losses):
        raise PretrainDataError("held_out_scores needs at least one token of text")
    return (float(np.exp(np.concatenate(losses).mean())),
            np.array([l.mean() if len(l) else np.nan for l in losses]))


def subject_perplexity(model, tokenizer, docs: list[dict]) -> dict[str, float]:
    """Perplexity per subject (pooled over the subject's tokens), for docs with "subject" and "text"."""
    from .train.tiny import token_losses
    losses = token_losses(model, tokenizer, [d["text"] for d in docs])
    pooled: dict[str, list] = {}
    for d, l in zip(docs, losses):
        pooled.setdefault(d["subject"], []).append(l)
    return {s: float(np.exp(np.concatenate(ls).mean())) for s, ls in sorted(pooled.items())}


def load_textbooks(path=None) -> list[dict]:
    """The textbook corpus shipped with the course (or the JSONL/JSONL.gz at `path`)."""
    import gzip
    import json
    path = Path(path) if path is not None else TEXTBOOKS
    if not path.is_file():
        raise PretrainDataError(f"{path} does not exist; make a corpus with "
                                f"`synthkit textbooks --tokens 50000 --out {path}`")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------------------
# A whole corpus: chunk by chunk along the curriculum, saved as it grows
# ---------------------------------------------------------------------------------------

def _write_jsonl(records, path: Path) -> None:
    """The whole file or nothing: written beside, then renamed over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(tmp, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def make_textbooks(model, tokens: int, *, seed: int = 0, chunk: int = 64, subjects=None, sampling=None,
                   out: Path | None = None, cache=True, progress: bool = True,
                   on_chunk=None) -> list[dict]:
    """Passages, chunk by chunk along the curriculum, until the passed ones hold `tokens`
    teacher tokens. With `out`, the corpus so far is rewritten after every chunk."""
    sampling = sampling or SAMPLING
    passages: list[dict] = []
    kept_tokens, k = 0, 0
    while kept_tokens < tokens:
        topics = curriculum(k + chunk, seed=seed, subjects=subjects)[k:]
        new = textbook_passages(model, topics, sampling=sampling, seed=seed, cache=cache,
                                         progress=progress, desc=f"passages {k + 1}-{k + chunk}")
        passages += new
        kept_tokens += sum(p["tokens"] for p in new if p["passed"])
        k += chunk
        if out is not None:
            _write_jsonl(passages, out)
        if on_chunk is not None:
            on_chunk(passages, kept_tokens)
        if not any(p["passed"] for p in passages) and len(passages) >= 4 * chunk:
            raise SynthkitError(f"none of {len(passages)} passages passed the quality filters; check the "
                                f"model (--model) and sampling (--max-tokens, --temperature)")
    return passages
