"""Lab 01 (the data cliff): the arithmetic, the funnel on real Wikipedia text with the real
tokenizer, the crawl-like mix and its answer key, and the lab's exercise checks."""
from __future__ import annotations

import math
import random

import pytest

from synthkit import cliff, filters
from synthkit.data import wiki_summaries
from synthkit.labs import lab01

from labtests import assert_wrong_answers_fail

# ---------------------------------------------------------------------------------------
# The arithmetic
# ---------------------------------------------------------------------------------------


def test_chapter_figures_and_stock():
    assert cliff.usable_stock(400e12, 0.15) == pytest.approx(60e12)
    low, high = (cliff.usable_stock(r) for r in cliff.RAW_WEB_TOKENS)
    assert low == pytest.approx(45e12) and high == pytest.approx(75e12)
    assert low < cliff.HIGH_QUALITY_STOCK < high          # the strictest cut sits inside the range
    assert cliff.FRONTIER_RUN_2024[1] / cliff.HIGH_QUALITY_STOCK == pytest.approx(0.3)
    # Villalobos et al. (2024): 300T (100T-1000T), fully used 2026-2032
    assert cliff.EPOCH_STOCK_INTERVAL[0] < cliff.EPOCH_STOCK < cliff.EPOCH_STOCK_INTERVAL[1]
    assert cliff.EPOCH_STOCK / cliff.HIGH_QUALITY_STOCK == pytest.approx(6)
    assert cliff.EPOCH_EXHAUSTED == (2026, 2032)
    with pytest.raises(ValueError):
        cliff.usable_stock(1e12, 1.5)
    with pytest.raises(ValueError):
        cliff.usable_stock(-1, 0.1)


def test_annual_growth_round_trips():
    g = cliff.annual_growth(300e9, 2020, 15e12, 2024)
    assert g == pytest.approx(50 ** 0.25)
    assert 300e9 * g ** 4 == pytest.approx(15e12)
    with pytest.raises(ValueError):
        cliff.annual_growth(1, 2020, 2, 2020)


def test_years_until_exhausted_matches_the_projection():
    rng = random.Random(0)
    for _ in range(200):
        stock = 10 ** rng.uniform(12, 15)
        run = 10 ** rng.uniform(10, 13)
        g, s = rng.uniform(1.1, 4), rng.uniform(1.0, 1.08)
        epochs = rng.choice([1, 2, 4])
        t = cliff.years_until_exhausted(stock, run, g, s, epochs)
        if run / epochs >= stock:
            assert t == 0
            continue
        # at year t the run's unique need equals the stock, exactly
        assert run * g ** t / epochs == pytest.approx(stock * s ** t, rel=1e-9)
        rows = cliff.projection(stock, run, g, s, start_year=2024, years=math.ceil(t) + 1, epochs=epochs)
        first = next(r for r in rows if r["exhausted"])
        assert first["year"] == 2024 + math.ceil(t - 1e-12)
        assert cliff.exhaustion_year(stock, run, g, s, 2024, epochs) == pytest.approx(2024 + t)


def test_exhaustion_edge_cases():
    assert cliff.years_until_exhausted(50e12, 60e12, 2.0) == 0
    assert cliff.years_until_exhausted(50e12, 15e12, 1.05, stock_growth=1.05) == math.inf
    assert cliff.years_until_exhausted(50e12, 15e12, 1.0) == math.inf
    more_epochs = cliff.years_until_exhausted(50e12, 15e12, 2.5, epochs=4)
    assert more_epochs > cliff.years_until_exhausted(50e12, 15e12, 2.5)
    # the chapter's figures: the cliff arrives within a couple of years of 2024
    assert 2025 < cliff.exhaustion_year(cliff.HIGH_QUALITY_STOCK, 15e12, 2.66) < 2026
    with pytest.raises(ValueError):
        cliff.years_until_exhausted(50e12, 15e12, 0)
    with pytest.raises(ValueError):
        cliff.years_until_exhausted(50e12, 15e12, 2, epochs=0.5)


def test_the_published_stock_moves_the_cliff_by_under_two_years():
    g = cliff.annual_growth(300e9, 2020, 15e12, 2024)
    chapter = cliff.exhaustion_year(cliff.HIGH_QUALITY_STOCK, 15e12, g)
    published = [cliff.exhaustion_year(s, 15e12, g) for s in
                 (cliff.EPOCH_STOCK_INTERVAL[0], cliff.EPOCH_STOCK, cliff.EPOCH_STOCK_INTERVAL[1])]
    assert 2025 < chapter < 2026
    assert published[1] - chapter == pytest.approx(math.log(6) / math.log(g))
    assert published[1] - chapter < 2
    # the simple sum on their interval lands inside (or just before) their own window
    assert cliff.EPOCH_EXHAUSTED[0] - 0.5 < published[0] and published[2] < cliff.EPOCH_EXHAUSTED[1]


def test_tokens_label():
    assert cliff.tokens_label(15e12) == "15T"
    assert cliff.tokens_label(300e9) == "300B"
    assert cliff.tokens_label(1.4e12) == "1.4T"
    assert cliff.tokens_label(950) == "950"


# ---------------------------------------------------------------------------------------
# Tokens and the funnel, on the real corpus with the real tokenizer
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def english():
    return wiki_summaries("en")[:400]


def test_count_tokens_uses_the_model_and_counts_each_text_once(llama_model, english):
    texts = [r["text"] for r in english[:50]]
    counts = cliff.count_tokens(texts, llama_model)
    assert counts == [len(llama_model.tokenize(t)) for t in texts]
    calls = []

    def counting(text):
        calls.append(text)
        return len(text.split())

    cliff.count_tokens(texts + texts[:10], counting)
    assert len(calls) == 50
    with pytest.raises(TypeError):
        cliff.count_tokens(texts, 42)


def test_the_tokenizer_charges_more_for_spanish_and_french(llama_model):
    en = cliff.tokens_per_char([r["text"] for r in wiki_summaries("en")[:200]], llama_model)
    es = cliff.tokens_per_char([r["text"] for r in wiki_summaries("es")[:200]], llama_model)
    fr = cliff.tokens_per_char([r["text"] for r in wiki_summaries("fr")[:200]], llama_model)
    assert 0.15 < en < 0.3
    assert es > 1.3 * en and fr > 1.3 * en


def test_funnel_on_real_summaries(llama_model, english):
    records = english + [dict(english[3]), dict(english[7], text=english[7]["text"].upper())]
    stages = cliff.funnel(records, llama_model)
    assert [s["stage"] for s in stages] == ["collected", "exact dedup", "near dedup", "quality"]
    counts = cliff.count_tokens([r["text"] for r in records], llama_model)
    for before, after in zip(stages, stages[1:]):
        assert set(after["kept"]) <= set(before["kept"])
        assert after["documents"] <= before["documents"] and after["tokens"] <= before["tokens"]
    for s in stages:
        assert s["documents"] == len(s["kept"]) and s["tokens"] == sum(counts[i] for i in s["kept"])
    # the two planted copies go at the exact stage, and nothing else does
    assert stages[0]["documents"] - stages[1]["documents"] == 2
    assert len(records) - 2 not in stages[1]["kept"] and len(records) - 1 not in stages[1]["kept"]
    # Wikipedia is curated: almost every token survives
    assert stages[-1]["tokens"] > 0.95 * stages[1]["tokens"]
    table = cliff.funnel_table(stages)
    assert "near dedup" in table and "%" in table
    # precomputed counts give the same funnel; a wrong number of them is refused
    assert [s["tokens"] for s in cliff.funnel(records, counts)] == [s["tokens"] for s in stages]
    with pytest.raises(ValueError):
        cliff.funnel(records, counts[:-1])


def test_quality_keep_and_rule_table(english):
    texts = [r["text"] for r in english]
    tokens = [len(t.split()) for t in texts]
    strict = cliff.quality_keep(texts, min_words=50)
    loose = cliff.quality_keep(texts, min_words=5)
    assert sum(strict) < sum(loose)                       # the 50-word floor costs real summaries
    assert all(b for a, b in zip(strict, loose) if a)
    table = {row["rule"]: row for row in cliff.rule_table(texts, tokens, min_words=50)}
    assert table["too_short"]["documents"] > 0
    # switching one rule off gives back exactly the documents it flagged alone
    for rule, row in table.items():
        relaxed = cliff.quality_keep(texts, min_words=50, ignore=[rule])
        gained = [i for i in range(len(texts)) if relaxed[i] and not strict[i]]
        assert len(gained) == row["documents_alone"]
        assert sum(tokens[i] for i in gained) == row["tokens_alone"]
    with pytest.raises(ValueError, match="unknown quality rule"):
        cliff.quality_keep(texts, ignore=["no_such_rule"])


# ---------------------------------------------------------------------------------------
# The crawl-like mix and scoring
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crawl():
    return cliff.crawl_like(wiki_summaries("en")[:1000], reposts=0.05, near_copies=0.10, junk=0.10, seed=3)


def test_crawl_like_labels_are_a_true_answer_key(crawl):
    assert dict(cliff.origins(crawl)) == {"human": 1000, "repost": 50, "near copy": 100, "junk": 100}
    originals = {r["text"] for r in wiki_summaries("en")[:1000]}
    for i, r in enumerate(crawl):
        if r["origin"] == "human":
            assert r["text"] in originals and r["of"] is None
        elif r["origin"] == "junk":
            assert r["of"] is None and r["title"] is None
        else:
            source = crawl[r["of"]]
            assert r["of"] < i and source["origin"] == "human" and source["title"] == r["title"]
            if r["origin"] == "repost":
                assert filters.normalize_text(r["text"]) == filters.normalize_text(source["text"])
            else:
                assert r["text"] != source["text"]
                assert abs(len(r["text"].split()) - len(source["text"].split())) <= 2


def test_junk_pages_mostly_fail_the_quality_rules():
    rng = random.Random(0)
    pages = [cliff.junk_page(rng) for _ in range(800)]
    failing = sum(not filters.passes_quality(p) for p in pages)
    assert 0.75 * len(pages) < failing < len(pages)      # most fail; the search-engine bait does not


def test_funnel_catches_the_planted_copies(crawl):
    tokens = [len(r["text"].split()) for r in crawl]
    stages = cliff.funnel(crawl, tokens, by="origin")
    assert set(stages[0]["groups"]) == {"human", "repost", "near copy", "junk"}
    assert "repost" not in stages[1]["groups"]                    # exact dedup takes every repost
    exact = cliff.dedup_scores(crawl, stages[1]["kept"], stages[0]["kept"], planted=("repost",))
    assert exact["precision"] == 1.0 and exact["recall"] == 1.0
    near = cliff.dedup_scores(crawl, stages[2]["kept"], stages[1]["kept"])
    assert near["recall"] > 0.9 and near["precision"] > 0.95
    assert stages[3]["groups"]["junk"]["documents"] < 0.3 * stages[0]["groups"]["junk"]["documents"]
    assert stages[3]["groups"]["human"]["tokens"] > 0.95 * stages[0]["groups"]["human"]["tokens"]


def test_dedup_scores_by_hand():
    records = [{"origin": "human"}, {"origin": "repost"}, {"origin": "human"},
               {"origin": "near copy"}, {"origin": "junk"}, {"origin": "junk"}]
    s = cliff.dedup_scores(records, kept=[0, 3, 4])      # removed: 1 (right), 2 (wrong), 5 (junk)
    assert (s["removed"], s["caught"], s["false_alarms"], s["missed"], s["ignored_removed"]) == (2, 1, 1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5
    assert cliff.dedup_scores(records, kept=range(6))["precision"] == 1.0


def test_true_duplicate_pairs_include_copies_of_the_same_original():
    records = [{"of": None}, {"of": 0}, {"of": None}, {"of": 0}, {"of": 2}]
    assert cliff.true_duplicate_pairs(records) == {(0, 1), (0, 3), (1, 3), (2, 4)}


def test_plots_draw_without_a_screen(crawl):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = cliff.plot_cliff(cliff.HIGH_QUALITY_STOCK, 15e12, 2.66)
    assert "2025" in ax.get_title()
    labels = ax.get_legend_handles_labels()[1]
    assert any("Villalobos" in label and "300T" in label for label in labels)
    assert not any("Villalobos" in label for label in
                   cliff.plot_cliff(50e12, 15e12, 2.66, published=False).get_legend_handles_labels()[1])
    ax = cliff.plot_cliff(60e12, 15e12, 1.0)
    assert "no cliff" in ax.get_title()
    stages = cliff.funnel(crawl[:300], [1] * 300, by="origin")
    cliff.plot_funnel(stages)
    cliff.plot_funnel(cliff.funnel(crawl[:300], [1] * 300))
    plt.close("all")


# ---------------------------------------------------------------------------------------
# The lab's exercises
# ---------------------------------------------------------------------------------------


def _solved(exercise) -> dict:
    namespace: dict = {}
    exec(exercise.solution_code, namespace)
    return namespace


def _c4(text, min_words=5, end_marks=(".", "?", "!", '"'), min_sentences=3, strip=True,
        fold_case=True, page_rules=True, braces_first=False, lorem_anywhere=False):
    """C4's rule written from its description, with switches for the slips students make:
    `braces_first` tests "{" before "javascript" (the reversed order), `lorem_anywhere` drops a page
    with "lorem ipsum" or "{" anywhere (the paper's words rather than C4's code)."""
    from synthkit.filters import count_sentences
    if lorem_anywhere and ("lorem ipsum" in text.lower() or "{" in text):
        return None
    kept = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line.endswith(end_marks) or line.endswith("...") or len(line.split()) < min_words:
            continue
        low = line.lower() if fold_case else line
        if page_rules and "lorem ipsum" in line.lower():
            return None
        if page_rules and braces_first and "{" in line:
            return None
        if "javascript" in low:
            continue
        if page_rules and "{" in line:
            return None
        if any(p in low for p in lab01.POLICY_PHRASES):
            continue
        kept.append(line if strip else raw)
    return "\n".join(kept) if sum(map(count_sentences, kept)) >= min_sentences else None


def test_wrong_answers_fail_and_name_the_input():
    def off_by_one(stock, first_run, growth):   # strict < : drops a run that fits exactly
        runs, used, run = 0, 0.0, first_run
        while used + run < stock:
            used, runs, run = used + run, runs + 1, run * growth
        return runs

    def one_run_view(stock, first_run, growth):  # answers the other question (single run)
        return int(math.log(stock / first_run) / math.log(growth)) if growth > 1 else int(stock // first_run)

    for fn in (off_by_one, one_run_view, lambda s, f, g: 2):
        r = lab01.ex1.grade({"years_of_fresh_data": fn})
        assert r.status == "fail" and "years_of_fresh_data(stock=" in r.message

    # the real rule passes (C4's code, in its order)
    for _ in range(3):
        r = lab01.ex2.grade({"clean_page": _c4})
        assert r.status == "pass", r.message
    slips = {
        "the old rule (3 words, curly quotes)": lambda t, min_words=3: _c4(t, min_words, (".", "?", "!", '"', "\u201d")),
        "a fixed 5-word floor": lambda t, min_words=5: _c4(t, 5),
        "no sentence floor": lambda t, min_words=5: _c4(t, min_words, min_sentences=0),
        "lines not stripped": lambda t, min_words=5: _c4(t, min_words, strip=False),
        "case-sensitive phrases": lambda t, min_words=5: _c4(t, min_words, fold_case=False),
        "no page rules": lambda t, min_words=5: _c4(t, min_words, page_rules=False),
    }
    for name, fn in slips.items():
        results = [lab01.ex2.grade({"clean_page": fn}) for _ in range(4)]
        assert "fail" in [r.status for r in results], name
        assert all("clean_page(" in r.message for r in results if r.status == "fail"), name

    def ordered(predicted, true):
        p, t = set(predicted), set(true)
        return (len(p & t) / len(p) if p else 1.0, len(p & t) / len(t) if t else 1.0)

    r = lab01.ex3.grade({"pair_precision_recall": ordered})
    assert r.status == "fail"
    r = lab01.ex3.grade({"pair_precision_recall": lambda p, t: (1.0, 1.0)})
    assert r.status == "fail"


def test_clean_page_must_test_javascript_before_the_curly_bracket():
    """C4 drops a "javascript" line before it looks for "{": "Please enable JavaScript {here} to read
    on." costs the line, not the page. The check draws that case on every run, so the reversed order
    (the solution's old slip) and the paper's any-"{"-on-the-page reading fail every time, and the
    message names the rule order."""
    reversed_order = """
        from synthkit import filters
        from synthkit.labs.lab01 import END_MARKS, POLICY_PHRASES

        def clean_page(text, min_words=5):
            kept = []
            for line in text.splitlines():
                line = line.strip()
                if not line.endswith(END_MARKS) or line.endswith("..."):
                    continue
                if len(line.split()) < min_words:
                    continue
                lower = line.lower()
                if "lorem ipsum" in lower or "{" in line:
                    return None
                if "javascript" in lower or any(phrase in lower for phrase in POLICY_PHRASES):
                    continue
                kept.append(line)
            if sum(filters.count_sentences(line) for line in kept) < 3:
                return None
            return "\\n".join(kept)
    """
    assert_wrong_answers_fail(lab01.ex2, [(reversed_order, "C4's order")])
    for fn in (lambda t, min_words=5: _c4(t, min_words, braces_first=True),
               lambda t, min_words=5: _c4(t, min_words, lorem_anywhere=True)):
        for _ in range(4):
            r = lab01.ex2.grade({"clean_page": fn})
            assert r.status == "fail" and "javascript" in r.message, r.message
    # the library keeps that page without the notice
    page = "\n".join(["The river rises in the hills and flows east to the sea.",
                      "Please enable JavaScript {here} to read on.",
                      "Its valley was farmed for more than two thousand years.",
                      "Three towns stand on its banks between the hills and the coast."])
    assert filters.c4_clean_page(page) == "\n".join(line for line in page.splitlines() if "{" not in line)


def test_the_library_cleaner_is_refused_in_exercise_2():
    from synthkit import filters
    for answer in (filters.c4_clean_page, lambda t, min_words=5: filters.c4_clean_page(t, min_words)):
        r = lab01.ex2.grade({"clean_page": answer})
        assert r.status != "pass", r.message


def test_quiz_is_well_formed_and_uses_the_labs_numbers():
    questions = lab01.quiz.questions
    assert len(questions) >= 6
    for q in questions:
        assert q.why and 0 <= q.answer < len(q.choices)
        lengths = [len(c) for c in q.choices]
        others = max(lengths[:q.answer] + lengths[q.answer + 1:])
        assert lengths[q.answer] <= 1.25 * others, q.text        # never longer by a wide margin
    strictly_longest = sum(len(q.choices[q.answer]) > max(len(c) for k, c in enumerate(q.choices)
                                                           if k != q.answer) for q in questions)
    assert strictly_longest <= len(questions) / 3
    # the figures in the questions are the library's, and the keyed answers follow from them
    g = cliff.annual_growth(300e9, 2020, 15e12, 2024)
    year = cliff.exhaustion_year(cliff.HIGH_QUALITY_STOCK, 15e12, g)
    assert "50T" in questions[0].text and questions[0].choices[questions[0].answer] == f"In {int(year)}"
    later = math.log(cliff.EPOCH_STOCK / cliff.HIGH_QUALITY_STOCK) / math.log(g)
    assert "300T" in questions[1].text and "two years" in questions[1].choices[questions[1].answer]
    assert 1.5 < later < 2.5
    # the C4 question's keyed line is the only one the library keeps
    c4q = next(q for q in questions if "C4" in q.text)
    from synthkit.filters import c4_line_verdict
    assert [c4_line_verdict(c) == "keep" for c in c4q.choices] == [k == c4q.answer for k in range(len(c4q.choices))]
