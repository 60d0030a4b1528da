"""The capstone: the course's techniques as one pipeline, every artefact with its papers.

The chapter's recipe for synthetic post-training has six steps: instructions (Magpie),
K responses per instruction, keep the best (a verifier where there is one, a judge where
there is not), SFT, preference pairs from ranking more samples, DPO; then evaluate. Each
step is already a function elsewhere in the library. What this module adds is the glue
that a real pipeline cannot do without, and that is the point of lab 10:

- `score_reply` and `best_of_k`: one rule for "the best of K" that works for verifiable
  and open-ended instructions alike;
- `ranked_pairs`: preference pairs from ranking K samples (best against worst);
- `consensus`: several teachers answer, and an answer is kept only when enough of them
  agree (the chapter's multi-teacher stretch exercise); `shared_errors` counts how often
  two voters that are both wrong are wrong the same way, the correlation that limits what
  their agreement proves;
- `write_artefact` and `lineage`: every file the pipeline writes gets a manifest beside
  it (what made it, from which parent files, with which settings, its SHA-256), so a
  trained model can be traced back to the teacher and the seed that started it.

    from synthkit import pipeline
    i = pipeline.best_of_k([{"verified": None, "score": 0.8}, {"verified": None, "score": 1.0}])  # 1
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import __version__, constitutional, filters
from .errors import SynthkitError

MANIFEST_SUFFIX = ".provenance.json"
# the constitution's programs that judge any reply, whatever was asked
GENERAL_CHECKS = ("no_contact_details", "no_links", "no_refusal", "same_language")


class PipelineError(SynthkitError, ValueError):
    """A pipeline artefact or its manifest is missing, corrupt or inconsistent."""


# --- keep the best of K ------------------------------------------------------------------

def reply_checks(prompt: str, reply: str, finish_reason: str = "stop") -> dict[str, bool]:
    """The rule judge: the constitution's general programs, plus the Magpie filter's
    notion of a usable reply (finished, not empty, not a wall of repeats)."""
    checks = {name: constitutional.CHECKS[name](prompt, reply).passed for name in GENERAL_CHECKS}
    words = reply.split()
    checks["finished"] = finish_reason == "stop"
    checks["substantial"] = len(words) >= 3
    checks["not_repetitive"] = not words or filters.duplicate_ngram_fraction(words) <= filters.MAX_DUPLICATE_NGRAM_CHARS * 2
    return checks


def score_reply(prompt: str, reply: str, finish_reason: str = "stop") -> float:
    """Share of the rule judge's checks a reply passes (1.0 = all)."""
    checks = reply_checks(prompt, reply, finish_reason)
    return sum(checks.values()) / len(checks)


def best_of_k(candidates: Sequence[Mapping], min_score: float = 1.0) -> int | None:
    """Index of the candidate to keep, or None to keep none.

    Each candidate has "verified" (True / False from a verifier, None where the task has
    no verifier) and "score" (the judge's, higher is better). A verified candidate beats
    any unverified one; a candidate a verifier rejected is never kept; an unverified one
    needs `min_score`. Among the eligible, the highest score wins, and a tie goes to the
    earliest (so the choice does not depend on anything but the samples' order)."""
    best, best_key = None, None
    for i, c in enumerate(candidates):
        if c["verified"] is False or (c["verified"] is None and c["score"] < min_score):
            continue
        key = (c["verified"] is True, c["score"])
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


def ranked_pairs(prompt: str, candidates: Sequence[Mapping], max_pairs: int = 1) -> list[dict]:
    """Preference pairs from ranking K samples of one prompt: the best against the worst.

    Rank by (verified, score) as `best_of_k` does, with a rejected answer (verified False)
    below any unverified one. A pair needs a real difference in rank and two different
    texts; up to `max_pairs` pairs per prompt, best-with-worst first, each candidate in one
    pair at most. TRL's plain preference format: {"prompt", "chosen", "rejected"}."""
    def rank(c):
        return ({True: 2, None: 1, False: 0}[c["verified"]], c["score"])

    order = sorted(range(len(candidates)), key=lambda i: (rank(candidates[i]), -i), reverse=True)
    pairs, top, bottom = [], 0, len(order) - 1
    while top < bottom and len(pairs) < max_pairs:
        hi, lo = candidates[order[top]], candidates[order[bottom]]
        if rank(hi) <= rank(lo):
            break
        if hi["reply"].strip() != lo["reply"].strip():
            pairs.append({"prompt": prompt, "chosen": hi["reply"].strip(), "rejected": lo["reply"].strip(),
                          "margin": [rank(hi)[0] - rank(lo)[0], round(rank(hi)[1] - rank(lo)[1], 4)]})
        top, bottom = top + 1, bottom - 1
    return pairs


# --- several teachers ----------------------------------------------------------------------

def normal_answer(answer: str | None) -> str | None:
    """A final answer in the form teachers can be compared in: '1,200', ' 1200.0' -> '1200'."""
    if answer is None:
        return None
    text = str(answer).strip().replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", text):
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return " ".join(text.lower().split()) or None


def consensus(answers: Mapping[str, str | None], quorum: int) -> str | None:
    """The answer at least `quorum` teachers gave (compared after `normal_answer`), or None.

    answers: teacher name -> its final answer (None: it gave none). Two different answers
    that both reach the quorum are a disagreement, not a consensus: None."""
    counts: dict[str, int] = {}
    for answer in answers.values():
        a = normal_answer(answer)
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    winners = [a for a, k in counts.items() if k >= quorum]
    return winners[0] if len(winners) == 1 else None


def shared_errors(votes: Sequence[Sequence[str | None]], key: Sequence[str]) -> tuple[int, int]:
    """How alike the voters' mistakes are: (same, both wrong), counted over every pair of
    voters on every question.

    votes[v][q] is voter v's answer to question q (None: no answer), key[q] the right one.
    "Both wrong" counts the pairs where each voter gave an answer and neither is right;
    "same" those of them that gave the same wrong answer. A vote can only outvote a mistake
    the other voters do not share: for a sum, where a wrong answer could be any number,
    voters that erred independently would almost never agree on one, so a high share here
    is the correlation that limits what agreement proves (Wang et al.'s self-consistency
    works because right answers agree more often than wrong ones)."""
    same = both = 0
    for a, b in itertools.combinations(votes, 2):
        if len(a) != len(key) or len(b) != len(key):
            raise PipelineError(f"every voter needs one answer per question: got {len(a)} and {len(b)} "
                                f"answers for {len(key)} questions")
        for x, y, right in zip(a, b, key):
            x, y, right = normal_answer(x), normal_answer(y), normal_answer(right)
            if x is not None and y is not None and x != right and y != right:
                both += 1
                same += x == y
    return same, both


# --- artefacts and their lineage -----------------------------------------------------------

def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def write_artefact(path, kind: str, parents: Sequence[Mapping] = (), **params) -> dict:
    """Write the manifest of the file at `path`: its SHA-256, kind, the ids of the artefacts
    it was made from, the settings that made it, and its own id (16 hex digits of a hash over
    all of those). Returns the manifest, which is what a child names as a parent."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path} is not a file: write the artefact first, then its manifest")
    digest = sha256(path)
    made = {"sha256": digest, "kind": kind, "parents": [p["id"] for p in parents], "params": params}
    # the id covers how the file was made, not only its bytes: two runs that happen to write the
    # same bytes (a training step that changed nothing) are still two artefacts with two lineages
    ident = hashlib.sha256(json.dumps(made, sort_keys=True, default=str).encode()).hexdigest()[:16]
    manifest = {"id": ident, "kind": kind, "file": path.name, **made,
                "synthkit": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    manifest_path(path).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    return manifest


def model_artefact(model, path, kind: str, parents: Sequence[Mapping] = (), **params) -> dict:
    """A model as an artefact: a small JSON file at `path` naming the model's GGUF file and
    its SHA-256 (weights are too big to copy beside the data), with its manifest."""
    gguf = Path(getattr(model, "source_path", None) or getattr(model, "path"))
    Path(path).write_text(json.dumps({"name": model.name, "gguf": str(gguf), "sha256": sha256(gguf),
                                      "license": getattr(model, "license", None)}, indent=1) + "\n")
    return write_artefact(path, kind, parents, **params)


def read_artefact(path, verify: bool = True) -> dict:
    """The manifest beside `path`; with `verify`, fail if the file changed since."""
    mpath = manifest_path(path)
    if not mpath.is_file():
        raise PipelineError(f"{path} has no manifest ({mpath.name}): an artefact without provenance "
                            f"cannot be traced; make it with the pipeline or write_artefact()")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PipelineError(f"{mpath} is not valid JSON ({e}); delete it and rebuild the artefact") from None
    if verify and sha256(path) != manifest.get("sha256"):
        raise PipelineError(f"{path} changed after its manifest was written: its SHA-256 no longer matches; "
                            f"rebuild it (or delete both) rather than trust a stale record")
    return manifest


def lineage(manifests: Sequence[Mapping], final: str) -> list[str]:
    """The ids `final` was made from, parents before children, `final` last.

    Every ancestor appears once, however many paths lead to it; among artefacts whose
    parents are all listed, the order of `manifests` decides. A parent id with no manifest,
    or a loop, is an error that names it."""
    by_id = {m["id"]: m for m in manifests}
    if final not in by_id:
        raise PipelineError(f"no manifest has id {final!r}")
    needed: list[str] = []
    state: dict[str, str] = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        if state.get(node) == "open":
            raise PipelineError(f"a loop in the lineage: {' -> '.join(path + [node])}")
        if node not in by_id:
            raise PipelineError(f"{path[-1]!r} names a parent {node!r} that has no manifest")
        state[node] = "open"
        for parent in by_id[node]["parents"]:
            visit(parent, path + [node])
        state[node] = "done"
        needed.append(node)
    visit(final, [])   # depth first; "open" marks the path being walked, so a loop is seen
    position = {m["id"]: i for i, m in enumerate(manifests)}
    done, order = set(), []
    remaining = sorted(needed, key=position.get)
    while remaining:
        ready = next(n for n in remaining if all(p in done for p in by_id[n]["parents"]))
        order.append(ready)
        done.add(ready)
        remaining.remove(ready)
    return order

