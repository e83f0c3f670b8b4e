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


VENV = Path(sys.executable).parent.parent


def make_repo(tmp_path: Path) -> Path:
    """Return a directory with the project's Makefile and params.yaml and the raw corpus 'previous corpus'."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO_ROOT / "Makefile", repo / "Makefile")
    shutil.copy(REPO_ROOT / "params.yaml", repo / "params.yaml")  # preprocess.max_quarantine_share: 0.05
    raw = repo / "data" / "raw" / "dialogues.jsonl"
    raw.parent.mkdir(parents=True)
    raw.write_text("previous corpus\n", encoding="utf-8")
    return repo


def run_make(repo: Path, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run make in `repo` with this test environment's venv; `-o` keeps make from reinstalling it."""
    env = {**os.environ, **(env or {}), "PATH": str(VENV / "bin") + os.pathsep + os.environ.get("PATH", "")}
    command = ["make", "--no-print-directory", "-o", str(VENV / ".installed"), f"VENV={VENV}", *arguments]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def test_make_import_failure_keeps_raw_corpus(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    valid = {"id": "a1", "turns": [{"role": "customer", "text": "Where is my order?"},
                                   {"role": "agent", "text": "It ships today."}]}  # fmt: skip
    source = tmp_path / "mostly_malformed.jsonl"
    source.write_text(json.dumps(valid) + "\n" + "\n".join(MALFORMED_LINES) + "\n", encoding="utf-8")
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()

    result = run_make(repo, "import-data", f"DATA={source}", "FORMAT=jsonl", env={"TMPDIR": str(system_tmp)})

    assert result.returncode != 0, result.stdout
    assert "quarantined 2 of 3 records" in result.stderr
    assert (repo / "data" / "raw" / "dialogues.jsonl").read_text(encoding="utf-8") == "previous corpus\n"
    assert not (repo / "data" / "raw.import").exists()
    [rejected] = system_tmp.glob("hybrid-dialogue-rejected-*/dialogues.jsonl.quarantine")
    assert str(rejected) in result.stderr.replace("\n", "")
    assert len(rejected.read_text(encoding="utf-8").splitlines()) == 2


def test_make_import_passes_import_args(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    source = tmp_path / "chats.csv"
    rows = ["question,answer", "Where is my order?,It ships today.", "Can I pay by card?,Yes."]
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    # A DVC repository whose data.dvc still records the default corpus, as in a fresh clone.
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache")}
    subprocess.run([str(VENV / "bin" / "dvc"), "init", "--no-scm", "-q"], cwd=repo, env=env, check=True, timeout=120)
    shutil.copy(REPO_ROOT / "data.dvc", repo / "data.dvc")
    tracked_before = (repo / "data.dvc").read_text(encoding="utf-8")

    result = run_make(repo, "import-data", f"DATA={source}", "FORMAT=csv",
                      "IMPORT_ARGS=--customer-column question --agent-column answer", env=env)  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    lines = (repo / "data" / "raw" / "dialogues.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["turns"][0]["text"] for line in lines] == ["Where is my order?", "Can I pay by card?"]
    assert (repo / "data" / "raw" / "dialogues.jsonl.import.json").is_file()
    tracked_after = (repo / "data.dvc").read_text(encoding="utf-8")
    assert tracked_after != tracked_before
    assert "nfiles: 2" in tracked_after  # the dialogues and the import manifest


def test_make_run_passes_import_args(tmp_path: Path) -> None:
    # `make -n` prints the commands; lines that call $(MAKE) still run, so the import-data call shows too.
    # The sub-make does not inherit `-o`, so it needs the venv's prerequisites to exist; with -n it only
    # prints the install commands.
    repo = make_repo(tmp_path)
    (repo / "requirements").mkdir()
    (repo / "requirements" / "main.lock").touch()
    (repo / "pyproject.toml").touch()
    result = run_make(repo, "-n", "run", "DATA=chats.csv", "FORMAT=csv",
                      "IMPORT_ARGS=--customer-column 'Customer text'")  # fmt: skip

    assert result.returncode == 0, result.stderr
    [import_line] = [line for line in result.stdout.splitlines() if " corpus import " in line]
    assert import_line.endswith("--output data/raw.import/dialogues.jsonl --customer-column 'Customer text'")
    assert "--format csv \"chats.csv\"" in import_line


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
