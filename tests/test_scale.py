"""synthkit.scale: the dataset steps on a Ray cluster give the records a local run gives,
resume by shard after a kill, and survive a killed actor and a lost node.

Every comparison pins the weights to Q8_0 (SYNTHKIT_WEIGHT_FORMAT), whose rows do not
depend on the batch they share; bf16's do (see llamacpp.pinned_format). Runs are small
(short texts, shards of two sequences) so that a kill lands mid-run, and every kill waits
for a shard file to appear rather than for a fixed time.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synthkit.records import read_jsonl

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]
Q8 = {"SYNTHKIT_WEIGHT_FORMAT": "q8_0"}
SMALL = {"requantize": "q8_0", "n_ctx": 512, "n_parallel": 4}
MAGPIE = ["magpie", "--n", "8", "--no-responses", "--no-cache", "--seed", "3"]


def synthkit(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "synthkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **Q8, **(env or {})})


def first_shard(folder: Path, deadline_s: float = 300, alive=lambda: True) -> dict:
    """Wait until a finished shard appears in `folder`; its header (who made it)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and alive():
        done = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        if done:
            return json.loads(done[0].read_text().splitlines()[0])
        time.sleep(0.05)
    raise AssertionError(f"no shard appeared in {folder}")


def records(model, prompts, **sampling) -> list[dict]:
    out = model.generate(prompts, n=2, cache=False, progress=False, **sampling)
    return [g.to_dict() for g in out]


@pytest.fixture(scope="module")
def local():
    from synthkit import load_model
    return load_model(**SMALL)


@pytest.fixture(scope="module")
def prompts(local):
    from synthkit.magpie import pre_query_template
    chats = [local.apply_chat_template(q) for q in ("What is 17 + 25?", "Name a cold planet.",
                                                     "Give one word that rhymes with light.")]
    return [pre_query_template(local.chat_template, local.bos_token), *chats]


# --- the same records --------------------------------------------------------------------
def test_ray_gives_the_local_records_greedy_and_sampled(ray_cluster, local, prompts, tmp_path):
    from synthkit.scale import RayModel
    model = RayModel(actors=2, threads=1, shards=tmp_path / "s", shard_size=3, **SMALL)
    for sampling in ({"temperature": 0, "max_tokens": 12}, {"temperature": 0.9, "max_tokens": 12, "seed": 7}):
        assert records(model, prompts, **sampling) == records(local, prompts, **sampling)
    assert model.shards_made == 6 and model.shards_reused == 0  # 8 sequences in 3 shards, twice
    assert len(model.store.headers()) == 6
    again = RayModel(actors=2, threads=1, shards=tmp_path / "s", shard_size=3, **SMALL)
    sampled = {"temperature": 0.9, "max_tokens": 12, "seed": 7}
    assert records(again, prompts, **sampled) == records(local, prompts, **sampled)
    assert again.shards_made == 0 and again.shards_reused == 3  # read back, none generated


def test_one_call_streams_its_shards_and_splits_its_time(local, prompts):
    """An actor decodes a call's shards as one stream (no batch drains between shards) and
    hands each shard back as its last sequence ends; the shards' seconds add up to the call's
    time, so the per-actor rate from the headers is the rate while generating."""
    import time
    from synthkit.models import Sampling
    from synthkit.models.base import Request
    from synthkit.scale import ShardGenerator, cut

    actor = ShardGenerator.__new__(ShardGenerator)   # the actor's methods, without a cluster
    actor.model, actor.made_by = local, {"pid": os.getpid()}
    sampling = Sampling(temperature=0.9, max_tokens=12, seed=5)
    requests = [Request(prompt=p, prompt_ids=local.prompt_ids(p), seed=100 + i, index=i, slot=i)
                for i, p in enumerate(prompts * 3)]
    shards = [(f"s{k}", [{"prompt": r.prompt, "prompt_ids": r.prompt_ids, "seed": r.seed, "index": r.index}
                         for r in shard]) for k, shard in enumerate(cut(requests, 5))]
    start = time.perf_counter()
    out = list(actor.generate(shards, sampling.as_dict()))
    took = time.perf_counter() - start
    assert sorted(k for k, _ in out) == [k for k, _ in shards]       # each shard once
    assert abs(sum(r["made_by"]["seconds"] for _, r in out) - took) < 0.05
    alone = {(r.prompt, r.index): g.text for r, g in local._stream(requests, sampling)}
    for _, result in out:
        assert all(row["text"] == alone[row["prompt"], row["index"]] for row in result["rows"])


def test_magpie_with_ray_local_writes_the_same_file(tmp_path):
    """The command as a user runs it: `--ray local` starts its own cluster, default actors."""
    here = synthkit(*MAGPIE, "--n", "20", "--out", str(tmp_path / "here.jsonl"))
    assert here.returncode == 0, here.stderr[-2000:]
    there = synthkit(*MAGPIE, "--n", "20", "--out", str(tmp_path / "ray.jsonl"), "--ray", "local",
                     "--shard-size", "8")
    assert there.returncode == 0, there.stderr[-2000:]
    assert "llama.cpp actor(s) x 1 CPU(s)" in there.stdout  # the default: one-thread actors
    assert read_jsonl(tmp_path / "ray.jsonl") == read_jsonl(tmp_path / "here.jsonl")
    assert len(read_jsonl(tmp_path / "ray.jsonl")) == 20
    assert read_jsonl(tmp_path / "ray.rejected.jsonl") == read_jsonl(tmp_path / "here.rejected.jsonl")


# --- resume by shard ---------------------------------------------------------------------
def test_a_killed_run_resumes_to_the_same_file(ray_cluster, tmp_path):
    out = tmp_path / "resumed.jsonl"
    args = [*MAGPIE, "--out", str(out), "--ray", ray_cluster, "--actors", "1", "--shard-size", "2"]
    run = subprocess.Popen([sys.executable, "-m", "synthkit.cli", *args], cwd=ROOT,
                           env={**os.environ, **Q8}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first_shard(Path(f"{out}.shards"), alive=lambda: run.poll() is None)
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        _, err = run.communicate()
    assert run.returncode == -signal.SIGKILL, err[-2000:]
    assert not out.exists()  # killed before the end: no final file, only shards
    rerun = synthkit(*args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    reused = int(rerun.stdout.split(" reused from")[0].rsplit(",", 1)[1].split()[0])
    assert reused >= 1
    whole = synthkit(*MAGPIE, "--out", str(tmp_path / "whole.jsonl"))
    assert read_jsonl(out) == read_jsonl(tmp_path / "whole.jsonl")


# --- faults ------------------------------------------------------------------------------
def test_an_actor_killed_mid_run_loses_nothing(ray_cluster, local, prompts, tmp_path):
    """SIGKILL the process of the actor that made the first shard: Ray restarts it and
    sends its shard again; every sequence comes back once, as a local run makes it."""
    from synthkit.scale import RayModel
    model = RayModel(actors=2, threads=1, shards=tmp_path / "s", shard_size=2, **SMALL)
    killed = {}

    def kill_first_maker():
        header = first_shard(tmp_path / "s", alive=lambda: not killed.get("stop"))
        os.kill(header["pid"], signal.SIGKILL)
        killed["pid"] = header["pid"]

    watcher = threading.Thread(target=kill_first_maker, daemon=True)
    watcher.start()
    sampled = {"temperature": 0.9, "max_tokens": 24, "seed": 11}
    try:
        out = model.generate(prompts * 2, n=2, cache=False, progress=False, **sampled)
    finally:
        killed["stop"] = True
        watcher.join(timeout=30)
    assert "pid" in killed
    ref = local.generate(prompts * 2, n=2, cache=False, progress=False, **sampled)
    assert [g.to_dict() for g in out] == [g.to_dict() for g in ref]
    assert len({(g.prompt, g.index) for g in out}) == len(out) == 16  # none lost, none twice
    headers = model.store.headers()
    assert len(headers) == 8 == model.shards_made
    # the shard the killed actor was making can only be made again by its restarted self,
    # a new process: two actors at the start, three pids in the end
    assert len({h["pid"] for h in headers}) >= 3, headers


NODE_LOSS = r"""
import json, subprocess, sys, time
from pathlib import Path
from ray.cluster_utils import Cluster

out, args = sys.argv[1], sys.argv[2:]
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
worker = cluster.add_node(num_cpus=1)
driver = subprocess.Popen([sys.executable, "-m", "synthkit.cli", *args, "--ray", cluster.address,
                           "--out", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
shards, end, removed = Path(out + ".shards"), time.monotonic() + 300, None
while driver.poll() is None and time.monotonic() < end and removed is None:
    made = [json.loads(p.read_text().splitlines()[0])["node"] for p in sorted(shards.glob("*.jsonl"))]
    if worker.node_id in made or len(made) >= 2:  # the worker's actor is at work: take its node away
        cluster.remove_node(worker)
        removed = worker.node_id
    time.sleep(0.05)
try:
    stdout, stderr = driver.communicate(timeout=400)
finally:
    driver.kill()
    cluster.shutdown()
print(json.dumps({"rc": driver.returncode, "removed": removed, "stdout": stdout, "stderr": stderr[-3000:]}))
"""


def test_a_lost_node_is_survived(tmp_path):
    """Two nodes of one CPU each, an actor on each; the worker node goes away after the first
    shard: its actor's shard is made again on the node that is left, and the file is whole."""
    out = tmp_path / "nodes.jsonl"
    args = [*MAGPIE, "--actors", "2", "--shard-size", "2"]
    run = subprocess.run([sys.executable, "-c", NODE_LOSS, str(out), *args], capture_output=True,
                         text=True, timeout=900, cwd=ROOT, env={**os.environ, **Q8})
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["removed"], "the worker node was never removed"
    assert result["rc"] == 0, result["stderr"]
    assert "8 of 8 records" in result["stdout"]
    whole = synthkit(*MAGPIE, "--out", str(tmp_path / "whole.jsonl"))
    assert read_jsonl(out) == read_jsonl(tmp_path / "whole.jsonl")


# --- the benchmark ------------------------------------------------------------------------
def test_bench_ray_prints_the_three_rows_and_their_share(ray_cluster, tmp_path):
    """Two rounds, so the Ray layouts run in both orders and the medians are printed (on the
    tests' cluster, which the bench joins for each Ray row)."""
    out = synthkit("bench", "--ray", ray_cluster, "--n", "8", "--max-tokens", "8", "--rounds", "2",
                   "--json", str(tmp_path / "b.json"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "b.json").read_text())
    assert len(result["rows"]) == 3 and result["rows"][0]["how"].startswith("local batched")
    ray_rows = result["rows"][1:]
    assert {r["how"] for r in ray_rows} == {f"ray 1 actor x {result['cores']} threads",
                                            f"ray {result['cores']} actors x 1 thread"}
    for row in ray_rows:
        assert len(result["runs"][row["how"]]) == 2
        assert row["texts_differing_from_local"] == 0          # Q8_0: the same texts as local
        low, high = row["share_range"]
        assert low <= row["share_of_local"] <= high
    summary = out.stdout.split("median of 2 rounds")[1]
    assert len(re.findall(r"= \d+% of local$", summary, flags=re.M)) == 2
    order = [line.split()[0:4] for line in out.stdout.splitlines() if line.strip().startswith("ray ")]
    assert order[0] != order[2], "the second round runs the Ray layouts in the other order"


# --- the default plan ---------------------------------------------------------------------
def test_the_plan_fits_the_cluster_and_says_when_it_cannot():
    from synthkit.scale import ACTOR_MEMORY, ScaleError, plan
    laptop = {"cpus": 2, "gpus": 0, "node_cpus": [2], "node_memory": [16 * 2**30]}
    assert plan("llama.cpp", shape=laptop) == (2, 1, False)           # one-thread actors
    assert plan("llama.cpp", actors=1, shape=laptop) == (1, 2, False)  # given actors share the cores
    assert plan("llama.cpp", threads=2, shape=laptop) == (1, 2, False)
    tight = {"cpus": 16, "gpus": 0, "node_cpus": [8, 8], "node_memory": [3 * ACTOR_MEMORY, 20 * ACTOR_MEMORY]}
    assert plan("llama.cpp", shape=tight) == (3 + 8, 1, False)         # memory caps the first node
    assert plan("torch", shape=tight) == (2, 8, False)                 # torch on CPUs: one per node
    gpus = {**tight, "gpus": 4}
    assert plan("torch", shape=gpus) == (4, 1, True)
    with pytest.raises(ScaleError, match="needs a node with 3 CPUs, and the largest here has 2"):
        plan("llama.cpp", 1, 3, shape=laptop)             # no node could hold it: Ray would wait forever
    with pytest.warns(UserWarning, match="need 3 CPUs and the cluster has 2"):
        assert plan("llama.cpp", 3, shape=laptop) == (3, 1, False)   # Ray Data runs the ones that fit


# --- errors that need one line -----------------------------------------------------------
def test_without_ray_installed_the_error_names_the_extra(monkeypatch):
    from synthkit.scale import ScaleError, import_ray
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ScaleError) as e:
        import_ray()
    assert 'pip install "synthkit[ray]"' in str(e.value) and "\n" not in str(e.value)


def test_bad_addresses_fail_fast_in_one_line(tmp_path):
    for address, says in (("127.0.0.1:9", "cannot reach a Ray cluster at '127.0.0.1:9'"),
                          ("ray://127.0.0.1:9", "cannot reach a Ray cluster at 'ray://127.0.0.1:9'"),
                          ("nowhere", "is not an address")):
        started = time.monotonic()
        out = synthkit("magpie", "--n", "1", "--out", str(tmp_path / "x.jsonl"), "--ray", address, timeout=120)
        assert out.returncode == 2 and says in out.stderr, out.stderr[-2000:]
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert time.monotonic() - started < 60


def test_without_ray_the_commands_do_not_import_it():
    code = ("import sys; from synthkit.cli import build_parser; import synthkit.scale; "
            "build_parser().parse_args(['magpie', '--n', '1', '--out', 'x']); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr
    no_ray = synthkit("magpie", "--n", "1", "--out", "x.jsonl", "--actors", "2")
    assert no_ray.returncode == 2 and "--actors applies to a Ray run" in no_ray.stderr
