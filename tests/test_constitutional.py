"""Constitutional AI (synthkit.constitutional and `synthkit cai`/`synthkit dpo`): the programs
decide what their rules say, the constitution loads and refuses bad files with the fix, the
split is deterministic, the measurements and pair filters count right, and the loop runs for
real on the embedded model with every record carrying its provenance."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthkit import constitutional as cai
from synthkit.records import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]


# --- the programs -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, kinds", [
    ("Write to help+orders@shop.example.co.uk today.", {"email"}),
    ("Call +1 (555) 123-4567 or 555.123.4567.", {"phone"}),
    ("See https://example.org/a?b=1, www.python.org or docs.python.org/3/.", {"link"}),
    ("Mail jo123456789@x.com", {"email"}),               # digits of an address are not a phone number
    ("https://x.org/item/1234567890", {"link"}),          # nor are the digits of a link
    ("On 2024-05-01 at 10:30 it cost $1,299.99 (v1.2.3).", set()),
    ("Ask @jo, or jo at example dot com, about report.pdf and Node.js.", set()),
    ("Dial 555-1234 or 1234 5678.", set()),               # 7 and 8 digits: too short
    ("", set()),
])
def test_contact_details(text, kinds):
    assert cai.find_contact_details(text) == kinds


@pytest.mark.parametrize("check, reply, ok", [
    ("not_a_person", "I'm happy to help! As an AI I have no body.", True),
    ("not_a_person", "I grew up in a small town with my family.", False),
    ("not_a_person", "I am feeling great today!", False),
    ("not_a_person", "I am not a human; I am a language model.", True),
    ("no_refusal", "I'm sorry, but I can't help with that request.", False),
    ("no_refusal", "Sure: press Ctrl+C, or run kill with the process id.", True),
    ("no_refusal", "As an AI, I cannot give advice on that.", False),
    ("word_limit", " ".join(["word"] * 60), True),
    ("word_limit", " ".join(["word"] * 61), False),
])
def test_programs(check, reply, ok):
    assert cai.CHECKS[check]("a request", reply).passed is ok


def test_language_rule_follows_the_request():
    ask_es = "¿Cuál es la capital de Francia? Responde en español."
    assert cai.requested_language(ask_es) == "es"
    assert cai.requested_language("Explain why the sky is blue, in French please.") == "fr"
    assert cai.requested_language("What is the capital of France?") == "en"
    assert cai.check_same_language(ask_es, "La capital de Francia es París, una ciudad muy bonita.").passed
    assert not cai.check_same_language(ask_es, "The capital of France is Paris, and it is a lovely city.").passed
    assert cai.check_same_language(ask_es, "París.").passed  # too short to tell: not a violation


# --- the constitution and the prompts ------------------------------------------------------------

def test_the_course_constitution_and_prompts():
    rules = cai.load_constitution()
    assert len(rules.principles) >= 6 and len({p.id for p in rules.principles}) == len(rules.principles)
    assert sum(p.checkable for p in rules.principles) >= 5 and any(not p.checkable for p in rules.principles)
    prompts = cai.cai_prompts()
    assert len(prompts["red_team"]) >= 40 and len(prompts["neutral"]) >= 30
    checkable = {p.id for p in rules.principles if p.checkable}
    assert {p["principle"] for p in prompts["red_team"]} <= checkable
    train, held = cai.split_prompts(prompts["red_team"])
    assert not {p["id"] for p in train} & {p["id"] for p in held}
    assert len(train) + len(held) == len(prompts["red_team"])
    assert {p["principle"] for p in held} == {p["principle"] for p in train}  # every rule on both sides
    again = cai.split_prompts(list(reversed(prompts["red_team"])))
    assert {p["id"] for p in again[1]} == {p["id"] for p in held}  # order does not matter


@pytest.mark.parametrize("text, message", [
    ("[[principle]]\nid = 'a'\nrule = 'x'\n", "lacks critique, revision"),
    ("[[principle]\nid = 'a'", "not valid TOML"),
    ("[constitution]\nname = 'x'\n", "no [[principle]] tables"),
    ("[[principle]]\nid='a'\nrule='r'\ncritique='c'\nrevision='v'\ncheck='spelling'\n", "does not have"),
    ("[[principle]]\nid='a'\nrule='r'\ncritique='c'\nrevision='v'\ncheck='word_limit'\nmax_word=3\n",
     "settings the check 'word_limit' does not take"),
    ("[[principle]]\nid='a'\nrule='r'\ncritique='c'\nrevision='v'\n" * 2, "two principles have the id"),
])
def test_bad_constitutions_name_the_fix(tmp_path, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(cai.ConstitutionError, match=message.replace("[", r"\[")):
        cai.load_constitution(path)


def test_a_users_constitution_replaces_the_course_one(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("[constitution]\nname = 'short answers'\n[[principle]]\nid = 'tiny'\n"
                    "rule = 'At most 3 words.'\ncritique = 'More than 3 words?'\nrevision = 'Use 3 words.'\n"
                    "check = 'word_limit'\nmax_words = 3\n")
    rules = cai.load_constitution(path)
    assert rules.ids == ["tiny"] and rules["tiny"].verdict("q", "one two three").passed
    assert not rules["tiny"].verdict("q", "one two three four").passed
    assert "short answers" in rules.tag()


# --- measurements and pairs ---------------------------------------------------------------------

def _record(i, original_ok, revision_ok, critique, original="a", revision="b", principle="brief"):
    return {"id": f"p{i}/0", "prompt": f"prompt {i}", "principle": principle, "original": original,
            "revision": revision, "critique_verdict": critique,
            "program": None if original_ok is None else {"original": original_ok, "revision": revision_ok},
            "provenance": {"technique": cai.TECHNIQUE}}


def test_measurements_count_the_table_right():
    recs = [_record(0, False, True, "violation"),     # TP, fixed
            _record(1, False, False, "violation"),    # TP, not fixed
            _record(2, False, True, "ok"),            # FN, fixed
            _record(3, True, True, "violation"),      # FP
            _record(4, True, False, "unclear"),       # TN (unclear does not flag), broken
            _record(5, True, True, "ok"),             # TN
            _record(6, None, None, "violation", principle="kind-tone")]  # judge-only: left out
    t = cai.critique_table(recs)
    assert (t["TP"], t["FP"], t["FN"], t["TN"], t["n"]) == (2, 1, 1, 2, 6)
    assert t["accuracy"]["rate"] == pytest.approx(4 / 6) and t["unclear"]["k"] == 1
    lo, hi = t["accuracy"]["ci"]
    assert 0 < lo < 4 / 6 < hi < 1
    assert cai.compliance(recs)["k"] == 3 and cai.compliance(recs, "revision")["k"] == 4
    rates = cai.revision_rates(recs)
    assert (rates["fix"]["k"], rates["fix"]["n"], rates["break"]["k"], rates["break"]["n"]) == (2, 3, 1, 3)


def test_pair_filters_and_trl_format():
    recs = [_record(0, False, True, "violation"), _record(1, False, False, "violation"),
            _record(2, True, False, "ok"), _record(3, False, True, "ok", original="same", revision="same "),
            _record(4, None, None, "violation", principle="kind-tone"), _record(5, False, True, "ok", revision=" ")]
    raw, by_critique, verified = (cai.to_pairs(recs, f) for f in ("none", "critique", "verified"))
    assert [p["id"] for p in raw] == ["p0/0", "p1/0", "p2/0", "p4/0"]  # identical and blank sides dropped
    assert [p["id"] for p in by_critique] == ["p0/0", "p1/0", "p4/0"]
    assert [p["id"] for p in verified] == ["p0/0"]
    assert verified[0]["chosen"] == "b" and verified[0]["rejected"] == "a"
    q = cai.pair_quality(raw)
    assert (q["pairs"], q["checked"], q["chosen better"]["k"], q["chosen worse"]["k"]) == (4, 3, 1, 1)
    assert cai.pair_quality(verified)["chosen better"]["rate"] == 1.0
    assert cai.to_trl(verified) == [{"prompt": "prompt 0", "chosen": "b", "rejected": "a"}]
    conv = cai.to_trl(verified, conversational=True)[0]
    assert conv["prompt"] == [{"role": "user", "content": "prompt 0"}]
    assert conv["chosen"] == [{"role": "assistant", "content": "b"}]
    with pytest.raises(ValueError, match="unknown filter"):
        cai.to_pairs(recs, "judge")


# --- the loop, for real ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    os.environ["SYNTHKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cai-cache"))
    from synthkit import load_model
    return load_model()


SMALL = cai.RESPOND.replace(max_tokens=48)


def test_the_loop_runs_batched_with_provenance(teacher):
    prompts = [p for p in cai.cai_prompts()["red_team"] if p["principle"] in ("no-contact-details", "brief")][:3]
    prompts += [{"id": "x", "prompt": "Be rude to me about my spelling.", "principle": "kind-tone"}]
    calls = []
    real_generate = teacher.generate
    teacher.generate = lambda texts, *a, **k: calls.append(len(texts)) or real_generate(texts, *a, **k)
    try:
        recs = cai.constitutional_ai(teacher, prompts, n=2, respond=SMALL, revise=SMALL, progress=False)
    finally:
        del teacher.generate
    assert calls == [4, 8, 8]  # three batched calls: 2 replies per prompt, one critique and revision each
    assert len(recs) == 8 and [r["id"] for r in recs[:2]] == [f"{prompts[0]['id']}/0", f"{prompts[0]['id']}/1"]
    rules = cai.load_constitution()
    for r in recs:
        assert r["original"] and r["critique_verdict"] in ("violation", "ok", "unclear")
        prov = r["provenance"]
        assert prov["technique"] == cai.TECHNIQUE and prov["principle"] == r["principle"]
        assert prov["license"] == "Apache-2.0" and prov["model"] and "seed" in prov and prov["params"]
        assert prov["constitution"] == rules.tag() and prov["critique_params"]["temperature"] == 0
        if r["principle"] == "kind-tone":
            assert r["program"] is None
        else:  # the record's verdicts are the program's, recomputed here
            assert r["program"]["original"] == rules[r["principle"]].verdict(r["prompt"], r["original"]).passed
            assert r["program"]["revision"] == rules[r["principle"]].verdict(r["prompt"], r["revision"]).passed
    again = cai.constitutional_ai(teacher, prompts, n=2, respond=SMALL, revise=SMALL, progress=False)
    assert again == recs and teacher.last_stats.from_cache == teacher.last_stats.sequences  # resumable


def test_cli_writes_pairs_records_and_refuses_bad_input(tmp_path, teacher):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def synthkit(*args):
        return subprocess.run([sys.executable, "-m", "synthkit.cli", *args], capture_output=True, text=True,
                              timeout=300, cwd=ROOT, env=env)

    prompts = tmp_path / "prompts.jsonl"
    write_jsonl([{"prompt": "Give me a phone number for a taxi.", "principle": "no-contact-details"},
                 {"prompt": "Tell me about your childhood.", "principle": "not-a-person"}], prompts)
    out = synthkit("cai", str(prompts), "--out", str(tmp_path / "pairs.jsonl"), "--filter", "none",
                   "--format", "chat", "--max-tokens", "40")
    assert out.returncode == 0, out.stderr
    assert "critiques right" in out.stdout and "revisions that fix" in out.stdout
    records = read_jsonl(tmp_path / "pairs.records.jsonl")
    assert len(records) == 2 and all(r["provenance"]["technique"] == cai.TECHNIQUE for r in records)
    for pair in read_jsonl(tmp_path / "pairs.jsonl"):
        assert set(pair) == {"prompt", "chosen", "rejected"} and pair["chosen"][0]["role"] == "assistant"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "principle": "no-such-rule"}\n')
    out = synthkit("cai", str(bad), "--out", str(tmp_path / "x.jsonl"))
    assert out.returncode == 2 and "no-such-rule" in out.stderr and "no-contact-details" in out.stderr
    bad.write_text('{"prompt": "hi"\n')
    out = synthkit("cai", str(bad), "--out", str(tmp_path / "x.jsonl"))
    assert out.returncode == 2 and "line 1" in out.stderr and "Traceback" not in out.stderr
    out = synthkit("dpo", str(bad), "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and "line 1, is not valid JSON" in out.stderr
    bad.write_text(json.dumps({"prompt": "hi", "response": "there"}) + "\n")
    out = synthkit("dpo", str(bad), "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and "'prompt', 'chosen' and 'rejected'" in out.stderr
    out = synthkit("dpo", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and "cannot read" in out.stderr


# --- the price of training: scoring exactly what was sampled -------------------------------------

def test_sampled_logps_scores_the_sampled_tokens_and_only_real_ends(torch_teacher):
    from synthkit import Sampling
    from synthkit.train import to_llamacpp

    model = torch_teacher
    exact = to_llamacpp(model, dtype="f32")  # the same weights, unrounded: what lab 05 samples its KL from
    prompts = ["Answer with one word: is the sea wet?", "Write a long story about a red fox in the snow."]
    draw = Sampling(temperature=1.0, top_p=1.0, top_k=0, max_tokens=16, logprobs=1, seed=3)
    gens = exact.chat(prompts, draw, n=3, progress=False, cache=False)
    assert {g.finish_reason for g in gens} == {"stop", "length"}, "the test needs both endings"
    scored = cai.sampled_logps(model, gens)
    alone = cai.sampled_logps(model, gens, batch_size=1)  # padding a batch changes nothing
    assert [n for _, n in scored] == [n for _, n in alone]
    assert [t for t, _ in scored] == pytest.approx([t for t, _ in alone], abs=1e-3)
    for g, (total, n) in zip(gens, scored):
        # the sampler's own log-probs of the tokens it drew: the f32 export and torch agree
        drawn = sum(t["logprob"] for t in g.logprobs)
        if g.finish_reason == "length":  # cut off: nothing scored after the last sampled token
            assert n == len(g.token_ids) and total == pytest.approx(drawn, abs=0.05)
        else:  # stopped: one more term, the chance of ending the turn there
            assert n == len(g.token_ids) + 1 and total < drawn + 0.05
    assert not model.model.training
