"""Lab 02 — Self-Instruct and Alpaca: four exercises, one essay and a concept check.

Used by ``labs/02_self_instruct.ipynb``::

    from synthkit.labs.lab02 import ex1, ex2, ex3, ex4, essay1, quiz

The checks need no model: they call the student's functions on fresh random inputs and
compare with the library (``synthkit.self_instruct``, ``synthkit.metrics``) or with a
reference written here from the paper's rules.
"""
from __future__ import annotations

import copy
import math
import re
import string

from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "02"
TITLE = "Self-Instruct and Alpaca: grow a task pool from human seeds"
NOTEBOOK = "02_self_instruct.ipynb"

# One-slip mutants of the reference solutions that no allowed input can tell apart from them
# (python -m synthkit.grading.mutants 02 lists the rest, and every one of those fails its check).
EQUIVALENT_MUTANTS = {
    "ex3": {
        "if not ta or not tb: :: `or` -> `and`":
            "with only one token list empty, lcs_length of an empty list is 0, so the next line "
            "(`if common == 0`) returns the same 0.0.",
        "previous = [0] * (len(b) + 1) :: 1 -> 2":
            "the extra trailing 0 is never read in the loop (j only reaches len(b)) and, when a is empty, "
            "previous[-1] is 0 either way; once a row is built, previous has the right length again.",
    },
}

# Words the random inputs are built from: plain ASCII, so that word boundaries and the
# rouge-score tokenizer agree with any reasonable reading of "a word".
_VERBS = ("write", "explain", "list", "name", "describe", "summarize", "translate", "compare",
          "classify", "suggest", "rewrite", "count", "find", "give", "plan", "sort", "check")
_NOUNS = ("poem", "recipe", "river", "budget", "letter", "proverb", "planet", "sentence", "email",
          "garden", "bicycle", "invoice", "storm", "museum", "violin", "tax", "glacier", "riddle")
_FILLER = ("a", "the", "of", "for", "about", "three", "short", "simple", "why", "how", "my", "in",
           "to", "and", "with", "each", "every", "new", "old", "two", "this", "that")
_ODD = ("{x}", "{{y}}", "%s", "$5", "50%", "C++", "(see below)", "x=1;", "\\n", "'quoted'", "rock & roll")


def _words(rng, low: int, high: int, pool=None) -> list[str]:
    pool = pool or (_VERBS + _NOUNS + _FILLER * 2)
    return [rng.choice(pool) for _ in range(rng.randint(low, high))]


def _sentence(rng, low: int = 3, high: int = 14) -> str:
    words = _words(rng, low, high)
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), rng.choice(_ODD))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", "?", "!", ""))


# --- exercise 1: build_prompt ----------------------------------------------------------
_TASK_LINE = re.compile(r"Task (\d+):")


def _random_task(rng, i: int) -> dict:
    return {"id": f"t{i}", "instruction": _sentence(rng),
            "input": rng.choice(["", f"input-{rng.randrange(10**6)} " + _sentence(rng, 2, 5)]),
            "output": f"output-{rng.randrange(10**6)} " + _sentence(rng, 2, 6),
            "category": rng.choice(("brainstorm", "rewrite", "classification", "arithmetic"))}


def _check_build_prompt(c) -> str:
    fn = c.get("build_prompt", callable_=True)
    sizes = [1, 2, 8, c.rng.randint(3, 7), c.rng.randint(9, 15), c.rng.randint(1, 12)]
    for k in sizes:
        examples = [_random_task(c.rng, i) for i in range(k)]
        before = copy.deepcopy(examples)
        label = (f"build_prompt(<{k} task{'s' if k > 1 else ''}, the first "
                 f"{show_input(examples[0]['instruction'], 45)}>)")
        got = c.expect_type(c.call(fn, examples, label=label), str, label)
        if examples != before:
            c.fail(f"{label} changed the list it was given (or the tasks in it). Build a new string "
                   f"and leave the pool alone: the loop samples from it again next round.")
        lines = got.split("\n")
        numbered = [line for line in lines if _TASK_LINE.match(line)]
        for i, ex in enumerate(examples, 1):
            want = f"Task {i}: {ex['instruction']}"
            if want not in lines:
                c.fail(f"{label}: no line of the prompt reads exactly 'Task {i}: ' followed by task {i}'s "
                       f"instruction ({show_input(ex['instruction'], 50)}). One task per line, numbered "
                       f"from 1 in the order given, with the instruction copied unchanged.")
        positions = [lines.index(f"Task {i}: {ex['instruction']}") for i, ex in enumerate(examples, 1)]
        if positions != sorted(positions):
            c.fail(f"{label}: the numbered tasks are not in order; Task 1 should come first.")
        if not got.endswith(f"Task {k + 1}:"):
            c.fail(f"{label}: the prompt should end with the open slot 'Task {k + 1}:' and nothing after "
                   f"it (no space, no newline); it ends with {show_input(got[-20:], 30)}. The model "
                   f"writes the new task right after that colon.")
        if len(numbered) != k + 1:
            c.fail(f"{label}: the prompt has {len(numbered)} lines that start with 'Task N:' for "
                   f"{k} tasks; it should have one per task plus the open slot.")
        head = got[: got.find("Task 1: ")]
        if not head.strip():
            c.fail(f"{label}: the prompt starts straight with 'Task 1:'. Put a line first that tells "
                   f"the model what the list is (new, varied tasks an assistant could be asked to do).")
        for ex in examples:
            for field in ("input", "output"):
                marker = ex[field].split(" ")[0]
                if marker and marker in got:
                    c.fail(f"{label}: the prompt contains a task's {field} ({show_input(ex[field], 40)}). "
                           f"This prompt asks for new *instructions*: list the instructions only.")
    return (f"{len(sizes)} prompts for fresh random task lists ({min(sizes)} to {max(sizes)} tasks) "
            f"have a header, every task once and in order, and end with the open slot.")


ex1 = CodingExercise(
    "ex1", LAB, names="build_prompt", checker=_check_build_prompt, points=1,
    refuses=("synthkit.self_instruct.build_prompt",),
    title="Build the prompt that asks for a new task",
    hints=[
        "The teacher is not a chat model here: it continues a document. Ask yourself what the very "
        "last characters of that document must be so that its most likely continuation is one new "
        "task, and build the prompt backwards from there.",
        "Collect lines in a list: a header that says what the list is, a blank line, one line per "
        "example made from example[\"instruction\"] only (`enumerate(examples, 1)` numbers from 1), "
        "and the open slot for the next number.",
        "Join the lines with \"\\n\". The last line is f\"Task {len(examples) + 1}:\" with nothing after "
        "the colon: no space and no trailing newline.",
    ],
)


# --- exercise 2: keep_instruction ------------------------------------------------------
def reference_keep(text: str, blacklist=None, min_words: int = 4, max_words: int = 150) -> bool:
    """The paper's instruction rules with a configurable blacklist and word limits.

    With the defaults (the paper's 13-word blacklist, 4 to 150 words) it decides exactly as
    `self_instruct.instruction_ok(text, BLACKLIST)` (the tests check that); the checks use
    it to vary the blacklist and the limits.
    """
    from ..self_instruct import BLACKLIST
    blacklist = BLACKLIST if blacklist is None else blacklist
    text = text.strip()
    n_words = len(text.split())
    if not min_words <= n_words <= max_words:
        return False
    if blacklist and re.search(r"\b(" + "|".join(re.escape(w) for w in blacklist) + r")\b",
                               text, re.IGNORECASE):
        return False
    if text.lower().startswith("write a program"):
        return False
    if text[0] in string.punctuation or not text[0].isascii():
        return False
    return True


_TOPICS = ("ledger", "harbour", "kettle", "compass", "lantern", "orchard", "pay rent", "tide table")


def _case(word: str, rng) -> str:
    return rng.choice((word, word.upper(), word.capitalize()))


def _keep_cases(rng) -> list[tuple[str, dict, str]]:
    """(text, keyword arguments, what the case probes), fresh each time."""
    from ..self_instruct import ALPACA_EXTRA, BLACKLIST
    cases = []

    def good(low=4, high=14):  # starts with a verb, so only what a case adds can break a rule
        return rng.choice(_VERBS).capitalize() + " " + _sentence(rng, low - 1, high - 1).lower()

    # plain good instructions, some with stray spaces around them
    for _ in range(4):
        cases.append((rng.choice(("", " ", "  \n")) + good() + rng.choice(("", " ", "\n")), {}, "an ordinary task"))
    # word counts at and around the limits, with the default and with other limits
    for n, kw in ((3, {}), (4, {}), (rng.randint(5, 9), {}), (150, {}), (151, {}), (rng.randint(1, 2), {})):
        cases.append((" ".join(_words(rng, n, n, _NOUNS + _VERBS)).capitalize() or "   ", kw, "the word count"))
    lo, hi = rng.randint(4, 8), rng.randint(10, 20)
    for n in (lo - 1, lo, hi, hi + 1):
        cases.append((" ".join(_words(rng, n, n, _NOUNS + _VERBS)).capitalize(),
                      {"min_words": lo, "max_words": hi}, "the word count (with other limits)"))
    cases.append(("Write   a\tshort\n\npoem", {}, "the word count (words split on any whitespace)"))
    cases.append(("Write\ta short", {}, "the word count (words split on any whitespace)"))
    # "Write a program" at the start, in any case (the paper capitalised every instruction first)
    for opening in ("Write a program", "write a program", "WRITE A PROGRAM", "Write a Program"):
        cases.append((f"{opening} that {rng.choice(_VERBS)}s a {rng.choice(_NOUNS)} for me.", {},
                      "the 'Write a program' rule"))
    for text in (f"Please write a program that sorts a {rng.choice(_NOUNS)} list.",
                 f"Explain how to write a program for a {rng.choice(_NOUNS)}.",
                 f"Write a poem about a {rng.choice(_NOUNS)} and a program."):
        cases.append((text, {}, "the 'Write a program' rule (only at the start)"))
    # Alpaca's five extra words are not on the paper's list
    for word in rng.sample(ALPACA_EXTRA, 2):
        cases.append((f"Describe a {word} you would make for a {rng.choice(_NOUNS)}.", {},
                      "the blacklist (a word only Alpaca added)"))
    # the default blacklist: whole words in any case, with punctuation around them
    for word in rng.sample(BLACKLIST, 4):
        w = _case(word, rng)
        text = rng.choice((f"{w} something for me, please.", f"Please make a {w}.",
                           f"Can you {w}, then explain it?", f"Describe the ({w}) in two lines."))
        cases.append((text.capitalize() if text[0].islower() else text, {}, "the blacklist"))
    for word in ("drawer", "roadmap", "profile", "graphite", "imagine", "filed", "diagrammatic"):
        cases.append((f"Tell me about the {word} in two sentences.", {}, "the blacklist (part of a longer word)"))
    cases.append(("Describe an image-based search in three steps.", {}, "the blacklist"))
    # a blacklist of our own, phrases included
    custom = rng.sample(_TOPICS, 3) + ["pay rent"] * (rng.random() < 0.5)
    for word in custom:
        cases.append((f"Explain the {_case(word, rng)} to a child.", {"blacklist": custom}, "a blacklist passed in"))
    cases.append(("Explain how to pay the rent on time.", {"blacklist": ["pay rent"]}, "a blacklist passed in"))
    cases.append(("Describe an image you like.", {"blacklist": custom}, "a blacklist passed in (only its words count)"))
    cases.append((f"Explain the {rng.choice(custom).split()[0]}s of a city.".replace("pays", "paying"),
                  {"blacklist": custom}, "a blacklist passed in"))
    cases.append((good(), {"blacklist": []}, "an empty blacklist"))
    # the first character
    for first in rng.sample(list(string.punctuation), 4) + ["-", "1."]:
        cases.append((f"{first} {good()}" if rng.random() < 0.5 else first + good(), {}, "the first character"))
    for first in ("É", "¿", "数", "🙂", "ß"):
        cases.append((first + good(), {}, "the first character"))
    for first in rng.sample(list(string.punctuation), 2) + [rng.choice("É¿数🙂ß")]:
        cases.append((rng.choice((" ", "\n", " \t ")) + first + good(), {}, "the first character (after stripping)"))
    cases.append(("3 ideas for a rainy afternoon, please.", {}, "the first character (a digit)"))
    rng.shuffle(cases)
    return cases


_ADVICE = {
    "an ordinary task": "It breaks none of the rules.",
    "the 'Write a program' rule": "An instruction that starts with 'Write a program', in any case, is dropped; "
                                  "the same words later in the text are fine.",
    "the blacklist (a word only Alpaca added)": "The default blacklist is the paper's 13 words; video, audio, "
                                                "music, flowchart and diagram are Alpaca's later additions.",
    "the word count": "Strip the text, count words with text.split(), and keep min_words <= count <= max_words.",
    "the blacklist": "A blacklisted word counts as a whole word in any case, even with punctuation "
                     "next to it; inside a longer word it does not count.",
    "the first character": "Look at the first character after stripping: ASCII punctuation "
                           "(string.punctuation) or any non-ASCII character rejects.",
    "a blacklist passed in": "Use the blacklist argument you are given, phrases included, as whole words.",
    "an empty blacklist": "With an empty blacklist no word is forbidden.",
}


def _check_keep_instruction(c) -> str:
    fn = c.get("keep_instruction", callable_=True)
    cases = _keep_cases(c.rng)
    for text, kw, probe in cases:
        expected = reference_keep(text, **kw)
        shown = show_input(text, 60)
        if len(text.split()) > 12:
            shown += f" ({len(text.split())} words)"
        args = "".join(f", {k}={show_input(v, 60)}" for k, v in kw.items())
        label = f"keep_instruction({shown}{args})"
        got = c.call(fn, text, label=label, **kw)
        if not isinstance(got, bool):
            c.expect_type(got, bool, label)
        if got != expected:
            advice = next((v for k, v in _ADVICE.items() if probe.startswith(k)), "")
            c.fail(f"{label} returned {got}: that breaks the rules (this case tests {probe}). {advice}")
    return f"{len(cases)} fresh texts, with the default rules and with other blacklists and word limits, decided right."


ex2 = CodingExercise(
    "ex2", LAB, names="keep_instruction", checker=_check_keep_instruction, points=2,
    refuses=("synthkit.self_instruct.instruction_ok", "synthkit.self_instruct.rejection_reason"),
    title="The paper's rules for a usable instruction",
    hints=[
        "Treat each rule as its own early `return False`, checked one after another on the stripped "
        "text; if none fires, return True. Which rule must come before you may look at text[0]?",
        "Words: len(text.split()), kept when min_words <= count <= max_words. 'Write a program': compare "
        "text.lower() with str.startswith. First character: `string.punctuation` holds the ASCII "
        "punctuation and `str.isascii()` tells ASCII apart.",
        "For whole words or phrases in any case, one regular expression does it: "
        "re.search(r\"\\b(\" + \"|\".join(re.escape(w) for w in blacklist) + r\")\\b\", text, re.IGNORECASE). "
        "Guard against an empty blacklist, which would make that pattern match everything.",
    ],
)


# --- exercise 3: lcs_length and rouge_l_f1 ---------------------------------------------
def _random_sequence(rng, alphabet, low=0, high=25):
    return [rng.choice(alphabet) for _ in range(rng.randint(low, high))]


def _random_text(rng, vocab, low=0, high=20) -> str:
    words = [_case(rng.choice(vocab), rng) for _ in range(rng.randint(low, high))]
    seps = (" ", " ", " ", ", ", "; ", " - ", "'", "  ")
    text = "".join(w + rng.choice(seps) for w in words).strip()
    return text + rng.choice(("", ".", "?", "!")) if text else rng.choice(("", "...", " ", "?!"))


def _check_rouge(c) -> str:
    from ..self_instruct import lcs_length as reference_lcs
    from ..self_instruct import rouge_l, rouge_tokenize

    lcs = c.get("lcs_length", callable_=True)
    f1 = c.get("rouge_l_f1", callable_=True)
    # 1. LCS on sequences of any hashable items
    pairs = [([], _random_sequence(c.rng, "ab", 1, 6)), (list("abc"), list("abc"))]
    for _ in range(20):
        alphabet = c.rng.choice(("ab", "abcd", "abcdefgh", [0, 1, 2], ["the", "a", "cat", "sat", "mat"]))
        pairs.append((_random_sequence(c.rng, alphabet), _random_sequence(c.rng, alphabet)))
    pairs.append((_random_sequence(c.rng, "abcde", 250, 300), _random_sequence(c.rng, "abcde", 250, 300)))
    for a, b in pairs:
        label = f"lcs_length({show_input(a, 45)}, {show_input(b, 45)})"
        got = c.call(lcs, a, b, label=label)
        if isinstance(got, bool) or not isinstance(got, int):
            c.expect_type(got, int, label)
        want = reference_lcs(a, b)
        if got != want:
            c.fail(f"{label} returned {got}, which is not the length of their longest common "
                   f"subsequence" + (" (it is more than the shorter sequence is long)"
                                     if got > min(len(a), len(b)) else "") + ". Check your table's "
                   "recurrence: a match extends the diagonal cell, a mismatch takes the larger of "
                   "the cell above and the cell to the left.")
    # 2. ROUGE-L F1 on texts, against the exact reference
    vocab = c.rng.sample(_NOUNS + _VERBS + _FILLER, 8) + ["don't", "Café", "e-mail"]
    texts = [("", _random_text(c.rng, vocab, 1, 8)), ("?!", "...")]
    # two texts with tokens on both sides but none in common (LCS 0), on every run
    apart = c.rng.sample(_NOUNS + _VERBS, 6)
    texts.append((_random_text(c.rng, apart[:3], 1, 8), _random_text(c.rng, apart[3:], 1, 8)))
    for _ in range(24):
        a = _random_text(c.rng, vocab)
        b = _random_text(c.rng, vocab) if c.rng.random() < 0.7 else a.upper()
        texts.append((a, b))
    for a, b in texts:
        label = f"rouge_l_f1({show_input(a, 50)}, {show_input(b, 50)})"
        got = c.call(f1, a, b, label=label)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            c.expect_type(got, float, label)
        want = rouge_l(a, b)
        if math.isfinite(got) and abs(got - want) <= 1e-9:
            continue
        ta, tb = rouge_tokenize(a), rouge_tokenize(b)
        common = reference_lcs(ta, tb)
        p = common / len(tb) if tb else 0.0
        r = common / len(ta) if ta else 0.0
        if ta and tb and common and (abs(got - p) < 1e-9 or abs(got - r) < 1e-9) and abs(p - r) > 1e-9:
            why = "That is precision or recall alone; ROUGE-L's score is their harmonic mean (F1)."
        elif not ta or not tb:
            why = ("One text has no tokens at all; a score with nothing to compare is 0.0 (and must not "
                   "divide by zero).")
        elif not common:
            why = ("The two texts share no token, so their LCS is 0 and so are precision and recall: "
                   "the score is 0.0 (and must not divide 0 by 0).")
        else:
            why = ("Tokenize both texts with rouge_tokenize (lowercase, runs of a-z and 0-9), then "
                   "F1 = 2·P·R / (P + R) with P = LCS / len(tokens of b) and R = LCS / len(tokens of a).")
        c.fail(f"{label} returned {got!r}, which is not their ROUGE-L F1. {why}")
    return (f"lcs_length matches on {len(pairs)} fresh sequence pairs (up to 300 items), and "
            f"rouge_l_f1 on {len(texts)} fresh text pairs agrees with rouge-score's ROUGE-L.")


ex3 = CodingExercise(
    "ex3", LAB, names=("lcs_length", "rouge_l_f1"), checker=_check_rouge, points=3, time_limit=10.0,
    refuses=("synthkit.self_instruct.lcs_length", "synthkit.self_instruct._lcs_with_masks",
             "synthkit.self_instruct.rouge_l", "synthkit.self_instruct.rouge_l_tokens",
             "synthkit.self_instruct._f1", "synthkit.rouge.lcs_length", "synthkit.rouge._lcs_with_masks",
             "synthkit.rouge.rouge_l", "synthkit.rouge.rouge_l_tokens", "synthkit.rouge._f1"),
    title="ROUGE-L from scratch: the longest common subsequence and its F1",
    hints=[
        "Picture a table whose cell (i, j) holds the LCS length of the first i items of a and the "
        "first j items of b. Row 0 and column 0 are 0. What can cell (i, j) be when a[i-1] == b[j-1], "
        "and what when they differ? Then ROUGE-L is a precision, a recall and their harmonic mean.",
        "Dynamic programming: a table T of (len(a)+1) x (len(b)+1) zeros, where T[i][j] is the LCS "
        "of a[:i] and b[:j]. If a[i-1] == b[j-1], T[i][j] = T[i-1][j-1] + 1, else the larger of "
        "T[i-1][j] and T[i][j-1]. The answer is T[len(a)][len(b)]. Keeping only the previous row "
        "is enough.",
        "rouge_l_f1: ta, tb = rouge_tokenize(a), rouge_tokenize(b); if either is empty return 0.0; "
        "lcs = lcs_length(ta, tb); precision = lcs / len(tb), recall = lcs / len(ta); "
        "F1 = 2 * precision * recall / (precision + recall), or 0.0 when lcs is 0.",
    ],
)


# --- exercise 4: distinct_n ------------------------------------------------------------
def _distinct_variants(texts, n):
    """Common wrong readings of distinct-n, to name the mistake in a failing check."""
    def ratio(grams):
        return len(set(grams)) / len(grams) if grams else 0.0

    lowered = [t.lower().split() for t in texts]
    joined = [w for words in lowered for w in words]
    return {
        "crossing": ratio([tuple(joined[i:i + n]) for i in range(len(joined) - n + 1)]),
        "case": ratio([tuple(w[i:i + n]) for w in (t.split() for t in texts) for i in range(len(w) - n + 1)]),
    }


def _check_distinct_n(c) -> str:
    from ..metrics import distinct_n as reference

    fn = c.get("distinct_n", callable_=True)
    vocab = c.rng.sample(_NOUNS + _VERBS + _FILLER, c.rng.randint(3, 10))
    cases = [([], 1), ([""], 2), (["one two"], 3)]
    a, b = c.rng.sample(vocab, 2)
    cases.append(([f"{a} {b}", f"{a} {b}"], 2))             # an n-gram must not run into the next text
    cases.append(([f"{a.upper()} {a} {b}"], 1))              # 'The' and 'the' are one word
    for _ in range(22):
        k = c.rng.randint(1, 8)
        texts = [" ".join(_case(c.rng.choice(vocab), c.rng) for _ in range(c.rng.randint(0, 12))) for _ in range(k)]
        if c.rng.random() < 0.3:
            texts = [t.replace(" ", c.rng.choice(("  ", "\t", " \n "))) for t in texts]
        cases.append((texts, c.rng.randint(1, 4)))
    for texts, n in cases:
        label = f"distinct_n({show_input(texts, 70)}, n={n})"
        got = c.call(fn, list(texts), n, label=label)
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            c.expect_type(got, float, label)
        want = reference(texts, n)
        if abs(got - want) <= 1e-12:
            continue
        wrong = _distinct_variants(texts, n)
        if not any(len(t.split()) >= n for t in texts) and got != 0:
            why = "No text here has n words, so there is no n-gram at all: the score is 0.0."
        elif abs(got - wrong["crossing"]) <= 1e-12:
            why = "It looks as if n-grams ran from the end of one text into the next: count them inside each text only."
        elif abs(got - wrong["case"]) <= 1e-12:
            why = "It looks case-sensitive: lowercase each text first, so 'The' and 'the' are one word."
        else:
            why = ("Collect every n-gram (a tuple of n consecutive words, lowercased, split on whitespace) of "
                   "every text into one list; the score is (number of distinct ones) / (number of all).")
        c.fail(f"{label} returned {got!r}, which is not its distinct-{n}. {why}")
    return f"distinct_n agrees with the definition on {len(cases)} fresh lists of texts (n from 1 to 4)."


ex4 = CodingExercise(
    "ex4", LAB, names="distinct_n", checker=_check_distinct_n, points=2,
    refuses=("synthkit.metrics.distinct_n",),
    title="A diversity measure: distinct-n",
    hints=[
        "distinct-n is one ratio: (different n-grams) / (all n-grams). Decide first what one n-gram is "
        "(which words, which case) and where an n-gram may not reach (across two texts).",
        "For each text: words = text.lower().split(); its n-grams are tuple(words[i:i + n]) for i in "
        "range(len(words) - n + 1). Put the n-grams of all texts in one list.",
        "Return len(set(grams)) / len(grams), and 0.0 when the list is empty (no text has n words).",
    ],
)


# --- essay 1 ---------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="A Self-Instruct pipeline for a customer-support assistant",
    prompt="""
        You are asked for instruction data to fine-tune a customer-support assistant for an online
        shop, and you will grow it Self-Instruct style. Describe your pipeline in a paragraph or
        two: what would your seed tasks look like (and who writes them), which teacher(s) would you
        use and why, what would you filter out at the instruction stage and at the response stage,
        and what would you do so that the data set does not drift into a narrow, repetitive or
        teacher-flavoured corner (and so that a model trained on it, and then its successors, do not
        collapse)? Use what you saw in this lab.
    """,
    hints=["Think of the narrow-seed experiment: what range of requests does a shop's support desk "
           "really get? Think of what the 135M teacher got wrong, and of what a licence says about "
           "training on a model's outputs."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - Seeds: written by people who work the support desk (or mined from real, anonymised tickets and
          rewritten), covering the real range: orders, returns, refunds, delivery, accounts, payments,
          product questions, complaints, angry or confused customers, other languages, out-of-scope or
          abusive requests; balanced so no one family dominates (the narrow-seed experiment).
        - Teacher(s): a strong model whose licence allows training on its outputs (an open-weights
          model, or one's own); several teachers to dilute one model's style and blind spots.
        - Instruction filters: the paper's rules adapted (length, things a text assistant cannot do,
          broken text), ROUGE-L or embedding dedup against the pool, topic balance, PII scrubbing.
        - Response filters: policy-grounded checks (refund rules, no invented order numbers or
          promises), length and repetition rules, a judge or rubric, and human review of a sample;
          hallucinated facts are the teacher's bias the student would inherit.
        - Against drift and collapse: keep 6 human : 2 machine examples in prompts, track diversity
          (distinct-n, self-ROUGE, embedding spread, category counts) per round, keep real human
          conversations in the training mix, refresh seeds, avoid training each generation only on
          the previous generation's outputs.
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Four candidates come out of one round. Under the rules of Self-Instruct's reference code "
             "(before the ROUGE-L filter), which one is kept?",
             ["Summarise this paragraph.",
              "Write a program that sorts three numbers.",
              "List three rivers that cross more than one country.",
              "Plot the monthly rainfall of Lisbon and Porto as two bars."],
             answer=2,
             why="The code drops anything of 3 words or fewer (the summary request has exactly 3), anything "
                 "that starts with 'Write a program', and anything that names one of its 13 blacklisted "
                 "words ('plot' is one). The rivers task breaks no rule."),
    Question("A candidate 'write a poem about the sea' (6 tokens) meets the pool task 'write a short poem "
             "about a calm sea' (8 tokens). Their longest common subsequence has 5 tokens. What does the "
             "novelty filter do?",
             ["Rejects it: F1 = 2·5/(6+8) ≈ 0.71, just over the 0.7 limit",
              "Keeps it: recall is 5/8 ≈ 0.63, which is under the 0.7 limit",
              "Keeps it: 5 shared tokens out of 14 in all is only about 0.36",
              "Rejects it: precision is 5/6 ≈ 0.83, which is over the 0.7 limit"],
             answer=0,
             why="ROUGE-L F1 is the harmonic mean of P = 5/6 and R = 5/8, which is 2·LCS/(len a + len b) "
                 "= 10/14 ≈ 0.714 > 0.7. Precision or recall alone is not the score."),
    Question("Each generation prompt shows 6 human-written tasks and 2 the model wrote earlier. What "
             "are the 2 machine tasks for?",
             ["They let new topics and wordings into the prompts; the human majority anchors the style",
              "They show the model its own earlier mistakes, so it learns to avoid them next round",
              "They give ROUGE-L a target: new candidates are compared with the machine tasks only",
              "They keep prompts short, because machine-written tasks are briefer than the human seed tasks"],
             answer=0,
             why="Without machine examples every prompt looks like the seeds; with only machine examples "
                 "errors and quirks would compound round after round. The ROUGE-L filter compares with "
                 "the whole pool, and no weights change during the loop."),
    Question("A pool grown from the narrow seeds holds almost nothing but number problems, yet its "
             "self-ROUGE (mean pairwise ROUGE-L) can come out close to a broad pool's. Why can this "
             "measure miss the narrowing?",
             ["rouge-score's tokenizer drops digits, and the narrow tasks differ mostly in numbers",
              "The 0.7 cap makes every pair in both pools score alike, so their means must match",
              "It counts shared words in order, and these problems share their kind, not wording",
              "Self-ROUGE rises with the number of texts, and the narrow run was cut to fewer"],
             answer=2,
             why="ROUGE-L is lexical: problems that differ in their numbers, names and objects share few "
                 "tokens, and the novelty filter has already removed the rewordings that would share "
                 "many. The 0.7 cap only trims the top of the pairwise scores; their mean is set by the "
                 "many pairs far below it. Embeddings and the share with a digit see the narrowing. "
                 "(The tokenizer keeps digits, and both sets were cut to the same size.)"),
    Question("Alpaca had text-davinci-003 write 52,000 Self-Instruct-style examples (under $500 of API "
             "calls) and fine-tuned LLaMA-7B on them (under $100 of compute). Which weakness does this "
             "recipe keep?",
             ["Every answer still needs a paid annotator to check it before training",
              "The student picks up the teacher's errors, blind spots and style",
              "It only works when the student has at least as many parameters as the teacher",
              "The pool cannot grow beyond the 175 human seed tasks it started from"],
             answer=1,
             why="Everything the student sees was written by the teacher: its hallucinations and its "
                 "voice are in the data too. No human checked the 52K answers, a 7B student learned "
                 "from a far larger teacher, and the pool grew far past its seeds."),
    Question("Self-Instruct's code drops instructions that name 'image', 'file', 'draw' or 'go to' (and "
             "Alpaca added 'video', 'audio', 'music', 'flowchart' and 'diagram'). Why?",
             ["A text-only model cannot really do such tasks, so it would only pretend",
              "Tasks about media files tended to be near-duplicates of one another",
              "Answers to such tasks ran past the token limit and were cut off mid-way",
              "Requests that mention files, maps or places raise privacy concerns for users"],
             answer=0,
             why="Training a student on pretend answers to tasks it cannot perform teaches it to pretend."),
])


def SOLUTION_GLOBALS() -> dict:
    """Names the notebook defines before the exercises, which the reference solutions use
    (for `python -m synthkit.grading.mutants`)."""
    from ..self_instruct import BLACKLIST, rouge_tokenize
    return {"BLACKLIST": BLACKLIST, "rouge_tokenize": rouge_tokenize}
