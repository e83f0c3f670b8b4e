"""GAN generator: a latent vector to per-step token distributions of the agent response."""

from __future__ import annotations

import keras
from keras import layers

from hybrid_dialogue.models.config import Architecture
from hybrid_dialogue.models.decoder import standardize


def build_generator(arch: Architecture, seed: int | None = None) -> keras.Model:
    """Build the generator: z (batch, latent_dim) -> probabilities (batch, max_len, vocab_size) float32.

    Non-autoregressive: every step gets the same repeated latent code as input,
    so one forward pass emits the whole response. Layers: two blocks of Dense,
    LeakyReLU and LayerNormalization, Dropout -> RepeatVector -> LSTM, LayerNorm
    -> LSTM, LayerNorm -> LSTM, parameter-free standardisation (see
    `decoder.standardize`) -> Dense per step -> softmax. With the `seed`
    sizes and vocabulary 154 it has 5,423,770 parameters.
    """
    z = keras.Input(shape=(arch.latent_dim,), name="z")

    x = z
    for block in (1, 2):
        x = layers.Dense(arch.generator_dense_units, name=f"dense_{block}")(x)
        x = layers.LeakyReLU(negative_slope=arch.leaky_relu_slope, name=f"leaky_relu_{block}")(x)
        x = layers.LayerNormalization(name=f"layer_norm_{block}")(x)  # (batch, dense_units)
    x = layers.Dropout(arch.dropout, seed=seed, name="dropout")(x)

    x = layers.RepeatVector(arch.max_len, name="repeat")(x)  # (batch, L, dense_units)
    x = layers.LSTM(arch.generator_units, return_sequences=True, name="lstm_1")(x)
    x = layers.LayerNormalization(name="lstm_norm_1")(x)
    x = layers.LSTM(arch.generator_units, return_sequences=True, name="lstm_2")(x)
    x = layers.LayerNormalization(name="lstm_norm_2")(x)
    x = layers.LSTM(arch.generator_last_units, return_sequences=True, name="lstm_3")(x)  # (batch, L, last)
    x = standardize(x, "lstm_norm_3")
    logits = layers.Dense(arch.vocab_size, name="logits")(x)  # (batch, L, vocab)

    # Softmax in float32 whatever the policy, so losses and log-probabilities stay exact.
    probabilities = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(z, probabilities, name="generator")
