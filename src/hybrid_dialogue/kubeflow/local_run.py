"""Run the whole pipeline on this machine with `kfp.local` (no Docker, no cluster)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from hybrid_dialogue.kubeflow import KubeflowError
from hybrid_dialogue.kubeflow.repository import load_pipeline

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalRun:
    """Output directories of a local run: one per task under `run_directory`."""

    run_directory: Path
    task_directories: tuple[Path, ...]


def run_local(
    root: Path,
    *,
    preset: str,
    raw_data: Path,
    pipeline_root: Path,
    mlflow_experiment: str,
    params_json: str,
) -> LocalRun:
    """Run every task in a subprocess of this Python, writing artifacts under `pipeline_root`.

    The tasks run in the current environment (`use_venv=False`), because a
    fresh virtual environment would install packages from the network. The
    subprocesses inherit the working directory and the environment, so
    MLflow settings such as `MLFLOW_TRACKING_URI` apply as in `dvc repro`.
    Resource, accelerator, Secret and ConfigMap settings only matter on a
    cluster; `kfp.local` ignores them.
    """
    from kfp import local

    raw_data = raw_data.resolve()
    if not raw_data.exists():
        raise KubeflowError(
            f"raw data not found at {raw_data}: pass --raw-data with a directory of *.jsonl "
            "dialogues (for example data/raw after `hybrid-dialogue corpus synth`)"
        )

    pipeline = load_pipeline(root)
    pipeline_root = pipeline_root.resolve()
    pipeline_root.mkdir(parents=True, exist_ok=True)
    existing = set(pipeline_root.iterdir())
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        # The workspace only receives copies of imported artifacts. Keeping it
        # under the root avoids a stray temporary directory.
        workspace_root=str(pipeline_root / ".workspace"),
        raise_on_error=True,
    )

    logger.info("Running the pipeline locally: preset %s, raw data %s, outputs under %s", preset, raw_data, pipeline_root)
    with warnings.catch_warnings():
        # The subprocess runner warns for every task whose image name lacks
        # "python", but the tasks run in this environment, not in that image.
        warnings.filterwarnings("ignore", message=".*non-Python base image", category=RuntimeWarning)
        # Resources and accelerators only apply on a cluster (see the docstring).
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner", category=UserWarning)
        try:
            pipeline(
                preset=preset,
                raw_data_uri=str(raw_data),
                mlflow_experiment=mlflow_experiment,
                params_json=params_json,
            )
        except RuntimeError as error:
            raise KubeflowError(
                f"local pipeline run failed: {str(error).rstrip('.')}. The task log above shows the cause; "
                f"finished tasks' outputs are under {pipeline_root}"
            ) from error

    return _describe_run(pipeline_root, existing)


def _describe_run(pipeline_root: Path, existing: set[Path]) -> LocalRun:
    new_runs = sorted(path for path in set(pipeline_root.iterdir()) - existing if path.is_dir() and not path.name.startswith("."))
    if not new_runs:
        raise KubeflowError(f"the local run finished but wrote no run directory under {pipeline_root}")
    run_directory = new_runs[-1]
    tasks = tuple(sorted(path for path in run_directory.iterdir() if path.is_dir()))
    return LocalRun(run_directory=run_directory, task_directories=tasks)
