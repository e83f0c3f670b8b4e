"""`hybrid-dialogue register`, `promote` and `generate`: the model registry and response generation."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from hybrid_dialogue import paths
from hybrid_dialogue.cli.main import PipelineError, cli

# Exit status of `generate` for invalid input, as click uses for usage errors.
INPUT_ERROR_EXIT = 2

# Invalid lines of a `generate --file` input listed in the error; the rest are only counted.
MAX_LISTED_LINES = 20


class InputError(click.ClickException):
    """Invalid customer message input: printed as one message, exit status 2."""

    exit_code = INPUT_ERROR_EXIT


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the library's expected failures into one-line CLI errors instead of tracebacks."""
    from hybrid_dialogue.data.dataset import DatasetError
    from hybrid_dialogue.data.tokenizer import TokenizerError
    from hybrid_dialogue.generation import BundleError
    from hybrid_dialogue.models.io import ModelFileError, TokenizerMismatchError
    from hybrid_dialogue.registry.promote import PromotionError
    from hybrid_dialogue.tracking import TrackingError

    expected = (
        BundleError, DatasetError, ModelFileError, PromotionError, TokenizerError, TokenizerMismatchError,
        TrackingError,
    )
    try:
        yield
    except expected as error:
        raise PipelineError(str(error)) from error


@cli.command()
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=paths.MITIGATED_MODEL,
              show_default=True, help="Trained .keras model to register.")
@click.option("--processed-dir", type=click.Path(path_type=Path), default=paths.PROCESSED_DIR, show_default=True,
              help="Processed data whose tokenizer, text rules and manifest the model needs.")
@click.option("--metrics", "metrics_paths", type=click.Path(path_type=Path), multiple=True,
              default=[paths.EVALUATE_METRICS, paths.BIAS_METRICS], show_default=True,
              help="Metric files whose headline numbers become version tags (repeatable; missing files are skipped).")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
              show_default=True, help="Parameter file; the 'register' section sets the promotion gates.")
@click.option("--output", type=click.Path(path_type=Path), default=paths.REGISTER_METRICS, show_default=True,
              help="JSON file that receives the registered name, version and aliases.")
@click.option("--promote/--no-promote", "try_promotion", default=None,
              help="Try promotion after registering (default: 'register.promote' in the parameter file).")
def register(
    model_path: Path, processed_dir: Path, metrics_paths: tuple[Path, ...], params_path: Path, output: Path,
    try_promotion: bool | None,
) -> None:
    """Register a trained model as a new 'hybrid-dialogue' version with the 'challenger' alias.

    Failed promotion gates are reported but do not fail the command, so that
    every pipeline run ends with a registered version.
    """
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.registry.config import RegisterConfig
    from hybrid_dialogue.registry.register import register_model

    overrides = {} if try_promotion is None else {"promote": try_promotion}
    config = load_section(RegisterConfig, "register", params_path, overrides)
    with _user_errors():
        result = register_model(model_path, processed_dir, metrics_paths, config, params_path, output)
    click.echo(f"Registered {result.name} version {result.version} (aliases: {', '.join(result.aliases)}).")
    click.echo(f"Model URI: {result.model_uri}")


@cli.command()
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version to promote (default: the one with the 'challenger' alias).")
@click.option("--force", is_flag=True, help="Move 'champion' even when gates fail; needs --reason.")
@click.option("--reason", default=None, help="Why --force is used; stored as a tag on the version.")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
              show_default=True, help="Parameter file whose 'register.gates' section sets the thresholds.")
def promote(version: int | None, force: bool, reason: str | None, params_path: Path) -> None:
    """Compare a version with the champion and move the 'champion' alias if every gate passes.

    Prints each gate with both values. Exits with status 1 when a gate fails
    and --force is not given, and with status 2 for invalid options.
    """
    # Checked before the imports below, which load MLflow and TensorFlow
    # (seconds), so that a usage error returns at once.
    if force and reason is None:
        raise click.UsageError(
            "Missing option '--reason'. --force moves 'champion' past failed gates, so give the reason "
            "with --reason TEXT; it is stored on the version as a tag."
        )
    if force and not reason.strip():
        raise click.BadParameter("the reason is blank: say why --force is used", param_hint="'--reason'")
    if reason and not force:
        raise click.UsageError("--reason is only used with --force")

    from hybrid_dialogue import tracking
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.registry import promote as promotion
    from hybrid_dialogue.registry.config import RegisterConfig

    config = load_section(RegisterConfig, "register", params_path)
    with _user_errors():
        tracking.configure()
        result = promotion.promote(config.gates, version=version, force=force, reason=reason)
    click.echo(promotion.format_table(result))
    if not result.gates_passed and not result.forced:
        sys.exit(1)


@cli.command()
@click.argument("message", required=False)
@click.option("--file", "input_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Text file with one customer message per line; writes one JSON object per line.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSONL file for --file results (default: standard output).")
@click.option("--model-uri", default=None,
              help="MLflow model URI to load (default: models:/hybrid-dialogue@champion).")
@click.option("--model-dir", type=click.Path(path_type=Path), default=None,
              help="Local model bundle, or a downloaded MLflow model, instead of the registry.")
@click.option("--decoding", type=click.Choice(["inventory", "free"]), default=None,
              help="inventory: the training reply that best matches the generator's output; free: the "
                   "generator's most likely word at each position. Default: inventory when the model has a "
                   "response inventory, else free.")
def generate(
    message: str | None,
    input_file: Path | None,
    output: Path | None,
    model_uri: str | None,
    model_dir: Path | None,
    decoding: str | None,
) -> None:
    """Generate the agent response to MESSAGE and print it with its quality score.

    The quality score is the discriminator's estimate in [0, 1] that the
    response reads like a real agent response. Invalid input (empty, over
    the length limit, or not text) exits with status 2 before any response
    is generated; for --file, the error lists every invalid line.
    """
    if (message is None) == (input_file is None):
        raise click.UsageError("pass either one MESSAGE or --file FILE")
    if model_uri and model_dir:
        raise click.UsageError("pass either --model-uri or --model-dir, not both")
    if output and not input_file:
        raise click.UsageError("--output is only used with --file")

    messages, problems = ([message], []) if input_file is None else _read_messages(input_file)
    problems += _problems_before_loading(messages, skip={index for index, _ in problems})
    if problems and input_file is not None:
        # Check the lengths too when the model loads, so that one run lists every invalid line.
        checker = _try_load_generator(model_uri, model_dir)
        if checker is not None:
            problems += _problems_after_loading(checker, messages, skip={index for index, _ in problems})
    _raise_for_problems(problems, len(messages), input_file)

    with _user_errors():
        generator = _load_generator(model_uri, model_dir)
    # The length limit belongs to the loaded model, so this second pass checks it.
    _raise_for_problems(_problems_after_loading(generator, messages, skip=set()), len(messages), input_file)
    if decoding == "inventory" and generator.model.response_inventory is None:
        raise click.UsageError(
            "--decoding inventory: this model has no response inventory (hybrid_finetune.response_inventory."
            "max_responses was 0, or its replies covered less than min_coverage of the training pairs). "
            "Use --decoding free."
        )
    try:
        responses = generator.respond(messages, decoding=decoding)
    except ValueError as error:
        raise InputError(_locate(str(error), input_file)) from error

    if input_file is None:
        click.echo(responses[0].text)
        click.echo(f"quality score: {responses[0].quality:.3f}")
        return
    lines = [
        json.dumps({"customer_message": text, "response": response.text, "quality_score": response.quality})
        for text, response in zip(messages, responses)
    ]
    _write_lines(lines, output)


def _problems_before_loading(messages: list[str], skip: set[int]) -> list[tuple[int, str]]:
    """Return `(index, problem)` for each empty or non-text message, before paying for the TensorFlow import.

    Messages whose index is in `skip` already have a problem. The length
    limit belongs to the loaded model, so it is checked later.
    """
    from hybrid_dialogue.generation import validate_message

    problems = []
    for index, text in enumerate(messages):
        if index in skip:
            continue
        try:
            validate_message(text, index, max_chars=sys.maxsize)
        except ValueError as error:
            problems.append(_split_message_error(str(error)))
    return problems


def _problems_after_loading(generator: Any, messages: list[str], skip: set[int]) -> list[tuple[int, str]]:
    """Return `(index, problem)` for each message the loaded model rejects, such as one over its length limit."""
    problems = [_split_message_error(error) for error in generator.invalid_messages(messages)]
    return [(index, problem) for index, problem in problems if index not in skip]


def _try_load_generator(model_uri: str | None, model_dir: Path | None) -> Any | None:
    """Load the generator for the length checks, or return None when it does not load.

    The input errors found so far are reported either way, so a model that
    fails to load only costs the length checks here. The normal load after
    the input is fixed reports why it failed.
    """
    try:
        return _load_generator(model_uri, model_dir)
    except Exception as error:  # noqa: BLE001 - any load failure only skips the optional checks
        logging.getLogger(__name__).debug("Model not loaded for the length checks: %s", error)
        return None


def _split_message_error(error: str) -> tuple[int, str]:
    """Split a validation error `message N <problem>` into N and the problem."""
    index, _, problem = error.removeprefix("message ").partition(" ")
    return int(index), problem


def _raise_for_problems(problems: list[tuple[int, str]], n_messages: int, input_file: Path | None) -> None:
    """Raise `InputError` naming MESSAGE, or each invalid line of the input file (at most MAX_LISTED_LINES)."""
    if not problems:
        return
    problems = sorted(problems)
    if input_file is None:
        raise InputError(f"MESSAGE {problems[0][1]}")

    listed = [f"  line {index + 1} {problem}" for index, problem in problems[:MAX_LISTED_LINES]]
    if len(problems) > MAX_LISTED_LINES:
        listed.append(f"  and {len(problems) - MAX_LISTED_LINES} more invalid lines")
    raise InputError(
        f"{input_file}: {len(problems)} of {n_messages} lines are invalid, so no response was generated:\n"
        + "\n".join(listed)
        + "\nFix these lines and run the command again."
    )


def _read_messages(path: Path) -> tuple[list[str], list[tuple[int, str]]]:
    """Read one message per line, and return the messages with `(index, problem)` for each line that is not text.

    A line that is not UTF-8 or contains NUL bytes gets a problem instead of
    stopping the read, so that one error can list every invalid line.
    """
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    messages: list[str] = []
    problems: list[tuple[int, str]] = []
    for index, raw in enumerate(path.read_bytes().splitlines()):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            messages.append(raw.decode("utf-8", errors="replace"))
            problems.append((index, f"is not valid UTF-8 text ({error.reason}): save the file as UTF-8"))
            continue
        if "\x00" in text:
            problems.append((index, "contains NUL bytes, so it is not text"))
        messages.append(text)

    # Blank lines at the end of the file (an editor's extra newline) are not
    # messages. Blank lines between messages are still rejected, with their number.
    while messages and not messages[-1].strip():
        messages.pop()
    if not messages:
        raise InputError(f"{path} is empty: write one customer message per line")
    return messages, problems


def _locate(error: str, input_file: Path | None) -> str:
    """Point a `message N ...` validation error at MESSAGE, or at the input file's line N + 1."""
    if not error.startswith("message "):
        return error
    if input_file is None:
        return "MESSAGE" + error[len("message 0") :]
    index, _, rest = error[len("message ") :].partition(" ")
    if not index.isdigit():
        return error
    return f"{input_file}, line {int(index) + 1} {rest}"


def _load_generator(model_uri: str | None, model_dir: Path | None) -> Any:
    from hybrid_dialogue.generation import ResponseGenerator

    if model_dir is not None:
        return ResponseGenerator.from_directory(model_dir)
    return _load_registered_generator(model_uri)


def _load_registered_generator(model_uri: str | None) -> Any:
    import mlflow
    from mlflow.exceptions import MlflowException

    from hybrid_dialogue import tracking
    from hybrid_dialogue.registry import CHAMPION_URI
    from hybrid_dialogue.registry.pyfunc import HybridDialoguePyfunc

    model_uri = model_uri or CHAMPION_URI
    uri = tracking.tracking_uri()
    tracking.check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    try:
        pyfunc_model = mlflow.pyfunc.load_model(model_uri)
    except MlflowException as error:
        raise PipelineError(
            f"cannot load {model_uri} from the MLflow store {uri}: {error.message}. Register and promote a "
            "model (make run, hybrid-dialogue promote), pass --model-uri, or use --model-dir PATH."
        ) from error
    python_model = pyfunc_model.unwrap_python_model()
    if not isinstance(python_model, HybridDialoguePyfunc):
        raise PipelineError(f"{model_uri} is not a Hybrid Dialogue model ({type(python_model).__name__})")
    return python_model.generator


def _write_lines(lines: list[str], output: Path | None) -> None:
    from hybrid_dialogue.io import write_text

    text = "\n".join(lines) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        write_text(output, text)
        click.echo(f"Wrote {len(lines)} responses to {output}", err=True)
