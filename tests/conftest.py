"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
BITEXT_CSV = SHARED_DATA / "bitext-customer-support" / "bitext_customer_support_6480.csv"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def bitext_csv() -> Path:
    """The public Bitext corpus beside the repository; tests skip where it is absent."""
    if not BITEXT_CSV.is_file():
        pytest.skip(f"public Bitext corpus not found at {BITEXT_CSV} (only present on project machines)")
    return BITEXT_CSV


@pytest.fixture
def tracking_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow at a fresh SQLite store under tmp_path, with its own experiment."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hybrid-dialogue-test")
    return uri
