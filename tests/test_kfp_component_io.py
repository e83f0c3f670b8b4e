"""Helpers of the Kubeflow component bodies, and the command-line parsing of pipeline arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import HTML, Metrics
from pydantic import Field

from hybrid_dialogue.config import ConfigError, StageConfig
from hybrid_dialogue.kubeflow import KubeflowError, component_io
from hybrid_dialogue.kubeflow.parameters import override_params, params_to_json, typed_arguments


class ExampleConfig(StageConfig):
    batch_size: int = Field(default=8, ge=1, le=64)


def test_stage_config_reads_own_section() -> None:
    params_json = json.dumps({"example": {"batch_size": 16}, "other": {"batch_size": 999}})

    config = component_io.stage_config(ExampleConfig, "example", params_json)

    assert config.batch_size == 16


def test_stage_config_missing_section_uses_defaults() -> None:
    assert component_io.stage_config(ExampleConfig, "example", "{}").batch_size == 8


def test_stage_config_out_of_range_names_key() -> None:
    params_json = json.dumps({"example": {"batch_size": 100}})

    with pytest.raises(ConfigError, match=r"params_json: invalid 'example' section:\n  example.batch_size = 100"):
        component_io.stage_config(ExampleConfig, "example", params_json)


@pytest.mark.parametrize(
    ("params_json", "message"),
    [
        ("{not json", "params_json is not valid JSON"),
        ("[1, 2]", "params_json must be a JSON object of params.yaml sections, got list"),
        ('{"example": 3}', "section 'example' must be an object, got 3"),
    ],
)
def test_invalid_params_json_rejected(params_json: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        component_io.stage_config(ExampleConfig, "example", params_json)


def test_model_config_takes_preset_parameter(repo_root: Path) -> None:
    from hybrid_dialogue.config import load_params

    params_json = params_to_json(load_params(repo_root / "params.yaml"))

    config = component_io.model_config(params_json, "tiny")

    assert config.preset == "tiny"
    assert config.sizes == config.presets.tiny


def test_model_config_unknown_preset_rejected(repo_root: Path) -> None:
    from hybrid_dialogue.config import load_params

    params_json = params_to_json(load_params(repo_root / "params.yaml"))

    with pytest.raises(ConfigError, match="model.preset = 'huge' is invalid"):
        component_io.model_config(params_json, "huge")


def test_flatten_numbers_keeps_finite_numbers() -> None:
    payload = {
        "model": {"bleu": 12.5, "pairs": 40, "name": "hybrid"},
        "retrieval": {"bleu": float("nan")},
        "passed": True,
        "curve": [1, 2],
    }

    assert component_io.flatten_numbers(payload) == {"model/bleu": 12.5, "model/pairs": 40.0}


def test_log_metrics_file_fills_metrics_artifact(tmp_path: Path) -> None:
    metrics_path = tmp_path / "evaluate.json"
    metrics_path.write_text(json.dumps({"model": {"bleu": 3.25}, "pairs": {"scored": 7}}), encoding="utf-8")
    metrics = Metrics(name="metrics", uri=str(tmp_path / "metrics"))

    logged = component_io.log_metrics_file(metrics, metrics_path)

    assert logged == {"model/bleu": 3.25, "pairs/scored": 7.0}
    assert metrics.metadata == {"model/bleu": 3.25, "pairs/scored": 7.0}


def test_publish_file_copies_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text("<html>report</html>", encoding="utf-8")
    artifact = HTML(name="report", uri=str(tmp_path / "out" / "report_html"))

    component_io.publish_file(artifact, report)

    assert Path(artifact.path).read_text(encoding="utf-8") == "<html>report</html>"


def test_publish_missing_report_fails(tmp_path: Path) -> None:
    artifact = HTML(name="report", uri=str(tmp_path / "report_html"))

    with pytest.raises(FileNotFoundError, match="was not written by the stage"):
        component_io.publish_file(artifact, tmp_path / "absent.html")


def test_raw_directory_wraps_single_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "d1"}\n', encoding="utf-8")

    directory = component_io.raw_directory(corpus, tmp_path / "scratch")

    assert [path.name for path in directory.iterdir()] == ["corpus.jsonl"]
    assert component_io.raw_directory(tmp_path, tmp_path / "scratch") == tmp_path


def test_raw_directory_missing_path_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="raw data not found at"):
        component_io.raw_directory(tmp_path / "absent", tmp_path / "scratch")


def test_apply_run_settings_sets_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import hybrid_dialogue.logs

    monkeypatch.delenv("HYBRID_DIALOGUE_EXECUTION_ID", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "before")
    # The component configures logging for its own process; leave pytest's alone.
    monkeypatch.setattr(hybrid_dialogue.logs, "setup_logging", lambda level=None: None)

    component_io.apply_run_settings("job-42", "after")

    assert os.environ["HYBRID_DIALOGUE_EXECUTION_ID"] == "job-42"
    assert os.environ["MLFLOW_EXPERIMENT_NAME"] == "after"


def test_override_params_keeps_yaml_types() -> None:
    params = {"vae_pretrain": {"seed": 1, "budgets": {"tiny": {"epochs": 1}}}, "evaluate": None}

    result = override_params(
        params,
        ["vae_pretrain.budgets.tiny.epochs=3", "vae_pretrain.kl_annealing.weight=0.5", "evaluate.deterministic=true"],
    )

    assert result["vae_pretrain"]["budgets"]["tiny"]["epochs"] == 3
    assert result["vae_pretrain"]["kl_annealing"] == {"weight": 0.5}
    assert result["evaluate"] == {"deterministic": True}
    assert params["vae_pretrain"]["budgets"]["tiny"]["epochs"] == 1


def test_override_params_rejects_scalar_parent() -> None:
    with pytest.raises(KubeflowError, match="--set vae_pretrain.seed.value: seed is not a mapping"):
        override_params({"vae_pretrain": {"seed": 1}}, ["vae_pretrain.seed.value=2"])


def test_typed_arguments_convert_by_parameter_type(tmp_path: Path) -> None:
    package = tmp_path / "pipeline.yaml"
    package.write_text(
        "root:\n"
        "  inputDefinitions:\n"
        "    parameters:\n"
        "      name: {parameterType: STRING}\n"
        "      count: {parameterType: NUMBER_INTEGER, defaultValue: 1.0}\n"
        "      rate: {parameterType: NUMBER_DOUBLE, defaultValue: 0.5}\n"
        "      enabled: {parameterType: BOOLEAN, isOptional: true}\n",
        encoding="utf-8",
    )

    arguments = typed_arguments(package, ["name=7", "count=3", "rate=2", "enabled=false"])

    assert arguments == {"name": "7", "count": 3, "rate": 2.0, "enabled": False}
    with pytest.raises(KubeflowError, match=r"--param count='3.5' is invalid: expected int \(NUMBER_INTEGER\)"):
        typed_arguments(package, ["name=a", "count=3.5"])


def test_typed_arguments_reject_non_pipeline_file(tmp_path: Path) -> None:
    package = tmp_path / "pipeline.yaml"
    package.write_text("just: text\n", encoding="utf-8")

    with pytest.raises(KubeflowError, match="is not a compiled pipeline YAML"):
        typed_arguments(package, [])
