"""MLflow tracking shared by every stage.

A stage opens `stage_run(...)` once and logs inside it. The runs of one
pipeline execution are nested under one parent run, found or created by an
execution key (the git commit, the data version and the digest of
`params.yaml`, or `$HYBRID_DIALOGUE_EXECUTION_ID` when a Kubeflow run sets
it), so the MLflow UI lists whole executions and compares them side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "hybrid-dialogue"
DEFAULT_STORE = Path("mlflow/mlflow.db")
EXECUTION_TAG = "hybrid_dialogue.execution"
STAGE_TAG = "hybrid_dialogue.stage"


class TrackingError(RuntimeError):
    """The MLflow tracking store cannot be reached or used."""


def tracking_uri() -> str:
    """Return `$MLFLOW_TRACKING_URI`, or a SQLite store under `mlflow/` of the working directory.

    MLflow 3 deprecates the plain file store, and SQLite serves both tracking
    and the model registry with no server, so `mlflow ui` shows runs at once.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    DEFAULT_STORE.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def experiment_name() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)


def configure() -> str:
    """Point MLflow at the tracking URI and experiment, failing clearly if unreachable."""
    import mlflow

    uri = tracking_uri()
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    try:
        _create_experiment_beside_store(uri)
        mlflow.set_experiment(experiment_name())
    except Exception as error:  # MlflowException, requests errors, SQLAlchemy errors
        raise TrackingError(
            f"MLflow tracking store {uri} failed: {error}. Check MLFLOW_TRACKING_URI "
            "(unset it to use the local SQLite store under mlflow/)."
        ) from error
    return uri


def _create_experiment_beside_store(uri: str) -> None:
    """Create the experiment with its artifacts next to a SQLite store.

    Without an explicit location MLflow puts a SQLite store's artifacts in
    `./mlruns` of whatever directory the process runs in.
    """
    import mlflow

    if not uri.startswith("sqlite:///") or mlflow.get_experiment_by_name(experiment_name()):
        return
    artifact_root = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
    mlflow.create_experiment(experiment_name(), artifact_location=artifact_root.resolve().as_uri())


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Raise `TrackingError` naming `uri` when an HTTP tracking server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_s):  # noqa: S310 (URI is the user's own server)
            return
    except urllib.error.HTTPError:
        return  # the server answered, even if /health is not exposed behind a proxy
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable ({error}). Start it (make mlflow-server), "
            "fix MLFLOW_TRACKING_URI, or unset it to use the local SQLite store under mlflow/."
        ) from error


def git_commit() -> str:
    """Return the current commit, suffixed with `-dirty` when tracked files changed; `unknown` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def data_version(dvc_file: str | Path = "data.dvc") -> str:
    """Return the DVC hash of the raw corpus as `data.dvc` records it, or `untracked`."""
    path = Path(dvc_file)
    if not path.is_file():
        return "untracked"
    outs = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("outs") or [{}]
    return str(outs[0].get("md5", "untracked"))


def execution_key(params_path: str | Path = "params.yaml") -> str:
    """Return the key that groups the stage runs of one pipeline execution."""
    explicit = os.environ.get("HYBRID_DIALOGUE_EXECUTION_ID")
    if explicit:
        return explicit
    params_path = Path(params_path)
    params_digest = hashlib.sha256(params_path.read_bytes()).hexdigest() if params_path.is_file() else ""
    material = f"{git_commit()}|{data_version()}|{params_digest}"
    return hashlib.sha256(material.encode()).hexdigest()[:12]


@contextlib.contextmanager
def stage_run(
    stage: str,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """Open a nested MLflow run for `stage` under its execution's parent run.

    Logs `params` (flattened dotted keys) and the standard tags: stage, git
    commit, data version and execution key. Yields the active child run.
    """
    import mlflow

    configure()
    key = execution_key()
    parent_id = _find_or_create_parent(key)
    run_tags = {
        STAGE_TAG: stage,
        EXECUTION_TAG: key,
        "git_commit": git_commit(),
        "data_version": data_version(),
        **(tags or {}),
    }
    with mlflow.start_run(run_name=stage, parent_run_id=parent_id, tags=run_tags) as run:
        if params:
            mlflow.log_params(_stringify(params))
        logger.info("MLflow run %s (%s) in %s", run.info.run_id, stage, mlflow.get_tracking_uri())
        try:
            yield run
        except (KeyboardInterrupt, SystemExit):
            # Interrupted rather than failed: MLflow would record FAILED.
            mlflow.end_run(status="KILLED")
            logger.warning("%s stopped: MLflow run %s marked KILLED", stage, run.info.run_id)
            raise


def _find_or_create_parent(key: str) -> str:
    import mlflow

    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(experiment_name())
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{EXECUTION_TAG}` = '{key}' and tags.`{STAGE_TAG}` = 'pipeline'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    parent = client.create_run(
        experiment.experiment_id,
        run_name=f"pipeline-{key}",
        tags={EXECUTION_TAG: key, STAGE_TAG: "pipeline", "git_commit": git_commit(), "data_version": data_version()},
    )
    # The parent only groups its children, so it is closed at once.
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


def _stringify(params: Mapping[str, Any]) -> dict[str, str]:
    # MLflow limits a parameter value to 6000 characters; ours are short scalars.
    return {str(key): str(value) for key, value in params.items()}
