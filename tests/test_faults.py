"""Faults a user meets at the command line: malformed records, a model of another tokenizer, no tracking server.

Each test runs the real command and checks the message the user reads, the
exit status, and that no output was published.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_data import write_tiny_processed
from helpers_registry import fit_tokenizer, write_tiny_model

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.data.dataset import load_tokenizer
from hybrid_dialogue.data.synth import CorpusConfig, synthesize_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]
PARAMS = str(REPO_ROOT / "params.yaml")
MALFORMED_LINES = ('{"id": "broken", "turns": [', '{"id": "bot", "turns": [{"role": "bot", "text": "hi"}]}')


def closed_port_uri() -> str:
    """Return an http URI on 127.0.0.1 where nothing listens once the probe socket is closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_preprocess_cli_names_quarantined_count(tmp_path: Path) -> None:
    corpus = tmp_path / "raw" / "dialogues.jsonl"
    synthesize_corpus(CorpusConfig(n_dialogues=200, seed=3), corpus)
    with corpus.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(MALFORMED_LINES) + "\n")
    quarantine = tmp_path / "quarantine" / "preprocess.jsonl"
    arguments = [
        "preprocess", "--params", PARAMS, "--raw-dir", str(tmp_path / "raw"),
        "--output-dir", str(tmp_path / "processed"), "--metrics", str(tmp_path / "preprocess.json"),
        "--reports-dir", str(tmp_path / "reports"), "--quarantine", str(quarantine), "--no-progress",
        "--set", "vocab_size=200", "--set", "max_len=16",
    ]  # fmt: skip

    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 0, result.output
    assert f"Quarantined records: 2 (listed in {quarantine})" in result.output
    entries = [json.loads(line) for line in quarantine.read_text(encoding="utf-8").splitlines()]
    assert [(entry["line"], entry["reason"]) for entry in entries] == [(201, "invalid_json"), (202, "unknown_role")]
    metrics = json.loads((tmp_path / "preprocess.json").read_text(encoding="utf-8"))
    assert metrics["records"]["read"] == 202
    assert metrics["records"]["quarantined"] == 2


def test_make_import_failure_keeps_raw_corpus(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO_ROOT / "Makefile", repo / "Makefile")
    shutil.copy(REPO_ROOT / "params.yaml", repo / "params.yaml")  # preprocess.max_quarantine_share: 0.05
    raw = repo / "data" / "raw" / "dialogues.jsonl"
    raw.parent.mkdir(parents=True)
    raw.write_text("previous corpus\n", encoding="utf-8")
    valid = {"id": "a1", "turns": [{"role": "customer", "text": "Where is my order?"},
                                   {"role": "agent", "text": "It ships today."}]}  # fmt: skip
    source = tmp_path / "mostly_malformed.jsonl"
    source.write_text(json.dumps(valid) + "\n" + "\n".join(MALFORMED_LINES) + "\n", encoding="utf-8")
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "PATH": str(venv / "bin") + os.pathsep + os.environ.get("PATH", "")}

    # `-o` keeps make from reinstalling the venv.
    command = ["make", "--no-print-directory", "-o", str(venv / ".installed"), f"VENV={venv}",
               "import-data", f"DATA={source}", "FORMAT=jsonl"]  # fmt: skip
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode != 0, result.stdout
    assert "quarantined 2 of 3 records" in result.stderr
    assert "data/raw.import/dialogues.jsonl.quarantine" in result.stderr
    assert raw.read_text(encoding="utf-8") == "previous corpus\n"
    assert len((repo / "data" / "raw.import" / "dialogues.jsonl.quarantine").read_text().splitlines()) == 2
    assert not (repo / "data" / "raw.import" / "dialogues.jsonl").exists()


def test_evaluate_cli_rejects_other_tokenizer(tmp_path: Path, tracking_store: str) -> None:
    processed = write_tiny_processed(tmp_path / "processed")
    model = write_tiny_model(tmp_path / "model.keras", fit_tokenizer())
    metrics = tmp_path / "evaluate.json"
    arguments = ["evaluate", "--params", PARAMS, "--model", str(model), "--processed-dir", str(processed),
                 "--metrics", str(metrics), "--report-dir", str(tmp_path / "report")]  # fmt: skip

    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 1, result.output
    assert f"tokenizer mismatch: {model} was built for tokenizer fingerprint {fit_tokenizer().fingerprint}" in (
        result.output
    )
    assert f"the given tokenizer has fingerprint {load_tokenizer(processed).fingerprint}" in result.output
    assert "Use the tokenizer.json the model was trained with" in result.output
    assert "Traceback" not in result.output
    assert not metrics.exists()


def test_training_cli_names_unreachable_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    processed = write_tiny_processed(tmp_path / "processed")
    uri = closed_port_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    output = tmp_path / "models" / "vae.keras"
    arguments = ["vae-pretrain", "--params", PARAMS, "--preset", "tiny", "--processed-dir", str(processed),
                 "--output", str(output), "--metrics-dir", str(tmp_path / "metrics"),
                 "--checkpoint-dir", str(tmp_path / "checkpoints")]  # fmt: skip

    result = CliRunner().invoke(cli, arguments)

    assert result.exit_code == 1, result.output
    assert f"MLflow tracking server {uri} is unreachable" in result.output
    assert "Traceback" not in result.output
    assert not output.exists()
    assert not (tmp_path / "metrics" / "vae_pretrain.json").exists()
