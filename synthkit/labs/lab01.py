"""Lab 01 — the data cliff: three exercises, one essay and a concept check.

Used by ``labs/01_data_cliff.ipynb``::

    from synthkit.labs.lab01 import ex1, ex2, ex3, essay1, quiz
"""
from __future__ import annotations

from functools import lru_cache

from ..grading.checks import is_int as _is_int
from ..grading.checks import is_number as _is_number
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "01"
TITLE = "The data cliff: how much human text is left"
NOTEBOOK = "01_data_cliff.ipynb"


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
    first = rng.randint(5, 30) * 1e12                         # whole numbers: exact in a float
    cases.append((first * (1 + growth) - 1, first, growth, "a stock one token short of two runs"))
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
        if "one token short" in what:
            advice = (" Two runs need first_run x (1 + growth) tokens, and the stock is one token short of "
                      "that: only the first run is fed in full. Start `used` at 0 and count a run only while "
                      "used + run <= stock.")
        elif "exactly" in what and abs(got - want) == 1:
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
        "No token is used twice, so what runs out is the *sum* of all runs so far, not the size of "
        "this year's run. In which year does that sum first go past the stock?",
        "Simulate it year by year: keep `used` (tokens fed so far) and `run` (this year's size). While "
        "the next run still fits, add it to `used`, count it, and multiply `run` by `growth`.",
        "The loop stops the first time `used + run > stock`; a run that takes exactly the last token "
        "still counts (`<=`). A first run bigger than the stock gives 0, and a closed form with "
        "logarithms needs growth = 1.0 on its own (log(1) = 0). Return an int.",
    ],
)


# --- exercise 2: C4's page cleaner ----------------------------------------------------
# The rule is C4's own (see `synthkit.filters.c4_clean_page`, which follows the reference
# code): the end-mark and length tests first, then "lorem ipsum" (page), "javascript" (line),
# "{" (page) and the policy phrases (line), in that order. Every run draws a javascript notice
# that holds a "{" on a page that survives, so testing "{" before "javascript" (or any "{" on
# the page, as the paper's words have it) fails. The checker never puts "lorem ipsum" or "{"
# on a line that fails the end-mark or length tests, and plants no citation marks and no
# 1000-character words, the two parts of C4's code the exercise leaves out.
END_MARKS = (".", "?", "!", '"')
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                  "use of cookies", "use cookies")


def _reference_clean_page(text: str, min_words: int = 5) -> str | None:
    from ..filters import c4_clean_page
    return c4_clean_page(text, min_words=min_words)


@lru_cache(maxsize=1)
def _sentences() -> tuple[str, ...]:
    from ..data import wiki_sentences
    return tuple(s for s in wiki_sentences("en", min_words=4, max_words=25)[:3000]
                 if "{" not in s and "javascript" not in s.lower() and "lorem ipsum" not in s.lower()
                 and not any(p in s.lower() for p in POLICY_PHRASES))


_SHORT = ("Thanks!", "Done.", "Why?", "Sign up now!", "See you soon!", "Really?", "Click here.",
          "Page 2 of 7.", "Subscribe for updates!", "OK.", "Add to basket.", "Was this helpful?")
_NO_END = ("Home | About | Contact", "Posted by admin on 12 March", "Share this article",
           "Tags: history, science, maps", "Related posts:", "Menu", "Previous | Next",
           "\u00a9 2023 Example Media Ltd", "Table of contents", "Continue reading (4 min read)",
           "Price: $19.99", "Photo: Reuters", "Follow us on", "Comments (12)")
_JAVASCRIPT = ("Please enable JavaScript in your browser to see the comments.",
               "This site works best with javascript switched on in your browser.",
               "JavaScript is disabled, so parts of this page will not load.",
               "You need to turn on JAVASCRIPT to play the video on this page!")
_POLICY = ("By using this site you agree to our Terms of Use and all our rules.",
           "Please read our Privacy Policy before you create an account.",
           "This website uses cookies to give you the best experience possible.",
           "We use cookies to remember your choices on every visit.",
           "You can find out more about our use of cookies on this page.",
           "Our Cookie Policy explains what we store on your device and why.")
_LOOKALIKES = ("Grandma bakes oat cookies for the whole street every Sunday.",     # cookies, no policy
               "The island of Java is home to more than half of Indonesia's people.",  # Java, not javascript
               "The terms of the treaty were set out in twelve short articles.",
               "Every hiker should carry water, a map and a warm coat.")
_PAGE_KILLERS = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
                 "Call init() with the options { debug: true, retries: 3 } before the page has loaded.",
                 "LOREM IPSUM placeholder text will be replaced by the real article very soon.",
                 "Set the style to { color: red } and the heading will stand out on every page.")
# A javascript notice with a curly bracket: C4 drops the line (javascript is tested first) and
# keeps the page.
_JAVASCRIPT_BRACES = ("Please enable JavaScript {here} to read on.",
                      "Turn on javascript to see the {interactive} map below.",
                      "Your browser has JavaScript {disabled}, so the comments will not load.")


def _random_line(rng) -> str:
    kind = rng.random()
    if kind < 0.30:
        line = rng.choice(_sentences())
    elif kind < 0.38:                     # several sentences on one line
        line = " ".join(rng.choice(_sentences()) for _ in range(rng.randint(2, 3)))
    elif kind < 0.46:                     # quotations: straight quotes survive, curly ones do not
        quote = rng.choice(_sentences()).rstrip(".!?")
        line = rng.choice((f'She said: "{quote}."', f"He wrote: \u201c{quote}!\u201d",
                           f'Critics called it "{quote.lower()}"'))
    elif kind < 0.56:
        line = rng.choice(_SHORT)
    elif kind < 0.68:
        line = rng.choice(_NO_END)
    elif kind < 0.74:                     # a sentence cut off, or trailing away in an ellipsis
        line = rng.choice(_sentences()).rstrip(".!?") + rng.choice((",", ":", " -", " 3", "...", "\u2026", " ..."))
    elif kind < 0.79:
        line = rng.choice(_JAVASCRIPT)
    elif kind < 0.85:
        line = rng.choice(_POLICY)
    elif kind < 0.90:
        line = rng.choice(_LOOKALIKES)
    elif kind < 0.95:
        line = ""
    else:
        line = rng.choice(("   ", "\t", " \t "))
    if line.strip() and rng.random() < 0.3:   # stray whitespace around a line
        line = rng.choice(("  ", "\t", " ")) + line + rng.choice(("", " ", "   ", "\t"))
    return line


def _random_page(rng) -> str:
    lines = [_random_line(rng) for _ in range(rng.randint(2, 12))]
    if rng.random() < 0.12:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(_PAGE_KILLERS))
    return ("\r\n" if rng.random() < 0.1 else "\n").join(lines)


def _javascript_brace_page(rng) -> str:
    """Three long sentences and a javascript notice holding a "{", in any order: C4 drops the
    notice alone and keeps the page. Drawn on every run, so the order of the rules is tested."""
    long = [s for s in _sentences() if len(s.split()) >= 8]
    while True:
        lines = [rng.choice(long) for _ in range(3)]
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(_JAVASCRIPT_BRACES))
        page = "\n".join(lines)
        if _reference_clean_page(page) is not None:
            return page


def _line_of(rng, n: int) -> str:
    """A line of prose with exactly n words that ends in an end mark: a sentence of that length,
    or the first n words of a longer one closed with a full stop."""
    exact = [s for s in _sentences() if len(s.split()) == n and s.endswith(END_MARKS) and not s.endswith("...")]
    if exact:
        return rng.choice(exact)
    words = rng.choice([s for s in _sentences() if len(s.split()) > n]).split()[:n]
    words[-1] = words[-1].rstrip(",;:.!?\"'") or "here"
    return " ".join(words) + "."


def _word_floor_page(rng, min_words: int) -> str:
    """Three long sentences, a line of exactly min_words words (kept: the floor is "at least")
    and one of min_words - 1 (dropped), in any order. Drawn on every run, at the default of 5
    (called without min_words) and at another floor, so the comparison and the default are tested."""
    long = [s for s in _sentences() if len(s.split()) >= 8]
    while True:
        at, below = _line_of(rng, min_words), _line_of(rng, min_words - 1)
        lines = [rng.choice(long) for _ in range(3)] + [at, below]
        rng.shuffle(lines)
        page = "\n".join(lines)
        kept = (_reference_clean_page(page, min_words) or "").split("\n")
        if at in kept and below not in kept:
            return page


def _javascript_brace_lines(page: str, min_words: int) -> list[str]:
    """Lines C4 drops for "javascript" that also hold a "{" (the page rule never sees them)."""
    from ..filters import c4_line_verdict
    return [line.strip() for line in page.splitlines()
            if "{" in line and c4_line_verdict(line, min_words) == "javascript"]


def _why_dropped(line: str, min_words: int) -> str:
    from ..filters import c4_line_verdict
    verdict = c4_line_verdict(line, min_words)
    stripped = line.strip()
    if verdict == "no_end_mark":
        if stripped.endswith("\u201d"):
            return "it ends in a curly quote \u201d, which is not one of C4's end marks (only the straight \" is)"
        if stripped.endswith(("...", "\u2026")):
            return "it trails off in an ellipsis"
        return "it does not end in one of the end marks . ? ! \""
    return {"too_short": f"it has fewer than {min_words} words",
            "javascript": "it mentions javascript (in any case)",
            "policy": "it holds one of the policy phrases (in any case)"}.get(verdict, "")


def _kept_lines(page: str, min_words: int) -> tuple[list[str], str | None]:
    """The lines C4 keeps, ignoring the sentence floor, and the page rule that fired, if any."""
    from ..filters import C4_PAGE_RULES, c4_line_verdict
    kept = []
    for line in page.splitlines():
        verdict = c4_line_verdict(line, min_words)
        if verdict in C4_PAGE_RULES:
            return kept, verdict
        if verdict == "keep":
            kept.append(line.strip())
    return kept, None


def _check_clean_page(c) -> str:
    fn = c.get("clean_page", callable_=True)
    pages = [(_random_page(c.rng), c.rng.choice((None, None, 3, 4, 5, 6, 7))) for _ in range(30)]
    three = [c.rng.choice(_sentences()) for _ in range(3)]
    pages.append(("\n".join(three[:2] + ["Menu"]), None))                 # two sentences: too few
    pages.append(("\n".join(three + [c.rng.choice(_POLICY)]), None))      # three: enough
    pages.append(("Home | About | Contact\nMenu\nLogin", None))             # nothing survives
    pages.append((" ".join(three) + "\n" + c.rng.choice(_PAGE_KILLERS), None))
    pages.append((_javascript_brace_page(c.rng), None))                   # the order of the rules
    pages.append((_word_floor_page(c.rng, 5), None))                      # the default floor, 5 words
    k = c.rng.choice((3, 4, 6, 7))
    pages.append((_word_floor_page(c.rng, k), k))                         # a floor passed in
    c.rng.shuffle(pages)
    for page, min_words in pages:
        words = 5 if min_words is None else min_words
        label = (f"clean_page({show_input(page, 90)}"
                 + (f", min_words={min_words})" if min_words is not None else ")"))
        got = (c.call(fn, page, label=label) if min_words is None
               else c.call(fn, page, min_words=min_words, label=label))
        want = _reference_clean_page(page, words)
        if got is not None:
            c.expect_type(got, str, label)
        if got == want:
            continue
        lines, page_rule = _kept_lines(page, words)
        if want is None and got == "":
            c.fail(f"{label} returned an empty string; a page that C4 drops is None, not \"\".")
        if want is None and got is not None:
            if page_rule:
                c.fail(f"{label} returned a page, but a line that passes the line rules contains "
                       f"{'lorem ipsum' if page_rule == 'lorem_ipsum' else 'a curly bracket {'}: "
                       f"C4 drops the whole page then (return None).")
            if got.split("\n") == lines:
                from ..filters import count_sentences
                c.fail(f"{label} returned a page of {count_sentences(got)} sentence(s) (counted with "
                       f"filters.count_sentences); C4 drops a page with fewer than 3: return None.")
        if want is not None and got is None:
            braced = _javascript_brace_lines(page, words)
            if braced:
                c.fail(f"{label} returned None, but this page survives: the line "
                       f"{show_input(braced[0], 60)} mentions javascript, and C4 tests \"javascript\" "
                       f"(drop the line) before \"{{\" (drop the page), so the curly-bracket rule never "
                       f"sees that line. Test the rules in C4's order.")
            c.fail(f"{label} returned None, but this page survives: it keeps {len(lines)} line(s) "
                   f"with enough sentences and nothing that drops the whole page. Which lines did you "
                   f"lose, and how did you count sentences?")
        want = "\n".join(lines)
        got_lines = got.split("\n") if got else []
        want_lines = want.split("\n") if want else []
        extra = [line for line in got_lines if line not in want_lines]
        lost = [line for line in want_lines if line not in got_lines]
        if extra:
            line = extra[0]
            stripped = line.strip()
            if stripped != line and stripped in want_lines:
                why = "it still has whitespace around it: strip each line"
            elif not stripped:
                why = "it is empty"
            else:
                why = _why_dropped(line, words) or "it is not a line of the page as it stands"
            c.fail(f"{label} kept the line {show_input(line, 60)}, which should be dropped: {why}.")
        if lost:
            c.fail(f"{label} dropped the line {show_input(lost[0], 60)}, which should be kept: it ends in "
                   f"an end mark, has at least {words} words and none of the banned words or phrases.")
        c.fail(f"{label} keeps the right lines, but not in the same form: return them in their original "
               f"order, each stripped, joined with a single newline, and no newline at the end.")
    return (f"{len(pages)} fresh pages of prose, quotations, menus, cookie notices and placeholder text, "
            f"cleaned exactly as C4's rule says.")


ex2 = CodingExercise(
    "ex2", LAB, names="clean_page", checker=_check_clean_page, points=2,
    title="Clean a page the way C4 did",
    refuses=("synthkit.filters.c4_clean_page", "synthkit.filters.c4_line_verdict"),
    hints=[
        "C4 judges a page one line at a time, then judges what is left. Look at the menus, buttons "
        "and captions in the check's messages: what do they lack that a sentence of prose has?",
        "Work in two passes. For each stripped line, decide keep or drop; two rules drop the whole "
        "page instead (return None): \"lorem ipsum\", and a \"{\" on a line that is not already gone "
        "for mentioning javascript. Then count the sentences of the kept lines with "
        "`filters.count_sentences`: fewer than 3 also means None.",
        "A line needs `line.endswith(END_MARKS)`, not `line.endswith(\"...\")`, and "
        "`len(line.split()) >= min_words`. Then, in C4's order, on `line.lower()`: \"lorem ipsum\" -> "
        "return None; \"javascript\" -> drop the line; \"{\" -> return None; a phrase in POLICY_PHRASES "
        "-> drop the line; otherwise keep it. Return `\"\\n\".join(kept)`.",
    ],
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
        "Precision and recall compare two *sets* of pairs. Before comparing, make sure one pair always "
        "looks the same, however it was written and however often it was listed.",
        "Put each pair in one fixed order, `(min(i, j), max(i, j))`, and make a set of each list: then "
        "(7, 3) equals (3, 7) and a repeat counts once. The pairs found correctly are the intersection.",
        "precision = correct / number of predicted pairs (1.0 when nothing is predicted); "
        "recall = correct / number of true pairs (1.0 when there is nothing to find). "
        "Return the tuple `(precision, recall)`.",
    ],
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
           "own products. Which exit produces more of exactly that, and which only produces more text?",
           "Pick one number from your run to anchor the answer: the tokenizer's surcharge for Spanish "
           "and French, the share of human text a strict rule threw away, or the teacher's tokens/s."],
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
# The figures are `synthkit.cliff`'s: a 50T stock, a 15T run in 2024 growing 2.66x a year,
# and Villalobos et al.'s 300T effective stock (100T-1000T).
quiz = Quiz(LAB, [
    Question("With the chapter's figures (a 50T-token stock that does not grow, and a 15T-token run "
             "in 2024 that grows 2.66x a year), in which year does one run need the whole stock?",
             ["In 2025", "In 2027", "In 2030", "Not before 2040"],
             answer=0,
             why="log(50/15) / log(2.66) is about 1.2 years: 15T becomes about 40T in 2025 and about "
                 "106T in 2026, already twice the stock."),
    Question("Villalobos et al. (2024) put the effective stock at about 300T tokens, six times the "
             "chapter's 50T. With runs still growing 2.66x a year, how much later does the cliff come?",
             ["About six years later", "About two years later", "About six months later",
              "Never: no run will need 300T"],
             answer=1,
             why="Each year of growth multiplies the run by 2.66, so a sixfold stock buys "
                 "log 6 / log 2.66, about 1.8 years. That is why their window, 2026 to 2032, sits only "
                 "a few years after the chapter's sum."),
    Question("Why is Villalobos et al.'s stock (about 300T tokens) so much bigger than the chapter's "
             "50T of high-quality web text?",
             ["They count all public text fit to train on, and allow for a few epochs over it",
              "They add private text too, such as e-mails, chat messages and shared cloud files",
              "They count with a tokenizer that cuts words into more, smaller tokens",
              "They include text that models wrote, which has grown fast since 2022"],
             answer=0,
             why="Their stock is public, human-written and counted with ordinary tokenizers; it is "
                 "larger because it keeps more than the strictest cut (lightly filtered web text "
                 "trains nearly as well) and because data can be repeated a few times at little cost."),
    Question("Which of these lines survives C4's line rules (at least 5 words, an end mark, no banned "
             "word or phrase)?",
             ["He wrote: \u201cNothing changed here at all!\u201d",
              "Please enable JavaScript to read the comments.",
              "Grandma bakes oat cookies for the whole street.",
              "Read the full story on our website, it goes on..."],
             answer=2,
             why="\"cookies\" alone is not one of C4's policy phrases. The curly quote is not an end "
                 "mark (only the straight \" is), \"javascript\" drops a line in any case, and a line "
                 "ending in \"...\" goes."),
    Question("The funnel kept nearly all of the Wikipedia summaries, while strict filtering of a web "
             "crawl keeps about 15%. Why the difference?",
             ["People have already edited and deduplicated it: little is left to remove",
              "The course's rules are much looser than those used on real web crawls",
              "Summaries are too short for most of the quality rules to apply at all",
              "Encyclopedic wording hides near-duplicates from the MinHash signatures"],
             answer=0,
             why="Curated text is what web filters try to get back to. The strictest rules in the lab "
                 "(Gopher's 50-word floor, C4's three sentences) took a tenth to a sixth of the "
                 "summaries' tokens, and all of it was good text."),
    Question("In the lab, Spanish and French cost about 1.6 times as many tokens per character as "
             "English. One million tokens of French text hold about as much text as how many tokens "
             "of English?",
             ["About 1.6 million", "About 1 million", "About 0.6 million", "About 2.6 million"],
             answer=2,
             why="The same characters cost 1.6 times the tokens in French, so 1M French tokens carry "
                 "the text of about 1M / 1.6, or 0.6M, English tokens: token counts overstate what "
                 "translated text adds."),
    Question("The lab's 10,033 summaries make about 50 million pairs. About how many pairs does a "
             "crawl of one billion pages make?",
             ["About 5 x 10^12", "About 5 x 10^17", "About 5 x 10^9", "About 5 x 10^22"],
             answer=1,
             why="Pairs grow with the square of the corpus: n(n - 1)/2 with n = 10^9 is about "
                 "5 x 10^17. That is why pipelines let LSH propose candidate pairs instead of "
                 "comparing them all."),
    Question("Of the four ways past the data cliff, which one is unbounded in volume, at least in "
             "principle?",
             ["Lowering the quality bar", "Translating from other languages",
              "Using other modalities (speech, scans)", "Generating synthetic data"],
             answer=3,
             why="Every other exit draws on a finite stock of human output; a model can keep writing "
                 "for as long as you run it. Its volume is unbounded, its information is not: the text "
                 "holds what the model learned plus what prompts, verifiers and filters add, which is "
                 "why the rest of this course is about doing that well."),
])
