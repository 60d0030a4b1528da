"""Dataset filters: drop copies, drop near-copies, drop text that does not look like prose.

Synthetic data is cheap, so most of a pipeline's judgement sits in what it throws away.
Three filters, from strict to fuzzy:

* `exact_dedup` -- the same text after trivial normalisation;
* `near_dedup` -- the same text with a few words changed, found with MinHash + LSH
  (datasketch) so that it never compares all pairs;
* `quality_flags` / `passes_quality` -- cheap document rules from the Gopher paper that
  catch boilerplate, lists of symbols, repeated lines and looping generations;
* `c4_clean_page` -- C4's line-by-line cleaner, which keeps a page's prose lines, strips
  its furniture (menus, buttons, cookie notices) and drops pages with too little prose.
"""
from __future__ import annotations

import re
from collections import Counter

# ---------------------------------------------------------------------------------------
# Exact duplicates
# ---------------------------------------------------------------------------------------


_NOT_WORD = re.compile(r"[^\w\s]|_")


def normalize_text(text: str) -> str:
    """Lowercase, drop punctuation and symbols (anything not a letter, digit or space),
    collapse whitespace.

    Two texts that differ only in case, spacing or commas count as the same text.
    """
    return " ".join(_NOT_WORD.sub("", text.lower()).split())


def exact_dedup(texts: list[str], normalize: bool = True) -> list[int]:
    """Indices of the texts to keep: the first occurrence of each (normalised) text."""
    seen: set[str] = set()
    kept = []
    for i, text in enumerate(texts):
        key = normalize_text(text) if normalize else text
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return kept


# ---------------------------------------------------------------------------------------
# Near duplicates: MinHash + LSH
# ---------------------------------------------------------------------------------------


def shingles(text: str, ngram: int = 5, unit: str = "char") -> set[str]:
    """The set of n-grams of the normalised text, of characters (default) or of words.

    Character 5-grams suit the short texts of these labs: changing one word of a
    20-word sentence spoils about a tenth of its character 5-grams, but a quarter or more
    of its word 5-grams, so word shingles would miss most light edits.
    """
    text = normalize_text(text)
    if unit == "word":
        words = text.split()
        grams = [" ".join(words[i:i + ngram]) for i in range(len(words) - ngram + 1)]
        return set(grams) or {text}
    if unit != "char":
        raise ValueError(f"unit must be 'char' or 'word', not {unit!r}")
    return {text[i:i + ngram] for i in range(len(text) - ngram + 1)} or {text}


def near_duplicate_pairs(texts: list[str], threshold: float = 0.8, num_perm: int = 128,
                         ngram: int = 5, seed: int = 1, unit: str = "char"
                         ) -> list[tuple[int, int, float]]:
    """Pairs (i, j, estimated Jaccard) with i < j whose shingle sets look >= threshold alike.

    LSH proposes the pairs without comparing all of them. Its bands are tuned to miss
    little (weights favour recall), and each proposal is then checked against the MinHash
    estimate of the Jaccard similarity, which removes the false alarms that costs. Both
    steps are estimates: expect a few mistakes for pairs close to the threshold.
    """
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(t, ngram, unit) for t in texts]
    hashes = MinHash.bulk([[s.encode("utf-8") for s in ss] for ss in sets],
                          num_perm=num_perm, seed=seed)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(0.1, 0.9))
    pairs = []
    for j, h in enumerate(hashes):
        for i in lsh.query(h):
            similarity = h.jaccard(hashes[i])
            if similarity >= threshold:
                pairs.append((i, j, similarity))
        lsh.insert(j, h)
    return sorted(pairs)


def near_dedup(texts: list[str], threshold: float = 0.8, num_perm: int = 128,
               ngram: int = 5, seed: int = 1, unit: str = "char") -> list[int]:
    """Indices to keep: the first text of each cluster of near-duplicates.

    A cluster is a connected group of near-duplicate pairs, so a chain of small edits
    (a ~ b ~ c) collapses to one text even if a and c differ more than the threshold.
    """
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in near_duplicate_pairs(texts, threshold, num_perm, ngram, seed, unit):
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)   # the earliest text stays the root
    return [i for i in range(len(texts)) if root(i) == i]


# ---------------------------------------------------------------------------------------
# Heuristic quality rules
# ---------------------------------------------------------------------------------------

# Word-count and word-length bounds from Gopher (Rae et al., 2021, appendix A). Gopher asks
# for at least 50 words of a *web page*; the labs filter single answers, so 5 is the floor.
MIN_WORDS = 5
MAX_WORDS = 100_000
MIN_MEAN_WORD_LENGTH, MAX_MEAN_WORD_LENGTH = 3, 10
# Gopher: at most 0.1 hash symbols or ellipses per word, at most 30% of lines ending in an
# ellipsis, and at least 80% of words with an alphabetic character.
MAX_SYMBOL_TO_WORD = 0.1
MAX_ELLIPSIS_LINES = 0.3
MIN_ALPHA_WORDS = 0.8
# Gopher's stop-word rule: real English prose uses at least two of these.
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
MIN_STOP_WORDS = 2
# Gopher's repetition rules: at most 30% duplicated lines, and at most 15% of characters
# inside word 5-grams that occur more than once. They catch generations that loop.
MAX_DUPLICATE_LINES = 0.3
MAX_DUPLICATE_NGRAM_CHARS = 0.15
REPEAT_NGRAM = 5

_ELLIPSES = ("...", "\u2026")


def quality_flags(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS
                  ) -> dict[str, bool]:
    """Which quality rules `text` breaks; True means the rule fires (the text looks bad)."""
    words = text.split()
    n = max(len(words), 1)
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [""]
    mean_length = sum(map(len, words)) / n
    symbols = text.count("#") + sum(text.count(e) for e in _ELLIPSES)
    lowered = {w.strip(".,;:!?\"'()").lower() for w in words}
    return {
        "too_short": len(words) < min_words,
        "too_long": len(words) > max_words,
        "odd_word_length": not MIN_MEAN_WORD_LENGTH <= mean_length <= MAX_MEAN_WORD_LENGTH,
        "many_symbols": symbols / n > MAX_SYMBOL_TO_WORD,
        "ellipsis_lines": sum(line.endswith(_ELLIPSES) for line in lines) / len(lines)
        > MAX_ELLIPSIS_LINES,
        "few_stop_words": len(lowered & STOP_WORDS) < MIN_STOP_WORDS,
        "few_alpha_words": sum(any(c.isalpha() for c in w) for w in words) / n < MIN_ALPHA_WORDS,
        "repeated_lines": duplicate_line_fraction(lines) > MAX_DUPLICATE_LINES,
        "repeated_ngrams": duplicate_ngram_fraction(words, REPEAT_NGRAM)
        > MAX_DUPLICATE_NGRAM_CHARS,
    }


def passes_quality(text: str, **limits) -> bool:
    """Whether `text` breaks none of the rules in `quality_flags`."""
    return not any(quality_flags(text, **limits).values())


def duplicate_line_fraction(lines: list[str]) -> float:
    """Fraction of lines that repeat an earlier line."""
    return 1 - len(set(lines)) / len(lines) if lines else 0.0


def duplicate_ngram_fraction(words: list[str], n: int = REPEAT_NGRAM) -> float:
    """Fraction of characters (in words) covered by word n-grams that occur more than once.

    Each word counts once even when several repeated n-grams cover it, as in Gopher.
    """
    grams = [tuple(w.lower() for w in words[i:i + n]) for i in range(len(words) - n + 1)]
    counts = Counter(grams)
    covered = set()
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered.update(range(i, i + n))
    total = sum(map(len, words))
    return sum(len(words[i]) for i in covered) / total if total else 0.0


# ---------------------------------------------------------------------------------------
# C4's page cleaner
# ---------------------------------------------------------------------------------------

# The rule that built C4 (Raffel et al., 2020, section 2.2), as its reference code has it
# (tensorflow_datasets, text/c4_utils.py, `clean_page`). A "word" is a whitespace-separated
# piece (`line.split()`); the end marks are ASCII only, so a line ending in a curly quote
# (\u201d) does not survive; the ellipsis rule looks at the end of a line only.
C4_MIN_WORDS_PER_LINE = 5
C4_MIN_SENTENCES = 3
C4_MAX_WORD_LENGTH = 1000
C4_END_MARKS = (".", "?", "!", '"')
C4_ELLIPSIS = "..."
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                     "use of cookies", "use cookies")
_C4_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")

# C4 counts sentences with NLTK's Punkt tokenizer (English model), which needs a download.
# `count_sentences` is the course's offline stand-in: a sentence ends at . ! or ? (closing
# quotes and brackets may follow) when the next word starts with a capital or a digit,
# except after a known abbreviation or a single-letter initial. It agrees with Punkt on
# ordinary prose; the two can differ on unusual abbreviations.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr vs etc e.g i.e cf no fig figs approx ca c al inc ltd co corp "
    "gen col lt sgt capt rev hon mt ft u.s u.k u.n a.d b.c jan feb mar apr jun jul aug sep "
    "sept oct nov dec".split())
_CLOSERS = "\"')]\u201d\u2019"
_OPENERS = "\"'([\u201c\u2018"


def count_sentences(text: str) -> int:
    """How many sentences `text` holds, line by line (a line never continues a sentence).

    Every non-empty line holds at least one sentence, as with Punkt. See the note above
    for the rule and how it stands in for the Punkt tokenizer C4 used.
    """
    count = 0
    for line in text.splitlines():
        tokens = line.split()
        open_sentence = False
        for k, token in enumerate(tokens):
            open_sentence = True
            core = token.rstrip(_CLOSERS)
            if not core.endswith((".", "!", "?")):
                continue
            if k + 1 < len(tokens):
                following = tokens[k + 1].lstrip(_OPENERS)
                if not following or not (following[0].isupper() or following[0].isdigit()):
                    continue
                word = core.rstrip(".").lstrip(_OPENERS).lower()
                if core.endswith(".") and (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
                    continue
            count += 1
            open_sentence = False
        count += open_sentence
    return count


def c4_line_verdict(line: str, min_words: int = C4_MIN_WORDS_PER_LINE,
                    max_word_length: int = C4_MAX_WORD_LENGTH) -> str:
    """What C4's cleaner does with one line: "keep", or why it goes.

    Line-level reasons: "too_long_word", "no_end_mark" (also a line ending in "..."),
    "too_short", "javascript", "policy". Page-level reasons, which drop the whole page:
    "lorem_ipsum" and "curly_bracket" (likely code). The checks run in C4's order, on the
    stripped line with Wikipedia-style citation marks ([1], [edit]) removed; the page
    rules only look at lines that passed the end-mark and length checks, as in C4's code.
    """
    if any(len(word) > max_word_length for word in line.split()):
        return "too_long_word"
    line = _C4_CITATION.sub("", line.strip())
    if not line.endswith(C4_END_MARKS) or line.endswith(C4_ELLIPSIS):
        return "no_end_mark"
    if len(line.split()) < min_words:
        return "too_short"
    lower = line.lower()
    if "lorem ipsum" in lower:
        return "lorem_ipsum"
    if "javascript" in lower:
        return "javascript"
    if "{" in line:
        return "curly_bracket"
    if any(phrase in lower for phrase in C4_POLICY_PHRASES):
        return "policy"
    return "keep"


C4_PAGE_RULES = ("lorem_ipsum", "curly_bracket")


def c4_clean_page(text: str, min_words: int = C4_MIN_WORDS_PER_LINE,
                  min_sentences: int = C4_MIN_SENTENCES) -> str | None:
    """C4's cleaner on one page: the kept lines joined with newlines, or None when the
    page is dropped (a page rule fired, or fewer than `min_sentences` sentences remain).

    C4 ran one more step across the whole corpus, dropping every repeat of a three-sentence
    span; this course does that job with `exact_dedup` and `near_dedup` instead.
    """
    kept, sentences = [], 0
    for line in text.splitlines():
        verdict = c4_line_verdict(line, min_words)
        if verdict in C4_PAGE_RULES:
            return None
        if verdict == "keep":
            line = _C4_CITATION.sub("", line.strip())
            kept.append(line)
            sentences += count_sentences(line)
    if sentences < min_sentences:
        return None
    return "\n".join(kept).strip()
