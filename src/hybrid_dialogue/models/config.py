"""Model sizes and presets, read from the `model` section of `params.yaml`.

`ModelConfig` selects one preset (`seed`, `cpu` or `tiny`). Its `ModelSizes`
plus the tokenizer's vocabulary size make an `Architecture`, which is what the
builders take and what a saved model stores, so that a `.keras` file rebuilds
the same layer stack without reading `params.yaml`.

This module imports no TensorFlow, so that configs validate quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from hybrid_dialogue.config import StageConfig, load_section, parse_section
from hybrid_dialogue.paths import PARAMS_FILE

PresetName = Literal["seed", "cpu", "tiny"]
MixedPrecision = Literal["none", "bfloat16", "float16"]

# Keras dtype policy for each `model.mixed_precision` value. The mixed policies
# keep variables in float32 and compute in the 16-bit type.
DTYPE_POLICIES: dict[str, str] = {
    "none": "float32",
    "bfloat16": "mixed_bfloat16",
    "float16": "mixed_float16",
}

# Upper bounds catch typos such as an extra zero. They are far above what fits
# in memory on one machine, not tuned limits.
MAX_UNITS = 8192
MAX_LENGTH = 2048
MAX_VOCABULARY = 1_000_000

# Token ids 0-3 are the special tokens [PAD], [UNK], [BOS] and [EOS], so a
# usable vocabulary has at least one more token.
MIN_VOCABULARY = 5


class ModelSizes(StageConfig):
    """Layer sizes of one preset. The vocabulary size comes from the tokenizer."""

    # A sequence contains [BOS], at least one token and [EOS].
    max_len: int = Field(ge=3, le=MAX_LENGTH)
    latent_dim: int = Field(ge=1, le=MAX_UNITS)
    embedding_dim: int = Field(ge=1, le=MAX_UNITS)
    encoder_units: int = Field(ge=1, le=MAX_UNITS)
    decoder_units: int = Field(ge=1, le=MAX_UNITS)
    generator_dense_units: int = Field(ge=1, le=MAX_UNITS)
    generator_units: int = Field(ge=1, le=MAX_UNITS)
    generator_last_units: int = Field(ge=1, le=MAX_UNITS)
    discriminator_units: int = Field(ge=1, le=MAX_UNITS)
    discriminator_inner_units: int = Field(ge=1, le=MAX_UNITS)
    # Widths of the discriminator's Dense layers before the single sigmoid unit.
    discriminator_dense_units: tuple[int, ...] = Field(min_length=1, max_length=8)
    # Dropout rate of the generator and of the discriminator's first Dense layer.
    dropout: float = Field(ge=0.0, lt=1.0)
    leaky_relu_slope: float = Field(ge=0.0, le=1.0)

    @field_validator("discriminator_dense_units")
    @classmethod
    def _check_dense_units(cls, units: tuple[int, ...]) -> tuple[int, ...]:
        for width in units:
            if not 1 <= width <= MAX_UNITS:
                raise ValueError(f"each width must be between 1 and {MAX_UNITS}, got {width}")
        return units

    def with_vocab(self, vocab_size: int) -> Architecture:
        """Return the architecture of these sizes for a tokenizer of `vocab_size` tokens.

        Raises `ConfigError` when `vocab_size` is out of range.
        """
        values = {**self.model_dump(), "vocab_size": vocab_size}
        return parse_section(Architecture, "model", values, source="architecture")


class Architecture(ModelSizes):
    """Every size the builders need: a preset's sizes plus the vocabulary size."""

    vocab_size: int = Field(ge=MIN_VOCABULARY, le=MAX_VOCABULARY)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON values, as stored in a model's `get_config`."""
        return self.model_dump(mode="json")


class ModelPresets(StageConfig):
    """The three named presets, each complete, with no values inherited from another."""

    seed: ModelSizes
    cpu: ModelSizes
    tiny: ModelSizes


class ModelConfig(StageConfig):
    """The `model` section: which preset to build and at which precision."""

    preset: PresetName = "cpu"
    mixed_precision: MixedPrecision = "none"
    presets: ModelPresets

    @property
    def sizes(self) -> ModelSizes:
        """The selected preset's sizes."""
        return getattr(self.presets, self.preset)

    @property
    def dtype_policy(self) -> str:
        """The Keras dtype policy name for `mixed_precision`."""
        return DTYPE_POLICIES[self.mixed_precision]

    def architecture(self, vocab_size: int) -> Architecture:
        """Return the selected preset's architecture for `vocab_size` tokens."""
        return self.sizes.with_vocab(vocab_size)


def load_model_config(
    path: str | Path = PARAMS_FILE, overrides: dict[str, Any] | None = None
) -> ModelConfig:
    """Read the `model` section of `path`. Keys in `overrides`, such as {"preset": "tiny"}, win over the file."""
    return load_section(ModelConfig, "model", path, overrides)
