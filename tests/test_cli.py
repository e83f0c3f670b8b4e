"""The `hybrid-dialogue` entry point: what it prints to stderr, and TensorFlow's C++ log level."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_dialogue.cli.main import TF_CPP_MIN_LOG_LEVEL, main

CLI = str(Path(sys.executable).parent / "hybrid-dialogue")


def environment_without_log_level() -> dict[str, str]:
    # conftest.py sets TF_CPP_MIN_LOG_LEVEL for the test session; a user's shell usually has none.
    return {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}


def test_help_prints_nothing_to_stderr() -> None:
    result = subprocess.run([CLI, "--help"], env=environment_without_log_level(), capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0
    assert "Usage: hybrid-dialogue" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(("preset", "expected"), [(None, TF_CPP_MIN_LOG_LEVEL), ("0", "0")])
def test_main_sets_log_level_unless_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], preset: str | None, expected: str
) -> None:
    if preset is None:
        monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", preset)
    monkeypatch.setattr(sys, "argv", ["hybrid-dialogue", "--version"])

    main()

    assert capsys.readouterr().out.startswith("hybrid-dialogue, version ")
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == expected


def test_tensorflow_banner_silenced(tmp_path: Path) -> None:
    # `generate` imports TensorFlow (through the model loader) before it finds that the model directory is missing.
    command = [CLI, "generate", "--model-dir", str(tmp_path / "missing"), "hello"]
    result = subprocess.run(command, env=environment_without_log_level(), capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "model directory not found" in result.stderr
    # INFO lines logged after TensorFlow applies the level, such as the CPU-feature banner.
    assert "cpu_feature_guard" not in result.stderr
    assert "This TensorFlow binary is optimized" not in result.stderr
