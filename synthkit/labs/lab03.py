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

from ..grading.exercises import CodingExercise, EssayExercise, show_input
from ..grading.quiz import Question, Quiz
from ..metrics import TOPIC_STOP_WORDS

LAB = "03"
TITLE = "Magpie: instructions from an empty prompt"
NOTEBOOK = "03_magpie.ipynb"


def _names_used(fn) -> set[str]:
    """Every global, attribute and imported name a function's code (and the code nested in
    it) refers to."""
    names: set[str] = set()
    code = getattr(fn, "__code__", None)
    stack = [code] if code is not None else []
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return names


def _refuse_library_copy(c, fn, library_fn, name: str, label: str) -> None:
    """Fail when the student's function is, or calls, the library function it rebuilds."""
    if fn is library_fn or getattr(fn, "__wrapped__", None) is library_fn or name in _names_used(fn):
        c.fail(f"{label} uses synthkit's own `{name}`, the very function this exercise asks you to "
               f"write. Write the steps yourself (the library's version is there for the rest of the "
               f"lab, and for checking your understanding afterwards).")


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


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
    from .. import magpie
    fn = c.get("pre_query_prefix", callable_=True)
    _refuse_library_copy(c, fn, magpie.pre_query_template, "pre_query_template", "pre_query_prefix")
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
    title="Derive the Magpie prefix of any chat template",
    hints=[
        "Don't look for role markers in the template text: let the template render a conversation "
        "for you. `from synthkit.models.chat import render_chat`; "
        "`render_chat(template, messages, bos_token=bos_token, add_generation_prompt=False)`.",
        "Render ONE user message whose content is a marker string that cannot appear anywhere else "
        "(say \"<<<USER-WORDS-HERE>>>\"), find where the marker starts, and return everything "
        "before it. That keeps any BOS token or default system turn the template adds by itself.",
    ],
    solution='''
        from synthkit.models.chat import render_chat

        def pre_query_prefix(template, bos_token=""):
            """The text `template` renders before a user's own words."""
            marker = "<<<USER-WORDS-HERE>>>"
            text = render_chat(template, [{"role": "user", "content": marker}],
                               bos_token=bos_token, add_generation_prompt=False)
            return text[:text.index(marker)]
    ''',
)


# --- exercise 2: distinct-n ------------------------------------------------------------
def _reference_distinct_n(texts, n, *, lower=True, split=None, across=False, per_text=False):
    def grams(words):
        return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]

    tokenised = [(t.lower() if lower else t).split(split) for t in texts]
    if per_text:
        values = [len(set(g)) / len(g) for g in map(grams, tokenised) if g]
        return sum(values) / len(values) if values else 0.0
    if across:
        all_grams = grams([w for words in tokenised for w in words])
    else:
        all_grams = [g for words in tokenised for g in grams(words)]
    return len(set(all_grams)) / len(all_grams) if all_grams else 0.0


_VOCAB = ("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "why", "is", "sky",
          "blue", "write", "poem", "about", "sea", "how", "do", "i", "bake", "bread", "can", "you")


def _random_texts(rng, count: int) -> list[str]:
    vocab = list(_VOCAB[:rng.randint(5, len(_VOCAB))])
    texts = []
    for _ in range(count):
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
        words = [w.upper() if rng.random() < 0.15 else w.capitalize() if rng.random() < 0.15 else w
                 for w in words]
        seps = [rng.choice((" ", " ", " ", "  ", "\t", "\n")) for _ in words]
        text = "".join(w + s for w, s in zip(words, seps))
        texts.append(rng.choice(("", " ")) + text)
    return texts


def _check_distinct_n(c) -> str:
    from .. import metrics
    fn = c.get("distinct_n", callable_=True)
    _refuse_library_copy(c, fn, metrics.distinct_n, "distinct_n", "distinct_n")
    unique = [f"w{i}" for i in range(12)]
    c.rng.shuffle(unique)
    fixed = [
        ([" ".join(unique[:6]), " ".join(unique[6:])], 2, "every bigram in it is different"),
        (["Red fish blue fish"] * 3, 1, "the same text three times"),
        ([], 2, "no texts at all"),
        (["one two", "three"], 3, "no text has 3 words"),
        (["a b", "a b"], 2, "two copies of a two-word text"),
        (["The Cat", "the cat", "THE CAT"], 2, "one bigram written in three cases"),
        (["sun  moon\tstar\nsun moon  star"], 2, "a text with tabs, newlines and double spaces"),
    ]
    cases = fixed + [(_random_texts(c.rng, c.rng.randint(2, 8)), c.rng.randint(1, 4), "random texts")
                     for _ in range(12)]
    for texts, n, what in cases:
        label = f"distinct_n({show_input(texts, 90)}, {n})"
        got = c.call(fn, list(texts), n, label=label)
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
            c.expect_type(got, float, label)
        got = float(got)
        expected = _reference_distinct_n(texts, n)
        if math.isfinite(got) and abs(got - expected) <= 1e-9:
            continue
        if not math.isfinite(got) or not 0.0 <= got <= 1.0:
            c.fail(f"{label} returned {got!r}; a share of unique n-grams lies between 0 and 1.")
        diagnoses = [
            (dict(lower=False), "Your result changes with upper and lower case: 'The' and 'the' should count as one word."),
            (dict(split=" "), "Split on any whitespace (text.split() with no argument), not on single spaces."),
            (dict(across=True), "Your n-grams run across the end of one text into the next: take n-grams inside each text only."),
            (dict(per_text=True), "You seem to average a score per text; pool the n-grams of all texts first, then divide unique by total."),
        ]
        advice = next((msg for kw, msg in diagnoses
                       if abs(got - _reference_distinct_n(texts, n, **kw)) <= 1e-9), None)
        if advice is None:
            advice = ("Count every n-gram of every text (lowercased words), then divide the number of "
                      "different ones by the total. With no n-gram at all, return 0.0.")
        c.fail(f"{label} ({what}) returned {got:.6g}, which is not the share of unique {n}-grams. {advice}")
    return f"{len(cases)} inputs, {len(cases) - len(fixed)} of them random: every value is right."


ex2 = CodingExercise(
    "ex2", LAB, names="distinct_n", checker=_check_distinct_n, points=2,
    title="distinct-n: the share of n-grams that are unique",
    hints=[
        "For each text: words = text.lower().split(); its n-grams are tuple(words[i:i + n]) for "
        "i in range(len(words) - n + 1). Put the n-grams of ALL texts in one list.",
        "distinct-n = len(set(all_ngrams)) / len(all_ngrams), and 0.0 when the list is empty "
        "(no texts, or every text shorter than n words).",
    ],
    solution='''
        def distinct_n(texts, n):
            """Unique n-grams over all n-grams, pooled across texts (lowercased words)."""
            grams = []
            for text in texts:
                words = text.lower().split()
                grams += [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
            return len(set(grams)) / len(grams) if grams else 0.0
    ''',
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
    from .. import metrics
    fn = c.get("topic_words", callable_=True)
    _refuse_library_copy(c, fn, metrics.topic_words, "topic_words", "topic_words")
    rounds = 8
    for r in range(rounds):
        texts, labels = _random_clusters(c.rng)
        k = c.rng.randint(1, 4)
        arg = np.array(labels) if r % 2 else list(labels)
        label = (f"topic_words(<{len(texts)} texts>, <labels {sorted(set(labels))}>, k={k}) on texts such as "
                 f"{show_input(texts[0], 60)}")
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
                c.fail(f"{where}: returned {len(words)} word(s) {show_input(list(words), 60)}; it should "
                       f"return k different words (fewer only when the cluster has fewer candidates).")
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
    title="Name each topic cluster by its most distinctive words",
    hints=[
        "Turn each text into a SET of words: re.findall(r\"[a-z]+\", text.lower()), keeping words of "
        "3+ letters that are not in TOPIC_STOP_WORDS. A set, because the score counts texts, not "
        "occurrences.",
        "For each cluster: inside = the word sets of its texts, outside = all the others. A word's "
        "score is (number of inside sets with it) / len(inside) minus (number of outside sets with "
        "it) / len(outside) (0 when there are no others). Sort the cluster's words by score, "
        "highest first, and keep k.",
    ],
    solution='''
        import re

        def topic_words(texts, labels, k=3):
            """{cluster label: its k most distinctive words}, best first."""
            sets = [{w for w in re.findall(r"[a-z]+", t.lower())
                     if len(w) >= 3 and w not in TOPIC_STOP_WORDS} for t in texts]
            labels = list(labels)
            result = {}
            for cluster in sorted(set(labels)):
                inside = [s for s, lab in zip(sets, labels) if lab == cluster]
                outside = [s for s, lab in zip(sets, labels) if lab != cluster]

                def score(w):
                    share_in = sum(w in s for s in inside) / len(inside)
                    share_out = sum(w in s for s in outside) / len(outside) if outside else 0.0
                    return share_in - share_out

                candidates = sorted(set().union(*inside))
                result[cluster] = sorted(candidates, key=score, reverse=True)[:k]
            return result
    ''',
)


# --- essay 1: the chapter's practice item ----------------------------------------------
essay1 = EssayExercise(
    "essay1", LAB, points=2, title="How many topics from nothing?",
    prompt="""
        You sampled about 100 instructions from SmolLM2's pre-query prefix and clustered them.
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
             ["A few human-written example tasks and the request to write more like them",
              "Only the text the chat template writes before a user's words (with any default "
              "system turn it adds), and no request at all",
              "A random topic word that the model expands into a question",
              "An empty string"],
             answer=1,
             why="The prefix is the template up to the user's content; the model fills in the user's "
                 "message itself."),
    Question("Why does an aligned model write a user's request when it is given only that prefix?",
             ["During fine-tuning that exact position was always followed by a user's message, so a "
              "request is the most likely continuation",
              "It was trained to refuse empty prompts and asks for clarification",
              "llama.cpp inserts a hidden instruction",
              "The system turn tells it to invent questions"],
             answer=0,
             why="The model continues the text the way its training conversations continued: with a "
                 "user turn."),
    Question("In the lab, the prefix without SmolLM2's default system turn made the model start with "
             "code and markdown far more often. What does that show?",
             ["The system turn contains instructions to avoid code",
              "Removing text always makes outputs shorter",
              "The prefix must match the layout the model was trained on; a different prefix "
              "changes the model's idea of who is talking",
              "The cache returned stale samples"],
             answer=2,
             why="SmolLM2 was fine-tuned with that system turn in place; without it the context looks "
                 "less like its chats and more like other text it has seen."),
    Question("You raise the sampling temperature from 0.6 to 1.3 for Magpie instructions. What do "
             "you expect?",
             ["Fewer distinct n-grams and more finished instructions",
              "No change: the prefix decides everything",
              "Only the responses change",
              "More distinct n-grams and lower pairwise similarity, but more rambling, unfinished or "
              "non-English instructions for the filters to drop"],
             answer=3,
             why="Hotter sampling spreads probability over rarer tokens: more variety, lower quality."),
    Question("Why compare distinct-2 between sets of the same size (and keep an eye on text length)?",
             ["Pooling more n-grams gives more chances to repeat one, so distinct-n falls as a set "
              "grows, and longer texts hold more n-grams",
              "Because the embeddings need it",
              "Because k-means needs equal sizes",
              "It does not matter"],
             answer=0,
             why="distinct-n is unique over total n-grams: more n-grams, more repeats, so only like is "
                 "compared with like."),
    Question("Compared with Self-Instruct, which statement about Magpie is right?",
             ["It needs a larger set of seed tasks",
              "It cannot produce near-duplicates, so it needs no dedup filter",
              "It needs no seed tasks, but its topics follow the teacher's idea of typical users, "
              "which is a bias of its own",
              "It only works with Llama 3 models"],
             answer=2,
             why="No seeds means no seed bias, not no bias: the teacher's habits shape the topic mix, "
                 "and filters are still needed."),
])
