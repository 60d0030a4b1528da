"""The audit: checks a pipeline runs on a synthetic data set before it trains on it.

A synthetic record can carry three kinds of legal risk into a model: it may come from a
teacher whose terms forbid training other models on its outputs (provenance), it may hold
somebody's personal data (PII), and it may copy someone's text word for word (verbatim
overlap with training data, or contamination: overlap with a held-out evaluation set, which
makes later scores meaningless). Each check here returns `Finding`s that name the record's
1-based line in the JSONL file, so a pipeline can drop, fix or review exactly those lines.

None of this is legal advice. The checks find what a program can find: a record can pass
every one and still be a problem, and a flagged record can be fine.

    report = audit("data.jsonl", reference=wiki_texts, eval_sets={"gsm": questions})
    print(report.summary())
    report.write_json("report.json")
"""
from __future__ import annotations

import functools
import ipaddress
import json
import re
import tomllib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from .errors import SynthkitError

NOT_LEGAL_ADVICE = ("This audit is an engineering check, not legal advice: read the licences and "
                    "terms themselves, and ask a lawyer before you rely on them.")
CHECKS = ("format", "provenance", "pii", "overlap", "contamination")
MAX_LINE_BYTES = 1_000_000  # a record longer than this is almost surely not one record
NGRAM = 13  # the n of the GPT-3 paper's contamination analysis (see contamination_ngrams)


@dataclass
class Finding:
    """One thing the audit found, on one line of the file."""
    line: int  # 1-based line of the JSONL file
    check: str  # one of CHECKS
    kind: str  # e.g. email, phone, card, iban, ip, missing-seed, restrictive-terms, verbatim
    detail: str = ""
    field: str | None = None  # which field of the record, where it applies
    value: str | None = None  # what was matched (PII is masked)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


# ---------------------------------------------------------------------------------------
# Teacher terms
# ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _terms() -> tuple[dict, ...]:
    with open(Path(__file__).parent / "data" / "teacher_terms.toml", "rb") as f:
        return tuple(tomllib.load(f)["teacher"])


def teacher_terms() -> list[dict]:
    """The teacher-terms table (a fresh copy): one dict per teacher, see the TOML file."""
    return [dict(t) for t in _terms()]


def _normal(name: str) -> str:
    """A model name as the table's `match` pieces are written: lower case, with '_', ':' and
    spaces read as '-' ('Llama_3_2', 'llama3.2:3b' and 'Qwen2.5 72B' all compare)."""
    return re.sub(r"[_:\s]+", "-", name.lower())


def _fit(name: str, piece: str) -> int:
    """How specifically `piece` fits the (normalised) name: its length, or 0 when absent.
    A piece ending in a digit must not run on into another digit, so 'llama-3' does not
    select 'llama-30b'."""
    piece = _normal(piece)
    tail = r"(?!\d)" if piece[-1:].isdigit() else ""
    return len(piece) if re.search(re.escape(piece) + tail, name) else 0


def matching_terms(model: str | None) -> list[tuple[int, dict]]:
    """(specificity, row) for every row with a piece in the model name, most specific first.
    Specificity is the length of the row's longest fitting piece, so a narrow row
    ('llama-3.2', 'qwen2.5-3b') wins over a broad one ('llama-3') whatever the file order."""
    name = _normal(model or "")
    fits = [(max(_fit(name, m) for m in row["match"]), row) for row in _terms()]
    return sorted(((k, dict(row)) for k, row in fits if k), key=lambda kr: -kr[0])


def terms_for(model: str | None) -> dict | None:
    """The table row for a model name (the most specific match), or None when no row fits.

    Two rows fitting equally well is an error, not a coin toss: it raises SynthkitError
    naming both, because silently picking one is how a broad row used to shadow a narrow one.
    """
    rows = matching_terms(model)
    if not rows:
        return None
    tied = [row["name"] for k, row in rows if k == rows[0][0]]
    if len(tied) > 1:
        raise SynthkitError(f"{model!r} fits the teacher-terms rows {' and '.join(tied)} equally well; "
                            f"give the teacher's exact model id")
    return rows[0][1]


def _terms_or_none(model: str | None) -> dict | None:
    """terms_for for display (summary, card): an ambiguous name shows as not in the table."""
    try:
        return terms_for(model)
    except SynthkitError:
        return None


def spdx_problems(expression: str) -> list[str]:
    """What is wrong with an SPDX licence expression ([] when it is valid)."""
    from license_expression import get_spdx_licensing

    try:
        info = get_spdx_licensing().validate(expression)
    except Exception as e:  # noqa: BLE001 - the library raises for unparsable text
        return [f"not an SPDX expression ({e})"]
    return list(info.errors)


# ---------------------------------------------------------------------------------------
# Reading a JSONL file that may be broken
# ---------------------------------------------------------------------------------------
def read_records(path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, dict | None, Finding | None]]:
    """(line, record, problem) for each non-blank line; exactly one of record/problem is None.

    A broken line becomes a `format` finding and the reading goes on, so one bad line
    never hides the findings of the others. A file that is not text at all, or that holds
    no record, is an error: there is nothing to audit.
    """
    path = Path(path)
    if not path.is_file():
        raise SynthkitError(f"{path} does not exist or is not a file; give the JSONL file to audit")
    with open(path, "rb") as f:
        head = f.read(8192)
    if b"\0" in head:
        raise SynthkitError(f"{path} looks like a binary file (it holds NUL bytes), not JSON lines; "
                            f"give the .jsonl file your pipeline wrote (one JSON object per line)")
    seen = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(_lines(f, max_line_bytes), 1):
            if raw is None:
                seen += 1
                yield number, None, Finding(number, "format", "too-long",
                                            f"the line is longer than {max_line_bytes:,} bytes; a record "
                                            f"this long is usually several records without newlines or a "
                                            f"pasted file: split it, or raise --max-line-bytes")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                seen += 1
                yield number, None, Finding(number, "format", "not-utf8",
                                            f"byte {e.start} is not UTF-8; save the file as UTF-8")
                continue
            if not text.strip():
                continue
            seen += 1
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                yield number, None, Finding(number, "format", "not-json",
                                            f"not valid JSON ({e.msg} at column {e.colno}); fix or delete "
                                            f"the line")
                continue
            if not isinstance(record, dict):
                yield number, None, Finding(number, "format", "not-object",
                                            f"a JSON {type(record).__name__}, not an object; each line must "
                                            f"be one record {{...}}")
                continue
            yield number, record, None
    if not seen:
        raise SynthkitError(f"{path} holds no records (it is empty or blank); nothing to audit")


def _lines(f, limit: int) -> Iterator[bytes | None]:
    """The file's lines as bytes, None for a line over `limit` (read in chunks, never whole)."""
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            while True:  # skip the rest of the long line
                rest = f.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            yield None
        else:
            yield line


def text_fields(record: Mapping) -> dict[str, str]:
    """The record's texts: every top-level string (bar ids and provenance) and the content
    of chat messages. Synthetic records differ by technique (instruction/output,
    prompt/response, prompt/chosen/rejected, text), so no fixed list of names would do."""
    skip = {"id", "task_id", "reason", "technique", "lang", "license", "source"}
    out = {}
    for key, value in record.items():
        if key in skip or key == "provenance":
            continue
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and isinstance(item.get("content"), str):
                    out[f"{key}[{i}]"] = item["content"]
                elif isinstance(item, str):
                    out[f"{key}[{i}]"] = item
    return out


# ---------------------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------------------
REQUIRED = ("model", "params", "seed", "license")


def check_provenance(record: Mapping, line: int = 0) -> list[Finding]:
    """Does the record say how it was made, and may its teacher's outputs train a model?

    Required: provenance.model, .params, .seed and .license. A field is missing when it is
    absent or null (a seed of 0 is a seed). A licence of "unknown" is flagged; so is a
    teacher whose terms restrict training other or competing models on its outputs, and a
    model name that two rows of the table fit equally well (ambiguous-teacher).
    """
    prov = record.get("provenance")
    if not isinstance(prov, Mapping):
        return [Finding(line, "provenance", "missing-provenance",
                        "no provenance object: say which model, parameters, seed and licence made it")]
    out = [Finding(line, "provenance", f"missing-{k}", f"provenance has no {k}")
           for k in REQUIRED if prov.get(k) is None]
    license = prov.get("license")
    if isinstance(license, str) and license.strip().lower() in ("", "unknown", "none", "noassertion"):
        out.append(Finding(line, "provenance", "unknown-license", f"licence is {license!r}"))
    model = prov.get("model")
    if model is not None:
        try:
            row = terms_for(str(model))
        except SynthkitError as e:
            return out + [Finding(line, "provenance", "ambiguous-teacher", str(e), value=str(model))]
        if row is None:
            out.append(Finding(line, "provenance", "unknown-teacher",
                               f"{model!r} is not in the teacher-terms table: read its licence"))
        elif row["restricts_competing_models"]:
            first = row["outputs"].split(". ")[0].rstrip(".")
            out.append(Finding(line, "provenance", "restrictive-terms",
                               f"{row['name']}: {first}. See {row['source']}", value=str(model)))
    return out


# ---------------------------------------------------------------------------------------
# Personal data
# ---------------------------------------------------------------------------------------
PHONE_REGIONS = ("US", "GB", "FR", "DE", "ES", "IN", "AU")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d.-]?\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def card_number_ok(digits: str) -> bool:
    """A payment-card number: 13-19 digits, a major network's first digit (2-6) and a
    right Luhn check digit (`stdnum.luhn`). One random digit string in ten passes Luhn, so
    the checksum alone cuts look-alikes tenfold, not to zero."""
    from stdnum import luhn

    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn.is_valid(digits)


def find_pii(text: str, regions: Sequence[str] = PHONE_REGIONS) -> list[tuple[str, int, int, str]]:
    """(kind, start, end, matched text) for each e-mail, IBAN, card number, IP address and
    phone number in `text`. Numbers must pass their checksums or validity rules, not just
    look right; where two kinds claim the same characters the first found wins (the order
    above: a card number is not also reported as a phone number)."""
    import phonenumbers
    from stdnum import iban

    found: list[tuple[str, int, int, str]] = []

    def add(kind, start, end):
        if not any(s < end and start < e for _, s, e, _ in found):
            found.append((kind, start, end, text[start:end]))

    for m in _EMAIL.finditer(text):
        add("email", *m.span())
    for m in _IBAN.finditer(text):
        if iban.is_valid(m.group()):
            add("iban", *m.span())
    for m in _CARD.finditer(text):
        if card_number_ok(re.sub(r"\D", "", m.group())):
            add("card", *m.span())
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group())
            add("ip", *m.span())
        except ValueError:
            pass
    for m in _IPV6.finditer(text):
        if m.group().count(":") >= 2 and any(c.isalnum() for c in m.group()):
            try:
                ipaddress.IPv6Address(m.group())
                add("ip", *m.span())
            except ValueError:
                pass
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            if _phone_shaped(text, m.start, m.end):
                add("phone", m.start, m.end)
    return sorted(found, key=lambda f: f[1])


def _phone_shaped(text: str, start: int, end: int) -> bool:
    """phonenumbers accepts some strings that are valid numbers somewhere but read as
    something else here: a year in brackets, dotted quads, 16-digit card look-alikes, part
    of a price. A phone number has 7 to 15 digits (E.164), at most 3 dots, and does not sit
    inside a longer run of digits and dots."""
    span = text[start:end]
    digits = sum(c.isdigit() for c in span)
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    glued = re.search(r"[\d.,]\d?$", before) or re.match(r"[.,]?\d", after)
    return 7 <= digits <= 15 and span.count(".") <= 2 and not glued


def mask(value: str) -> str:
    """Enough of a match to find it again, not enough to leak it: 'j***@e***.com'."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def check_pii(record: Mapping, line: int = 0) -> list[Finding]:
    out = []
    for name, text in text_fields(record).items():
        for kind, _, _, value in find_pii(text):
            out.append(Finding(line, "pii", kind, f"{kind} in {name}", field=name, value=mask(value)))
    return out


# ---------------------------------------------------------------------------------------
# Verbatim overlap and contamination: a hashed n-gram index
# ---------------------------------------------------------------------------------------
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens with punctuation and spacing dropped: the normalisation of
    n-gram contamination checks, so 'Paris, France' and 'paris france' collide."""
    return _WORD.findall(text.lower())


class NgramIndex:
    """Every n-gram of a corpus, kept as 64-bit hashes with the document it came from.

    A set of ints is small (a few bytes per n-gram beyond the set's own cost) and answers
    'is this n-gram anywhere in the corpus?' in constant time, so checking a record costs
    one lookup per word, whatever the corpus size. Hash collisions are possible but at 64
    bits vanishingly rare for corpora of this size.
    """

    def __init__(self, texts: Iterable[str], n: int = NGRAM, names: Sequence[str] | None = None,
                 keep_words: bool = False):
        if n < 1:
            raise ValueError(f"n must be at least 1; got {n}")
        self.n = n
        self.first_doc: dict[int, int] = {}
        self.names = list(names) if names is not None else None
        self.short: dict[tuple[str, ...], int] = {}  # documents shorter than n words, whole
        self.docs = 0
        self.doc_words: list[list[str]] = []  # only with keep_words (the short-example rule)
        for i, text in enumerate(texts):
            w = words(text)
            self.docs += 1
            if keep_words:
                self.doc_words.append(w)
            if len(w) < n:
                if w:
                    self.short.setdefault(tuple(w), i)
                continue
            for gram in _grams(w, n):
                self.first_doc.setdefault(hash(gram), i)

    def __len__(self) -> int:
        return len(self.first_doc)

    def hits(self, text: str) -> list[tuple[int, int]]:
        """(word position, document) for each n-gram of `text` found in the index."""
        w = words(text)
        return [(i, self.first_doc[h]) for i, h in enumerate(map(hash, _grams(w, self.n)))
                if h in self.first_doc]

    def overlap(self, text: str) -> dict:
        """How much of `text` is covered by n-grams of the corpus: the share of its words,
        the longest verbatim run (in words) and the document it most overlaps."""
        w = words(text)
        hits = self.hits(text)
        covered = [False] * len(w)
        for i, _ in hits:
            for j in range(i, i + self.n):
                covered[j] = True
        longest = run = 0
        for c in covered:
            run = run + 1 if c else 0
            longest = max(longest, run)
        doc = Counter(d for _, d in hits).most_common(1)[0][0] if hits else None
        return {"words": len(w), "share": sum(covered) / len(w) if w else 0.0, "longest": longest,
                "doc": doc, "name": self.names[doc] if doc is not None and self.names else None}

    def contains_short(self, text: str) -> int | None:
        """The index of a short document (fewer than n words) found whole inside `text`."""
        if not self.short:
            return None
        w = words(text)
        for length in {len(k) for k in self.short}:
            for gram in _grams(w, length):
                if gram in self.short:
                    return self.short[gram]
        return None


def _grams(w: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    return (tuple(w[i:i + n]) for i in range(len(w) - n + 1))


def contamination_ngrams(eval_texts: Sequence[str], low: int = 8, high: int = NGRAM) -> int:
    """The n the GPT-3 paper's contamination analysis used for one evaluation set: the
    5th-percentile example length in words, kept between 8 and 13 (short n-grams collide
    by chance; 13 bounds the cost)."""
    lengths = sorted(len(words(t)) for t in eval_texts)
    if not lengths:
        return high
    fifth = lengths[int(0.05 * (len(lengths) - 1))]
    return max(low, min(high, fifth))


def is_dirty(example: str, index: "NgramIndex") -> bool:
    """The rule: an example is dirty when any of its n-grams is in the training index; an
    example shorter than n words is dirty when it appears whole, as a run of words, in a
    training document (the index must be built with keep_words=True for that)."""
    w = words(example)
    if not w:
        return False
    if len(w) >= index.n:
        return bool(index.hits(example))
    return any(_contains(doc, w) for doc in index.doc_words)


def _contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    n, needle = len(needle), tuple(needle)
    return any(tuple(haystack[i:i + n]) == needle for i in range(len(haystack) - n + 1))


def dirty_share(eval_texts: Sequence[str], train_texts: Sequence[str], n: int = NGRAM) -> float:
    """The share of `eval_texts` the n-gram rule calls dirty against `train_texts`."""
    index = NgramIndex(train_texts, n, keep_words=True)
    return sum(is_dirty(t, index) for t in eval_texts) / len(eval_texts) if eval_texts else 0.0


def check_overlap(record: Mapping, index: NgramIndex, line: int = 0, what: str = "reference") -> list[Finding]:
    """Verbatim copying: any n-gram of a record's text that is also in the reference corpus."""
    out = []
    for name, text in text_fields(record).items():
        o = index.overlap(text)
        if o["longest"]:
            source = f" (mostly from {o['name']!r})" if o["name"] else ""
            out.append(Finding(line, "overlap", "verbatim",
                               f"{name}: {o['longest']} words in a row copied from the {what}{source}; "
                               f"{o['share']:.0%} of its {o['words']} words are in shared {index.n}-grams",
                               field=name))
    return out


def check_contamination(record: Mapping, indexes: Mapping[str, NgramIndex], line: int = 0) -> list[Finding]:
    """Evaluation items inside training data: an n-gram shared with a held-out set, or an
    item shorter than n words found whole."""
    out = []
    for name, text in text_fields(record).items():
        for set_name, index in indexes.items():
            hits = index.hits(text)
            item = hits[0][1] if hits else index.contains_short(text)
            if item is not None:
                out.append(Finding(line, "contamination", "eval-overlap",
                                   f"{name} shares {'a ' + str(index.n) + '-gram' if hits else 'the whole text'} "
                                   f"with item {item} of {set_name!r}", field=name))
    return out


# ---------------------------------------------------------------------------------------
# The whole audit
# ---------------------------------------------------------------------------------------
@dataclass
class AuditReport:
    path: str
    records: int = 0
    lines_read: int = 0
    findings: list[Finding] = field(default_factory=list)
    provenance: Counter = field(default_factory=Counter)  # (model, license) -> records
    ngram: int = NGRAM
    error: str | None = None  # set when the audit stopped early

    def by_check(self) -> Counter:
        return Counter(f.check for f in self.findings)

    def by_kind(self) -> Counter:
        return Counter((f.check, f.kind) for f in self.findings)

    def flagged_lines(self, *checks: str) -> set[int]:
        return {f.line for f in self.findings if not checks or f.check in checks}

    def to_dict(self) -> dict:
        return {"path": self.path, "records": self.records, "lines": self.lines_read, "ngram": self.ngram,
                "error": self.error, "not_legal_advice": NOT_LEGAL_ADVICE,
                "teachers": [{"model": m, "license": lic, "records": n} for (m, lic), n in self.provenance.items()],
                "counts": {f"{c}/{k}": n for (c, k), n in sorted(self.by_kind().items())},
                "findings": [f.to_dict() for f in self.findings]}

    def write_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    def summary(self, examples: int = 3) -> str:
        lines = [f"audit of {self.path}: {self.records} records on {self.lines_read} lines, "
                 f"{len(self.findings)} findings on {len(self.flagged_lines())} lines"]
        for (model, lic), n in self.provenance.most_common():
            row = _terms_or_none(model)
            terms = ("not in the teacher-terms table" if row is None else
                     "terms restrict training other models on its outputs" if row["restricts_competing_models"]
                     else "terms do not restrict training on its outputs")
            lines.append(f"  teacher {model} (licence {lic}): {n} records; {terms}")
        for check in CHECKS:
            kinds = Counter(f.kind for f in self.findings if f.check == check)
            if not kinds:
                continue
            lines.append(f"  {check}: " + ", ".join(f"{k} x{n}" for k, n in kinds.most_common()))
            for f in [f for f in self.findings if f.check == check][:examples]:
                lines.append(f"    line {f.line}: {f.kind}: {f.detail}" + (f" [{f.value}]" if f.value else ""))
        if not self.findings:
            lines.append("  no findings")
        if self.error:
            lines.append(f"  stopped early: {self.error}")
        lines.append(NOT_LEGAL_ADVICE)
        return "\n".join(lines)


def audit(path, *, reference: Iterable[str] | NgramIndex | None = None,
          eval_sets: Mapping[str, Sequence[str]] | None = None, n: int = NGRAM,
          checks: Sequence[str] = CHECKS, max_line_bytes: int = MAX_LINE_BYTES,
          reference_names: Sequence[str] | None = None) -> AuditReport:
    """Run the checks on every record of a JSONL file.

    `reference`: texts that stand in for the teacher's training data (verbatim overlap);
    `eval_sets`: name -> held-out items (contamination). Both are indexed once, as n-grams.
    A file-level error (missing, binary, empty) raises SynthkitError; an error part-way
    keeps the findings so far and is recorded in `report.error`.
    """
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise SynthkitError(f"unknown check {', '.join(sorted(unknown))}; choose from {', '.join(CHECKS)}")
    report = AuditReport(str(path), ngram=n)
    ref_index = None
    if reference is not None and "overlap" in checks:
        ref_index = reference if isinstance(reference, NgramIndex) else NgramIndex(reference, n, reference_names)
    eval_indexes = {name: NgramIndex(items, n) for name, items in (eval_sets or {}).items()} \
        if "contamination" in checks else {}
    try:
        for line, record, problem in read_records(path, max_line_bytes):
            report.lines_read = line
            if problem is not None:
                report.findings.append(problem)
                continue
            report.records += 1
            prov = record.get("provenance")
            key = ((str(prov.get("model")), str(prov.get("license"))) if isinstance(prov, Mapping)
                   else ("(no provenance)", "(none)"))
            report.provenance[key] += 1
            if "provenance" in checks:
                report.findings += check_provenance(record, line)
            if "pii" in checks:
                report.findings += check_pii(record, line)
            if ref_index is not None:
                report.findings += check_overlap(record, ref_index, line)
            if eval_indexes:
                report.findings += check_contamination(record, eval_indexes, line)
    except SynthkitError as e:
        if report.lines_read == 0:
            raise
        report.error = str(e)
    except (OSError, MemoryError) as e:
        report.error = f"reading stopped after line {report.lines_read}: {e}"
    return report


# ---------------------------------------------------------------------------------------
# The dataset card
# ---------------------------------------------------------------------------------------
def dataset_card(report: AuditReport, *, pretty_name: str = "Synthetic data set", language: str = "en"):
    """A Hugging Face dataset card (`huggingface_hub.DatasetCard`, made offline) that states
    the provenance and what the audit found: the reader of a data set should learn which
    teachers wrote it and under which terms, before training on it."""
    from huggingface_hub import DatasetCard, DatasetCardData

    teachers = [(m, lic, k, _terms_or_none(m)) for (m, lic), k in report.provenance.most_common()]
    hub = {row["hub_license"] if row else "other" for _, _, _, row in teachers} or {"other"}
    data = DatasetCardData(license=hub.pop() if len(hub) == 1 else "other", language=[language],
                           pretty_name=pretty_name, tags=["synthetic"],
                           size_categories=[_size_category(report.records)])
    rows = "\n".join(f"| {m} | {lic} | {k} | {row['name'] if row else 'not in the table'} | "
                     f"{('yes' if row['restricts_competing_models'] else 'no') if row else 'unknown'} | "
                     f"{row['source'] if row else ''} |" for m, lic, k, row in teachers)
    counts = "\n".join(f"| {c} | {k} | {n} | {len({f.line for f in report.findings if (f.check, f.kind) == (c, k)})} |"
                       for (c, k), n in sorted(report.by_kind().items())) or "| - | - | 0 | 0 |"
    body = f"""
# {pretty_name}

Synthetic records generated by language models. This card was written by `synthkit audit`
from the records' provenance and the audit's findings.

## Provenance

| teacher model | licence in the records | records | terms (teacher-terms table) | restricts training other models | source |
|---|---|---|---|---|---|
{rows}

Each record's `provenance` names its model, sampling parameters and seed, enough to generate it again.

## Audit findings

{report.records} records; {len(report.flagged_lines())} lines with at least one finding
(n-gram length for overlap checks: {report.ngram}).

| check | kind | findings | lines |
|---|---|---|---|
{counts}

## Limitations

The checks find what a program can find: e-mail addresses, phone numbers, card and bank
numbers that pass their checksums, IP addresses, and verbatim n-gram overlap with the
corpora the audit was given. Names, addresses and paraphrased copying are not detected.
{NOT_LEGAL_ADVICE}
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


# ---------------------------------------------------------------------------------------
# Measuring the PII check: plant known PII (and look-alikes) into real text
# ---------------------------------------------------------------------------------------
_FIRST = ("anna", "li", "omar", "sofia", "jonas", "maria", "kwame", "yuki", "pedro", "ines")
_DOMAINS = ("example.com", "mail.example.org", "uni-example.edu", "example.co.uk")


def _luhn_complete(rng, prefix: str, length: int) -> str:
    from stdnum import luhn

    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def _group(digits: str, rng) -> str:
    sep = rng.choice(("", " ", "-"))
    return sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))


def _fake_pii(kind: str, rng) -> str:
    """A value of `kind` that a correct detector must find (valid checksums, real formats;
    phone numbers from ranges set aside for fiction or examples where they exist)."""
    if kind == "email":
        return f"{rng.choice(_FIRST)}{rng.choice(('.', '_', ''))}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"
    if kind == "phone":
        return rng.choice((
            lambda: f"+1 {rng.choice((202, 305, 512, 646, 720, 808))}-555-01{rng.randint(0, 99):02d}",
            lambda: f"({rng.choice((212, 415, 617, 312))}) 555-01{rng.randint(0, 99):02d}",
            lambda: f"+44 20 7946 0{rng.randint(0, 999):03d}",
            lambda: f"+33 1 {rng.randint(40, 49)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
            lambda: f"+49 30 {rng.randint(1000000, 9999999)}",
        ))()
    if kind == "card":
        prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)))
        return _group(_luhn_complete(rng, prefix, length), rng)
    if kind == "iban":
        from stdnum import iban
        country, bank = rng.choice((("DE", 18), ("GB", 18), ("AT", 16), ("NL", 14)))
        if country == "GB":
            bban = "WEST" + "".join(str(rng.randint(0, 9)) for _ in range(14))
        elif country == "NL":
            bban = "ABNA" + "".join(str(rng.randint(0, 9)) for _ in range(10))
        else:
            bban = "".join(str(rng.randint(0, 9)) for _ in range(bank))
        check = iban.calc_check_digits(country + "00" + bban)
        raw = country + check + bban
        return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.5 else raw
    if kind == "ip":
        if rng.random() < 0.7:
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        return f"2001:db8:{rng.randint(1, 0xffff):x}::{rng.randint(1, 0xffff):x}"
    raise ValueError(f"unknown PII kind {kind!r}")


def _decoy(rng) -> str:
    """A look-alike a detector must NOT report: digits that fail a checksum, a version
    number, a date, an ISBN-like code, a price."""
    from stdnum import luhn

    kind = rng.randrange(6)
    if kind == 0:  # 16 digits failing Luhn
        good = _luhn_complete(rng, "4", 16)
        bad = good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)
        assert not luhn.is_valid(bad)
        return _group(bad, rng)
    if kind == 1:
        return "version " + ".".join(str(rng.randint(0, 9)) for _ in range(5))
    if kind == 2:
        return f"{rng.randint(1900, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 3:
        return f"${rng.randint(1, 999)},{rng.randint(100, 999)}.{rng.randint(10, 99)}"
    if kind == 4:  # a German IBAN with a wrong check (a random one passes mod 97 about 1 time in 97)
        from stdnum import iban
        bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
        right = iban.calc_check_digits("DE00" + bban)
        return f"DE{(int(right) + rng.randint(1, 90)) % 97 + 2:02d}" + bban
    return f"{rng.randint(256, 999)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"


PII_KINDS = ("email", "phone", "card", "iban", "ip")


def plant_pii(texts: Sequence[str], seed: int = 0, per_text: tuple[int, int] = (0, 3),
              decoys: tuple[int, int] = (0, 2)) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each text with PII and look-alikes inserted at sentence boundaries:
    (new text, [(kind, value), ...] of the real PII planted). Seeded, so a measurement can
    be repeated exactly."""
    import random

    rng = random.Random(seed)
    out = []
    for text in texts:
        pieces = re.split(r"(?<=[.!?])\s+", text)
        truth = []
        for _ in range(rng.randint(*per_text)):
            kind = rng.choice(PII_KINDS)
            value = _fake_pii(kind, rng)
            truth.append((kind, value))
            pieces.insert(rng.randrange(len(pieces) + 1), rng.choice((
                f"Contact: {value}.", f"Write to {value} for details.", f"The number is {value}.",
                f"({value})", f"Ref: {value}.")))
        for _ in range(rng.randint(*decoys)):
            pieces.insert(rng.randrange(len(pieces) + 1), f"See {_decoy(rng)}.")
        out.append((" ".join(pieces), truth))
    return out


def score_pii(planted: Sequence[tuple[str, list[tuple[str, str]]]], detector=None) -> dict[str, dict]:
    """Precision and recall per kind of a detector (default `find_pii`) on planted texts.

    A detection is right when its kind matches and its characters hold a planted value;
    anything else it reports is a false positive (a decoy, or something in the original
    text that looks like PII: reported, so a reader can look)."""
    detector = detector or find_pii
    stats = {k: Counter() for k in PII_KINDS}
    for text, truth in planted:
        found = detector(text)
        matched = set()
        for kind, value in truth:
            hit = next((j for j, (k, s, e, v) in enumerate(found)
                        if k == kind and j not in matched and (value in v or v in value)), None)
            if hit is None:
                stats[kind]["fn"] += 1
            else:
                matched.add(hit)
                stats[kind]["tp"] += 1
        for j, (k, *_rest) in enumerate(found):
            if j not in matched:
                stats.setdefault(k, Counter())["fp"] += 1
    table = {}
    for kind, c in stats.items():
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        table[kind] = {"planted": tp + fn, "found": tp, "false_positives": fp,
                       "precision": tp / (tp + fp) if tp + fp else float("nan"),
                       "recall": tp / (tp + fn) if tp + fn else float("nan")}
    return table


# ---------------------------------------------------------------------------------------
# Does the teacher memorise? Discoverable memorisation (Carlini et al., 2023)
# ---------------------------------------------------------------------------------------
# Carlini, Ippolito, Jagielski, Lee, Tramer and Zhang, "Quantifying Memorization Across
# Neural Language Models" (ICLR 2023) call a training sequence memorised when the model,
# prompted with the k tokens that precede it in the training data and decoding greedily,
# emits it exactly; they found the share grows with model size, with how often the text is
# duplicated and with k. Our variant counts words instead of tokens, and prompts with
# Wikipedia sentences we cannot prove the teacher was trained on, so a miss means "not
# memorised, or never seen": the share it measures is a lower bound.
def memorisation_prompts(texts: Sequence[str], prefix_words: int, target_words: int) -> list[tuple[str, str]]:
    """(prefix, true continuation) pairs: the first `prefix_words` words of each text and
    the `target_words` words that follow (texts too short are skipped). The prefix plays
    the paper's k tokens of context, the continuation the sequence to be reproduced."""
    out = []
    for text in texts:
        w = text.split()
        if len(w) >= prefix_words + target_words:
            out.append((" ".join(w[:prefix_words]), " ".join(w[prefix_words:prefix_words + target_words])))
    return out


def matching_words(generated: str, target: str) -> int:
    """How many leading words of the generation equal the true continuation's (compared
    case-insensitively, punctuation ignored)."""
    g, t = words(generated), words(target)
    k = 0
    while k < min(len(g), len(t)) and g[k] == t[k]:
        k += 1
    return k


def memorisation_test(model, pairs: Sequence[tuple[str, str]], *, max_tokens: int | None = None,
                      progress: bool = False) -> dict:
    """Greedy continuations of each prefix, scored against the true continuation: the share
    that reproduce it exactly (discoverably memorised, in Carlini et al.'s 2023 sense), the
    share whose first word is right, and the mean number of leading words that match."""
    if not pairs:
        return {"n": 0, "exact": float("nan"), "first_word": float("nan"), "mean_words": float("nan"), "rows": []}
    target_words = max(len(words(t)) for _, t in pairs)
    gens = model.generate([p for p, _ in pairs], temperature=0.0,
                          max_tokens=max_tokens or 2 * target_words + 8, progress=progress,
                          desc="memorisation")
    rows = []
    for (prefix, target), g in zip(pairs, gens):
        k = matching_words(g.text, target)
        rows.append({"prefix": prefix, "target": target, "generated": g.text.strip(), "matching": k,
                     "exact": k == len(words(target))})
    return {"n": len(rows), "exact": sum(r["exact"] for r in rows) / len(rows),
            "first_word": sum(r["matching"] >= 1 for r in rows) / len(rows),
            "mean_words": sum(r["matching"] for r in rows) / len(rows), "rows": rows}
