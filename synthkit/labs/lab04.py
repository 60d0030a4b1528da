"""Lab 04 — Rejection sampling: three exercises, one essay and a concept check.

Used by ``labs/04_rejection_sampling.ipynb``::

    from synthkit.labs.lab04 import ex1, ex2, ex3, essay1, quiz

The checks need no model: they call the student's functions on fresh random inputs and
compare with exact references (a brute-force count for pass@k, the library's vote and
verifier), and each refuses the library's own function running inside the student's.
"""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

from ..grading.checks import close, is_number, name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "04"
TITLE = "Rejection sampling: keep what a verifier accepts, and train on it"
NOTEBOOK = "04_rejection_sampling.ipynb"

# One-slip mutants of the reference solutions that no allowed input can tell apart from them
# (python -m synthkit.grading.mutants 04 lists the rest, and every one of those fails its check).
EQUIVALENT_MUTANTS = {"ex2": {
    "if n - c < k: :: `-` -> `+`":
        "when n - c < k <= n, the product's factors include j = k, where 1 - k/j is 0, so the formula "
        "also gives 1.0; only k > n tells them apart, and k attempts cannot be drawn from fewer than k",
}}


# --- exercise 1: check_answer (the exact verifier) -------------------------------------
_WORDS = ("first", "add", "the", "tens", "ones", "carry", "so", "we", "get", "total", "is", "then",
          "plus", "equals", "step", "sum", "makes", "left", "result")


def _prose(rng, low=3, high=12) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(low, high))]
    if rng.random() < 0.6:
        words.insert(rng.randrange(len(words) + 1), str(rng.randint(0, 999)))
    return " ".join(words).capitalize() + rng.choice((".", ":", "", "!"))


def _spell(value: int, rng) -> str:
    """One of the ways a model writes a number: 1250, 1,250, 1250.0."""
    text = str(value)
    if abs(value) >= 1000 and rng.random() < 0.5:
        text = f"{value:,}"
    if rng.random() < 0.2:
        text += rng.choice((".0", ".00"))
    return text


def _answer_line(value_text: str, rng) -> str:
    label = rng.choice(("Answer:", "answer:", "ANSWER:", "**Answer:**", "Answer :"))
    return f"{rng.choice(('', ' ', '  '))}{label}{rng.choice((' ', '  ', ''))}{value_text}" + \
        rng.choice(("", ".", " apples", " ", "!"))


def _reply_cases(rng) -> list[tuple[str, str, str]]:
    """(reply, the known answer, what the case probes), fresh each time."""
    cases = []

    def answer():
        return rng.choice((rng.randint(0, 200), rng.randint(1000, 99999), -rng.randint(1, 99)))

    for _ in range(5):  # right, with working and other numbers around it
        a = answer()
        lines = [_prose(rng) for _ in range(rng.randint(0, 3))] + [_answer_line(_spell(a, rng), rng)]
        cases.append(("\n".join(lines), str(a), "a right answer"))
    for _ in range(4):  # wrong final answer, right number elsewhere
        a = answer()
        lines = [f"{_prose(rng)} {a}.", _answer_line(_spell(a + rng.choice((1, -1, 10)), rng), rng)]
        cases.append(("\n".join(lines), str(a), "a wrong final answer (the right number appears earlier)"))
    for _ in range(3):  # no answer line at all: the right number is there, but not in the form
        a = answer()
        cases.append((f"{_prose(rng)} The total is {_spell(a, rng)}.", str(a), "no 'Answer:' line"))
    for _ in range(2):  # "answer:" inside a sentence does not count
        a = answer()
        cases.append((f"{_prose(rng)} so the answer: {a}", str(a), "'Answer:' not at the start of a line"))
    for _ in range(3):  # two answer lines: the last one counts
        a, b = answer(), answer()
        while b == a:
            b = answer()
        lines = [_answer_line(str(b), rng), _prose(rng), _answer_line(_spell(a, rng), rng)]
        if rng.random() < 0.5:
            lines = [lines[2], lines[1], lines[0]]
            cases.append(("\n".join(lines), str(a), "two 'Answer:' lines (the last one counts)"))
        else:
            cases.append(("\n".join(lines), str(a), "two 'Answer:' lines (the last one counts)"))
    for _ in range(2):  # the last answer line has no number after the colon
        a = answer()
        cases.append((f"Answer: {a}\n{_prose(rng)}\nAnswer: I am not sure", str(a),
                      "a last 'Answer:' line without a number"))
    a = rng.randint(10, 99)
    cases.append((f"Answer: {a}{rng.randint(0, 9)}", str(a), "a longer number that starts with the answer"))
    a = rng.randint(10, 99)
    cases.append((f"Answer: -{a}", str(a), "the sign"))
    cases.append(("", str(rng.randint(0, 9)), "an empty reply"))
    # a decimal part, on every run (a bare answer line, so the message shows it whole): zeros only
    # leave the number as it is, any other digit does not
    a = rng.choice((rng.randint(1, 999), rng.randint(1000, 99999), -rng.randint(1, 99)))
    text = (f"{a:,}" if abs(a) >= 1000 and rng.random() < 0.5 else str(a)) + \
        rng.choice((".0", ".00", ".000"))
    cases.append((_answer_line(text, rng), str(a), "zeros after the decimal point (the same number)"))
    a = rng.choice((rng.randint(1, 999), -rng.randint(1, 99)))
    decimals = [rng.choice("123456789"), "0"] + [rng.choice("0123456789") for _ in range(rng.randint(0, 1))]
    rng.shuffle(decimals)
    cases.append((_answer_line(f"{a}.{''.join(decimals)}", rng), str(a),
                  "a decimal part that is not all zeros (a different number)"))
    rng.shuffle(cases)
    return cases


_REPLY_ADVICE = {
    "a right answer": "Read the number right after the colon: allow spaces and asterisks around the "
                      "label, commas between thousands and a decimal part of zeros (1,250.0 is 1250).",
    "a wrong final answer": "Only the number on the 'Answer:' line counts, not numbers in the working.",
    "no 'Answer:' line": "Without an 'Answer:' line the reply is not in the expected form: False.",
    "'Answer:' not at the start": "The label must start its line (after spaces or asterisks only).",
    "two 'Answer:' lines": "When there are several 'Answer:' lines, the last one is the model's final word.",
    "a last 'Answer:' line without": "The last 'Answer:' line decides; with no number right after its "
                                     "colon, the reply fails.",
    "a longer number": "Compare whole numbers, not a prefix of the text.",
    "the sign": "A minus sign belongs to the number.",
    "an empty reply": "An empty reply has no answer: False.",
    "zeros after the decimal point": "A decimal part made only of zeros does not change the number: "
                                     "drop it (point included) and keep the whole part before comparing.",
    "a decimal part that is not all zeros": "Drop a decimal part only when every digit in it is a zero; "
                                            "any other digit makes it a different number.",
}


def _check_answer_checker(c) -> str:
    from ..verify import check_number

    fn = c.get("check_answer", callable_=True)
    cases = _reply_cases(c.rng)
    for reply, answer, probe in cases:
        label = f"check_answer({show_input(reply, 70)}, {answer!r})"
        got = c.call(fn, reply, answer, label=label)
        if not isinstance(got, bool):
            c.expect_type(got, bool, label)
        want = check_number(reply, answer).passed
        if got != want:
            advice = next((v for k, v in _REPLY_ADVICE.items() if probe.startswith(k)), "")
            c.fail(f"{label} returned {got} (this case tests {probe}). {advice}")
    return f"{len(cases)} fresh replies, in and out of the expected form, judged as the verifier judges them."


ex1 = CodingExercise(
    "ex1", LAB, names="check_answer", checker=_check_answer_checker, points=3,
    refuses=("synthkit.verify.check_number", "synthkit.verify.final_answer",
             "synthkit.rejection.check"),
    title="A verifier for number problems: the 'Answer:' line",
    hints=[
        "Work line by line (reply.splitlines()). An answer line, once spaces and asterisks are stripped "
        "from its left, starts with 'answer' in any case followed by a colon (spaces or asterisks may "
        "come between). Keep the last such line; none means False.",
        "One regular expression finds the label and what follows it: "
        "re.findall(r\"^[ *]*answer[ *]*:[ *]*(.*)$\", reply, re.I | re.M). On the last match, "
        "re.match(r\"-?\\d[\\d,]*(?:\\.\\d+)?\", rest) reads the number, or fails when none follows.",
        "Normalise before comparing: drop commas; if there is a decimal part made only of zeros, drop "
        "it; compare the string with the answer (turn '-0' into '0').",
    ],
)


# --- exercise 2: pass_at_k -------------------------------------------------------------
def _brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of the size-k subsets of n attempts (c of them right) with a right one."""
    attempts = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(attempts[i] for i in s) for s in subsets), len(subsets))


def _exact_pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n-c, k)/C(n, k) with Python's exact integers (slow for huge n, never wrong)."""
    if n - c < k:
        return 1.0
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def _check_pass_at_k(c) -> str:
    fn = c.get("pass_at_k", callable_=True)
    rng = c.rng
    cases = [(1, 0, 1), (1, 1, 1), (5, 0, 3), (5, 5, 1), (6, 2, 5), (6, 1, 6)]
    for _ in range(14):  # small: checked against every subset
        n = rng.randint(1, 12)
        cases.append((n, rng.randint(0, n), rng.randint(1, n)))
    for _ in range(6):  # large: float factorials or comb() ratios overflow or lose everything
        n = rng.randint(2_000, 200_000)
        k = rng.randint(1, min(n, 2_000))
        cases.append((n, rng.choice((1, 2, rng.randint(0, n // 100), rng.randint(0, n))), k))
    cases.append((100_000, 3, 1000))
    rng.shuffle(cases)
    for n, correct, k in cases:
        label = f"pass_at_k(n={n}, c={correct}, k={k})"
        got = c.call(fn, n, correct, k, label=label)
        if not is_number(got):
            c.expect_type(got, float, label)
        want = float(_brute_pass_at_k(n, correct, k)) if n <= 12 else _exact_pass_at_k(n, correct, k)
        if close(got, want, 1e-9 + 1e-9 * abs(want)):
            continue
        if not math.isfinite(float(got)):
            c.fail(f"{label} returned {got!r}. With n in the thousands, C(n, k) is far beyond what a float "
                   f"holds; divide the binomials term by term instead of computing each one.")
        advice = name_the_slip(got, [
            (lambda: 1 - (1 - correct / n) ** k,
             "That is 1 - (1 - c/n)^k, the chance with samples drawn *with* replacement. pass@k asks "
             "about k distinct attempts out of the n you have: count subsets without a right one."),
            (lambda: correct / n, "That is c/n, pass@1, whatever k is."),
            (lambda: math.comb(n - correct, k) / math.comb(n, k),
             "That is the chance that *no* attempt among the k is right; pass@k is one minus it."),
            (lambda: min(1.0, k * correct / n), "k·c/n is a union bound, not the probability."),
        ], default="pass@k = 1 - C(n-c, k) / C(n, k): one minus the chance that a random set of k of "
                   "the n attempts holds none of the c right ones.")
        c.fail(f"{label} returned {got!r}, which is not the unbiased pass@k. {advice}")
    return (f"{len(cases)} fresh cases, from n=1 to n={max(n for n, _, _ in cases):,}, agree with a "
            f"count over every subset (small n) or exact integer arithmetic (large n).")


ex2 = CodingExercise(
    "ex2", LAB, names="pass_at_k", checker=_check_pass_at_k, points=2, time_limit=10.0,
    refuses=("synthkit.metrics.pass_at_k", "synthkit.rejection.pass_at_k"),
    title="pass@k, the unbiased way, for any n",
    hints=[
        "Draw k of the n attempts without putting any back. pass@k fails only when all k come from the "
        "n - c wrong ones, so pass@k = 1 - C(n-c, k) / C(n, k). When n - c < k, every draw holds a right "
        "one: the answer is 1.0.",
        "Factorials of n = 200,000 overflow a float, so never form C(n, k) itself. The ratio "
        "C(n-c, k) / C(n, k) is a product of k fractions (n-c-i)/(n-i) for i = 0 … k-1, each "
        "between 0 and 1: multiply those, and no number ever gets large.",
        "Cancelling the same factorials the other way gives a product of c fractions instead: "
        "the product of (1 - k/i) for i from n-c+1 to n. With numpy that is one np.prod over an "
        "np.arange of those i; remember the early return for n - c < k.",
    ],
)


# --- exercise 3: majority_vote ---------------------------------------------------------
def reference_vote(answers):
    """The most common non-None answer; a tie goes to the one that appeared first."""
    counts: dict = {}
    for a in answers:
        if a is not None:
            counts[a] = counts.get(a, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == best)


def _vote_cases(rng) -> list[tuple[list, str]]:
    """(answers, what the case probes), fresh each time."""
    pool = [str(rng.randint(0, 200)) for _ in range(6)]
    cases = [([], "an empty list"), ([None] * rng.randint(1, 5), "no readable answer at all")]
    for _ in range(6):
        cases.append(([rng.choice(pool + [None]) for _ in range(rng.randint(1, 12))], "a random vote"))
    for _ in range(5):  # a tie between two answers, in random positions, with Nones around
        a, b = rng.sample(pool, 2)
        votes = [a, b] * rng.randint(1, 3) + [None] * rng.randint(0, 3) + \
                [rng.choice([p for p in pool if p not in (a, b)])] * rng.randint(0, 1)
        rng.shuffle(votes)
        cases.append((votes, "a tie"))
    for _ in range(3):  # None is the most common entry but must not win
        a = rng.choice(pool)
        votes = [None] * 4 + [a] + [rng.choice(pool)] * 2
        rng.shuffle(votes)
        cases.append((votes, "more unreadable attempts than any answer"))
    for _ in range(2):  # the first readable answer loses: the winner comes later in the list
        a, b = rng.sample(pool, 2)
        rest = [a] * 3 + [b] + [None] * rng.randint(0, 2)
        rng.shuffle(rest)
        cases.append(([None] * rng.randint(0, 2) + [b] + rest, "a winner that is not the first answer"))
    # sorting would pick one of these whatever the order: "9" > "10" as text, 10 > 9 as numbers
    cases.append((["10", "9", "10", "9"], "a tie"))
    cases.append((["9", "10", "9", "10"], "a tie"))
    rng.shuffle(cases)
    return cases


_VOTE_ADVICE = {
    "an empty list": "With no attempts there is no answer: return None.",
    "no readable answer at all": "None means an attempt had no readable answer; with only those, return None.",
    "a random vote": "Count each answer (skipping None) and return the most common.",
    "a tie": "On a tie, return the tied answer that appears first in the list, whatever its value.",
    "more unreadable attempts than any answer": "None is not an answer: leave it out of the count.",
    "a winner that is not the first answer": "Return the most common answer, wherever it first appears, "
                                             "not simply the first readable one.",
}


def _check_majority_vote(c) -> str:
    fn = c.get("majority_vote", callable_=True)
    cases = _vote_cases(c.rng)
    for answers, probe in cases:
        label = f"majority_vote({show_input(answers, 80)})"
        got = c.call(fn, list(answers), label=label)
        want = reference_vote(answers)
        if got == want and type(got) is type(want):
            continue
        counts = {a: answers.count(a) for a in answers if a is not None}
        advice = _VOTE_ADVICE[probe]
        if got is None and want is not None and len(counts) and \
                list(counts.values()).count(max(counts.values())) > 1:
            advice = "A tie still has a winner here: the tied answer that appears first."
        elif got is not None and got not in answers:
            advice = "Return one of the answers as it is (a string), not its count or position."
        c.fail(f"{label} returned {show_input(got, 30)} (this case tests {probe}). {advice}")
    return f"{len(cases)} fresh votes, with ties, unreadable attempts and empty lists, decided right."


ex3 = CodingExercise(
    "ex3", LAB, names="majority_vote", checker=_check_majority_vote, points=2,
    refuses=("synthkit.rejection.majority_vote",),
    title="Vote-then-keep: a majority vote with ties and unreadable answers",
    hints=[
        "Count how often each answer occurs, skipping None (a dict or collections.Counter). The winner "
        "is an answer with the highest count; with nothing counted, return None.",
        "For ties, walk the list in order and return the first answer whose count equals the highest "
        "count: best = max(counts.values()); return next(a for a in answers if a is not None and "
        "counts[a] == best).",
    ],
)


# --- essay 1 ---------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="Confirmation bias in what you keep",
    prompt="""
        The chapter warns that rejecting samples that "look wrong" can throw away answers that are
        right but unconventional, and so narrow the range of reasoning a model is trained on. Use what
        you measured in this lab: which of the four signals rejected right answers, how often, and what
        did those answers have in common? What happened to the variety of the kept answers and of the
        trained model's samples? Then describe how you would build a rejection-sampling pipeline for
        grade-school maths (or for code) that keeps its data set both correct and varied: what you would
        verify, what you would deliberately *not* require, and what you would measure each round.
    """,
    hints=["Look at the false-reject column of the signal table and read a few of the rejected right "
           "answers. Was the problem the answer, or its form? Then compare the distinct-answer and "
           "distinct-reply numbers before and after training."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - In the lab, the exact verifier rejects right answers that are not in the 'Answer: N' form
          (the lenient, last-number reading shows how many); majority vote rejects every right answer
          that lost the vote, often on exactly the problems where the model is least sure; the
          self-judge's verdicts barely follow correctness: one that says Yes to nearly everything keeps
          many wrong answers, one that says No to nearly everything throws the right ones out too.
        - A form requirement is a bias too: it keeps the model's favourite phrasing and drops others;
          training on the kept set then pushes the model further toward that phrasing.
        - Variety: compare distinct replies and answers per problem, and reply length, before and after
          training; a drop means the variety that made pass@k higher than greedy accuracy is shrinking
          (on a small run, a paired test on the same problems says whether the change beats the noise).
        - A pipeline: verify only what matters (the final value, or unit tests for code), parse answers
          leniently and check the parse, keep several distinct right solutions per problem, cap how many
          come from easy problems, mix in human-written solutions, and track per round: held-out accuracy
          against a control (a paired test on the same problems), pass@k, distinct answers/replies per
          problem, length, and the share of problems that have any kept sample (so hard problems do not
          silently drop out).
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Rejection sampling draws many candidate responses per prompt and keeps only the best. "
             "Which quality signal is usually used to decide what to keep?",
             ["Whichever candidate is longest, since a longer reply holds more reasoning steps",
              "A check of the answer itself where one exists (tests, known results), else a vote or a judge",
              "A random half of the candidates, so that the kept set stays exactly as varied as the model's own samples",
              "The candidate with the lowest perplexity under a second, smaller language model"],
             answer=1,
             why="A verifier (run the tests, compare the result) is the strongest signal; where none "
                 "exists, labs fall back on voting, judge models or reward models, each with its biases."),
    Question("A model made n = 4 attempts at a problem and c = 1 of them is right. What is the unbiased "
             "estimate of pass@2?",
             ["0.25", "0.44", "0.50", "0.75"],
             answer=2,
             why="1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.50. The 0.44 is 1 - (3/4)^2, which draws with "
                 "replacement and so counts the same attempt twice."),
    Question("Eight attempts give the final answers 41, 41, 51, 51, 32 and three replies with no readable "
             "answer. The right answer is 51. What does a majority vote that breaks ties by first "
             "appearance return?",
             ["41, which is wrong", "51, which is right", "None: most replies had no answer",
              "32, the answer seen only once"],
             answer=0,
             why="Unreadable replies do not vote; 41 and 51 tie at two votes each and 41 came first. "
                 "A vote has no idea which answer is true: here it elects the wrong one."),
    Question("The lax checker accepts a reply if the right number appears anywhere in it. What does "
             "fine-tuning on everything it accepts risk teaching the model?",
             ["Nothing: it keeps every reply the exact verifier keeps, so it can only add right answers",
              "To end every reply with an 'Answer:' line even when the problem is not a number problem",
              "That writing the right number somewhere is enough, even when the final answer is wrong",
              "To refuse problems it is unsure about, which lowers its pass@k on every later round"],
             answer=2,
             why="Its extra accepts are false accepts: replies that mention the right number and then "
                 "conclude something else. Trained on them, a model learns what the checker rewards."),
    Question("Why does the self-improvement round train a control copy on the same number of "
             "unfiltered samples?",
             ["Fine-tuning on any of its own replies can change a model (its answer format, say); the "
              "control shows what the filter itself added",
              "The verified samples alone are too few for a full epoch, so the control's samples are "
              "added to them before training",
              "The two copies vote against each other at test time, which is majority voting with "
              "two voters instead of eight",
              "The control calibrates the verifier: its accuracy sets the threshold above which an "
              "answer counts as right"],
             answer=0,
             why="Both arms start from the same weights and get the same number of examples and the same "
                 "training steps. Their prompts differ (the verified arm keeps only problems the model solved "
                 "at least once), but only the filter chose them, so only the filter can explain a gap."),
    Question("A held-out evaluation has 80 problems and a model gets 20 of them right. About how wide "
             "is a 95% interval on its accuracy of 25%?",
             ["about ± 1 point", "about ± 3 points", "about ± 10 points", "about ± 25 points"],
             answer=2,
             why="The standard error is sqrt(0.25 x 0.75 / 80), about 0.048, and 1.96 of those is "
                 "about 9.5 points. That is one accuracy's interval; a before/after gain on the same 80 "
                 "problems is decided by the problems that flipped. 5 points is 4 more flips to right than "
                 "to wrong, and even the most lopsided case, 4 to right and none to wrong, gives McNemar "
                 "p = 0.125: not yet a finding."),
    Question("STaR samples iteration n's attempts with the model that iteration n-1 produced. Which "
             "weights does iteration n then fine-tune on the attempts it kept?",
             ["The weights iteration n-1 ended with, so each round builds on the last round's training",
              "The original pre-trained weights: only the sampler carries what earlier rounds learned",
              "A fresh randomly initialised copy, so no mistake of an earlier round can survive into it",
              "Whichever earlier iteration's weights scored highest on a held-out set of problems"],
             answer=1,
             why="STaR's Algorithm 1 fine-tunes the original model on every iteration's kept set (its code "
                 "loads the base checkpoint each time). What improves is the sampler: a better model solves "
                 "more training problems, so the next kept set is larger."),
    Question("After one round of training on its own verified answers, which sign of mode collapse "
             "would you look for in the model's samples?",
             ["A higher training loss on the verified answers than before the round",
              "Fewer distinct replies and final answers per problem, even where accuracy rose",
              "Longer replies with more working shown, and more distinct final answers per problem than before",
              "A drop in greedy accuracy on the training problems only, not on held-out ones"],
             answer=1,
             why="Collapse narrows the distribution: samples grow alike. That shrinks the spread "
                 "between pass@k and greedy accuracy that the next round of rejection sampling needs."),
])
