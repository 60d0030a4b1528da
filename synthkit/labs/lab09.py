"""Lab 09 — Licensing, privacy and provenance: three exercises, one essay and a concept check.

Used by ``labs/09_licensing_audit.ipynb``::

    from synthkit.labs.lab09 import ex1, ex2, ex3, essay1, quiz

The checks need no model: they call the student's functions on fresh random inputs and
compare with references written here (Luhn from its definition, the n-gram rule by brute
force over every window, the provenance rules), and each refuses the library functions it
rebuilds (python-stdnum's Luhn, synthkit.audit's contamination rule and provenance check).
"""
from __future__ import annotations

import json
import re

from ..grading.checks import name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "09"
TITLE = "Licensing, privacy and provenance: audit a data set before training on it"
NOTEBOOK = "09_licensing_audit.ipynb"

# One-slip mutants of the reference solutions that no allowed input can tell apart from them
# (python -m synthkit.grading.mutants 09 lists the rest, and every one of those fails its check).
EQUIVALENT_MUTANTS = {
    "ex1": {
        "if d > 9: :: `>` -> `>=`": "d is a doubled digit here, always even (0-18), never 9: > 9 and >= 9 agree.",
        "if d > 9: :: 9 -> 8": "d is a doubled digit here, always even (0-18): d > 8 and d > 9 differ only at "
                               "d == 9, which it never is.",
    },
    "ex2": {
        "grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)} :: 1 -> 2":
            "the one extra i adds a tuple of size-1 words, and every training window compared with the set "
            "has exactly size words, so it never matches.",
        "if any(tuple(t[i:i + size]) in grams for i in range(len(t) - size + 1)): :: 1 -> 2":
            "the one extra window runs off the end of the text and holds size-1 words (or the whole text, "
            "when it is shorter than size), while every n-gram in the set has exactly size words.",
        "grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)} :: `-` -> `+`":
            "the extra i run off the end of the output and add tuples of fewer than size words (or empty "
            "ones); every training window compared with the set has exactly size words, so none matches.",
        "if any(tuple(t[i:i + size]) in grams for i in range(len(t) - size + 1)): :: `-` -> `+`":
            "the extra windows run off the end of the text and hold fewer than size words, while every "
            "n-gram in the set has exactly size words.",
    },
}


# --- exercise 1: the Luhn checksum ---------------------------------------------------
def reference_luhn(number: str) -> bool:
    """True for 13-19 digits (spaces and hyphens allowed between them) with a right Luhn digit."""
    if not isinstance(number, str) or not re.fullmatch(r"\d(?:[ -]?\d)*", number):
        return False
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _luhn_from_left(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d for i, d in enumerate(digits))
    return 13 <= len(digits) <= 19 and total % 10 == 0


def _luhn_no_minus_nine(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(d * 2 if i % 2 == 1 else d for i, d in enumerate(reversed(digits)))
    return 13 <= len(digits) <= 19 and total % 10 == 0


def _luhn_sum(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total


def _complete(rng, length: int) -> str:
    """A random number of `length` digits whose last digit makes the Luhn sum right."""
    body = "".join(str(rng.randint(0, 9)) for _ in range(length - 1))
    return body + str((10 - _luhn_sum(body + "0") % 10) % 10)


def _grouped(digits: str, sep: str) -> str:
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))


def _spaced(digits: str, rng) -> str:
    return _grouped(digits, rng.choice(("", " ", "-")))


def _luhn_cases(rng) -> list[tuple[str, str]]:
    cases = []
    # right ones, odd lengths included (from-the-left slips there); the two ends of 13-19 on every run
    for length in (13, 19) + tuple(rng.choice((13, 15, 16, 17, 19)) for _ in range(6)):
        cases.append((_spaced(_complete(rng, length), rng), f"a valid number ({length} digits)"))
    for _ in range(6):  # one digit changed: Luhn catches every single-digit error
        good = _complete(rng, rng.choice((15, 16)))
        i = rng.randrange(len(good))
        bad = good[:i] + str((int(good[i]) + rng.randint(1, 9)) % 10) + good[i + 1:]
        cases.append((_spaced(bad, rng), "one digit changed"))
    for _ in range(3):  # digits that are 5-9 in doubled places: only the -9 rule gets them right
        while True:
            good = "".join(str(rng.choice((5, 6, 7, 8, 9))) for _ in range(15))
            candidate = good + str((10 - _luhn_sum(good + "0") % 10) % 10)
            if _luhn_no_minus_nine(candidate) != reference_luhn(candidate):
                cases.append((candidate, "doubled digits above 4"))
                break
    cases += [("", "an empty string"), ("4111 1111 1111 111a", "a letter among the digits"),
              (_complete(rng, 12), "too short (12 digits, with a right Luhn digit)"),
              (_complete(rng, 20), "too long (20 digits, with a right Luhn digit)"),
              ("  " + _complete(rng, 16), "spaces before the number"),
              (_complete(rng, 16).replace("", ".")[1:-1], "dots between digits"),
              ("0" * 16, "sixteen zeros")]
    rng.shuffle(cases)
    return cases


_LUHN_ADVICE = {
    "a valid number": "From the rightmost digit (the check digit) leftwards, double every second digit, "
                      "subtract 9 from any result above 9, add everything: a multiple of 10 is valid.",
    "one digit changed": "Changing one digit must break the sum: check that every digit is counted once.",
    "doubled digits above 4": "A doubled digit above 9 counts as the sum of its two digits (12 -> 3): "
                              "subtract 9.",
    "an empty string": "No digits, no number: False.",
    "a letter among the digits": "Only digits, spaces and hyphens may appear; anything else: False.",
    "too short": "Card numbers have 13 to 19 digits; outside that: False.",
    "too long": "Card numbers have 13 to 19 digits; outside that: False.",
    "spaces before the number": "Spaces and hyphens are allowed only between digits, not around the number.",
    "dots between digits": "Only spaces and hyphens separate digit groups.",
    "sixteen zeros": "Sixteen zeros pass Luhn (the sum is 0) and have 16 digits: by these rules it is valid "
                     "(a detector then also checks the issuer).",
}


def _check_luhn(c) -> str:
    fn = c.get("luhn_valid", callable_=True)
    cases = _luhn_cases(c.rng)
    for number, probe in cases:
        label = f"luhn_valid({number!r})"
        got = c.call(fn, number, label=label)
        if not isinstance(got, bool):
            c.expect_type(got, bool, label)
        want = reference_luhn(number)
        if got != want:
            digits = sum(ch.isdigit() for ch in number)
            if probe.startswith("a valid number") and digits in (13, 19):  # the ends of 13-19: the length rule?
                # valid numbers inside the range, same parity, grouped the same way: two leading zeros
                # leave the 13-digit case's Luhn sum alone; the 19-digit one gets three fresh numbers
                sep = next((ch for ch in number if not ch.isdigit()), "")
                bare = "".join(ch for ch in number if ch.isdigit())
                inner = ([_grouped("00" + bare, sep)] if digits == 13 else
                         [_grouped(_complete(c.rng, k), sep) for k in (17, 15, 17)])
                if all(c.call(fn, x, label=f"luhn_valid({x!r})") is True for x in inner):
                    c.fail(f"{label} returned {got} (this case tests {probe}), yet luhn_valid({inner[0]!r}) "
                           f"({len(inner[0])} digits) returns True: card numbers have 13 to 19 digits, both ends "
                           f"included.")
            advice = next((v for k, v in _LUHN_ADVICE.items() if probe.startswith(k)), "")
            slip = ""
            if got == _luhn_from_left(number) and got != want:
                slip = " Counting from the left doubles the wrong digits when the length is odd: start at the right."
            c.fail(f"{label} returned {got} (this case tests {probe}).{slip} {advice}")
    return f"{len(cases)} fresh numbers, valid, mistyped and malformed, judged as the Luhn rule judges them."


ex1 = CodingExercise(
    "ex1", LAB, names="luhn_valid", checker=_check_luhn, points=2,
    refuses=("stdnum.luhn.is_valid", "stdnum.luhn.validate", "stdnum.luhn.checksum",
             "synthkit.audit.card_number_ok"),
    title="Is it a card number? The Luhn checksum",
    hints=[
        "First the form: re.fullmatch(r\"\\d(?:[ -]?\\d)*\", number) accepts digits with single spaces or "
        "hyphens between them and nothing else. Then keep the digits and check there are 13 to 19.",
        "Walk the digits from the right: enumerate(reversed(digits)). Positions 1, 3, 5, ... (counting the "
        "check digit as 0) are doubled; a doubled value above 9 loses 9.",
        "Add all the (possibly doubled) digits; the number is valid when the total ends in 0 "
        "(total % 10 == 0).",
    ],
)


# --- exercise 2: the n-gram contamination rule --------------------------------------------
_VOCAB = ("river", "stone", "north", "quiet", "garden", "signal", "window", "copper", "music", "harbor",
          "pattern", "winter", "engine", "lantern", "market", "valley", "paper", "silver", "forest", "bridge",
          "the", "of", "and", "a", "in", "was", "is", "to", "its", "by")


def _norm_words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def reference_dirty(example: str, training_texts, n: int) -> bool:
    """Brute force over every window of every training text (no hashing, no index)."""
    w = _norm_words(example)
    if not w:
        return False
    size = min(n, len(w))
    grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)}
    for text in training_texts:
        t = _norm_words(text)
        if any(tuple(t[i:i + size]) in grams for i in range(len(t) - size + 1)):
            return True
    return False


def _sentence(rng, k: int) -> list[str]:
    return [rng.choice(_VOCAB) for _ in range(k)]


def _dress(ws: list[str], rng) -> str:
    """Words back into text, with case and punctuation the rule must ignore."""
    out = []
    for word in ws:
        if rng.random() < 0.2:
            word = word.capitalize() if rng.random() < 0.5 else word.upper()
        out.append(word + (rng.choice((",", ";", ".", ":")) if rng.random() < 0.15 else ""))
    return " ".join(out)


def _dirty_cases(rng) -> list[tuple[str, list[str], int, str]]:
    cases = []
    kinds = list(range(5)) + [rng.randrange(5) for _ in range(5)]   # every probe at least once
    for kind in kinds:
        n = rng.choice((5, 8, 13))
        train_words = [_sentence(rng, rng.randint(2 * n, 4 * n)) for _ in range(rng.randint(2, 5))]
        train = [_dress(t, rng) for t in train_words]
        doc = rng.randrange(len(train_words))
        if kind == 0:  # exactly n shared words, case and punctuation changed
            start = rng.randrange(len(train_words[doc]) - n + 1)
            ex = _sentence(rng, rng.randint(1, 6)) + train_words[doc][start:start + n] + _sentence(rng, rng.randint(1, 6))
            probe = "an n-gram shared with a training text (case and punctuation differ)"
        elif kind == 1:  # n-1 shared words only
            start = rng.randrange(len(train_words[doc]) - n + 2)
            ex = ["zebra"] + train_words[doc][start:start + n - 1] + ["zebra"]
            probe = "only n-1 words in a row shared"
        elif kind == 2:  # a window across the boundary of two training texts
            a, b = rng.sample(range(len(train_words)), 2)
            k = rng.randint(2, n - 2)
            ex = ["zebra"] + train_words[a][-k:] + train_words[b][:n - k] + ["zebra"]
            train_order = list(range(len(train)))
            train_order.remove(b)
            train_order.insert(train_order.index(a) + 1, b)
            train = [train[i] for i in train_order]
            probe = "words that run across the end of one training text into the next"
        elif kind == 3:  # a short example found whole
            start = rng.randrange(len(train_words[doc]) - 3)
            ex = train_words[doc][start:start + rng.randint(2, min(n - 1, len(train_words[doc]) - start))]
            probe = "an example shorter than n words, found whole"
        else:  # a short example whose words appear, but not in a row
            ex = train_words[doc][0:1] + ["zebra"] + train_words[doc][1:3]
            probe = "an example shorter than n words, not found as a run"
        cases.append((_dress(ex, rng), train, n, probe))
    # the last window of a training text: a run that ends the text, found nowhere before its last word
    n = rng.choice((5, 8, 13))
    while True:
        train_words = [_sentence(rng, rng.randint(2 * n, 4 * n)) for _ in range(rng.randint(2, 4))]
        doc = rng.randrange(len(train_words))
        ex = ["zebra"] + train_words[doc][-n:] + ["zebra"]
        if not reference_dirty(" ".join(ex), [" ".join(t[:-1]) for t in train_words], n):
            break
    cases.append((_dress(ex, rng), [_dress(t, rng) for t in train_words], n,
                  "an n-gram that ends a training text (its last n words)"))
    cases.append(("", ["a b c"], 3, "an empty example"))
    cases.append(("...", ["a b c"], 3, "an example with no words"))
    cases.append(("log of stone", ["the catalog of stone river"], 3, "words, not characters"))
    rng.shuffle(cases)
    return cases


DEFAULT_N = 13   # the exercise's signature: is_dirty(example, training_texts, n=13)


def _default_n_cases(rng) -> list[tuple[str, list[str], int, str]]:
    """Two cases for a call that leaves n out: a run of exactly 13 shared words (dirty at n=13, not
    at 14) and a run of exactly 12 (clean at 13, dirty at 12), each inside a longer example."""
    cases = []
    for shared, probe in ((DEFAULT_N, "the default n: exactly 13 words in a row shared"),
                          (DEFAULT_N - 1, "the default n: only 12 words in a row shared")):
        train_words = [_sentence(rng, rng.randint(2 * DEFAULT_N, 3 * DEFAULT_N)) for _ in range(rng.randint(2, 4))]
        doc = rng.randrange(len(train_words))
        start = rng.randrange(len(train_words[doc]) - shared + 1)
        ex = ["zebra"] + train_words[doc][start:start + shared] + ["zebra"]
        cases.append((_dress(ex, rng), [_dress(t, rng) for t in train_words], DEFAULT_N, probe))
    return cases


def _check_dirty(c) -> str:
    fn = c.get("is_dirty", callable_=True)
    cases = [(case, False) for case in _dirty_cases(c.rng)] + [(case, True) for case in _default_n_cases(c.rng)]
    c.rng.shuffle(cases)
    for (example, train, n, probe), default in cases:
        if default:  # called as the exercise's signature allows, so a changed default shows
            label = f"is_dirty({show_input(example, 50)}, <{len(train)} training texts>)"
            got = c.call(fn, example, list(train), label=label)
        else:
            label = f"is_dirty({show_input(example, 50)}, <{len(train)} training texts>, n={n})"
            got = c.call(fn, example, list(train), n, label=label)
        if not isinstance(got, bool):
            c.expect_type(got, bool, label)
        want = reference_dirty(example, train, n)
        if got == want:
            continue
        if default:  # the same case with n=13 passed: right there means the default is not 13
            explicit = c.call(fn, example, list(train), n, label=label[:-1] + f", n={n})")
            if explicit == want:
                c.fail(f"{label} returned {got} (this case tests {probe}), but with n={n} passed it returns "
                       f"{explicit}: called without n, your function does not use n={n}. Keep the default of "
                       f"the exercise's signature, is_dirty(example, training_texts, n=13).")
        advice = name_the_slip(got, [
            (lambda: reference_dirty(example, [" ".join(train)], n),
             "The window ran across two training texts: check each text on its own, never the texts "
             "joined together."),
            (lambda: reference_dirty(example, train, n - 1),
             "You matched n-1 words: an n-gram is n words in a row."),
            (lambda: reference_dirty(example, [" ".join(_norm_words(t)[:-1]) for t in train], n),
             "Your windows stop one short of the end of a training text: the last n words of a text are a "
             "window too (range(len(t) - n + 1))."),
            (lambda: bool(example.strip()) and any(example.lower() in t.lower() for t in train),
             "Compare words, not characters: 'cat' is not a word of 'catalog'."),
        ], default="Lower-case, split into words with \\w+ (punctuation dropped), then look for any run of n "
                   "words of the example inside one training text; an example shorter than n words must "
                   "appear whole, as a run; no words at all: False.")
        c.fail(f"{label} returned {got} (this case tests {probe}). {advice}")
    return (f"{len(cases)} fresh examples against fresh training texts (two with the default n), agreeing "
            f"with a brute-force scan.")


ex2 = CodingExercise(
    "ex2", LAB, names="is_dirty", checker=_check_dirty, points=3,
    refuses=("synthkit.audit.is_dirty", "synthkit.audit.dirty_share", "synthkit.audit.NgramIndex.hits"),
    title="The n-gram contamination rule",
    hints=[
        "Normalise both sides the same way: re.findall(r\"\\w+\", text.lower()). An example with no words "
        "is clean.",
        "Build the example's n-grams as tuples: {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}. For a "
        "short example (fewer than n words) use its whole word list as the only 'n-gram'.",
        "Scan each training text separately (joining them invents n-grams across their boundary): slide a "
        "window of the same size over its words and return True on the first window in the set.",
    ],
)


# --- exercise 3: provenance findings with line numbers --------------------------------------
REQUIRED = ("model", "params", "seed", "license")


def reference_findings(lines: list[str]) -> list[tuple[int, str]]:
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append((number, "not-json"))
            continue
        if not isinstance(record, dict):
            out.append((number, "not-object"))
            continue
        prov = record.get("provenance")
        if not isinstance(prov, dict):
            out.append((number, "missing-provenance"))
            continue
        out += [(number, f"missing-{k}") for k in REQUIRED if prov.get(k) is None]
        lic = prov.get("license")
        if isinstance(lic, str) and lic.strip().lower() in ("", "unknown"):
            out.append((number, "unknown-license"))
    return out


def _record(rng) -> dict:
    prov = {"technique": rng.choice(("magpie", "self-instruct", "rejection")),
            "model": rng.choice(("SmolLM2-135M-Instruct-Q4_1", "Meta-Llama-3.1-8B-Instruct", "gemma-2-2b-it")),
            "params": {"temperature": rng.choice((0.0, 0.7, 1.0)), "max_tokens": 256},
            "seed": rng.choice((0, 0, 1, 42, 1234)), "license": rng.choice(("Apache-2.0", "llama3.1", "gemma"))}
    return {"instruction": rng.choice(("Name a river.", "Add 2 and 3.", "Write a haiku.")),
            "output": rng.choice(("The Nile.", "5", "Quiet stone...")), "provenance": prov}


def _provenance_lines(rng) -> list[str]:
    lines = []
    for _ in range(rng.randint(10, 16)):
        r = _record(rng)
        what = rng.randrange(12)
        if what == 0:
            lines.append("{broken json " + str(rng.randint(0, 9)))
            continue
        if what == 1:
            lines.append(json.dumps([r["instruction"], r["output"]]))
            continue
        if what == 2:
            del r["provenance"]
        elif what == 3:
            r["provenance"] = rng.choice(("magpie", None, ["model"]))
        elif what == 4:
            del r["provenance"][rng.choice(REQUIRED)]
        elif what == 5:
            r["provenance"][rng.choice(REQUIRED)] = None
        elif what == 6:
            r["provenance"]["license"] = rng.choice(("unknown", "UNKNOWN", "", " "))
        elif what == 7:
            r["provenance"]["params"] = {}  # present, just empty: not missing
        lines.append(json.dumps(r))
        if rng.random() < 0.25:
            lines.append(rng.choice(("", "   ")))
    lines.insert(rng.randrange(len(lines)), json.dumps({**_record(rng), "provenance": {
        **_record(rng)["provenance"], "seed": 0}}))
    return lines


def _as_pairs(found) -> list[tuple[int, str]] | None:
    pairs = []
    for f in found:
        if isinstance(f, dict) and "line" in f and "kind" in f:
            pairs.append((f["line"], f["kind"]))
        elif isinstance(f, (tuple, list)) and len(f) == 2:
            pairs.append((f[0], f[1]))
        else:
            return None
    return pairs


def _check_provenance(c) -> str:
    fn = c.get("provenance_findings", callable_=True)
    total = 0
    for _ in range(6):
        lines = _provenance_lines(c.rng)
        label = f"provenance_findings(<{len(lines)} lines>)"
        got = c.call(fn, list(lines), label=label)
        if not isinstance(got, list):
            c.expect_type(got, list, label)
        pairs = _as_pairs(got)
        if pairs is None:
            c.fail(f"{label} should return a list of dicts with 'line' and 'kind' keys; got "
                   f"{show_input(got, 80)}.")
        want = reference_findings(lines)
        total += len(want)
        if sorted(pairs) == sorted(want):
            continue
        extra = sorted(set(pairs) - set(want))
        missed = sorted(set(want) - set(pairs))
        shown = "\n".join(f"  line {i}: {show_input(line, 90)}" for i, line in enumerate(lines, 1))
        if extra and all((ln + 1, k) in set(want) for ln, k in extra):
            hint = "Your line numbers are one too small: lines are numbered from 1, like an editor's."
        elif any(k == "missing-seed" for _, k in extra) or any(k == "missing-params" for _, k in extra):
            hint = ("A seed of 0 and empty params {} are present, just falsy: a field is missing only when "
                    "it is absent or null (use `prov.get(k) is None`).")
        elif missed and all(any((ln2, k) in set(pairs) for ln2 in range(ln - 3, ln)) for ln, k in missed):
            hint = "Blank lines are skipped but still count: number the lines of the file, not the records."
        else:
            hint = "Compare each line with the rules above the exercise."
        c.fail(f"{label} on these lines:\n{shown}\nreported {show_input(extra, 120)} that should not be there "
               f"and missed {show_input(missed, 120)}. {hint}")
    return f"6 fresh files ({total} findings in all), with broken lines, blank lines and seed 0, checked line by line."


ex3 = CodingExercise(
    "ex3", LAB, names="provenance_findings", checker=_check_provenance, points=2,
    refuses=("synthkit.audit.check_provenance", "synthkit.audit.read_records"),
    title="Provenance findings with line numbers",
    hints=[
        "Number the lines with enumerate(lines, 1) and skip blank ones with `continue` (the numbering goes on). "
        "Parse with json.loads inside try/except json.JSONDecodeError.",
        "After parsing: a non-dict is 'not-object'; a record whose 'provenance' is not a dict is "
        "'missing-provenance' (and nothing else for that line). Then one 'missing-<field>' for each of "
        "model, params, seed, license that is absent or None: `prov.get(k) is None`, because 0 and {} are values.",
        "Last, a licence that is a string equal to 'unknown' or blank, ignoring case and spaces, adds "
        "'unknown-license'. Append {'line': number, 'kind': kind} for each finding.",
    ],
)


# --- essay 1 --------------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="Two teachers, two kinds of terms",
    prompt="""
        A start-up wants to fine-tune a small model and sell it as a customer-support assistant. It
        can make the training data in two ways: (a) by asking OpenAI's API, or (b) by running Llama 3
        Instruct (or Llama 3.1) on its own machines. Using the teacher-terms table of this lab, compare
        the two: what each set of terms says about training a model on the outputs, whether the
        product would count as "competing", what changes between Llama 3 and 3.1, what the company
        would have to do to comply in each case, and what risk is left that no licence settles
        (personal data in the outputs, copied text, contamination of its own evaluation). Say what
        your audit of the data would check before training, and what you would ask a lawyer.
    """,
    hints=["Read the two rows' `outputs` and `conditions` fields side by side; one is a contract with a "
           "service, the other a licence on weights. Then look at what the audit found in this lab's "
           "own generated data: which of those risks depends on the teacher at all?"],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - OpenAI's terms are a contract with the API provider: outputs belong to the customer, but they may
          not be used to develop models that compete with OpenAI. A general customer-support assistant sold
          to others is arguably competing; the undefined word 'compete' is the risk.
        - Llama 3's licence forbade using outputs to improve any other large language model than Llama 3 and
          its derivatives: fine-tuning a Mistral or Qwen student was out, a Llama 3 student was fine. Llama
          3.1 allows training other models on outputs, on condition that a distributed model's name starts
          with 'Llama' and 'Built with Llama' is shown; the 700M-user clause and the acceptable use policy
          remain. Llama 3.2 and 3.3 keep the 3.1 clause, so "Llama 3" in a product plan needs its exact version.
        - Compliance: with OpenAI, either stay clear of competing uses or get written permission; with Llama
          3.1, name and attribute, ship the licence, follow the use policy, and keep provenance per record to
          prove which outputs came from which teacher.
        - Risks no licence settles: personal data the teacher writes (the audit's PII check), verbatim copies
          of someone's text (n-gram overlap with a reference), contamination of the evaluation set (so the
          company's own scores lie), and the licences of the prompts and seed data themselves.
        - Before training: provenance complete on every record, PII removed or masked, overlap and
          contamination below a threshold, a dataset card. For a lawyer: whether the product 'competes',
          whether naming duties apply to an internal model, and jurisdiction-specific data-protection duties.
    """,
)


# --- the concept check ----------------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("A company trains its own model on text generated by Gemma 2, so that the model performs like "
             "Gemma, and releases it. What do the Gemma Terms of Use say about that model?",
             ["Nothing: outputs are not Model Derivatives, so a model trained on them is free of the terms",
              "It counts as a Model Derivative, so the Gemma terms and use restrictions travel with it",
              "It may be released only under Apache-2.0, the licence that covers Gemma's source code",
              "It must be withdrawn and deleted as soon as Google publishes a newer Gemma version"],
             answer=1,
             why="The outputs themselves are not Model Derivatives, but a model trained on Gemma's synthetic "
                 "outputs to perform like Gemma is one, and carries the terms downstream. (Gemma 4 is "
                 "Apache-2.0 and has no such clause: check which Gemma.)"),
    Question("What changed between the Llama 3 and Llama 3.1 licences about using a model's outputs?",
             ["3.1 forbids any use of outputs for training, which 3 allowed with attribution",
              "Nothing: both forbid using outputs to improve any model except Llama itself",
              "3.1 allows training other models on outputs, if the released model's name starts with 'Llama'",
              "3.1 dropped every condition, so its outputs are as free as Apache-2.0 outputs"],
             answer=2,
             why="Llama 3 ruled out improving non-Llama models with its outputs; 3.1 permits it with a naming "
                 "and 'Built with Llama' condition, other clauses unchanged."),
    Question("An evaluation item has 9 words. The audit uses 13-grams. When is the item contaminated by the "
             "rule this lab implements?",
             ["Never: it has no 13-gram at all, so it can never collide with the training data",
              "When its 9 words appear in a row, ignoring case and punctuation, in one training text",
              "When each of its 9 words appears somewhere in the training data, in any order",
              "When any one of its words appears in a training text that is longer than 13 words"],
             answer=1,
             why="An example shorter than n is checked whole; otherwise short items would always look clean. "
                 "Words scattered across a corpus prove nothing."),
    Question("Why does a card-number detector check the Luhn digit instead of matching any 16-digit number?",
             ["Luhn proves that the card exists and is active, so only live cards get flagged",
              "Luhn turns a number into its issuing bank, which the audit report needs to name",
              "Nine in ten random digit strings fail it, so far fewer look-alikes are reported",
              "A regular expression for 16 digits runs far too slowly on long synthetic records"],
             answer=2,
             why="The check digit catches every single-digit typo and most look-alikes; it says nothing about "
                 "whether the account is real. One random number in ten still passes."),
    Question("Suppose the 135M teacher, prompted with the first half of Wikipedia lead sentences, almost "
             "never continues 8 words verbatim. What would that show?",
             ["That its training data held no Wikipedia text at all, or it would have recalled some",
              "That data generated by this teacher can never contain text copied from its training set",
              "That this one probe found little verbatim recall; other prompts or larger models may",
              "That the audit's verbatim overlap check can be switched off for this particular teacher"],
             answer=2,
             why="Absence of evidence from one probe is not proof. Carlini et al. (2023) found memorisation grows "
                 "with model size, with duplication and with prompt length; other prompts may extract more, we "
                 "cannot even show these sentences were in its training data, and the overlap check is cheap "
                 "insurance."),
    Question("A record's provenance says seed 0 and params {}. Should the provenance check flag it as "
             "missing its seed or its parameters?",
             ["No: both are present; missing means absent or null, and 0 and {} are values",
              "Yes, both: zero and empty are how pipelines mark a field they never filled in",
              "Only the seed: a seed of 0 means the generation was not seeded",
              "Only the parameters: an empty dict means greedy decoding was not recorded"],
             answer=0,
             why="A seed of 0 reproduces a run as well as any other seed. Testing truthiness instead of "
                 "`is None` is the classic slip."),
])
