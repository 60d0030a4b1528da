"""An on-disk memo of generations.

Generation is the course's main cost, so every finished sequence is written to disk the
moment it finishes, keyed by everything that determines it: model fingerprint, prompt,
sampling parameters, seed and sample index. Re-running a cell reads the answers back;
a run killed halfway resumes with only the missing sequences. SQLite gives atomic,
crash-safe writes and lets two kernels share one cache.

Turn it off with SYNTHKIT_CACHE=off (or cache=False); move it with SYNTHKIT_CACHE_DIR;
clear it with `synthkit cache --clear` or GenerationCache().clear().
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path


def cache_dir() -> Path:
    """Where the default cache lives: $SYNTHKIT_CACHE_DIR or ~/.cache/synthkit."""
    env = os.environ.get("SYNTHKIT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "synthkit"


def model_copy_dir() -> Path:
    """Where converted copies of a shipped model file (the teacher's bf16 or Q8_0 copy) and the
    measured choice between them live: $SYNTHKIT_MODEL_CACHE, else the cache's models/ folder.

    A folder of its own because these depend only on the model file and the machine, never on
    what was generated: the test suite starts every run with an empty cache but keeps this
    folder between runs, so it converts and measures once per machine, not once per run."""
    env = os.environ.get("SYNTHKIT_MODEL_CACHE")
    return Path(env) if env else cache_dir() / "models"


def cache_enabled() -> bool:
    return os.environ.get("SYNTHKIT_CACHE", "on").lower() not in {"0", "off", "false", "no"}


def make_key(model_fingerprint: str, prompt: str, params: dict, seed: int, index: int) -> str:
    blob = json.dumps([model_fingerprint, prompt, params, seed, index], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class GenerationCache:
    """A key -> JSON record store in one SQLite file."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else cache_dir() / "generations.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.execute("CREATE TABLE IF NOT EXISTS gen (key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError as e:
                raise RuntimeError(
                    f"the generation cache {self.path} is unreadable ({e}); delete it "
                    f"(`synthkit cache --clear`) or point SYNTHKIT_CACHE_DIR elsewhere") from e
            self._local.conn = conn
        return conn

    def get(self, key: str) -> dict | None:
        row = self._conn().execute("SELECT record FROM gen WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        conn = self._conn()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = "SELECT key, record FROM gen WHERE key IN (%s)" % ",".join("?" * len(chunk))
            found.update((k, json.loads(r)) for k, r in conn.execute(q, chunk))
        return found

    def put(self, key: str, record: dict) -> None:
        self._conn().execute("INSERT OR REPLACE INTO gen (key, record) VALUES (?, ?)",
                             (key, json.dumps(record)))

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM gen").fetchone()[0]

    def clear(self) -> int:
        """Delete every cached generation; returns how many there were."""
        n = len(self)
        self._conn().execute("DELETE FROM gen")
        return n


def resolve_cache(cache) -> GenerationCache | None:
    """cache=True/None -> default cache (unless switched off); False -> none; else as given."""
    if cache is False:
        return None
    if cache is None or cache is True:
        return GenerationCache() if cache_enabled() else None
    if isinstance(cache, (str, os.PathLike)):
        return GenerationCache(cache)
    return cache
