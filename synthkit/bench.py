"""`synthkit bench`: what batching, the weight format and core sharing buy, measured here.

The popular way to drive llama.cpp from Python is a loop of `create_completion` calls,
one prompt at a time: every step reads all the weights from memory to produce a single
token. Batched decoding reads them once per step for the whole batch, and a weight
format with fast kernels on this CPU (see `llamacpp.best_format`) does the rest. This
benchmark runs the same Magpie prompts, lengths and sampling settings every way and
prints tokens/s and the ratios.

`--contended` adds what a student's laptop looks like: generation beside one CPU-bound
process, and two synthkit processes generating at once. It starts and stops those
competitors itself and prints each case as a ratio to the idle figure of the same run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .errors import SynthkitError
from .magpie import pre_query_template
from .models import Sampling, available_backends, embedded_model_path, load_model

SETTINGS = dict(temperature=0.8, top_p=0.95, top_k=50, seed=0)


def _loop_llama_cpp(path: str, prompt: str, n: int, s: Sampling,
                    threads: int | None = None) -> tuple[int, float]:
    """One prompt at a time through llama-cpp-python's high-level API (its default
    n_threads is half the cores; `threads` overrides it)."""
    import llama_cpp

    from .models.llamacpp import amx_kernels
    default = llama_cpp.llama_cpp.llama_model_default_params
    if amx_kernels(llama_cpp):  # Llama() has no use_extra_bufts= (see amx_kernels)
        def plain_kernels():
            params = default()
            params.use_extra_bufts = False
            return params
        llama_cpp.llama_cpp.llama_model_default_params = plain_kernels
    try:
        llm = llama_cpp.Llama(str(path), n_ctx=2048, verbose=False, n_threads=threads)
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = default
    llm.create_completion(prompt, max_tokens=4)  # warm-up
    tokens, t0 = 0, time.perf_counter()
    for i in range(n):
        r = llm.create_completion(prompt, max_tokens=s.max_tokens, temperature=s.temperature,
                                  top_p=s.top_p, top_k=s.top_k, min_p=s.min_p, seed=i)
        tokens += r["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - t0


def _warm_up(model, prompt: str, s: Sampling) -> None:
    model.generate(prompt, n=2, sampling=s.replace(max_tokens=4, seed=s.seed + 1),
                   cache=False, progress=False)


def _batched(model, prompt: str, n: int, s: Sampling, warm: bool = True) -> tuple[int, float]:
    if warm:
        _warm_up(model, prompt, s)
    out = model.generate(prompt, n=n, sampling=s, cache=False, progress=False)
    return out.stats.completion_tokens, out.stats.seconds


def run_bench(n: int = 32, max_tokens: int = 64, backends=("llama.cpp", "torch"),
              json_out: str | None = None, contended: bool = False) -> dict:
    s = Sampling(max_tokens=max_tokens, **SETTINGS)
    rows: list[dict] = []
    ok = available_backends()

    def record(backend, how, weights, tokens, seconds):
        rows.append({"backend": backend, "mode": how, "weights": weights, "tokens": tokens,
                     "seconds": round(seconds, 3), "tok_per_s": round(tokens / seconds, 1)})
        r = rows[-1]
        print(f"  {backend:10s} {how:24s} {weights:46s} {tokens:5d} tok {seconds:7.2f} s "
              f"{r['tok_per_s']:8.1f} tok/s", flush=True)

    print(f"{n} Magpie prompts x {max_tokens} new tokens, temperature {s.temperature}, "
          f"top_p {s.top_p}, top_k {s.top_k}")
    result: dict = {"n": n, "max_tokens": max_tokens, "rows": rows}
    shipped = embedded_model_path()
    if "llama.cpp" in backends and ok.get("llama.cpp") == "ok":
        from .models.llamacpp import best_format, default_threads
        # every core pinned on both sides, so a busy moment elsewhere cannot tilt a ratio;
        # requantize="auto" (the default): a copy in the format fastest on this CPU
        cores = default_threads()
        model = load_model(n_threads=cores)
        import llama_cpp
        from .models.llamacpp import format_choice
        chosen = best_format(llama_cpp)
        result["weight_format"] = chosen
        measured = (format_choice(llama_cpp) or {}).get("tok_per_s")
        why = (f"measured once here: {', '.join(f'{k} {v:.0f} tok/s' for k, v in measured.items())}"
               if measured else "no AVX512-BF16: integer kernels" if chosen == "q8_0" else "AVX512-BF16 kernels")
        print(f"weight format chosen for this CPU: {chosen} ({why})")
        prompt = pre_query_template(model.chat_template, model.bos_token)
        record("llama.cpp", "loop create_completion", "shipped Q4_1", *_loop_llama_cpp(shipped, prompt, n, s))
        record("llama.cpp", f"loop, n_threads={cores}", "shipped Q4_1",
               *_loop_llama_cpp(shipped, prompt, n, s, threads=cores))
        record("llama.cpp", "batched (as shipped)", "shipped Q4_1",
               *_batched(load_model(requantize=None, n_threads=cores), prompt, n, s))
        other = "q8_0" if chosen != "q8_0" else "bf16"
        alt = load_model(requantize=other, n_threads=cores)
        record("llama.cpp", "batched", alt.weights, *_batched(alt, prompt, n, s))
        del alt
        record("llama.cpp", "batched (synthkit)", model.weights, *_batched(model, prompt, n, s))
        del model
        if contended:
            result["contended"] = _contended(prompt, n, s)
    if "torch" in backends and ok.get("torch") == "ok":
        model = load_model(backend="torch", batch_size=n)
        prompt = pre_query_template(model.chat_template, model.bos_token)
        weights = f"GGUF->{str(model.dtype).removeprefix('torch.')} {model.device}"
        # the first decoder (fixed chunks, one generator per row) beside today's
        # (continuous batching on a static cache), same model, same run
        model.decoder = "chunks-legacy"
        record("torch", f"batch_size={n}, chunk loop", weights, *_batched(model, prompt, n, s))
        model.decoder = "auto"
        record("torch", f"batch_size={n}", weights, *_batched(model, prompt, n, s))
        model.set_generation_precision("bf16")
        record("torch", f"batch_size={n}", weights + ", bf16 autocast", *_batched(model, prompt, n, s))
        model.set_generation_precision("auto")
        model.batch_size = 1
        record("torch", "batch_size=1", weights, *_batched(model, prompt, n, s))
        model.batch_size = n
        if contended:
            result["contended_torch"] = _contended_torch(model, prompt, n, s)
        del model
    result["ratios"] = _ratios(rows)
    for name, value in result["ratios"].items():
        print(f"  ratio {name}: {value:.2f}x")
    if json_out:
        with open(json_out, "w") as f:
            json.dump(result, f, indent=2)
    return result


def _ratios(rows: list[dict]) -> dict[str, float]:
    def rate(mode, weights=None):
        for r in rows:
            if r["mode"] == mode and (weights is None or r["weights"] == weights):
                return r["tok_per_s"]
        return None

    pairs = {
        "llama.cpp batched (synthkit) / loop on the shipped file":
            (rate("batched (synthkit)"), rate("loop create_completion", "shipped Q4_1")),
        "llama.cpp batched (synthkit) / loop with every core":
            (rate("batched (synthkit)"), next((r["tok_per_s"] for r in rows if r["mode"].startswith("loop, n_threads")), None)),
        "llama.cpp batched, both on the shipped Q4_1 / loop":
            (rate("batched (as shipped)"), rate("loop create_completion", "shipped Q4_1")),
        "llama.cpp batched: chosen format / the other copy":
            (rate("batched (synthkit)"), rate("batched")),
        "torch batched / batch_size=1":
            (rate(next((r["mode"] for r in rows if r["backend"] == "torch" and "," not in r["mode"]
                        and r["mode"] != "batch_size=1"), "")), rate("batch_size=1")),
        "torch static-cache batching / the chunk loop":
            (next((r["tok_per_s"] for r in rows if r["backend"] == "torch" and r["mode"].startswith("batch_size=")
                   and "," not in r["mode"] and r["mode"] != "batch_size=1"), None),
             next((r["tok_per_s"] for r in rows if r["mode"].endswith("chunk loop")), None)),
    }
    return {k: a / b for k, (a, b) in pairs.items() if a and b}


# --- contention ----------------------------------------------------------------------
def _contended_torch(model, prompt: str, n: int, s: Sampling) -> dict:
    """The torch backend alone and beside one CPU-bound process (its threads follow the
    free cores, see TorchModel._core_share)."""
    from .models.cores import default_threads, others_busy
    print("contended (torch): the same batched run alone and beside a CPU-bound loop", flush=True)
    with others_busy() as background:
        tokens, seconds = _batched(model, prompt, n, s)
    idle = tokens / seconds
    print(f"  torch alone                             {tokens:5d} tok {seconds:7.2f} s {idle:8.1f} tok/s "
          f"(other processes kept {background.cores:.1f} cores busy meanwhile)", flush=True)
    tokens, seconds = _beside_busy_loop(model, prompt, n, s)
    beside = tokens / seconds
    print(f"  torch beside one CPU-bound process      {tokens:5d} tok {seconds:7.2f} s "
          f"{beside:8.1f} tok/s = {beside / idle:.0%} of alone", flush=True)
    # the same with every thread pinned (no sharing): what the threads' choice is worth
    saved = os.environ.get("SYNTHKIT_THREADS")
    os.environ["SYNTHKIT_THREADS"] = str(default_threads())
    try:
        tokens, seconds = _beside_busy_loop(model, prompt, n, s)
    finally:
        if saved is None:
            os.environ.pop("SYNTHKIT_THREADS", None)
        else:
            os.environ["SYNTHKIT_THREADS"] = saved
    pinned = tokens / seconds
    print(f"  the same, threads pinned (no sharing)   {tokens:5d} tok {seconds:7.2f} s "
          f"{pinned:8.1f} tok/s = {pinned / idle:.0%} of alone", flush=True)
    return {"idle_tok_per_s": round(idle, 3), "beside_busy_tok_per_s": round(beside, 3),
            "beside_busy_ratio": round(beside / idle, 3), "pinned_beside_busy_tok_per_s": round(pinned, 3),
            "pinned_beside_busy_ratio": round(pinned / idle, 3),
            "background_cores_during_idle": round(background.cores, 2)}


BUSY_LOOP = "while True: pass"


def _beside_busy_loop(model, prompt: str, n: int, s: Sampling) -> tuple[int, float]:
    """The batched run (already warm) while another process spins on one core."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        time.sleep(0.5)  # let it take its core
        return _batched(model, prompt, n, s, warm=False)
    finally:
        busy.kill()
        busy.wait()
WORKER = ("import sys; from synthkit.bench import _worker; "
          "_worker(int(sys.argv[1]), int(sys.argv[2]))")


def _worker(n: int, max_tokens: int) -> None:
    """A second synthkit process: load, warm up, say 'ready', wait for 'go', generate once."""
    s = Sampling(max_tokens=max_tokens, **SETTINGS)
    model = load_model()
    prompt = pre_query_template(model.chat_template, model.bos_token)
    _warm_up(model, prompt, s.replace(seed=s.seed + 7))
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    out = model.generate(prompt, n=n, sampling=s.replace(seed=s.seed + 7), cache=False, progress=False)
    print(json.dumps({"tokens": out.stats.completion_tokens, "start": start, "end": time.time()}), flush=True)


def _contended(prompt: str, n: int, s: Sampling) -> dict:
    """Idle, beside a busy loop, and beside a second synthkit process: tok/s and ratios.
    The contended runs use the library as it comes (threads that share the cores)."""
    print("contended: the same batched run alone, beside a CPU-bound loop, and beside a second "
          "synthkit process generating the same", flush=True)
    # the idle figure with every core pinned: on a quiet machine that is what the default
    # does anyway, and it stays the fair yardstick if something else is running meanwhile
    from .models.cores import others_busy
    from .models.llamacpp import default_threads
    pinned = load_model(n_threads=default_threads())
    with others_busy() as background:
        tokens, seconds = _batched(pinned, prompt, n, s)
    del pinned
    idle = tokens / seconds
    model = load_model()
    _warm_up(model, prompt, s)
    print(f"  alone                                   {tokens:5d} tok {seconds:7.2f} s {idle:8.1f} tok/s "
          f"(other processes kept {background.cores:.1f} cores busy meanwhile)")

    tokens, seconds = _beside_busy_loop(model, prompt, n, s)
    beside_busy = tokens / seconds
    print(f"  beside one CPU-bound process            {tokens:5d} tok {seconds:7.2f} s "
          f"{beside_busy:8.1f} tok/s = {beside_busy / idle:.0%} of alone", flush=True)

    other = subprocess.Popen([sys.executable, "-c", WORKER, str(n), str(s.max_tokens)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if other.stdout.readline().strip() != "ready":
            raise RuntimeError("the second synthkit process did not start; run it alone to see why: "
                               f"{sys.executable} -c '{WORKER}' {n} {s.max_tokens}")
        other.stdin.write("go\n")
        other.stdin.flush()
        start = time.time()
        out = model.generate(prompt, n=n, sampling=s, cache=False, progress=False)
        end = time.time()
        theirs = json.loads(other.stdout.readline())
    finally:
        other.kill()
        other.wait()
    wall = max(end, theirs["end"]) - min(start, theirs["start"])
    both = (out.stats.completion_tokens + theirs["tokens"]) / wall
    mine = out.stats.tokens_per_second
    print(f"  two synthkit processes at once          this one {mine:.1f} tok/s, the other "
          f"{theirs['tokens'] / (theirs['end'] - theirs['start']):.1f} tok/s; together {both:.1f} tok/s "
          f"= {both / idle:.0%} of one alone", flush=True)
    return {"idle_tok_per_s": round(idle, 3), "beside_busy_tok_per_s": round(beside_busy, 3),
            "two_processes_tok_per_s": round(both, 3),
            "beside_busy_ratio": round(beside_busy / idle, 3), "two_processes_ratio": round(both / idle, 3),
            "background_cores_during_idle": round(background.cores, 2)}


# --- on a Ray cluster ----------------------------------------------------------------
def run_ray_bench(n: int = 256, max_tokens: int = 64, address: str = "local",
                  json_out: str | None = None, rounds: int = 3) -> dict:
    """The same Magpie batch locally and through `synthkit.scale` on Ray, tokens/s each.

    Every row is timed end to end, the way a user waits for it: from loading the model (for
    Ray: the driver's copy, the actor processes and a model in each) to the last record.
    What exists before a job is sent to a cluster is made untimed: the cluster itself, and
    the helper actors Ray Data starts once per cluster, on its first job (a stats actor and
    an autoscaling coordinator, both detached: about 4 CPU-seconds of Python start-up that
    would otherwise fall on whichever row ran first). The local row runs with no cluster up.

    One run of a row varies by several points from the next, so the rows run in `rounds`
    rounds, the two Ray layouts in alternating order; a Ray row's share of local is taken
    within its round (the same machine, minutes apart) and the median share is reported,
    with the lowest and highest. On one machine the same cores do the same decoding, so what
    Ray costs is the machinery (worker processes, a model load in each); one-thread actors
    can still finish first on a long job, as they decode faster than one process whose
    threads wait for each other. The per-actor rate while generating (from the shards'
    headers) is what a cluster multiplies.
    """
    from .models.llamacpp import default_threads

    if rounds < 1:
        raise SynthkitError(f"--rounds must be at least 1 (got {rounds})")
    s = Sampling(max_tokens=max_tokens, **SETTINGS)
    cores = default_threads()
    warm = load_model(n_threads=cores)  # converts the weights if needed, and warms the page cache
    prompt = pre_query_template(warm.chat_template, warm.bos_token)
    print(f"{n} Magpie prompts x {max_tokens} new tokens, temperature {s.temperature}, top_p {s.top_p}, "
          f"top_k {s.top_k}; weights {warm.weights}; {cores} cores; each row timed from the model load "
          f"to the last record; {rounds} round{'s' * (rounds > 1)}", flush=True)
    del warm
    layouts = [(1, cores), (cores, 1)]
    runs: dict[str, list[dict]] = {}
    for r in range(rounds):
        local, base = _local_row(prompt, n, s, cores)
        runs.setdefault(base["how"], []).append(base)
        _print_row(base)
        for actors, threads in (layouts if r % 2 == 0 else layouts[::-1]):
            row = _ray_row(address, prompt, n, s, actors, threads, local)
            row["share_of_local"] = round(row["tok_per_s"] / base["tok_per_s"], 3)
            runs.setdefault(row["how"], []).append(row)
            _print_row(row)
    summary = [_median_row(how, rows) for how, rows in runs.items()]
    if rounds > 1:
        print(f"median of {rounds} rounds [lowest-highest]:")
        for row in summary:
            _print_row(row, spread=True)
    result = {"n": n, "max_tokens": max_tokens, "cores": cores, "rounds": rounds,
              "rows": summary, "runs": runs}
    if json_out:
        with open(json_out, "w") as f:
            json.dump(result, f, indent=2)
    return result


def _local_row(prompt: str, n: int, s: Sampling, cores: int):
    """The local batched run, timed from its model load; (its generations, its row)."""
    start = time.perf_counter()
    model = load_model(n_threads=cores)
    out = model.generate(prompt, n=n, sampling=s, cache=False, progress=False)
    seconds = time.perf_counter() - start
    return out, {"how": f"local batched, {cores} threads", "tokens": out.stats.completion_tokens,
                 "seconds": round(seconds, 2), "tok_per_s": round(out.stats.completion_tokens / seconds, 1),
                 "generating_tok_per_s": round(out.stats.tokens_per_second, 1)}


def _ray_row(address: str, prompt: str, n: int, s: Sampling, actors: int, threads: int, local) -> dict:
    """One Ray layout on a cluster started (and Ray Data's helpers warmed) untimed."""
    import tempfile
    import warnings

    from . import scale
    started = scale.connect(address)
    try:
        _start_ray_data_helpers()
        with tempfile.TemporaryDirectory(prefix="synthkit-bench-shards-") as folder:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the float-weights note: the row counts differing texts
                start = time.perf_counter()
                remote = scale.RayModel(actors=actors, threads=threads, shards=folder)
                out = remote.generate(prompt, n=n, sampling=s, cache=False, progress=False)
                seconds = time.perf_counter() - start
            headers = remote.store.headers()
    finally:
        scale.shutdown(started)
    busy = {}  # per actor process: tokens and seconds spent generating
    for h in headers:
        t, sec = busy.get(h["pid"], (0, 0.0))
        busy[h["pid"]] = (t + h["completion_tokens"], sec + h["seconds"])
    return {"how": f"ray {actors} actor{'s' * (actors > 1)} x {threads} thread{'s' * (threads > 1)}",
            "tokens": out.stats.completion_tokens, "seconds": round(seconds, 2),
            "tok_per_s": round(out.stats.completion_tokens / seconds, 1),
            "per_actor_tok_per_s": round(sum(t / sec for t, sec in busy.values()) / len(busy), 1),
            "peak_rss_mb_per_actor": max(h["peak_rss_mb"] for h in headers), "shards": len(headers),
            "texts_differing_from_local": sum(a.text != b.text for a, b in zip(out, local)),
            "sequences": len(out)}


_WARMED: set[str] = set()   # clusters (GCS addresses) whose Ray Data helpers this process started


def _start_ray_data_helpers() -> None:
    """Run a one-row Ray Data job on an actor pool, so Ray Data's once-per-cluster helper
    actors exist before the timed job, as they do on any cluster that has run one."""
    import ray
    cluster = ray.get_runtime_context().gcs_address
    if cluster in _WARMED:
        return

    class Same:
        def __call__(self, batch):
            return batch
    ray.data.range(1).map_batches(Same, compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0).take_all()
    time.sleep(3)  # the job returns while the helpers still finish starting (a second or two of CPU)
    _WARMED.add(cluster)


def _median_row(how: str, rows: list[dict]) -> dict:
    """The median of each number over the rounds, with the range of tok/s and share."""
    import statistics
    out = {"how": how}
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and key != "shards":
            out[key] = round(statistics.median(r[key] for r in rows), 3)
        elif key != "how":
            out[key] = value
    out["tok_per_s_range"] = [min(r["tok_per_s"] for r in rows), max(r["tok_per_s"] for r in rows)]
    if "share_of_local" in rows[0]:
        out["share_range"] = [min(r["share_of_local"] for r in rows), max(r["share_of_local"] for r in rows)]
    return out


def _print_row(row: dict, spread: bool = False) -> None:
    line = f"  {row['how']:34s} {row['tokens']:6.0f} tok {row['seconds']:7.2f} s {row['tok_per_s']:8.1f} tok/s"
    if spread:
        low, high = row["tok_per_s_range"]
        line += f" [{low:.0f}-{high:.0f}]"
    if "share_of_local" in row:
        if spread:
            low, high = row["share_range"]
            line += f" [share {low:.0%}-{high:.0%}]"
        print(f"{line} = {row['share_of_local']:.0%} of local", flush=True)
        print(f"    per actor while generating {row['per_actor_tok_per_s']:.1f} tok/s; peak memory per actor "
              f"{row['peak_rss_mb_per_actor']:.0f} MB; {row['shards']} shards; texts differing from the "
              f"local run: {row['texts_differing_from_local']:.0f} of {row['sequences']:.0f}", flush=True)
    else:
        print(f"{line} (while generating {row['generating_tok_per_s']:.1f} tok/s)", flush=True)
