"""Lab 08 — Model collapse: three exercises, one essay and a concept check.

Used by ``labs/08_model_collapse.ipynb``::

    from synthkit.labs.lab08 import ex1, ex2, ex3, essay1, quiz

The checks need no model. Exercise 1 is random by nature, so it is checked statistically:
thousands of the student's draws must have the spread the fit says they should, within a
tolerance of several standard errors, and a seed must make them reproducible. Exercises 2
and 3 are compared with exact references on fresh random inputs. Each refuses the library's
own function running inside the student's.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..grading.checks import close, is_number, name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "08"
TITLE = "Model collapse: when each model learns from the one before it"
NOTEBOOK = "08_model_collapse.ipynb"


# --- exercise 1: gaussian_step (one generation of the recursion) ------------------------
def _as_points(got, label, c) -> np.ndarray:
    try:
        arr = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        c.fail(f"{label} returned {show_input(got, 50)}; it should return a flat array (or list) of numbers.")
    if arr.ndim != 1:
        c.fail(f"{label} returned an array of shape {arr.shape}; it should be flat (one number per point).")
    if not np.isfinite(arr).all():
        c.fail(f"{label} returned NaN or infinite values.")
    return arr


def _check_gaussian_step(c) -> str:
    fn = c.get("gaussian_step", callable_=True)
    rng = c.rng
    checked = 0
    for regime in ("replace", "accumulate"):
        # small data, so that a fit with the wrong divisor is visibly off (N/(N-1) = 4/3 here)
        scale = rng.choice((rng.uniform(0.3, 0.6), rng.uniform(2.0, 4.0)))  # variance far from 1
        data = np.array([rng.gauss(0.0, scale) for _ in range(4)])
        data += rng.choice((-1, 1)) * rng.uniform(2, 5) - data.mean()   # a mean well away from zero
        mean, var = float(data.mean()), float(data.var())
        seed = rng.randint(0, 2**31 - 1)
        n = rng.randint(3, 9)
        label = f"gaussian_step({show_input(np.round(data, 3).tolist(), 60)}, n={n}, regime={regime!r}, seed={seed})"
        given = data.copy()
        got = _as_points(c.call(fn, given, n, regime, seed, label=label), label, c)
        if not np.array_equal(given, data):
            c.fail(f"{label} changed the `data` array it was given; build a new array instead.")
        want_len = n if regime == "replace" else len(data) + n
        if len(got) != want_len:
            hint = ("Under 'replace' the next generation trains on the n new points only."
                    if regime == "replace" else
                    "Under 'accumulate' the next generation trains on the old data *and* the n new points.")
            c.fail(f"{label} returned {len(got)} points. {hint}")
        if regime == "accumulate" and not np.allclose(got[:len(data)], data):
            c.fail(f"{label}: under 'accumulate', return `data` unchanged first, then the new points.")
        again = _as_points(c.call(fn, data.copy(), n, regime, seed, label=label), label, c)
        if not np.array_equal(got, again):
            c.fail(f"{label} gave different points on a second call with the same seed. Draw them with "
                   f"np.random.default_rng(seed), not with the global random state.")
        other = _as_points(c.call(fn, data.copy(), n, regime, seed + 1, label=label), label, c)
        if np.array_equal(got[-n:], other[-n:]):
            c.fail(f"{label} gave the same new points for seed={seed} and seed={seed + 1}: use the seed.")
        # the statistics: many draws from the student's function must look like N(mean, var)
        big_n, calls = 2000, 10
        new = np.concatenate([
            _as_points(c.call(fn, data.copy(), big_n, regime, seed + 7 + i, label=label), label, c)[-big_n:]
            for i in range(calls)])
        total = big_n * calls
        got_mean, got_var = float(new.mean()), float(new.var())
        mean_se, var_se = math.sqrt(var / total), var * math.sqrt(2 / total)
        label = f"gaussian_step(data, n={big_n}, regime={regime!r}, seed=...) over {calls} seeds"
        shown = f"data = {np.round(data, 3).tolist()}"
        if abs(got_mean - mean) > 5 * mean_se:
            c.fail(f"{label}: the new points are centred on {got_mean:.3f}, more than five standard errors "
                   f"from the mean of the data ({shown}). Sample around the mean of `data`.")
        if abs(got_var - var) > 5 * var_se:
            advice = name_the_slip(got_var, [
                (lambda: var * len(data) / (len(data) - 1),
                 "Their spread matches the unbiased variance (dividing by N-1). Fit by maximum likelihood, "
                 "as training does: divide by N (np.var's default, ddof=0)."),
                (lambda: var ** 2,
                 "Their variance looks like the square of the data's variance: numpy's normal() takes the "
                 "standard deviation as its scale, not the variance."),
                (lambda: math.sqrt(var),
                 "Their variance looks like the data's standard deviation: the scale you pass must be the "
                 "standard deviation itself (its square is the variance)."),
            ], same=lambda a, b: abs(a - b) <= 5 * math.sqrt(2 / total) * max(b, var),  # b's own spread
                default="Fit the variance to `data` by maximum likelihood and sample with its square root as scale.")
            c.fail(f"{label}: the new points have variance {got_var:.3f}, which is not the variance fitted "
                   f"to the data ({shown}) within five standard errors. {advice}")
        checked += 1
    return ("Both regimes keep the right points, a seed makes a draw reproducible, and 20,000 fresh "
            "draws per regime have the mean and the maximum-likelihood variance of their data.")


ex1 = CodingExercise(
    "ex1", LAB, names="gaussian_step", checker=_check_gaussian_step, points=3, time_limit=10.0,
    refuses=("synthkit.collapse.gaussian_step", "synthkit.collapse.gaussian_recursion"),
    title="One generation of the Gaussian recursion, replace or accumulate",
    hints=[
        "Three steps: fit (the mean of `data` and its variance, dividing by N), sample n new points from "
        "a normal with that mean and variance, and decide what the next generation trains on.",
        "rng = np.random.default_rng(seed) makes the draw reproducible. rng.normal(loc, scale, size) "
        "takes the standard deviation as `scale`: pass the square root of the variance "
        "(np.std(data) is exactly that, with the divide-by-N default).",
        "For 'replace' return only the new points; for 'accumulate' glue the old data in front of them "
        "with np.concatenate (a new array: never modify `data` in place).",
    ],
)


# --- exercise 2: expected_survivors (the closed form) -----------------------------------
def _reference_survivors(probs, n) -> float:
    p = np.asarray(probs, dtype=float)
    with np.errstate(divide="ignore"):  # p = 1 gives log1p(-1) = -inf, and a survival of exactly 1
        return float((-np.expm1(n * np.log1p(-p))).sum())


def _survivor_cases(rng) -> list[tuple[np.ndarray, int, str]]:
    cases = []

    def zipf(k, s):
        p = 1.0 / np.arange(1, k + 1) ** s
        return p / p.sum()

    cases.append((np.array([1.0]), 1, "one category"))
    cases.append((np.array([0.5, 0.5]), 1, "a single draw"))
    cases.append((np.array([0.25] * 4), rng.randint(2, 12), "equal probabilities"))
    for _ in range(5):
        k, s = rng.randint(10, 3000), rng.uniform(0.8, 1.6)
        cases.append((zipf(k, s), rng.choice((rng.randint(5, 200), rng.randint(1000, 100_000))), "a Zipf tail"))
    for _ in range(3):
        p = np.array([rng.random() ** 3 for _ in range(rng.randint(3, 40))])
        p[rng.randrange(len(p))] = 0.0   # a category that is already gone
        cases.append((p / p.sum(), rng.randint(1, 500), "a category with probability zero"))
    # a long tail of categories far rarer than 1e-16: 1 - p rounds to exactly 1.0 in a float
    tail = rng.randint(20_000, 80_000)
    tiny = rng.uniform(1, 9) * 1e-18
    p = np.full(tail + 1, tiny)
    p[0] = 1 - tiny * tail
    cases.append((p, rng.randint(10**9, 5 * 10**9), "categories far rarer than one in 10^16"))
    rng.shuffle(cases)
    return cases


def _check_expected_survivors(c) -> str:
    fn = c.get("expected_survivors", callable_=True)
    cases = _survivor_cases(c.rng)
    for probs, n, probe in cases:
        label = f"expected_survivors({show_input(np.round(probs, 4).tolist(), 60)} ({len(probs)} categories), n={n})"
        got = c.call(fn, probs.copy(), n, label=label)
        if isinstance(got, np.ndarray) and got.ndim == 0:
            got = float(got)
        if not is_number(got):
            c.fail(f"{label} returned {show_input(got, 50)} ({type(got).__name__}); return one number, the "
                   f"expected count of surviving categories (a sum over all of them).")
        want = _reference_survivors(probs, n)
        if close(got, want, 1e-7 * max(1.0, abs(want))):
            continue
        p = probs
        advice = name_the_slip(float(got), [
            (lambda: float(((1 - p) ** n).sum()),
             "That is the expected number of categories *missed*: (1-p)^n is the chance of never drawing one."),
            (lambda: float(np.minimum(1.0, n * p).sum()),
             "n·p is the expected number of draws, not the chance of at least one: it overshoots for common "
             "categories and is only an approximation for rare ones."),
            (lambda: float((1 - (1 - p) ** n).sum()),
             "Right formula, but for p below about 1e-16, 1 - p rounds to exactly 1.0 in floating point and the "
             "rare categories vanish from your sum. Compute (1-p)^n as exp(n·log1p(-p)) and 1 - exp(x) as "
             "-expm1(x)."),
            (lambda: float((n * p >= 1).sum()),
             "Counting the categories expected at least once (n·p >= 1) gives each a yes or no; the expectation "
             "adds up each category's *probability* of surviving."),
        ], default=f"Each category survives one generation with probability 1 - (1 - p)^n; the expected count "
                   f"is the sum of those. (This case tests {probe}.)")
        c.fail(f"{label} returned {float(got)!r}. {advice}")
    return f"{len(cases)} fresh distributions, from one category to 80,000 tiny ones, agree with the closed form."


ex2 = CodingExercise(
    "ex2", LAB, names="expected_survivors", checker=_check_expected_survivors, points=2,
    refuses=("synthkit.collapse.expected_survivors", "synthkit.collapse.survival_probability"),
    title="How many categories survive one generation? The closed form",
    hints=[
        "One category of probability p is *missed* by all n independent draws with probability (1 - p)^n. "
        "The expected number of survivors is a sum over categories of the chance that each survives "
        "(linearity of expectation: no independence between categories needed).",
        "With numpy: p = np.asarray(probs, dtype=float), then a sum over 1 - (1 - p)**n. Return a float.",
        "The last check uses p around 1e-18 and n around 10^9: each such category survives with probability "
        "about n·p, but 1 - p is exactly 1.0 in a float. np.log1p(-p) keeps the tiny p, and np.expm1 keeps "
        "the tiny difference from 1.",
    ],
)


# --- exercise 3: unigram_entropy ---------------------------------------------------------
_POOL = ("the", "river", "city", "war", "of", "empire", "bridge", "a", "poet", "saint", "volcano", "was",
         "Ottoman", "in", "and", "dynasty", "its", "Baroque", "glacier", "photosynthesis", "is", "opera",
         "THE", "River", "ábaco", "Zürich", "naïve")


def _entropy_cases(rng) -> list[tuple[list[str], str]]:
    def text(length):
        weights = [1 / (i + 1) for i in range(len(_POOL))]
        chosen = rng.choices(_POOL, weights=weights, k=length)
        out = []
        for w in chosen:
            out.append(w + rng.choice(("", "", "", ",", ".", ";")))
            if rng.random() < 0.1:
                out.append(str(rng.randint(1, 2024)))
        return " ".join(out)

    cases = [([], "no texts at all"), (["", "  "], "texts without a word"),
             (["again " * rng.randint(2, 9)], "one word repeated"),
             (["Rome, rome; ROME. 1453"], "one word in three spellings of case")]
    for _ in range(6):
        cases.append(([text(rng.randint(1, 40)) for _ in range(rng.randint(1, 8))], "random texts"))
    for _ in range(2):  # texts of very different lengths: pooling matters
        cases.append(([text(rng.randint(60, 120)), text(rng.randint(1, 3))], "a long and a short text"))
    rng.shuffle(cases)
    return cases


def _check_unigram_entropy(c) -> str:
    from ..collapse import word_counts

    def entropy(counts, base=2.0):
        total = sum(counts)
        return -sum(k / total * math.log(k / total, base) for k in counts if k) if total else 0.0

    fn = c.get("unigram_entropy", callable_=True)
    cases = _entropy_cases(c.rng)
    for texts, probe in cases:
        label = f"unigram_entropy({show_input(texts, 80)})"
        got = c.call(fn, list(texts), label=label)
        if isinstance(got, np.ndarray) and got.ndim == 0:
            got = float(got)
        if not is_number(got):
            c.expect_type(got, float, label)
        want = entropy(list(word_counts(texts).values()))
        if close(got, want, 1e-9 + 1e-9 * want):
            continue
        if want == 0.0:
            c.fail(f"{label} returned {got!r} (this case tests {probe}). With no words, or a single distinct "
                   f"word, there is nothing to be uncertain about: the entropy is 0.0.")
        advice = name_the_slip(float(got), [
            (lambda: entropy(list(word_counts(texts).values()), math.e),
             "That is the entropy in nats (natural log); this lab measures it in bits (log base 2)."),
            (lambda: float(np.mean([entropy(list(word_counts([t]).values())) for t in texts])),
             "That is the average of each text's own entropy. Pool the words of all texts into one "
             "distribution first, then take its entropy."),
            (lambda: math.log2(len(word_counts(texts))),
             "That is log2 of the number of distinct words: the entropy *if* every word were equally common. "
             "Weight each word by its share of all the words."),
            (lambda: entropy(list(Counter(w for t in texts for w in t.split()).values())),
             "Split with `words()` (letters only, lowercased), not str.split(): 'Rome,' and 'rome' are one word."),
        ], default=f"Entropy in bits: minus the sum of p·log2(p) over the distinct words, p being each "
                   f"word's share of all the words. (This case tests {probe}.)")
        c.fail(f"{label} returned {got!r}. {advice}")
    return f"{len(cases)} fresh sets of texts, with case, punctuation, numbers and empty texts, scored right."


ex3 = CodingExercise(
    "ex3", LAB, names="unigram_entropy", checker=_check_unigram_entropy, points=2,
    refuses=("synthkit.collapse.unigram_entropy",),
    title="Unigram entropy: how many bits does a word cost?",
    hints=[
        "Count every word of every text together (collections.Counter over words(t) for t in texts). "
        "Each distinct word has a share p = its count / the total count.",
        "The entropy is the sum over distinct words of -p·log2(p), a number in bits. With no words at "
        "all, return 0.0 (there is nothing to be uncertain about).",
    ],
)


# --- essay 1 ---------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="How many generations before it breaks?",
    prompt="""
        Shumailov et al. show collapse over many generations of training on the previous model's output.
        From your own curves in this lab, estimate how many generations of synthetic-only training
        (the replace regime) your tiny models could go through before the collapse is "significant".
        First say what you count as significant (a perplexity rise on real text beyond the seed gap
        and the paired test? a share of the tail lost?) and read the number off your figure, with how
        sure you are. Then use the Gaussian and Zipf parts to say how that number should change with
        the size of each generation's corpus (N), and what the accumulate and fresh-real-text regimes
        did to it. Would your estimate carry over to a 7B model trained on a trillion tokens? Why or why not?
    """,
    hints=["The grey band on the perplexity panel is generation 0 plus or minus the seed gap printed in "
           "part 3: see at which generation the replace curve leaves it, and check that generation's paired "
           "test. For how the answer scales, remember that with the maximum-likelihood fit the typical "
           "variance halves about every N·ln 2 / 2 generations (collapse.half_life)."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - A definition tied to noise: e.g. 'significant' = the replace curve's perplexity on real text
          is higher than generation 0's on the paired test over the same held-out texts and by more than
          the seed gap (from three or more generation-0 seeds: two runs differing only by seed land that
          far apart about 1 time in 20), or tail coverage, counted in the same number of words, falls
          below half of gen 0's. Read the generation where that happens; with one chain per regime the
          estimate is rough (one or two generations either way), and the gap, measured at generation 0,
          is if anything too narrow for later generations, which carry their ancestors' noise too.
        - Scaling: in the Gaussian model the maximum-likelihood fit's typical variance shrinks by about
          exp(-2/N) per generation (it halves every N ln 2 / 2 generations; (N-1) ln 2 for the unbiased
          fit) and the mean wanders by sigma^2/N per generation, so the number of generations
          before a fixed loss grows roughly in proportion to N; in the Zipf model a category of
          probability p is lost with probability (1-p)^N per generation, so rarer words go first and a
          larger corpus protects a longer stretch of the tail, but nothing in replace protects it forever.
        - Accumulate keeps the real data in every fit, so the error stays bounded (Gerstgrasser et al.);
          a fixed share of fresh real text re-anchors the distribution every generation.
        - Transfer: a 7B model on 10^12 tokens has far more samples per generation and a far better
          function approximator, so collapse per generation is much slower; but real pipelines do not
          purely replace data either, and the tails (rare facts, languages, styles) are exactly what a
          big model sees few examples of, so the tail can still go first.
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Training each model on the previous model's outputs makes later models lose diversity and "
             "quality. What do Shumailov et al. point to as the root cause?",
             ["Synthetic text is written in a different style from human text, and the style gap widens",
              "Small errors compound: finite samples under-draw rare events and each fit inherits them",
              "Later models are trained for fewer steps, because synthetic corpora are always smaller",
              "The models memorise their own outputs word for word, so later generations repeat earlier ones"],
             answer=1,
             why="Every generation estimates the distribution from a finite sample (and with an imperfect "
                 "model); what one generation misses, the next cannot learn back. Rare events are the "
                 "easiest to miss, so the tails go first and the errors add up over generations."),
    Question("A category has probability 1/1000 and each generation draws N = 1000 samples. About how "
             "likely is it to disappear in one generation?",
             ["about 0.1%", "about 37%", "about 63%", "about 50%"],
             answer=1,
             why="(1 - 1/1000)^1000 is about e^-1 = 0.37: a category expected once per generation is "
                 "missed more than a third of the time, and once missed it never returns."),
    Question("Fitting a normal distribution by maximum likelihood to N samples of the previous fit, "
             "generation after generation (replace), what happens to the expected variance?",
             ["It stays the same, since each fit is an unbiased estimate of its parent",
              "It is multiplied by (N-1)/N every generation, so it decays toward zero",
              "It grows by 1/N every generation, as the mean wanders further away",
              "It drops to zero after exactly N generations and stays there"],
             answer=1,
             why="The fitted variance is the parent's times chi2(N-1)/N, whose mean is (N-1)/N. Even the "
                 "unbiased fit (divide by N-1) only keeps the expectation: its typical value still shrinks."),
    Question("Gerstgrasser et al. (2024) compared replacing the data each generation with accumulating it. "
             "What did they find for accumulation?",
             ["The test error stays bounded, however many generations are run",
              "Collapse still happens, only about twice as slowly as with replacement",
              "It works only when every generation's synthetic text is filtered by a verifier",
              "It gives a lower error than training on the real data alone, at every generation"],
             answer=0,
             why="Keeping the real data (and all synthetic data) in the pool bounds the error: in their "
                 "linear model the bound is a constant times the one-model error (the sum of 1/k^2 is "
                 "pi^2/6), and their language models stopped degrading."),
    Question("In this lab, why is tail coverage counted in the first W words of each generation's samples, "
             "the same W for all, rather than in the same number of texts?",
             ["Because the tokenizer was trained on generation 0 and cannot read later samples otherwise",
              "Because later texts can be longer or shorter, and more words cover more of the tail anyway",
              "Because distinct-n and entropy are undefined when two sample sets differ in length",
              "Because rare words are defined by their count, which changes with the number of samples"],
             answer=1,
             why="Coverage rises with the amount of text whatever the model, and a generation that writes "
                 "longer texts puts more words in the same number of texts: only equal word budgets "
                 "compare models rather than text lengths."),
    Question("With the maximum-likelihood fit and N = 100 points per generation (replace), about how many "
             "generations does the typical chain's variance take to halve?",
             ["about 7", "about 35", "about 69", "about 100"],
             answer=1,
             why="Per generation the log-variance falls on average by about 1/N (the fit's bias) plus "
                 "1/(N-1) (log of a chi-squared is biased low): about 0.02, so halving takes ln 2 / 0.02, "
                 "about N ln 2 / 2 = 35 (collapse.half_life(100) = 34.3). 69 = (N-1) ln 2 is the unbiased "
                 "fit, which has only the second part."),
    Question("Dropping the lowest-perplexity (most confident) samples before training the next generation "
             "is meant to slow collapse. What is the risk the lab's measurement checks for?",
             ["It keeps the odd and the broken samples too, so the next model may learn errors, not tails",
              "It removes every rare word, because confident samples contain all of the rare words",
              "It makes the corpus larger, so the next generation trains for more steps than the others",
              "Nothing: a sample's perplexity under its own parent cannot say anything about the tail"],
             answer=0,
             why="High-perplexity samples include the unusual ones the chapter wants to keep, but also the "
                 "garbled ones; the perplexity on real text shows which of the two the next model learned."),
])
