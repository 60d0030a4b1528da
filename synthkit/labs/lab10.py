"""Lab 10 — The capstone pipeline: three exercises, one essay and a concept check.

Used by ``labs/10_capstone.ipynb``::

    from synthkit.labs.lab10 import ex1, ex2, ex3, essay1, quiz

The checks need no model: they call the student's functions on fresh random inputs and
compare with references written here (best-of-K, multi-teacher consensus, and an
artefact's lineage checked by its properties: every ancestor once, parents first), and
each refuses the synthkit.pipeline function it rebuilds.
"""
from __future__ import annotations

import re

from ..grading.checks import name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, Raised, show_input
from ..grading.quiz import Question, Quiz

LAB = "10"
TITLE = "The capstone: a synthetic post-training pipeline, end to end"
NOTEBOOK = "10_capstone.ipynb"


# --- exercise 1: keep the best of K -------------------------------------------------------
def reference_best(candidates, min_score: float = 1.0):
    best, best_key = None, None
    for i, c in enumerate(candidates):
        if c["verified"] is False or (c["verified"] is None and c["score"] < min_score):
            continue
        key = (c["verified"] is True, c["score"])
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


_SCORES = (0.25, 0.5, 0.6, 0.75, 0.8, 1.0)


def _candidate(rng, verified=..., score=None) -> dict:
    v = rng.choice((True, False, None)) if verified is ... else verified
    return {"reply": f"reply {rng.randint(0, 999)}", "verified": v,
            "score": rng.choice(_SCORES) if score is None else score}


DEFAULT_BAR = "the default min_score of 1.0"   # these cases call best_of_k without min_score


def _best_cases(rng) -> list[tuple[list[dict], float, str]]:
    cases = [([], 1.0, "no candidates at all")]
    for _ in range(6):
        k = rng.randint(1, 8)
        cases.append(([_candidate(rng) for _ in range(k)], rng.choice((0.5, 0.75, 1.0)), "a random mix"))
    # every verifiable attempt rejected, one with a perfect score
    cases.append(([_candidate(rng, False, 1.0)] + [_candidate(rng, False) for _ in range(rng.randint(1, 4))],
                  0.5, "attempts a verifier rejected, however well judged"))
    # a verified attempt with a low score against an unverified one with a perfect score
    group = [_candidate(rng, None, 1.0), _candidate(rng, True, 0.25)]
    rng.shuffle(group)
    cases.append((group, 0.5, "a verified attempt against a better-judged unverified one"))
    # a tie on the best score: the earliest wins
    s = rng.choice((0.6, 0.8, 1.0))
    group = [_candidate(rng, None, 0.25)] + [_candidate(rng, None, s) for _ in range(3)]
    cases.append((group, 0.5, "a tie on the best score"))
    group = [_candidate(rng, True, 0.8), _candidate(rng, True, 0.8), _candidate(rng, True, 0.5)]
    cases.append((group, 1.0, "a tie between verified attempts"))
    # unverified attempts below the bar
    cases.append(([_candidate(rng, None, rng.choice((0.25, 0.5, 0.6))) for _ in range(rng.randint(1, 4))],
                  0.75, "judged attempts all below min_score"))
    # an unverified attempt exactly at the bar is kept: the rule is score >= min_score
    bar = rng.choice((0.5, 0.75, 1.0))
    group = [_candidate(rng, None, rng.choice([x for x in _SCORES if x < bar]))] + [_candidate(rng, None, bar)]
    rng.shuffle(group)
    cases.append((group, bar, "a judged attempt whose score is exactly min_score"))
    # a verified attempt below the bar is still kept: the bar is for the judge alone
    cases.append(([_candidate(rng, None, 0.5), _candidate(rng, True, 0.25)], 0.75,
                  "a verified attempt whose judge score is below min_score"))
    # the default bar, 1.0: one judged attempt that reaches it, one that falls short
    cases.append(([_candidate(rng, None, 1.0)], 1.0, DEFAULT_BAR))
    cases.append(([_candidate(rng, None, rng.choice([x for x in _SCORES if 0 < x < 1.0]))], 1.0, DEFAULT_BAR))
    rng.shuffle(cases)
    return cases


_BEST_ADVICE = {
    DEFAULT_BAR: "Called without min_score, the bar is 1.0: the signature is "
    "best_of_k(candidates, min_score=1.0).",
    "no candidates at all": "With nothing to choose from, return None.",
    "attempts a verifier rejected, however well judged": "A candidate with verified False is never kept, "
    "whatever its score.",
    "a verified attempt against a better-judged unverified one": "A verified candidate beats any unverified "
    "one: compare (verified is True, score), not the score alone.",
    "a tie on the best score": "On a tie, keep the earliest candidate (the lowest index).",
    "a tie between verified attempts": "On a tie, keep the earliest candidate (the lowest index).",
    "a judged attempt whose score is exactly min_score": "An unverified candidate is kept when score >= "
    "min_score: a score equal to the bar reaches it.",
    "judged attempts all below min_score": "An unverified candidate needs score >= min_score; with none "
    "eligible, return None.",
    "a verified attempt whose judge score is below min_score": "min_score is the bar for candidates without "
    "a verifier; a verified candidate needs no judge's approval.",
    "a random mix": "Skip verified False and unverified below min_score; then the highest (verified is True, "
    "score) wins, ties to the earliest.",
}


def _check_best(c) -> str:
    fn = c.get("best_of_k", callable_=True)
    cases = _best_cases(c.rng)
    for candidates, min_score, probe in cases:
        shown = [(x["verified"], x["score"]) for x in candidates]
        bar = () if probe == DEFAULT_BAR else (min_score,)  # that case leaves min_score out
        label = f"best_of_k({show_input(shown, 90)} as (verified, score){f', min_score={min_score}' if bar else ''})"
        given = [dict(x) for x in candidates]
        got = c.call(fn, given, *bar, label=label)
        if given != candidates:
            c.fail(f"{label} changed the candidates it was given; read them, don't edit them.")
        want = reference_best(candidates, min_score)
        if got is not None and (isinstance(got, bool) or not isinstance(got, int)):
            c.fail(f"{label} returned {show_input(got, 40)}; return the index of the kept candidate "
                   f"(an int), or None.")
        if got == want:
            continue
        advice = name_the_slip(got, [
            (lambda: max(range(len(candidates)), key=lambda i: candidates[i]["score"]) if candidates else None,
             "That is the best score alone: the verifier comes first, and a rejected attempt is never kept."),
            (lambda: None if reference_best(candidates[::-1], min_score) is None else
             len(candidates) - 1 - reference_best(candidates[::-1], min_score),
             "On a tie, keep the earliest candidate, not the last."),
        ], default=_BEST_ADVICE[probe])
        c.fail(f"{label} returned {got!r}; this case tests {probe}. {advice}")
    return f"{len(cases)} fresh groups of candidates (verified, rejected and judged-only), each decided right."


EQUIVALENT_MUTANTS = {
    "ex2": {
        "return winners[0] if len(winners) == 1 else None :: 0 -> -1":
            "winners[0] is read only when winners has exactly one item, and then winners[-1] is the same item.",
    },
}


ex1 = CodingExercise(
    "ex1", LAB, names="best_of_k", checker=_check_best, points=2,
    refuses=("synthkit.pipeline.best_of_k", "synthkit.pipeline.ranked_pairs"),
    title="Keep the best of K: verifier first, judge second",
    hints=[
        "Walk the candidates with enumerate and skip the ineligible: `c['verified'] is False`, or "
        "`c['verified'] is None and c['score'] < min_score`.",
        "Rank the eligible by the tuple (c['verified'] is True, c['score']): Python compares tuples left to "
        "right, so any verified candidate outranks any unverified one.",
        "Replace the best so far only when a key is strictly greater: then a tie keeps the earlier one. "
        "Nothing eligible: return None.",
    ],
)


# --- exercise 2: multi-teacher consensus ----------------------------------------------------
def reference_normal(answer):
    if answer is None:
        return None
    text = str(answer).strip()
    number = text.replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", number):
        if "." in number:
            number = number.rstrip("0").rstrip(".")
        return "0" if number == "-0" else number
    return " ".join(text.lower().split()) or None


def reference_consensus(answers, quorum):
    counts: dict[str, int] = {}
    for a in answers.values():
        a = reference_normal(a)
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    winners = [a for a, k in counts.items() if k >= quorum]
    return winners[0] if len(winners) == 1 else None


_TEACHERS = ("smollm2", "sft-student", "dpo-student", "qwen", "llama", "phi")


def _forms(rng, value: int) -> list[str]:
    """Ways a teacher might write the number `value`."""
    forms = [str(value), f" {value} ", f"{value}.0", f"{value}.00"]
    if abs(value) >= 1000:
        forms.append(f"{value:,}")
    return forms


def _consensus_cases(rng) -> list[tuple[dict, int, str]]:
    def names(k):
        return rng.sample(_TEACHERS, k)

    cases = [({}, 1, "no teachers at all")]
    v = rng.randint(1000, 99999)
    a, b, c_ = names(3)
    cases.append(({a: f"{v:,}", b: str(v), c_: f"{v}.0"}, 3, "one number written three ways"))
    v, w = rng.randint(10, 999), rng.randint(10, 999)
    w += w == v
    a, b, c_ = names(3)
    cases.append(({a: str(v), b: str(v), c_: str(w)}, 2, "two of three agreeing"))
    cases.append(({a: str(v), b: str(v), c_: str(w)}, 3, "two of three agreeing when all three must"))
    a, b, c_ = names(3)
    cases.append(({a: None, b: str(v), c_: None}, 1, "teachers that gave no answer"))
    cases.append(({a: None, b: None, c_: "  "}, 1, "no teacher with an answer"))
    a, b, c_, d = names(4)
    cases.append(({a: str(v), b: str(w), c_: str(w), d: str(v)}, 2, "two answers that both reach the quorum"))
    a, b, c_ = names(3)
    word = rng.choice(("Paris", "blue whale", "Marie Curie", "photosynthesis"))
    cases.append(({a: word, b: "  " + word.upper(), c_: word.lower().replace(" ", "  ")}, 3,
                  "a word answer in different cases and spacing"))
    cases.append(({a: "-0", b: "0.0", c_: "0"}, 3, "zero written three ways"))
    for _ in range(4):
        k = rng.randint(2, 5)
        pool = [rng.randint(1, 2500) for _ in range(2)]
        ans = {t: (rng.choice(_forms(rng, rng.choice(pool))) if rng.random() > 0.2 else None) for t in names(k)}
        cases.append((ans, rng.randint(1, k), "a random vote"))
    rng.shuffle(cases)
    return cases


_CONSENSUS_ADVICE = {
    "no teachers at all": "No answers: return None.",
    "one number written three ways": "Compare numbers in one form: drop thousands commas and spaces, and a "
    "decimal part of zeros ('1,200', ' 1200 ' and '1200.0' are all '1200').",
    "two of three agreeing": "Return the answer that at least `quorum` teachers gave.",
    "two of three agreeing when all three must": "Fewer than `quorum` teachers agree: return None.",
    "teachers that gave no answer": "None is not an answer: don't count it.",
    "no teacher with an answer": "An answer that is None or blank counts for nobody: return None.",
    "two answers that both reach the quorum": "Two different answers each reached the quorum: that is a "
    "disagreement, return None.",
    "a word answer in different cases and spacing": "Compare text answers lower-cased, with runs of spaces "
    "made one and the ends stripped.",
    "zero written three ways": "'-0', '0.0' and '0' are the same number: '0'.",
    "a random vote": "Normalise each answer, count the non-empty ones, and return the one answer that reaches "
    "the quorum (None if none does, or if two do).",
}


def _check_consensus(c) -> str:
    fn = c.get("consensus", callable_=True)
    cases = _consensus_cases(c.rng)
    for answers, quorum, probe in cases:
        label = f"consensus({show_input(answers, 90)}, quorum={quorum})"
        got = c.call(fn, dict(answers), quorum, label=label)
        want = reference_consensus(answers, quorum)
        if got == want:
            continue
        if want is not None and got is not None and reference_normal(str(got)) == want:
            c.fail(f"{label} returned {got!r}; return the answer in its normal form, {want!r}.")
        raw = [str(a).strip() for a in answers.values() if a is not None and str(a).strip()]
        advice = name_the_slip(got, [
            (lambda: max(set(raw), key=raw.count) if raw else None,
             "That is the most common answer, with no quorum and no normal form: keep an answer only when at "
             "least `quorum` teachers gave it."),
        ], default=_CONSENSUS_ADVICE[probe])
        c.fail(f"{label} returned {show_input(got, 30)}; this case tests {probe}. {advice}")
    return f"{len(cases)} fresh votes among 2-5 teachers (numbers in several forms, words, blanks, split quorums) decided right."


ex2 = CodingExercise(
    "ex2", LAB, names="consensus", checker=_check_consensus, points=2,
    refuses=("synthkit.pipeline.consensus", "synthkit.pipeline.normal_answer"),
    title="Keep what the teachers agree on",
    hints=[
        "Write a small normaliser first: strip; if the text without commas matches r'-?\\d+(\\.\\d+)?', it is a "
        "number (drop trailing zeros after the point, then a trailing point; '-0' becomes '0'); otherwise "
        "lower-case it and join its words with single spaces. None or blank: no answer.",
        "Count the normalised answers (a dict or collections.Counter), skipping None.",
        "Collect every answer whose count is >= quorum. Exactly one: return it. None or two: return None.",
    ],
)


# --- exercise 3: an artefact's lineage --------------------------------------------------------
def _hexid(rng) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(8))


_KINDS = ("teacher", "instructions", "responses", "kept", "audit", "sft-model", "pairs", "dpo-model", "card")


def _graph(rng) -> tuple[list[dict], str]:
    """A random pipeline DAG in a shuffled list, and the id of one artefact in it."""
    n = rng.randint(3, 9)
    ids = [_hexid(rng) for _ in range(n)]
    manifests = []
    for i, node in enumerate(ids):
        parents = rng.sample(ids[:i], rng.randint(0, min(3, i))) if i else []
        manifests.append({"id": node, "kind": _KINDS[i % len(_KINDS)], "parents": parents})
    for _ in range(rng.randint(0, 3)):   # artefacts that are not ancestors of anything asked
        manifests.append({"id": _hexid(rng), "kind": "other", "parents": rng.sample(ids, 1)})
    final = ids[-1] if rng.random() < 0.7 else rng.choice(ids[1:])
    rng.shuffle(manifests)
    return manifests, final


def _ancestors(manifests, final) -> set[str]:
    by_id = {m["id"]: m for m in manifests}
    seen, todo = set(), [final]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += by_id[node]["parents"]
    return seen


def _expect_error(c, fn, manifests, final, label, what, names) -> None:
    """The call must raise ValueError whose message names one of `names`."""
    try:
        got = c.call(fn, manifests, final, label=label)
    except Raised as e:
        if " raised ValueError" not in str(e):
            c.fail(f"{label} should raise ValueError ({what}), but {e}")
        if not any(n in str(e) for n in names):
            c.fail(f"{label} raised ValueError, good, but its message should name the id at fault "
                   f"({' or '.join(map(repr, names))}) so the user can find it: {e}")
        return
    c.fail(f"{label} returned {show_input(got, 60)}; {what}: raise ValueError naming {names[0]!r}.")


def _check_lineage(c) -> str:
    fn = c.get("lineage", callable_=True)
    rng = c.rng
    for trial in range(12):
        manifests, final = _graph(rng)
        if trial == 0:   # a diamond: two paths to the same ancestor
            t, a, b, m = (_hexid(rng) for _ in range(4))
            manifests = [{"id": m, "kind": "model", "parents": [a, b]}, {"id": a, "kind": "kept", "parents": [t]},
                         {"id": b, "kind": "pairs", "parents": [t]}, {"id": t, "kind": "teacher", "parents": []}]
            final = m
        label = f"lineage(<{len(manifests)} manifests>, {final!r})"
        given = [dict(x, parents=list(x["parents"])) for x in manifests]
        got = c.call(fn, given, final, label=label)
        if given != manifests:
            c.fail(f"{label} changed the manifests it was given; read them, don't edit them.")
        if not isinstance(got, list) or not all(isinstance(x, str) for x in got):
            c.fail(f"{label} returned {show_input(got, 60)}; return a list of ids (strings).")
        want = _ancestors(manifests, final)
        if len(got) != len(set(got)):
            dup = next(x for x in got if got.count(x) > 1)
            c.fail(f"{label} lists {dup!r} more than once: an ancestor reached by two paths appears once.")
        if set(got) != want:
            missing, extra = want - set(got), set(got) - want
            c.fail(f"{label}: " + (f"missing {sorted(missing)[0]!r}, an ancestor (follow 'parents' all the way up). "
                                   if missing else "") +
                   (f"{sorted(extra)[0]!r} is not an ancestor of {final!r}: list only what it was made from."
                    if extra else ""))
        if got[-1] != final:
            c.fail(f"{label} should end with {final!r} itself (parents before children, the artefact last).")
        position = {x: i for i, x in enumerate(got)}
        by_id = {m["id"]: m for m in manifests}
        for node in got:
            late = [p for p in by_id[node]["parents"] if position[p] > position[node]]
            if late:
                c.fail(f"{label} puts {node!r} before its parent {late[0]!r}: every parent must come before "
                       f"the artefacts made from it.")
    t, a, gone = _hexid(rng), _hexid(rng), _hexid(rng)
    _expect_error(c, fn, [{"id": t, "kind": "teacher", "parents": []}, {"id": a, "kind": "kept", "parents": [t, gone]}],
                  a, f"lineage(<2 manifests>, {a!r}) where a parent has no manifest", "a parent has no manifest", (gone,))
    x, y, z = _hexid(rng), _hexid(rng), _hexid(rng)
    _expect_error(c, fn, [{"id": x, "kind": "a", "parents": [z]}, {"id": y, "kind": "b", "parents": [x]},
                          {"id": z, "kind": "c", "parents": [y]}],
                  y, f"lineage(<3 manifests>, {y!r}) where the parents run in a loop", "the parents form a loop", (x, y, z))
    _expect_error(c, fn, [{"id": x, "kind": "a", "parents": []}], z,
                  f"lineage(<1 manifest>, {z!r}) for an id with no manifest", "no manifest has that id", (z,))
    return ("12 fresh pipelines (diamonds, unrelated artefacts, shuffled lists) traced right; a missing parent, a "
            "loop and an unknown id refused by name.")


ex3 = CodingExercise(
    "ex3", LAB, names="lineage", checker=_check_lineage, points=3,
    refuses=("synthkit.pipeline.lineage",),
    title="Trace a model back to its teacher: the lineage of an artefact",
    hints=[
        "Index the manifests by id first: by_id = {m['id']: m for m in manifests}. An id not in it (the final "
        "one, or a parent) is a ValueError naming that id.",
        "Walk depth first from `final`: visit every parent, then append the node itself. A node appended "
        "after all its parents puts parents first; skip nodes already done so each appears once.",
        "For loops, mark a node 'open' while you walk its parents and 'done' after: meeting an 'open' node "
        "again means you went round in a circle; raise ValueError naming it.",
    ],
)


# --- essay 1 --------------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=3, title="A customer-support pipeline, designed from your own measurements",
    prompt="""
        A company asks you to build the training data for a customer-support assistant (a 1-3B model
        it will sell to other businesses). Design the pipeline using numbers this course made you
        measure, not general advice. Say: which teachers you would use and why their terms allow it
        (lab 09); what you would verify by program and what only a judge can decide, and how far you
        would trust that judge given what lab 04's self-judge and lab 05's critique accuracy showed;
        what you would reject and what rejecting costs in variety (labs 04 and 10); how many teachers,
        given what this lab's consensus measured about accuracy, coverage and diversity; which
        safeguards against collapse you would keep (lab 08: real data share, fresh data, several
        teachers) and how you would know they work; and what the audit must clear before any record
        is trained on. End with the one measurement you would run first, and what result would make
        you change the design.
    """,
    hints=["Open the tables of labs 04, 05, 08, 09 and this one side by side. For each design choice, cite "
           "the number that supports it and the number that would overturn it."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - Teachers: open-weight models whose terms allow training other models on their outputs (Apache-2.0
          rows of the terms table, Llama 3.1 with its naming condition), plus the company's own earlier
          models; no API-only teacher for a product sold to others. Provenance on every record.
        - Verifiable parts (order numbers, refund arithmetic, policy lookups with a known answer, contact
          details that must never appear) get programs; tone and helpfulness need a judge. How far to trust
          it comes from the student's own runs: lab 04's self-judge false-accept rate and lab 05's critique
          accuracy against an always-No critic. A judge that lets most wrong replies through only ranks;
          audit a sample by hand, and measure its false accepts.
        - Rejection may narrow: compare distinct answers and distinct-2 of the kept set and of all samples
          (at equal set sizes) in lab 04 and here; keep several distinct kept replies per prompt and track
          diversity as a release gate.
        - Agreement is evidence (self-consistency), limited by shared mistakes: cite this lab's paired
          majority-vote lines and how often teachers that were both wrong gave the same wrong answer.
          Related teachers (a base and its own fine-tunes) share more errors than unrelated ones.
        - Collapse: keep a fixed share of real human support transcripts in every round (lab 08: accumulate
          and fresh data held the tail, replace lost it), watch tail coverage and perplexity on held-out real
          tickets each round.
        - Audit before training: PII (customers' e-mails and card numbers), overlap with the evaluation
          tickets, missing provenance; a dataset card.
        - First measurement: one round against an unfiltered control of the same size and the untrained
          model shown examples, strict and lenient, paired on the same held-out items; if the student is not
          higher than both, or diversity falls below the real data's, change the filter before scaling.
    """,
)


# --- the concept check: the chapter's eight points ---------------------------------------------
quiz = Quiz(LAB, [
    Question("Why does the course say the data cliff is real?",
             ["Because synthetic text cannot be filtered, so only human text can be used for pretraining",
              "Because good human text is finite: one 2024 run used up to a third of the filtered web",
              "Because tokenizers stop improving beyond a few trillion tokens of training text",
              "Because copyright law forbids any further crawling of the public web after 2024"],
             answer=1,
             why="Chapter 01: a 2024 frontier run saw 10-15T tokens, a fifth to a third of the ~50T of "
                 "strictly filtered web text, and runs grow faster than the stock. Villalobos et al. (2024) "
                 "count a far larger effective stock (about 300T, of which one run is 3-5%) and still expect "
                 "it fully used between 2026 and 2032."),
    Question("In this lab's pipeline the kept set's answers are checked by the exact verifier, and the "
             "open-ended replies by the rule judge. Which of them can a model game by writing well-formed "
             "but wrong text?",
             ["Only the verifier, because it reads just the final 'Answer:' line of the reply",
              "Neither of them, because both run programs rather than asking a model for an opinion",
              "Only the rule judge: it checks the form of a reply, never whether it is right",
              "Both equally, because any program can be fooled by a long enough reply"],
             answer=2,
             why="The verifier compares the answer with a known key; the rule judge has no key, so a fluent "
                 "wrong reply passes it. That is why verifiable tasks are where rejection sampling shines."),
    Question("Three teachers, two of them fine-tuned from the third, agree on an answer. Why is that weaker "
             "evidence than agreement among three unrelated teachers?",
             ["Fine-tuned models always copy their base model's answers word for word",
              "Related teachers share the same errors, so their votes are not independent",
              "Agreement only counts when the teachers use the same chat template and tokenizer",
              "A consensus needs an odd number of teachers, and related ones count as one"],
             answer=1,
             why="A vote raises accuracy when mistakes are independent; models with one origin make the "
                 "same mistakes together, so they agree on wrong answers too."),
    Question("Which mitigation of model collapse does the chapter single out as the one that anchors the "
             "distribution?",
             ["Rejecting every generation whose perplexity under the teacher is unusually low",
              "Using a larger teacher model for every new generation of data",
              "Training on a mix that always keeps a share of real human-written data",
              "Lowering the sampling temperature so that fewer of the teacher's errors reach the data"],
             answer=2,
             why="Real data keeps the tails in the training set; lab 08's accumulate and fresh regimes held "
                 "what replace lost."),
    Question("A DPO run starts from the SFT student and uses pairs ranked by the verifier. The reference "
             "model's log-probs are computed once at the start. What does beta control?",
             ["How far the trained policy may move from that reference: smaller beta lets it go further",
              "The share of the pairs whose chosen reply was verified by a program rather than only judged",
              "The learning rate's warm-up, as a share of the whole run",
              "How many samples per prompt the SFT student draws and ranks to build the preference pairs"],
             answer=0,
             why="beta scales the log-ratio against the reference inside the DPO loss: a small beta means a "
                 "weak pull back to the reference."),
    Question("Distillation and training on a teacher's samples differ in what the student sees. What?",
             ["Nothing: both train on the teacher's sampled text and differ only in name",
              "Distillation can use the teacher's whole next-token distribution, not just the token it sampled",
              "Distillation needs no teacher at training time at all, because its labels are the human-written data",
              "Training on samples gives richer targets, since each sampled token carries all of the teacher's logits"],
             answer=1,
             why="Soft targets carry the teacher's ranking of every token (lab 06); a sample carries one "
                 "token per position. The line between them is blurry, as the chapter says."),
    Question("Chapter 10 cites Llama 3's and Gemma 2's reports on where their training data came from. "
             "Which terms-of-use question does that practice settle, and which risk is left?",
             ["It settles the teacher's terms, since they own both ends; leaked personal data is left",
              "It settles every legal question, because a lab cannot be sued over its own outputs",
              "It settles nothing: their own terms forbid training on their models' outputs",
              "It settles privacy, since their own teachers never saw personal data; the terms are left"],
             answer=0,
             why="Their data came from their own models (Llama 3's SFT responses were sampled from Meta's "
                 "previous checkpoints; Gemma 2's small models were distilled from a larger Gemma), so no "
                 "other company's terms apply. Personal data and near-verbatim copies the teacher learned "
                 "still come through, which is why the audit runs."),
    Question("In this lab the SFT student writes an 'Answer:' line far more often than the teacher asked "
             "plainly. Which comparison tells whether training taught more than that format?",
             ["The SFT student against the teacher asked plainly, scored by the strict verifier",
              "The SFT student against the teacher shown worked examples, paired, strict and lenient",
              "The SFT student against the DPO student, scored by the strict verifier alone",
              "Whether the SFT student's 95% interval and the plain teacher's interval overlap"],
             answer=1,
             why="The teacher shown worked examples writes the line with no training at all, and the lenient "
                 "reading ignores the line: a gain over that baseline, in both readings, is more than format. "
                 "Two intervals overlapping is not a test of a paired difference."),
])
