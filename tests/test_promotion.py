"""Promotion gates on a real SQLite MLflow registry: pass, fail, force with a reason, first version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner

from hybrid_dialogue.cli.main import cli
from hybrid_dialogue.registry import CHALLENGER_ALIAS, CHAMPION_ALIAS, MODEL_NAME
from hybrid_dialogue.registry.config import GateConfig
from hybrid_dialogue.registry.metrics import metrics_to_tags, read_headline_metrics
from hybrid_dialogue.registry.promote import (
    FORCED_REASON_TAG,
    PromotionError,
    evaluate_gates,
    format_table,
    promote,
)

GATES = GateConfig(bleu_tolerance=1.0, relevance_tolerance=0.02, min_bleu_vs_retrieval=0.25, max_fairness_gap=0.1)
GOOD = {"bleu": 20.0, "relevance": 0.8, "retrieval_bleu": 30.0}


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema created, to copy instead of migrating one per test."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_registered_models()
    return path


@pytest.fixture
def registry(
    tracking_store: str, empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> mlflow.MlflowClient:
    # Run in tmp_path, so that anything MLflow writes relative to the
    # working directory stays out of the repository.
    monkeypatch.chdir(tmp_path)
    shutil.copy(empty_store, tracking_store.removeprefix("sqlite:///"))
    mlflow.set_tracking_uri(tracking_store)
    client = mlflow.MlflowClient()
    client.create_registered_model(MODEL_NAME)
    return client


def add_version(client: mlflow.MlflowClient, tmp_path: Path, metrics: dict[str, float]) -> str:
    """Create a version whose tags carry `metrics`, as registration does, and make it the challenger."""
    source = tmp_path / "model-source"
    source.mkdir(exist_ok=True)
    version = client.create_model_version(MODEL_NAME, source=str(source), tags=metrics_to_tags(metrics)).version
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER_ALIAS, version)
    return str(version)


def champion_version(client: mlflow.MlflowClient) -> str | None:
    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version)
    except mlflow.exceptions.MlflowException:
        return None


def gate(results: list, name: str):
    return next(result for result in results if result.name == name)


def test_gates_first_version_checks_baselines_only():
    results = evaluate_gates(GOOD, None, GATES)
    assert all(result.passed for result in results)
    assert gate(results, "bleu_vs_champion").note == "no champion yet"
    assert gate(results, "bleu_vs_retrieval").reference == pytest.approx(7.5)


def test_gates_tolerance_edges():
    champion = {"bleu": 20.0, "relevance": 0.8, "retrieval_bleu": 30.0}
    within = evaluate_gates({**GOOD, "bleu": 19.0, "relevance": 0.78}, champion, GATES)
    beyond = evaluate_gates({**GOOD, "bleu": 18.9, "relevance": 0.77}, champion, GATES)
    assert gate(within, "bleu_vs_champion").passed
    assert gate(within, "relevance_vs_champion").passed
    assert not gate(beyond, "bleu_vs_champion").passed
    assert not gate(beyond, "relevance_vs_champion").passed


def test_gates_missing_metrics():
    no_intents = {"bleu": 20.0, "retrieval_bleu": 30.0}
    results = evaluate_gates(no_intents, no_intents, GATES)
    assert gate(results, "relevance_vs_champion").passed
    assert gate(results, "fairness_gap").note.startswith("no gap measured")

    no_evaluation = evaluate_gates({}, None, GATES)
    assert not gate(no_evaluation, "bleu_vs_retrieval").passed

    lost_relevance = evaluate_gates(no_intents, GOOD, GATES)
    assert not gate(lost_relevance, "relevance_vs_champion").passed


def test_gates_fairness_gap_applies_when_measured():
    assert gate(evaluate_gates({**GOOD, "fairness_gap": 0.1}, None, GATES), "fairness_gap").passed
    assert not gate(evaluate_gates({**GOOD, "fairness_gap": 0.11}, None, GATES), "fairness_gap").passed


def test_promote_first_version_becomes_champion(registry, tmp_path):
    version = add_version(registry, tmp_path, GOOD)
    result = promote(GATES)
    assert result.promoted
    assert result.previous_champion is None
    assert champion_version(registry) == version


def test_promote_first_version_fails_baseline_gate(registry, tmp_path):
    add_version(registry, tmp_path, {**GOOD, "bleu": 5.0})
    result = promote(GATES)
    assert not result.promoted
    assert not gate(result.gates, "bleu_vs_retrieval").passed
    assert champion_version(registry) is None


def test_promote_better_challenger_replaces_champion(registry, tmp_path):
    first = add_version(registry, tmp_path, GOOD)
    promote(GATES)
    second = add_version(registry, tmp_path, {**GOOD, "bleu": 22.0})
    result = promote(GATES)
    assert result.promoted
    assert result.previous_champion == first
    assert champion_version(registry) == second


def test_promote_worse_challenger_keeps_champion(registry, tmp_path):
    first = add_version(registry, tmp_path, GOOD)
    promote(GATES)
    second = add_version(registry, tmp_path, {**GOOD, "bleu": 15.0})
    result = promote(GATES)
    assert not result.promoted
    assert result.version == second
    assert champion_version(registry) == first
    assert registry.get_model_version(MODEL_NAME, second).tags["promotion.result"] == "failed"


def test_promote_force_records_reason(registry, tmp_path):
    add_version(registry, tmp_path, GOOD)
    promote(GATES)
    second = add_version(registry, tmp_path, {**GOOD, "bleu": 15.0})
    result = promote(GATES, force=True, reason="hotfix for redaction bug")
    assert result.promoted
    assert result.forced
    assert champion_version(registry) == second
    tags = registry.get_model_version(MODEL_NAME, second).tags
    assert tags[FORCED_REASON_TAG] == "hotfix for redaction bug"
    assert tags["promotion.result"] == "forced"


def test_promote_force_without_reason_rejected(registry, tmp_path):
    add_version(registry, tmp_path, GOOD)
    with pytest.raises(PromotionError, match="--force needs --reason"):
        promote(GATES, force=True, reason="  ")


def test_promote_unknown_version_rejected(registry, tmp_path):
    add_version(registry, tmp_path, GOOD)
    with pytest.raises(PromotionError, match="version 7 .* not found"):
        promote(GATES, version=7)


def test_promote_current_champion_is_noop(registry, tmp_path):
    version = add_version(registry, tmp_path, GOOD)
    promote(GATES)
    result = promote(GATES, version=version)
    assert result.gates == []
    assert "already the champion" in format_table(result)


def test_promote_cli_table_and_exit_status(registry, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("register:\n  gates:\n    min_bleu_vs_retrieval: 0.5\n", encoding="utf-8")
    add_version(registry, tmp_path, GOOD)
    runner = CliRunner()

    passed = runner.invoke(cli, ["promote", "--params", str(params)])
    assert passed.exit_code == 0, passed.output
    assert "bleu_vs_retrieval" in passed.output
    assert "threshold 15" in passed.output

    worse = add_version(registry, tmp_path, {**GOOD, "bleu": 10.0})
    failed = runner.invoke(cli, ["promote", "--params", str(params)])
    assert failed.exit_code == 1
    assert "FAIL" in failed.output
    assert f"version {worse} was not promoted" in failed.output

    forced = runner.invoke(cli, ["promote", "--params", str(params), "--force", "--reason", "manual review"])
    assert forced.exit_code == 0, forced.output
    assert "FORCED" in forced.output
    assert champion_version(registry) == worse


def test_promote_cli_force_needs_reason(registry, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("register: {}\n", encoding="utf-8")
    add_version(registry, tmp_path, GOOD)
    runner = CliRunner()

    missing = runner.invoke(cli, ["promote", "--force", "--params", str(params)])
    assert missing.exit_code == 2
    assert "Missing option '--reason'" in missing.output
    assert "Traceback" not in missing.output

    blank = runner.invoke(cli, ["promote", "--force", "--reason", "  ", "--params", str(params)])
    assert blank.exit_code == 2
    assert "Invalid value for '--reason': the reason is blank" in blank.output
    assert champion_version(registry) is None


def test_promote_cli_usage_error_skips_heavy_imports():
    # A fresh interpreter, because this test session has imported MLflow already.
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from hybrid_dialogue.cli.main import cli\n"
        "result = CliRunner().invoke(cli, ['promote', '--force'])\n"
        "print(result.exit_code, sorted(name for name in ('mlflow', 'tensorflow', 'keras') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert completed.stdout.strip() == "2 []", completed.stderr


def test_headline_metrics_from_files(tmp_path):
    evaluate = tmp_path / "evaluate.json"
    evaluate.write_text(
        '{"model": {"bleu": 12.5, "relevance": NaN}, "retrieval": {"bleu": 40.0}, "constant": {"bleu": 2.0}}',
        encoding="utf-8",
    )
    metrics = read_headline_metrics([evaluate, tmp_path / "bias.json"])
    assert metrics == {"bleu": 12.5, "retrieval_bleu": 40.0, "constant_bleu": 2.0}


def test_headline_metrics_fairness_gap(tmp_path):
    bias = tmp_path / "bias.json"
    bias.write_text('{"gap_before": 0.3, "gap_after": 0.12, "after": {"gap": 0.12}}', encoding="utf-8")
    assert read_headline_metrics([bias]) == {"fairness_gap": 0.12}
