"""Registration on a real SQLite MLflow store: tags, aliases, promotion, a fresh-process load, `generate`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner

from hybrid_dialogue import tracking
from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.generation import ResponseGenerator
from hybrid_dialogue.registry import CHALLENGER_ALIAS, CHAMPION_ALIAS, MODEL_NAME
from hybrid_dialogue.registry.config import RegisterConfig
from hybrid_dialogue.registry.register import register_model

from helpers_registry import copy_bundle_as_processed, write_evaluate_metrics, write_tiny_bundle

MESSAGES = ["Where is my order 12345?", "Please send the invoice to jane@example.com"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory):
    """A working directory with a tiny model, processed data, params.yaml and its own SQLite store.

    Module-scoped because logging and registering a model takes seconds. The
    tests below read the store in the order they are defined.
    """
    root = tmp_path_factory.mktemp("registry")
    bundle = write_tiny_bundle(root / "bundle")
    model, processed = copy_bundle_as_processed(bundle, root)
    (root / "params.yaml").write_text("register:\n  gates:\n    min_bleu_vs_retrieval: 0.25\n", encoding="utf-8")

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        patch.setenv("MLFLOW_EXPERIMENT_NAME", "registry-test")
        patch.setenv("HYBRID_DIALOGUE_EXECUTION_ID", "execution-1")
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        yield {"root": root, "bundle": bundle, "model": model, "processed": processed}


@pytest.fixture(scope="module")
def first_version(workspace):
    """Register a first version whose metrics pass the baseline gate, after an `evaluate` stage run."""
    with tracking.stage_run("evaluate") as run:
        evaluate_run_id = run.info.run_id
    # A later failed attempt of the same stage, which the version's run.evaluate tag must skip.
    with pytest.raises(RuntimeError), tracking.stage_run("evaluate"):
        raise RuntimeError("evaluation failed")
    metrics = write_evaluate_metrics(workspace["root"] / "metrics" / "evaluate.json", bleu=20.0, retrieval_bleu=40.0)
    result = register_model(
        workspace["model"], workspace["processed"], [metrics, workspace["root"] / "metrics" / "bias.json"],
        RegisterConfig(), params_path="params.yaml", output_path=workspace["root"] / "metrics" / "register.json",
    )
    return {"result": result, "evaluate_run_id": evaluate_run_id}


def test_first_version_aliases(first_version):
    result = first_version["result"]
    assert result.version == "1"
    assert result.aliases == [CHALLENGER_ALIAS, CHAMPION_ALIAS]
    assert result.promotion.promoted


def test_first_version_tags(workspace, first_version):
    version = mlflow.MlflowClient().get_model_version(MODEL_NAME, "1")
    tags = version.tags
    assert tags["metric.bleu"] == "20.0"
    assert tags["metric.retrieval_bleu"] == "40.0"
    assert "metric.fairness_gap" not in tags
    assert tags["run.evaluate"] == first_version["evaluate_run_id"]
    assert tags["run.register"] == first_version["result"].run_id
    assert tags[tracking.EXECUTION_TAG] == "execution-1"
    for key in ("data_version", "git_commit", "params_hash"):
        assert tags[key], key
    assert version.run_id == first_version["result"].run_id


def test_register_json_written(workspace, first_version):
    written = json.loads((workspace["root"] / "metrics" / "register.json").read_text(encoding="utf-8"))
    assert written["name"] == MODEL_NAME
    assert written["version"] == "1"
    assert written["aliases"] == [CHALLENGER_ALIAS, CHAMPION_ALIAS]
    assert written["promotion"]["gates_passed"] is True


@pytest.mark.slow
def test_pyfunc_round_trip_fresh_process(workspace, first_version):
    # A new interpreter with no project state, pointed at the store only by
    # environment variables, as `mlflow models serve` is.
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model('models:/{MODEL_NAME}@{CHAMPION_ALIAS}')\n"
        f"frame = model.predict(pd.DataFrame({{'customer_message': {MESSAGES!r}}}))\n"
        "print(json.dumps(frame.to_dict(orient='records')))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=workspace["root"]
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = json.loads(completed.stdout.strip().splitlines()[-1])
    expected = ResponseGenerator.from_directory(workspace["bundle"]).respond(MESSAGES)
    assert [row["response"] for row in rows] == [response.text for response in expected]
    assert [row["quality_score"] for row in rows] == pytest.approx([response.quality for response in expected])


def test_generate_cli_from_champion(workspace, first_version):
    result = CliRunner().invoke(cli, ["generate", MESSAGES[0]])
    assert result.exit_code == 0, result.output
    expected = ResponseGenerator.from_directory(workspace["bundle"]).respond(MESSAGES[:1])[0]
    assert expected.text in result.output
    assert f"quality score: {expected.quality:.3f}" in result.output


def test_generate_cli_unknown_alias(workspace, first_version):
    result = CliRunner().invoke(cli, ["generate", "--model-uri", f"models:/{MODEL_NAME}@nonexistent", "hi"])
    assert result.exit_code == 1
    assert "cannot load models:/hybrid-dialogue@nonexistent" in result.output


def test_worse_version_stays_challenger(workspace, first_version):
    metrics = write_evaluate_metrics(workspace["root"] / "metrics" / "evaluate.json", bleu=5.0, retrieval_bleu=40.0)
    result = CliRunner().invoke(cli, [
        "register", "--model", str(workspace["model"]), "--processed-dir", str(workspace["processed"]),
        "--metrics", str(metrics), "--output", "metrics/register.json",
    ])
    assert result.exit_code == 0, result.output
    assert "Registered hybrid-dialogue version 2 (aliases: challenger)" in result.output

    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version) == "1"
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHALLENGER_ALIAS).version) == "2"
    written = json.loads((workspace["root"] / "metrics" / "register.json").read_text(encoding="utf-8"))
    assert written["promotion"]["promoted"] is False


def test_register_unreachable_server(workspace, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = CliRunner().invoke(cli, [
        "register", "--model", str(workspace["model"]), "--processed-dir", str(workspace["processed"]),
        "--output", "metrics/unreachable.json",
    ])
    assert result.exit_code == 1
    assert f"MLflow tracking server {uri} is unreachable" in result.output
    assert not (workspace["root"] / "metrics" / "unreachable.json").exists()


def test_register_missing_model(workspace):
    result = CliRunner().invoke(cli, [
        "register", "--model", "models/none.keras", "--processed-dir", str(workspace["processed"]),
    ])
    assert result.exit_code == 1
    assert "models/none.keras" in result.output
    assert "Run `dvc repro`" in result.output


def test_failed_alias_deletes_new_version(workspace, first_version, monkeypatch):
    # Fault injection on one client call, against the real store: the alias
    # step fails after the version was created, as when the server goes away.
    def fail_alias(*args, **kwargs):
        raise mlflow.exceptions.MlflowException("injected failure while setting the alias")

    client = mlflow.MlflowClient()
    before = {str(version.version) for version in client.search_model_versions(f"name='{MODEL_NAME}'")}
    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", fail_alias)

    with pytest.raises(tracking.TrackingError, match="No model version was kept") as raised:
        register_model(workspace["model"], workspace["processed"], [], RegisterConfig(), params_path="params.yaml")
    assert "injected failure while setting the alias" in str(raised.value)
    after = {str(version.version) for version in client.search_model_versions(f"name='{MODEL_NAME}'")}
    assert after == before
