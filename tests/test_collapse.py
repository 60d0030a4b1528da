"""Model collapse (synthkit.collapse): the recursions' statistics against their closed forms
(exponent g+1, half-life), over many seeds; category survival against 1 - (1 - p)^N; the
noise threshold's false-alarm rate against the rules it replaces; the sample metrics on texts
whose answers are known by hand, at equal word budgets; clear errors; and a real
two-generation collapse run with tiny language models (a few training steps each, so it runs
in seconds), with two teachers whose lineages never share a corpus."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from synthkit import collapse
from synthkit.collapse import CollapseError

RUNS = 20_000


# --- the Gaussian recursion -------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 20])
def test_replace_mean_variance_follows_the_closed_form(n):
    sim = collapse.gaussian_recursion(n, 12, runs=RUNS, sigma=2.0, seed=n)
    got = sim["variance"].mean(axis=0)
    want = collapse.expected_variance(n, 12, sigma=2.0)
    # the fitted variance of one chain has sd about want * sqrt(2 (g+1) / n) at most; 6 standard errors
    se = want * np.sqrt(2 * np.arange(1, 14) / n + 0.5) / math.sqrt(RUNS) * 3
    assert np.all(np.abs(got - want) < 6 * se), (got, want)
    assert want[-1] < want[0] * ((n - 1) / n) ** 11 * 1.0001  # it really shrinks, by (N-1)/N a step


@pytest.mark.parametrize("ddof", [0, 1])
def test_typical_variance_is_the_geometric_mean_and_shrinks_even_when_unbiased(ddof):
    n, g = 10, 20
    sim = collapse.gaussian_recursion(n, g, runs=RUNS, ddof=ddof, seed=7 + ddof)
    log_v = np.log(sim["variance"])
    want = np.log(collapse.typical_variance(n, g, ddof=ddof))
    se = log_v.std(axis=0) / math.sqrt(RUNS)
    assert np.all(np.abs(log_v.mean(axis=0) - want) < 6 * se + 1e-3)
    assert want[-1] < want[0] - 1.0  # the typical chain loses most of its variance, unbiased or not
    if ddof == 1:  # while the expectation stays put (checked early, before the heavy tail dominates)
        assert np.allclose(collapse.expected_variance(n, g, ddof=1), 1.0)
        assert abs(sim["variance"][:, 2].mean() - 1.0) < 0.05


def test_generation_zero_is_already_one_fit():
    # the exponent is g+1: the fit to the real points has lost (N-1)/N of the variance already
    n = 5
    sim = collapse.gaussian_recursion(n, 2, runs=RUNS, seed=4)
    assert sim["variance"][:, 0].mean() == pytest.approx((n - 1) / n, rel=0.03)
    assert sim["variance"][:, 2].mean() == pytest.approx(((n - 1) / n) ** 3, rel=0.05)
    assert collapse.expected_variance(n, 0)[0] == pytest.approx((n - 1) / n)


@pytest.mark.parametrize("ddof", [0, 1])
def test_half_life_matches_the_simulated_chains_and_its_approximation(ddof):
    n = 20
    h = collapse.half_life(n, ddof=ddof)
    g = int(3 * h)
    sim = collapse.gaussian_recursion(n, g, runs=RUNS, ddof=ddof, seed=9 + ddof)
    log_v = np.log(sim["variance"])
    gens = np.arange(g + 1)
    slope = np.polyfit(gens, log_v.mean(axis=0), 1)[0]       # simulated log-variance lost per generation
    assert math.log(2) / -slope == pytest.approx(h, rel=0.03)
    # the geometric mean is down to half at generation h - 1, a quarter at 2h - 1 (g+1 fits)
    for halvings in (1, 2):
        at = halvings * h - 1
        lo = int(math.floor(at))
        gm = np.exp(np.interp(at, gens[lo:lo + 2], log_v.mean(axis=0)[lo:lo + 2]))
        assert gm == pytest.approx(0.5 ** halvings, rel=0.05)
    def approx(n):  # N ln 2 / 2 for the maximum-likelihood fit, (N-1) ln 2 for the unbiased one
        return n * math.log(2) / 2 if ddof == 0 else (n - 1) * math.log(2)

    for size in (n, 10 * n, 100 * n):  # so, proportional to N
        assert collapse.half_life(size, ddof=ddof) == pytest.approx(approx(size), rel=0.05)


def test_mean_error_grows_linearly_under_replace_and_stays_bounded_under_accumulate():
    n, g = 20, 25
    for regime in ("replace", "accumulate"):
        sim = collapse.gaussian_recursion(n, g, runs=RUNS, regime=regime, ddof=1, seed=3)
        got = (sim["mean"] ** 2).mean(axis=0)
        want = collapse.expected_mean_error(n, g, regime=regime, ddof=1)
        assert np.all(np.abs(got - want) < 0.08 * want + 1e-4), (regime, got[-5:], want[-5:])
    assert collapse.expected_mean_error(n, 10_000, regime="accumulate")[-1] < math.pi ** 2 / 6 / n
    assert collapse.expected_mean_error(n, g, regime="replace", ddof=1)[-1] == pytest.approx((g + 1) / n)


def test_accumulate_keeps_the_variance_and_subsample_sits_between():
    n, g = 20, 30
    last = {r: collapse.gaussian_recursion(n, g, runs=4000, regime=r, seed=11)["variance"][:, -1].mean()
            for r in collapse.REGIMES}
    assert last["replace"] < 0.3
    assert last["accumulate"] > 0.85
    assert last["replace"] < last["accumulate-subsample"] < last["accumulate"]


def test_gaussian_step_regimes_and_seeds():
    data = np.array([1.0, 2.0, 4.0, 7.0])
    new = collapse.gaussian_step(data, 5, "replace", rng=3)
    assert new.shape == (5,) and np.array_equal(new, collapse.gaussian_step(data, 5, "replace", rng=3))
    acc = collapse.gaussian_step(data, 5, "accumulate", rng=3)
    assert np.array_equal(acc[:4], data) and np.array_equal(acc[4:], new)
    many = collapse.gaussian_step(data, 200_000, "replace", rng=0)
    assert many.mean() == pytest.approx(data.mean(), abs=0.03)
    assert many.var() == pytest.approx(data.var(), rel=0.02)  # maximum likelihood: divide by N


# --- the tail goes first -----------------------------------------------------------------
def test_one_generation_survival_matches_the_closed_form():
    p = collapse.zipf_probs(500, s=1.2)
    n = 300
    sim = collapse.categorical_recursion(p, n, 1, runs=4000, seed=5)
    want = collapse.survival_probability(p, n)
    got = sim["first"].mean(axis=0)
    se = np.sqrt(want * (1 - want) / 4000) + 1e-9
    assert np.mean(np.abs(got - want) < 4 * se) > 0.99
    assert sim["alive"][:, 1].mean() == pytest.approx(collapse.expected_survivors(p, n), rel=0.01)
    assert want[0] > 0.999 and want[-1] < 0.2  # the head survives, the tail does not


def test_categories_never_come_back_and_the_tail_goes_first():
    p = collapse.zipf_probs(200)
    sim = collapse.categorical_recursion(p, 200, 40, runs=300, seed=1)
    alive = sim["alive"]
    assert np.all(np.diff(alive, axis=1) <= 0)  # an extinct category stays extinct
    assert alive[:, -1].mean() < alive[:, 1].mean() < 200
    final = sim["final"]
    assert (final[:, :10] > 0).mean() > (final[:, -100:] > 0).mean()
    assert np.allclose(final.sum(axis=1), 1.0)


def test_survival_closed_form_keeps_tiny_probabilities():
    p = np.array([1 - 1e5 * 1e-18] + [1e-18] * 100_000)
    assert collapse.expected_survivors(p, 10**9) == pytest.approx(1 + 1e5 * 1e-9, rel=1e-9)
    assert collapse.survival_probability([1.0, 0.0], 3).tolist() == [1.0, 0.0]


# --- the noise threshold -------------------------------------------------------------------
def test_t_quantile_matches_the_tables():
    for df, want in [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)]:
        assert collapse.t_quantile(df) == pytest.approx(want, abs=1e-3)
    assert collapse.t_quantile(2, 0.99) == pytest.approx(9.925, abs=1e-3)
    assert collapse.t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)


@pytest.mark.parametrize("k", [3, 4])
def test_seed_gap_is_crossed_by_chance_one_time_in_twenty(k):
    rng = np.random.default_rng(k)
    seeds = rng.normal(size=(100_000, k))        # k runs that differ only in their seed
    later = rng.normal(size=100_000)             # one more run, nothing changed
    sd = seeds.std(axis=1, ddof=1)
    assert collapse.seed_gap(seeds[0]) == pytest.approx(collapse.t_quantile(k - 1) * math.sqrt(2) * sd[0])
    diff = np.abs(later - seeds[:, 0])
    gap = collapse.t_quantile(k - 1) * math.sqrt(2) * sd
    assert 0.025 < (diff > gap).mean() <= 0.05
    other = rng.normal(size=100_000)             # two runs outside the seeds: exactly the 5%
    assert (np.abs(later - other) > gap).mean() == pytest.approx(0.05, abs=0.005)
    # the rules it replaces: one difference of two seeds, or 2 sd of k seeds
    assert (diff > np.abs(seeds[:, 1] - seeds[:, 0])).mean() == pytest.approx(0.5, abs=0.01)
    assert (diff > 2 * sd).mean() > 0.2


def test_seed_gap_needs_three_seeds():
    with pytest.raises(CollapseError, match="at least 3 seeds"):
        collapse.seed_gap([1.0, 2.0])
    assert collapse.seed_gap([1.0, 1.0, 1.0]) == 0.0


# --- the metrics --------------------------------------------------------------------------
def test_words_rare_words_and_coverage():
    assert collapse.words("Zürich's 2 bridges, THE river!") == ["zürich", "s", "bridges", "the", "river"]
    real = ["a b b c c c", "d d e", "e f"]
    assert collapse.rare_words(real, 2, 2) == {"b", "d", "e"}
    assert collapse.rare_words(real, 1, 1) == {"a", "f"}
    assert collapse.tail_coverage(["B, and E."], {"b", "d", "e"}) == pytest.approx(2 / 3)
    assert collapse.tail_coverage(["anything"], set()) == 0.0
    bands = collapse.coverage_by_band(["c c"], collapse.word_counts(real), bands=((1, 1), (2, 2), (3, 9)))
    assert bands == {"1": 0.0, "2": 0.0, "3-9": 1.0}


def test_measures_at_an_equal_word_budget():
    texts = ["The river, the city.", "A war of empire", "bridge"]
    assert collapse.first_words(texts, None) == [["the", "river", "the", "city"], ["a", "war", "of", "empire"],
                                                 ["bridge"]]
    assert collapse.first_words(texts, 5) == [["the", "river", "the", "city"], ["a"]]
    with pytest.raises(CollapseError, match="fewer than the budget"):
        collapse.first_words(texts, 10)
    rare = {"city", "empire", "bridge", "zebra"}
    assert collapse.coverage_items(texts, rare, 5).tolist() == [0, 1, 0, 0]       # sorted: bridge city empire zebra
    assert collapse.tail_coverage(texts, rare) == pytest.approx(3 / 4)
    assert collapse.tail_coverage(texts, rare, budget=4) == pytest.approx(1 / 4)
    # a sample of long texts and one of short texts, measured on the same words, score the same
    long, short = ["a b c d e f"], ["a b c", "d e f", "g h i"]
    assert collapse.tail_coverage(long, {"f", "g"}, 6) == collapse.tail_coverage(short, {"f", "g"}, 6)
    row = collapse.describe_generation(short, rare={"f", "g"}, budget=6)
    assert row["tail_coverage"] == 0.5 and row["entropy"] == pytest.approx(math.log2(6))
    assert row["distinct_2"] == 1.0 and row["mean_words"] == 3.0 and "perplexity" not in row
    row = collapse.describe_generation(short, doc_log_ppl=[1.0, 3.0])
    assert row["perplexity"] == pytest.approx(math.exp(2.0)) and row["log_ppl"] == 2.0


def test_unigram_entropy_in_bits():
    assert collapse.unigram_entropy([]) == 0.0
    assert collapse.unigram_entropy(["same Same SAME"]) == 0.0
    assert collapse.unigram_entropy(["a b", "c d"]) == pytest.approx(2.0)
    counts = Counter({"x": 3, "y": 1})
    want = -sum(k / 4 * math.log2(k / 4) for k in counts.values())
    assert collapse.unigram_entropy(["x y x", "x"]) == pytest.approx(want)


def test_bad_input_says_the_fix():
    with pytest.raises(CollapseError, match="choose one of"):
        collapse.gaussian_recursion(10, 3, regime="mix")
    with pytest.raises(CollapseError, match="at least 2 samples"):
        collapse.gaussian_recursion(1, 3)
    with pytest.raises(CollapseError, match="divide by their sum"):
        collapse.expected_survivors([0.5, 0.6], 3)
    with pytest.raises(CollapseError, match="min_count"):
        collapse.rare_words(["a"], 3, 2)
    with pytest.raises(CollapseError, match="n_texts"):
        collapse.ChainSettings(n_texts=0, steps=1)


# --- language models: a real two-generation run ----------------------------------------------
@pytest.fixture(scope="module")
def tiny_setup():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(2)
    from synthkit.train import tiny

    passages = collapse.wiki_passages(max_words=40, seed=0)
    real, held_out, fresh = passages[:48], passages[48:64], passages[64:120]
    tokenizer = tiny.train_tokenizer(passages[:400], vocab_size=512)
    config = tiny.TinyConfig(vocab_size=512, n_layer=1, n_head=2, d_model=32, context=64)
    settings = collapse.ChainSettings(n_texts=16, steps=6, batch_size=8, max_tokens=24)
    rare = collapse.rare_words(real, 1, 2)
    start = collapse.generation_zero(real, held_out, rare, tokenizer=tokenizer, config=config,
                                     settings=settings, seed=0, progress=False)
    return dict(real=real, held_out=held_out, fresh=fresh, tokenizer=tokenizer, config=config,
                settings=settings, rare=rare, start=start)


def test_passages_are_real_and_disjoint():
    passages = collapse.wiki_passages(max_words=40, seed=0)
    assert len(passages) > 9000 and len(set(passages)) > 0.99 * len(passages)
    # a passage over the word limit is a single long first sentence, never two sentences
    assert all(len(p.split()) <= 40 or len(collapse._SENTENCE.split(p)) == 1 for p in passages[:500])
    assert passages[:5] != collapse.wiki_passages(max_words=40, seed=1)[:5]


@pytest.mark.parametrize("regime", ["replace", "accumulate", "fresh"])
def test_two_generation_chain_trains_real_models(tiny_setup, regime):
    s = tiny_setup
    out = collapse.run_chain(s["start"], s["real"], s["held_out"], s["rare"], regime=regime, generations=2,
                             tokenizer=s["tokenizer"], config=s["config"], settings=s["settings"],
                             fresh_pool=s["fresh"], fresh_share=0.25, progress=False)
    rows = out["rows"]
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert all(r["perplexity"] > 1 and math.isfinite(r["perplexity"]) for r in rows)
    assert all(r["perplexity"] == pytest.approx(math.exp(d.mean())) for r, d in zip(rows, out["doc_log_ppl"]))
    assert all(len(d) == len(s["held_out"]) for d in out["doc_log_ppl"])       # per held-out text: pairable
    assert all(0 <= r["tail_coverage"] <= 1 and r["entropy"] >= 0 for r in rows)
    assert all(len(batch) == s["settings"].n_texts for batch in out["samples"])
    if regime == "replace":
        assert [r["real_share"] for r in rows[1:]] == [0.0, 0.0]
        assert [r["train_texts"] for r in rows[1:]] == [16, 16]
        assert out["corpora"][0] == s["start"]["samples"]      # generation 1 learns gen 0's samples
    elif regime == "accumulate":
        assert [r["train_texts"] for r in rows[1:]] == [48 + 16, 48 + 32]
        assert rows[2]["real_share"] == pytest.approx(48 / 80)
    else:
        assert [r["real_share"] for r in rows[1:]] == [0.25, 0.25]
    # generation 1 is a new model, trained on something other than generation 0's data
    assert rows[1]["perplexity"] != rows[0]["perplexity"]


def test_measured_samples_are_topped_up_to_the_word_budget(tiny_setup):
    s = tiny_setup
    model, tok = s["start"]["model"], s["tokenizer"]
    plain = collapse.ChainSettings(n_texts=4, steps=1, batch_size=8, max_tokens=8)
    budget = collapse.ChainSettings(n_texts=4, steps=1, batch_size=8, max_tokens=8, sample_batch=4,
                                    measure_words=60)
    few, corpus = collapse.draw(model, tok, plain, 4, seed=1)
    assert few == corpus and len(few) == 4
    more, corpus = collapse.draw(model, tok, budget, 4, seed=1)
    assert more[:4] == few and corpus == few              # the first n are the same; only the measure grows
    assert sum(len(collapse.words(t)) for t in more) >= 60
    assert sum(len(collapse.words(t)) for t in more[:-4]) < 60   # no more than it needed
    row = collapse.describe_generation(more, rare=s["rare"], budget=60)
    assert 0 <= row["tail_coverage"] <= 1


def test_rejection_drops_the_most_confident_samples(tiny_setup):
    s = tiny_setup
    from synthkit.train import tiny

    model, tok = s["start"]["model"], s["tokenizer"]
    plain, kept = collapse.draw(model, tok, s["settings"], 12, seed=3, reject_share=0.25)
    assert len(plain) == len(kept) == 12
    everything = tiny.sample(model, tok, 16, max_tokens=s["settings"].max_tokens, seed=3, progress=False)
    assert plain == everything[:12]
    ppl = tiny.text_perplexities(model, tok, [t if t.strip() else " " for t in everything])
    dropped = [p for t, p in zip(everything, ppl) if t not in kept]
    assert dropped and max(dropped) <= min(p for t, p in zip(everything, ppl) if t in kept) + 1e-9


def test_two_teachers_keep_their_lineages_apart(tiny_setup):
    s = tiny_setup
    kw = dict(tokenizer=s["tokenizer"], config=s["config"], settings=s["settings"], progress=False)
    second = collapse.generation_zero(s["real"], s["held_out"], s["rare"], seed=1, **kw)
    a = collapse.run_chain(s["start"], s["real"], s["held_out"], s["rare"], regime="replace", generations=1, **kw)
    b = collapse.run_chain(second, s["real"], s["held_out"], s["rare"], regime="replace", generations=1, seed=1,
                           **kw)
    # each lineage trains only on its own samples: no text of B's corpora is in A's, and back
    assert not set(a["corpora"][1]) & set(b["corpora"][0] + b["corpora"][1])
    assert a["corpora"][1] == a["samples"][1][:16] and b["corpora"][0] == second["samples"][:16]
    out = collapse.two_teachers([a, b], s["held_out"], s["rare"], generations=2, name="two teachers", **kw)
    assert [r["generation"] for r in out["rows"]] == [0, 1, 2] and out["rows"][-1]["regime"] == "two teachers"
    # the student of generation g learns n/2 of each lineage's generation g-1: the same n as one teacher
    assert out["corpora"][1] == a["corpora"][0][:8] + b["corpora"][0][:8]
    assert out["corpora"][2] == a["corpora"][1][:8] + b["corpora"][1][:8]
    assert out["rows"][2]["train_texts"] == 16 == a["rows"][1]["train_texts"]
    with pytest.raises(CollapseError, match="needs 2"):
        collapse.two_teachers([a, b], s["held_out"], s["rare"], generations=3, **kw)
