"""`hybrid-dialogue corpus ...`: make the default corpus or import your own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click
from click.core import ParameterSource

from hybrid_dialogue import paths
from hybrid_dialogue.cli.main import PipelineError, cli

CSV_ONLY_OPTIONS = ("customer_column", "agent_column", "intent_column", "id_column", "metadata_column")


def _params_option(help_text: str) -> Callable[[Callable], Callable]:
    """Return the `--params PATH` option (stored as `params_path`) with `help_text`."""
    return click.option(
        "--params",
        "params_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=paths.PARAMS_FILE,
        show_default=True,
        help=help_text,
    )


@cli.group()
def corpus() -> None:
    """Make the default synthetic corpus or import dialogues from other formats."""


@corpus.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=paths.RAW_CORPUS,
    show_default=True,
    help="JSONL file to write.",
)
@_params_option("Parameter file whose `corpus` section configures the corpus.")
@click.option("--n-dialogues", type=int, default=None, help="Number of dialogues, overriding corpus.n_dialogues.")
@click.option("--seed", type=int, default=None, help="Random seed, overriding corpus.seed.")
def synth(output: Path, params_path: Path, n_dialogues: int | None, seed: int | None) -> None:
    """Generate the synthetic customer-support corpus (100,000 dialogues by default).

    The same parameters always give byte-identical output, so `data.dvc` can
    pin the default corpus. Overriding --n-dialogues or --seed makes a
    different corpus than the one `data.dvc` records.
    """
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.synth import CorpusConfig, synthesize_corpus

    overrides = {key: value for key, value in (("n_dialogues", n_dialogues), ("seed", seed)) if value is not None}
    config = load_section(CorpusConfig, "corpus", params_path, overrides)
    try:
        result = synthesize_corpus(config, output)
    except OSError as error:
        raise PipelineError(f"could not write {output}: {error}") from error

    click.echo(
        f"Wrote {result.n_dialogues:,} dialogues ({result.n_turns:,} turns) to {output} in {result.seconds:.1f} s."
    )
    click.echo(f"sha256: {result.sha256}")
    if config.bias.enabled:
        affected = config.bias.group_value
        click.echo(
            f"Injected bias: {result.curt_share(affected):.1%} of agent replies to "
            f"{config.bias.group_attribute}={affected} are curt."
        )


@corpus.command("import")
@click.argument("src", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "bitext", "twcs"]),
    required=True,
    help="Layout of SRC: jsonl (this project's schema), csv (one exchange per row), "
    "bitext (Bitext customer-support CSV) or twcs (Customer Support on Twitter CSV).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=paths.RAW_CORPUS,
    show_default=True,
    help="JSONL file to write.",
)
@click.option(
    "--quarantine",
    "quarantine_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File listing the rejected records with line number and reason "
    "[default: OUTPUT with '.quarantine' appended].",
)
@click.option("--customer-column", default="customer", show_default=True, help="csv: column with the customer message.")
@click.option("--agent-column", default="agent", show_default=True, help="csv: column with the agent response.")
@click.option("--intent-column", default=None, help="csv: column with the intent label [default: no intent].")
@click.option(
    "--id-column", default=None, help="csv: column with a unique dialogue id [default: file name + row number]."
)
@click.option(
    "--metadata-column",
    multiple=True,
    help="csv: extra column to keep as customer metadata; repeat for several. "
    "Columns named gender or region are always kept.",
)
@_params_option("Parameter file whose preprocess.max_quarantine_share sets the maximum share of malformed records.")
@click.option(
    "--max-quarantine-share",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Maximum share (0 to 1) of the records read that may be quarantined "
    "[default: preprocess.max_quarantine_share of --params].",
)
def import_(
    src: Path,
    fmt: str,
    output: Path,
    quarantine_path: Path | None,
    customer_column: str,
    agent_column: str,
    intent_column: str | None,
    id_column: str | None,
    metadata_column: tuple[str, ...],
    params_path: Path,
    max_quarantine_share: float | None,
) -> None:
    """Convert SRC into this project's dialogue JSONL.

    Malformed records go to the quarantine file with their line number and
    reason, and the command reports how many. OUTPUT.import.json records the
    counts, so that preprocessing can apply preprocess.max_quarantine_share
    to the records that both steps reject. The import fails when the file is
    missing, lacks a required column, has no valid record, or has a larger
    share of malformed records than preprocess.max_quarantine_share. It then
    leaves OUTPUT, its quarantine file and OUTPUT.import.json as they were,
    and lists the rejected records in a new directory under the system's
    temporary directory, which the error names.

    \b
    Examples:
      hybrid-dialogue corpus import --format bitext bitext.csv
      hybrid-dialogue corpus import --format csv chats.csv \\
          --customer-column question --agent-column answer --intent-column topic
    """
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.importers import CorpusImportError, ImportOptions, import_corpus
    from hybrid_dialogue.data.preprocess import SECTION, PreprocessConfig

    context = click.get_current_context()
    if fmt != "csv":
        column_options = [
            name for name in CSV_ONLY_OPTIONS if context.get_parameter_source(name) != ParameterSource.DEFAULT
        ]
        if column_options:
            flags = ", ".join("--" + name.replace("_", "-") for name in column_options)
            raise click.UsageError(f"{flags}: column options are valid only with --format csv, not {fmt}.")

    # By default the limit comes from the preprocess section, so that an
    # import the preprocess stage would reject fails here, before data.dvc changes.
    preprocess_limit = None
    if max_quarantine_share is None or Path(params_path).is_file():
        preprocess_limit = load_section(PreprocessConfig, SECTION, params_path).max_quarantine_share
    if max_quarantine_share is None:
        max_quarantine_share = preprocess_limit
    options = ImportOptions(
        customer_column=customer_column,
        agent_column=agent_column,
        intent_column=intent_column,
        id_column=id_column,
        metadata_columns=metadata_column,
        quarantine_path=quarantine_path,
        max_quarantine_share=max_quarantine_share,
    )
    try:
        result = import_corpus(src, fmt, output, options)
    except CorpusImportError as error:
        raise PipelineError(str(error)) from error
    except OSError as error:
        raise PipelineError(f"could not import {src}: {error}") from error

    click.echo(
        f"Imported {result.n_dialogues:,} dialogues ({result.n_turns:,} turns, {len(result.intents)} intents) "
        f"from {result.records_read:,} records into {output}."
    )
    if result.n_quarantined:
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in result.quarantine_reasons.items())
        click.echo(f"Quarantined {result.n_quarantined:,} malformed records ({reasons}): see {result.quarantine_path}.")
    for reason, count in result.skipped.items():
        click.echo(f"Skipped {count:,} records that form no dialogue ({reason}).")

    # Preprocess applies its own limit to the import's rejects plus its own.
    share = result.n_quarantined / result.records_read if result.records_read else 0.0
    if preprocess_limit is not None and share > preprocess_limit:
        click.echo(
            f"Warning: {share:.1%} of the records were quarantined, over preprocess.max_quarantine_share "
            f"({preprocess_limit:.1%}) in {params_path}, so preprocess will fail. Raise that key or fix the "
            "records.",
            err=True,
        )


@corpus.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=paths.RAW_CORPUS)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def stats(path: Path, as_json: bool) -> None:
    """Count dialogues, turns, intents and customer groups of a JSONL corpus (default: the raw corpus).

    For each group (gender, region) it also reports the share of curt agent
    replies, which shows the bias injected into the synthetic corpus.
    """
    from hybrid_dialogue.data.corpus_stats import corpus_stats, format_stats

    try:
        counts = corpus_stats(path)
    except (FileNotFoundError, OSError) as error:
        raise PipelineError(str(error)) from error
    click.echo(json.dumps(counts.to_dict(), indent=2) if as_json else format_stats(counts))
