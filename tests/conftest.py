"""Test session setup: offline, CPU only, deterministic, and isolated output folders."""
import os

for _var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_var] = "1"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "") if os.environ.get("DGTRS_TEST_CUDA") != "1" else None

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tmp_outputs(tmp_path, monkeypatch):
    """Point artifacts/, results/ and .cache/ at a temporary folder for one test."""
    for var, sub in (("DGTRS_ARTIFACTS", "artifacts"), ("DGTRS_RESULTS", "results"), ("DGTRS_CACHE", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path
