"""synthkit.audit and `synthkit audit`: each check on planted cases (found where planted,
silent on look-alikes), the n-gram rule against a brute-force scan, the teacher-terms table
(SPDX ids valid, sources and check dates given, the most specific row wins and no two rows
tie), and bad input (not JSON, not an object, huge lines, empty and binary files) reported by
line with the findings before it kept."""
from __future__ import annotations

import datetime
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from synthkit import audit
from synthkit.errors import SynthkitError
from synthkit.labs.lab09 import reference_dirty

ROOT = Path(__file__).resolve().parents[1]
PROV = {"technique": "magpie", "model": "SmolLM2-135M-Instruct-Q4_1", "license": "Apache-2.0",
        "params": {"temperature": 1.0}, "seed": 0, "index": 0}


def _write(tmp_path, lines, name="data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- teacher terms ----------------------------------------------------------------------
def test_teacher_terms_table_is_complete_and_valid():
    rows = audit.teacher_terms()
    names = [r["name"] for r in rows]
    assert len(set(names)) == len(names)
    for teacher in ("SmolLM2", "Llama 2", "Llama 3 (", "Llama 3.1", "Llama 3.2", "Llama 3.3", "Apache-2.0 sizes",
                    "Qwen research licence", "Qwen licence", "Mistral 7B", "Gemma 1 to 3", "Gemma 4", "gpt-oss",
                    "OpenAI API", "Anthropic", "Gemini"):
        assert any(teacher in n for n in names), teacher
    for r in rows:
        assert r["source"].startswith("https://"), r["name"]
        assert isinstance(r["checked"], datetime.date), r["name"]  # a TOML date, not free text
        assert r["evidence"].startswith("read offline:") or "not found offline" in r["evidence"], r["name"]
        assert isinstance(r["restricts_competing_models"], bool) and len(r["outputs"]) > 40
        assert r["models"] and all(m == m.lower() for m in r["match"]), r["name"]
        if r["spdx"]:
            assert audit.spdx_problems(r["spdx"]) == [], r["name"]
    assert audit.spdx_problems("Llama-3-Community") != []  # custom licences are not SPDX ids
    assert "NOT LEGAL ADVICE" in (ROOT / "synthkit" / "data" / "teacher_terms.toml").read_text()


def test_no_two_rows_tie_for_any_model_id_a_row_names():
    """Every model id and every match piece a row names selects that row, and no other row
    fits it as well (the most specific match wins, so the file order cannot matter)."""
    for row in audit.teacher_terms():
        for model in row["models"] + row["match"]:
            fits = audit.matching_terms(model)
            assert fits and fits[0][1]["name"] == row["name"], (model, [(k, r["name"]) for k, r in fits])
            assert len(fits) == 1 or fits[1][0] < fits[0][0], (model, [(k, r["name"]) for k, r in fits])


def test_row_order_does_not_matter(monkeypatch):
    rows = audit._terms()
    monkeypatch.setattr(audit, "_terms", lambda: tuple(reversed(rows)))
    for row in rows:
        for model in row["models"]:
            assert audit.terms_for(model)["name"] == row["name"], model


@pytest.mark.parametrize("model, name, restricts", [
    ("SmolLM2-135M-Instruct-Q4_1", "SmolLM2", False), ("Meta-Llama-3.1-8B-Instruct", "Llama 3.1", True),
    ("meta-llama/Meta-Llama-3-8B-Instruct", "Llama 3 (", True), ("meta-llama/Llama-2-13b-chat-hf", "Llama 2", True),
    # the reviewer's cases: 3.2 and 3.3 fell into the Llama 3 row, Qwen2.5-3B/72B into the Apache row
    ("meta-llama/Llama-3.2-3B-Instruct", "Llama 3.2", True), ("Llama-3.3-70B-Instruct", "Llama 3.3", True),
    ("llama3.2:1b", "Llama 3.2", True), ("Llama_3_2_1B", "Llama 3.2", True),
    ("Qwen/Qwen2.5-7B-Instruct", "Apache-2.0 sizes", False), ("Qwen/Qwen2.5-32B-Instruct-GGUF", "Apache-2.0 sizes", False),
    ("Qwen/Qwen2.5-3B-Instruct", "research licence", True), ("Qwen/Qwen2.5-Coder-3B-Instruct", "research licence", True),
    ("Qwen2.5-72B-Instruct", "Qwen licence", True), ("qwen2.5:72b", "Qwen licence", True),
    ("mistralai/Mistral-7B-Instruct-v0.3", "Mistral", False),
    ("google/gemma-2-2b-it", "Gemma 1 to 3", True), ("google/gemma-4-E4B-it", "Gemma 4", False),
    ("gpt-4o-mini", "OpenAI API", True), ("openai/gpt-oss-20b", "gpt-oss", False), ("claude-3-5-haiku", "Anthropic", True),
])
def test_terms_for_matches_model_names(model, name, restricts):
    row = audit.terms_for(model)
    assert row is not None and name in row["name"] and row["restricts_competing_models"] is restricts


@pytest.mark.parametrize("model", ["my-own-model-v2", "llama-30b", "Qwen2.5-Instruct", "Llama-4-Scout-17B-16E"])
def test_names_no_row_covers_are_not_guessed(model):
    """A bare family name, a size the table has not checked or a model that only contains a
    row's piece inside a longer number ('llama-3' in 'llama-30b') is not in the table."""
    assert audit.terms_for(model) is None


def test_a_name_two_rows_fit_equally_is_an_error_and_a_finding():
    with pytest.raises(SynthkitError, match="equally well"):
        audit.terms_for("claude-gemini-merge")
    found = audit.check_provenance({"provenance": {**PROV, "model": "claude-gemini-merge"}}, 5)
    assert [(f.line, f.kind) for f in found] == [(5, "ambiguous-teacher")]


# --- provenance ---------------------------------------------------------------------------
def test_provenance_check_flags_what_is_missing_and_keeps_zero_seeds():
    assert [f.kind for f in audit.check_provenance({"provenance": PROV}, 3)] == []
    assert [f.kind for f in audit.check_provenance({"provenance": {**PROV, "params": {}, "seed": 0}})] == []
    kinds = [f.kind for f in audit.check_provenance({"provenance": {**PROV, "seed": None, "license": "unknown"}}, 7)]
    assert kinds == ["missing-seed", "unknown-license"]
    bare = {k: v for k, v in PROV.items() if k != "model"}
    assert [f.kind for f in audit.check_provenance({"provenance": bare})] == ["missing-model"]
    assert [f.kind for f in audit.check_provenance({"x": 1})] == ["missing-provenance"]
    llama = audit.check_provenance({"provenance": {**PROV, "model": "Meta-Llama-3-70B-Instruct", "license": "llama3"}})
    assert [f.kind for f in llama] == ["restrictive-terms"] and "llama.com" in llama[0].detail
    assert [f.kind for f in audit.check_provenance({"provenance": {**PROV, "model": "homebrew"}})] == ["unknown-teacher"]


# --- personal data ------------------------------------------------------------------------
def test_pii_found_with_checksums_and_look_alikes_ignored():
    text = ("Mail ana.li@example.org, call (415) 555-0123 or +44 20 7946 0958. Card 4111 1111 1111 1111; "
            "IBAN GB82 WEST 1234 5698 7654 32; host 192.0.2.17 and 2001:db8::7.")
    kinds = [k for k, *_ in audit.find_pii(text)]
    assert sorted(kinds) == sorted(["email", "phone", "phone", "card", "iban", "ip", "ip"])
    decoys = ("Not a card: 4111 1111 1111 1112. Version 1.2.3.4.5 from 2024-03-05 cost $1,299.00; "
              "GB83 WEST 1234 5698 7654 32; 999.10.10.10; the years (1641) and 1368–1644.")
    assert audit.find_pii(decoys) == []


def test_pii_precision_and_recall_on_planted_wikipedia_text():
    from synthkit.data import wiki_summaries

    texts = [r["text"] for r in wiki_summaries()[:120]]
    table = audit.score_pii(audit.plant_pii(texts, seed=7))
    for kind, row in table.items():
        assert row["planted"] > 10, kind
        assert row["recall"] >= 0.95 and row["precision"] >= 0.95, (kind, row)
    # a detector without checksums is measurably worse on the same data: the score can fail
    naive = lambda t: [("card", m.start(), m.end(), m.group()) for m in audit._CARD.finditer(t)]  # noqa: E731
    assert audit.score_pii(audit.plant_pii(texts, seed=7), detector=naive)["card"]["precision"] < 0.9


def test_check_pii_masks_values():
    found = audit.check_pii({"output": "write to someone@example.com", "provenance": PROV}, 4)
    assert [(f.line, f.check, f.kind, f.field) for f in found] == [(4, "pii", "email", "output")]
    assert "someone" not in found[0].value


# --- n-grams --------------------------------------------------------------------------------
def test_ngram_rule_matches_a_brute_force_scan():
    rng = random.Random(3)
    vocab = "a b c d e f g h".split()
    for _ in range(200):
        n = rng.randint(2, 6)
        train = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 15))) for _ in range(rng.randint(1, 4))]
        example = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9)))
        index = audit.NgramIndex(train, n, keep_words=True)
        assert audit.is_dirty(example, index) == reference_dirty(example, train, n), (example, train, n)


def test_overlap_reports_longest_verbatim_run_and_source():
    docs = ["The quick brown fox jumps over the lazy dog near the quiet river bank today.",
            "Copper wires carry signals between the old stone towers of the northern valley."]
    index = audit.NgramIndex(docs, n=5, names=["fox", "wires"])
    o = index.overlap("As they say, copper wires carry signals between the old stone towers; nothing more.")
    assert o["longest"] == 9 and o["name"] == "wires" and 0 < o["share"] < 1
    assert index.overlap("nothing in common with either text at all here")["longest"] == 0
    assert audit.contamination_ngrams(["one two three"] * 20) == 8
    assert audit.contamination_ngrams([" ".join(["w"] * 40)] * 20) == 13


# --- the whole audit, bad input ---------------------------------------------------------------
def test_audit_reports_every_check_by_line_and_survives_bad_lines(tmp_path):
    ref = ["Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi."]
    lines = [
        json.dumps({"instruction": "a", "output": "fine text", "provenance": PROV}),
        "{not json",
        json.dumps({"output": "reach me at a.b@example.com"}),
        "",
        json.dumps(["a", "list"]),
        "x" * 5000,
        json.dumps({"output": "so: alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu.",
                    "provenance": PROV}),
        json.dumps({"instruction": "What is 12 + 30?", "provenance": PROV}),
    ]
    report = audit.audit(_write(tmp_path, lines), reference=ref, eval_sets={"sums": ["What is 12 + 30?"]},
                         max_line_bytes=1000)
    got = {(f.line, f.check, f.kind) for f in report.findings}
    assert got == {(2, "format", "not-json"), (3, "provenance", "missing-provenance"), (3, "pii", "email"),
                   (5, "format", "not-object"), (6, "format", "too-long"), (7, "overlap", "verbatim"),
                   (8, "contamination", "eval-overlap")}
    assert report.records == 4 and report.lines_read == 8
    data = json.loads(report.write_json(tmp_path / "r.json").read_text())
    assert {"line", "check", "kind"} <= set(data["findings"][0]) and "legal advice" in data["not_legal_advice"]
    card = audit.dataset_card(report, pretty_name="planted")
    assert card.data.license == "other"  # one record has no provenance: its terms are unknown
    assert "SmolLM2" in card.text and "verbatim" in card.text and "(no provenance)" in card.text
    clean = audit.audit(_write(tmp_path, lines[:1], "clean.jsonl"))
    assert audit.dataset_card(clean).data.license == "apache-2.0"


@pytest.mark.parametrize("content, message", [
    (b"", "holds no records"), (b"\n  \n", "holds no records"),
    (b"\x00\x01\x02binary\x00", "binary file"),
])
def test_audit_refuses_files_with_nothing_to_audit(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(SynthkitError, match=message):
        audit.audit(path)
    with pytest.raises(SynthkitError, match="does not exist"):
        audit.audit(tmp_path / "missing.jsonl")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "synthkit.cli", "audit", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def test_cli_summary_json_card_and_exit_codes(tmp_path):
    clean = _write(tmp_path, [json.dumps({"instruction": "hi", "output": "hello", "provenance": PROV})], "clean.jsonl")
    out = _cli(clean, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no findings" in out.stdout and "not legal advice" in out.stdout
    dirty = _write(tmp_path, ['{"output": "card 4111-1111-1111-1111"}', "oops", "[]"], "dirty.jsonl")
    out = _cli(dirty, "--json", tmp_path / "r.json", "--card", tmp_path / "card.md", "--checks", "provenance,pii,format",
               cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "line 2: not-json" in out.stdout and "Traceback" not in out.stderr
    findings = json.loads((tmp_path / "r.json").read_text())["findings"]
    assert {(f["line"], f["check"], f["kind"]) for f in findings} == {
        (1, "provenance", "missing-provenance"), (1, "pii", "card"), (2, "format", "not-json"),
        (3, "format", "not-object")}
    assert (tmp_path / "card.md").read_text().startswith("---\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = _cli(empty, cwd=tmp_path)
    assert out.returncode == 2 and "holds no records" in out.stderr and "Traceback" not in out.stderr
    out = _cli(clean, "--reference", tmp_path / "nope.txt", cwd=tmp_path)
    assert out.returncode == 2 and "--reference" in out.stderr
    out = _cli(clean, "--checks", "pii,spelling", cwd=tmp_path)
    assert out.returncode == 2 and "unknown check spelling" in out.stderr


# --- memorisation scoring -----------------------------------------------------------------------
def test_memorisation_prompts_and_word_matching():
    pairs = audit.memorisation_prompts(["one two three four five six", "too short"], 2, 3)
    assert pairs == [("one two", "three four five")]
    assert audit.matching_words(" Three, four! six", "three four five") == 2
    assert audit.matching_words("", "three") == 0
