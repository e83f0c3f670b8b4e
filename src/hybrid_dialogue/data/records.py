"""Reading raw dialogue JSONL files, with a quarantine for records that cannot be used.

Every non-blank line of every `*.jsonl` file in the raw directory is either
yielded as a `Dialogue` or recorded as a `QuarantinedRecord` with a reason,
the file, the line number and the dialogue id where one could be read. Lines
are read as bytes and decoded one at a time, so one line of invalid UTF-8
costs that line only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from hybrid_dialogue.data.schema import Dialogue, RecordError, parse_dialogue
from hybrid_dialogue.io import atomic_path

logger = logging.getLogger(__name__)

# Quarantine reasons added here; the schema's own reasons come from `RecordError`.
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
DUPLICATE_ID = "duplicate_id"

_UTF8_BOM = b"\xef\xbb\xbf"

# `hybrid-dialogue corpus import` writes its counts beside the JSONL file it
# publishes, as `<file name>.import.json`, which the `*.jsonl` glob skips.
IMPORT_MANIFEST_SUFFIX = ".import.json"


class RawDataError(ValueError):
    """A raw data directory that cannot be read at all."""


@dataclass(frozen=True)
class QuarantinedRecord:
    """One rejected record: where it is and why it was rejected (without its text, which may hold personal data)."""

    file: str
    line: int
    reason: str
    detail: str
    dialogue_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class ImportManifest(BaseModel):
    """Counts of the import that wrote a raw JSONL file, stored beside that file.

    Preprocessing adds `quarantined` to its own rejections, so that
    preprocess.max_quarantine_share bounds the share of source records that
    the import and preprocessing drop together.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus_file: str = Field(description="Name of the JSONL file, in the manifest's directory.")
    corpus_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the JSONL file as written.")
    source_name: str = Field(description="File name of the imported source.")
    format: str
    records_read: int = Field(ge=0, description="Non-blank records in the source.")
    dialogues: int = Field(ge=0, description="Records written to corpus_file.")
    quarantined: int = Field(ge=0, description="Source records that the import rejected.")
    quarantine_reasons: dict[str, int]
    quarantine_file: str | None = Field(
        description="The import's quarantine file, relative to the manifest's directory; None without rejections."
    )


def import_manifest_path(corpus_file: Path) -> Path:
    """Return the path of the import manifest that belongs to `corpus_file`."""
    return corpus_file.with_name(corpus_file.name + IMPORT_MANIFEST_SUFFIX)


def read_import_manifest(corpus_file: Path) -> ImportManifest | None:
    """Return the import manifest of `corpus_file`, or None when the file was not imported.

    Raises `RawDataError` when the manifest is invalid or describes another
    version of `corpus_file` (its SHA-256 differs), because its counts would
    then be wrong.
    """
    path = import_manifest_path(corpus_file)
    if not path.exists():
        return None
    try:
        manifest = ImportManifest.model_validate_json(path.read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the whole file)"
        raise RawDataError(
            f"{path} is not a valid import manifest ({error.error_count()} problem(s), first: {field}: "
            f"{first['msg']}). Import the source again with `hybrid-dialogue corpus import`, or delete {path}."
        ) from None
    if manifest.corpus_sha256 != file_sha256(corpus_file):
        raise RawDataError(
            f"{path} describes another version of {corpus_file.name}: its SHA-256 differs, so the file changed "
            f"after the import wrote it. Import the source again with `hybrid-dialogue corpus import`, or delete "
            f"{path} so that only the records rejected by preprocessing count against max_quarantine_share."
        )
    return manifest


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class RawCorpus:
    """The records of a raw directory, parsed one line at a time while iterating.

    Iterating yields `(dialogue, file name, line number)` for each valid
    record and appends the others to `quarantined`; the counters are complete
    once iteration ends. Streaming keeps only one record in memory at a time.
    """

    def __init__(self, raw_dir: Path, max_turn_chars: int, progress: bool = False) -> None:
        self.files = raw_files(raw_dir)
        self.raw_dir = raw_dir
        self.max_turn_chars = max_turn_chars
        self.progress = progress
        self.quarantined: list[QuarantinedRecord] = []
        self.records_read = 0  # non-blank lines
        self.blank_lines = 0

    def quarantine_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(record.reason for record in self.quarantined).items()))

    def __iter__(self) -> Iterator[tuple[Dialogue, str, int]]:
        """Parse every line, quarantining the records that fail.

        Reasons: `invalid_utf8`, `invalid_json`, `duplicate_id` (a later
        record with an id seen before), and the schema's reasons from
        `parse_dialogue` (`missing_turns`, `unknown_role`, `turn_too_long`, ...).
        """
        seen_ids: set[str] = set()
        total_bytes = sum(path.stat().st_size for path in self.files)
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="preprocess", disable=not self.progress) as bar:
            for path in self.files:
                for line_number, raw_line in _numbered_lines(path, bar):
                    if not raw_line.strip():
                        self.blank_lines += 1
                        continue
                    self.records_read += 1
                    if line_number == 1:
                        raw_line = raw_line.removeprefix(_UTF8_BOM)  # written by some Windows tools
                    try:
                        dialogue = _parse_line(raw_line, self.max_turn_chars)
                    except _Rejected as rejected:
                        self.quarantined.append(
                            QuarantinedRecord(
                                path.name, line_number, rejected.reason, rejected.detail, rejected.dialogue_id
                            )
                        )
                        continue
                    if dialogue.id in seen_ids:
                        detail = f"id {dialogue.id!r} appeared earlier"
                        self.quarantined.append(
                            QuarantinedRecord(path.name, line_number, DUPLICATE_ID, detail, dialogue.id)
                        )
                        continue
                    seen_ids.add(dialogue.id)
                    yield dialogue, path.name, line_number

        if self.blank_lines:
            logger.info("Skipped %d blank lines in %s", self.blank_lines, self.raw_dir)


def raw_files(raw_dir: Path) -> list[Path]:
    """Return the `*.jsonl` files of `raw_dir` in name order, or raise `RawDataError`."""
    if not raw_dir.exists():
        raise RawDataError(
            f"raw data directory not found: {raw_dir}. Make the default corpus with `hybrid-dialogue corpus synth`, "
            "or import your own with `hybrid-dialogue corpus import`."
        )
    if not raw_dir.is_dir():
        raise RawDataError(f"{raw_dir} is not a directory: pass the directory that contains the *.jsonl files")
    files = sorted(raw_dir.glob("*.jsonl"))
    if not files:
        raise RawDataError(
            f"no *.jsonl files in {raw_dir}. Make the default corpus with `hybrid-dialogue corpus synth`, "
            "or import your own with `hybrid-dialogue corpus import`."
        )
    return files


class _Rejected(Exception):
    def __init__(self, reason: str, detail: str, dialogue_id: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.dialogue_id = dialogue_id


def _numbered_lines(path: Path, bar: tqdm) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for line_number, raw_line in enumerate(handle, start=1):
            bar.update(len(raw_line))
            yield line_number, raw_line


def _parse_line(raw_line: bytes, max_turn_chars: int) -> Dialogue:
    try:
        line = raw_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _Rejected(INVALID_UTF8, f"invalid UTF-8 byte at offset {error.start}") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _Rejected(INVALID_JSON, f"{error.msg} at column {error.colno}") from None
    try:
        return parse_dialogue(record, max_turn_chars=max_turn_chars)
    except RecordError as error:
        dialogue_id = record.get("id") if isinstance(record, dict) else None
        raise _Rejected(error.reason, error.detail, dialogue_id if isinstance(dialogue_id, str) else None) from None


def write_quarantine(records: list[QuarantinedRecord], path: Path) -> None:
    """Write one JSON object per quarantined record, atomically; an empty file when there are none."""
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.to_json() + "\n")
