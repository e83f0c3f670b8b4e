"""Input pipelines of the training stages, and the checks that data, preset and model agree."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import yaml

from hybrid_dialogue.data.dataset import SplitData, load_manifest, load_split, load_tokenizer
from hybrid_dialogue.data.tokenizer import TextTokenizer
from hybrid_dialogue.models.config import Architecture

logger = logging.getLogger(__name__)

DVC_LOCK_FILE = Path("dvc.lock")


class TrainingInputError(ValueError):
    """Training inputs that do not fit together (data, tokenizer, preset, model)."""


@dataclass(frozen=True)
class TrainingData:
    """The processed splits a training stage reads, checked against the model preset."""

    processed_dir: Path
    manifest: dict[str, Any]
    tokenizer: TextTokenizer
    train: SplitData
    validation: SplitData

    @property
    def max_len(self) -> int:
        return int(self.manifest["max_len"])


def load_training_data(processed_dir: str | Path, preset: str, preset_max_len: int) -> TrainingData:
    """Load the train and validation splits and check them against the manifest and the preset.

    Raises `TrainingInputError` when the manifest's `max_len` differs from the
    preset's, or when the tokenizer file does not match the manifest.
    """
    processed_dir = Path(processed_dir)
    manifest = load_manifest(processed_dir)

    data_max_len = int(manifest["max_len"])
    if data_max_len != preset_max_len:
        raise TrainingInputError(
            f"preset {preset} expects max_len {preset_max_len} but {processed_dir} has {data_max_len}: "
            f"set preprocess.max_len to {preset_max_len} and rerun preprocess, or choose another "
            "preset (model.preset)"
        )

    tokenizer = load_tokenizer(processed_dir)
    check_tokenizer_matches_manifest(tokenizer, manifest, processed_dir)

    train = load_split(processed_dir, "train")
    validation = load_split(processed_dir, "validation")
    for name, split in (("train", train), ("validation", validation)):
        if split.input_ids.shape[1] != data_max_len or split.response_ids.shape[1] != data_max_len:
            raise TrainingInputError(
                f"{processed_dir}/{name}.npz has sequences of length {split.input_ids.shape[1]} "
                f"but manifest.json says max_len {data_max_len}: rerun preprocess"
            )
    return TrainingData(processed_dir, manifest, tokenizer, train, validation)


def check_tokenizer_matches_manifest(tokenizer: TextTokenizer, manifest: dict[str, Any], processed_dir: Path) -> None:
    """Raise `TrainingInputError` when tokenizer.json is not the tokenizer the arrays were encoded with."""
    expected_fingerprint = manifest.get("tokenizer_fingerprint")
    expected_vocab = int(manifest["vocab_size"])
    if tokenizer.vocab_size != expected_vocab or tokenizer.fingerprint != expected_fingerprint:
        raise TrainingInputError(
            f"{processed_dir}/tokenizer.json (vocabulary {tokenizer.vocab_size}, fingerprint "
            f"{tokenizer.fingerprint}) does not match manifest.json (vocabulary {expected_vocab}, "
            f"fingerprint {expected_fingerprint}): rerun preprocess to rewrite both"
        )


def check_model_matches_preset(model: Any, expected: Architecture, mixed_precision: str, model_path: str | Path) -> None:
    """Raise `TrainingInputError` when an upstream model has other sizes or precision than this run expects.

    The tokenizer itself is checked when the model is loaded (`models.io.load_model`).
    """
    actual = model.architecture.to_dict()
    wanted = expected.to_dict()
    differences = [f"{key} {actual[key]} (expected {wanted[key]})" for key in wanted if actual.get(key) != wanted[key]]
    if model.mixed_precision != mixed_precision:
        differences.append(f"mixed_precision {model.mixed_precision} (expected {mixed_precision})")
    if differences:
        raise TrainingInputError(
            f"{model_path} does not match the current model preset and data: {', '.join(differences)}. "
            "Rerun the upstream training stages (dvc repro), or restore the model section of params.yaml "
            "they were trained with"
        )


def steps_in_epoch(rows: int, batch_size: int, steps_per_epoch: int | None) -> int:
    """Return the steps of one epoch: full batches of the split, capped at `steps_per_epoch`.

    Raises `TrainingInputError` when the split has fewer rows than one batch.
    """
    full_batches = rows // batch_size
    if full_batches == 0:
        raise TrainingInputError(
            f"the training split has {rows} pairs, fewer than one batch of {batch_size}: "
            "lower batch_size in this stage's section of params.yaml or add data"
        )
    if steps_per_epoch is None:
        return full_batches
    return min(full_batches, steps_per_epoch)


def epoch_dataset(
    split: SplitData,
    batch_size: int,
    steps: int,
    seed: int,
    epoch: int,
    extra_arrays: dict[str, np.ndarray] | None = None,
) -> tf.data.Dataset:
    """Yield `steps` shuffled batches of {"input_ids", "response_ids"}, each (batch_size, max_len) int32.

    The order is a permutation seeded by (seed, epoch), so a run resumed at
    epoch k sees the same batches as an uninterrupted one. Every batch has
    the same shape (the remainder is dropped), so the compiled step never
    retraces. Whole batches are sliced in NumPy and `prefetch` overlaps the
    next batch with the running step. `extra_arrays` are further arrays
    row-aligned with the split (rows, ...), batched under their own keys.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(split))[: steps * batch_size]
    arrays = {
        "input_ids": split.input_ids.astype(np.int32, copy=False),
        "response_ids": split.response_ids.astype(np.int32, copy=False),
        **(extra_arrays or {}),
    }
    batches = {}
    for name, array in arrays.items():
        if len(array) != len(split):
            raise ValueError(f"extra array {name!r} has {len(array)} rows, expected {len(split)} (one per pair)")
        batches[name] = array[order].reshape((steps, batch_size, *array.shape[1:]))
    return tf.data.Dataset.from_tensor_slices(batches).prefetch(tf.data.AUTOTUNE)


def validation_dataset(split: SplitData, batch_size: int, batches: int) -> tf.data.Dataset:
    """Yield the first `batches` full batches of a split, unshuffled, so every epoch is compared on the same pairs."""
    batches = min(batches, len(split) // batch_size)
    rows = batches * batch_size
    shape = (batches, batch_size, split.input_ids.shape[1])
    arrays = {
        "input_ids": split.input_ids[:rows].reshape(shape).astype(np.int32, copy=False),
        "response_ids": split.response_ids[:rows].reshape(shape).astype(np.int32, copy=False),
    }
    return tf.data.Dataset.from_tensor_slices(arrays).prefetch(tf.data.AUTOTUNE)


def dataset_digest(processed_dir: str | Path, lock_file: str | Path = DVC_LOCK_FILE) -> tuple[str, str]:
    """Return (digest, kind) identifying the processed data.

    kind `dvc` is the directory hash that `dvc.lock` records for
    `processed_dir`. Outside a DVC pipeline (tests, a first run before the
    lock exists) it is kind `manifest`: the SHA-256 of manifest.json, which
    names the tokenizer fingerprint and row counts.
    """
    processed_dir = Path(processed_dir)
    lock_path = Path(lock_file)
    if lock_path.is_file():
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs") or []:
                if Path(out.get("path", "")) == processed_dir and out.get("md5"):
                    return str(out["md5"]).removesuffix(".dir"), "dvc"

    manifest_bytes = (processed_dir / "manifest.json").read_bytes()
    return hashlib.sha256(manifest_bytes).hexdigest()[:32], "manifest"
