"""Shared fixtures: a small synthetic BUSI-layout folder, the real data when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from synthetic import make_busi

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REAL_BUSI = Path(os.environ.get("BUSI_DATA", Path(__file__).resolve().parents[2] / "shared"
                                / "data" / "BUSI" / "Dataset_BUSI_with_GT"))


@pytest.fixture
def busi_dir(tmp_path) -> Path:
    return make_busi(tmp_path / "Dataset_BUSI_with_GT")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own cache and results folders; BUSI_DATA is not inherited."""
    monkeypatch.setenv("BUSI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BUSI_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("BUSI_DATA", raising=False)


@pytest.fixture(scope="session")
def real_busi() -> Path:
    if not (REAL_BUSI / "benign").is_dir():
        pytest.skip(f"real BUSI data not found at {REAL_BUSI}")
    return REAL_BUSI


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory) -> Path:
    """One cache folder for every test that decodes the real data (decode once)."""
    return tmp_path_factory.mktemp("real_cache")
