"""The processed dataset that `preprocess` writes and every later stage reads.

Layout of `data/processed/`:

- `tokenizer.json`: the fitted `TextTokenizer`.
- `{split}.parquet` for split in `train`, `validation`, `test`: one row per
  (customer message -> agent response) pair, with the columns in
  `PAIR_COLUMNS`. Texts are normalised and redacted.
- `{split}.npz`: `input_ids` and `response_ids`, int32 arrays of shape
  (rows, max_len), row-aligned with the parquet file. Each row is
  `[BOS] tokens [EOS] [PAD]...`.
- `manifest.json`: `max_len`, `vocab_size`, `tokenizer_fingerprint` and the
  row count of each split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybrid_dialogue.data.tokenizer import TextTokenizer

SPLITS = ("train", "validation", "test")

PAIR_COLUMNS = (
    "pair_id",  # "<dialogue id>:<turn index of the agent response>"
    "dialogue_id",
    "turn_index",
    "intent",  # "" when the corpus has no intents
    "customer_text",  # the customer message alone
    "context_text",  # the previous agent turn, or "" (first exchange)
    "input_text",  # what the encoder reads: context and message, as configured
    "agent_text",  # the reference agent response
    "customer_name",  # "" when unknown
    "gender",  # group attributes, "" when unknown
    "region",
)


class DatasetError(FileNotFoundError):
    """Processed data that is missing or inconsistent with its manifest."""


@dataclass(frozen=True)
class SplitData:
    """One split: pair metadata and the token arrays of the same rows."""

    frame: pd.DataFrame
    input_ids: np.ndarray  # (rows, max_len) int32
    response_ids: np.ndarray  # (rows, max_len) int32

    def __len__(self) -> int:
        return len(self.frame)


def load_manifest(processed_dir: str | Path) -> dict:
    path = Path(processed_dir) / "manifest.json"
    if not path.is_file():
        raise DatasetError(f"{path} not found. Run `dvc repro preprocess` (or `hybrid-dialogue preprocess`) first.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_split(processed_dir: str | Path, split: str) -> SplitData:
    """Load one split and check that its parquet and npz files agree."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    processed_dir = Path(processed_dir)
    parquet_path = processed_dir / f"{split}.parquet"
    arrays_path = processed_dir / f"{split}.npz"
    for path in (parquet_path, arrays_path):
        if not path.is_file():
            raise DatasetError(f"{path} not found. Run `dvc repro preprocess` first.")

    frame = pd.read_parquet(parquet_path)
    with np.load(arrays_path) as arrays:
        input_ids = arrays["input_ids"]
        response_ids = arrays["response_ids"]
    if not (len(frame) == len(input_ids) == len(response_ids)):
        raise DatasetError(
            f"{processed_dir}: {split} has {len(frame)} pairs but {len(input_ids)} token rows; "
            "rerun `dvc repro preprocess`"
        )
    return SplitData(frame=frame, input_ids=input_ids, response_ids=response_ids)


def load_tokenizer(processed_dir: str | Path) -> TextTokenizer:
    return TextTokenizer.load(Path(processed_dir) / "tokenizer.json")
