"""`hybrid-dialogue kfp ...`: compile the Kubeflow pipeline, run it locally, or submit it to a cluster."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from hybrid_dialogue.cli.main import PipelineError, cli
from hybrid_dialogue.paths import COMPILED_PIPELINE, KFP_LOCAL_ROOT, PARAMS_FILE, RAW_DIR

DEFAULT_PIPELINE_NAME = "hybrid-dialogue"


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Show `KubeflowError` as a one-line message with exit status 1, not a traceback."""
    from hybrid_dialogue.kubeflow import KubeflowError

    try:
        yield
    except KubeflowError as error:
        raise PipelineError(str(error)) from error


@cli.group()
def kfp() -> None:
    """Compile the Kubeflow pipeline, run it with kfp.local, or submit it to Kubeflow Pipelines.

    Run these commands inside a clone of the repository: the components and
    the pipeline live in its components/ and pipelines/ folders.
    """


@kfp.command("compile")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"File to write (default: {COMPILED_PIPELINE} in the repository).",
)
@click.option("--check", is_flag=True, help="Write nothing, and exit with status 1 when the file differs from a fresh compilation.")
def compile_command(output: Path | None, check: bool) -> None:
    """Compile the pipeline to Kubeflow Pipelines YAML.

    The container image is $HYBRID_DIALOGUE_IMAGE when set, otherwise the
    version-tagged default of components/image.py.
    """
    from hybrid_dialogue.kubeflow.compiling import compile_pipeline, compile_to_text
    from hybrid_dialogue.kubeflow.repository import find_repository_root

    with _user_errors():
        root = find_repository_root()
        output = output or root / COMPILED_PIPELINE
        if not check:
            compile_pipeline(root, output)
            click.echo(f"Wrote {output}")
            return

        committed = output.read_text(encoding="utf-8") if output.is_file() else None
        if committed != compile_to_text(root):
            raise PipelineError(
                f"{output} is out of date with components/, pipelines/ and params.yaml: "
                "run `hybrid-dialogue kfp compile` and commit the file"
            )
        click.echo(f"{output} is up to date")


@kfp.command("run-local")
@click.option("--preset", default="tiny", show_default=True, help="Model preset (seed, cpu or tiny): model sizes and training budgets.")
@click.option(
    "--raw-data",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Directory of raw *.jsonl dialogues, or one JSONL file (default: {RAW_DIR} in the repository).",
)
@click.option(
    "--pipeline-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Directory for the task outputs (default: {KFP_LOCAL_ROOT} in the repository).",
)
@click.option("--experiment", default=None, help="MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME or hybrid-dialogue).")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a params.yaml value for this run, for example vae_pretrain.seed=7. Repeatable.",
)
def run_local_command(
    preset: str, raw_data: Path | None, pipeline_root: Path | None, experiment: str | None, assignments: tuple[str, ...]
) -> None:
    """Run the whole pipeline on this machine with kfp.local: no Docker, no cluster.

    Each task runs as a subprocess of this Python environment, in the
    repository root, and logs to the MLflow store that `dvc repro` uses.
    """
    from hybrid_dialogue import tracking
    from hybrid_dialogue.config import load_params
    from hybrid_dialogue.kubeflow.local_run import run_local
    from hybrid_dialogue.kubeflow.parameters import check_pipeline_arguments, override_params, params_to_json
    from hybrid_dialogue.kubeflow.repository import find_repository_root

    with _user_errors():
        root = find_repository_root()
        check_pipeline_arguments({"preset": preset}, spelling={"preset": "--preset"})
        # Resolve the user's relative paths before moving to the repository root.
        raw_data = (raw_data or root / RAW_DIR).resolve()
        pipeline_root = (pipeline_root or root / KFP_LOCAL_ROOT).resolve()
        params = override_params(load_params(root / PARAMS_FILE), assignments)

        # Stage functions read data.dvc, git state and the default MLflow store
        # relative to the working directory, which the task subprocesses inherit.
        os.chdir(root)
        result = run_local(
            root,
            preset=preset,
            raw_data=raw_data,
            pipeline_root=pipeline_root,
            mlflow_experiment=experiment or tracking.experiment_name(),
            params_json=params_to_json(params),
        )

    click.echo(f"Local run finished. Task outputs are in {result.run_directory}:")
    for task_directory in result.task_directories:
        click.echo(f"  {task_directory.name}")


@kfp.command("submit")
@click.option(
    "--host",
    required=True,
    envvar="KFP_HOST",
    help="Kubeflow Pipelines URL, for example http://localhost:8080 behind `kubectl port-forward` ($KFP_HOST).",
)
@click.option("--experiment", default=DEFAULT_PIPELINE_NAME, show_default=True, help="Kubeflow experiment of the run, created when missing.")
@click.option("--run-name", default=None, help="Run name (default: hybrid-dialogue-YYYYMMDD-HHMMSS, in UTC).")
@click.option(
    "--param",
    "parameters",
    multiple=True,
    metavar="NAME=VALUE",
    help="Pipeline argument, for example raw_data_uri=s3://BUCKET/data/raw or preset=cpu. Repeatable.",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a params.yaml value; sent in the params_json argument. Repeatable.",
)
@click.option(
    "--package",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Compiled pipeline YAML to upload (default: compile the repository's pipeline now).",
)
@click.option("--pipeline-name", default=DEFAULT_PIPELINE_NAME, show_default=True, help="Pipeline name on the server.")
@click.option("--namespace", default=None, help="Kubernetes namespace (Kubeflow profile) of a multi-user deployment.")
def submit_command(
    host: str,
    experiment: str,
    run_name: str | None,
    parameters: tuple[str, ...],
    assignments: tuple[str, ...],
    package: Path | None,
    pipeline_name: str,
    namespace: str | None,
) -> None:
    """Upload the pipeline to a Kubeflow Pipelines endpoint and start a run.

    Authentication: $KFP_TOKEN is sent as a bearer token, $KFP_COOKIE as a
    Cookie header (for example authservice_session=...).
    """
    from hybrid_dialogue.kubeflow.submit import Credentials, submit_pipeline

    run_name = run_name or f"{DEFAULT_PIPELINE_NAME}-{datetime.datetime.now(datetime.UTC):%Y%m%d-%H%M%S}"
    with _user_errors(), tempfile.TemporaryDirectory(prefix="hybrid-dialogue-kfp-") as scratch:
        package = package or _compile_into(Path(scratch))
        arguments = _submit_arguments(package, parameters, assignments)
        submitted = submit_pipeline(
            host,
            package,
            pipeline_name=pipeline_name,
            experiment=experiment,
            run_name=run_name,
            arguments=arguments,
            credentials=Credentials.from_environment(),
            namespace=namespace,
        )

    click.echo(f"Started run {submitted.run_id} ({run_name}) in experiment {experiment}: {submitted.run_url}")


def _compile_into(directory: Path) -> Path:
    from hybrid_dialogue.kubeflow.compiling import compile_pipeline
    from hybrid_dialogue.kubeflow.repository import find_repository_root

    return compile_pipeline(find_repository_root(), directory / "pipeline.yaml")


def _submit_arguments(package: Path, parameters: tuple[str, ...], assignments: tuple[str, ...]) -> dict:
    """Return the typed run arguments, with `--set` applied to the package's default `params_json`."""
    from hybrid_dialogue.kubeflow import KubeflowError
    from hybrid_dialogue.kubeflow.parameters import (
        check_pipeline_arguments,
        default_argument,
        override_params,
        params_to_json,
        typed_arguments,
    )

    arguments = typed_arguments(package, parameters)
    if assignments:
        if "params_json" in arguments:
            raise KubeflowError("pass either --set or --param params_json=..., not both")
        base = json.loads(default_argument(package, "params_json"))
        arguments["params_json"] = params_to_json(override_params(base, assignments))
    check_pipeline_arguments(arguments)
    return arguments
