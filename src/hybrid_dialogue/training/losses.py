"""Losses and training diagnostics.

Losses return one value per example, shape (batch,), in float32 whatever the
compute dtype, so that a distribution strategy can average them over the
global batch (`tf.nn.compute_average_loss`). Models output probabilities,
not logits, so cross-entropies take the log of a clipped probability.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from hybrid_dialogue.data.tokenizer import BOS_ID, EOS_ID, PAD_ID

# Smallest probability fed to a log: log(1e-7) = -16.1 bounds the loss of a
# token the model rules out, as Keras's own cross-entropies do.
EPSILON = 1e-7

# The usual "active units" measure of VAE papers: a latent unit is active
# when the variance of its posterior mean across inputs exceeds 0.01.
ACTIVE_UNIT_THRESHOLD = 0.01


def masked_token_cross_entropy(target_ids: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the non-padding tokens of each sequence.

    target_ids: (batch, length) int. probabilities: (batch, length, vocab).
    Returns (batch,). Padding (id 0) adds nothing, and a row of padding only gives 0.
    """
    target_ids = tf.cast(target_ids, tf.int32)
    probabilities = tf.cast(probabilities, tf.float32)

    # Probability of each target token: (batch, length).
    target_probabilities = tf.gather(probabilities, target_ids, axis=2, batch_dims=2)
    token_losses = -tf.math.log(tf.clip_by_value(target_probabilities, EPSILON, 1.0))

    mask = tf.cast(tf.not_equal(target_ids, PAD_ID), tf.float32)
    token_count = tf.reduce_sum(mask, axis=1)
    return tf.reduce_sum(token_losses * mask, axis=1) / tf.maximum(token_count, 1.0)


def masked_token_accuracy(target_ids: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
    """Share of non-padding tokens whose argmax prediction is the target, per sequence: (batch,)."""
    target_ids = tf.cast(target_ids, tf.int32)
    predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    mask = tf.cast(tf.not_equal(target_ids, PAD_ID), tf.float32)
    correct = tf.cast(tf.equal(predicted, target_ids), tf.float32) * mask
    return tf.reduce_sum(correct, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


def kl_per_dimension(z_mean: tf.Tensor, z_log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(z_mean, exp(z_log_var)) || N(0, 1)) of each latent dimension: (batch, latent)."""
    z_mean = tf.cast(z_mean, tf.float32)
    z_log_var = tf.cast(z_log_var, tf.float32)
    return -0.5 * (1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))


def kl_divergence(z_mean: tf.Tensor, z_log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)), summed over latent dimensions: (batch,)."""
    return tf.reduce_sum(kl_per_dimension(z_mean, z_log_var), axis=-1)


def free_bits_kl(z_mean: tf.Tensor, z_log_var: tf.Tensor, free_bits: float) -> tf.Tensor:
    """KL summed over latent dimensions, each dimension's batch mean floored at `free_bits` nats: scalar.

    Below the floor a dimension's KL has no gradient, so the encoder can keep
    that much information per dimension without pressure from the prior: a
    guard against posterior collapse. With `free_bits` 0 this is the mean of
    `kl_divergence` over the batch.
    """
    batch_mean = tf.reduce_mean(kl_per_dimension(z_mean, z_log_var), axis=0)  # (latent,)
    return tf.reduce_sum(tf.maximum(batch_mean, free_bits))


def binary_cross_entropy(scores: tf.Tensor, label: float) -> tf.Tensor:
    """Cross-entropy of sigmoid `scores` (batch,) or (batch, 1) against a constant `label`: (batch,)."""
    scores = tf.reshape(tf.cast(scores, tf.float32), [-1])
    scores = tf.clip_by_value(scores, EPSILON, 1.0 - EPSILON)
    return -(label * tf.math.log(scores) + (1.0 - label) * tf.math.log(1.0 - scores))


def discriminator_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor, label_smoothing: float) -> tf.Tensor:
    """Discriminator cross-entropy with one-sided label smoothing: real -> 1 - smoothing, fake -> 0."""
    real_loss = binary_cross_entropy(real_scores, 1.0 - label_smoothing)
    fake_loss = binary_cross_entropy(fake_scores, 0.0)
    return real_loss + fake_loss


def generator_adversarial_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """Non-saturating generator loss -log D(G(z)): (batch,).

    Its gradient stays large while the discriminator rejects the samples,
    unlike the minimax form log(1 - D(G(z))).
    """
    return binary_cross_entropy(fake_scores, 1.0)


def score_accuracy(scores: tf.Tensor, real: bool) -> tf.Tensor:
    """1 where the discriminator classifies an example correctly at threshold 0.5, else 0: (batch,)."""
    scores = tf.reshape(tf.cast(scores, tf.float32), [-1])
    correct = scores > 0.5 if real else scores <= 0.5
    return tf.cast(correct, tf.float32)


def content_tokens(row: Iterable[int]) -> list[int]:
    """Return the tokens of one id row up to its first EOS, without special tokens (UNK is kept)."""
    tokens = []
    for token in row:
        token = int(token)
        if token == EOS_ID:
            break
        if token not in (PAD_ID, BOS_ID):
            tokens.append(token)
    return tokens


def distinct_n(rows: Sequence[Sequence[int]] | np.ndarray, n: int) -> float:
    """Distinct-n of a batch of generated id rows: unique n-grams / all n-grams.

    Near 0 when the generator repeats one response for every input (mode
    collapse). A batch with no n-gram at all gives 0.0.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    unique: set[tuple[int, ...]] = set()
    total = 0
    for row in rows:
        tokens = content_tokens(row)
        ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        unique.update(ngrams)
        total += len(ngrams)
    return len(unique) / total if total else 0.0


def active_units(z_means: np.ndarray, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Number of latent dimensions whose posterior mean varies across inputs by more than `threshold`.

    z_means: (examples, latent_dim). Dimensions with variance at or below
    the threshold carry no information about the input (posterior collapse).
    """
    z_means = np.asarray(z_means, dtype=np.float64)
    if z_means.ndim != 2 or len(z_means) < 2:
        raise ValueError(f"expected z_means of shape (examples >= 2, latent_dim), got {z_means.shape}")
    return int(np.sum(np.var(z_means, axis=0) > threshold))

