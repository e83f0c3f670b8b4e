"""Helpers that the Kubeflow component bodies call inside the container image.

Components receive the whole `params.yaml` as a JSON string and each builds
only its own section with `parse_section`, so a value is validated exactly as
`dvc repro` validates it. Artifacts are plain paths: a `Dataset` is a
directory, a `Model` is a directory with one `model.keras` file (Keras only
saves to paths ending in `.keras`, and artifact paths have no suffix).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any, TypeVar

from hybrid_dialogue.config import ConfigError, StageConfig, parse_section

logger = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT", bound=StageConfig)

MODEL_FILE = "model.keras"
EXECUTION_ENV = "HYBRID_DIALOGUE_EXECUTION_ID"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"


def apply_run_settings(execution_id: str, mlflow_experiment: str) -> None:
    """Set the MLflow grouping key and experiment for the stage function in this process.

    Kubeflow container environment values are literal strings, so the run's
    job id arrives as a parameter and becomes an environment variable here.
    """
    from hybrid_dialogue.logs import setup_logging

    setup_logging()
    if execution_id:
        os.environ[EXECUTION_ENV] = execution_id
    if mlflow_experiment:
        os.environ[EXPERIMENT_ENV] = mlflow_experiment
    logger.info("Execution %s, MLflow experiment %s", execution_id or "(from git and params)", mlflow_experiment)


def read_params(params_json: str) -> dict[str, Any]:
    """Decode the `params_json` pipeline parameter: a JSON object of `params.yaml` sections."""
    try:
        params = json.loads(params_json)
    except json.JSONDecodeError as error:
        raise ConfigError(f"params_json is not valid JSON ({error}). Pass a JSON object of params.yaml sections.") from None
    if not isinstance(params, dict):
        raise ConfigError(f"params_json must be a JSON object of params.yaml sections, got {type(params).__name__}")
    return params


def section_values(params_json: str, section: str) -> dict[str, Any]:
    """Return one section of `params_json` as a dict, `{}` when it is absent."""
    values = read_params(params_json).get(section)
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"params_json: section '{section}' must be an object, got {values!r}")
    return values


def stage_config(config_class: type[ConfigT], section: str, params_json: str) -> ConfigT:
    """Build a stage's typed config from its section of `params_json`."""
    return parse_section(config_class, section, section_values(params_json, section), source="params_json")


def model_config(params_json: str, preset: str) -> Any:
    """Build the `model` section's `ModelConfig`, with the preset taken from the pipeline parameter."""
    from hybrid_dialogue.models.config import ModelConfig

    values = {**section_values(params_json, "model"), "preset": preset}
    return parse_section(ModelConfig, "model", values, source="params_json")


def model_file(model_directory: str | Path) -> Path:
    """Return the `.keras` file inside a `Model` artifact directory."""
    return Path(model_directory) / MODEL_FILE


def raw_directory(raw_path: str | Path, scratch: Path) -> Path:
    """Return a directory of raw `*.jsonl` files for `raw_path`, a directory or one JSONL file."""
    raw_path = Path(raw_path)
    if raw_path.is_dir():
        return raw_path
    if raw_path.is_file():
        directory = scratch / "raw"
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy2(raw_path, directory / raw_path.name)
        return directory
    raise ConfigError(
        f"raw data not found at {raw_path}: set raw_data_uri to a directory of *.jsonl "
        "dialogue files or to one such file"
    )


def log_metrics_file(metrics: Any, metrics_path: str | Path) -> dict[str, float]:
    """Log every finite number of a stage's metrics JSON to a KFP `Metrics` artifact.

    Nested keys are joined with '/', as in `test/bleu`, so the Kubeflow UI
    lists the same names as `dvc metrics show`. Returns what was logged.
    """
    payload = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    numbers = flatten_numbers(payload)
    for name, value in numbers.items():
        metrics.log_metric(name, value)
    logger.info("Logged %d metrics from %s", len(numbers), metrics_path)
    return numbers


def flatten_numbers(payload: Any, prefix: str = "") -> dict[str, float]:
    """Return the finite numeric leaves of nested dicts as `{"a/b": value}`, leaving out booleans and text."""
    numbers: dict[str, float] = {}
    if isinstance(payload, dict):
        for key, value in payload.items():
            name = f"{prefix}/{key}" if prefix else str(key)
            numbers.update(flatten_numbers(value, name))
    elif isinstance(payload, (int, float)) and not isinstance(payload, bool) and math.isfinite(payload):
        numbers[prefix] = float(payload)
    return numbers


def publish_file(artifact: Any, source: str | Path) -> None:
    """Copy one report file to an output artifact's path (the Kubeflow UI renders HTML and Markdown)."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"report {source} was not written by the stage, so it cannot be published")
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, artifact.path)


def publish_directory(artifact: Any, source: str | Path) -> None:
    """Copy a report directory (HTML pages and images) to an output artifact's path."""
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"report directory {source} was not written by the stage, so it cannot be published")
    shutil.copytree(source, artifact.path, dirs_exist_ok=True)
