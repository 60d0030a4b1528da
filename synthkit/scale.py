"""Beyond one machine: the same generation on a Ray cluster, shard by shard.

A laptop makes a few thousand records an hour. A practitioner who wants a hundred
thousand needs more machines, and wants the same records they would have got on one:
the same text for the same seed, the same order, the same provenance. This module gives
them that without a scheduler of our own. It hands the work to **Ray Data**
(`Dataset.map_batches` with a callable class on an actor pool, the engine distilabel's
RayPipeline and NeMo Curator use) and keeps three promises:

1. **Same records.** `RayModel` *is* a `Model`. Its `generate` is the base class's, run
   on the driver exactly as locally: sampling checked, the generation cache read and
   written, prompts tokenized and measured, sequences numbered, stop strings cut,
   provenance attached, results put back in prompt order. Only `_stream`, the one part
   a backend supplies, is different: it sends the sequences to actors. Each sequence
   carries its own seed, derived from the run seed, the prompt and its sample index
   (`sequence_seed`), and llama.cpp samples every sequence with its own sampler chain,
   so a sequence does not depend on which actor, batch or node made it. Every actor
   loads the same weights in the same format as the driver (it checks the fingerprint).

2. **Resume by shard.** The sequences of one `generate` call are cut, in order, into
   shards of `shard_size`. A shard's name is a digest of what it contains (model
   fingerprint, sampling parameters, and each sequence's prompt, index and seed), so the
   cut is deterministic and a shard file can never be mistaken for another one. Each
   finished shard is written atomically to the shard folder (`OUT.shards/` from the
   command line) the moment it comes back; a rerun reads the finished ones and only sends
   the rest. The final file is still assembled by the caller, in order, from the records
   `generate` returns, so a killed and rerun job writes the same file as an uninterrupted one.

3. **Faults are survived.** An actor whose process dies (a crash, an out-of-memory kill,
   a lost node) is restarted by Ray and the shard it was working on is sent again: Ray
   Data's actor pools create their actors with `max_restarts=-1` and
   `max_task_retries=-1` (Ray 2.60 deprecated passing either to `map_batches`, so we rely
   on those defaults, and the tests kill an actor and remove a node to hold Ray to them).
   Results are keyed by shard, so a shard that came back twice would count once, and a
   run that ends with a shard missing says so instead of writing a short file.

Where things run: one actor per model, the model loaded in the actor's `__init__` (never
pickled; a llama.cpp context is not thread-safe, so an actor runs one batch at a time).
llama.cpp actors reserve `num_cpus` = their thread count; torch actors reserve one GPU
each where the cluster has GPUs. Ray is imported only when a cluster is asked for.

    from synthkit.scale import connect, RayModel
    connect("local")                                   # or "auto", or "ray://head:10001"
    model = RayModel(actors=2, threads=1, shards="magpie.jsonl.shards")
    out = model.generate(prompts, n=4)                 # what load_model().generate would give
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import socket
import time
import warnings
from pathlib import Path

from .errors import SynthkitError
from .models import Generation, Model, Sampling, load_model
from .models.base import Request, file_fingerprint
from .models.cores import usable_cores
from .records import read_jsonl, write_jsonl

# --- the knobs, and why they are set where they are ----------------------------------------
# Sequences per shard: the unit of resuming and of retrying. A lost shard of 64 costs well
# under a minute of one actor's work.
SHARD_SIZE = 64
# Shards per actor call, at most. An actor decodes the shards of one call as one continuous
# stream: a finished sequence's slot takes the next sequence, whichever shard it belongs to,
# so the batch drains once per call instead of once per shard (measured: 256 sequences in
# calls of 64 ran 17% slower than in one call). Each shard is still sent back, and written,
# the moment its last sequence ends; only a killed actor's unfinished shards are redone.
CALL_SHARDS = 8
# Memory one llama.cpp actor may reach: measured at 1.26 GB for the embedded model with the
# default context (its BF16 weights, a KV cache for 32 sequences of 1,024 tokens, and the
# Ray worker itself). The default plan puts no more actors on a node than its memory holds.
ACTOR_MEMORY = 3 * 2**29  # 1.5 GiB
INSTALL_HINT = 'pip install "synthkit[ray]"'


class ScaleError(SynthkitError):
    """Ray is missing, a cluster cannot be reached, or the nodes disagree about the model."""


# ---------------------------------------------------------------------------------------
# Connecting: Ray is imported here and nowhere else.
# ---------------------------------------------------------------------------------------
def import_ray():
    """Ray and Ray Data, or one line that names the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ScaleError(f"--ray needs Ray, which is not installed in this Python; "
                         f"install it with: {INSTALL_HINT}") from None
    return ray


def connect(address: str = "local", *, num_cpus: int | None = None) -> bool:
    """Join or start a Ray cluster; True when this call started it (so the caller stops it).

    `local` starts one on this machine's cores (or `num_cpus`); `auto` joins the cluster
    `ray start` made on this machine (or $RAY_ADDRESS); `HOST:PORT` or `ray://HOST:PORT`
    joins that one. A driver already connected (a notebook, a test) keeps its cluster.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    _quiet_ray_data(ray)
    if address == "local":
        ray.init(num_cpus=num_cpus or usable_cores(), include_dashboard=False,
                 logging_level="WARNING", configure_logging=True, log_to_driver=True)
        return True
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=True)
    except Exception as e:  # ConnectionError, ValueError, grpc errors: all mean "not there"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ScaleError(f"cannot join the Ray cluster at {address!r} ({first}); start one with "
                         f"`ray start --head` on the head node, or pass --ray local") from None
    return True


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, with one line, where Ray itself would retry for a minute."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ScaleError(f"--ray {address!r} is not an address: use local, auto, HOST:PORT "
                         f"(the head's GCS, port 6379 by default) or ray://HOST:PORT (the Ray client, 10001)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ScaleError(f"cannot reach a Ray cluster at {address!r} ({e.strerror or e}); is "
                         f"`ray start --head` running there, and is the port open?") from None


def _quiet_ray_data(ray) -> None:
    """Our own progress bar reports the run; Ray Data's bars would print over it."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "bars disabled"


def shutdown(started: bool) -> None:
    """Stop the cluster if `connect` started it."""
    if started:
        import ray
        ray.shutdown()


def cluster_shape() -> dict:
    """CPUs and GPUs the cluster has, and each alive node's CPUs and memory (bytes Ray lets
    tasks and actors use)."""
    import ray
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    total = ray.cluster_resources()
    return {"cpus": int(total.get("CPU", 0)), "gpus": int(total.get("GPU", 0)),
            "node_cpus": [int(n["Resources"].get("CPU", 0)) for n in nodes],
            "node_memory": [int(n["Resources"].get("memory", 0)) for n in nodes]}


def plan(backend: str, actors: int | None = None, threads: int | None = None,
         shape: dict | None = None) -> tuple[int, int, bool]:
    """(actors, threads per actor, on GPUs) for the connected cluster (or `shape`).

    torch actors take one GPU each where there are GPUs (default: one actor per GPU); on
    CPUs, one actor per node with the smallest node's cores. llama.cpp actors take
    `threads` CPUs each; by default one thread each, one actor per core, as many as each
    node's memory holds (ACTOR_MEMORY apiece): a small model decodes more tokens per core
    in one-thread processes than in one process whose threads meet at every layer, and a
    one-thread actor fits on any node it may be restarted on. Given `actors` alone, they
    share the cores.
    """
    shape = shape or cluster_shape()
    if backend == "torch" and shape["gpus"]:
        return actors or shape["gpus"], threads or 1, True
    nodes = list(zip(shape["node_cpus"], shape.get("node_memory") or [0] * len(shape["node_cpus"])))
    smallest = min([cpus for cpus, _ in nodes] or [1]) or 1
    if backend == "torch":
        actors = actors or max(1, len(nodes))
    elif actors is None:
        threads = threads or 1
        actors = max(1, sum(min(cpus // threads, memory // ACTOR_MEMORY) if memory else cpus // threads
                            for cpus, memory in nodes))
    if threads is None:
        threads = max(1, min(smallest, shape["cpus"] // actors))
    if actors < 1 or threads < 1:
        raise ScaleError(f"--actors and threads per actor must be at least 1 (got {actors}, {threads})")
    largest = max([cpus for cpus, _ in nodes] or [0])
    if threads > largest:  # no node could ever hold one: Ray would wait for it forever
        raise ScaleError(f"an actor of {threads} threads needs a node with {threads} CPUs, and the "
                         f"largest here has {largest}: ask for fewer threads, or add a bigger node")
    if actors * threads > shape["cpus"]:  # Ray Data runs the ones that fit, and the rest if nodes join
        warnings.warn(f"{actors} actors of {threads} thread(s) need {actors * threads} CPUs and the cluster "
                      f"has {shape['cpus']}: Ray Data starts as many as fit now", stacklevel=2)
    return actors, threads, False


# ---------------------------------------------------------------------------------------
# Shards: deterministic names, atomic files.
# ---------------------------------------------------------------------------------------
def cut(requests: list[Request], size: int) -> list[list[Request]]:
    """Consecutive runs of `size` sequences, in the order `generate` numbered them."""
    return [requests[i:i + size] for i in range(0, len(requests), size)]


def shard_key(fingerprint: str, params: dict, shard: list[Request]) -> str:
    """A digest of everything that decides a shard's text: same key, same records."""
    blob = json.dumps([fingerprint, params, [[r.prompt, r.index, r.seed] for r in shard]],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


# What an actor sends back per sequence: the backend's raw output. `generate` on the driver
# adds the prompt, index, stop cut, model, backend, params and seed, as it does locally.
RAW_FIELDS = ("text", "finish_reason", "prompt_tokens", "completion_tokens", "token_ids", "logprobs")


class ShardStore:
    """One JSON-lines file per finished shard: a header line (the shard's own provenance:
    key, which node, process and actor made it, when, how fast), then one line per sequence."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.jsonl"

    def read(self, key: str, shard: list[Request]) -> list[dict] | None:
        """The shard's raw generations, or None if it is not finished (or not this shard)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            header, *rows = read_jsonl(path)
        except (SynthkitError, ValueError):
            return None  # written atomically, so only a hand-edited file gets here: redo it
        if header.get("shard") != key or len(rows) != len(shard) or any(
                (r["prompt"], r["index"]) != (q.prompt, q.index) for r, q in zip(rows, shard)):
            return None
        return rows

    def write(self, key: str, made_by: dict, rows: list[dict]) -> Path:
        header = {"shard": key, "sequences": len(rows), **made_by}
        return write_jsonl([header, *rows], self.path(key))

    def headers(self) -> list[dict]:
        """Every finished shard's header: who made what, for a report."""
        out = []
        for p in sorted(self.folder.glob("*.jsonl")):
            with open(p, encoding="utf-8") as f:
                out.append(json.loads(f.readline()))
        return out


# ---------------------------------------------------------------------------------------
# The actor: one model, loaded where it runs.
# ---------------------------------------------------------------------------------------
class ShardGenerator:
    """Ray Data's callable class: `__init__` runs once in each actor process, `__call__` on
    each batch (a row per shard, up to CALL_SHARDS rows). What crosses the wire is plain
    data: the spec, the requests as JSON, the raw generations as JSON. The model itself
    never travels."""

    def __init__(self, spec: dict):
        kwargs = dict(spec["kwargs"])
        if spec["backend"] == "llama.cpp":
            kwargs.update(n_threads=spec["threads"], requantize=spec["requantize"])
        else:
            kwargs.update(device="cuda" if spec["gpu"] else "cpu")
            import torch
            torch.set_num_threads(spec["threads"])
        self.model = load_model(spec["path"], backend=spec["backend"], **kwargs)
        if self.model.fingerprint != spec["fingerprint"]:
            raise ScaleError(
                f"the actor on {socket.gethostname()} loaded weights {self.model.fingerprint}, the "
                f"driver expects {spec['fingerprint']}: install the same synthkit, backend and model "
                f"file on every node (see the README, 'Beyond one machine')")
        import ray
        self.made_by = {"host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id(),
                        "pid": os.getpid(), "backend": spec["backend"], "threads": spec["threads"],
                        "device": str(getattr(self.model, "device", "cpu"))}

    def __call__(self, batch: dict, params: dict):
        """A generator: one output row per finished shard, as soon as it is finished.
        params: the sampling settings of the pass (one `generate` call, one setting)."""
        shards = [(str(key), json.loads(requests)) for key, requests in zip(batch["shard"], batch["requests"])]
        for key, result in self.generate(shards, params):
            yield {"shard": [key], "result": [json.dumps(result)]}

    def generate(self, shards: list[tuple[str, list[dict]]], params: dict):
        """Yield (key, {"made_by", "rows"}) per shard as its last sequence ends. A shard's
        `seconds` is the time since the previous shard ended (or since the start), so the
        seconds of an actor's shards add up to its time spent generating."""
        reqs, where = [], []
        for s, (_, requests) in enumerate(shards):
            for j, r in enumerate(requests):
                reqs.append(Request(slot=len(reqs), **r))
                where.append((s, j))
        rows: list[list[dict | None]] = [[None] * len(requests) for _, requests in shards]
        left = [len(requests) for _, requests in shards]
        mark = time.perf_counter()
        for req, gen in self.model._stream(reqs, Sampling(**params)):
            s, j = where[req.slot]
            rows[s][j] = {"prompt": req.prompt, "index": req.index, **{f: getattr(gen, f) for f in RAW_FIELDS}}
            left[s] -= 1
            if left[s] == 0:
                now = time.perf_counter()
                yield shards[s][0], {"made_by": self._made_by(rows[s], now - mark), "rows": rows[s]}
                mark = now

    def _made_by(self, rows: list[dict], seconds: float) -> dict:
        tokens = sum(r["completion_tokens"] for r in rows)
        return {**self.made_by, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "seconds": round(seconds, 3), "completion_tokens": tokens,
                "tok_per_s": round(tokens / seconds, 1) if seconds > 0 else 0.0,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


# ---------------------------------------------------------------------------------------
# The model the driver holds.
# ---------------------------------------------------------------------------------------
class RayModel(Model):
    """A `Model` whose sequences are generated by actors on the connected Ray cluster.

    The driver keeps a copy of the model for what is cheap and must be the same as locally
    (tokenizer, chat template, context length, fingerprint); llama.cpp loads it in a
    fraction of a second with one sequence slot, so it costs a few MB. `shards`: the folder
    for finished shards (None: keep nothing on disk). Other keyword arguments go to
    `load_model`, on the driver and in every actor (n_ctx, n_parallel, batch_size, ...).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, backend: str = "llama.cpp",
                 actors: int | None = None, threads: int | None = None,
                 shards: str | os.PathLike | None = None, shard_size: int = SHARD_SIZE, **kwargs):
        import_ray()
        import ray
        if not ray.is_initialized():
            raise ScaleError("no Ray cluster is connected; call synthkit.scale.connect('local') "
                             "(or 'auto', or an address) first")
        _quiet_ray_data(ray)
        if shard_size < 1:
            raise ScaleError(f"shard_size must be at least 1 (got {shard_size})")
        self.actors, self.threads, self.gpu = plan(backend, actors, threads)
        self.shard_size = shard_size
        self.store = ShardStore(shards) if shards is not None else None
        driver_kwargs = dict(kwargs)
        if backend == "llama.cpp":
            driver_kwargs.update(n_parallel=1, n_threads=1)  # it only tokenizes
        else:
            driver_kwargs.update(device="cpu")
        self.local = load_model(path, backend=backend, **driver_kwargs)
        for name in ("name", "license", "path", "n_ctx", "chat_template", "bos_token", "eos_token",
                     "add_bos", "bos_id", "eos_id", "backend"):
            if hasattr(self.local, name):
                setattr(self, name, getattr(self.local, name))
        self.device = "cuda" if self.gpu else "cpu"
        if self.backend == "llama.cpp" and self.local.weights.split()[0] in ("BF16", "F16", "F32"):
            warnings.warn(
                f"{self.local.weights}: float weights sum in an order that depends on the batch, so a "
                f"few sampled texts may differ from a local run; SYNTHKIT_WEIGHT_FORMAT=q8_0 makes "
                f"every sequence independent of its batch, on Ray and locally alike", stacklevel=2)
        self._fingerprint = self._actor_fingerprint(kwargs.get("dtype"))
        self.spec = {"path": None if path is None else str(Path(path).expanduser().resolve()),
                     "backend": self.backend, "threads": self.threads, "gpu": self.gpu,
                     "requantize": getattr(self.local, "requantized", None), "kwargs": kwargs,
                     "fingerprint": self._fingerprint}
        self.shards_reused = self.shards_made = 0

    def _actor_fingerprint(self, dtype) -> str:
        """The fingerprint of the weights the actors will hold (cache keys follow it): the
        driver's own for llama.cpp; for torch, the actors' device and dtype (bf16 on a GPU
        and fp32 on a CPU give slightly different texts, so they must not share a key)."""
        if self.backend == "llama.cpp":
            return self.local.fingerprint
        from .models.torch_backend import _pick_dtype
        dtype = _pick_dtype(dtype, self.device)
        return f"torch:{file_fingerprint(self.local.path)}:{self.device}:{str(dtype).removeprefix('torch.')}"

    # the tokenizer and friends are the driver's copy
    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        return self.local.tokenize(text, add_special)

    def detokenize(self, ids) -> str:
        return self.local.detokenize(ids)

    def is_end_of_turn(self, token: int) -> bool:
        return self.local.is_end_of_turn(token)

    def prompt_ids(self, prompt: str) -> list[int]:
        return self.local.prompt_ids(prompt)

    def logits(self, prompts: list[str]):
        return self.local.logits(prompts)

    def __repr__(self) -> str:
        where = "GPU" if self.gpu else f"{self.threads} CPU"
        return f"<RayModel {self.name}: {self.actors} {self.backend} actors x {where}>"

    # --- the one part that differs from a local backend -------------------------------------
    def _stream(self, requests: list[Request], sampling: Sampling):
        """Yield (request, raw generation) as shards finish: first the shards already on
        disk, then the rest from the actors, each written to disk before it is yielded."""
        params = sampling.as_dict()
        todo: dict[str, list[Request]] = {}
        for shard in cut(requests, self.shard_size):
            key = shard_key(self._fingerprint, params, shard)
            rows = self.store.read(key, shard) if self.store is not None else None
            if rows is None:
                todo[key] = shard
                continue
            self.shards_reused += 1
            yield from _pairs(shard, rows)
        if not todo:
            return
        for key, result in self._run(todo, params):
            shard = todo.pop(key, None)
            if shard is None:
                continue  # a retried shard that came back twice: the first copy counted
            if self.store is not None:
                self.store.write(key, result["made_by"], result["rows"])
            self.shards_made += 1
            yield from _pairs(shard, result["rows"])
        if todo:  # Ray Data finished without them: never silently short
            raise ScaleError(f"{len(todo)} shard(s) did not come back from the cluster; run again "
                             f"to generate just those")

    def _run(self, todo: dict[str, list[Request]], params: dict):
        """One Ray Data pass: a row per shard, up to CALL_SHARDS shards per actor call (so each
        actor gets an even share of a short job in one call), an actor pool of models."""
        import ray
        rows = [{"shard": key,
                 "requests": json.dumps([{"prompt": r.prompt, "prompt_ids": r.prompt_ids,
                                          "seed": r.seed, "index": r.index} for r in shard])}
                for key, shard in todo.items()]
        resources = {"num_gpus": 1, "num_cpus": 1} if self.gpu else {"num_cpus": self.threads}
        actors = min(self.actors, len(rows))
        # Ray Data gathers a call's outputs into one block until the block is big (128 MB):
        # a block size of one byte sends each finished shard back the moment it is yielded.
        ctx = ray.data.DataContext.get_current()
        block_size, ctx.target_max_block_size = ctx.target_max_block_size, 1
        try:
            ds = ray.data.from_items(rows, override_num_blocks=len(rows))
            out = ds.map_batches(
                ShardGenerator, fn_constructor_kwargs={"spec": self.spec}, fn_kwargs={"params": params},
                batch_size=max(1, min(CALL_SHARDS, -(-len(rows) // actors))), batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
                **resources)
            for row in out.iter_rows():
                yield str(row["shard"]), json.loads(row["result"])
        finally:
            ctx.target_max_block_size = block_size


def _pairs(shard: list[Request], rows: list[dict]):
    for req, row in zip(shard, rows):
        yield req, Generation(prompt=req.prompt, **{f: row[f] for f in RAW_FIELDS})
