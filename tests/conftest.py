"""Shared test setup: offline, and nothing written to the user's home."""
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_tmp = tempfile.mkdtemp(prefix="synthkit-tests-")
os.environ.setdefault("SYNTHKIT_CACHE_DIR", os.path.join(_tmp, "cache"))
os.environ.setdefault("SYNTHKIT_HOME", os.path.join(_tmp, "home"))
os.environ.setdefault("SYNTHKIT_PROFILE", "ci")
# The teacher's converted copy and the measured weight format depend only on the model file
# and the machine: keep them between runs (pytest's own cache folder, ignored by git) rather
# than converting and measuring again in every run's fresh cache.
os.environ.setdefault("SYNTHKIT_MODEL_CACHE", os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), ".pytest_cache", "synthkit-models"))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def llama_model():
    """The embedded teacher on llama.cpp, loaded once for the whole run."""
    from synthkit import load_model
    return load_model(n_parallel=8, n_ctx=512)


@pytest.fixture(scope="session")
def torch_teacher():
    """The embedded teacher in PyTorch (about 15 s to load), loaded once for the whole run.
    Shared: a test that trains it must put its weights back (see test_dpo's `policy`)."""
    from synthkit import load_model
    return load_model(backend="torch", device="cpu")


# --- tiers -------------------------------------------------------------------------------
# `pytest -m "not slow and not model"` is the developer's loop (a few minutes); the whole
# suite is what CI runs. A test is `model` when it loads a real model or trains one: it
# asks for a model fixture, or its body calls a loader, a trainer or a command that does.
# Marking by what the test does (not by a list of names) keeps a new test in the right
# tier without anyone remembering to mark it.
import inspect  # noqa: E402
import re  # noqa: E402

_MODEL_CALL = re.compile(
    r"\b(load_model|to_llamacpp|export_gguf|sft|dpo|train_student|pretrain|run_chain|run_notebook|"
    r"bootstrap|make_textbooks|subprocess\.run|subprocess\.Popen)\s*\(|\bmain\(\s*\[")
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _calls_a_model(fn, module) -> bool:
    """The function's body, or a helper of its test module that it calls, loads or trains."""
    source = _source(fn)
    if _MODEL_CALL.search(source):
        return True
    helpers = (getattr(module, name, None) for name in set(_CALLED.findall(source)))
    return any(inspect.isfunction(h) and h is not fn and _MODEL_CALL.search(_source(h)) for h in helpers)


def _loads_a_model(item) -> bool:
    module = getattr(item, "module", None)
    fixtures = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    for defs in fixtures.values():
        for d in defs:
            if d.func is not None and d.baseid is not None and _calls_a_model(d.func, module):
                return True
    return _calls_a_model(getattr(item, "function", None), module)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" not in item.keywords and _loads_a_model(item):
            item.add_marker(pytest.mark.model)


# --- Ray ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for every test marked `ray`, started on first use and
    stopped, with its session folder, at the end. Yields its address, so a command run in a
    subprocess can join it with --ray ADDRESS."""
    ray = pytest.importorskip("ray", reason='the Ray tests need the extra: pip install -e ".[test]"')
    import shutil
    temp = os.path.join(_tmp, "ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", _temp_dir=temp)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
