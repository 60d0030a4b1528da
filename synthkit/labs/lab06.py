"""Lab 06 — Distillation: three exercises, one essay and a concept check.

Used by ``labs/06_distillation.ipynb``::

    from synthkit.labs.lab06 import ex1, ex2, ex3, essay1, quiz

The checks need no model: they call the student's functions on fresh random logits and
fresh fake weight tables, compare with exact float64 references, and name the usual slips
(a missing T², the reverse KL in place of Hinton's, log-probabilities where probabilities belong,
a temperature on one side only, an average over the wrong axis, renormalising over the
wrong set, the "layers.1" prefix that also matches "layers.10").
"""
from __future__ import annotations

import math

import numpy as np

from ..grading.checks import is_int, is_number, name_the_slip
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz

LAB = "06"
TITLE = "Distillation: a smaller student learns from the teacher's answers and its distribution"
NOTEBOOK = "06_distillation.ipynb"


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _kl(log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """KL(p || q) per row."""
    return (np.exp(log_p) * (log_p - log_q)).sum(-1)


# --- exercise 1: the temperature-scaled KD loss ---------------------------------------------
def reference_kd_loss(student_logits, teacher_logits, temperature) -> float:
    """Hinton et al. (2015), transcribed: T² · KL(softmax(z_t/T) || softmax(z_s/T)),
    summed over the vocabulary, averaged over rows; in float64."""
    t = float(temperature)
    s, z = np.asarray(student_logits, np.float64), np.asarray(teacher_logits, np.float64)
    return float(t * t * _kl(_log_softmax(z / t), _log_softmax(s / t)).mean())


def _kd_slips(s, z, t):
    """(what a slip gives, the advice) for the usual ways to get the KD loss wrong."""
    lp, lq = _log_softmax(z / t), _log_softmax(s / t)
    rows, vocab = s.shape
    kl = _kl(lp, lq)
    return [
        (lambda: float(kl.mean()),
         "That is the KL without the T² factor. Hinton et al. multiply by T² because, at high "
         "temperature, the softened loss's gradient shrinks like 1/T²; their loss includes the factor."),
        (lambda: float(t * kl.mean()),
         "That is the KL times T, not T². At high temperature the gradient shrinks like 1/T² (one 1/T "
         "from the softmax's derivative, one from the distributions flattening), so Hinton et al. scale by T²."),
        (lambda: float(t * t * _kl(lq, lp).mean()),
         "That is KL(student || teacher), the reverse KL. It is a loss in its own right (MiniLLM and GKD "
         "use it to distil language models), but it is not Hinton et al.'s, which this exercise asks for: "
         "the forward KL averages over what the *teacher* thinks likely, "
         "Σ p_teacher · (log p_teacher − log p_student)."),
        (lambda: float(t * t * (np.exp(lp) * (lp - np.exp(lq))).sum(-1).mean()),
         "The student's side went in as probabilities where log-probabilities belong (this is what "
         "F.kl_div(softmax(...), ...) computes: its first argument must be log_softmax)."),
        (lambda: float(t * t * _kl(lp, _log_softmax(s)).mean()),
         "The temperature softened the teacher only: divide the student's logits by T as well."),
        (lambda: float(t * t * _kl(_log_softmax(z), lq).mean()),
         "The temperature softened the student only: divide the teacher's logits by T as well."),
        (lambda: float(t * t * _kl(_log_softmax(z), _log_softmax(s)).mean()),
         "No temperature was applied to either side (only the T² factor): divide both sets of logits by T."),
        (lambda: float(t * t * kl.sum()),
         "That is the sum over positions: average the per-position KL over the rows instead."),
        (lambda: float(t * t * kl.mean() / vocab),
         "That averages over the vocabulary too (F.kl_div's reduction='mean' does this): the KL is a sum "
         "over the vocabulary, then a mean over positions (reduction='batchmean' for 2-D inputs)."),
        (lambda: float(t * t * _kl(_log_softmax((z / t).T).T, _log_softmax((s / t).T).T).mean()),
         "The softmax ran over the wrong axis: each row (position) is a distribution over the columns "
         "(the vocabulary)."),
    ]


def _kd_cases(rng):
    cases = []
    for _ in range(10):
        rows, vocab = rng.randint(2, 6), rng.randint(7, 60)
        scale = rng.choice((1.0, 3.0, 8.0))
        t = rng.choice((0.5, 2.0, 3.0, 4.0, 1.5))
        cases.append((rows, vocab, scale, t, "random logits"))
    cases.append((3, 11, 4.0, 1.0, "T = 1"))
    cases.append((4, 9, 2.0, 2.0, "the student equals the teacher"))
    cases.append((2, 40, 30.0, 2.0, "large logits (softmax must not overflow)"))
    rng.shuffle(cases)
    return cases


def _check_kd_loss(c) -> str:
    fn = c.get("kd_loss", callable_=True)
    nrng = np.random.default_rng(c.rng.randrange(2**32))
    cases = _kd_cases(c.rng)
    for rows, vocab, scale, t, probe in cases:
        z = nrng.normal(0, scale, (rows, vocab))
        s = z.copy() if probe.startswith("the student equals") else nrng.normal(0, scale, (rows, vocab))
        if probe.startswith("large"):
            z, s = z + 500.0, s + 500.0
        label = f"kd_loss(student_logits, teacher_logits, {t}) on {rows} x {vocab} logits ({probe})"
        got = c.call(fn, s.copy(), z.copy(), t, label=label)
        if hasattr(got, "item") and getattr(got, "shape", None) in ((), [], (1,)):
            c.fail(f"{label} returned {type(got).__name__} {show_input(got, 40)}; return a plain float "
                   f"(loss.item() for a torch tensor, float(x) for NumPy).")
        if not is_number(got):
            c.expect_type(got, float, label)
        want = reference_kd_loss(s, z, t)
        if not math.isfinite(float(got)):
            c.fail(f"{label} returned {got!r}. A nan usually means log of a negative number: F.kl_div's "
                   f"target must be probabilities (or pass log_target=True with log-probabilities); an inf "
                   f"means exp() overflowed: use log_softmax, which subtracts the row maximum first.")
        if abs(float(got) - want) <= 1e-5 * max(1.0, abs(want)):
            continue
        advice = name_the_slip(float(got), _kd_slips(s, z, t),
                               same=lambda a, b: math.isfinite(b) and abs(a - b) <= 1e-5 * max(1.0, abs(b)),
                               default="Compute log_softmax of both sets of logits divided by T (rows are "
                                       "positions, columns the vocabulary), then Σ p_t (log p_t − log p_s) "
                                       "per row, the mean over rows, times T².")
        c.fail(f"{label} returned {float(got):.6g}, which is not T² · KL(teacher || student). {advice}")
    return (f"{len(cases)} fresh cases (temperatures from 0.5 to 4, large logits, identical models) agree "
            f"with Hinton et al.'s formula to 1e-5.")


ex1 = CodingExercise(
    "ex1", LAB, names="kd_loss", checker=_check_kd_loss, points=3,
    refuses=("synthkit.train.kd.kd_loss", "synthkit.train.kd.sparse_kd_loss", "synthkit.train.kd._kl_rows"),
    title="The distillation loss: KL to the softened teacher, times T²",
    hints=[
        "Rows are positions and columns the vocabulary. Soften both sides with the same temperature: "
        "divide both sets of logits by T before the (log-)softmax over the last axis.",
        "The KL from the teacher p to the student q is Σ p · (log p − log q) over the vocabulary, so "
        "work with log-probabilities: log_softmax is stable where log(softmax(...)) can give log 0. "
        "Then average over the rows and multiply by T·T.",
        "With torch: F.kl_div(input, target, reduction=...) computes Σ target · (log target − input); "
        "which of your two distributions is `input`, in what form, and which reduction averages over "
        "rows only? Return loss.item().",
    ],
)


# --- exercise 2: renormalising the teacher's top k ------------------------------------------
def reference_top_k(scores, k):
    """(ids best first, log-probs renormalised over the kept k), float64."""
    scores = np.asarray(scores, np.float64)
    ids = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    kept = np.take_along_axis(scores, ids, -1)
    return ids, _log_softmax(kept)


def _as_array(c, value, label: str, what: str, dtype_kind: str):
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001
        arr = None
    if arr is None or arr.dtype == object or arr.dtype.kind not in dtype_kind:
        c.fail(f"{label}: the {what} should be an array (or nested lists) of numbers; got {show_input(value, 50)}.")
    return arr


def _check_top_k(c) -> str:
    fn = c.get("top_k_renormalised", callable_=True)
    nrng = np.random.default_rng(c.rng.randrange(2**32))
    cases = []
    for _ in range(8):
        vocab = c.rng.randint(6, 80)
        cases.append((c.rng.randint(1, 5), vocab, c.rng.randint(2, vocab - 1), "random logits"))
    cases += [(2, 12, 1, "k = 1"), (3, 9, 9, "k = the whole vocabulary"),
              (2, 30, 5, "full-vocabulary log-probabilities as input (llama.cpp's kind)"),
              (2, 20, 4, "large logits (around 1000: exp overflows unless the row's max is taken off)")]
    c.rng.shuffle(cases)
    for rows, vocab, k, probe in cases:
        scores = nrng.normal(0, c.rng.choice((1.0, 4.0)), (rows, vocab))
        if probe.startswith("full-vocabulary"):
            scores = _log_softmax(scores)
        if probe.startswith("large"):
            scores = scores + 1000.0
        label = f"top_k_renormalised(<{rows} x {vocab} {'log-probs' if 'log-prob' in probe else 'logits'}>, k={k})"
        got = c.call(fn, scores.copy(), k, label=label)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            c.fail(f"{label} returned {show_input(got, 50)}; return a pair (ids, logprobs).")
        ids = _as_array(c, got[0], label, "ids", "iu")
        lps = _as_array(c, got[1], label, "log-probabilities", "f")
        if ids.shape != (rows, k) or lps.shape != (rows, k):
            extra = " (one row per position, k columns)"
            if ids.shape[-1:] in ((k + 1,), (k - 1,)) if ids.ndim == 2 else False:
                extra = f": {ids.shape[-1]} columns instead of k={k} (an off-by-one in the slice?)"
            c.fail(f"{label} returned arrays of shapes {ids.shape} and {lps.shape}; both should be "
                   f"({rows}, {k}){extra}.")
        want_ids, want_lps = reference_top_k(scores, k)
        for r in range(rows):
            if set(ids[r].tolist()) != set(want_ids[r].tolist()):
                if set(ids[r].tolist()) == set(np.argsort(scores[r])[:k].tolist()):
                    c.fail(f"{label}: row {r} kept the k *least* likely tokens; keep the k largest scores.")
                c.fail(f"{label}: row {r}'s ids are not the k tokens with the largest scores.")
            if ids[r].tolist() != want_ids[r].tolist():
                c.fail(f"{label}: row {r} has the right tokens in the wrong order; list them best first.")
        if not np.all(np.isfinite(lps)):
            c.fail(f"{label}: some log-probabilities are not finite ({lps[~np.isfinite(lps)][0]}); exp of a "
                   f"score near 1000 overflows. Subtract each row's largest kept score before exp.")
        total = np.log(np.exp(lps.astype(np.float64)).sum(-1))
        tol = 1e-3 if probe.startswith("large") else 1e-5  # float32 keeps ~1e-4 of a score near 1000
        if not np.allclose(lps, want_lps, atol=tol):
            full = np.take_along_axis(_log_softmax(scores), want_ids, -1)
            if np.allclose(lps, full, atol=1e-5) and k < vocab:
                c.fail(f"{label}: these are log-probabilities under the whole vocabulary, so their "
                       f"probabilities sum to {np.exp(total[0]):.3f}, not 1, in row 0. Renormalise over the "
                       f"kept k only.")
            if np.all(lps >= 0) and np.allclose(lps.sum(-1), 1, atol=1e-5):
                c.fail(f"{label}: these look like probabilities (they sum to 1); return log-probabilities.")
            if np.allclose(lps, np.take_along_axis(scores, want_ids, -1), atol=1e-6):
                c.fail(f"{label}: these are the raw scores of the kept tokens; subtract their log-sum-exp.")
            if np.allclose(total, 0, atol=1e-5):
                c.fail(f"{label}: the kept probabilities sum to 1, but they are not proportional to "
                       f"exp(score): renormalising must keep the differences between kept scores.")
            c.fail(f"{label}: the log-probabilities are not log_softmax over the kept k scores "
                   f"(row 0's probabilities sum to {np.exp(total[0]):.4f}).")
        shift = nrng.normal(0, 5, (rows, 1))
        again = c.call(fn, scores + shift, k, label=label + " + a constant per row")
        if not np.allclose(np.asarray(again[1], np.float64), want_lps, atol=tol):
            c.fail(f"{label}: adding a constant to every score of a row changed your log-probabilities; "
                   f"a softmax does not depend on such a shift, so neither should the answer.")
    return (f"{len(cases)} fresh cases (k = 1 up to the whole vocabulary, logits or log-probabilities "
            f"as input) keep the right tokens, best first, renormalised over the kept k.")


ex2 = CodingExercise(
    "ex2", LAB, names="top_k_renormalised", checker=_check_top_k, points=2,
    refuses=("synthkit.train.kd.top_k_log_probs", "synthkit.train.kd.renormalise"),
    title="Keep the teacher's top k, renormalised",
    hints=[
        "Per row (position): the ids of the k largest scores, largest first (np.argsort of the negated "
        "scores, or torch.topk). Then take those k scores.",
        "Renormalise over the kept k: log p_i = s_i − log Σ_j exp(s_j), the sum over the kept k only. "
        "Subtract the row maximum before exp so nothing overflows (or use scipy/torch logsumexp).",
    ],
)


# --- exercise 3: which teacher layers, and copying them -------------------------------------
_PARTS = ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
          "mlp.down_proj.weight", "post_attention_layernorm.weight",
          "layer_scale")  # a parameter of the decoder layer itself: 'model.layers.<i>.layer_scale', 4 parts


def _fake_state(nrng, n: int) -> dict:
    """A teacher's weight table in transformers' names, with small random arrays."""
    state = {"model.embed_tokens.weight": nrng.normal(size=(7, 3))}
    for i in range(n):
        for part in _PARTS:
            state[f"model.layers.{i}.{part}"] = nrng.normal(size=(3,)) + i
    state["model.norm.weight"] = nrng.normal(size=(3,))
    state["lm_head.weight"] = nrng.normal(size=(7, 3))
    return state


def _check_layers(c) -> str:
    pick = c.get("pick_layers", callable_=True)
    copy = c.get("copy_layers", callable_=True)
    pairs = [(30, 6), (12, 4), (2, 2), (7, 7), (10, 2)]
    pairs += [(n, c.rng.randint(2, n)) for n in (c.rng.randint(3, 48) for _ in range(10))]
    for n, k in pairs:
        label = f"pick_layers({n}, {k})"
        got = c.call(pick, n, k, label=label)
        if not isinstance(got, (list, tuple)) or not all(is_int(i) for i in got):
            c.fail(f"{label} returned {show_input(got, 50)}; return a list of layer numbers (ints).")
        got = [int(i) for i in got]
        if len(got) != k:
            c.fail(f"{label} returned {len(got)} layers; keep exactly k = {k}.")
        if any(i < 0 or i >= n for i in got):
            c.fail(f"{label} returned {got}: a teacher with {n} layers numbers them 0 to {n - 1} "
                   f"(np.linspace(0, n, k) runs one past the end).")
        if any(b <= a for a, b in zip(got, got[1:])):
            c.fail(f"{label} returned {got}; the layers must be distinct and in increasing order.")
        if got[0] != 0 or got[-1] != n - 1:
            c.fail(f"{label} returned {got}; keep the first layer (0) and the last ({n - 1}), the two "
                   f"that talk to the embeddings and to the output layer.")
        gaps = [b - a for a, b in zip(got, got[1:])]
        if gaps and max(gaps) - min(gaps) > 1:
            c.fail(f"{label} returned {got}, whose gaps run from {min(gaps)} to {max(gaps)}; spread the "
                   f"layers evenly (gaps that differ by at most one).")
    nrng = np.random.default_rng(c.rng.randrange(2**32))
    trials = []
    for _ in range(6):
        n = c.rng.randint(12, 24)  # at least 12 layers: 'layers.1' is then a prefix of 'layers.10'
        k = c.rng.randint(2, 6)
        keep = sorted(c.rng.sample(range(n), k))
        if 1 not in keep and c.rng.random() < 0.7:
            keep = sorted(set(keep[1:]) | {1})
        trials.append((n, keep))
    for n, keep in trials:
        state = _fake_state(nrng, n)
        label = f"copy_layers(<a {n}-layer teacher's weights>, {keep})"
        got = c.call(copy, dict(state), list(keep), label=label)
        if not isinstance(got, dict):
            c.fail(f"{label} returned {show_input(got, 50)}; return a dict from names to weights.")
        want = {k: v for k, v in state.items() if ".layers." not in k}
        for j, i in enumerate(keep):
            want.update({f"model.layers.{j}.{p}": state[f"model.layers.{i}.{p}"] for p in _PARTS})
        for name in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
            if name not in got:
                c.fail(f"{label} has no {name!r}: the student keeps every weight that is not in a layer "
                       f"(embeddings, the final norm, the output layer), as it is.")
        numbers = {int(k.split(".")[2]) for k in got if k.startswith("model.layers.") and k.split(".")[2].isdigit()}
        if numbers == set(keep) and keep != list(range(len(keep))):
            c.fail(f"{label} kept the teacher's layer numbers; the student's layers are numbered 0 to "
                   f"{len(keep) - 1}: teacher layer keep[j] becomes student layer j.")
        extra = sorted(set(got) - set(want))
        short = [k for k in extra if k in state and len(k.split(".")) == 4]
        if short:
            c.fail(f"{label} kept {short[0]!r} under the teacher's name, as if it were outside the layers. "
                   f"It is a weight the teacher's layer holds itself ('model.layers.<number>.<rest>' with a "
                   f"one-part rest): renumber or drop it with that layer's other weights.")
        if extra:
            prefix = (" Does a test like name.startswith('model.layers.1') also match 'model.layers.10...'? "
                      "Compare the layer number as a number." if ".layers." in extra[0] else "")
            c.fail(f"{label} has names the student does not have, e.g. {extra[0]!r} (a {len(keep)}-layer "
                   f"student has layers 0 to {len(keep) - 1}).{prefix}")
        missing = sorted(set(want) - set(got))
        if missing:
            c.fail(f"{label} lacks {missing[0]!r}.")
        for name, value in want.items():
            if not np.array_equal(np.asarray(got[name]), value):
                m = name.split(".")
                hint = ""
                if ".layers." in name:
                    j = int(m[2])
                    source = next((i for i in range(n) if np.array_equal(np.asarray(got[name]),
                                                                         state[name.replace(f'.{j}.', f'.{i}.', 1)])), None)
                    if source is not None:
                        hint = (f" It holds teacher layer {source}'s weights, not layer {keep[j]}'s"
                                + (": does a test like name.startswith('model.layers.1') also match "
                                   "'model.layers.10...'? Compare the layer number as a number."
                                   if str(source).startswith(str(keep[j])) else "."))
                c.fail(f"{label}: {name!r} is not the teacher's weight it should be.{hint}")
    return (f"{len(pairs)} (n, k) pairs give evenly spaced layers with both ends kept, and {len(trials)} "
            f"fresh weight tables of 12 to 24 layers (including weights a layer holds itself, "
            f"'model.layers.<i>.layer_scale') are copied under the right names.")


EQUIVALENT_MUTANTS = {"ex1": {
    "kl = (log_p.exp() * (log_p - log_q)).sum(-1) :: `-` dropped":
        "the exercise's logits are 2-D (positions x vocabulary), where dim 1 and dim -1 are the same axis",
    "log_q = F.log_softmax(s / T, dim=-1) :: `-` dropped":
        "the exercise's logits are 2-D (positions x vocabulary), where dim 1 and dim -1 are the same axis",
    "log_p = F.log_softmax(t / T, dim=-1) :: `-` dropped":
        "the exercise's logits are 2-D (positions x vocabulary), where dim 1 and dim -1 are the same axis",
}, "ex2": {
    "ids = np.argsort(-scores, axis=-1)[:, :k] :: `-` dropped #2":
        "the exercise's scores are 2-D (positions x vocabulary), where axis 1 and axis -1 are the same axis",
    "kept = np.take_along_axis(scores, ids, axis=-1) :: `-` dropped":
        "the exercise's scores are 2-D (positions x vocabulary), where axis 1 and axis -1 are the same axis",
    "kept = kept - kept.max(axis=-1, keepdims=True) :: `-` dropped":
        "the exercise's scores are 2-D (positions x vocabulary), where axis 1 and axis -1 are the same axis",
    "logprobs = kept - np.log(np.exp(kept).sum(axis=-1, keepdims=True)) :: `-` dropped":
        "the exercise's scores are 2-D (positions x vocabulary), where axis 1 and axis -1 are the same axis",
}, "ex3": {
    'if len(parts) > 3 and parts[0] == "model" and parts[1] == "layers": :: `>` -> `>=`':
        "only a 3-part name 'model.layers.X' could tell them apart, and none exists: model.layers is a "
        "ModuleList, which holds no weights of its own, so every weight under it is model.layers.<i>.<rest>",
    'if len(parts) > 3 and parts[0] == "model" and parts[1] == "layers": :: 3 -> 2':
        "same as `>` -> `>=`: it differs only on a 3-part name 'model.layers.X', which no weight table has "
        "(model.layers is a ModuleList with no weights of its own)",
}}


ex3 = CodingExercise(
    "ex3", LAB, names=("pick_layers", "copy_layers"), checker=_check_layers, points=2,
    refuses=("synthkit.distill.pick_layers", "synthkit.distill.copy_layers"),
    title="A shallower student: which teacher layers, and copying them",
    hints=[
        "pick_layers: k numbers from 0 to n−1, first and last included, as evenly spaced as whole numbers "
        "allow. Layer i of the student sits at the fraction i/(k−1) of the way through the teacher.",
        "copy_layers: weights outside the layers keep their names. A layer weight is named "
        "'model.layers.<number>.<rest>'; split the name on '.' (or use a regular expression) to read "
        "the number as an int, keep the weight only if that number is in `keep`, and rename it with the "
        "number's position in `keep`.",
    ],
)


# --- essay 1 -----------------------------------------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="Is distillation just synthetic data?",
    prompt="""
        The chapter says that most of what people call distillation is training on the teacher's
        chosen answers, which makes it the same shape as Self-Instruct, and that distillation,
        synthetic data and rejection sampling have blurred into one another. Use your comparison
        table: what did the soft targets give the student that the hard targets (the teacher's
        answers alone) did not, what did they cost (storage, compute, access to the teacher), and
        did the extra signal show at the same token budget? Then say when a practitioner can only
        do hard-target distillation (think of what an API returns and what a tokenizer is), and
        whether you would still call that distillation.
    """,
    hints=["Compare the hard and soft rows on KL to the teacher and on perplexity on teacher text, and "
           "look at what soft targets need: the teacher's probabilities over *your* vocabulary at every "
           "token of the training text."],
    solution="""
        Points a strong answer touches on (any well-argued answer is fine):
        - Hard targets give one token per position; soft targets give the teacher's whole ranking,
          including how unsure it was. Whether that extra signal showed at the same number of tokens
          is what the paired lines decide (each arm at its own tuned rate): a soft arm minus hard with
          p < 0.05 and a negative difference means it did; "no clear difference" or a positive one
          means it did not, at this budget. A good answer quotes the lines rather than the chapter.
        - If it did not show, why: Hinton et al.'s case for soft targets is information per example
          that the student can use. If every arm ends several nats per token from the teacher (compare
          the KL with the teacher's own entropy, which the notebook prints), the student cannot yet
          represent most of what the teacher's second and third choices say; when a student cannot
          mimic the teacher, matching its whole distribution buys less (the capacity gap; GKD offers
          other divergences for that case). Comparing soft T=1 with soft T=2 separates "soft vs hard"
          from "which temperature" and from the top-k truncation, which drops more mass at T=2.
        - Costs: the teacher must run over every training token and expose its logits; storing them
          needs top-k truncation (the notebook prints how much of the mass the top 64 kept); the
          student must share the teacher's tokenizer, or the distributions do not line up.
        - An API teacher returns text (at most a few top log-probs), often with another tokenizer: then
          only sequence-level (hard-target) distillation is possible, which is exactly synthetic SFT data.
        - Whether to call it distillation is a framing question: the data pipeline (prompts -> teacher
          answers -> filter -> train) is the same as Self-Instruct or rejection sampling; what differs is
          the intent (compress one model into another) and, with soft targets, the richer signal.
    """,
)


# --- the concept check ---------------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("Why is the softened KL loss multiplied by T² in Hinton et al.'s distillation loss?",
             ["At high T its gradients shrink like 1/T², so T² keeps their scale steady as T changes",
              "T² turns the KL divergence into a cross-entropy, which is what the optimizer needs",
              "Without it the loss could be negative when the teacher is more confident than the student",
              "It undoes the temperature on the teacher's side, so only the student is ever softened"],
             answer=0,
             why="When T is large next to the gaps between logits, each softened probability moves like 1/T and "
                 "the softmax's derivative adds another 1/T: the gradient falls like 1/T², and T² undoes it, "
                 "keeping a mixed-in hard loss in proportion. That is a high-temperature limit: the lab measures "
                 "on its real students how far from it practical temperatures are."),
    Question("Most of what people call distillation of chat models trains the student on what?",
             ["The teacher's hidden states at every layer, matched one layer at a time",
              "The teacher's chosen answers to many prompts, as ordinary fine-tuning data",
              "The teacher's weights, averaged with the student's after every epoch",
              "Human-written answers that the teacher has ranked from best to worst"],
             answer=1,
             why="Sequence-level (hard-target) distillation: SFT on teacher outputs. It is the same "
                 "pipeline as Self-Instruct, framed as a transfer from teacher to student."),
    Question("In this lab the student keeps 6 of the teacher's 30 layers but is not 5 times smaller. Why?",
             ["Each kept layer is made wider to make up for the ones removed",
              "The optimizer's state is stored inside the model and counted as parameters",
              "The 49,152 x 576 embedding table, also the output layer, is kept whole",
              "Attention layers cannot be removed, only the feed-forward parts can"],
             answer=2,
             why="About 28M of the teacher's 135M parameters are the embedding matrix (tied to the output "
                 "layer). It does not shrink with depth, so a 6-layer student still has about 49M."),
    Question("A teacher API returns only generated text (no probabilities) and uses a tokenizer you "
             "do not have. Which distillation can you still do?",
             ["Token-level KL to its distribution, after mapping its tokens to yours one by one",
              "Sequence-level: fine-tune on its answers to your prompts (hard targets)",
              "None: distillation needs the teacher's logits at every position",
              "Only layer copying, since the architecture is all an API reveals"],
             answer=1,
             why="Without probabilities over your vocabulary there is nothing to compute a token-level KL "
                 "against; the teacher's text is still training data."),
    Question("The teacher's top 64 tokens at a position hold 97% of its probability. You keep only those "
             "64 and renormalise. What happens to the loss?",
             ["Nothing changes: the other 3% carry no gradient at any temperature",
              "The student learns a slightly sharper teacher, more so at high T",
              "The loss becomes a cross-entropy on the single most likely token",
              "The student learns to put the missing 3% on the padding token"],
             answer=1,
             why="Renormalising over the kept k scales those probabilities up a little. A higher T flattens "
                 "the full distribution, moving mass into the tail the truncation dropped, so keep more "
                 "tokens (or measure the kept mass) at high temperatures."),
    Question("Which of these is NOT the loss Hinton et al. (2015) train the student with?",
             ["Σ p_teacher · (log p_teacher − log p_student)",
              "Σ p_student · (log p_student − log p_teacher)",
              "T² · Σ p_teacher · (log p_teacher − log p_student), both softened by T",
              "The cross-entropy of p_student under p_teacher, minus the teacher's entropy"],
             answer=1,
             why="That is the reverse KL, KL(student || teacher): weighted by what the student thinks likely, so "
                 "it is mode-seeking and barely charges the student for teacher tokens it leaves out. It is not "
                 "Hinton et al.'s loss, but it is not a mistake either: MiniLLM (Gu et al., 2023) argues for it "
                 "when distilling language models, and GKD (Agarwal et al., 2023) lets you pick among forward, "
                 "reverse and mixed divergences. The last choice is the forward KL rewritten."),
    Question("Each arm of the lab gets its own learning rate, picked on validation answers. Why not simply "
             "give all four arms the same rate?",
             ["A different loss gives gradients of another size and direction, so one rate can suit one arm",
              "The optimizer refuses to reuse a rate once another run has already trained with it",
              "The soft arms need a higher rate because the teacher's top-k targets sum to less than one",
              "Every rate is tuned on the held-out answers, so each arm must be scored on its own copy"],
             answer=0,
             why="A control changes one thing: the question is which signal teaches the student more per step, "
                 "and at one shared rate the arm that rate happens to suit wins. Picking each arm's rate on "
                 "validation answers (never the held-out test answers that decide the verdict) compares each "
                 "loss at its best. The renormalised top-k targets do sum to one."),
])
