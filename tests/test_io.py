"""Atomic writes publish complete files with the usual permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hybrid_dialogue.io import atomic_directory, atomic_path, write_json


def test_write_json_mode_follows_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "metrics.json", {"a": 1})
        with atomic_directory(tmp_path / "processed") as directory:
            (directory / "part").write_text("x")
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "processed").stat().st_mode) == 0o755


def test_atomic_path_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_text("old")

    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")

    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["model.keras"]
