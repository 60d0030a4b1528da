"""Lab 07 — Synthetic data for pretraining: three exercises, one essay and a concept check.

Used by ``labs/07_synthetic_pretraining.ipynb``::

    from synthkit.labs.lab07 import ex1, ex2, ex3, essay1, quiz

The checks need no model: they call the student's functions on fresh random inputs and
compare with exact references (a masked mean computed in float64, token counts of a
mix, the library's quality filter), and each refuses the library's own function.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from ..grading.checks import close, is_number, name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, Raised, show_input
from ..grading.quiz import Question, Quiz

LAB = "07"
TITLE = "Synthetic data for pretraining: textbooks, mixtures and a model trained from scratch"
NOTEBOOK = "07_synthetic_pretraining.ipynb"


# --- exercise 1: textbook_quality ------------------------------------------------------------------
_TOPIC_WORDS = ("river", "glacier", "enzyme", "sonnet", "bridge", "algebra", "harbour", "empire", "voltage",
                "protein", "festival", "telescope", "parliament", "harvest", "orbit")
_FILLER = ("the", "a", "it", "is", "was", "and", "because", "of", "in", "which", "many", "people", "used",
           "this", "over", "time", "became", "important", "part", "their", "work", "when", "water", "light",
           "first", "called", "across", "built", "known", "as", "for", "with", "city", "years", "later")


def _sentence(rng, extra=()):
    words = [rng.choice(_FILLER) for _ in range(rng.randint(6, 14))] + list(extra)
    rng.shuffle(words)
    return " ".join(words).capitalize() + rng.choice((".", ".", ".", "!", "?"))


def _passage_case(rng):
    """(text, title, what it probes)."""
    topic = rng.choice(_TOPIC_WORDS)
    title = rng.choice((topic.capitalize(), f"The {topic}", f"{topic.capitalize()} (science)", f"Old {topic}s"))
    sentences = [_sentence(rng, [topic] if rng.random() < 0.5 else []) for _ in range(rng.randint(3, 8))]
    probe = rng.choice(("clean", "clean", "short", "markup", "preamble", "unfinished", "off-topic",
                        "repetitive", "two", "case"))
    if probe == "short":
        sentences = sentences[:1]
    elif probe == "markup":
        sentences.insert(rng.randrange(len(sentences) + 1),
                         "\n" + rng.choice(("# ", "  - ", "* ", "• ", "3. ", "12) ", "**")) + _sentence(rng) + "\n")
    elif probe == "preamble":
        sentences.insert(0, rng.choice(("Sure!", "Certainly, here it is:", "  Of course.", "Here's a passage:",
                                        "As an AI, I will write it.", "What a topic!", "Title: the text")))
    elif probe == "unfinished":
        sentences[-1] = sentences[-1][:-1] + rng.choice((" and the", ",", " (", ":", ""))
    elif probe == "repetitive":
        sentences = [sentences[0]] * rng.randint(6, 12)
    elif probe == "two":
        sentences = sentences[:1] + [sentences[0]] * 5
        sentences[-1] = sentences[-1][:-1]
    if probe in ("off-topic",) or (probe != "case" and rng.random() < 0.15):
        sentences = [s.replace(topic, "stone") for s in sentences]
    if probe == "case":
        sentences.append(f"{topic.upper()} matters.")
        sentences = [s.replace(f" {topic} ", " ") for s in sentences[:-1]] + sentences[-1:]
    if probe == "clean" and rng.random() < 0.3:
        sentences.append("Numbers like 4. and lists - are fine inside a line.")
    text = " ".join(sentences).replace(" \n", "\n").replace("\n ", "\n")
    if rng.random() < 0.3:
        text = rng.choice(("  ", "\n")) + text + rng.choice((" ", "\n", "  "))
    return text, title, probe


_QUALITY_ADVICE = {
    "short": "count words with text.split(); fewer than 40 is 'short'",
    "markup": "a line (text.splitlines()) whose start, after spaces, is '#', '- ', '* ', '• ', '**' or digits "
              "followed by '.' or ')' and a space is 'markup'",
    "preamble": "strip the text and lowercase it; starting with any phrase of PREAMBLES is 'preamble'",
    "unfinished": "the last character after stripping must be '.', '!' or '?'",
    "off-topic": "title words are runs of letters A-Z with 4 or more letters; if none of them (lowercased) is "
                 "among the text's letter-run words (lowercased), it is 'off-topic' (a title with no such word "
                 "never is)",
    "repetitive": "lowercase the whitespace-split words and form consecutive triples; distinct triples / all "
                  "triples below 0.5 is 'repetitive'",
}


# Word patterns (letters: distinct words; the last one ends the passage with '.') whose distinct
# consecutive triples are exactly half of all triples, so the 0.5 threshold itself is tested, and
# whose skip-triples (w0, w2, w2), (w0, w0, w2), (w0, w1, w3) and pairs (w0, w1, w1) fall below half:
# a triple built from the wrong words is caught.
_HALF_LOOPS = ("caacccacbabbccacaabcaaccaabbbaccabaaabacaccbcbacacacccad",
               "bcbbbaaabcbacacbbaacababcabcababbacbcabcaabcad",
               "ccbacccaccbaaacbcbacabcccbbbcbaacbbbcabbcbbcbcbd")
_FOUR_LETTER = ("moon", "iron", "silk", "wool", "tide", "lava", "opal", "kelp", "reef", "dune")


def _clean_words(rng, n, topic):
    """A clean passage of exactly n words (one of them the topic) ending in '.'."""
    words = [rng.choice(_FILLER) for _ in range(n - 1)] + [topic]
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def _boundary_cases(rng):
    """Drawn on every run: each rule at its exact threshold."""
    topic = rng.choice(_TOPIC_WORDS)
    title = topic.capitalize()
    cases = [(_clean_words(rng, 40, topic), title, "exactly 40 words"),
             (_clean_words(rng, 39, topic), title, "39 words")]
    a, b, c = rng.sample(_FILLER, 3)
    loop = rng.choice(_HALF_LOOPS)
    words = [{"a": a, "b": b, "c": c, "d": topic + "."}[ch] for ch in loop]
    cases.append((" ".join(words).capitalize(), title, "distinct triples exactly half"))
    short = rng.choice(_FOUR_LETTER)  # a title word of exactly 4 letters counts; "The" (3) does not
    cases.append((_clean_words(rng, rng.randint(40, 60), "the"), f"The {short}", "a 4-letter title word, absent"))
    cases.append((_clean_words(rng, rng.randint(40, 60), short), rng.choice((short.capitalize(), f"Old {short}")),
                  "a 4-letter title word, present"))
    return cases


def _check_quality(c) -> str:
    from ..pretrain import quality_reasons

    fn = c.get("textbook_quality", callable_=True)
    cases = _boundary_cases(c.rng) + [_passage_case(c.rng) for _ in range(40)] + [("", "Anything", "empty")]
    for text, title, probe in cases:
        label = f"textbook_quality({show_input(text, 60)}, {title!r})"
        got = c.call(fn, text, title, label=label)
        if not isinstance(got, (list, tuple)):
            c.expect_type(got, list, label)
        want = quality_reasons(text, title)
        if list(got) == want:
            continue
        extra = [r for r in got if r not in want]
        lacking = [r for r in want if r not in got]
        if not extra and not lacking:
            c.fail(f"{label} returned {list(got)}; right reasons, but list them in the rules' order: "
                   f"short, markup, preamble, unfinished, off-topic, repetitive.")
        rule = (lacking or extra)[0]
        said = "missed" if lacking else "reported"
        advice = _QUALITY_ADVICE.get(rule, "")
        c.fail(f"{label} returned {list(got)}: it {said} '{rule}'. The rule: {advice}.")
    return f"{len(cases)} fresh passages, clean and broken in each way, judged as the library judges them."


ex1 = CodingExercise(
    "ex1", LAB, names="textbook_quality", checker=_check_quality, points=2,
    refuses=("synthkit.pretrain.quality_reasons", "synthkit.pretrain.passes_quality"),
    title="Quality filters for textbook passages",
    hints=[
        "Six independent tests, each appending its name to a list in a fixed order: short, markup, preamble, "
        "unfinished, off-topic, repetitive. Each is one or two lines.",
        "re.match(r\"^\\s*(#|[-*•]\\s|\\d+[.)]\\s|\\*\\*)\", line) spots markup at a line's start; "
        "re.findall(r\"[A-Za-z]+\", s) gives letter-run words for the topic test; "
        "text.strip().lower().startswith(tuple(PREAMBLES)) the preamble.",
        "For repetition: words = [w.lower() for w in text.split()], trigrams = list(zip(words, words[1:], "
        "words[2:])); compare len(set(trigrams)) / len(trigrams) with 0.5 only when there is at least one.",
    ],
)


# --- exercise 2: masked_perplexity ---------------------------------------------------------------
def _loss_case(rng):
    """(losses, mask) with ragged rows: real tokens first, padding after (with junk losses)."""
    rows, width = rng.randint(1, 6), rng.randint(1, 12)
    losses, mask = [], []
    for _ in range(rows):
        real = rng.randint(0, width)
        losses.append([round(rng.uniform(0.05, 9.0), 4) for _ in range(real)] +
                      [rng.choice((0.0, 11.0, rng.uniform(5, 40))) for _ in range(width - real)])
        mask.append([1] * real + [0] * (width - real))
    if sum(map(sum, mask)) == 0:
        mask[0][0] = 1
    return losses, mask


def _check_masked_perplexity(c) -> str:
    fn = c.get("masked_perplexity", callable_=True)
    rng = c.rng
    cases = [([[2.0, 2.0]], [[1, 1]]), ([[1.0, 3.0, 50.0]], [[1, 1, 0]]), ([[0.5], [4.0]], [[1], [0]])]
    cases += [_loss_case(rng) for _ in range(25)]
    for i, (losses, mask) in enumerate(cases):
        as_array = i % 2 == 1
        args = (np.array(losses), np.array(mask)) if as_array else (losses, mask)
        label = f"masked_perplexity({show_input(losses, 60)}, mask={show_input(mask, 40)})"
        got = c.call(fn, *args, label=label)
        if not is_number(got):
            c.expect_type(got, float, label)
        L, M = np.array(losses, dtype=float), np.array(mask, dtype=float)
        want = math.exp((L * M).sum() / M.sum())
        if close(got, want, 1e-7 * want):
            continue
        rows = [(np.array(r) * np.array(m)).sum() / max(1, sum(m)) for r, m in zip(losses, mask) if sum(m)]
        advice = name_the_slip(got, [
            (lambda: math.exp(L.mean()), "That is exp of the mean over *every* position, padding included: "
                                         "padding is not text; its loss must not count."),
            (lambda: math.exp((L * M).sum() / M.size), "The sum is right but you divided by all positions; "
                                                       "divide by the number of real tokens."),
            (lambda: float(np.mean([math.exp(r) for r in rows])), "That is the mean of each row's perplexity. "
             "Pool the tokens first: one mean loss over every real token, then one exp."),
            (lambda: math.exp(float(np.mean(rows))), "That averages the rows' mean losses, so a short row "
             "counts as much as a long one. Pool over tokens: a long text counts for its length."),
            (lambda: (L * M).sum() / M.sum(), "That is the mean loss itself; perplexity is its exponential."),
            (lambda: 2 ** ((L * M).sum() / M.sum()), "The losses are in nats (natural log): use exp, not 2**."),
        ], default="Perplexity = exp(sum of losses at real tokens / number of real tokens).")
        c.fail(f"{label} returned {got!r}. {advice}")
    label = "masked_perplexity([[3.0, 1.0]], mask=[[0, 0]])"
    try:
        got = c.call(fn, [[3.0, 1.0]], [[0, 0]], label=label)
    except Raised as e:
        if "ValueError" not in str(e):
            c.fail(f"{label} should raise ValueError (no real token: no perplexity), but {e}")
    else:
        c.fail(f"{label} returned {got!r}; with no real token there is no perplexity: raise ValueError.")
    return f"{len(cases)} fresh padded batches (lists and arrays), pooled over real tokens only; an all-padding batch refused."


ex2 = CodingExercise(
    "ex2", LAB, names="masked_perplexity", checker=_check_masked_perplexity, points=2,
    refuses=("synthkit.train.tiny.perplexity", "synthkit.train.tiny.token_losses",
             "synthkit.train.tiny.text_perplexities"),
    title="Perplexity from token losses, with padding masked",
    hints=[
        "Perplexity is exp of the mean loss per real token. The mean runs over every real token of every "
        "row together (pooled), not row by row; padding positions (mask 0) carry junk values.",
        "np.asarray turns the lists into arrays; (losses * mask).sum() is the total loss of real tokens and "
        "mask.sum() is how many there are. Check the count before dividing.",
        "Watch for junk that is inf or nan at padding in real pipelines: np.where(mask > 0, losses, 0.0) "
        "drops it where multiplying by 0 would not (inf * 0 is nan).",
    ],
)


# --- exercise 3: mix_by_tokens -----------------------------------------------------------------
def _docs(rng, n, base, longest=40):
    """n documents of token ids (base + 0..499), each with its own first token, so that a
    cut piece can only be the start of the document it was cut from."""
    return [[base + first] + [base + rng.randrange(500) for _ in range(rng.randint(0, longest - 1))]
            for first in rng.sample(range(500), n)]


def _check_mix(c) -> str:
    fn = c.get("mix_by_tokens", callable_=True)
    rng = c.rng
    cases = []
    for _ in range(14):
        real, synth = _docs(rng, rng.randint(1, 30), 0), _docs(rng, rng.randint(1, 12), 1000)
        total = sum(map(len, real)) + sum(map(len, synth))
        budget = rng.choice((rng.randint(1, 60), rng.randint(1, total), rng.randint(total, 4 * total)))
        share = rng.choice((0.5, 0.0, 1.0, round(rng.random(), 3), 0.25))
        cases.append((real, synth, budget, share))
    cases.append((_docs(rng, 5, 0), _docs(rng, 3, 1000), 0, 0.5))
    for _ in range(2):  # many short documents on both sides: an unshuffled mix shows
        real, synth = _docs(rng, 30, 0, longest=6), _docs(rng, 20, 1000, longest=6)
        cases.append((real, synth, 120, 0.5))
    grouped = eligible = 0
    for real, synth, budget, share in cases:
        seed = rng.randint(0, 99)
        label = f"mix_by_tokens(<{len(real)} real docs>, <{len(synth)} synthetic docs>, budget={budget}, share={share}, seed={seed})"
        got = c.call(fn, real, synth, budget, share, seed, label=label)
        if not isinstance(got, list) or not all(isinstance(d, list) for d in got):
            c.fail(f"{label} returned {show_input(got, 60)}; return a list of documents, each a list of token ids.")
        got = [list(d) for d in got]
        n_synth = sum(len(d) for d in got if d and d[0] >= 1000)
        if sum(map(len, got)) != budget:
            c.fail(f"{label}: the documents hold {sum(map(len, got))} tokens in all; the budget is {budget}. "
                   f"Cut the last document taken from each source so the counts come out exact.")
        if n_synth != round(share * budget):
            c.fail(f"{label}: {n_synth} synthetic tokens; the share asks for round(share x budget) = "
                   f"{round(share * budget)}. Fill the synthetic quota first, the real one with the rest.")
        if any(not d for d in got):
            c.fail(f"{label} returned an empty document; leave out what holds no token.")
        for source, name in ((real, "real"), (synth, "synthetic")):
            mine = [d for d in got if (d[0] >= 1000) == (name == "synthetic")]
            uses = Counter()
            whole = {tuple(s): i for i, s in enumerate(source)}
            cut = []
            for d in mine:
                if tuple(d) in whole:
                    uses[whole[tuple(d)]] += 1
                elif any(s[:len(d)] == d for s in source):
                    cut.append(d)
                else:
                    c.fail(f"{label}: {show_input(d, 50)} is not a {name} document nor the start of one.")
            if len(cut) > 1:
                c.fail(f"{label}: {len(cut)} {name} documents are cut short; only the last one taken "
                       f"from a source may be cut to fit.")
            if mine:
                counts = [uses.get(i, 0) for i in range(len(source))]
                if max(counts) - min(counts) > 1:
                    c.fail(f"{label}: one {name} document is used {max(counts)} times and another "
                           f"{min(counts)}; use every document once before repeating any (epoch by epoch).")
        again = c.call(fn, real, synth, budget, share, seed, label=label)
        if [list(d) for d in again] != got:
            c.fail(f"{label} gave a different mix the second time; draw the order with random.Random(seed).")
        kinds = [d[0] >= 1000 for d in got]
        if min(sum(kinds), len(kinds) - sum(kinds)) >= 5:  # a shuffle leaves these grouped with p < 1%
            eligible += 1
            grouped += kinds in (sorted(kinds), sorted(kinds, reverse=True))
    if eligible >= 2 and grouped == eligible:
        c.fail("Every mix returned all documents of one source before the other's: shuffle the combined list, "
               "or a model trained in order sees all the real text, then all the synthetic text.")
    real, synth, budget, share = cases[-1]
    label = f"mix_by_tokens(<{len(real)} real docs>, <{len(synth)} synthetic docs>, budget={budget}, share={share})"
    got = c.call(fn, real, synth, budget, share, label=label)
    if not isinstance(got, list) or [list(d) for d in got] != [list(d) for d in c.call(fn, real, synth, budget, share, 0, label=label)]:
        c.fail(f"{label}, called without a seed, gave a different mix from the same call with seed=0; "
               f"the signature's default is seed=0.")
    label = "mix_by_tokens(real, [], budget=100, share=0.5, seed=0)"
    try:
        got = c.call(fn, _docs(rng, 3, 0), [], 100, 0.5, 0, label=label)
    except Raised as e:
        if "ValueError" not in str(e):
            c.fail(f"{label} should raise ValueError (no synthetic text to fill a quota of 50), but {e}")
    else:
        c.fail(f"{label} returned a mix; with no synthetic documents a quota of 50 tokens cannot be met: "
               f"raise ValueError.")
    return f"{len(cases)} fresh mixes: exact budgets and shares, whole epochs, one cut per source, seeded."


ex3 = CodingExercise(
    "ex3", LAB, names="mix_by_tokens", checker=_check_mix, points=3,
    refuses=("synthkit.pretrain.mix", "synthkit.pretrain.mix_ids", "synthkit.pretrain._take"),
    title="A data mixer that hits an exact synthetic share of a token budget",
    hints=[
        "Two quotas: synthetic = round(share * budget) tokens, real = budget minus that. Fill each from its "
        "own source with one helper, then put the two lists together and shuffle them.",
        "The helper walks the source in a random order (rng.sample(range(len(docs)), len(docs))), takes "
        "whole documents while they fit, and cuts the one that would overflow to the tokens still needed. "
        "If the quota is not filled after a whole pass, start another pass in a new random order.",
        "Use one rng = random.Random(seed) for everything, so the same seed gives the same mix. A quota of "
        "zero takes nothing; a positive quota with no tokens in the source is a ValueError.",
    ],
)


# --- essay 1 -------------------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="How far can synthetic pretraining go?",
    prompt="""
        phi-1 was pretrained mostly on filtered web code with a synthetic minority; phi-1.5 was the
        first Phi model whose corpus was mostly synthetic. The chapter ends on an open question: could
        a large model be pretrained entirely on text that other models wrote, and match the same
        architecture trained on human text? Argue a position using what you measured here: which
        held-out text each arm of your perplexity matrix was good and bad at, what aiming the teacher
        at the weakest subject did, and what the quality filters bought at equal steps. Then say what
        would have to be true of the teacher, the curriculum and the filters for a 100%-synthetic run
        at scale to work, and which measurement would convince you that it had (or had not).
    """,
    hints=["Start from the off-diagonal cells of the perplexity matrix and the paired test printed under them: "
           "is the synthetic-only model clearly worse on real text than the real-only model, and by how much? "
           "Then quote the difference in differences from part 5 and both filter tests from part 6."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine); the numbers are the
        student's own run, quoted from the printed paired tests, not from a fixed expectation:
        - What the papers did: phi-1 (Gunasekar et al. 2023, a 1.3B code model) learned mostly from about
          6B tokens of web code kept by a classifier trained on GPT-4 ratings, plus under 1B tokens of
          GPT-3.5 textbooks and a fine-tuning pass on about 180M tokens of synthetic exercises. Only
          phi-1.5 (Li et al. 2023) made synthetic text the majority (about 20B tokens beside phi-1's 7B),
          judged on benchmarks rather than on modelling human text. Neither trained on synthetic text alone.
        - The matrix: the paired test on held-out real text says whether the synthetic-only model is
          clearly worse there than the real-only model (the sceptical case) and by how much (exp of the
          mean is the per-text perplexity ratio); the reverse test gives the cost on the teacher's text.
          The two costs come from different texts, so their sizes are compared, not tested.
        - Curriculum control: the difference in differences on the test half (weak subject chosen on the
          validation half, so regression to the mean cannot make the cure look good). Clearly negative:
          the aim helped beyond synthetic text in general; unclear: the run cannot tell the aim from noise,
          and with a weak teacher it can help real text only as far as its passages resemble real writing.
        - Filters at equal steps: quote both paired tests; rules about lists, preambles and loops judge form,
          so one would expect them to matter more for the synthetic evaluation than for the real one, and the
          answer says whether the run agreed.
        - The tests cover the draw of held-out texts, not the training seed: a convincing claim needs reruns.
        - At scale it needs: a teacher much stronger and broader than the student, a curriculum broad enough
          to cover the natural distribution's long tail (not only textbook topics), diversity controls
          (styles, personas, seeds from real documents), and decontamination against evals.
        - Convincing evidence: held-out human text from many domains (not textbook-shaped benchmarks), long-
          tail coverage, and open-ended tasks, compared at equal compute and over seeds with a web-trained twin.
    """,
)


# --- the concept check ---------------------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Why does this lab train its own 4,096-token BPE tokenizer instead of using the teacher's "
             "49,152-token vocabulary?",
             ["The teacher's tokenizer cannot encode Wikipedia text, only chat messages",
              "With a width of 128, a 49k-entry embedding alone would hold about 6M weights, most of the model",
              "A smaller vocabulary always gives a lower perplexity on the same text, which flatters the model",
              "Byte-level BPE needs exactly 4,096 entries, one for each pair of bytes"],
             answer=1,
             why="49,152 x 128 is about 6.3M numbers, several times the whole 1.3M-parameter transformer. "
                 "Perplexities are only comparable between models that share a tokenizer, so every arm "
                 "of the lab uses the same one."),
    Question("Two models are trained with the same tokenizer. Model A's mean token loss on held-out real text "
             "is 4.0 nats and model B's is 4.5. What are their perplexities, roughly?",
             ["A 55, B 90", "A 4.0, B 4.5", "A 16, B 23", "A 90, B 55"],
             answer=0,
             why="Perplexity is exp(mean loss): e^4.0 is about 55 and e^4.5 about 90. Half a nat of loss is a "
                 "factor of e^0.5, about 1.65, in perplexity."),
    Question("The sceptical case says a model pretrained on synthetic text is good at what its teacher's "
             "text looks like. Which cell of the perplexity matrix tests that most directly?",
             ["The real-only model on held-out real text, compared with its own training loss at the last step",
              "The synthetic-only model on held-out real text, against the real-only model on the same text",
              "The mixed model on held-out synthetic text, compared with the teacher's own perplexity",
              "The synthetic-only model on held-out synthetic text, against its own training loss"],
             answer=1,
             why="The claim is about transfer to the natural distribution: same budget, same tokenizer, "
                 "evaluated on real text the model never saw. The diagonal cells only show fit to one's own data."),
    Question("A mix has a budget of 200,000 tokens and a synthetic share of 30%, but the synthetic corpus "
             "holds only 20,000 tokens. What does an exact-share mixer do?",
             ["Lowers the share to 10% so that no synthetic document is repeated",
              "Fills the missing synthetic tokens with extra real text, so that the token budget is still met exactly",
              "Uses every synthetic document three times (60,000 tokens) and fills 140,000 with real text",
              "Refuses: a share above the synthetic corpus's size is an error"],
             answer=2,
             why="The share is the experiment's variable, so it is kept: 60,000 synthetic tokens means three "
                 "epochs over the small corpus. Repetition is then part of what the arm measures."),
    Question("What does 'curriculum control' mean in this lab?",
             ["Sorting the training documents from easy to hard before each epoch",
              "Raising the learning rate on the subjects with the highest loss",
              "Removing the worst subject from the held-out set, so that it can no longer drag the average perplexity up",
              "Generating extra passages on the subject the model is worst at, and retraining with them mixed in"],
             answer=3,
             why="Web text gives what people happened to write; a teacher can be pointed at a chosen subject. "
                 "The lab measures, on held-out text that played no part in choosing the subject, whether the "
                 "targeted arm beats an untargeted arm on that subject by more than on the others."),
    Question("At equal training steps, why can a filtered, smaller synthetic corpus lose to the unfiltered, "
             "larger one on held-out real text?",
             ["Filtering changes the tokenizer's vocabulary, so the two perplexities are no longer comparable",
              "The small set is repeated more often in the same steps, and the filters judge form, not "
              "closeness to real text",
              "Filters remove every passage that mentions its own topic, so the model never sees topic words",
              "Quality filters always lower perplexity on real text, so it cannot lose"],
             answer=1,
             why="Equal steps means equal tokens seen; the smaller set is seen more times over. Rules about "
                 "lists, preambles and loops clean the form of the text, which need not move real-text perplexity."),
    Question("What was phi-1 ('Textbooks Are All You Need', 2023) pretrained on?",
             ["About 20B tokens of synthetic textbooks on general topics, with no web data of any kind",
              "About 6B tokens of web code kept by a GPT-4-taught classifier, plus about 1B synthetic tokens",
              "All of The Stack, unfiltered, then a fine-tuning pass on GPT-3.5's textbooks and exercises",
              "Only synthetic Python exercises with their solutions: about 180M tokens written by GPT-3.5"],
             answer=1,
             why="phi-1's corpus was mostly real, filtered code (The Stack and StackOverflow, chosen by a "
                 "classifier trained on GPT-4's ratings of educational value) plus under 1B tokens of GPT-3.5 "
                 "textbooks; the 180M tokens of exercises were a fine-tuning step afterwards. The ~20B-token "
                 "synthetic corpus came with phi-1.5."),
    Question("Part 5 picks the weakest subject on the validation half of the held-out text and judges the "
             "targeted arm on the test half. Why not use one set of texts for both?",
             ["The test half holds more texts of each subject, so only its perplexities are precise "
              "enough to use",
              "Its texts may have been hard by luck; judged on those same texts it would look better "
              "after any change",
              "The tokenizer was trained on the validation half, so its perplexities are biased downwards",
              "The teacher's targeted passages are written about the validation half's titles, so they leak"],
             answer=1,
             why="Regression to the mean: picking the maximum of noisy measurements picks some noise too, and "
                 "that noise does not repeat on fresh texts. The test half played no part in the choice."),
    Question("On the test half, the targeted arm's mean loss per token is 0.10 nats below the untargeted arm's "
             "on the weak subject, and 0.04 nats below it on the other subjects. What is the difference in "
             "differences, and what does it say?",
             ["-0.14 nats: the two gains add up, so the targeted arm is better by 0.14 overall",
              "-0.06 nats: the aim helped the weak subject 0.06 nats per token more than the others",
              "-0.10 nats: once an arm is targeted, the other subjects no longer enter the comparison",
              "+0.06 nats: the other subjects gained more than the weak subject did from the aim"],
             answer=1,
             why="(-0.10) - (-0.04) = -0.06. Both differences already subtract the untargeted control, so "
                 "synthetic text in general cancels; subtracting the other subjects' change leaves the aim. "
                 "Whether -0.06 is more than noise is the paired test's job."),
])
