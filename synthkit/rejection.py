"""Rejection sampling: sample K answers per problem, keep the ones a quality signal accepts.

A model that solves a problem *sometimes* can be turned into a data set of problems it
solved: sample K attempts, let a signal decide which attempts are good, keep those. Train
the model on what it kept and it may solve more problems the next time (STaR, Zelikman et
al. 2022; rejection-sampling fine-tuning, Yuan et al. 2023). STaR samples each round with
the latest model but fine-tunes the *original* model on that round's kept set, every
round. Everything then hangs on the signal, so this module puts four of them side by side
on the *same* samples:

* ``exact``: a program that checks the answer (`synthkit.verify`): the final
  ``Answer: <number>`` line must be right, or the code must pass its unit tests;
* ``lax``: the right number anywhere in the reply, a checker that can be satisfied by
  accident (the chapter's "verifier exploitation" waiting to happen);
* ``majority``: vote-then-keep (self-consistency): keep the samples whose answer is the
  most common answer among the K, with no knowledge of the truth at all;
* ``judge``: the teacher asked whether its own answer is correct.

Measured against ``exact``, each signal has a false-accept rate (wrong answers it keeps)
and a false-reject rate (right answers it throws away); `signal_errors` computes both.
`rejection_sample` is the practitioner's entry point (also `synthkit rejection-sample`):
accepted and rejected records, each with its verdict, the signal and its provenance.
"""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from typing import Callable, Sequence

from . import verify
from .models.sampling import Sampling
from .records import provenance

# ---------------------------------------------------------------------------------------
# Problems and prompts
# ---------------------------------------------------------------------------------------

FORM_INSTRUCTION = "Give the final answer on its own last line, as 'Answer: <number>'."

# Two worked examples, shown as earlier turns of the conversation. The 135M teacher ignores a
# written request for an 'Answer:' line (none of 24 greedy replies to additions had one when
# this was written) but copies the form from examples (23 of 24 did). Sampling uses them;
# the training records keep only the plain prompt, so a trained model must answer in form
# without being shown how (as STaR drops its hints from the rationales it trains on).
SHOTS = (("What is 23 + 45?", "23 + 45 = 68\nAnswer: 68"),
         ("How many minutes are there in 3 hours?",
          "One hour has 60 minutes, so 3 hours have 3 * 60 = 180 minutes.\nAnswer: 180"))

# T=0.8 with top-p 0.95 gives varied attempts without much gibberish from a small model;
# 256 tokens is room for this teacher's working, so a right answer is rarely cut off.
SAMPLING = Sampling(temperature=0.8, top_p=0.95, top_k=50, max_tokens=256)
GREEDY = SAMPLING.replace(temperature=0.0)

SIGNALS = ("exact", "lax", "majority", "judge")
TECHNIQUE = "rejection-sampling"


def with_ids(tasks: list[dict], prefix: str) -> list[dict]:
    """Copies of `tasks` with an "id" each (prefix-0, prefix-1, ...) where they lack one:
    records and provenance name their problem by it."""
    return [{**t, "id": t.get("id") or f"{prefix}-{i}"} for i, t in enumerate(tasks)]


def task_prompt(task: dict) -> str:
    """The user message for a task: a code task as written, a number task with the
    instruction that asks for the ``Answer: <number>`` line the verifier reads."""
    if task.get("kind") == "code":
        return task["question"]
    return f"{task['question']}\n{FORM_INSTRUCTION}"


def task_messages(task: dict, shots: bool = True) -> list[dict]:
    """The conversation for a task: the worked examples (number tasks, with `shots`) as
    earlier turns, then the task's own prompt."""
    messages = []
    if shots and task.get("kind") != "code":
        for question, reply in SHOTS:
            messages += [{"role": "user", "content": f"{question}\n{FORM_INSTRUCTION}"},
                         {"role": "assistant", "content": reply}]
    return messages + [{"role": "user", "content": task_prompt(task)}]


def check(task: dict, reply: str) -> verify.Verdict:
    """The exact verifier for any task family."""
    if task.get("kind") == "code":
        return verify.check_code(reply, task["tests"])
    return verify.check_number(reply, task["answer"])


def check_lax(task: dict, reply: str) -> verify.Verdict:
    """The lax verifier (number tasks): the right number anywhere in the reply. For code,
    there is no lax reading: the reply must define the function the task names."""
    if task.get("kind") == "code":
        found = f"def {task['entry']}(" in (reply or "")
        return verify.Verdict(found, "defines the function" if found else "no such function")
    return verify.check_number_lax(reply, task["answer"])


def parsed_answer(task: dict, reply: str) -> str | None:
    """What a vote counts: the final number, or for code the code with its whitespace
    collapsed; None when there is nothing to count."""
    if task.get("kind") == "code":
        code = verify.extract_code(reply)
        return " ".join(code.split()) if code else None
    return verify.final_answer(reply)


# ---------------------------------------------------------------------------------------
# Sampling K attempts per problem
# ---------------------------------------------------------------------------------------

def sample_answers(model, tasks: list[dict], k: int, sampling: Sampling = SAMPLING, *, seed: int = 0,
                   shots: bool = True, progress: bool = True, cache=True, desc: str | None = None) -> list[dict]:
    """K attempts at every task, one batched call, each checked by the exact verifier.

    With `shots`, number tasks are shown the worked examples (`SHOTS`) first; "prompt" in
    the result is always the plain prompt, the one a training record should carry.

    Returns one candidate per attempt, problem-major: {"task_id", "sample", "prompt",
    "reply", "answer" (what a vote counts), "correct", "reason", "in_form", "last_number"
    (the lenient reading; None for code), "finish_reason", "tokens", "provenance"}. Generations are cached, so a second call
    with the same arguments costs nothing.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an int >= 1 (attempts per problem); got {k!r}")
    if not tasks:
        raise ValueError("no tasks to sample: pass a non-empty list of tasks")
    tasks = with_ids(tasks, "task")
    prompts = [task_prompt(t) for t in tasks]
    conversations = [task_messages(t, shots) for t in tasks]
    gens = model.chat(conversations, sampling.replace(seed=seed), n=k, progress=progress, cache=cache,
                      desc=desc or f"{k} attempts x {len(tasks)} problems")
    out = []
    for i, task in enumerate(tasks):
        for j in range(k):
            g = gens[i * k + j]
            verdict = check(task, g.text)
            out.append({"task_id": task["id"], "sample": j, "prompt": prompts[i], "reply": g.text,
                        "answer": parsed_answer(task, g.text), "correct": verdict.passed,
                        "reason": verdict.reason,
                        "in_form": (verify.extract_code(g.text) is not None if task.get("kind") == "code"
                                    else verify.answer_form(g.text)),
                        "last_number": None if task.get("kind") == "code" else verify.last_number(g.text),
                        "finish_reason": g.finish_reason, "tokens": g.completion_tokens,
                        "provenance": provenance(g, TECHNIQUE, getattr(model, "license", None),
                                                 task_id=task["id"], k=k, shots=shots)})
    return out


def by_task(candidates: list[dict]) -> dict[str, list[dict]]:
    """Candidates grouped by problem, in the order they came."""
    groups: dict[str, list[dict]] = {}
    for c in candidates:
        groups.setdefault(c["task_id"], []).append(c)
    return groups


# ---------------------------------------------------------------------------------------
# The signals
# ---------------------------------------------------------------------------------------

def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most common answer, ignoring None (an attempt with no readable answer).

    A tie goes to the tied answer that appeared first, so the vote is deterministic and
    does not depend on how a hash orders strings. None when no attempt has an answer.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


JUDGE_PROMPT = ("Here is a question and a proposed answer.\n\nQuestion: {question}\n\n"
                "Proposed answer:\n{reply}\n\nIs the proposed answer correct? Reply with one word, "
                "Yes or No.")
JUDGE_SAMPLING = Sampling(temperature=0.0, max_tokens=4)


def self_judge(model, tasks: list[dict], candidates: list[dict], *, seed: int = 0,
               progress: bool = True, cache=True) -> list[bool]:
    """The teacher rates its own attempts: True where its greedy verdict starts with "yes".

    This is the cheapest signal that needs no answer key, and the weakest one when the
    judge is the model that made the mistake.
    """
    by_id = {t["id"]: t for t in with_ids(tasks, "task")}
    prompts = [JUDGE_PROMPT.format(question=by_id[c["task_id"]]["question"], reply=c["reply"].strip())
               for c in candidates]
    if not prompts:
        return []
    gens = model.chat(prompts, JUDGE_SAMPLING.replace(seed=seed), progress=progress, cache=cache,
                      desc="self-judge")
    return [g.text.strip().lower().lstrip("*\"' ").startswith("yes") for g in gens]


def vote_tally(candidates: list[dict]) -> list[dict]:
    """The vote over all of each problem's attempts, and how much backing its winner had.

    Per problem: "winner" (`majority_vote` over every attempt), "votes" (attempts that gave
    the winner), "attempts", "readable" (attempts with an answer), "right" (the winner is
    an answer some attempt was verified right with) and "tie" (another answer had as many
    votes, so the winner came first rather than won). A wrong winner with one vote is a
    tie-break among answers that all differ: it says the errors scatter, not that they
    agree. Only a wrong winner backed by several attempts is a shared mistake.
    """
    rows = []
    for task_id, group in by_task(candidates).items():
        answers = [c["answer"] for c in group]
        winner = majority_vote(answers)
        counts = Counter(a for a in answers if a is not None)
        votes = counts[winner] if winner is not None else 0
        right = {c["answer"] for c in group if c["correct"]}
        rows.append({"task_id": task_id, "winner": winner, "votes": votes, "attempts": len(group),
                     "readable": sum(counts.values()), "right": winner is not None and winner in right,
                     "tie": votes > 0 and sum(n == votes for n in counts.values()) > 1})
    return rows


def add_signals(candidates: list[dict], tasks: list[dict], judge: list[bool] | None = None) -> list[dict]:
    """Each candidate's verdict under every signal, as candidate["signals"][name] (in place).

    `judge` is `self_judge`'s list for the same candidates; without it that signal is left out.
    """
    by_id = {t["id"]: t for t in with_ids(tasks, "task")}
    for group in by_task(candidates).values():
        winner = majority_vote([c["answer"] for c in group])
        for c in group:
            c["signals"] = {"exact": c["correct"],
                            "lax": check_lax(by_id[c["task_id"]], c["reply"]).passed,
                            "majority": c["answer"] is not None and c["answer"] == winner}
    if judge is not None:
        if len(judge) != len(candidates):
            raise ValueError(f"{len(judge)} judge verdicts for {len(candidates)} candidates")
        for c, ok in zip(candidates, judge):
            c["signals"]["judge"] = bool(ok)
    return candidates


def signal_errors(candidates: list[dict], signal: str, reference: str = "exact") -> dict:
    """How a signal's verdicts compare with the reference verifier's on the same attempts.

    false_accept_rate: share of the reference's *wrong* attempts the signal keeps;
    false_reject_rate: share of its *right* attempts the signal throws away;
    precision: share of what the signal keeps that is right (how clean its data set is).
    A rate with nothing to count is NaN.
    """
    pairs = [(c["signals"][signal], c["signals"][reference]) for c in candidates]
    right = sum(ref for _, ref in pairs)
    wrong = len(pairs) - right
    accepted = sum(s for s, _ in pairs)
    fa = sum(s and not ref for s, ref in pairs)
    fr = sum(ref and not s for s, ref in pairs)
    nan = float("nan")
    return {"signal": signal, "attempts": len(pairs), "accepted": accepted, "false_accepts": fa,
            "false_rejects": fr, "false_accept_rate": fa / wrong if wrong else nan,
            "false_reject_rate": fr / right if right else nan,
            "precision": (accepted - fa) / accepted if accepted else nan}


# ---------------------------------------------------------------------------------------
# Accuracy as K grows
# ---------------------------------------------------------------------------------------

def expected_over_subsets(items: Sequence, k: int, decide: Callable[[list], float], *,
                          draws: int = 300, seed: int = 0) -> float:
    """The mean of decide(subset) over the size-k subsets of `items`: every subset when
    there are at most `draws` of them, else `draws` random ones (fixed seed)."""
    n = len(items)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and {n}; got {k}")
    if math.comb(n, k) <= draws:
        subsets = [list(s) for s in itertools.combinations(items, k)]
    else:
        rng = random.Random(seed)
        subsets = [rng.sample(list(items), k) for _ in range(draws)]
    return sum(decide(s) for s in subsets) / len(subsets)


def majority_at_k(candidates: list[dict], k: int, **kw) -> float:
    """Accuracy of majority-of-k: the share of problems where the vote over k attempts
    (averaged over which k) is the right answer."""
    scores = []
    for group in by_task(candidates).values():
        right = {c["answer"] for c in group if c["correct"]}

        def decide(subset, right=right):
            return float(majority_vote([c["answer"] for c in subset]) in right)

        scores.append(expected_over_subsets(group, k, decide, **kw))
    return sum(scores) / len(scores)


def select_at_k(candidates: list[dict], k: int, signal: str, **kw) -> float:
    """Accuracy of best-of-k with a signal: among k attempts, hand in one the signal
    accepts (each equally likely), or nothing when it accepts none. With the exact
    verifier this is pass@k."""
    scores = []
    for group in by_task(candidates).values():
        def decide(subset):
            kept = [c for c in subset if c["signals"][signal]]
            return sum(c["correct"] for c in kept) / len(kept) if kept else 0.0

        scores.append(expected_over_subsets(group, k, decide, **kw))
    return sum(scores) / len(scores)


def pass_at_k(candidates: list[dict], k: int) -> float:
    """Mean unbiased pass@k over problems (Chen et al. 2021, `metrics.pass_at_k`)."""
    from .metrics import pass_at_k as estimator

    groups = by_task(candidates).values()
    return sum(estimator(len(g), sum(c["correct"] for c in g), k) for g in groups) / len(groups)


# ---------------------------------------------------------------------------------------
# Confidence intervals and greedy evaluation
# ---------------------------------------------------------------------------------------

def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% with z=1.96).

    Unlike the textbook p ± z·sqrt(p(1-p)/n), it stays inside [0, 1] and does not
    collapse to zero width at 0 or n successes, which small evaluations hit often.
    """
    if n <= 0:
        raise ValueError("an interval needs at least one trial (n >= 1)")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}; got {successes}")
    from statistics import NormalDist

    from .metrics import share_interval  # the one Wilson interval in the library
    return share_interval(successes, n, confidence=2 * NormalDist().cdf(z) - 1)


def evaluate(model, tasks: list[dict], *, sampling: Sampling = GREEDY, seed: int = 0, shots: bool = False,
             progress: bool = True, cache=True, desc: str = "greedy evaluation") -> dict:
    """Greedy accuracy on `tasks`, with the form and the content told apart.

    By default the plain prompt (no worked examples): what a trained model is asked.

    Keys: n; accuracy (exact verifier) and its Wilson interval `ci`; in_form (share with
    an ``Answer:`` line, or with code for code tasks); accuracy_in_form (right among those
    in form); lenient (the last number in the reply is right, whatever the form; number
    tasks only); truncated (share that hit max_tokens); mean_tokens; replies.
    The same outcomes problem by problem, in the order of `tasks`, for a paired comparison
    of two models on the same problems (`metrics.paired_difference`): correct, in_form_each
    and lenient_each (None for a code task, which has no lenient reading).
    """
    cands = sample_answers(model, tasks, 1, sampling, seed=seed, shots=shots, progress=progress,
                           cache=cache, desc=desc)
    tasks = with_ids(tasks, "task")
    n = len(cands)
    correct = sum(c["correct"] for c in cands)
    in_form = sum(c["in_form"] for c in cands)
    lenient_each = [None if t.get("kind") == "code"
                    else verify.last_number(c["reply"]) == verify._normal(t["answer"])
                    for t, c in zip(tasks, cands)]
    numeric = [ok for ok in lenient_each if ok is not None]
    lenient = sum(numeric)
    return {"n": n, "accuracy": correct / n, "ci": wilson_interval(correct, n),
            "in_form": in_form / n,
            "accuracy_in_form": correct / in_form if in_form else float("nan"),
            "lenient": lenient / len(numeric) if numeric else float("nan"),
            "truncated": sum(c["finish_reason"] == "length" for c in cands) / n,
            "mean_tokens": sum(c["tokens"] for c in cands) / n,
            "replies": [c["reply"] for c in cands], "correct": [c["correct"] for c in cands],
            "in_form_each": [c["in_form"] for c in cands], "lenient_each": lenient_each}


# ---------------------------------------------------------------------------------------
# Diversity of a set of attempts
# ---------------------------------------------------------------------------------------

def _lenient(candidate: dict) -> str | None:
    return candidate.get("last_number") or candidate.get("answer")


def task_diversity(candidates: list[dict]) -> list[dict]:
    """`attempt_diversity`'s two per-problem numbers, problem by problem (in the order the
    problems came), so two models sampled on the same problems can be compared pairwise:
    {"task_id", "distinct_replies", "distinct_answers"}."""
    return [{"task_id": task_id,
             "distinct_replies": len({c["reply"].strip() for c in g}) / len(g),
             "distinct_answers": len({a for a in map(_lenient, g) if a is not None})}
            for task_id, g in by_task(candidates).items()]


def attempt_diversity(candidates: list[dict]) -> dict:
    """How varied the attempts at each problem are, averaged over problems.

    distinct_replies: share of a problem's attempts whose text is not a copy of another;
    distinct_answers: different answers per problem, read leniently (the last number in
    the reply, whatever its form, so a model that ignores the 'Answer:' line is not
    counted as having no answers; for code, the code itself); distinct_2: distinct word
    bigrams over all attempts (`metrics.distinct_n`); mean_words: attempt length. A model
    collapsing onto one way of answering shows up first in the first two.
    """
    from .metrics import distinct_n

    per_task = task_diversity(candidates)
    if not per_task:
        raise ValueError("no attempts to measure")
    replies = [c["reply"] for c in candidates]
    return {
        "attempts": len(candidates),
        "distinct_replies": sum(t["distinct_replies"] for t in per_task) / len(per_task),
        "distinct_answers": sum(t["distinct_answers"] for t in per_task) / len(per_task),
        "distinct_2": distinct_n(replies, 2),
        "mean_words": sum(len(r.split()) for r in replies) / len(replies),
    }


# ---------------------------------------------------------------------------------------
# The data set: accepted and rejected records
# ---------------------------------------------------------------------------------------

def to_records(candidates: list[dict], signal: str, *, max_per_task: int | None = None,
               dedupe: bool = True) -> tuple[list[dict], list[dict]]:
    """Split candidates into (accepted, rejected) training records by one signal.

    A record has prompt and response (what `synthkit.train.sft` reads), the task's id,
    the verdict {"accepted", "signal", "reason", every signal's vote} and provenance.
    With `dedupe`, a second copy of the same reply to the same problem is rejected as a
    duplicate; with `max_per_task`, at most that many are kept per problem, so easy
    problems do not crowd out the rest. Signal "none" accepts everything: the unfiltered
    control arm of an experiment.
    """
    if signal not in SIGNALS + ("none",):
        raise ValueError(f"unknown signal {signal!r}; choose one of {SIGNALS + ('none',)}")
    accepted, rejected = [], []
    for group in by_task(candidates).values():
        seen: set[str] = set()
        for c in group:
            if signal != "none" and signal not in c.get("signals", {}):
                raise ValueError(f"candidate {c['task_id']}/{c['sample']} has no {signal!r} verdict: "
                                 f"run add_signals (and self_judge for 'judge') first")
            ok = True if signal == "none" else c["signals"][signal]
            reason = c["reason"] if signal == "exact" else "unfiltered" if signal == "none" else \
                ("accepted" if ok else "rejected") + f" by {signal}"
            key = c["reply"].strip()
            if ok and dedupe and key in seen:
                ok, reason = False, "duplicate of an accepted reply"
            elif ok and max_per_task is not None and len(seen) >= max_per_task:
                ok, reason = False, f"over the cap of {max_per_task} per problem"
            if ok:
                seen.add(key)
            record = {"prompt": c["prompt"], "response": c["reply"], "task_id": c["task_id"],
                      "verdict": {"accepted": ok, "signal": signal, "reason": reason, **c["signals"]},
                      "provenance": c["provenance"]}
            (accepted if ok else rejected).append(record)
    return accepted, rejected


def rejection_sample(model, tasks: list[dict], k: int = 8, signal: str = "exact", *,
                     sampling: Sampling = SAMPLING, seed: int = 0, max_per_task: int | None = None,
                     progress: bool = True, cache=True) -> tuple[list[dict], list[dict]]:
    """Sample `k` attempts per task and keep those `signal` accepts: (accepted, rejected).

    The whole technique in one call, for practitioners and the CLI. Every record carries
    its verdict under each signal computed (the judge only when it is the one asked for,
    since it costs a model call per attempt).
    """
    if signal not in SIGNALS:
        raise ValueError(f"unknown signal {signal!r}; choose one of {SIGNALS}")
    tasks = with_ids(tasks, "task")
    candidates = sample_answers(model, tasks, k, sampling, seed=seed, progress=progress, cache=cache)
    judge = self_judge(model, tasks, candidates, seed=seed, progress=progress, cache=cache) \
        if signal == "judge" else None
    add_signals(candidates, tasks, judge)
    return to_records(candidates, signal, max_per_task=max_per_task)
