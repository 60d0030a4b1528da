"""Lab 09 (licensing, privacy and provenance): the checks accept the reference answers on
many fresh inputs, reject wrong ones with a message that names the slip, refuse the library's
own functions, and agree with the library they are checked against. The whole notebook runs
under the ci profile in tests/test_notebooks.py."""
from __future__ import annotations

import json
import random
from pathlib import Path

import nbformat
import pytest
from stdnum import luhn

from synthkit import audit
from synthkit.grading.exercises import CodingExercise
from synthkit.labs import lab09
from labtests import solutions, assert_wrong_answers_fail

ROOT = Path(__file__).resolve().parents[1]
CODING = [lab09.ex1, lab09.ex2, lab09.ex3]


def _solutions() -> dict:
    return solutions(CODING)


def test_lab_module_shape():
    assert lab09.LAB == "09" and lab09.NOTEBOOK == "09_licensing_audit.ipynb"
    assert all(isinstance(ex, CodingExercise) for ex in CODING)
    assert [ex.names for ex in CODING] == [("luhn_valid",), ("is_dirty",), ("provenance_findings",)]
    assert len(lab09.quiz.questions) >= 4 and len({q.answer for q in lab09.quiz.questions}) > 1
    assert "OpenAI" in lab09.essay1.prompt and "Llama 3" in lab09.essay1.prompt


WRONG = {
    "ex1": [
        ("""
def luhn_valid(number):
    digits = [int(c) for c in number if c.isdigit()]
    total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d for i, d in enumerate(digits))
    return 13 <= len(digits) <= 19 and total % 10 == 0
""", "this case tests"),
        ("""
def luhn_valid(number):
    digits = [int(c) for c in number if c.isdigit()]
    total = sum(d * 2 if i % 2 else d for i, d in enumerate(reversed(digits)))
    return 13 <= len(digits) <= 19 and total % 10 == 0
""", "this case tests"),
        ("""
import re
def luhn_valid(number):
    return bool(re.fullmatch(r"\\d(?:[ -]?\\d){12,18}", number))
""", "this case tests"),
        ("""
from stdnum import luhn
def luhn_valid(number):
    digits = number.replace(" ", "").replace("-", "")
    return digits.isdigit() and 13 <= len(digits) <= 19 and luhn.is_valid(digits)
""", "your own code"),
        ("""
import re
def luhn_valid(number):
    if not re.fullmatch(r"\\d(?:[ -]?\\d)*", number):
        return False
    digits = [int(ch) for ch in number if ch.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits))
    return 13 < len(digits) < 19 and total % 10 == 0
""", "both ends included"),
        ("""
import re
def luhn_valid(number):
    if not re.fullmatch(r"\\d(?:[ -]?\\d)*", number):
        return False
    digits = [int(ch) for ch in number if ch.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits))
    return 12 <= len(digits) <= 20 and total % 10 == 0
""", "with a right Luhn digit"),
    ],
    "ex2": [
        ("""
import re
def is_dirty(example, training_texts, n=13):
    w = re.findall(r"\\w+", example.lower())
    t = re.findall(r"\\w+", " ".join(training_texts).lower())
    if not w:
        return False
    size = min(n, len(w))
    grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)}
    return any(tuple(t[i:i + size]) in grams for i in range(len(t) - size + 1))
""", "across two training texts"),
        ("""
def is_dirty(example, training_texts, n=13):
    w = example.split()
    if not w:
        return False
    size = min(n, len(w))
    grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)}
    for text in training_texts:
        t = text.split()
        if any(tuple(t[i:i + size]) in grams for i in range(len(t) - size + 1)):
            return True
    return False
""", "this case tests"),
        ("""
import re
def is_dirty(example, training_texts, n=13):
    w = re.findall(r"\\w+", example.lower())
    if len(w) < n:
        return False
    grams = {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    return any(tuple(re.findall(r"\\w+", t.lower())[i:i + n]) in grams for t in training_texts
               for i in range(len(t.split())))
""", "this case tests"),
        ("""
from synthkit import audit
def is_dirty(example, training_texts, n=13):
    return audit.is_dirty(example, audit.NgramIndex(training_texts, n, keep_words=True))
""", "your own code"),
        ("""
import re
def is_dirty(example, training_texts, n=12):
    w = re.findall(r"\\w+", example.lower())
    if not w:
        return False
    size = min(n, len(w))
    grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)}
    for text in training_texts:
        t = re.findall(r"\\w+", text.lower())
        if any(tuple(t[i:i + size]) in grams for i in range(len(t) - size + 1)):
            return True
    return False
""", "does not use n=13"),
        ("""
import re
def is_dirty(example, training_texts, n=13):
    w = re.findall(r"\\w+", example.lower())
    if not w:
        return False
    size = min(n, len(w))
    grams = {tuple(w[i:i + size]) for i in range(len(w) - size + 1)}
    for text in training_texts:
        t = re.findall(r"\\w+", text.lower())
        if any(tuple(t[i:i + size]) in grams for i in range(len(t) - size)):
            return True
    return False
""", "the last n words of a text are a window too"),
    ],
    "ex3": [
        ("""
import json
def provenance_findings(lines):
    out = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append({"line": number, "kind": "not-json"})
            continue
        if not isinstance(record, dict):
            out.append({"line": number, "kind": "not-object"})
            continue
        prov = record.get("provenance")
        if not isinstance(prov, dict):
            out.append({"line": number, "kind": "missing-provenance"})
            continue
        for k in ("model", "params", "seed", "license"):
            if prov.get(k) is None:
                out.append({"line": number, "kind": "missing-" + k})
        lic = prov.get("license")
        if isinstance(lic, str) and lic.strip().lower() in ("", "unknown"):
            out.append({"line": number, "kind": "unknown-license"})
    return out
""", "one too small"),
        ("""
import json
def provenance_findings(lines):
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append({"line": number, "kind": "not-json"})
            continue
        if not isinstance(record, dict):
            out.append({"line": number, "kind": "not-object"})
            continue
        prov = record.get("provenance")
        if not isinstance(prov, dict):
            out.append({"line": number, "kind": "missing-provenance"})
            continue
        for k in ("model", "params", "seed", "license"):
            if not prov.get(k):
                out.append({"line": number, "kind": "missing-" + k})
    return out
""", "falsy"),
        ("""
def provenance_findings(lines):
    from synthkit import audit
    import json
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append({"line": number, "kind": "not-json"})
            continue
        if not isinstance(record, dict):
            out.append({"line": number, "kind": "not-object"})
            continue
        out += [{"line": number, "kind": f.kind} for f in audit.check_provenance(record, number)
                if f.kind not in ("restrictive-terms", "unknown-teacher")]
    return out
""", "your own code"),
    ],
}


@pytest.mark.parametrize("ex", CODING, ids=lambda e: e.name)
def test_wrong_answers_fail_with_a_useful_message(ex):
    assert_wrong_answers_fail(ex, WRONG[ex.name])


def test_references_agree_with_the_library():
    rng = random.Random(0)
    for _ in range(300):  # Luhn: the lab's reference and python-stdnum agree on every length
        digits = "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(13, 19)))
        assert lab09.reference_luhn(digits) == luhn.is_valid(digits)
    for _ in range(30):  # the n-gram rule: the lab's brute force and the library's index
        for example, train, n, _probe in lab09._dirty_cases(rng) + lab09._default_n_cases(rng):
            index = audit.NgramIndex(train, n, keep_words=True)
            assert lab09.reference_dirty(example, train, n) == audit.is_dirty(example, index), (example, n)
    for _ in range(20):  # provenance: the lab's rules and audit.check_provenance
        lines = lab09._provenance_lines(rng)
        library = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                library.append((number, "not-json"))
                continue
            if not isinstance(record, dict):
                library.append((number, "not-object"))
                continue
            library += [(f.line, f.kind) for f in audit.check_provenance(record, number)
                        if f.kind not in ("restrictive-terms", "unknown-teacher")]
        assert sorted(library) == sorted(lab09.reference_findings(lines))


def test_every_draw_has_the_boundary_cases():
    """The cases that kill one-slip mutants are drawn on every run, and each is what its label says."""
    for seed in range(30):
        rng = random.Random(seed)
        luhn_cases = lab09._luhn_cases(rng)
        lengths = {sum(ch.isdigit() for ch in x) for x, probe in luhn_cases if probe.startswith("a valid number")}
        assert {13, 19} <= lengths
        for number, probe in luhn_cases:
            if probe.startswith(("a valid number", "too short", "too long")):
                assert luhn.is_valid("".join(ch for ch in number if ch.isdigit())), (number, probe)
            if probe.startswith("a valid number"):
                assert lab09.reference_luhn(number), (number, probe)
        assert any(p.startswith("too short (12") for _, p in luhn_cases)
        assert any(p.startswith("too long (20") for _, p in luhn_cases)
        ends = [c for c in lab09._dirty_cases(rng) if c[3].startswith("an n-gram that ends")]
        assert len(ends) == 1
        example, train, n, _ = ends[0]
        assert lab09.reference_dirty(example, train, n)
        assert not lab09.reference_dirty(example, [" ".join(lab09._norm_words(t)[:-1]) for t in train], n)
        thirteen, twelve = lab09._default_n_cases(rng)
        assert lab09.DEFAULT_N == 13 and thirteen[2] == twelve[2] == 13
        assert lab09.reference_dirty(*thirteen[:3]) and not lab09.reference_dirty(thirteen[0], thirteen[1], 14)
        assert not lab09.reference_dirty(*twelve[:3]) and lab09.reference_dirty(twelve[0], twelve[1], 12)


def test_lab_copy_is_current_and_keeps_no_solution():
    from synthkit.grading.assign import render_lab

    solution = ROOT / "solutions" / lab09.NOTEBOOK
    lab = ROOT / "labs" / lab09.NOTEBOOK
    assert lab.read_text(encoding="utf-8") == render_lab(solution), "run `synthkit assign`"
    text = "\n".join(c.source for c in nbformat.read(lab, as_version=4).cells)
    for leak in ("if d > 9:", "size = min(n, len(w))", 'prov.get(field) is None', "The two options differ in kind"):
        assert leak not in text, leak
    assert text.count("raise NotImplementedError") == 3
    header = nbformat.read(solution, as_version=4).cells[0].source
    assert "Measured run time" in header and "not legal advice" in header.lower()


def _sources() -> dict[str, str]:
    nb = nbformat.read(ROOT / "solutions" / lab09.NOTEBOOK, as_version=4)
    chapter = (ROOT / "chapters" / "09-licensing-audit.md").read_text(encoding="utf-8")
    quiz = "\n".join(q.text + " " + " ".join(q.choices) + " " + q.why for q in lab09.quiz.questions)
    return {"notebook": "\n".join(c.source for c in nb.cells), "chapter": chapter, "quiz": quiz,
            "essay": lab09.essay1.prompt + lab09.essay1.solution_code, "audit.py": Path(audit.__file__).read_text()}


def test_the_memorisation_test_is_cited_as_carlini_2023_discoverable_memorisation():
    """The test follows "Quantifying Memorization Across Neural Language Models" (ICLR 2023);
    the 2021 extraction paper may be named only as the different, earlier attack."""
    texts = _sources()
    for where in ("notebook", "chapter", "audit.py"):
        assert "Quantifying Memorization" in texts[where] and "2023" in texts[where], where
        assert "Carlini et al. (2021)" not in texts[where] and "style of Carlini et al. (2021)" not in texts[where]
    assert "discoverabl" in texts["chapter"] and "discoverabl" in texts["notebook"]
    assert "Carlini et al. (2023)" in texts["quiz"]


def test_gemma_question_says_the_student_is_trained_to_perform_like_gemma():
    q1 = lab09.quiz.questions[0]
    assert "Gemma" in q1.text and "performs like" in q1.text and "Model Derivative" in q1.choices[q1.answer]


def test_the_prompt_length_comparison_is_decided_by_a_paired_test():
    nb = nbformat.read(ROOT / "solutions" / lab09.NOTEBOOK, as_version=4)
    cell = next(c.source for c in nb.cells if "by_exact = paired_difference(" in c.source)
    assert "by_words = paired_difference(" in cell and ".verdict(" in cell
    assert "{by_words}" in cell and "{by_exact}" in cell  # the notebook prints what the test returned
