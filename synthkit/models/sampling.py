"""Sampling parameters, validated once, hashed for the cache.

Every sequence gets its own seed, derived from the run seed, the prompt and the sample
index. That makes an output a pure function of (model, prompt, parameters, seed, index):
it does not depend on which other prompts shared its batch, so cached and fresh
generations can be mixed freely and a killed run resumes exactly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field

from ..errors import InvalidSamplingError


@dataclass(frozen=True)
class Sampling:
    """How to pick each next token.

    temperature 0 means greedy decoding. top_k 0 and top_p 1.0 switch those filters off.
    `logprobs` asks for the top-k log-probabilities at every generated position.
    """

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 50
    min_p: float = 0.0
    max_tokens: int = 128
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int = 0
    logprobs: int = 0

    def __post_init__(self):
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop or ()))
        _check(isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
               and self.temperature >= 0,
               f"temperature must be a number >= 0 (0 = greedy); got {self.temperature!r}")
        _check(isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1,
               f"top_p must be in (0, 1] (1.0 switches it off); got {self.top_p!r}")
        _check(isinstance(self.top_k, int) and self.top_k >= 0,
               f"top_k must be an int >= 0 (0 switches it off); got {self.top_k!r}")
        _check(isinstance(self.min_p, (int, float)) and 0 <= self.min_p < 1,
               f"min_p must be in [0, 1) (0 switches it off); got {self.min_p!r}")
        _check(isinstance(self.max_tokens, int) and self.max_tokens >= 1,
               f"max_tokens must be an int >= 1; got {self.max_tokens!r}")
        _check(all(isinstance(s, str) and s for s in self.stop),
               f"stop must be non-empty strings; got {self.stop!r}")
        _check(isinstance(self.seed, int) and self.seed >= 0,
               f"seed must be an int >= 0; got {self.seed!r}")
        _check(isinstance(self.logprobs, int) and 0 <= self.logprobs <= 20,
               f"logprobs must be an int in [0, 20]; got {self.logprobs!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def replace(self, **changes) -> "Sampling":
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InvalidSamplingError(
                f"unknown sampling parameter(s) {sorted(unknown)}; "
                f"valid ones are {[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stop"] = list(self.stop)
        return d


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidSamplingError(message)


def sequence_seed(seed: int, prompt: str, index: int) -> int:
    """A 31-bit seed for one sequence, stable across runs, batches and machines."""
    h = hashlib.sha256(json.dumps([seed, index, prompt]).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF
