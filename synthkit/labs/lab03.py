"""Lab 03 — Magpie: three exercises, one essay and a concept check.

Used by ``labs/03_magpie.ipynb``::

    from synthkit.labs.lab03 import ex1, ex2, ex3, essay1, quiz
"""
from __future__ import annotations

import math
import re
import string
from functools import lru_cache

import numpy as np

from ..grading.checks import first_difference as _first_difference
from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz
from ..metrics import TOPIC_STOP_WORDS

LAB = "03"
TITLE = "Magpie: instructions from an empty prompt"
NOTEBOOK = "03_magpie.ipynb"


def SOLUTION_GLOBALS() -> dict:
    """Names the notebook imports before the exercises, which the reference solutions use
    (for `python -m synthkit.grading.mutants`): ex3 reads TOPIC_STOP_WORDS."""
    return {"TOPIC_STOP_WORDS": TOPIC_STOP_WORDS}


# One-slip mutants of the reference solutions that no allowed input can tell apart from them
# (python -m synthkit.grading.mutants 03 lists the rest, and every one of those fails its check).
EQUIVALENT_MUTANTS = {"ex3": {
    "share_out = sum(w in s for s in outside) / len(outside) if outside else 0.0 :: 0.0 -> 1.0":
        "with no other cluster every word's share outside is the same constant, and taking the same "
        "number off every score leaves their order, the only thing returned, unchanged",
    "share_out = sum(w in s for s in outside) / len(outside) if outside else 0.0 :: 0.0 -> -1.0":
        "as 0.0 -> 1.0: a constant added to every word's score cannot change their order",
}}


# --- exercise 1: the pre-query prefix of any chat template ----------------------------
@lru_cache(maxsize=1)
def _smollm2_template() -> tuple[str, str]:
    """The teacher's own template and BOS token, read from the GGUF (no weights needed)."""
    from .. import load_model
    # requantize=None: the template is all the check needs, so skip the fast-decoding copy
    model = load_model(n_ctx=256, n_parallel=1, requantize=None)
    return model.chat_template, model.bos_token


_ADJECTIVES = ("helpful", "friendly", "careful", "patient", "cheerful", "precise", "curious", "calm")
_NAMES = ("Robin", "Ada", "Milo", "Quill", "Nova", "Pip", "Juno", "Ezra", "Tova", "Kit")
_ORGS = ("a small lab", "the Open Garden team", "Acme Research", "a group of students", "Northwind")
_TODAY = ("Today is Monday.", "Knowledge cutoff: 2023.", "Answer briefly.", "Be kind.", "")


def _tag(rng, low: int = 2, high: int = 6) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(low, high)))


def _system_text(rng) -> str:
    return (f"You are a {rng.choice(_ADJECTIVES)} assistant named {rng.choice(_NAMES)}, made by "
            f"{rng.choice(_ORGS)}. {rng.choice(_TODAY)}").strip()


def _jinja(text: str) -> str:
    """A Jinja string literal for `text` (single-quoted, newlines escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _random_template(rng, family: str) -> tuple[str, str, bool]:
    """(template, bos_token, adds_a_default_system_turn) for one made-up chat format."""
    bos = rng.choice(("", f"<{_tag(rng)}>", f"<|{_tag(rng)}|>", f"[{_tag(rng).upper()}]"))
    use_bos = bool(bos) and rng.random() < 0.6
    default_system = rng.random() < 0.6
    sys_text = _system_text(rng)
    start = "{{ bos_token }}" if use_bos else ""
    if family == "chatml":
        o, e = f"<|{_tag(rng)}|>", f"<|{_tag(rng)}|>"
        user_role = rng.choice(("user", "human", _tag(rng, 3, 7)))
        role = (f"{{% if message['role'] == 'user' %}}{{% set role = {_jinja(user_role)} %}}"
                f"{{% else %}}{{% set role = message['role'] %}}{{% endif %}}")
        default = (f"{{% if loop.first and messages[0]['role'] != 'system' %}}"
                   f"{{{{ {_jinja(o + 'system' + chr(10) + sys_text + e + chr(10))} }}}}{{% endif %}}"
                   if default_system else "")
        template = (f"{start}{{% for message in messages %}}{default}{role}"
                    f"{{{{ {_jinja(o)} + role + '\\n' + message['content'] + {_jinja(e + chr(10))} }}}}"
                    f"{{% endfor %}}{{% if add_generation_prompt %}}{{{{ {_jinja(o + 'assistant' + chr(10))} }}}}"
                    f"{{% endif %}}")
    elif family == "header":
        h1, h2, eot = f"<|{_tag(rng)}|>", f"<|{_tag(rng)}|>", f"<|{_tag(rng)}|>"
        default = (f"{{% if messages[0]['role'] != 'system' %}}"
                   f"{{{{ {_jinja(h1 + 'system' + h2 + chr(10) * 2 + sys_text + eot)} }}}}{{% endif %}}"
                   if default_system else "")
        template = (f"{start}{default}{{% for message in messages %}}"
                    f"{{{{ {_jinja(h1)} + message['role'] + {_jinja(h2 + chr(10) * 2)} + message['content'] | trim"
                    f" + {_jinja(eot)} }}}}{{% endfor %}}{{% if add_generation_prompt %}}"
                    f"{{{{ {_jinja(h1 + 'assistant' + h2 + chr(10) * 2)} }}}}{{% endif %}}")
    elif family == "inst":
        t = _tag(rng, 3, 5).upper()
        lead = (f"{{% if loop.first %}}{{{{ {_jinja(sys_text + chr(10) * 2)} }}}}{{% endif %}}"
                if default_system else "")
        template = (f"{start}{{% for message in messages %}}{{% if message['role'] == 'user' %}}"
                    f"{{{{ {_jinja('[' + t + '] ')} }}}}{lead}{{{{ message['content'] + {_jinja(' [/' + t + ']')} }}}}"
                    f"{{% else %}}{{{{ message['content'] + eos_token }}}}{{% endif %}}{{% endfor %}}")
    elif family == "pipe":
        names = {"user": _tag(rng, 3, 7), "assistant": _tag(rng, 3, 7), "system": "system"}
        default = (f"{{% if messages[0]['role'] != 'system' %}}"
                   f"{{{{ {_jinja('<|system|>' + chr(10) + sys_text)} + eos_token }}}}{{% endif %}}"
                   if default_system else "")
        branches = "".join(
            f"{{% {'if' if i == 0 else 'elif'} message['role'] == {_jinja(role)} %}}"
            f"{{{{ {_jinja('<|' + name + '|>' + chr(10))} + message['content'] + eos_token }}}}"
            for i, (role, name) in enumerate(names.items()))
        template = (f"{start}{default}{{% for message in messages %}}{branches}{{% endif %}}{{% endfor %}}"
                    f"{{% if add_generation_prompt %}}{{{{ {_jinja('<|' + names['assistant'] + '|>' + chr(10))} }}}}"
                    f"{{% endif %}}")
    else:  # "plain": a text-only layout, as in Alpaca-style prompts
        w_user = rng.choice(("Instruction", "Question", "Request", "Prompt")) + _tag(rng, 1, 2)
        w_bot = rng.choice(("Response", "Answer", "Reply", "Output")) + _tag(rng, 1, 2)
        default = (f"{{% if messages[0]['role'] != 'system' %}}{{{{ {_jinja(sys_text + chr(10) * 2)} }}}}{{% endif %}}"
                   if default_system else "")
        template = (f"{start}{default}{{% for message in messages %}}{{% if message['role'] == 'system' %}}"
                    f"{{{{ message['content'] + '\\n\\n' }}}}{{% elif message['role'] == 'user' %}}"
                    f"{{{{ {_jinja('### ' + w_user + ':' + chr(10))} + message['content'] + '\\n\\n' }}}}"
                    f"{{% else %}}{{{{ {_jinja('### ' + w_bot + ':' + chr(10))} + message['content'] + '\\n\\n' }}}}"
                    f"{{% endif %}}{{% endfor %}}{{% if add_generation_prompt %}}"
                    f"{{{{ {_jinja('### ' + w_bot + ':' + chr(10))} }}}}{{% endif %}}")
    return template, bos, default_system


_FAMILIES = ("chatml", "header", "inst", "pipe", "plain")
_MARK = "LAB03USERWORDSMARKER"  # text no template writes


def _reference_prefix(template: str, bos_token: str) -> str:
    from ..models.chat import render_chat
    text = render_chat(template, [{"role": "user", "content": _MARK}], bos_token=bos_token,
                       add_generation_prompt=False)
    return text[:text.index(_MARK)]


def _check_pre_query_prefix(c) -> str:
    fn = c.get("pre_query_prefix", callable_=True)
    smol_template, smol_bos = _smollm2_template()
    cases = [(smol_template, smol_bos, True, "SmolLM2's own template")]
    families = list(_FAMILIES) + [c.rng.choice(_FAMILIES) for _ in range(3)]
    c.rng.shuffle(families)
    for family in families:
        template, bos, default_system = _random_template(c.rng, family)
        cases.append((template, bos, default_system, f"a made-up {family}-style template"))
    for number, (template, bos, default_system, what) in enumerate(cases, 1):
        expected = _reference_prefix(template, bos)
        label = f"pre_query_prefix(template, bos_token={bos!r}) on {what} (case {number})"
        got = c.call(fn, template, bos, label=label)
        c.expect_type(got, str, label)
        if got == expected:
            continue
        k = _first_difference(got, expected)
        if k == len(got):
            where = f"yours stops at character {k}, before the template's text up to the user's words does"
        else:
            where = f"from character {k} on, yours has {show_input(got[k:k + 30], 40)}"
        advice = "Render one user message whose content is a marker you can find again, and cut there."
        if bos and "bos_token" not in template and got.startswith(bos):
            advice = ("This template never writes bos_token, so the prefix must not start with it: "
                      "keep exactly what the template renders. " + advice)
        elif default_system and k < len(expected) and len(got) < len(expected):
            advice = ("This template writes text of its own (a default system turn) before the user's "
                      "words when the conversation has no system message; the prefix must keep it. " + advice)
        c.fail(f"{label} returned a prefix that is not what the template renders before a user's words: "
               f"{where}. {advice}\nThe template was:\n{template}")
    return (f"{len(cases)} templates, SmolLM2's own and {len(cases) - 1} made up just now with random "
            f"markers, BOS tokens and default system turns: your prefix matches each one exactly.")


ex1 = CodingExercise(
    "ex1", LAB, names="pre_query_prefix", checker=_check_pre_query_prefix, points=2,
    refuses=("synthkit.magpie.pre_query_template",),
    title="Derive the Magpie prefix of any chat template",
    hints=[
        "Every template spells its roles differently, so searching its text for markers is a losing "
        "game. Let the template do the work: render a conversation whose user words you would "
        "recognise afterwards, and think about where they land in the output.",
        "`from synthkit.models.chat import render_chat`; "
        "`render_chat(template, messages, bos_token=bos_token, add_generation_prompt=False)` renders "
        "a list of {\"role\": ..., \"content\": ...} dicts exactly as the model saw its training chats.",
        "Render ONE user message whose content is a marker string that cannot appear anywhere else "
        "(say \"<<<USER-WORDS-HERE>>>\"), find where the marker starts, and return everything "
        "before it. That keeps any BOS token or default system turn the template adds by itself.",
    ],
)


# --- exercise 2: the paper's nearest-neighbour filter -----------------------------------
def _reference_keep(x: np.ndarray, min_distance: float, *, against="earlier", normalise=True,
                    similarity=False) -> list[bool]:
    """The keep-mask, and the likely slips (for naming them): comparing only with rows
    kept so far, with later rows, or with every row; raw dot products; similarity for distance."""
    x = np.asarray(x, dtype=np.float64)
    if normalise:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    score = x @ x.T if similarity else 1.0 - x @ x.T
    near = score >= min_distance if similarity else score <= min_distance
    keep: list[bool] = []
    for i in range(len(x)):
        if against == "earlier":
            others = range(i)
        elif against == "kept":
            others = [j for j in range(i) if keep[j]]
        elif against == "later":
            others = range(i + 1, len(x))
        else:  # "all", the row itself included
            others = range(len(x))
        keep.append(not any(near[i, j] for j in others))
    return keep


def _rotate_towards(rng, base: np.ndarray, distance: float) -> np.ndarray:
    """A unit vector at exactly cosine distance `distance` from the unit vector `base`."""
    other = np.array([rng.gauss(0, 1) for _ in range(len(base))])
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    cos = 1.0 - distance
    return cos * base + math.sqrt(max(0.0, 1 - cos * cos)) * other


def _random_embeddings(rng, n: int, dim: int, min_distance: float, *, chain: bool) -> np.ndarray:
    """n rows in `dim` dimensions: random directions, some rewordings of earlier rows (within
    the threshold), optionally a chain a ~ b ~ c with a and c apart, all at random lengths,
    and no distance within 1e-5 of the threshold (so the edge never hangs on rounding)."""
    while True:
        rows: list[np.ndarray] = []
        while len(rows) < n:
            unit = None
            if rows and rng.random() < 0.35:
                base = rows[rng.randrange(len(rows))]
                base = base / np.linalg.norm(base)
                unit = _rotate_towards(rng, base, rng.uniform(0.0, 0.9) * min_distance)
            elif chain and len(rows) >= 1 and len(rows) <= n - 2 and rng.random() < 0.3:
                a = rows[rng.randrange(len(rows))]
                a = a / np.linalg.norm(a)
                b = _rotate_towards(rng, a, 0.8 * min_distance)
                rows.append(b * rng.uniform(0.2, 5.0))
                c = b * 1.0
                for _ in range(50):  # near b, far from a
                    c = _rotate_towards(rng, b, 0.8 * min_distance)
                    if 1.0 - c @ a > 1.2 * min_distance:
                        break
                unit = c
            else:
                unit = np.array([rng.gauss(0, 1) for _ in range(dim)])
                unit /= np.linalg.norm(unit)
            rows.append(unit * rng.uniform(0.2, 5.0))
        x = np.array(rows[:n])
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        d = 1.0 - u @ u.T
        if n < 2 or np.min(np.abs(d[np.triu_indices(n, 1)] - min_distance)) > 1e-5:
            return x


def _boundary_embeddings(rng) -> tuple[np.ndarray, float]:
    """Rows of 16 signs (+-1) at power-of-two lengths, with min_distance = m/8: normalised rows
    hold +-1/4 exactly, so every cosine distance (flips/8) is exact in float32 and float64, under
    any order of summation. Row 1 is exactly min_distance from row 0 (m signs flipped): it must go."""
    m = rng.randint(1, 3)
    base = np.array([rng.choice((-1.0, 1.0)) for _ in range(16)])

    def flipped(k):
        row = base.copy()
        row[rng.sample(range(16), k)] *= -1
        return row

    rows = [base, flipped(m), flipped(m + 1), flipped(m - 1) if m > 1 else base.copy()]
    rows += [np.array([rng.choice((-1.0, 1.0)) for _ in range(16)]) for _ in range(rng.randint(1, 4))]
    rows = [r * rng.choice((0.25, 0.5, 1.0, 2.0, 4.0)) for r in rows]
    return np.array(rows[:2] + rng.sample(rows[2:], len(rows) - 2)), m / 8


def _as_mask(got, n: int):
    """The student's answer as a list of n bools, or None when it is not one."""
    if isinstance(got, np.ndarray):
        if got.dtype != bool or got.ndim != 1:
            return None
        got = got.tolist()
    if not isinstance(got, (list, tuple)) or len(got) != n:
        return None
    if not all(isinstance(v, (bool, np.bool_)) for v in got):
        return None
    return [bool(v) for v in got]


def _check_distance_filter(c) -> str:
    fn = c.get("distance_filter", callable_=True)
    cases = [(np.zeros((0, 5)), 0.1, "no rows at all"), (np.array([[3.0, 4.0]]), 0.1, "a single row")]
    for _ in range(14):
        t = round(c.rng.uniform(0.03, 0.4), 3)
        n, dim = c.rng.randint(2, 30), c.rng.randint(3, 24)
        cases.append((_random_embeddings(c.rng, n, dim, t, chain=c.rng.random() < 0.6), t, "random rows"))
    x, t = _boundary_embeddings(c.rng)
    cases.append((x, t, "a row exactly min_distance from an earlier one"))
    t = round(c.rng.uniform(0.05, 0.2), 3)
    cases.append((_random_embeddings(c.rng, 300, 384, t, chain=True), t, "300 rows of 384 numbers"))
    for number, (x, t, what) in enumerate(cases, 1):
        given = x.astype(np.float32) if number % 3 == 0 else (x.tolist() if number % 4 == 0 else x.copy())
        before = np.array(given, dtype=np.float64)
        label = (f"distance_filter(<{len(x)} x {x.shape[1]} {type(given).__name__}"
                 f"{' of float32' if isinstance(given, np.ndarray) and given.dtype == np.float32 else ''}>, "
                 f"min_distance={t}) ({what}, case {number})")
        got = c.call(fn, given, t, label=label)
        mask = _as_mask(got, len(x))
        if mask is None:
            c.fail(f"{label} returned {show_input(got, 60)}; return one True/False per row "
                   f"({len(x)} of them), as a list or a 1-D NumPy array of bools.")
        if not np.array_equal(np.array(given, dtype=np.float64), before):
            c.fail(f"{label} changed the embeddings it was given; normalise a copy instead.")
        want = _reference_keep(x, t)
        if mask == want:
            continue
        slips = [
            (dict(against="kept"), "You compare each row only with the rows KEPT so far. The paper's rule "
             "drops a row that has a near neighbour anywhere before it, kept or not: in a chain a ~ b ~ c, "
             "c goes too."),
            (dict(against="later"), "You keep the LAST of each group: compare each row with the rows "
             "before it, so the first one stays."),
            (dict(against="all"), "Each row is compared with itself too (distance 0), so everything goes: "
             "compare only with earlier rows."),
            (dict(normalise=False), "Your distances use raw dot products. Rows come at any length: divide "
             "each by its norm first, so 1 - a·b is the cosine distance."),
            (dict(similarity=True), "It looks as if you compared cosine SIMILARITY with min_distance; the "
             "threshold is on the distance, 1 - cos."),
        ]
        advice = next((msg for kw, msg in slips if mask == _reference_keep(x, t, **kw)), None)
        wrong = [i for i, (a, b) in enumerate(zip(mask, want)) if a != b]
        i = wrong[0]
        u = np.asarray(x, dtype=np.float64)
        u = u / np.linalg.norm(u, axis=1, keepdims=True)
        nearest = (f"its smallest cosine distance to an earlier row is {np.min(1 - u[:i] @ u[i]):.4f}"
                   if i else "it is the first row")
        if advice is None and what.startswith("a row exactly"):
            advice = ("A distance equal to min_distance is not greater than it: a row exactly min_distance "
                      "from an earlier row goes.")
        if advice is None:
            advice = ("Row i stays exactly when 1 - cos(row i, row j) > min_distance for every j < i.")
        c.fail(f"{label}: row {i} should be {'kept' if want[i] else 'dropped'} ({nearest}, and "
               f"min_distance is {t}), but your mask says {mask[i]}. {advice}")
    return (f"{len(cases)} embedding matrices, made just now with planted rewordings and chains, "
            f"lists and float32 arrays, up to 300 x 384: every keep-mask is right.")


ex2 = CodingExercise(
    "ex2", LAB, names="distance_filter", checker=_check_distance_filter, points=2, time_limit=10.0,
    refuses=("synthkit.magpie.distance_filter",),
    title="Magpie's nearest-neighbour filter: drop the same request in other words",
    hints=[
        "Two steps: turn the rows into directions (unit vectors), then decide each row by looking only "
        "at the rows BEFORE it. What single number says how far apart two directions are?",
        "Normalise: x = np.asarray(embeddings, dtype=float); x = x / np.linalg.norm(x, axis=1, "
        "keepdims=True). Then x @ x.T holds every cosine similarity, and 1 - that is the distance matrix.",
        "Row i is kept when np.all(distance[i, :i] > min_distance) (True for row 0, which has nothing "
        "before it). Compare with all earlier rows, not just the kept ones, and return one bool per row.",
    ],
)


# --- exercise 3: naming topic clusters ---------------------------------------------------
_WORD = re.compile(r"[a-z]+")


def _words_of(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in TOPIC_STOP_WORDS}


def _made_up_word(rng) -> str:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    return "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))


def _random_clusters(rng):
    n_clusters = rng.randint(2, 5)
    ids = rng.sample(range(0, 40), n_clusters)
    fresh = set()
    while len(fresh) < 6 * n_clusters + 8:
        fresh.add(_made_up_word(rng))
    fresh = sorted(fresh)
    rng.shuffle(fresh)
    topical = {cid: fresh[6 * i:6 * i + rng.randint(3, 6)] for i, cid in enumerate(ids)}
    shared = fresh[6 * n_clusters:]
    stops = sorted(TOPIC_STOP_WORDS)
    texts, labels = [], []
    for cid in ids:
        for _ in range(rng.randint(2, 8)):
            words = rng.sample(topical[cid], rng.randint(1, min(3, len(topical[cid]))))
            words += rng.sample(shared, rng.randint(0, 3)) + rng.sample(stops, rng.randint(1, 4))
            words += [rng.choice(("ok", "an", "we", "x")) for _ in range(rng.randint(0, 2))]
            if rng.random() < 0.3:
                words.append(rng.choice(fresh[:6 * n_clusters]))  # a stray word from another topic
            if rng.random() < 0.3:
                words.append(words[0])                           # a repeat inside one text
            rng.shuffle(words)
            words = [w.capitalize() if rng.random() < 0.2 else w for w in words]
            text = " ".join(w + rng.choice(("", "", ",", "?", ".")) for w in words)
            texts.append(text)
            labels.append(cid)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def _with_three_letter_word(rng, texts, labels):
    """The texts with a made-up 3-letter word (the shortest a candidate may be) and a made-up
    2-letter one (too short) put into every text of one cluster, redrawn until fewer than 2 other
    words score as high as the 3-letter word: then it is one of the cluster's k=3 best words,
    and counting the 2-letter word would put it there too, however ties are broken.
    Returns (texts, labels, the 3-letter word, the 2-letter word, the cluster)."""
    consonants = "bcdfghklmnprstvz"
    while True:
        three = rng.choice(consonants) + rng.choice("aeiou") + rng.choice(consonants)
        two = rng.choice(consonants) + rng.choice("aeiou")
        present = {w for t in texts for w in _WORD.findall(t.lower())}
        if {three, two} & (TOPIC_STOP_WORDS | present):
            continue
        cluster = rng.choice(sorted(set(labels)))
        out = []
        for t, lab in zip(texts, labels):
            if lab == cluster:
                parts = t.split(" ")
                for w in (three, two):
                    parts.insert(rng.randint(0, len(parts)), w + rng.choice(("", "", ",", ".")))
                t = " ".join(parts)
            out.append(t)
        scores, _ = _scores(out, labels, cluster)
        if three in scores and sum(v >= scores[three] - 1e-9 for w, v in scores.items() if w != three) < 2:
            return out, labels, three, two, cluster
        texts, labels = _random_clusters(rng)


def _share_round(rng):
    """Two clusters. A word in every text of both, and a word in half of one cluster's texts only:
    the second is the distinctive one (share 0.5 inside, 0 outside, against 1 and 1), though it is
    in fewer texts. Scoring by counts instead of shares, or scaling them by the cluster's size,
    puts the everywhere-word first."""
    fresh = set()
    while len(fresh) < 9:
        fresh.add(_made_up_word(rng))
    common, rare, *filler = sorted(fresh)
    rng.shuffle(filler)
    a, b = rng.sample(range(0, 40), 2)
    texts = [f"{common} {rare} {filler[0]}", f"{rare} {filler[1]} {common}.", f"{filler[2]}, {common}",
             f"{common} {filler[3]}"] + [f"{filler[4 + i]} {common}" for i in range(3)]
    labels = [a] * 4 + [b] * 3
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


def _scores(texts, labels, cluster) -> tuple[dict[str, float], dict[str, tuple[int, int, int, int]]]:
    """Each candidate word's score in `cluster`, and (in, size, out, others) counts for messages."""
    inside = [_words_of(t) for t, lab in zip(texts, labels) if lab == cluster]
    outside = [_words_of(t) for t, lab in zip(texts, labels) if lab != cluster]
    candidates = set().union(*inside)
    scores, counts = {}, {}
    for w in candidates:
        a = sum(w in s for s in inside)
        b = sum(w in s for s in outside)
        scores[w] = a / len(inside) - (b / len(outside) if outside else 0.0)
        counts[w] = (a, len(inside), b, len(outside))
    return scores, counts


def _describe(word, counts) -> str:
    a, size, b, others = counts[word]
    return f"{word!r} (in {a} of its {size} texts and {b} of the {others} others)"


def _check_topic_words(c) -> str:
    fn = c.get("topic_words", callable_=True)
    rounds = 9
    # every run: one round called without k (its default is 3), and one with a 3-letter word that
    # must be among its cluster's words and a 2-letter one that must not (words of 3 letters or more
    # are candidates)
    # and one with a word in every text against a word in half of one cluster's texts only
    short_round, default_round, share_round = c.rng.sample(range(rounds), 3)
    for r in range(rounds):
        texts, labels = _random_clusters(c.rng)
        k = c.rng.randint(1, 4)
        short = None
        if r == short_round:
            texts, labels, short, _too_short, short_cluster = _with_three_letter_word(c.rng, texts, labels)
            k = 3
        if r == default_round:   # a cluster with 4+ candidates, so that k=2 or k=4 would show
            while max(len(_scores(texts, labels, x)[0]) for x in set(labels)) < 4:
                texts, labels = _random_clusters(c.rng)
            k = 3
        if r == share_round:
            texts, labels = _share_round(c.rng)
            k = 3
        arg = np.array(labels) if r % 2 else list(labels)
        shown = "" if r == default_round else f", k={k}"
        label = (f"topic_words(<{len(texts)} texts>, <labels {sorted(set(labels))}>{shown}) on texts such as "
                 f"{show_input(texts[0], 60)}")
        if r == default_round:
            got = c.call(fn, list(texts), arg, label=label)
        else:
            got = c.call(fn, list(texts), arg, k, label=label)
        c.expect_type(got, dict, label)
        try:
            got = {int(key): value for key, value in got.items()}
        except (TypeError, ValueError):
            c.fail(f"{label} returned a dict whose keys are not the cluster labels (numbers): "
                   f"{show_input(list(got), 60)}.")
        if set(got) != set(labels):
            c.fail(f"{label} returned keys {sorted(got)}; it needs one entry per cluster label, "
                   f"{sorted(set(labels))}.")
        for cluster in sorted(set(labels)):
            words = got[cluster]
            where = f"{label}, cluster {cluster}"
            if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
                c.fail(f"{where}: the value should be a list of words (strings), not {show_input(words, 60)}.")
            scores, counts = _scores(texts, labels, cluster)
            want = min(k, len(scores))
            if len(words) != want or len(set(words)) != len(words):
                default = " (called without k, so k is its default, 3)" if r == default_round else ""
                if short is not None and cluster == short_cluster and short not in words:
                    default += (f"; {short!r}, in every one of its texts, has 3 letters, and words of 3 "
                                f"letters or more are candidates")
                c.fail(f"{where}: returned {len(words)} word(s) {show_input(list(words), 60)}; it should "
                       f"return k different words{default} (fewer only when the cluster has fewer candidates).")
            for w in words:
                if w not in scores:
                    why = ("a stop word" if w in TOPIC_STOP_WORDS else
                           "shorter than 3 letters" if len(w) < 3 else
                           "not lowercase letters only" if not _WORD.fullmatch(w) else
                           "not in any text of this cluster")
                    c.fail(f"{where}: {w!r} is not a candidate word ({why}).")
            for a, b in zip(words, words[1:]):
                if scores[b] > scores[a] + 1e-9:
                    c.fail(f"{where}: your list puts {_describe(a, counts)} before "
                           f"{_describe(b, counts)}, but the second is more distinctive of the cluster. "
                           f"Score = share of the cluster's texts with the word minus share of the other texts with it.")
            left_out = [w for w in scores if w not in words]
            if words and left_out:
                best_left = max(left_out, key=lambda w: scores[w])
                if scores[best_left] > scores[words[-1]] + 1e-9:
                    c.fail(f"{where}: {_describe(best_left, counts)} is left out although it is more "
                           f"distinctive of the cluster than {_describe(words[-1], counts)}, which you kept.")
    return (f"{rounds} fresh sets of texts in 2 to 5 clusters: every cluster's words are its most "
            f"distinctive ones, best first.")


ex3 = CodingExercise(
    "ex3", LAB, names="topic_words", checker=_check_topic_words, points=2,
    refuses=("synthkit.metrics.topic_words",),
    title="Name each topic cluster by its most distinctive words",
    hints=[
        "A word names a cluster when many of the cluster's texts use it and few of the other texts "
        "do. So compare two shares per word, inside and outside the cluster, counting texts rather "
        "than occurrences.",
        "Turn each text into a SET of words: re.findall(r\"[a-z]+\", text.lower()), keeping words of "
        "3+ letters that are not in TOPIC_STOP_WORDS. A set, because the score counts texts, not "
        "occurrences.",
        "For each cluster: inside = the word sets of its texts, outside = all the others. A word's "
        "score is (number of inside sets with it) / len(inside) minus (number of outside sets with "
        "it) / len(outside) (0 when there are no others). Sort the cluster's words by score, "
        "highest first, and keep k.",
    ],
)


# --- essay 1: the chapter's practice item ----------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="How many topics from nothing?",
    prompt="""
        You sampled instructions from SmolLM2's pre-query prefix (12 under the ci profile, 100
        under laptop, 400 under gpu: say which you ran) and clustered the ones that passed the filters.
        How many distinct topics did you find, and which ones dominate? Compare with the
        Self-Instruct set and the Wikipedia sample. Then explain why a prompt that contains no
        request at all yields varied requests, and name one bias that variety does not remove.
    """,
    hints=["Look at the topic words and the example instruction of each Magpie cluster, the table "
           "of diversity numbers, and the next-token probabilities after the prefix."],
    solution="""
        Points a strong answer touches on (any well-argued answer with numbers from the run is fine):
        - A count read from the run (the silhouette-chosen k, and how many clusters a human would
          call separate topics after reading their words and examples), and which themes dominate
          (for SmolLM2: starting a business, health, travel, recipes, 'can you provide ...' lists).
        - Comparison: Magpie's pairwise similarity and distinct-n next to Self-Instruct's (its
          topics follow the seed tasks) and Wikipedia's (12 labelled subjects, usually more spread).
        - Why it varies: after the prefix the model's next-token distribution is broad (I / Can /
          What / How / Hey ...) because its alignment data covered many kinds of user requests;
          sampling at temperature ~1 follows different branches every time.
        - Bias that stays: the topics mirror the teacher's training mix and its favourite openings
          ("Can you provide ..."), not real users; a small model repeats a few templates; the
          default system turn shapes the distribution; hotter sampling buys variety with junk.
    """,
)


# --- the concept check -----------------------------------------------------------------
quiz = Quiz(LAB, [
    Question("What does a Magpie prompt contain?",
             ["A few human-written example tasks and a request to write one more like them",
              "The template's text up to where a user's words begin, default system turn included",
              "A topic word drawn at random from a list, which the model turns into a question",
              "The assistant's header alone, so the model answers a question nobody has asked"],
             answer=1,
             why="The prefix is the template up to the user's content; the model fills in the user's "
                 "message itself. No seeds, no topic list, and the assistant's header would make it answer."),
    Question("Instructions 1, 2 and 3 arrive in that order. Their cosine distances are d(1,2) = 0.05, "
             "d(2,3) = 0.08 and d(1,3) = 0.15. With min_distance = 0.1, which does the lab's "
             "nearest-neighbour filter keep?",
             ["Only 1", "1 and 3", "All three", "Only 3"],
             answer=0,
             why="2 lies within 0.1 of 1, and 3 within 0.1 of 2, an earlier row (kept or not), so both go. "
                 "Comparing only with kept rows would keep 3; keeping the last of a group would keep 3 alone."),
    Question("In the lab, the prefix without SmolLM2's default system turn made the model start with "
             "code and markdown far more often. What does that show?",
             ["The default system turn contains a hidden instruction telling the model to avoid writing code",
              "The prefix must match the layout the model was tuned on, or the context reads differently",
              "Shorter prompts always make a model more likely to write code than prose",
              "The generation cache returned samples from an earlier run with another prompt"],
             answer=1,
             why="SmolLM2 was fine-tuned with that system turn in place; without it the context looks "
                 "less like its chats and more like other text it has seen. The system text says nothing "
                 "about code."),
    Question("Suppose that in the grid at top-p 1.0 mean pairwise cosine falls from temperature 0.6 to "
             "1.0, then rises again at 1.3 while distinct-2 keeps climbing, and that the bootstrap "
             "interval of the rise lies above zero. What explains the rise?",
             ["Junk samples (word salad, broken rambles) sit near each other, so they look alike",
              "At 1.3 the model repeats the same few requests, so the set really is less varied",
              "The 1.3 cell was served from the cache, so it holds the same samples as the 1.0 cell",
              "Top-p 1.0 trims the tail of the distribution, which narrows the topics when sampling hot"],
             answer=0,
             why="Distinct-2 kept rising, so the texts did not repeat; but the embedder places noise close "
                 "to other noise. A diversity number can be fooled by junk, which is why quality is "
                 "measured beside it. Top-p 1.0 trims nothing, and each cell has its own sampling. With "
                 "two dozen samples a cell, check the interval before you read a rise at all."),
    Question("For Magpie-Pro the authors filtered the 1M pairs the 70B teacher wrote down to 300K "
             "(input quality at least average, reward above a threshold, no exact repeat, longest "
             "responses). Fine-tuned on each, which set did the base model do better with?",
             ["The whole million: at SFT scale more data beats cleaner data",
              "The filtered 300K subset, on the chat benchmarks they report",
              "Neither: the two scored the same, so filtering only saved compute",
              "The million on easy prompts, and the 300K on hard prompts only"],
             answer=1,
             why="For Pro the filtered 300K beat the raw 1M on AlpacaEval 2 and Arena-Hard (their Table "
                 "12): less, better data won. It is a finding, not a law: for Air the raw 3M did better "
                 "than the filtered 300K on some of the benchmarks. Filters deserve as much care as "
                 "generation, and their effect has to be measured."),
    Question("In our laptop run, a maths-tutor system prompt raised the share of instructions the keyword "
             "classifier calls maths from 5 of 100 to 41 of 100: +36 points, 95% interval +25 to +46. "
             "What is the fairest reading?",
             ["It moves the mix a lot, yet the small teacher still drifts off topic more often than not",
              "It is noise: with 100 samples in each arm, a gap of this size is within chance",
              "It works fully: the other 59 are maths as well, which the keyword classifier failed to see",
              "It only changed the wording; the requests cover the same topics as without it"],
             answer=0,
             why="The interval of the difference lies far above zero, so the shift is real (about "
                 "eightfold), yet most steered samples were about jobs, essays or cakes: a 135M teacher "
                 "follows its system turn loosely. Read the labelled samples to judge the classifier "
                 "before trusting either share."),
    Question("Compared with Self-Instruct, which statement about Magpie is right?",
             ["It needs a larger and more varied set of human seed tasks to start from",
              "It cannot produce near-duplicates, so it can skip the dedup filters",
              "It needs no seeds, but its topics follow the teacher's idea of a typical user",
              "It only works with Llama 3 models, whose template has a separate user header"],
             answer=2,
             why="No seeds means no seed bias, not no bias: the teacher's habits shape the topic mix, "
                 "and the lab's own filters caught near-duplicates. Any chat template has a prefix."),
])
