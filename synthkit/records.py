"""Records: the plain dicts every technique produces, and how they are saved.

A synthetic example is only as trustworthy as what is known about how it was made, so
every record carries `provenance`: the technique, the model, its licence, the sampling
parameters, the seed and sample index (enough to make it again). Files are JSON lines,
written atomically so a killed run never leaves half a file behind.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .errors import SynthkitError


def provenance(gen, technique: str, license: str | None = None, **extra) -> dict:
    """What a record should say about the generation `gen` it came from."""
    return {"technique": technique, "model": gen.model, "backend": gen.backend,
            "license": license or "unknown", "params": gen.params, "seed": gen.seed,
            "index": gen.index, **extra}


def write_jsonl(records: Iterable[dict], path: str | os.PathLike) -> Path:
    """Write records as JSON lines; the file appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read JSON lines; a broken line is reported with its number, not skipped silently."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SynthkitError(f"{path}, line {number}, is not valid JSON ({e.msg}); "
                                    f"fix or delete that line and load again") from None
    return records


def to_alpaca(records: Iterable[dict]) -> list[dict]:
    """The three Alpaca fields (instruction, input, output) of each record."""
    return [{"instruction": r["instruction"], "input": r.get("input", ""), "output": r.get("output", "")}
            for r in records]


def to_dataset(records: list[dict]):
    """A `datasets.Dataset` (provenance kept as a JSON string column, so mixed params fit)."""
    from datasets import Dataset
    rows = [{**r, "provenance": json.dumps(r.get("provenance", {}))} for r in records]
    return Dataset.from_list(rows)
