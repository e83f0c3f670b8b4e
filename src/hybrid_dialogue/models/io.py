"""Build, save and load `HybridDialogueModel` files (`.keras`), checking the tokenizer on load."""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Protocol

import keras

from hybrid_dialogue.io import atomic_path
from hybrid_dialogue.models.config import Architecture
from hybrid_dialogue.models.hybrid import HybridDialogueModel

logger = logging.getLogger(__name__)

# The name under which Keras registers HybridDialogueModel, as written in config.json.
MODEL_REGISTERED_NAME = keras.saving.get_registered_name(HybridDialogueModel)


class ModelFileError(ValueError):
    """A model file that is missing, corrupt, or contains something other than a `HybridDialogueModel`."""


class TokenizerMismatchError(ValueError):
    """A tokenizer whose vocabulary differs from the one a model was built for."""


class Tokenizer(Protocol):
    """Tokenizer interface that `check_tokenizer` reads, as provided by `TextTokenizer`."""

    @property
    def fingerprint(self) -> str: ...

    @property
    def vocab_size(self) -> int: ...


def build_model(
    arch: Architecture,
    tokenizer_fingerprint: str,
    seed: int = 0,
    mixed_precision: str = "none",
    gumbel_temperature: float = 1.0,
) -> HybridDialogueModel:
    """Build an untrained model with weights initialised from `seed`.

    Sets Keras's global random seed (Python, NumPy and TensorFlow) to `seed`
    first, so the same seed gives the same initial weights.
    """
    keras.utils.set_random_seed(seed)
    model = HybridDialogueModel(
        arch,
        tokenizer_fingerprint,
        seed=seed,
        mixed_precision=mixed_precision,
        gumbel_temperature=gumbel_temperature,
    )
    logger.info(
        "built model: vocab %s, max_len %s, latent %s, %s parameters, precision %s",
        arch.vocab_size,
        arch.max_len,
        arch.latent_dim,
        model.count_params(),
        mixed_precision,
    )
    return model


def save_model(model: HybridDialogueModel, path: str | Path) -> None:
    """Save `model` to `path` (a `.keras` file) atomically: readers never see a partial file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"model path must end with .keras, got {path}")

    with atomic_path(path) as temporary:
        # Keras insists on the .keras suffix, so save under it and move the
        # result onto the temporary path that atomic_path publishes.
        keras_temporary = temporary.with_name(temporary.name + ".keras")
        try:
            model.save(keras_temporary)
            os.replace(keras_temporary, temporary)
        finally:
            keras_temporary.unlink(missing_ok=True)
    logger.info("saved model to %s", path)


def load_model(path: str | Path, tokenizer: Tokenizer | None = None) -> HybridDialogueModel:
    """Load a model saved by `save_model`, without its optimizer state.

    Raises `ModelFileError` when the file is missing, corrupt or contains
    another kind of model, and `TokenizerMismatchError` when `tokenizer` is given and
    is not the one the model was built for.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"model file not found: {path}. Run the pipeline stage that writes it "
            "(`dvc repro`), or pass the path of an existing .keras file."
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a valid .keras file (not a zip archive: truncated or overwritten?). "
            "Delete it and rerun the stage that writes it."
        )

    try:
        model = _rebuild_and_load_weights(path)
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as error:
        raise ModelFileError(
            f"failed to load model from {path}: {error}. The file is corrupt or was written by "
            "incompatible code. Rerun the stage that writes it."
        ) from error

    if tokenizer is not None:
        check_tokenizer(model, tokenizer, source=str(path))
    return model


def _rebuild_and_load_weights(path: Path) -> HybridDialogueModel:
    """Build the model from the archive's config.json, then read its weights.

    `keras.saving.load_model` is not used: it builds layers inside Keras's
    object-sharing scope, where `Bidirectional` serialises its inner LSTM and
    Keras (3.15) matches objects by `id()`. When a garbage-collected LSTM's id
    is reused by the next one, the forward layer comes back as the previous
    backward layer, and loading fails now and then with "Forward layer and
    backward layer should have different `go_backwards` value". Building the
    model from our own config (plain JSON, so nothing is deserialised unsafely)
    and loading the weights alone has no such scope. The optimizer state is
    not read.
    """
    with zipfile.ZipFile(path) as archive:
        saved = json.loads(archive.read("config.json"))

    if saved.get("registered_name") != MODEL_REGISTERED_NAME:
        found = saved.get("registered_name") or saved.get("class_name")
        raise ModelFileError(f"{path} contains a {found}, expected a HybridDialogueModel")

    model = HybridDialogueModel(**saved["config"])
    model.load_weights(path)
    return model


def check_tokenizer(model: HybridDialogueModel, tokenizer: Tokenizer, source: str = "model") -> None:
    """Raise `TokenizerMismatchError` unless `tokenizer` has the vocabulary `model` was built for."""
    if tokenizer.fingerprint == model.tokenizer_fingerprint and tokenizer.vocab_size == model.architecture.vocab_size:
        return
    raise TokenizerMismatchError(
        f"tokenizer mismatch: {source} was built for tokenizer fingerprint "
        f"{model.tokenizer_fingerprint} (vocabulary {model.architecture.vocab_size}), but the given "
        f"tokenizer has fingerprint {tokenizer.fingerprint} (vocabulary {tokenizer.vocab_size}). "
        "Use the tokenizer.json the model was trained with, or retrain the model on the current data."
    )
