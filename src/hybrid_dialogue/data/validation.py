"""Great Expectations checks on the processed pairs, with Data Docs HTML.

Uses the GX Core 1.x API with an ephemeral (in-memory) context and pandas
dataframe assets, validated as whole-dataframe batches. Three kinds of batch
are checked:

- `pairs`: every pair of every split: no nulls or empty texts, lengths in
  range, no email, phone or card number left after redaction, unique pair
  ids, known split names.
- `dialogues`: one row per (dialogue id, split): a dialogue id that appears
  twice is in two splits.
- `pairs_<split>`: the pairs of one split: every intent of the corpus occurs.

Data Docs go to a local site. Their failure tables show counts only, never
the offending values, because a value that failed a redaction check is
personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybrid_dialogue.data.dataset import PAIR_COLUMNS, SPLITS
from hybrid_dialogue.data.redaction import CARD, CARD_SHAPE, LEFTOVER_PATTERNS, count_card_numbers
from hybrid_dialogue.data.text import CONTEXT_SEPARATOR
from hybrid_dialogue.io import atomic_directory

logger = logging.getLogger(__name__)

DOCS_SITE_NAME = "hybrid_dialogue"
# Columns searched for personal data. input_text is customer_text and
# context_text joined, so checking those two covers it.
REDACTED_COLUMNS = ("customer_text", "context_text", "agent_text")
CARD_COUNT_COLUMN = "card_numbers"  # added to the `pairs` batch only, never written to the processed data

# The `pairs` batch reports counts only, because the unexpected values of a
# redaction check are personal data. The other batches hold dialogue ids,
# splits and intents, which are safe to show: up to 5 examples each.
_COUNTS_ONLY = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
_WITH_EXAMPLES = {"result_format": "SUMMARY", "partial_unexpected_count": 5}


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating the pairs: one readable line per failed expectation."""

    success: bool
    evaluated: int  # expectations evaluated, over all batches
    failures: tuple[str, ...]
    docs_index: Path  # index.html of the Data Docs site

    def summary(self) -> str:
        return "\n".join(f"  - {failure}" for failure in self.failures)


def validate_pairs(
    pairs: pd.DataFrame, max_message_chars: int, redaction_kinds: Sequence[str], docs_dir: Path
) -> ValidationReport:
    """Validate the pairs of all splits (`PAIR_COLUMNS` plus `split`) and write Data Docs to `docs_dir`.

    `redaction_kinds` are the kinds that cleaning redacted; only those are
    checked for leftovers. The Data Docs directory is replaced as a whole.
    """
    # GX logs hundreds of lines of internal set-up at INFO, some on import;
    # keep its warnings unless the user configured that logger.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx

    intents = sorted(pairs["intent"].unique())
    pair_expectations = _pair_expectations(gx, max_message_chars, redaction_kinds)
    one_split_per_dialogue = gx.expectations.ExpectColumnValuesToBeUnique(
        column="dialogue_id", description="each dialogue in one split"
    )
    batches: list[tuple[str, pd.DataFrame, list[Any], dict]] = [
        ("pairs", _with_card_counts(pairs, redaction_kinds), pair_expectations, _COUNTS_ONLY),
        ("dialogues", pairs[["dialogue_id", "split"]].drop_duplicates(), [one_split_per_dialogue], _WITH_EXAMPLES),
    ]
    for split in SPLITS:
        frame = pairs[pairs["split"] == split]
        batches.append((f"pairs_{split}", frame, _split_expectations(gx, intents), _WITH_EXAMPLES))

    with atomic_directory(docs_dir) as site_dir:
        context = _ephemeral_context(gx, site_dir)
        data_source = context.data_sources.add_pandas("processed")
        failures: list[str] = []
        evaluated = 0
        for name, frame, expectations, result_format in batches:
            result = _run_batch(gx, context, data_source, name, frame, expectations, result_format)
            evaluated += len(result.results)
            failures.extend(_describe_failure(name, item) for item in result.results if not item.success)
        context.build_data_docs(site_names=[DOCS_SITE_NAME])

    logger.info("Great Expectations: %d expectations, %d failed; Data Docs in %s", evaluated, len(failures), docs_dir)
    return ValidationReport(
        success=not failures, evaluated=evaluated, failures=tuple(failures), docs_index=docs_dir / "index.html"
    )


def _ephemeral_context(gx: Any, site_dir: Path) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # Without init_temp_docs_sites=False an ephemeral context adds a second
    # docs site in a temporary directory that nothing removes.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            DOCS_SITE_NAME: {
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir.resolve()),  # GX requires an absolute path
                },
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _run_batch(
    gx: Any, context: Any, data_source: Any, name: str, frame: pd.DataFrame, expectations: list, result_format: dict
) -> Any:
    asset = data_source.add_dataframe_asset(name)
    batch_definition = asset.add_batch_definition_whole_dataframe(name)
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_definition, suite=suite))
    return definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)


def _with_card_counts(pairs: pd.DataFrame, redaction_kinds: Sequence[str]) -> pd.DataFrame:
    if CARD not in redaction_kinds:
        return pairs
    counts = pd.Series(0, index=pairs.index)
    for column in REDACTED_COLUMNS:
        # The RE2 scan of CARD_SHAPE picks the few rows worth the Luhn check in Python.
        candidates = pairs[column].str.contains(CARD_SHAPE).to_numpy(dtype=bool)
        found = [count_card_numbers(text) for text in pairs.loc[candidates, column]]
        counts[candidates] += np.array(found, dtype=np.int64)
    return pairs.assign(**{CARD_COUNT_COLUMN: counts})


def _pair_expectations(gx: Any, max_message_chars: int, redaction_kinds: Sequence[str]) -> list[Any]:
    expect = gx.expectations
    # input_text is the customer message, and the previous agent turn when use_context is on.
    max_input_chars = 2 * max_message_chars + len(CONTEXT_SEPARATOR)
    expectations: list[Any] = [expect.ExpectColumnValuesToNotBeNull(column=column) for column in (*PAIR_COLUMNS, "split")]
    expectations += [
        expect.ExpectColumnValuesToBeUnique(column="pair_id"),
        expect.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        expect.ExpectColumnValueLengthsToBeBetween(column="customer_text", min_value=1, max_value=max_message_chars),
        expect.ExpectColumnValueLengthsToBeBetween(column="agent_text", min_value=1, max_value=max_message_chars),
        expect.ExpectColumnValueLengthsToBeBetween(column="context_text", min_value=0, max_value=max_message_chars),
        expect.ExpectColumnValueLengthsToBeBetween(column="input_text", min_value=1, max_value=max_input_chars),
    ]
    for kind, pattern in LEFTOVER_PATTERNS.items():
        if kind in redaction_kinds:
            expectations += [
                expect.ExpectColumnValuesToNotMatchRegex(column=column, regex=pattern, description=f"no {kind} left")
                for column in REDACTED_COLUMNS
            ]
    if CARD in redaction_kinds:
        expectations.append(
            expect.ExpectColumnValuesToBeBetween(
                column=CARD_COUNT_COLUMN, min_value=0, max_value=0, description="no card number left in any text"
            )
        )
    return expectations


def _split_expectations(gx: Any, intents: list[str]) -> list[Any]:
    return [
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1),
        gx.expectations.ExpectColumnDistinctValuesToContainSet(
            column="intent", value_set=intents, description="every intent occurs in this split"
        ),
    ]


def _describe_failure(batch: str, item: Any) -> str:
    """Return one line that names the batch, the expectation and how much of the data failed it."""
    config = item.expectation_config
    column = config.kwargs.get("column")
    label = f"{batch}: {config.type}" + (f"(column={column!r})" if column else "")
    if config.description:
        label += f" [{config.description}]"
    error = _exception_message(item.exception_info)
    if error is not None:
        return f"{label} raised: {error}"

    result = item.result or {}
    if "unexpected_count" in result:
        line = f"{label} failed on {result['unexpected_count']} of {result.get('element_count')} rows"
        examples = result.get("partial_unexpected_list")
        return line + (f", e.g. {examples}" if examples else "")
    if "missing_count" in result:
        return f"{label} failed: {result['missing_count']} missing, {result.get('partial_missing_list', [])}"
    return f"{label} failed: observed {result.get('observed_value')!r}"


def _exception_message(info: dict | None) -> str | None:
    """Return the message of an exception GX caught while evaluating, or None.

    GX stores either one record or one record per metric, each with
    `raised_exception` and `exception_message`.
    """
    if not info:
        return None
    records = [info, *(value for value in info.values() if isinstance(value, dict))]
    for record in records:
        if record.get("raised_exception"):
            return str(record.get("exception_message"))
    return None
