"""`hybrid-dialogue kfp run-local`: the whole pipeline through kfp.local on the `tiny` preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_dialogue.config import load_params

CLI = str(Path(sys.executable).parent / "hybrid-dialogue")
STAGE_TASKS = {
    "preprocess",
    "vae-pretrain",
    "gan-pretrain",
    "hybrid-finetune",
    "bias-mitigation",
    "shap-analysis",
    "evaluate",
    "register",
}
TRAINING_TASKS = ("vae-pretrain", "gan-pretrain", "hybrid-finetune", "bias-mitigation")
EXPERIMENT = "kfp-local-test"


def executor_output(task_directory: Path) -> dict:
    return json.loads((task_directory / "executor_output.json").read_text(encoding="utf-8"))


def logged_metrics(task_directory: Path) -> dict[str, float]:
    [artifact] = executor_output(task_directory)["artifacts"]["metrics"]["artifacts"]
    return artifact["metadata"]


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, subprocess.CompletedProcess]:
    """Run the pipeline once on a 300-dialogue synthetic corpus, for the tests below to read its outputs."""
    from hybrid_dialogue.data.synth import CorpusConfig, synthesize_corpus

    workspace = tmp_path_factory.mktemp("kfp-local")
    synthesize_corpus(CorpusConfig(n_dialogues=300, seed=5), workspace / "raw" / "dialogues.jsonl")
    tracking_uri = f"sqlite:///{workspace / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "HYBRID_DIALOGUE_LOG_LEVEL": "INFO"}
    env.pop("HYBRID_DIALOGUE_EXECUTION_ID", None)

    command = [
        CLI, "kfp", "run-local",
        "--preset", "tiny",
        "--raw-data", str(workspace / "raw"),
        "--pipeline-root", str(workspace / "outputs"),
        "--experiment", EXPERIMENT,
        # Small audit and explanation samples keep the run to minutes on 2 cores.
        "--set", "evaluate.max_test_pairs=40",
        "--set", "bias_mitigation.audit.max_probe_messages=40",
        "--set", "bias_mitigation.audit.max_test_pairs=40",
        "--set", "shap_analysis.n_examples=3",
        "--set", "shap_analysis.max_evals=40",
    ]
    # Run from a subdirectory: the command finds the repository above it.
    repo_root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, cwd=repo_root / "tests", env=env, capture_output=True, text=True, timeout=1800)
    return workspace, tracking_uri, result


@pytest.fixture(scope="module")
def run_directory(local_run: tuple[Path, str, subprocess.CompletedProcess]) -> Path:
    workspace, _, result = local_run
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    [directory] = [path for path in (workspace / "outputs").iterdir() if not path.name.startswith(".")]
    return directory


@pytest.mark.slow
def test_run_local_runs_every_stage(run_directory: Path, local_run: tuple) -> None:
    task_names = {path.name for path in run_directory.iterdir() if path.is_dir()}

    assert STAGE_TASKS <= task_names
    assert f"Task outputs are in {run_directory}" in local_run[2].stdout


@pytest.mark.slow
def test_run_local_preprocess_uses_preset_length(run_directory: Path, repo_root: Path) -> None:
    tiny_max_len = load_params(repo_root / "params.yaml")["model"]["presets"]["tiny"]["max_len"]
    manifest = json.loads((run_directory / "preprocess" / "processed" / "manifest.json").read_text(encoding="utf-8"))

    assert manifest["max_len"] == tiny_max_len
    assert manifest["rows"]["train"] > 0
    assert (run_directory / "preprocess" / "data_docs").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    assert (run_directory / "preprocess" / "data_docs_site" / "index.html").is_file()
    assert logged_metrics(run_directory / "preprocess")


@pytest.mark.slow
@pytest.mark.parametrize("task", TRAINING_TASKS)
def test_run_local_training_outputs(run_directory: Path, task: str) -> None:
    model_file = run_directory / task / "model" / "model.keras"

    assert model_file.is_file()
    assert model_file.stat().st_size > 0
    assert logged_metrics(run_directory / task), f"{task} logged no metrics"


@pytest.mark.slow
def test_run_local_evaluate_outputs(run_directory: Path) -> None:
    evaluate = run_directory / "evaluate"
    evaluation = json.loads((evaluate / "evaluation").read_text(encoding="utf-8"))
    metrics = logged_metrics(evaluate)

    assert metrics["model/bleu"] == pytest.approx(evaluation["model"]["bleu"])
    assert "retrieval/bleu" in metrics
    assert "<table" in (evaluate / "report_html").read_text(encoding="utf-8")
    assert (evaluate / "report_markdown").read_text(encoding="utf-8").strip()


@pytest.mark.slow
def test_run_local_bias_and_shap_outputs(run_directory: Path) -> None:
    bias = run_directory / "bias-mitigation"
    shap = run_directory / "shap-analysis"

    assert "before" in json.loads((bias / "bias").read_text(encoding="utf-8"))
    assert "<html" in (bias / "report_html").read_text(encoding="utf-8").lower()
    assert "<html" in (shap / "report_html").read_text(encoding="utf-8").lower()
    assert (shap / "report_site" / "shap_values.json").is_file()
    assert list((shap / "report_site").glob("*.png"))
    assert logged_metrics(shap)


@pytest.mark.slow
def test_run_local_registers_challenger(run_directory: Path, local_run: tuple) -> None:
    import mlflow

    registration = json.loads((run_directory / "register" / "registration").read_text(encoding="utf-8"))
    model_uri = executor_output(run_directory / "register")["parameterValues"]["Output"]

    assert registration["name"] == "hybrid-dialogue"
    assert registration["version"] == "1"
    assert "challenger" in registration["aliases"]
    assert model_uri == "models:/hybrid-dialogue/1"

    client = mlflow.MlflowClient(tracking_uri=local_run[1])
    version = client.get_model_version("hybrid-dialogue", "1")
    assert "metric.bleu" in version.tags


@pytest.mark.slow
def test_run_local_groups_mlflow_runs(local_run: tuple) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=local_run[1])
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    stages = {run.data.tags.get("hybrid_dialogue.stage") for run in runs}
    executions = {run.data.tags.get("hybrid_dialogue.execution") for run in runs}

    # The preprocess stage logs no MLflow run, but every later stage does.
    assert {
        "vae_pretrain", "gan_pretrain", "hybrid_finetune", "bias_mitigation", "shap_analysis", "evaluate", "register"
    } <= stages
    assert "pipeline" in stages
    assert len(executions) == 1, f"stage runs are split over executions {executions}"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--raw-data", "absent-corpus"), "raw data not found at"),
        (("--preset", "huge"), "--preset='huge' is invalid: expected one of cpu, seed, tiny"),
        (("--set", "vae_pretrain"), "--set 'vae_pretrain' is invalid: expected NAME=VALUE"),
    ],
)
def test_run_local_invalid_input_fails_clearly(tmp_path: Path, arguments: tuple[str, ...], message: str) -> None:
    repo_root = Path(__file__).resolve().parents[1]
    command = [CLI, "kfp", "run-local", "--pipeline-root", str(tmp_path / "outputs"), *arguments]

    result = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=300)

    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "outputs").exists()
