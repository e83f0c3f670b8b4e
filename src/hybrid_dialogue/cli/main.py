"""Entry point of the `hybrid-dialogue` command.

Each command module registers its commands on `cli`. Heavy libraries
(TensorFlow, MLflow, kfp) are imported inside the command bodies, so that
`--help` answers in well under a second.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from hybrid_dialogue import __version__
from hybrid_dialogue.config import ConfigError
from hybrid_dialogue.logs import setup_logging

logger = logging.getLogger(__name__)


class PipelineError(click.ClickException):
    """A user-facing failure: printed as one message, exit status 1, no traceback."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="hybrid-dialogue")
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Logging level (default: $HYBRID_DIALOGUE_LOG_LEVEL or INFO).",
)
def cli(log_level: str | None) -> None:
    """Train, evaluate and ship the Hybrid Dialogue GAN + VAE response generator.

    Every pipeline stage is a subcommand that `dvc repro` and the Kubeflow
    components also call. Run `hybrid-dialogue COMMAND --help` for details.
    """
    setup_logging(log_level.upper() if log_level else None)


def _register_commands() -> None:
    # Imported for their side effect of adding commands to `cli`.
    from hybrid_dialogue.cli import corpus_commands, stage_commands  # noqa: F401
    from hybrid_dialogue.cli import storage_commands  # noqa: F401
    from hybrid_dialogue.cli import registry_commands  # noqa: F401
    from hybrid_dialogue.cli import kfp_commands  # noqa: F401


_register_commands()


# TensorFlow's C++ log level for CLI commands: 2 drops INFO and WARNING
# messages, such as the CPU-feature banner, and keeps errors.
TF_CPP_MIN_LOG_LEVEL = "2"


def main() -> None:
    """Run the CLI, turning configuration errors into a clean message and exit status 2."""
    # Set before any command imports TensorFlow, which reads the variable on
    # import. A value the user set wins, so TF_CPP_MIN_LOG_LEVEL=0 shows everything.
    # NOTE: TensorFlow 2.21 still prints its oneDNN notice and absl's
    # "All log messages before absl::InitializeLog()" line at any level,
    # because they are logged before the variable is applied.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_CPP_MIN_LOG_LEVEL)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as error:
        sys.exit(error.exit_code)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM (`kill`, `timeout`, a Kubernetes pod stop) into SystemExit with status 143.

    By default Python dies on SIGTERM without leaving its `with` blocks, so the
    stage's MLflow run would stay RUNNING; SystemExit closes it as KILLED, and
    a training stage logs the epoch that a rerun resumes after.
    """
    try:
        click.echo(f"Stopped by SIGTERM (exit status {128 + signum}).", err=True)
    except (OSError, RuntimeError):
        # The signal can arrive during another write to stderr (a reentrant call). Exit anyway.
        pass
    raise SystemExit(128 + signum)
