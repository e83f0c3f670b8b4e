"""The `preprocess` stage: raw dialogue JSONL in, validated and tokenized training pairs out.

Steps: parse every record (quarantining malformed ones), normalise and
redact the text, build (customer message -> agent response) pairs, split by
dialogue stratified by intent, fit the tokenizer on the training split,
encode, validate with Great Expectations, and publish. The processed
directory is written atomically, and only when validation passes. The
quarantine file and the Data Docs are written in any case, because they
explain a failure.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, ValidationInfo, field_validator

from hybrid_dialogue import paths
from hybrid_dialogue.config import StageConfig
from hybrid_dialogue.data.dataset import PAIR_COLUMNS, SPLITS
from hybrid_dialogue.data.pairs import PairSet, SplitError, build_pairs, split_dialogues
from hybrid_dialogue.data.records import ImportManifest, RawCorpus, RawDataError, read_import_manifest, write_quarantine
from hybrid_dialogue.data.text import CONTEXT_SEPARATOR, TextRules
from hybrid_dialogue.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TextTokenizer
from hybrid_dialogue.io import atomic_directory, write_json

logger = logging.getLogger(__name__)

SECTION = "preprocess"
DATA_DOCS_DIRNAME = paths.DATA_DOCS_DIR.name  # under the reports directory
TOKENIZER_FILE = "tokenizer.json"
TEXT_RULES_FILE = "text_rules.json"
MANIFEST_FILE = "manifest.json"
PERCENTILES = (50, 90, 95, 99)
ENCODE_CHUNK = 20_000  # texts per tokenizers call


class PreprocessError(RuntimeError):
    """The stage cannot produce valid training data. The message gives the reason and the fix."""


class PreprocessConfig(StageConfig):
    """The `preprocess` section of `params.yaml`."""

    vocab_size: int = Field(default=2000, ge=100, le=65536, description="Maximum tokenizer vocabulary, in tokens.")
    min_frequency: int = Field(
        default=2, ge=1, le=1000, description="Minimum count of a pair of symbols for the BPE trainer to merge it."
    )
    max_len: int = Field(
        default=100, ge=8, le=1024, description="Token ids per encoded text, with [BOS] and [EOS]; must equal model max_len."
    )
    use_context: bool = Field(default=True, description="Append the previous agent turn to the customer message.")
    validation_fraction: float = Field(default=0.1, gt=0, le=0.4, description="Share of each intent's dialogues.")
    test_fraction: float = Field(default=0.1, gt=0, le=0.4, description="Share of each intent's dialogues.")
    seed: int = Field(default=42, ge=0, description="Seed of the split.")
    max_message_chars: int = Field(
        default=2000, ge=10, le=100_000, description="Maximum turn length in characters; longer turns are quarantined."
    )
    max_quarantine_share: float = Field(
        default=0.05, ge=0, le=1, description="Largest share of raw records that may be quarantined before the stage fails."
    )
    text: TextRules = Field(default_factory=TextRules)

    @field_validator("test_fraction")
    @classmethod
    def _leave_half_for_training(cls, test_fraction: float, info: ValidationInfo) -> float:
        validation_fraction = info.data.get("validation_fraction")
        if validation_fraction is not None and validation_fraction + test_fraction > 0.5:
            raise ValueError(
                f"validation_fraction + test_fraction = {validation_fraction + test_fraction:g} leaves less than "
                "half of the dialogues for training; keep the sum at or below 0.5"
            )
        return test_fraction


@dataclass(frozen=True)
class PreprocessResult:
    """Paths the stage wrote, with the metrics it reported."""

    output_dir: Path
    metrics_path: Path
    quarantine_path: Path
    data_docs_index: Path
    metrics: dict[str, Any]
    seconds: dict[str, float]  # wall time per step

    @property
    def pairs(self) -> dict[str, int]:
        return self.metrics["pairs"]


def run_preprocess(
    raw_dir: str | Path,
    output_dir: str | Path,
    config: PreprocessConfig,
    metrics_path: str | Path,
    reports_dir: str | Path,
    quarantine_path: str | Path,
    progress: bool = False,
) -> PreprocessResult:
    """Turn the raw dialogues in `raw_dir` into the processed dataset in `output_dir`.

    Writes `{split}.parquet`, `{split}.npz`, `tokenizer.json`,
    `text_rules.json` and `manifest.json` to `output_dir`, the metrics JSON
    to `metrics_path`, Data Docs to `reports_dir/data_docs` and the
    quarantined records to `quarantine_path`. Raises `PreprocessError` when
    too many records are malformed, when no pairs remain, when an intent is
    too rare to split, or when validation fails.

    A raw file written by `hybrid-dialogue corpus import` has an import
    manifest beside it. The records that the import rejected then count
    against `config.max_quarantine_share` too, as records of the raw source.
    """
    raw_dir, output_dir, metrics_path = Path(raw_dir), Path(output_dir), Path(metrics_path)
    docs_dir, quarantine_path = Path(reports_dir) / DATA_DOCS_DIRNAME, Path(quarantine_path)
    timer = _StepTimer()

    try:
        corpus = RawCorpus(raw_dir, config.max_message_chars, progress=progress)
        imports = [manifest for path in corpus.files if (manifest := read_import_manifest(path)) is not None]
    except RawDataError as error:
        raise PreprocessError(str(error)) from None
    pair_set = build_pairs(corpus, config.text, config.use_context, config.max_message_chars)
    if corpus.records_read == 0:
        raise PreprocessError(f"the *.jsonl files in {raw_dir} contain no records (only blank lines or nothing)")
    timer.lap("parse and clean")
    quarantine_counts = _publish_quarantine(corpus, pair_set, quarantine_path, config.max_quarantine_share, imports)

    pairs = _assign_splits(pair_set.frame, config)
    frames = {split: pairs[pairs["split"] == split].reset_index(drop=True) for split in SPLITS}
    train = frames["train"]
    tokenizer = TextTokenizer.fit(
        pd.concat([train["input_text"], train["agent_text"]], ignore_index=True), config.vocab_size, config.min_frequency
    )
    arrays = {split: _encode(tokenizer, frame, config.max_len) for split, frame in frames.items()}
    timer.lap("tokenize")

    from hybrid_dialogue.data.validation import validate_pairs  # imports great_expectations (seconds)

    report = validate_pairs(pairs, config.max_message_chars, config.text.redact, docs_dir)
    timer.lap("validate")
    if not report.success:
        raise PreprocessError(
            f"data validation failed, {len(report.failures)} expectation(s):\n{report.summary()}\n"
            f"Details: {report.docs_index}. The processed data was not written."
        )

    metrics = _metrics(corpus, pair_set, quarantine_counts, imports, pairs, arrays, tokenizer, config)
    _write_processed(output_dir, frames, arrays, tokenizer, config)
    write_json(metrics_path, metrics)
    timer.lap("write")
    logger.info(
        "Preprocessed %d records into %s pairs (train/validation/test), vocabulary %d, in %.1f s",
        corpus.records_read, "/".join(str(len(frames[split])) for split in SPLITS), tokenizer.vocab_size, timer.total,
    )
    return PreprocessResult(output_dir, metrics_path, quarantine_path, report.docs_index, metrics, timer.seconds)


def _publish_quarantine(
    corpus: RawCorpus, pair_set: PairSet, path: Path, max_share: float, imports: list[ImportManifest]
) -> dict[str, int]:
    """Write the quarantine file, log its counts and raise when too many records were quarantined.

    The share is (import rejects + preprocess rejects) / raw records, where
    the raw records are the records read here plus those the import
    rejected. Without an import manifest that is the share of this stage alone.
    """
    quarantined = corpus.quarantined + pair_set.quarantined
    write_quarantine(quarantined, path)
    counts: dict[str, int] = {}
    for record in quarantined:
        counts[record.reason] = counts.get(record.reason, 0) + 1
    counts = dict(sorted(counts.items()))

    import_rejected = sum(manifest.quarantined for manifest in imports)
    raw_records = corpus.records_read + import_rejected
    total = len(quarantined) + import_rejected
    share = total / raw_records if raw_records else 0.0
    listed = ", ".join(f"{reason} {count}" for reason, count in counts.items())
    if quarantined:
        stage_share = len(quarantined) / corpus.records_read
        logger.warning("Quarantined %d of %d records (%.2f%%): %s; see %s",
                       len(quarantined), corpus.records_read, 100 * stage_share, listed, path)
    if import_rejected:
        logger.info("The import rejected %d more records, so %d of %d raw records (%.2f%%) are quarantined in all",
                    import_rejected, total, raw_records, 100 * share)

    if share > max_share:
        raise PreprocessError(_too_many_quarantined(corpus, len(quarantined), listed, imports, share, max_share, path))
    return counts


def _too_many_quarantined(
    corpus: RawCorpus,
    n_quarantined: int,
    listed: str,
    imports: list[ImportManifest],
    share: float,
    max_share: float,
    path: Path,
) -> str:
    """Return the error for a quarantined share above the limit, naming the import's count when there is one."""
    import_rejected = sum(manifest.quarantined for manifest in imports)
    if not import_rejected:
        return (
            f"quarantined {n_quarantined} of {corpus.records_read} records ({100 * share:.1f}%), above "
            f"preprocess.max_quarantine_share = {max_share:g} ({listed}). Each rejected record is listed with "
            f"its file, line and reason in {path}: fix or remove them, or raise max_quarantine_share."
        )

    # The manifests store their quarantine file relative to the raw directory they sit in.
    import_lists = ", ".join(
        str(corpus.raw_dir / manifest.quarantine_file) for manifest in imports if manifest.quarantine_file
    )
    reasons = f"{listed}, " if listed else ""
    return (
        f"quarantined {n_quarantined + import_rejected} of {corpus.records_read + import_rejected} raw records "
        f"({100 * share:.1f}%), above preprocess.max_quarantine_share = {max_share:g}: the import rejected "
        f"{import_rejected} (listed in {import_lists}) and preprocessing {n_quarantined} ({reasons}listed with file, "
        f"line and reason in {path}). Fix or remove those records in the source and import it again, or raise "
        "preprocess.max_quarantine_share in params.yaml."
    )


def _assign_splits(frame: pd.DataFrame, config: PreprocessConfig) -> pd.DataFrame:
    if frame.empty:
        raise PreprocessError(
            "no (customer -> agent) pairs in the raw data: every pair needs a customer turn followed by an agent "
            "turn. Check the roles in the raw files."
        )
    dialogue_intents = frame.drop_duplicates("dialogue_id").set_index("dialogue_id")["intent"]
    try:
        splits = split_dialogues(dialogue_intents, config.validation_fraction, config.test_fraction, config.seed)
    except SplitError as error:
        raise PreprocessError(str(error)) from None
    return frame.assign(split=frame["dialogue_id"].map(splits))


def _encode(tokenizer: TextTokenizer, frame: pd.DataFrame, max_len: int) -> dict[str, np.ndarray]:
    input_ids, input_truncated = _encode_column(tokenizer, frame["input_text"], max_len)
    response_ids, response_truncated = _encode_column(tokenizer, frame["agent_text"], max_len)
    return {
        "input_ids": input_ids,  # (pairs, max_len) int32
        "response_ids": response_ids,  # (pairs, max_len) int32
        "input_truncated": input_truncated,  # (pairs,) bool, for the metrics only
        "response_truncated": response_truncated,
    }


def _encode_column(tokenizer: TextTokenizer, texts: pd.Series, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Encode each distinct text once, in chunks, and spread the rows back to every occurrence.

    Agent replies repeat a lot. One `tokenizers` encoding also stores tokens
    and offsets besides the ids, so chunks bound the memory of a large corpus.
    """
    codes, distinct = pd.factorize(texts)  # codes: (rows,) index into distinct
    ids = np.empty((len(distinct), max_len), dtype=np.int32)
    truncated = np.empty(len(distinct), dtype=bool)
    for start in range(0, len(distinct), ENCODE_CHUNK):
        chunk = distinct[start : start + ENCODE_CHUNK].tolist()
        ids[start : start + len(chunk)], truncated[start : start + len(chunk)] = tokenizer.encode_batch(chunk, max_len)
    return ids[codes], truncated[codes]


def _write_processed(
    output_dir: Path,
    frames: dict[str, pd.DataFrame],
    arrays: dict[str, dict[str, np.ndarray]],
    tokenizer: TextTokenizer,
    config: PreprocessConfig,
) -> None:
    with atomic_directory(output_dir) as directory:
        for split in SPLITS:
            frames[split].loc[:, list(PAIR_COLUMNS)].to_parquet(directory / f"{split}.parquet", index=False)
            np.savez(
                directory / f"{split}.npz",
                input_ids=arrays[split]["input_ids"],
                response_ids=arrays[split]["response_ids"],
            )
        tokenizer.save(directory / TOKENIZER_FILE)
        write_json(directory / TEXT_RULES_FILE, config.text.model_dump(mode="json"))
        write_json(
            directory / MANIFEST_FILE,
            {
                "max_len": config.max_len,
                "vocab_size": tokenizer.vocab_size,
                "tokenizer_fingerprint": tokenizer.fingerprint,
                "rows": {split: len(frames[split]) for split in SPLITS},
                "use_context": config.use_context,
                "context_separator": CONTEXT_SEPARATOR,
                "max_message_chars": config.max_message_chars,
                "intents": sorted(frames["train"]["intent"].unique().tolist()),
                "preprocess": config.model_dump(mode="json"),
            },
        )


def _metrics(
    corpus: RawCorpus,
    pair_set: PairSet,
    quarantine_counts: dict[str, int],
    imports: list[ImportManifest],
    pairs: pd.DataFrame,
    arrays: dict[str, dict[str, np.ndarray]],
    tokenizer: TextTokenizer,
    config: PreprocessConfig,
) -> dict[str, Any]:
    """Build `metrics/preprocess.json`: numbers only, so that `dvc metrics diff` can compare runs.

    `records` gains `import_quarantined` and `total_quarantined_share` (over
    the raw source records) only when the raw data came from an import.
    """
    input_lengths = np.concatenate([(arrays[split]["input_ids"] != PAD_ID).sum(axis=1) for split in SPLITS])
    response_lengths = np.concatenate([(arrays[split]["response_ids"] != PAD_ID).sum(axis=1) for split in SPLITS])
    by_split = pairs.groupby("split")
    quarantined = sum(quarantine_counts.values())
    records = {
        "read": corpus.records_read,
        "quarantined": quarantined,
        "quarantined_share": round(quarantined / corpus.records_read, 6) if corpus.records_read else 0.0,
    }
    if imports:
        import_quarantined = sum(manifest.quarantined for manifest in imports)
        raw_records = corpus.records_read + import_quarantined
        records["import_quarantined"] = import_quarantined
        records["total_quarantined_share"] = round((quarantined + import_quarantined) / raw_records, 6)
    return {
        "pairs": {split: len(arrays[split]["input_ids"]) for split in SPLITS} | {"total": len(pairs)},
        "dialogues": {split: int(count) for split, count in by_split["dialogue_id"].nunique().items()}
        | {"without_pairs": pair_set.dialogues_without_pairs},
        "records": records,
        "quarantine": quarantine_counts,
        "turns": {
            "unpaired_agent": pair_set.unpaired_agent_turns,
            "unanswered_customer": pair_set.unanswered_customer_turns,
            "customer_cut_for_length": pair_set.customer_turns_cut,
        },
        "redactions": pair_set.redactions.as_dict(),
        "intents": int(pairs["intent"].nunique()),
        "vocab_size": tokenizer.vocab_size,
        "max_len": config.max_len,
        "unknown_token_rate": {
            split: _unknown_rate(arrays[split]["input_ids"], arrays[split]["response_ids"]) for split in SPLITS
        },
        "truncation_rate": {
            "input": {split: _mean(arrays[split]["input_truncated"]) for split in SPLITS},
            "response": {split: _mean(arrays[split]["response_truncated"]) for split in SPLITS},
        },
        "length_percentiles": {
            "input_tokens": _percentiles(input_lengths),
            "response_tokens": _percentiles(response_lengths),
            "input_chars": _percentiles(pairs["input_text"].str.len().to_numpy()),
            "response_chars": _percentiles(pairs["agent_text"].str.len().to_numpy()),
        },
    }


def _unknown_rate(*id_arrays: np.ndarray) -> float:
    """Return the share of `[UNK]` among the text tokens (not `[PAD]`, `[BOS]`, `[EOS]`) of the arrays."""
    unknown = sum(int((ids == UNK_ID).sum()) for ids in id_arrays)
    text_tokens = sum(int(((ids != PAD_ID) & (ids != BOS_ID) & (ids != EOS_ID)).sum()) for ids in id_arrays)
    return round(unknown / text_tokens, 6) if text_tokens else 0.0


def _mean(flags: np.ndarray) -> float:
    return round(float(flags.mean()), 6) if len(flags) else 0.0


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    summary = {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
    summary["max"] = float(values.max())
    return summary


class _StepTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self._last, 3)
        self._last = now
        # ru_maxrss is the peak of the whole process so far, in KiB on Linux and bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = peak / 1024**2 if sys.platform == "darwin" else peak / 1024
        logger.info("%s took %.1f s (peak memory so far %.0f MiB)", step, self.seconds[step], peak_mib)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())
