"""GAN discriminator: per-step token distributions of a response to an authenticity score."""

from __future__ import annotations

import keras
from keras import layers

from hybrid_dialogue.models.config import Architecture
from hybrid_dialogue.models.layers import DistributionEmbedding


def build_discriminator(arch: Architecture, seed: int | None = None) -> keras.Model:
    """Build the discriminator: distributions (batch, max_len, vocab_size) float -> score (batch, 1) float32.

    Real responses enter as one-hot rows and generated ones as probabilities
    (or Gumbel-softmax samples), both multiplied by the same embedding matrix,
    so the score is differentiable with respect to the generator. Layers:
    DistributionEmbedding -> Bidirectional LSTM (sequences), LayerNorm ->
    Bidirectional LSTM, LayerNorm -> Dense, LeakyReLU, Dropout -> further
    Dense, LeakyReLU -> Dense(1) -> sigmoid. With the `seed` sizes and
    vocabulary 154 it has 1,507,329 parameters.
    """
    distributions = keras.Input(shape=(arch.max_len, arch.vocab_size), dtype="float32", name="distributions")

    x = DistributionEmbedding(arch.vocab_size, arch.embedding_dim, name="embedding")(distributions)  # (batch, L, E)
    x = layers.Bidirectional(
        layers.LSTM(arch.discriminator_units, return_sequences=True, name="lstm_1"), name="bidirectional_lstm_1"
    )(x)  # (batch, L, 2 * units)
    x = layers.LayerNormalization(name="lstm_norm_1")(x)
    x = layers.Bidirectional(
        layers.LSTM(arch.discriminator_inner_units, name="lstm_2"), name="bidirectional_lstm_2"
    )(x)
    x = layers.LayerNormalization(name="lstm_norm_2")(x)  # (batch, 2 * inner_units)

    # Dropout follows the first Dense layer only, as in the reference design.
    for index, width in enumerate(arch.discriminator_dense_units, start=1):
        x = layers.Dense(width, name=f"dense_{index}")(x)
        x = layers.LeakyReLU(negative_slope=arch.leaky_relu_slope, name=f"leaky_relu_{index}")(x)
        if index == 1:
            x = layers.Dropout(arch.dropout, seed=seed, name="dropout")(x)

    logit = layers.Dense(1, name="logit")(x)  # (batch, 1)
    score = layers.Activation("sigmoid", dtype="float32", name="score")(logit)
    return keras.Model(distributions, score, name="discriminator")
