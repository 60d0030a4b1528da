"""Sharing the CPU: how many threads llama.cpp should use for its next step.

llama.cpp splits every matrix product of a step across its threads and makes them meet
at a barrier after each operation, hundreds of times per step. A thread that waits there
spins. On a machine that also runs a browser, a second notebook or `synthkit magpie` in a
terminal, one of those threads is often off its core: every barrier then waits for it
while its partner burns the other core spinning. So the right number of threads is not
"the cores this process may use" but "the cores nobody else is using right now".

`CoreShare` measures that from the kernel's own accounting: the CPU time all processes
used on our cores (/proc/stat) minus the CPU time this process used, over the last
fraction of a second. It is cheap (one small file read every ~0.25 s) and cooperative:
two synthkit processes each see the other's load and each settle on one core instead of
fighting over both. Where /proc/stat does not exist (macOS, Windows), it keeps the
ceiling it was given.

Measured on a 2-core machine (benchmarks/sharing_options.py, 32 x 64 tokens batched,
ratios to one process alone with 2 threads): llama.cpp's defaults kept 36% of the idle
speed beside a busy loop and 4% for two synthkit processes together; OMP_WAIT_POLICY=passive
(threads sleep at each barrier) gave 43% and 123% but cost 22% of the idle speed, since
every barrier becomes a sleep and a wake-up; this adaptive count gave 57% and 122% at no
idle cost, so it is the default and the OpenMP wait policy is left alone.

The torch backend's generation uses the same count for torch's threads (its OpenMP
threads meet at barriers the same way): beside one CPU-bound process, batch-32 decoding
kept 77-79% of its idle speed, against 31-32% with both threads pinned.
"""
from __future__ import annotations

import contextlib
import os
import time
from types import SimpleNamespace

WINDOW_S = 0.25  # how much history one decision looks at
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _busy_seconds(cpus: set[int]) -> float | None:
    """CPU-seconds every process has spent running on `cpus` since boot, or None.

    A /proc/stat cpuN line holds jiffies spent in: user nice system idle iowait irq
    softirq steal ...; everything but idle and iowait is someone's work (steal is time a
    hypervisor gave to another machine: unavailable to us just the same)."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines[1:]:
        if not line.startswith("cpu"):
            break
        name, *fields = line.split()
        if int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8]]
        busy += sum(values) - values[3] - values[4]
    return busy / _CLK_TCK


class CoreShare:
    """Picks a thread count in [1, ceiling] from what other processes leave free.

    Call `threads()` before each llama.cpp step; it re-decides at most every WINDOW_S.
    """

    def __init__(self, ceiling: int, adaptive: bool = True):
        self.ceiling = max(1, int(ceiling))
        self._cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
        self._n = self.ceiling
        self.others = 0.0  # cores other processes kept busy in the last window
        self.adaptive = adaptive and self.ceiling > 1 and _busy_seconds(self._cpus) is not None
        self._mark = self._sample() if self.adaptive else None

    def _sample(self) -> tuple[float, float, float]:
        return time.monotonic(), _busy_seconds(self._cpus) or 0.0, time.process_time()

    def threads(self) -> int:
        if not self.adaptive:
            return self._n
        now = time.monotonic()
        if now - self._mark[0] < WINDOW_S:
            return self._n
        if now - self._mark[0] > 20 * WINDOW_S:  # idle since the last look: history is stale
            self._mark = self._sample()
            return self._n
        t, busy, own = self._sample()
        t0, busy0, own0 = self._mark
        self._mark = (t, busy, own)
        self.others = max(0.0, ((busy - busy0) - (own - own0)) / (t - t0))
        free = len(self._cpus) - self.others
        self._n = max(1, min(self.ceiling, round(free)))
        return self._n


@contextlib.contextmanager
def others_busy():
    """Measure how many cores other processes kept busy during a `with` block (for
    benchmarks: a figure measured beside someone else's work should say so).
    `.cores` is set on exit; 0.0 where /proc/stat does not exist."""
    cpus = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    result = SimpleNamespace(cores=0.0)
    t0, busy0, own0 = time.monotonic(), _busy_seconds(cpus), time.process_time()
    try:
        yield result
    finally:
        busy1 = _busy_seconds(cpus)
        if busy0 is not None and busy1 is not None:
            wall = time.monotonic() - t0
            result.cores = max(0.0, ((busy1 - busy0) - (time.process_time() - own0)) / wall)


def default_threads() -> int:
    """Most threads llama.cpp may use: $SYNTHKIT_THREADS, else the cores this process may use.

    The number actually used at each step can be lower: see `cores.CoreShare`.
    """
    env = os.environ.get("SYNTHKIT_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return usable_cores()
