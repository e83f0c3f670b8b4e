"""The `register` stage: log the model as a pyfunc, register it as `hybrid-dialogue`, tag it, alias it.

A version is created only after the model and all its artifacts were logged
completely. If registering or aliasing the new version fails, the version is
deleted again. Only when the store also fails that deletion can a
half-registered version remain, and the error then says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybrid_dialogue import tracking
from hybrid_dialogue.config import load_params
from hybrid_dialogue.generation import ResponseGenerator, export_bundle
from hybrid_dialogue.io import write_json
from hybrid_dialogue.paths import PARAMS_FILE
from hybrid_dialogue.registry import CHALLENGER_ALIAS, MODEL_NAME
from hybrid_dialogue.registry.config import RegisterConfig
from hybrid_dialogue.registry.metrics import metrics_to_tags, read_headline_metrics
from hybrid_dialogue.registry.promote import PromotionResult, format_table, promote

logger = logging.getLogger(__name__)

STAGE = "register"
LINKED_RUN_TAG_PREFIX = "run."


@dataclass(frozen=True)
class RegistrationResult:
    """A registered version: its number, aliases, model URI, producing run and promotion outcome."""

    name: str
    version: str
    aliases: list[str]
    model_uri: str
    run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    promotion: PromotionResult | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": self.aliases,
            "model_uri": self.model_uri,
            "run_id": self.run_id,
            "tracking_uri": self.tracking_uri,
            "metrics": self.metrics,
            "promotion": self.promotion.to_dict() if self.promotion else None,
        }


def register_model(
    model_path: str | Path,
    processed_dir: str | Path,
    metrics_paths: Sequence[str | Path],
    config: RegisterConfig,
    params_path: str | Path = PARAMS_FILE,
    output_path: str | Path | None = None,
) -> RegistrationResult:
    """Register the model at `model_path` as a new version of `hybrid-dialogue` with the `challenger` alias.

    The version carries the tokenizer, text rules and manifest of
    `processed_dir`, and tags for the data version, git commit, parameters
    hash, headline metrics (from `metrics_paths`, missing files skipped) and
    the runs of the same pipeline execution. With `config.promote` the new
    version then goes through the promotion gates; failed gates are logged,
    not raised. Writes `output_path` (JSON) when given.

    Raises `tracking.TrackingError` naming the tracking URI when MLflow is
    unreachable or logging fails, and `BundleError` for missing inputs.
    """
    import mlflow

    # Fail on an unreachable store before the slower bundle check.
    tracking.configure()
    metrics = read_headline_metrics(metrics_paths)
    with tempfile.TemporaryDirectory(prefix="hybrid-dialogue-bundle-") as staging:
        bundle_dir = export_bundle(model_path, processed_dir, Path(staging) / "bundle")
        _check_bundle(bundle_dir)

        with tracking.stage_run(STAGE, params=config.to_flat_dict()) as run:
            uri = mlflow.get_tracking_uri()
            model_info = _log_model(bundle_dir, metrics, uri, run.info.artifact_uri)
            tags = _version_tags(params_path, metrics, model_path)
            version = _create_version(model_info.model_uri, run.info.run_id, tags, uri)

    promotion = _try_promotion(config, version) if config.promote else None
    aliases = sorted(mlflow.MlflowClient().get_model_version(MODEL_NAME, version).aliases)
    result = RegistrationResult(
        name=MODEL_NAME,
        version=version,
        aliases=aliases,
        model_uri=f"models:/{MODEL_NAME}/{version}",
        run_id=run.info.run_id,
        tracking_uri=uri,
        metrics=metrics,
        promotion=promotion,
    )
    if output_path is not None:
        write_json(output_path, result.to_dict())
    logger.info("Registered %s version %s with aliases %s", MODEL_NAME, version, ", ".join(aliases))
    return result


def _check_bundle(bundle_dir: Path) -> None:
    """Load the bundle and generate one response, so a broken model fails before anything reaches MLflow."""
    from hybrid_dialogue.registry.pyfunc import INPUT_COLUMN, INPUT_EXAMPLE

    generator = ResponseGenerator.from_directory(bundle_dir)
    response = generator.respond(INPUT_EXAMPLE[INPUT_COLUMN].tolist())[0]
    logger.info("Bundle check: response %r, quality %.3f", response.text, response.quality)


def _log_model(bundle_dir: Path, metrics: dict[str, float], uri: str, artifact_uri: str) -> Any:
    import mlflow

    from hybrid_dialogue.registry.pyfunc import log_pyfunc_model

    try:
        model_info = log_pyfunc_model(bundle_dir)
        if metrics:
            mlflow.log_metrics(metrics)
    except Exception as error:  # OSError (full disk), MlflowException, requests errors
        raise tracking.TrackingError(
            f"logging the model to MLflow failed: {error}. Tracking URI: {uri}, artifact location: "
            f"{artifact_uri}. No model version was registered. Check that the store is reachable "
            "and has free disk space, then rerun `dvc repro register`."
        ) from error
    return model_info


def _create_version(model_uri: str, run_id: str, tags: dict[str, str], uri: str) -> str:
    """Register `model_uri` with its tags and the `challenger` alias, deleting the new version if a step fails."""
    import mlflow

    client = mlflow.MlflowClient()
    try:
        registered = mlflow.register_model(model_uri, MODEL_NAME, tags={**tags, **_linked_run_tags()})
        version = str(registered.version)
        client.set_registered_model_alias(MODEL_NAME, CHALLENGER_ALIAS, version)
    except Exception as error:  # MlflowException, requests errors, SQLAlchemy errors
        # `register_model` may fail after it created the version, so look the
        # version up by the run that logged it rather than by a return value.
        outcome = "No model version was kept" if _delete_versions_of_run(client, run_id) else (
            f"A half-registered version of run {run_id} may remain: delete it in the MLflow UI"
        )
        raise tracking.TrackingError(
            f"registering {MODEL_NAME} in the MLflow registry at {uri} failed: {error}. "
            f"{outcome}. Check the server, then rerun `dvc repro register`."
        ) from error
    return version


def _delete_versions_of_run(client: Any, run_id: str) -> bool:
    """Delete every version of the model logged by `run_id`; return False if the store could not be cleaned."""
    try:
        for version in client.search_model_versions(f"name='{MODEL_NAME}' and run_id='{run_id}'"):
            client.delete_model_version(MODEL_NAME, str(version.version))
            logger.warning("Deleted the half-registered version %s of %s", version.version, MODEL_NAME)
    except Exception as error:  # the store may be the thing that failed
        logger.error("Could not delete the half-registered versions of run %s: %s", run_id, error)
        return False
    return True


def _version_tags(params_path: str | Path, metrics: dict[str, float], model_path: str | Path) -> dict[str, str]:
    return {
        "data_version": tracking.data_version(),
        "git_commit": tracking.git_commit(),
        "params_hash": params_hash(params_path),
        tracking.EXECUTION_TAG: tracking.execution_key(params_path),
        "source_model": str(model_path),
        **metrics_to_tags(metrics),
    }


def _linked_run_tags() -> dict[str, str]:
    """Tag `run.<stage>` = run id for every stage run of this pipeline execution, newest per stage.

    Failed and killed runs (an attempt before a successful rerun, say) are
    skipped, so each tag points at the run that produced the registered
    outputs. The register stage's own run is still running and is included.
    """
    import mlflow

    experiment = mlflow.get_experiment_by_name(tracking.experiment_name())
    key = tracking.execution_key()
    runs = mlflow.MlflowClient().search_runs(
        [experiment.experiment_id],
        filter_string=(
            f"tags.`{tracking.EXECUTION_TAG}` = '{key}' "
            "and attributes.status != 'FAILED' and attributes.status != 'KILLED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    linked = {}
    for run in runs:  # newest first, so the first run of each stage wins
        stage = run.data.tags.get(tracking.STAGE_TAG)
        tag = f"{LINKED_RUN_TAG_PREFIX}{stage}"
        if stage and stage != "pipeline" and tag not in linked:
            linked[tag] = run.info.run_id
    return linked


def _try_promotion(config: RegisterConfig, version: str) -> PromotionResult:
    result = promote(config.gates, version=version)
    table = format_table(result)
    if result.promoted:
        logger.info("Promotion gates passed:\n%s", table)
    else:
        logger.warning("Promotion gates failed, so the version stays challenger:\n%s", table)
    return result


def params_hash(params_path: str | Path) -> str:
    """Return a short hash of the resolved parameter file, independent of key order and comments."""
    canonical = json.dumps(load_params(params_path), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]
