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

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def llama_model():
    """The embedded teacher on llama.cpp, loaded once for the whole run."""
    from synthkit import load_model
    return load_model(n_parallel=8, n_ctx=512)
