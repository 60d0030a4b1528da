"""Lab 01 — the data cliff: three exercises, one essay and a concept check.

Used by ``labs/01_data_cliff.ipynb``::

    from synthkit.labs.lab01 import ex1, ex2, ex3, essay1, quiz
"""
from __future__ import annotations

import numbers
from functools import lru_cache

from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "01"
TITLE = "The data cliff: how much human text is left"
NOTEBOOK = "01_data_cliff.ipynb"


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _tokens(x: float) -> str:
    from ..cliff import tokens_label
    return tokens_label(x)


# --- exercise 1: years of fresh data ---------------------------------------------------
def _fresh_runs(stock: float, first_run: float, growth: float) -> tuple[int, list[float]]:
    """Reference: feed runs one by one; also the cumulative totals it passed through."""
    runs, used, run, totals = 0, 0.0, float(first_run), []
    while used + run <= stock:
        used += run
        totals.append(used)
        runs += 1
        run *= growth
    totals.append(used + run)
    return runs, totals


def _clear_of_boundaries(stock: float, totals: list[float]) -> bool:
    """No cumulative total within a millionth of the stock: float rounding cannot matter."""
    return all(abs(stock - t) > 1e-6 * stock for t in totals)


def _ex1_cases(rng) -> list[tuple[float, float, float, str]]:
    cases = []
    while len(cases) < 14:   # growing runs, sizes spread over several orders of magnitude
        stock = 10 ** rng.uniform(12.5, 15.5)
        first = 10 ** rng.uniform(11, 13.7)
        growth = round(rng.uniform(1.05, 4.0), 3)
        if _clear_of_boundaries(stock, _fresh_runs(stock, first, growth)[1]):
            cases.append((stock, first, growth, "growing runs"))
    for _ in range(3):       # no growth at all, stock not a whole number of runs
        first = rng.randint(1, 40) * 1e11
        stock = first * (rng.randint(1, 60) + rng.uniform(0.1, 0.9))
        cases.append((stock, first, 1.0, "runs that do not grow (growth = 1.0)"))
    first = rng.randint(2, 20) * 1e12                        # exactly k runs, no growth
    cases.append((first * rng.randint(2, 12), first, 1.0, "a stock of exactly a whole number of runs"))
    growth = rng.choice((1.5, 2.0, 2.5, 3.0))
    first = rng.randint(5, 30) * 1e12
    cases.append((first, first, growth, "a first run that uses exactly the whole stock"))
    first = rng.randint(20, 90) * 1e12
    cases.append((first * rng.uniform(0.2, 0.9), first, growth, "a first run bigger than the stock"))
    rng.shuffle(cases)
    return cases


def _check_years_of_fresh_data(c) -> str:
    fn = c.get("years_of_fresh_data", callable_=True)
    cases = _ex1_cases(c.rng)
    for stock, first, growth, what in cases:
        label = (f"years_of_fresh_data(stock={stock:.4g}, first_run={first:.4g}, growth={growth:g}) "
                 f"[{what}: stock {_tokens(stock)}, first run {_tokens(first)}]")
        got = c.call(fn, stock, first, growth, label=label)
        if not _is_int(got):
            if _is_number(got) and float(got).is_integer():
                c.fail(f"{label} returned {got!r}, a {type(got).__name__}; return a whole number of runs "
                       f"as an int (wrap it in int(...)).")
            c.expect_type(got, int, label)
        want, _ = _fresh_runs(stock, first, growth)
        if got == want:
            continue
        if got < 0:
            c.fail(f"{label} returned {got}: a number of runs cannot be negative.")
        advice = ""
        if "exactly" in what and abs(got - want) == 1:
            advice = (" Look at the comparison that decides whether a run still fits: a run that needs "
                      "exactly the tokens that are left is fed in full.")
        elif growth == 1.0:
            advice = " With growth = 1.0 every run has the same size; does your formula divide by log(1)?"
        elif got > want:
            advice = (" Each run needs tokens no earlier run used, so the runs' sizes add up: count the runs "
                      "whose running total still fits in the stock.")
        else:
            advice = " Count a run when the running total including it still fits in the stock."
        c.fail(f"{label} returned {got}, which is too {'many' if got > want else 'few'}.{advice}")
    return (f"{len(cases)} fresh sets of assumptions, from growing runs to a stock that holds exactly "
            f"one run, all counted right.")


ex1 = CodingExercise(
    "ex1", LAB, names="years_of_fresh_data", checker=_check_years_of_fresh_data, points=2,
    title="How many frontier runs can the stock feed, if no token is used twice?",
    hints=[
        "Simulate it: keep a running total of tokens used. Year after year, add the next run's size "
        "(multiply the size by `growth` each year) while the total still fits in the stock, and count.",
        "The loop stops the first time `used + run > stock`; a run that takes exactly the last token "
        "still counts. With `growth` above 1 the loop ends fast; with growth = 1.0 it is plain division "
        "(a closed form with logarithms needs that case on its own, since log(1) = 0).",
    ],
    solution='''
        def years_of_fresh_data(stock, first_run, growth):
            """How many yearly runs the stock can feed in full when no token is used twice."""
            runs, used, run = 0, 0.0, first_run
            while used + run <= stock:
                used += run
                runs += 1
                run *= growth
            return runs
    ''',
)


# --- exercise 2: the C4 line rule ------------------------------------------------------
TERMINAL = (".", "!", "?", '"', "\u201d")


def _reference_prose_lines(text: str, min_words: int = 3) -> str:
    kept = []
    for line in text.splitlines():
        line = line.strip()
        if line.endswith(TERMINAL) and len(line.split()) >= min_words:
            kept.append(line)
    return "\n".join(kept)


@lru_cache(maxsize=1)
def _sentences() -> tuple[str, ...]:
    from ..data import wiki_sentences
    return tuple(wiki_sentences("en", min_words=4, max_words=25)[:3000])


_SHORT = ("Thanks!", "Done.", "Why?", "Sign up now!", "Read more...", "See you soon!", "Really?",
          "Click here.", "Page 2 of 7.", "Subscribe for updates!", "OK.")
_NO_END = ("Home | About | Contact", "Posted by admin on 12 March", "Share this article",
           "Tags: history, science, maps", "Related posts:", "Menu", "Previous | Next",
           "© 2023 Example Media Ltd", "Table of contents", "Continue reading (4 min read)",
           "Price: $19.99", "Photo: Reuters", "Follow us on", "Comments (12)")


def _random_line(rng) -> str:
    kind = rng.random()
    if kind < 0.35:
        line = rng.choice(_sentences())
    elif kind < 0.45:
        quote = rng.choice(_sentences()).rstrip(".!?")
        line = (f'She said: "{quote}."' if rng.random() < 0.5 else f"He wrote: \u201c{quote}!\u201d")
    elif kind < 0.62:
        line = rng.choice(_SHORT)
    elif kind < 0.82:
        line = rng.choice(_NO_END)
    elif kind < 0.88:
        line = rng.choice(_sentences()).rstrip(".!?") + rng.choice((",", ":", ";", " -", " 3"))
    elif kind < 0.94:
        line = ""
    else:
        line = rng.choice(("   ", "\t", " \t "))
    if line.strip() and rng.random() < 0.3:   # stray whitespace around a line
        line = rng.choice(("  ", "\t", " ")) + line + rng.choice(("", " ", "   ", "\t"))
    return line


def _random_page(rng) -> str:
    lines = [_random_line(rng) for _ in range(rng.randint(3, 14))]
    return ("\r\n" if rng.random() < 0.1 else "\n").join(lines)


def _check_keep_prose_lines(c) -> str:
    fn = c.get("keep_prose_lines", callable_=True)
    pages = [(_random_page(c.rng), c.rng.choice((None, 1, 2, 3, 4, 5, 6))) for _ in range(24)]
    pages.append(("Home | About | Contact\nMenu\nLogin", None))  # nothing survives
    pages.append((c.rng.choice(_sentences()), None))             # one clean sentence, no newline
    for page, min_words in pages:
        label = (f"keep_prose_lines({show_input(page, 90)}"
                 + (f", min_words={min_words})" if min_words is not None else ")"))
        got = (c.call(fn, page, label=label) if min_words is None
               else c.call(fn, page, min_words=min_words, label=label))
        c.expect_type(got, str, label)
        want = _reference_prose_lines(page, 3 if min_words is None else min_words)
        if got == want:
            continue
        words = 3 if min_words is None else min_words
        got_lines, want_lines = got.split("\n") if got else [], want.split("\n") if want else []
        extra = [line for line in got_lines if line not in want_lines]
        lost = [line for line in want_lines if line not in got_lines]
        if extra:
            line = extra[0]
            stripped = line.strip()
            if stripped != line and stripped in want_lines:
                why = "it still has whitespace around it: strip each line"
            elif stripped in (x.strip() for x in page.splitlines()) and not stripped.endswith(TERMINAL):
                why = "it does not end in a terminal punctuation mark"
            elif len(stripped.split()) < words:
                why = f"it has fewer than {words} words"
            elif not stripped:
                why = "it is empty"
            else:
                why = "it is not a line of the page as it stands"
            c.fail(f"{label} kept the line {show_input(line, 60)}, which should be dropped: {why}.")
        if lost:
            c.fail(f"{label} dropped the line {show_input(lost[0], 60)}, which should be kept. Which of the "
                   f"terminal marks . ! ? \" \u201d does it end with, and how many words has it?")
        c.fail(f"{label} keeps the right lines, but not in the same form: return them in their original "
               f"order, each stripped, joined with a single newline, and no newline at the end.")
    return (f"{len(pages)} fresh pages of prose, boilerplate and stray whitespace, cleaned line by line "
            f"exactly as the rule says.")


ex2 = CodingExercise(
    "ex2", LAB, names="keep_prose_lines", checker=_check_keep_prose_lines, points=2,
    title="Keep only the lines that read like prose (C4's line rule)",
    hints=[
        "Go line by line (`text.splitlines()`), `strip()` each line, and keep it only if BOTH hold: "
        "it ends with one of the marks in TERMINAL and it has at least `min_words` words (`len(line.split())`).",
        "`str.endswith` accepts a tuple of endings. Collect the kept lines in a list and return "
        "`\"\\n\".join(kept)`: that is the empty string when nothing is kept.",
    ],
    solution='''
        TERMINAL = (".", "!", "?", '"', "\\u201d")   # the closing curly quote is \\u201d

        def keep_prose_lines(text, min_words=3):
            """The lines of `text` that end in terminal punctuation and have >= min_words words."""
            kept = []
            for line in text.splitlines():
                line = line.strip()
                if line.endswith(TERMINAL) and len(line.split()) >= min_words:
                    kept.append(line)
            return "\\n".join(kept)
    ''',
)


# --- exercise 3: precision and recall of a dedup ---------------------------------------
def _norm(pairs) -> set:
    return {(min(i, j), max(i, j)) for i, j in pairs}


def _pr(predicted, true) -> tuple[float, float]:
    p, t = _norm(predicted), _norm(true)
    hit = len(p & t)
    return (hit / len(p) if p else 1.0, hit / len(t) if t else 1.0)


def _random_pairs(rng, n: int, k: int) -> set:
    pairs = set()
    while len(pairs) < k:
        i, j = rng.sample(range(n), 2)
        pairs.add((min(i, j), max(i, j)))
    return pairs


def _ex3_cases(rng) -> list[tuple[list, list, str]]:
    cases = []
    for _ in range(10):
        n = rng.randint(8, 80)
        true = _random_pairs(rng, n, rng.randint(1, min(25, n)))
        found = rng.sample(sorted(true), rng.randint(0, len(true)))
        wrong = [p for p in _random_pairs(rng, n, rng.randint(0, 12)) if p not in true]
        predicted = found + wrong
        predicted = [(j, i) if rng.random() < 0.4 else (i, j) for i, j in predicted]     # either order
        predicted += [rng.choice(predicted) for _ in range(rng.randint(0, 3))] if predicted else []
        rng.shuffle(predicted)
        true_list = [(j, i) if rng.random() < 0.3 else (i, j) for i, j in true]
        rng.shuffle(true_list)
        cases.append((predicted, true_list, "random pairs"))
    true = sorted(_random_pairs(rng, 30, 5))
    cases.append(([], true, "nothing predicted"))
    cases.append((sorted(_random_pairs(rng, 30, 4)), [], "no true pairs at all"))
    cases.append(([], [], "no pairs on either side"))
    cases.append(([(j, i) for i, j in true] + true, true, "every true pair, each listed in both orders"))
    rng.shuffle(cases)
    return cases


def _check_pair_precision_recall(c) -> str:
    fn = c.get("pair_precision_recall", callable_=True)
    cases = _ex3_cases(c.rng)
    for predicted, true, what in cases:
        label = f"pair_precision_recall({show_input(predicted, 60)}, {show_input(true, 50)}) [{what}]"
        got = c.call(fn, list(predicted), list(true), label=label)
        if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(_is_number(x) for x in got):
            c.fail(f"{label} returned {show_input(got, 50)}; it should return two numbers, "
                   f"(precision, recall).")
        precision, recall = (float(x) for x in got)
        want = _pr(predicted, true)
        if abs(precision - want[0]) <= 1e-9 and abs(recall - want[1]) <= 1e-9:
            continue
        which = ("precision" if abs(precision - want[0]) > 1e-9 else "recall")
        if not predicted or not true:
            c.fail(f"{label}: the {which} is wrong for this edge case. Read the rule for an empty list "
                   f"again: nothing predicted means no false alarm, nothing to find means nothing missed.")
        if abs(precision - want[1]) <= 1e-9 and abs(recall - want[0]) <= 1e-9:
            c.fail(f"{label}: precision and recall look swapped. Precision asks how many of the predicted "
                   f"pairs are right; recall asks how many of the true pairs were found.")
        ordered = _pr_raw(predicted, true, normalise=False)
        if abs(precision - ordered[0]) <= 1e-9 and abs(recall - ordered[1]) <= 1e-9:
            c.fail(f"{label}: the {which} is off, as if (3, 7) and (7, 3) were different pairs. "
                   f"Put each pair in one order before comparing.")
        repeated = _pr_raw(predicted, true, normalise=True, dedupe=False)
        if abs(precision - repeated[0]) <= 1e-9 and abs(recall - repeated[1]) <= 1e-9:
            c.fail(f"{label}: the {which} is off, as if a pair listed twice counted twice. Use sets.")
        c.fail(f"{label} returned a wrong {which} ({got[0 if which == 'precision' else 1]!r}).")
    return (f"{len(cases)} fresh sets of pairs, in either order, with repeats and empty edge cases, "
            f"all scored right.")


def _pr_raw(predicted, true, normalise: bool, dedupe: bool = True) -> tuple[float, float]:
    """What common slips compute, to name the slip in the feedback."""
    fix = (lambda p: (min(p), max(p))) if normalise else tuple
    p = [fix(x) for x in predicted]
    t = [fix(x) for x in true]
    if dedupe:
        p, t = list(set(p)), list(set(t))
    tset = set(t)
    hit_p = sum(x in tset for x in p)
    hit_t = sum(x in set(p) for x in t)
    return (hit_p / len(p) if p else 1.0, hit_t / len(t) if t else 1.0)


ex3 = CodingExercise(
    "ex3", LAB, names="pair_precision_recall", checker=_check_pair_precision_recall, points=2,
    title="Score a near-duplicate detector: precision and recall over pairs",
    hints=[
        "Turn both lists into sets of pairs in one fixed order, `(min(i, j), max(i, j))`: then "
        "(7, 3) and (3, 7) are the same pair and a repeated pair counts once. The pairs found "
        "correctly are the intersection of the two sets.",
        "precision = correct / number of predicted pairs (1.0 when nothing is predicted); "
        "recall = correct / number of true pairs (1.0 when there is nothing to find). "
        "Return them as a tuple `(precision, recall)`.",
    ],
    solution='''
        def pair_precision_recall(predicted, true):
            """(precision, recall) of predicted duplicate pairs against the true ones."""
            p = {(min(i, j), max(i, j)) for i, j in predicted}
            t = {(min(i, j), max(i, j)) for i, j in true}
            correct = len(p & t)
            precision = correct / len(p) if p else 1.0
            recall = correct / len(t) if t else 1.0
            return precision, recall
    ''',
)


# --- essay 1 ---------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="Which way down from the cliff, for one domain?",
    prompt="""
        You are to build a customer-support assistant for a company whose customers write in
        English, Spanish and French, and whose own archive of answered tickets is small. Of the
        four ways past the data cliff (lower the quality bar, add other languages, use other
        modalities, generate synthetic data), which would you lean on most, and which least?
        What would you measure first to find out whether it helped? Use at least one number you
        measured in this lab.
    """,
    hints=["Think about what is scarce: support conversations in the company's own voice, about its "
           "own products. Which exit produces more of exactly that, and which only produces more text?"],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - What is scarce is in-domain dialogue, not text in general: lowering the bar or adding
          more web text adds tokens about the wrong things; the strict rules in this lab threw away
          good short articles, but relaxing them on support logs would mostly add noise.
        - Other languages matter here because the customers use them, but the tokenizer charges
          about 1.6x more tokens per character for Spanish and French: counts of tokens overstate
          what translation adds, and the budget must be set in characters or in examples.
        - Other modalities: call-centre audio transcribed into text is in-domain and real; worth it
          if recordings exist and consent allows it.
        - Synthetic data is the natural main exit: a teacher writes tickets and answers seeded from
          the real archive and the product docs, filtered and deduplicated, in all three languages.
          It inherits the teacher's mistakes, so keep the real tickets as anchor and for evaluation.
        - Measure first: a held-out set of real tickets, answer quality per language, and the
          diversity/duplication of the synthetic set (near-duplicate rate, as measured here).
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Common Crawl holds about 400 trillion raw tokens and 15% survive strict filtering. "
             "What share of what survives does one 15-trillion-token run use?",
             ["About 4%", "About 15%", "About 25%", "About 60%"],
             answer=2,
             why="400T x 0.15 = 60T usable tokens, and 15T / 60T = 25%: a single run already eats a "
                 "quarter of the stock."),
    Question("The funnel kept nearly all of the Wikipedia summaries' tokens, while strict web filtering "
             "keeps about 15%. Why the difference?",
             ["The filters in synthkit are weaker than the labs' filters",
              "Wikipedia is already written, edited and deduplicated by people: there is little left "
              "for the rules to remove",
              "Wikipedia summaries are too short for the rules to apply",
              "MinHash cannot see duplicates in encyclopedic text"],
             answer=1,
             why="Curated text is what web filters try to get back to; on it they have almost nothing "
                 "to do, and most of what they do remove is a false alarm."),
    Question("With the course's tokenizer, French costs about 60% more tokens per character than "
             "English. What does that mean for counting translated text as new training data?",
             ["Nothing: a token is a token",
              "The token count overstates the new content: compare languages in characters or in "
              "documents, not in tokens",
              "French text holds 60% more information per character",
              "Translation should be avoided entirely"],
             answer=1,
             why="A tokenizer trained mostly on English cuts other languages into smaller pieces, so "
                 "the same content costs more tokens without carrying more information."),
    Question("Runs grow 2.5x a year and the stock of text 5% a year. How much longer does the stock "
             "last if it is twice as big as you thought?",
             ["Under a year", "About two years", "Twice as long", "Forever"],
             answer=0,
             why="The gap closes by a factor 2.5 / 1.05 a year, so doubling the stock buys "
                 "log 2 / log(2.5 / 1.05), about 0.8 of a year."),
    Question("Why find near-duplicates with MinHash and LSH rather than comparing every pair of "
             "documents?",
             ["MinHash is more accurate than an exact comparison",
              "The number of pairs grows with the square of the corpus: 10,000 documents already "
              "make 50 million pairs, a crawl makes astronomically many; LSH only proposes pairs "
              "that share a band of hashes",
              "Exact comparison cannot handle punctuation",
              "LSH guarantees that no duplicate is ever missed"],
             answer=1,
             why="All-pairs comparison is quadratic; LSH proposes likely pairs in about linear time, "
                 "at the price of a few misses near the threshold."),
    Question("Of the four ways past the data cliff, which one is unbounded, at least in principle?",
             ["Lowering the quality bar", "Translating from other languages",
              "Using other modalities (transcribed audio, OCR)", "Generating synthetic data"],
             answer=3,
             why="Every other exit draws on a finite stock of human output; a model can keep "
                 "writing, which is why the rest of this course is about doing that well."),
])
