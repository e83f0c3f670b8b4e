"""Convert dialogue files in other formats into this project's raw JSONL schema.

Formats:

- `jsonl`: this project's schema (see `hybrid_dialogue.data.schema`), validated.
- `csv`: one exchange per row, with configurable customer, agent, intent and id
  columns. Columns named like a group attribute (`gender`, `region`) are kept as
  metadata, as are the columns listed in `ImportOptions.metadata_columns`.
- `bitext`: the Bitext customer-support CSV. `instruction` becomes the
  customer turn, `response` the agent turn. `intent` is kept, and `category`,
  `tags`/`flags` and the entity columns go into metadata. Template
  placeholders such as `{{Order Number}}` in some Bitext releases stay as
  written, because they mark slot values just as the synthetic corpus's values do.
- `twcs`: Customer Support on Twitter, one tweet per row, rebuilt into threads
  (see `hybrid_dialogue.data.twcs`).

A record that cannot be converted or fails the schema goes to a quarantine
file with its line number and reason, and the result counts it. Nothing is
dropped without a count. Problems with the file as a whole (missing file,
unknown format, missing columns, more quarantined records than
`ImportOptions.max_quarantine_share` allows) raise `CorpusImportError`.

A successful import publishes three files together: the dialogues, their
quarantine file and an import manifest with the counts
(`records.ImportManifest`), from which preprocessing learns how many source
records the import rejected.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from hybrid_dialogue.data.records import ImportManifest, file_sha256, import_manifest_path
from hybrid_dialogue.data.schema import GROUP_ATTRIBUTES, Dialogue, RecordError, parse_dialogue
from hybrid_dialogue.io import atomic_path

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "bitext", "twcs")

BITEXT_REQUIRED_COLUMNS = ("instruction", "intent", "response")
# Optional Bitext columns copied into metadata when present and non-empty.
BITEXT_METADATA_COLUMNS = (
    "category", "tags", "flags", "entity_type", "entity_value", "start_offset", "end_offset",
)  # fmt: skip

# Characters of the offending line kept in a quarantine entry.
EXCERPT_CHARS = 300
_EXTRA_FIELDS = "\x00extra"  # DictReader key for fields beyond the header

# Prefix of the directory, under the system's temporary directory, that keeps
# the rejected records of a failed import.
REJECTED_DIR_PREFIX = "hybrid-dialogue-rejected-"


class CorpusImportError(ValueError):
    """An input file that cannot be imported at all; the message names the problem and the fix.

    `rejected_path` is the file that lists the rejected records of a failed
    import, outside the output directory, or None when no record was rejected.
    """

    def __init__(self, message: str, rejected_path: Path | None = None) -> None:
        super().__init__(message)
        self.rejected_path = rejected_path


@dataclass(frozen=True)
class ImportOptions:
    """Column mapping for `csv`, and where to write quarantined records."""

    customer_column: str = "customer"
    agent_column: str = "agent"
    intent_column: str | None = None
    id_column: str | None = None
    metadata_columns: tuple[str, ...] = ()
    # Default: beside the output, named `<output name>.quarantine`, which a
    # `*.jsonl` glob over the raw folder does not pick up.
    quarantine_path: Path | None = None
    # Maximum share of the records read that may be quarantined, above which
    # the import fails. 1.0 accepts any share. The CLI passes
    # preprocess.max_quarantine_share, the limit the preprocess stage applies.
    max_quarantine_share: float = 1.0


@dataclass(frozen=True)
class ImportResult:
    """Counts of an import. `quarantine_path` is None when no record was quarantined."""

    source: Path
    format: str
    output: Path
    manifest_path: Path
    records_read: int
    n_dialogues: int
    n_turns: int
    n_quarantined: int
    quarantine_path: Path | None
    quarantine_reasons: dict[str, int]
    # Input that is valid but forms no dialogue (blank lines, twcs branches), by reason.
    skipped: dict[str, int]
    intents: dict[str, int]


@dataclass(frozen=True)
class Rejection:
    """One input record that could not be converted, as written to the quarantine file."""

    line: int
    reason: str
    detail: str
    excerpt: str = ""


@dataclass
class ReadCounts:
    """Counters that the format readers update while they stream records."""

    records_read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


# A reader yields (line number, decoded record) pairs or `Rejection`s.
ReadItem = tuple[int, dict[str, Any]] | Rejection
Reader = Callable[[Path, ImportOptions, ReadCounts], Iterator[ReadItem]]


def default_quarantine_path(output: Path) -> Path:
    """Return the quarantine file beside `output`: `<output name>.quarantine`."""
    return output.with_name(output.name + ".quarantine")


def import_corpus(src: Path, fmt: str, output: Path, options: ImportOptions | None = None) -> ImportResult:
    """Convert `src` in format `fmt` into the raw JSONL schema at `output`, changing files only on success.

    On success, the dialogues, the quarantine file and the import manifest
    (`records.import_manifest_path(output)`) are staged as temporary files,
    then moved into place with `os.replace`, the dialogues last. Without
    rejected records no quarantine file is written, and one left by an
    earlier import is removed. On failure none of these files changes,
    directories created for them are removed, and the rejected records go to
    a new directory under the system's temporary directory, which the error
    message names.

    Raises `CorpusImportError` for an unknown format, a missing input file, a
    CSV header without the required columns, a CSV that the parser cannot
    read, a file in which no record is valid, or a share of quarantined
    records above `options.max_quarantine_share`. `OSError` from reading or
    writing files passes through.
    """
    options = options or ImportOptions()
    if not 0.0 <= options.max_quarantine_share <= 1.0:
        raise CorpusImportError(
            f"max_quarantine_share = {options.max_quarantine_share!r} is invalid: expected a share in [0, 1]."
        )
    src, output = Path(src), Path(output)
    reader = _reader_for(fmt)
    _check_source(src)
    quarantine_path = options.quarantine_path or default_quarantine_path(output)
    manifest_path = import_manifest_path(output)
    logger.info("Importing %s (format %s) into %s", src, fmt, output)

    counts = ReadCounts()
    rejections: list[Rejection] = []
    created = _missing_directories(output.parent, quarantine_path.parent)
    try:
        with contextlib.ExitStack() as staged:
            # Each atomic_path moves its file into place when the stack closes
            # without an error, in reverse order of entry, so the dialogues go last.
            dialogues_temporary = staged.enter_context(atomic_path(output))
            with dialogues_temporary.open("w", encoding="utf-8", newline="\n") as handle:
                written = _write_dialogues(reader(src, options, counts), handle, rejections)
            _check_import(src, fmt, output, counts, written, rejections, options.max_quarantine_share)

            if rejections:
                _write_rejections(staged.enter_context(atomic_path(quarantine_path)), rejections)
            manifest = _manifest(src, fmt, output, dialogues_temporary, counts, written, rejections, quarantine_path)
            staged.enter_context(atomic_path(manifest_path)).write_text(
                manifest.model_dump_json(indent=2) + "\n", encoding="utf-8"
            )
    except BaseException:
        _remove_empty_directories(created)
        raise
    if not rejections and quarantine_path.exists():
        logger.info("Removing the quarantine file of an earlier import: %s", quarantine_path)
        quarantine_path.unlink()

    result = ImportResult(
        source=src,
        format=fmt,
        output=output,
        manifest_path=manifest_path,
        records_read=counts.records_read,
        n_dialogues=written.n_dialogues,
        n_turns=written.n_turns,
        n_quarantined=len(rejections),
        quarantine_path=quarantine_path if rejections else None,
        quarantine_reasons=manifest.quarantine_reasons,
        skipped=dict(sorted(counts.skipped.items())),
        intents=dict(sorted(written.intents.items())),
    )
    _log_result(result)
    return result


def _check_import(
    src: Path,
    fmt: str,
    output: Path,
    counts: ReadCounts,
    written: _WrittenCounts,
    rejections: list[Rejection],
    max_share: float,
) -> None:
    """Raise `CorpusImportError` when no dialogue was written or too many records were rejected.

    Before raising, the rejected records are saved outside the output
    directory, so that the user can inspect them while the output stays as it was.
    """
    # Same rule as the preprocess stage: quarantined records over records read.
    share = len(rejections) / counts.records_read if counts.records_read else 0.0
    if written.n_dialogues > 0 and share <= max_share:
        return

    rejected_path = _save_rejections_elsewhere(output, rejections) if rejections else None
    if written.n_dialogues == 0:
        raise CorpusImportError(_no_dialogues_message(src, fmt, counts, rejections, rejected_path), rejected_path)
    raise CorpusImportError(
        _too_many_rejected_message(src, counts, rejections, share, max_share, rejected_path), rejected_path
    )


def _manifest(
    src: Path,
    fmt: str,
    output: Path,
    dialogues_file: Path,
    counts: ReadCounts,
    written: _WrittenCounts,
    rejections: list[Rejection],
    quarantine_path: Path,
) -> ImportManifest:
    """Build the import manifest; `dialogues_file` is the staged file whose checksum it records."""
    reasons = Counter(rejection.reason for rejection in rejections)
    return ImportManifest(
        corpus_file=output.name,
        corpus_sha256=file_sha256(dialogues_file),
        source_name=src.name,
        format=fmt,
        records_read=counts.records_read,
        dialogues=written.n_dialogues,
        quarantined=len(rejections),
        quarantine_reasons=dict(sorted(reasons.items())),
        quarantine_file=os.path.relpath(quarantine_path, output.parent) if rejections else None,
    )


def _missing_directories(*directories: Path) -> list[Path]:
    """Return the directories among `directories` and their ancestors that do not exist yet, deepest first."""
    missing: set[Path] = set()
    for directory in directories:
        while not directory.exists() and directory != directory.parent:
            missing.add(directory)
            directory = directory.parent
    return sorted(missing, key=lambda path: len(path.parts), reverse=True)


def _remove_empty_directories(directories: list[Path]) -> None:
    """Remove each of `directories` that exists and is empty, deepest first as given."""
    for directory in directories:
        with contextlib.suppress(OSError):  # not empty, or already gone
            directory.rmdir()


def _save_rejections_elsewhere(output: Path, rejections: list[Rejection]) -> Path:
    """Write the rejected records of a failed import to a new directory under the system's temporary directory.

    `mkdtemp` makes the directory readable by its owner only, which suits
    excerpts that may hold personal data. Returns the file's path.
    """
    directory = Path(tempfile.mkdtemp(prefix=REJECTED_DIR_PREFIX))
    path = directory / default_quarantine_path(output).name
    _write_rejections(path, rejections)
    return path


@dataclass
class _WrittenCounts:
    n_dialogues: int = 0
    n_turns: int = 0
    intents: Counter[str] = field(default_factory=Counter)


def _write_dialogues(items: Iterator[ReadItem], handle: TextIO, rejections: list[Rejection]) -> _WrittenCounts:
    """Validate each record against the schema and write it as one JSON line, or add it to `rejections`."""
    written = _WrittenCounts()
    seen_ids: set[str] = set()
    for item in items:
        if isinstance(item, Rejection):
            rejections.append(item)
            continue

        line, record = item
        try:
            dialogue = parse_dialogue(record)
        except RecordError as error:
            rejections.append(Rejection(line, error.reason, error.detail, record_excerpt(record)))
            continue
        if dialogue.id in seen_ids:
            detail = f"id {dialogue.id!r} appeared earlier"
            rejections.append(Rejection(line, "duplicate_id", detail, record_excerpt(record)))
            continue

        seen_ids.add(dialogue.id)
        handle.write(json.dumps(_json_dict(dialogue), ensure_ascii=False, separators=(",", ":")) + "\n")
        written.n_dialogues += 1
        written.n_turns += len(dialogue.turns)
        written.intents[dialogue.intent or "(none)"] += 1
    return written


def _json_dict(dialogue: Dialogue) -> dict[str, Any]:
    """Return the same dict as `Dialogue.to_json_dict`, built directly.

    `dataclasses.asdict` deep-copies every field, which made it the slowest
    step of a large import.
    """
    return {
        "id": dialogue.id,
        "turns": [{"role": turn.role, "text": turn.text} for turn in dialogue.turns],
        "intent": dialogue.intent,
        "metadata": dialogue.metadata,
    }


def _reader_for(fmt: str) -> Reader:
    # Imported here because the twcs module imports this module's helpers.
    from hybrid_dialogue.data.twcs import read_twcs

    readers = {"jsonl": read_jsonl, "csv": read_csv, "bitext": read_bitext, "twcs": read_twcs}
    if fmt not in readers:
        raise CorpusImportError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return readers[fmt]


def _check_source(src: Path) -> None:
    if not src.exists():
        raise CorpusImportError(f"input file not found: {src}. Check the path.")
    if not src.is_file():
        raise CorpusImportError(f"input path is not a file: {src}. Pass the data file itself, not a folder.")


def read_jsonl(src: Path, options: ImportOptions, counts: ReadCounts) -> Iterator[ReadItem]:
    """Yield each line of a JSONL file as a decoded record, or a `Rejection` for undecodable lines."""
    with src.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if line_number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte order mark
            if not raw.strip():
                counts.skipped["blank_line"] += 1
                continue
            counts.records_read += 1

            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                excerpt = raw[:EXCERPT_CHARS].decode("utf-8", errors="replace")
                yield Rejection(line_number, "invalid_utf8", f"byte {error.start} is not valid UTF-8", excerpt)
                continue

            try:
                record = json.loads(text)
            except json.JSONDecodeError as error:
                yield Rejection(
                    line_number, "invalid_json", f"{error.msg} at column {error.colno}", text[:EXCERPT_CHARS]
                )
                continue
            yield line_number, record


def read_csv(src: Path, options: ImportOptions, counts: ReadCounts) -> Iterator[ReadItem]:
    """Yield one two-turn record per row of a CSV with configurable columns."""
    columns = [options.customer_column, options.agent_column]
    columns += [name for name in (options.intent_column, options.id_column) if name]
    columns += list(options.metadata_columns)
    rows = csv_rows(src, required=columns, fmt="csv", counts=counts)
    header = next(rows)
    metadata_columns = list(options.metadata_columns)
    metadata_columns += [name for name in GROUP_ATTRIBUTES if name in header and name not in metadata_columns]

    for row_index, item in enumerate(rows, start=1):
        if isinstance(item, Rejection):
            yield item
            continue
        line, row = item
        dialogue_id = row[options.id_column] if options.id_column else f"{src.stem}-{row_index:06d}"
        yield line, _exchange(
            dialogue_id,
            customer=row[options.customer_column],
            agent=row[options.agent_column],
            intent=row[options.intent_column] if options.intent_column else "",
            metadata={name: row[name] for name in metadata_columns},
        )


def read_bitext(src: Path, options: ImportOptions, counts: ReadCounts) -> Iterator[ReadItem]:
    """Yield one two-turn record per row of the Bitext customer-support CSV."""
    rows = csv_rows(src, required=BITEXT_REQUIRED_COLUMNS, fmt="bitext", counts=counts)
    header = next(rows)
    metadata_columns = [name for name in BITEXT_METADATA_COLUMNS if name in header]

    for row_index, item in enumerate(rows, start=1):
        if isinstance(item, Rejection):
            yield item
            continue
        line, row = item
        yield line, _exchange(
            f"bitext-{row_index:06d}",
            customer=row["instruction"],
            agent=row["response"],
            intent=row["intent"],
            metadata={name: row[name] for name in metadata_columns},
        )


def csv_rows(src: Path, required: list[str] | tuple[str, ...], fmt: str, counts: ReadCounts) -> Iterator[Any]:
    """Yield the header, then `(line, row)` pairs or `Rejection`s of a CSV file.

    `line` is the physical line where the row starts, which differs from the
    row number when quoted fields span lines. Rows with a wrong field count or
    invalid UTF-8 become rejections. A missing required column raises
    `CorpusImportError` naming it and the columns found.
    """
    with src.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        # strict=True turns a stray quote into an error; the lenient default
        # would silently join the following rows into one field.
        reader = csv.DictReader(handle, restkey=_EXTRA_FIELDS, restval=None, strict=True)
        header = _checked_header(src, reader, required, fmt)
        yield header

        next_line = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise CorpusImportError(
                    f"{src}: the CSV parser failed on the row that starts at line {next_line}: {error}. "
                    "Fix that row (an unterminated quote is a common cause) or export the file again as standard CSV."
                ) from error
            line, next_line = next_line, reader.line_num + 1
            counts.records_read += 1
            rejection = _check_row(row, line, len(header))
            if rejection:
                yield rejection
            else:
                yield line, row


def _checked_header(src: Path, reader: csv.DictReader, required: Any, fmt: str) -> list[str]:
    try:
        header = reader.fieldnames
    except csv.Error as error:
        raise CorpusImportError(f"{src}: the CSV header could not be parsed: {error}.") from error
    if not header:
        raise CorpusImportError(f"{src} is empty: expected a CSV header line with columns {', '.join(required)}.")

    header = list(header)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise CorpusImportError(f"{src}: duplicate column name(s) {', '.join(duplicates)}; rename them and retry.")

    missing = [name for name in required if name not in header]
    if missing:
        found = ", ".join(_shorten(name) for name in header)
        hint = (
            " Set the column names with --customer-column, --agent-column, --intent-column and --id-column."
            if fmt == "csv"
            else " Is the file in another format? Formats: " + ", ".join(FORMATS) + "."
        )
        raise CorpusImportError(
            f"{src} is missing column(s) {', '.join(repr(name) for name in missing)} "
            f"required by format '{fmt}'. Columns found: {found}.{hint}"
        )
    return header


def _check_row(row: dict[str | None, Any], line: int, field_count: int) -> Rejection | None:
    values = [value for key, value in row.items() if key != _EXTRA_FIELDS]
    extra = row.get(_EXTRA_FIELDS) or []
    if extra or any(value is None for value in values):
        actual = sum(value is not None for value in values) + len(extra)
        return Rejection(
            line,
            "wrong_field_count",
            f"expected {field_count} fields, got {actual}",
            record_excerpt([value for value in values if value is not None] + list(extra)),
        )
    try:
        "".join(values).encode("utf-8")
    except UnicodeEncodeError:
        # The file is read with errors="surrogateescape", so invalid bytes
        # arrive as lone surrogates, which UTF-8 cannot encode.
        excerpt = ",".join(values).encode("utf-8", errors="replace").decode("utf-8")[:EXCERPT_CHARS]
        return Rejection(line, "invalid_utf8", "the row contains bytes that are not valid UTF-8", excerpt)
    return None


def _exchange(dialogue_id: str, customer: str, agent: str, intent: str, metadata: dict[str, str]) -> dict[str, Any]:
    """Return a one-exchange record. Empty intent and metadata values become absent."""
    return {
        "id": dialogue_id,
        "turns": [{"role": "customer", "text": customer}, {"role": "agent", "text": agent}],
        "intent": intent.strip() or None,
        "metadata": {name: value for name, value in metadata.items() if value.strip()},
    }


def record_excerpt(record: Any) -> str:
    """Return the start of a record as text, for a quarantine entry."""
    text = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False, default=str)
    return text[:EXCERPT_CHARS]


def _shorten(name: str, limit: int = 40) -> str:
    return repr(name if len(name) <= limit else name[: limit - 3] + "...")


def _write_rejections(path: Path, rejections: list[Rejection]) -> None:
    """Write one JSON object per rejected record: line, reason, detail and excerpt."""
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for rejection in rejections:
            entry = {
                "line": rejection.line,
                "reason": rejection.reason,
                "detail": rejection.detail,
                "excerpt": rejection.excerpt,
            }
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def _no_dialogues_message(
    src: Path, fmt: str, counts: ReadCounts, rejections: list[Rejection], rejected_path: Path | None
) -> str:
    if not rejections:
        return f"{src} contains no dialogues (format {fmt}, {counts.records_read} records read)."
    first = rejections[0]
    return (
        f"none of the {counts.records_read} records in {src} is a valid dialogue in format '{fmt}' "
        f"(first problem: line {first.line}, {first.reason}: {first.detail}). "
        f"The output was left as it was, and the rejected records are listed in {rejected_path}. "
        f"Check --format: the formats are {', '.join(FORMATS)}."
    )


def _too_many_rejected_message(
    src: Path,
    counts: ReadCounts,
    rejections: list[Rejection],
    share: float,
    max_share: float,
    rejected_path: Path | None,
) -> str:
    reasons = Counter(rejection.reason for rejection in rejections)
    listed = ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
    return (
        f"quarantined {len(rejections)} of {counts.records_read} records in {src} ({100 * share:.1f}%), above the "
        f"limit max_quarantine_share = {max_share:g} ({listed}). The output was left as it was. Each rejected "
        f"record is listed with its line and reason in {rejected_path}: fix or remove them, check --format, or "
        "raise the limit (preprocess.max_quarantine_share in params.yaml, or --max-quarantine-share)."
    )


def _log_result(result: ImportResult) -> None:
    logger.info(
        "Imported %d dialogues (%d turns) from %d records of %s",
        result.n_dialogues,
        result.n_turns,
        result.records_read,
        result.source,
    )
    if result.n_quarantined:
        logger.warning(
            "Quarantined %d records (%s) in %s",
            result.n_quarantined,
            ", ".join(f"{reason}: {count}" for reason, count in result.quarantine_reasons.items()),
            result.quarantine_path,
        )
    for reason, count in result.skipped.items():
        logger.info("Skipped %d input records that form no dialogue (%s)", count, reason)
