"""The data cliff: how much good human text there is, how fast training runs eat it, and
how much of a corpus survives the filters a pretraining pipeline runs.

Two halves, each small enough to read in one sitting.

**The arithmetic.** Back-of-envelope sums with every assumption an argument::

    from synthkit import cliff
    stock = cliff.HIGH_QUALITY_STOCK                   # 50 trillion tokens after strict filters
    cliff.years_until_exhausted(stock, 15e12, run_growth=2.5)   # ~1.3 years
    cliff.exhaustion_year(stock, 15e12, run_growth=2.5, start_year=2024)
    cliff.projection(stock, 15e12, run_growth=2.5)     # one row per year

Growth is always a yearly *factor*: 2.5 means "2.5 times bigger every year", 1.0 means
"no growth", 1.05 means "5% a year".

**The funnel.** The stages real pipelines run (exact dedup, near dedup, quality rules),
on any list of records with a ``text``, reporting what survives each stage in documents
and in tokens::

    stages = cliff.funnel(records, tokens=model)        # model: anything with count_tokens
    cliff.plot_funnel(stages)

``crawl_like`` turns a clean corpus into a caricature of a web crawl (reposts, lightly
edited copies, boilerplate pages, each labelled) so that a funnel has something to catch
and its catches can be scored (``dedup_scores``).
"""
from __future__ import annotations

import math
import random
import time
from collections import Counter
from typing import Callable, Iterable, Sequence

from . import filters
from .data import plant_near_duplicates

# ---------------------------------------------------------------------------------------
# The figures: one set, used by the chapter, the lab, its quiz and `plot_cliff`
# ---------------------------------------------------------------------------------------

# The syllabus's figures, as orders of magnitude (see chapters/01-data-cliff.md). The raw range
# is often quoted for Common Crawl, but it is the size of the whole indexed web: Villalobos et
# al. (2024, Table 1) put the indexed web at ~510T tokens (95% interval 130T-2100T) and Common
# Crawl's archive, a sample of it, at ~130T (100T-260T).
RAW_WEB_TOKENS = (300e12, 500e12)   # raw text tokens on the public (indexed) web
SURVIVE_FRACTION = 0.15             # share left after strict dedup + quality filtering: 45T-75T
HIGH_QUALITY_STOCK = 50e12          # high-quality web text after the strictest filters
FRONTIER_RUN_2024 = (10e12, 15e12)  # tokens in one frontier run, 2024: a fifth to a third of the stock

# The best published projection: Villalobos et al., "Will we run out of data? Limits of LLM
# scaling based on human-generated data" (Epoch AI, ICML 2024). Their *effective* stock of
# public human text counts all text good enough to train on (not only the strictest cut)
# and allows for training on it several epochs; 90% interval 100T-1000T. They project it
# fully used between 2026 and 2032 (median 2028), a year or two earlier if models are
# overtrained. They put the indexed web's growth at 0-10% a year; in this module the stock's
# growth is always an argument, an assumption of the caller, never a measurement.
EPOCH_STOCK = 300e12
EPOCH_STOCK_INTERVAL = (100e12, 1000e12)
EPOCH_EXHAUSTED = (2026, 2032)

# Training-set sizes reported by the models' own papers: (model, year, tokens).
KNOWN_RUNS = (
    ("GPT-3", 2020, 300e9),
    ("Chinchilla", 2022, 1.4e12),
    ("LLaMA", 2023, 1.4e12),
    ("Llama 2", 2023, 2e12),
    ("Llama 3", 2024, 15e12),
)

# ---------------------------------------------------------------------------------------
# The arithmetic
# ---------------------------------------------------------------------------------------


def usable_stock(raw_tokens: float, survive_fraction: float = SURVIVE_FRACTION) -> float:
    """Tokens left after filtering: ``raw_tokens * survive_fraction``.

    >>> usable_stock(400e12, 0.15) / 1e12
    60.0
    """
    if raw_tokens < 0:
        raise ValueError(f"raw_tokens must be >= 0, got {raw_tokens}")
    if not 0 <= survive_fraction <= 1:
        raise ValueError(f"survive_fraction is a share between 0 and 1, got {survive_fraction}")
    return raw_tokens * survive_fraction


def annual_growth(tokens_then: float, year_then: float, tokens_now: float, year_now: float) -> float:
    """The constant yearly factor that takes ``tokens_then`` to ``tokens_now``.

    From GPT-3's 300 billion tokens (2020) to Llama 3's 15 trillion (2024)::

    >>> round(annual_growth(300e9, 2020, 15e12, 2024), 2)
    2.66
    """
    if tokens_then <= 0 or tokens_now <= 0:
        raise ValueError("token counts must be positive")
    if year_now == year_then:
        raise ValueError("the two years must differ")
    return (tokens_now / tokens_then) ** (1 / (year_now - year_then))


def _check_growth(run_growth: float, stock_growth: float, epochs: float) -> None:
    if run_growth <= 0 or stock_growth <= 0:
        raise ValueError(f"growth is a yearly factor (1.0 = no growth, 2.0 = doubling), so it must "
                         f"be > 0; got run_growth={run_growth}, stock_growth={stock_growth}")
    if epochs < 1:
        raise ValueError(f"epochs (how often a run may see each token) must be >= 1, got {epochs}")


def years_until_exhausted(stock: float, run_tokens: float, run_growth: float,
                          stock_growth: float = 1.0, epochs: float = 1.0) -> float:
    """Years until one training run needs more unique tokens than the stock holds.

    A run of R tokens that sees each token ``epochs`` times needs R / epochs unique
    tokens. Runs grow by ``run_growth`` a year, the stock by ``stock_growth``; the answer
    t solves ``run_tokens * run_growth**t / epochs == stock * stock_growth**t``. It is 0
    when today's run already needs the whole stock, and ``math.inf`` when the stock grows
    at least as fast as the runs (the cliff never comes).
    """
    _check_growth(run_growth, stock_growth, epochs)
    if stock <= 0:
        return 0.0
    if run_tokens <= 0:
        return math.inf
    need = run_tokens / epochs
    if need >= stock:
        return 0.0
    if run_growth <= stock_growth:
        return math.inf
    return math.log(stock / need) / math.log(run_growth / stock_growth)


def exhaustion_year(stock: float, run_tokens: float, run_growth: float, stock_growth: float = 1.0,
                    start_year: float = 2024, epochs: float = 1.0) -> float:
    """The (fractional) year in which one run needs the whole stock; ``math.inf`` if never.

    ``start_year`` is the year the figures ``stock`` and ``run_tokens`` describe.
    """
    return start_year + years_until_exhausted(stock, run_tokens, run_growth, stock_growth, epochs)


def projection(stock: float, run_tokens: float, run_growth: float, stock_growth: float = 1.0,
               start_year: int = 2024, years: int = 10, epochs: float = 1.0) -> list[dict]:
    """One row per year from ``start_year``: year, stock, run (tokens seen), unique
    (unique tokens the run needs), share (unique / stock) and exhausted (share >= 1)."""
    _check_growth(run_growth, stock_growth, epochs)
    rows = []
    for k in range(int(years) + 1):
        s = stock * stock_growth ** k
        r = run_tokens * run_growth ** k
        unique = r / epochs
        share = unique / s if s > 0 else math.inf
        rows.append({"year": start_year + k, "stock": s, "run": r, "unique": unique,
                     "share": share, "exhausted": share >= 1})
    return rows


def tokens_label(tokens: float) -> str:
    """A token count the way people say it: '15T', '300B', '1.2M', '950'."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(tokens) >= size:
            value = tokens / size
            return f"{value:.0f}{unit}" if value >= 100 or value == int(value) else f"{value:.1f}{unit}"
    return f"{tokens:.0f}"


def plot_cliff(stock: float, run_tokens: float, run_growth: float, stock_growth: float = 1.0,
               start_year: int = 2024, years: int = 10, epochs: float = 1.0, ax=None,
               history: Iterable[tuple[str, float, float]] = KNOWN_RUNS, published: bool = True):
    """The stock of usable text against the unique tokens one run needs, year by year, on
    a log scale, with the training sets of known models and the year the lines cross.

    ``published`` also shades Villalobos et al.'s (2024) projection beside the sum: their
    90% interval for the effective stock (a band) and the years they expect it to be
    fully used (a span), so every version of the sum is seen against the best estimate."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    rows = projection(stock, run_tokens, run_growth, stock_growth, start_year, years, epochs)
    xs = [r["year"] for r in rows]
    ax.plot(xs, [r["stock"] for r in rows], color="#1f6feb", lw=2.5, label="usable human text (stock)")
    label = "one frontier run" + (f" (unique tokens, {epochs:g} epochs)" if epochs != 1 else "")
    ax.plot(xs, [r["unique"] for r in rows], color="#cf222e", lw=2.5, label=label)
    history = list(history)
    if history:
        ax.scatter([h[1] for h in history], [h[2] for h in history], color="#57606a", zorder=3,
                   s=18, label="known training sets")
        earliest = min(h[1] for h in history)
        seen: dict[float, int] = {}
        for name, year, tokens in sorted(history, key=lambda h: (h[1], -h[2])):
            k = seen[year] = seen.get(year, -1) + 1       # stack the labels of one year's runs
            right = year == earliest
            ax.annotate(name, (year, tokens), textcoords="offset points", fontsize=8, color="#57606a",
                        xytext=(5 if right else -5, -4 - 10 * k), ha="left" if right else "right")
    if published:
        low, high = EPOCH_STOCK_INTERVAL
        ax.axhspan(low, high, color="#8250df", alpha=0.08, lw=0)
        ax.axhline(EPOCH_STOCK, color="#8250df", lw=1, ls=":",
                   label=f"Villalobos et al. 2024: {tokens_label(EPOCH_STOCK)} effective stock "
                         f"({tokens_label(low)}-{tokens_label(high)})")
        ax.axvspan(EPOCH_EXHAUSTED[0], EPOCH_EXHAUSTED[1], color="#8250df", alpha=0.06, lw=0,
                   label=f"... fully used {EPOCH_EXHAUSTED[0]}-{EPOCH_EXHAUSTED[1]}")
    year = exhaustion_year(stock, run_tokens, run_growth, stock_growth, start_year, epochs)
    if math.isfinite(year) and year <= start_year + years:
        ax.axvline(year, color="black", ls="--", lw=1)
        ax.annotate(f" {year:.1f}", (year, rows[0]["stock"] / 30), fontsize=9)
        ax.set_title(f"One run needs the whole stock in {year:.1f}")
    elif math.isfinite(year):
        ax.set_title(f"One run needs the whole stock in {year:.1f}, beyond this window")
    else:
        ax.set_title("The stock keeps ahead of the runs: no cliff")
    ax.set_yscale("log")
    ax.set_xlabel("year")
    ax.set_ylabel("tokens")
    first = min([h[1] for h in history] + [start_year])
    ax.set_xlim(first - 0.5, start_year + years + 0.5)
    top = max([r["stock"] for r in rows] + [h[2] for h in history]
              + ([EPOCH_STOCK_INTERVAL[1]] if published else [])) * 1e3
    bottom = min([rows[0]["unique"], rows[0]["stock"]] + [h[2] for h in history]) / 10
    ax.set_ylim(bottom, top)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return ax


# ---------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------


def _counter(tokens) -> Callable[[str], int]:
    if callable(getattr(tokens, "count_tokens", None)):
        return tokens.count_tokens
    if callable(tokens):
        return tokens
    raise TypeError("tokens= must be a model (anything with .count_tokens), a function text -> int, "
                    "or a list of counts, one per record")


def count_tokens(texts: Sequence[str], tokenizer) -> list[int]:
    """Token counts of ``texts`` with ``tokenizer`` (a model, or a function text -> int).

    Identical texts are counted once: a crawl is full of copies, and tokenizing is the one
    step here that costs real time.
    """
    count = _counter(tokenizer)
    memo: dict[str, int] = {}
    out = []
    for text in texts:
        n = memo.get(text)
        if n is None:
            n = memo[text] = int(count(text))
        out.append(n)
    return out


def tokens_per_char(texts: Sequence[str], tokenizer) -> float:
    """Tokens per character over a whole corpus: how much a tokenizer charges for a script
    or a language (lower is cheaper)."""
    chars = sum(len(t) for t in texts)
    return sum(count_tokens(texts, tokenizer)) / chars if chars else 0.0


# ---------------------------------------------------------------------------------------
# The funnel
# ---------------------------------------------------------------------------------------


def quality_keep(texts: Sequence[str], min_words: int = filters.MIN_WORDS,
                 ignore: Iterable[str] = ()) -> list[bool]:
    """For each text, whether it passes `filters.quality_flags`, leaving out the rules named
    in ``ignore`` (lowering the bar one rule at a time)."""
    ignore = set(ignore)
    unknown = ignore - set(filters.quality_flags("probe text", min_words=min_words))
    if unknown:
        raise ValueError(f"unknown quality rule(s) {sorted(unknown)}; the rules are "
                         f"{sorted(filters.quality_flags('probe text'))}")
    return [not any(v for k, v in filters.quality_flags(t, min_words=min_words).items() if k not in ignore)
            for t in texts]


def funnel(records: Sequence[dict], tokens, *, text_key: str = "text", near_threshold: float = 0.8,
           num_perm: int = 128, min_words: int = filters.MIN_WORDS, ignore: Iterable[str] = (),
           by: str | None = None, seed: int = 1) -> list[dict]:
    """Run the filtering funnel and report what survives each stage.

    Stages, in order: ``collected`` (everything), ``exact dedup`` (`filters.exact_dedup`:
    the same text after lowercasing and dropping punctuation), ``near dedup``
    (`filters.near_dedup`: MinHash + LSH on character 5-grams, Jaccard >= near_threshold)
    and ``quality`` (`filters.quality_flags` with ``min_words``; rules named in ``ignore``
    are switched off). Each stage runs on the survivors of the one before.

    ``tokens``: a model (anything with ``count_tokens``), a function text -> int, or a
    list of counts, one per record.

    Returns one dict per stage: stage, documents, tokens, kept (indices into ``records``
    of the surviving documents, in order) and seconds (the stage's run time). With ``by``
    (a record field, such as the ``origin`` label of `crawl_like`), each stage also has
    ``groups``: {value of that field: {"documents": ..., "tokens": ...}}.
    """
    texts = [r[text_key] for r in records]
    if isinstance(tokens, (list, tuple)):
        if len(tokens) != len(texts):
            raise ValueError(f"{len(tokens)} token counts for {len(texts)} records")
        counts = [int(n) for n in tokens]
    else:
        counts = count_tokens(texts, tokens)

    stages = []

    def stage(name: str, kept: list[int], started: float) -> list[int]:
        row = {"stage": name, "documents": len(kept), "tokens": sum(counts[i] for i in kept),
               "kept": kept, "seconds": round(time.perf_counter() - started, 3)}
        if by is not None:
            groups: dict[str, dict] = {}
            for i in kept:
                g = groups.setdefault(str(records[i].get(by)), {"documents": 0, "tokens": 0})
                g["documents"] += 1
                g["tokens"] += counts[i]
            row["groups"] = groups
        stages.append(row)
        return kept

    t = time.perf_counter()
    kept = stage("collected", list(range(len(texts))), t)
    t = time.perf_counter()
    kept = stage("exact dedup", [kept[i] for i in filters.exact_dedup([texts[k] for k in kept])], t)
    t = time.perf_counter()
    survivors = filters.near_dedup([texts[k] for k in kept], threshold=near_threshold,
                                   num_perm=num_perm, seed=seed) if kept else []
    kept = stage("near dedup", [kept[i] for i in survivors], t)
    t = time.perf_counter()
    good = quality_keep([texts[k] for k in kept], min_words=min_words, ignore=ignore)
    stage("quality", [k for k, ok in zip(kept, good) if ok], t)
    return stages


def funnel_table(stages: Sequence[dict]) -> str:
    """The funnel as a small text table: documents and tokens kept, and the share of the
    collected tokens each stage leaves."""
    first = stages[0]["tokens"] or 1
    lines = [f"{'stage':<13}{'documents':>10}{'tokens':>12}{'% tokens':>10}{'seconds':>9}"]
    for s in stages:
        lines.append(f"{s['stage']:<13}{s['documents']:>10,}{s['tokens']:>12,}"
                     f"{100 * s['tokens'] / first:>9.1f}%{s.get('seconds', 0):>9.1f}")
    return "\n".join(lines)


def rule_table(texts: Sequence[str], tokens: Sequence[int], min_words: int = filters.MIN_WORDS) -> list[dict]:
    """For each quality rule: how many documents and tokens it flags, and how many it
    flags *alone* (no other rule fires on them). The 'alone' figures are exactly what
    switching that one rule off would add back to the corpus."""
    flags = [filters.quality_flags(t, min_words=min_words) for t in texts]
    rows = []
    for rule in flags[0] if flags else filters.quality_flags("probe text"):
        hit = [i for i, f in enumerate(flags) if f[rule]]
        alone = [i for i in hit if sum(flags[i].values()) == 1]
        rows.append({"rule": rule, "documents": len(hit), "tokens": sum(tokens[i] for i in hit),
                     "documents_alone": len(alone), "tokens_alone": sum(tokens[i] for i in alone)})
    return rows


def plot_funnel(stages: Sequence[dict], ax=None, title: str | None = None):
    """Tokens surviving each stage as bars, split by group when the funnel ran with ``by=``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    names = [s["stage"] for s in stages]
    x = list(range(len(stages)))
    if "groups" not in stages[0]:
        ax.bar(x, [s["tokens"] for s in stages], color=ORIGIN_COLOURS["human"])
    else:
        groups = sorted(stages[0]["groups"], key=_origin_order)
        palette = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        bottom = [0] * len(stages)
        for g in groups:
            heights = [s["groups"].get(g, {}).get("tokens", 0) for s in stages]
            ax.bar(x, heights, bottom=bottom, label=g, color=ORIGIN_COLOURS.get(g) or next(palette))
            bottom = [b + h for b, h in zip(bottom, heights)]
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    first = stages[0]["tokens"] or 1
    for i, s in enumerate(stages):
        ax.annotate(f"{tokens_label(s['tokens'])} tokens\n{100 * s['tokens'] / first:.0f}%", (i, s["tokens"]),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel("tokens kept")
    ax.set_ylim(0, first * 1.18)
    ax.set_title(title or "What survives each stage of the funnel")
    return ax


ORIGIN_COLOURS = {"human": "#1f6feb", "repost": "#bf8700", "near copy": "#d1242f", "junk": "#57606a"}


def _origin_order(name: str):
    order = list(ORIGIN_COLOURS)
    return (order.index(name) if name in order else len(order), name)


# ---------------------------------------------------------------------------------------
# A crawl-like corpus, and scoring what the funnel catches
# ---------------------------------------------------------------------------------------

_NAV = ("Home", "About us", "Contact", "News", "Sport", "Weather", "Shop", "Login", "Register", "Blog",
        "Careers", "Help", "Privacy", "Terms", "Sitemap", "FAQ", "Store locator", "Gift cards")
_PRODUCTS = ("T-shirt", "Hoodie", "Mug", "Poster", "Cap", "Tote bag", "Sticker pack", "Phone case",
             "Notebook", "Water bottle", "Socks", "Scarf")
_COLOURS = ("Red", "Blue", "Black", "White", "Green", "Grey", "Navy", "Pink")
_TAGS = ("travel", "food", "love", "photooftheday", "instagood", "summer", "fitness", "art", "nature",
         "style", "music", "beauty", "happy", "cute", "tbt", "follow")
_SPAM = ("cheap flights", "best price", "free shipping", "buy now", "top deals", "discount code",
         "limited offer", "click here")
_TOWNS = ("Leeds", "Austin", "Lyon", "Porto", "Dublin", "Perth", "Denver", "Ghent", "Bergen", "Turin")
_SEO = ("Looking for the best {item} in {town}? You have come to the right place.",
        "Our {item} deals are updated every day, so you never miss a bargain.",
        "Thousands of customers in {town} trust us for a {item} that lasts.",
        "Compare prices on every {item} and save up to 70% today.",
        "Order before noon and your new {item} ships the same day.",
        "Read our honest reviews before you choose a {item} for your home.",
        "Why pay more for a {item} when the best offers in {town} are here?")
_LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
          "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco").split()


def junk_page(rng: random.Random) -> str:
    """One page of web boilerplate, of a random kind: a navigation bar, a cookie banner, a
    product listing, a tag cloud, repeated keyword spam, placeholder Latin, fluent
    search-engine bait, or a table of numbers. A caricature, but each kind is common in raw
    crawls, and the search-engine bait is written to slip past rules of thumb, as the real
    thing does."""
    kind = rng.randrange(8)
    if kind == 0:   # navigation and footer
        lines = [" | ".join(rng.sample(_NAV, rng.randint(4, 8))) for _ in range(rng.randint(2, 4))]
        lines.append(f"© {rng.randint(2005, 2024)} All rights reserved")
        return "\n".join(lines)
    if kind == 1:   # cookie banner
        return "\n".join(["We use cookies.", "Accept all", "Reject", "Manage preferences",
                          rng.choice(["Cookie policy", "Privacy settings", "Learn more"])][: rng.randint(3, 5)])
    if kind == 2:   # product listing
        return "\n".join(f"{rng.choice(_COLOURS)} {rng.choice(_PRODUCTS)} - ${rng.randint(3, 60)}.{rng.choice(['99', '49', '00'])}"
                         for _ in range(rng.randint(4, 12)))
    if kind == 3:   # tag cloud
        return " ".join("#" + rng.choice(_TAGS) for _ in range(rng.randint(8, 25)))
    if kind == 4:   # keyword spam, the same line again and again
        line = " ".join(rng.sample(_SPAM, 3))
        return "\n".join([line] * rng.randint(3, 8))
    if kind == 5:   # placeholder Latin
        return " ".join(rng.choice(_LOREM) for _ in range(rng.randint(20, 80))).capitalize() + "."
    if kind == 6:   # keyword-stuffed prose written for search engines: fluent, and empty
        item, town = rng.choice(_PRODUCTS).lower(), rng.choice(_TOWNS)
        sentences = [t.format(item=item, town=town) for t in rng.sample(_SEO, rng.randint(3, 5))]
        return " ".join(sentences)
    # a table of numbers
    return "\n".join(" ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(4, 8)))
                     for _ in range(rng.randint(3, 10)))


def _repost(text: str, rng: random.Random) -> str:
    """The same text as another site prints it: case, spacing and punctuation change only."""
    words = text.split()
    style = rng.randrange(3)
    if style == 0:
        return "  ".join(words)
    if style == 1:
        return " ".join(w.strip(",;") for w in words).lower()
    return text.upper() + "\n"


def crawl_like(records: Sequence[dict], *, reposts: float = 0.05, near_copies: float = 0.10,
               junk: float = 0.10, max_edits: int = 2, seed: int = 0, text_key: str = "text") -> list[dict]:
    """A clean corpus made to look like a web crawl, with every planted document labelled.

    Adds, as fractions of ``len(records)``: ``reposts`` (the same text with other case,
    spacing or punctuation), ``near_copies`` (1..max_edits words changed, from
    `synthkit.data.plant_near_duplicates`) and ``junk`` pages (`junk_page`). Copies land
    after their originals, junk anywhere. Returns new records with ``text``, ``title``,
    ``origin`` ("human", "repost", "near copy" or "junk") and ``of`` (the index in the
    returned list of the document a copy was made from, else None).
    """
    rng = random.Random(seed)
    texts = [r[text_key] for r in records]
    n = len(texts)
    if n == 0:
        return []
    with_near, pairs = plant_near_duplicates(texts, round(near_copies * n), max_edits=max_edits, seed=seed)
    copy_of = {c: o for o, c in pairs}
    # one item per document: [sort key, uid, text, origin, uid of its original]
    items, record_at = [], {}          # record_at: uid of a human document -> index in `records`
    for pos, text in enumerate(with_near):
        if pos in copy_of:
            items.append([float(pos), pos, text, "near copy", copy_of[pos]])
        else:
            record_at[pos] = len(record_at)
            items.append([float(pos), pos, text, "human", None])
    humans = sorted(record_at)
    m = uid = len(items)
    for _ in range(round(reposts * n)):
        o = rng.choice(humans)
        items.append([rng.uniform(o + 0.5, m), uid, _repost(texts[record_at[o]], rng), "repost", o])
        uid += 1
    for _ in range(round(junk * n)):
        items.append([rng.uniform(-0.5, m), uid, junk_page(rng), "junk", None])
        uid += 1
    items.sort(key=lambda it: it[0])
    where = {it[1]: p for p, it in enumerate(items)}
    out = []
    for _, uid_, text, origin, of in items:
        src = uid_ if origin == "human" else of      # a copy takes its original's title
        out.append({"text": text, "title": records[record_at[src]].get("title") if src is not None else None,
                    "origin": origin, "of": None if of is None else where[of]})
    return out


def dedup_scores(records: Sequence[dict], kept: Iterable[int], before: Iterable[int] | None = None,
                 planted: Iterable[str] = ("repost", "near copy"), ignore: Iterable[str] = ("junk",)) -> dict:
    """Score a dedup stage against the labels of `crawl_like`, at the level of documents.

    ``before``: the indices that went into the stage (default: all records); ``kept``: the
    ones it let through. A removed document is a *catch* when its origin is in ``planted``.
    Documents whose origin is in ``ignore`` are left out of the score (by default junk
    pages, whose copies of one another are no one's answer key); ``ignored_removed`` says
    how many of them the stage removed.

    precision = catches / removed (1.0 when nothing was removed); recall = catches /
    planted copies that went in (1.0 when there were none).
    """
    before = list(range(len(records))) if before is None else list(before)
    planted, ignore = set(planted), set(ignore)
    scored = {i for i in before if records[i].get("origin") not in ignore}
    gone = set(before) - set(kept)
    removed = gone & scored
    copies = {i for i in scored if records[i].get("origin") in planted}
    caught = removed & copies
    return {"removed": len(removed), "planted": len(copies), "caught": len(caught),
            "false_alarms": len(removed - copies), "missed": len(copies - removed),
            "ignored_removed": len(gone - scored),
            "precision": len(caught) / len(removed) if removed else 1.0,
            "recall": len(caught) / len(copies) if copies else 1.0}


def true_duplicate_pairs(records: Sequence[dict]) -> set[tuple[int, int]]:
    """Every pair (i, j), i < j, of documents that are copies of one another according to
    the ``of`` labels of `crawl_like`: an original with each of its copies, and two copies
    of the same original with each other."""
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        if r.get("of") is not None:
            groups.setdefault(r["of"], [r["of"]]).append(i)
    pairs = set()
    for members in groups.values():
        members = sorted(members)
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                pairs.add((members[a], members[b]))
    return pairs


def origins(records: Sequence[dict], indices: Iterable[int] | None = None) -> Counter:
    """How many documents of each origin among ``indices`` (default: all)."""
    indices = range(len(records)) if indices is None else indices
    return Counter(records[i].get("origin") for i in indices)
