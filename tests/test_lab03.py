"""Lab 03 (Magpie): the metrics it added, its exercise checkers, and the claims its notebook makes
about the real teacher."""
from __future__ import annotations

import random

import numpy as np
import pytest

from synthkit import Sampling, load_model, magpie, metrics
from synthkit.data import wiki_summaries
from synthkit.labs import lab03
from synthkit.metrics import TOPIC_STOP_WORDS


@pytest.fixture(scope="module")
def model():
    return load_model(n_ctx=1024, n_parallel=8)


def _solved(*exercises) -> dict:
    ns = {"TOPIC_STOP_WORDS": TOPIC_STOP_WORDS}
    for ex in exercises:
        exec(ex.solution_code, ns)
    return ns


def _first_sentences(topic: str, k: int, seed: int = 0) -> list[str]:
    pool = [s["text"].split(". ")[0] for s in wiki_summaries() if s["topic"] == topic]
    return random.Random(seed).sample(pool, k)


# --- metrics added for the lab ---------------------------------------------------------

def test_effective_number():
    assert metrics.effective_number([0, 1, 2, 3]) == pytest.approx(4.0)
    assert metrics.effective_number(["a"] * 10) == pytest.approx(1.0)
    assert metrics.effective_number(np.array([5] * 98 + [6, 7])) < 1.2
    two = metrics.effective_number([0] * 30 + [1] * 10)
    assert 1.0 < two < 2.0
    with pytest.raises(ValueError):
        metrics.effective_number([])


def test_topic_words_ranks_distinctive_words_first():
    texts = ["Bake the bread with yeast", "bread dough needs yeast", "Yeast, flour: bread!",
             "fix the python code", "python code raises an error", "my code needs a fix",
             "the bread and the code"]  # "bread" and "code" also appear once outside
    labels = [3, 3, 3, 8, 8, 8, 3]
    words = metrics.topic_words(texts, labels, k=2)
    assert set(words) == {3, 8}
    assert words[3][0] in {"bread", "yeast"} and set(words[3]) <= {"bread", "yeast"}
    assert words[8][0] == "code" and words[8][1] in {"python", "fix", "needs"}
    # no stop words, nothing under 3 letters, and a numpy label array works the same
    assert metrics.topic_words(texts, np.array(labels), k=2) == words
    everything = metrics.topic_words(texts, labels, k=50)
    assert all(w not in TOPIC_STOP_WORDS and len(w) >= 3 for ws in everything.values() for w in ws)


def test_topic_words_on_real_wikipedia_subjects():
    maths = _first_sentences("Mathematics", 12)
    people = _first_sentences("People", 12)
    words = metrics.topic_words(maths + people, [0] * 12 + [1] * 12, k=5)
    # each subject's top words occur in more of its own sentences than of the other subject's
    for cluster, own, other in [(0, maths, people), (1, people, maths)]:
        for w in words[cluster]:
            share_own = np.mean([w in metrics._topic_word_set(t) for t in own])
            share_other = np.mean([w in metrics._topic_word_set(t) for t in other])
            assert share_own > share_other, (cluster, w)


def test_silhouette_by_k_finds_planted_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    x = np.vstack([c + rng.normal(size=(20, 16)) * 0.3 for c in centres])
    curve = metrics.silhouette_by_k(x, max_k=8)
    assert list(curve) == list(range(2, 9))
    assert max(curve, key=curve.get) == 3
    labels, k = metrics.topic_clusters(x, max_k=8)
    assert k == 3 and metrics.effective_number(labels) == pytest.approx(3.0)


def test_diversity_report_separates_varied_from_repetitive_text():
    varied = [s for topic in ("Arts", "Mathematics", "Geography", "Biology and health sciences")
              for s in _first_sentences(topic, 6, seed=1)]
    things = ["a tent", "a bicycle", "a laptop", "a kettle", "a sofa", "a camera", "a guitar", "a lamp"]
    samey = [f"Can you provide a list of the best places to buy {t} in my city?" for t in things]
    samey += [f"Can you provide a list of the best places to sell {t} in my city?" for t in things]
    samey += [f"Can you provide a list of the best ways to clean {t} at home?" for t in things]
    samey = samey[:len(varied)]
    a = metrics.diversity_report(varied, max_k=6)
    b = metrics.diversity_report(samey, max_k=6)
    for report, texts in ((a, varied), (b, samey)):
        assert report["texts"] == len(texts) and len(report["labels"]) == len(texts)
        assert 2 <= report["topics"] <= 6
        assert 1.0 <= report["effective_topics"] <= report["topics"] + 1e-9
        assert set(report["topic_words"]) == set(np.unique(report["labels"]).tolist())
    assert a["distinct_2"] > b["distinct_2"] + 0.2
    assert a["mean_cosine"] < b["mean_cosine"] - 0.2
    assert a["self_rouge"] < b["self_rouge"]
    with pytest.raises(ValueError):
        metrics.diversity_report(["one", "two", "three"])


# --- the exercise checkers -------------------------------------------------------------


def test_made_up_templates_agree_with_the_library():
    """The checker's random templates render, and its expected prefix is the library's."""
    from synthkit.models.chat import render_chat
    rng = random.Random(7)
    for i in range(60):
        family = lab03._FAMILIES[i % len(lab03._FAMILIES)]
        template, bos, default_system = lab03._random_template(rng, family)
        expected = lab03._reference_prefix(template, bos)
        assert expected == magpie.pre_query_template(template, bos)
        rendered = render_chat(template, [{"role": "user", "content": "Hi there"}], bos_token=bos)
        assert rendered.startswith(expected + "Hi there")
        if default_system:
            assert "assistant named" in expected or "You are a" in expected


@pytest.mark.parametrize("code,expected_words", [
    ('def pre_query_prefix(template, bos_token=""):\n    return "<|im_start|>user\\n"', "not what the template renders"),
    ('def pre_query_prefix(template, bos_token=""):\n'
     '    from synthkit.models.chat import render_chat\n'
     '    t = render_chat(template, [{"role": "user", "content": "XYZMARK"}], bos_token=bos_token,'
     ' add_generation_prompt=False)\n'
     '    return bos_token + t[:t.index("XYZMARK")]', "never writes bos_token"),
    ('from synthkit.magpie import pre_query_template\n'
     'def pre_query_prefix(template, bos_token=""):\n    return pre_query_template(template, bos_token)',
     "earns nothing"),
])
def test_wrong_prefixes_fail(code, expected_words):
    found = False
    for _ in range(4):  # the bos trap needs a template with a BOS it does not write: SmolLM2's is one
        ns: dict = {}
        exec(code, ns)
        result = lab03.ex1.grade(ns)
        assert result.status == "fail", str(result)
        found = found or expected_words in result.message
    assert found, result.message


# --- ex2: the nearest-neighbour filter ----------------------------------------------------

def _brute_keep(x, t):
    u = np.asarray(x, dtype=float)
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    return [all(1 - u[i] @ u[j] > t for j in range(i)) for i in range(len(u))]


def test_distance_filter_keeps_the_first_of_each_group():
    # a chain a ~ b ~ c with a and c apart: b and c both go (each has a near row before it)
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([np.cos(0.3), np.sin(0.3), 0.0])        # distance 1 - cos(0.3) ~ 0.045 from a
    c = np.array([np.cos(0.6), np.sin(0.6), 0.0])        # ~0.045 from b, ~0.175 from a
    far = np.array([0.0, 0.0, 7.0])                      # any length: cosine only sees direction
    mask = magpie.distance_filter(np.stack([a, b * 3, c, far]), 0.1)
    assert mask.tolist() == [True, False, False, True]
    assert magpie.distance_filter(np.stack([a, c]), 0.1).tolist() == [True, True]
    assert magpie.distance_filter(np.zeros((0, 4)), 0.1).tolist() == []
    rng = np.random.default_rng(1)
    for n in (1, 2, 30, 1500):   # 1500 crosses the block size
        x = rng.normal(size=(n, 6))
        x[n // 2:] = x[: n - n // 2] + rng.normal(size=(n - n // 2, 6)) * 0.05  # planted rewordings
        assert magpie.distance_filter(x, 0.05).tolist() == _brute_keep(x, 0.05)
    nn = magpie.min_neighbour_distance(np.stack([a, b, c, far]))
    assert nn[0] == pytest.approx(1 - np.cos(0.3)) and nn[3] == pytest.approx(1.0)


def test_distance_filter_rejects_bad_input_clearly():
    with pytest.raises(ValueError, match="all zeros"):
        magpie.distance_filter(np.array([[1.0, 0.0], [0.0, 0.0]]), 0.1)
    with pytest.raises(ValueError, match="2-D"):
        magpie.distance_filter(np.array([1.0, 2.0]), 0.1)
    with pytest.raises(ValueError, match="number"):
        magpie.distance_filter(np.eye(3), float("nan"))


def test_distance_filter_on_real_rewordings():
    """Real sentences: a rewording sits within the lab's threshold of its original, and
    unrelated requests do not."""
    texts = ["How do I bake sourdough bread at home?",
             "What is the capital city of Australia?",
             "How can I make sourdough bread in my own kitchen?",
             "Write a short poem about the autumn rain.",
             "Which city is the capital of Australia?",
             "Explain how a bicycle gear works."]
    mask = magpie.distance_filter(metrics.embed(texts), magpie.MIN_DISTANCE)
    assert mask.tolist() == [True, True, False, True, False, True]


def test_filter_reasons_can_run_the_embedding_filter():
    records = [{"instruction": t, "finish_reason": "stop"} for t in (
        "How do I bake sourdough bread at home?", "How can I make sourdough bread in my own kitchen?",
        "What is the capital city of Australia?")]
    assert magpie.filter_reasons(records) == [None, None, None]
    reasons = magpie.filter_reasons(records, min_distance=magpie.MIN_DISTANCE)
    assert reasons[0] is None and reasons[2] is None and reasons[1].startswith("semantic near-duplicate")


_SLIPS = {
    "kept only": ("    keep = []\n    for i in range(len(x)):\n"
                  "        keep.append(all(1 - x[i] @ x[j] > min_distance for j in range(i) if keep[j]))\n"
                  "    return keep", "KEPT so far"),
    "raw dot": ("    x = np.asarray(embeddings, dtype=float)\n"
                "    return [bool(np.all(1 - x[:i] @ x[i] > min_distance)) for i in range(len(x))]", "norm"),
    "keeps last": ("    return [bool(np.all(1 - x[i + 1:] @ x[i] > min_distance)) for i in range(len(x))]",
                   "LAST"),
    "similarity": ("    return [bool(np.all(x[:i] @ x[i] < min_distance)) for i in range(len(x))]", "SIMILARITY"),
    "ints": ("    return [1] * len(x)", "True/False"),
}


@pytest.mark.parametrize("slip", list(_SLIPS))
def test_wrong_distance_filters_fail_with_a_diagnosis(slip):
    body, expected = _SLIPS[slip]
    code = ("import numpy as np\n"
            "def distance_filter(embeddings, min_distance):\n"
            "    x = np.asarray(embeddings, dtype=float)\n"
            "    x = x / np.linalg.norm(x, axis=1, keepdims=True) if len(x) else x\n" + body + "\n")
    messages = []
    for _ in range(4):
        ns: dict = {}
        exec(code, ns)
        result = lab03.ex2.grade(ns)
        assert result.status == "fail", str(result)
        messages.append(result.message)
    assert any(expected in m for m in messages), messages


def test_distance_filter_library_copy_mutation_and_missing_fail():
    assert lab03.ex2.grade({"distance_filter": magpie.distance_filter}).status == "fail"
    ns: dict = {}
    exec("import numpy as np\n"
         "def distance_filter(embeddings, min_distance):\n"
         "    x = embeddings\n"
         "    if len(x) == 0:\n        return []\n"
         "    x /= np.linalg.norm(x, axis=1, keepdims=True)\n"
         "    return [bool(np.all(1 - x[:i] @ x[i] > min_distance)) for i in range(len(x))]\n", ns)
    result = lab03.ex2.grade(ns)
    assert result.status == "fail" and "changed the embeddings" in result.message, str(result)
    assert lab03.ex2.grade({}).status == "missing"


def test_share_interval():
    low, high = metrics.share_interval(0, 12)
    assert low == 0.0 and 0.2 < high < 0.3           # 0 of 12 is not proof of 0%
    low, high = metrics.share_interval(6, 12)
    assert low < 0.5 < high and high - 0.5 == pytest.approx(0.5 - low)
    assert metrics.share_interval(50, 100)[1] - metrics.share_interval(50, 100)[0] < high - low
    with pytest.raises(ValueError):
        metrics.share_interval(3, 2)


def test_frequency_only_topic_words_fail():
    ns = {"TOPIC_STOP_WORDS": TOPIC_STOP_WORDS}
    exec("import re\nfrom collections import Counter\n"
         "def topic_words(texts, labels, k=3):\n"
         "    out = {}\n"
         "    for c in set(labels):\n"
         "        cnt = Counter(w for t, l in zip(texts, labels) if l == c\n"
         "                      for w in set(re.findall(r'[a-z]+', t.lower()))\n"
         "                      if len(w) >= 3 and w not in TOPIC_STOP_WORDS)\n"
         "        out[c] = [w for w, _ in cnt.most_common(k)]\n"
         "    return out\n", ns)
    failures = [lab03.ex3.grade(ns) for _ in range(3)]
    assert all(r.status == "fail" for r in failures), [str(r) for r in failures]
    assert any("distinctive" in r.message for r in failures)
    assert lab03.ex3.grade({"topic_words": metrics.topic_words}).status == "fail"


def test_blank_stubs_score_missing():
    ns: dict = {}
    for name, sig in [("pre_query_prefix", "template, bos_token=''"), ("distance_filter", "embeddings, min_distance"),
                      ("topic_words", "texts, labels, k=3")]:
        exec(f"def {name}({sig}):\n    raise NotImplementedError('Write your code here')\n", ns)
    for ex in (lab03.ex1, lab03.ex2, lab03.ex3):
        assert ex.grade(ns).status == "missing"


# --- what the notebook says about the real teacher ------------------------------------

def test_prefix_keeps_smollm2s_default_system_turn(model):
    prefix = magpie.pre_query_template(model.chat_template, model.bos_token)
    assert prefix.startswith("<|im_start|>system\n") and prefix.endswith("<|im_start|>user\n")
    assert "SmolLM" in prefix
    steered = magpie.pre_query_template(model.chat_template, model.bos_token, system="You teach maths.")
    assert steered == "<|im_start|>system\nYou teach maths.<|im_end|>\n<|im_start|>user\n"
    ns = _solved(lab03.ex1)
    assert ns["pre_query_prefix"](model.chat_template, model.bos_token) == prefix


def test_the_system_turn_makes_the_first_token_a_request_opener(model):
    """The notebook's 'why it works' plot: after the full prefix the likely first tokens open a
    request; after the bare user header, far less of the mass does."""
    prefix = magpie.pre_query_template(model.chat_template, model.bos_token)
    openers = {"I", "Can", "What", "How", "Hey", "Hi", "Hello", "Is", "Could", "Please", "Write", "Why"}
    first = Sampling(temperature=0, max_tokens=1, logprobs=10)

    def opener_mass(p):
        top = model.generate(p, first, progress=False, cache=False)[0].logprobs[0]["top"]
        return sum(np.exp(lp) for token, lp in top if token.strip() in openers)

    full, bare = opener_mass(prefix), opener_mass("<|im_start|>user\n")
    assert full > 0.5 and full > 2 * bare, (full, bare)


def test_magpie_instructions_are_mostly_usable_and_temperature_trades_quality(model):
    cool = magpie.generate_instructions(model, 12, seed=3, progress=False,
                                        sampling=magpie.INSTRUCTION_SAMPLING.replace(temperature=0.6))
    hot = magpie.generate_instructions(model, 12, seed=3, progress=False,
                                       sampling=magpie.INSTRUCTION_SAMPLING.replace(temperature=1.4))
    ok = lambda recs: sum(why is None for why in magpie.filter_reasons(recs))  # noqa: E731
    assert ok(cool) >= 8
    assert ok(hot) < ok(cool)
    assert metrics.distinct_n([r["instruction"] for r in hot], 2) > metrics.distinct_n(
        [r["instruction"] for r in cool], 2)


def test_a_maths_system_prompt_steers_magpie_towards_maths(model):
    """The notebook's steering experiment, smaller: the same seeds and sampling, with and without
    a maths-tutor system turn; the steered arm holds clearly more maths requests."""
    import re
    maths = re.compile(r"\b(maths?|mathematic\w*|equations?|solve|calculat\w*|algebra\w*|geometr\w*|"
                       r"probabilit\w*|percent\w*|fractions?|multipl\w*|divid\w*|formula|arithmetic|"
                       r"integers?|numbers?)\b|\d\s*[-+*/^=]\s*\d", re.IGNORECASE)
    system = ("You are a patient maths tutor. People bring you maths problems of every kind, from "
              "arithmetic and percentages to algebra, geometry and probability, and you help them "
              "work each one out step by step.")
    plain = magpie.generate_instructions(model, 24, seed=0, progress=False)
    steered = magpie.generate_instructions(model, 24, seed=0, progress=False, system=system)
    count = lambda recs: sum(bool(maths.search(r["instruction"])) for r in recs)  # noqa: E731
    k_plain, k_steered = count(plain), count(steered)
    assert k_steered >= k_plain + 5, (k_plain, k_steered)
    assert metrics.share_interval(k_steered, 24)[0] > metrics.share_interval(k_plain, 24)[0]
