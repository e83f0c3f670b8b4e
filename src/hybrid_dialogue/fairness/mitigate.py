"""Bias mitigation: hybrid fine-tuning on counterfactually augmented pairs with an invariance loss.

Two measures work together:

- Counterfactual data augmentation: every training pair whose message
  contains a listed name or gendered word is added a second time with the
  swapped message and the same agent response, so a name no longer predicts
  how the agent replies.
- A counterfactual invariance loss: the mean squared difference, per latent
  dimension, between the encoder's latent means of a message and of its
  swapped copy, so the message's group does not reach the generator through
  the latent code.

The training loop is the hybrid stage's (`training.hybrid.train_hybrid`);
the loss enters through its `extra_loss_fn` and reads the extra batch keys
that `epoch_batches` adds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf
from hybrid_dialogue.data.dataset import SplitData
from hybrid_dialogue.data.tokenizer import TextTokenizer
from hybrid_dialogue.fairness.config import InvarianceConfig
from hybrid_dialogue.fairness.counterfactual import CounterfactualSwapper

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CounterfactualTraining:
    """Row-aligned training arrays with each row's counterfactual message.

    The training split's rows come first. With augmentation, the swapped
    copies of the rows whose message changed follow them.
    """

    input_ids: np.ndarray  # (rows, max_len) int32
    response_ids: np.ndarray  # (rows, max_len) int32
    counterfactual_ids: np.ndarray  # (rows, max_len) int32: the swapped message (the original, for a copy)
    has_counterfactual: np.ndarray  # (rows,) float32: 1 where the swap changed the message
    original_rows: int
    added_rows: int

    def __len__(self) -> int:
        return len(self.input_ids)


def counterfactual_training(
    train: SplitData, swapper: CounterfactualSwapper, tokenizer: TextTokenizer, augment: bool
) -> CounterfactualTraining:
    """Swap every training message and build the arrays the mitigation loop trains on."""
    texts = train.frame["input_text"].tolist()
    swapped_texts = [swapper.swap(text) for text in texts]
    changed = np.array([swapped != text for swapped, text in zip(swapped_texts, texts)], dtype=bool)

    max_len = train.input_ids.shape[1]
    swapped_ids = train.input_ids.copy()
    if changed.any():
        swapped_ids[changed], _ = tokenizer.encode_batch([swapped_texts[i] for i in np.flatnonzero(changed)], max_len)

    input_ids, response_ids = train.input_ids, train.response_ids
    counterfactual_ids, has_counterfactual = swapped_ids, changed.astype(np.float32)
    added = int(changed.sum()) if augment else 0
    if added:
        input_ids = np.concatenate([input_ids, swapped_ids[changed]])
        response_ids = np.concatenate([response_ids, train.response_ids[changed]])
        counterfactual_ids = np.concatenate([counterfactual_ids, train.input_ids[changed]])
        has_counterfactual = np.concatenate([has_counterfactual, np.ones(added, dtype=np.float32)])
    logger.info(
        "Counterfactual training: %d of %d messages have a swapped copy, %d copies added",
        int(changed.sum()), len(texts), added,
    )
    return CounterfactualTraining(
        input_ids=input_ids.astype(np.int32, copy=False),
        response_ids=response_ids.astype(np.int32, copy=False),
        counterfactual_ids=counterfactual_ids.astype(np.int32, copy=False),
        has_counterfactual=has_counterfactual,
        original_rows=len(texts),
        added_rows=added,
    )


def invariance_weights(config: InvarianceConfig, total_steps: int) -> np.ndarray:
    """Return the invariance weight of every global step (total_steps,), rising linearly over the warm-up."""
    warmup_steps = int(round(config.warmup_fraction * total_steps))
    steps = np.arange(total_steps, dtype=np.float32)
    ramp = np.minimum(1.0, (steps + 1.0) / warmup_steps) if warmup_steps else np.ones(total_steps, dtype=np.float32)
    return (config.weight * ramp).astype(np.float32)


def invariance_loss(batch: dict[str, tf.Tensor], model: Any) -> tf.Tensor:
    """Return the weighted invariance loss of one replica's batch (a scalar), for `train_hybrid`'s `extra_loss_fn`.

    Reads `input_ids` and `counterfactual_ids` (batch, max_len),
    `has_counterfactual` (batch,) and `invariance_weight` (batch,), the
    same value in every row. The latent means come from the encoder without
    dropout, as at inference; rows without a counterfactual do not count.
    """
    z_mean = model.encoder(batch["input_ids"], training=False)[0]  # (batch, latent)
    z_mean_counterfactual = model.encoder(batch["counterfactual_ids"], training=False)[0]
    per_row = tf.reduce_mean(tf.square(tf.cast(z_mean - z_mean_counterfactual, tf.float32)), axis=-1)  # (batch,)
    mask = tf.cast(batch["has_counterfactual"], tf.float32)
    mean = tf.reduce_sum(per_row * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
    return tf.reduce_mean(tf.cast(batch["invariance_weight"], tf.float32)) * mean


def epoch_batches(
    data: CounterfactualTraining, batch_size: int, steps_per_epoch: int, seed: int, weights: np.ndarray
) -> Callable[[int], tf.data.Dataset]:
    """Return `train_hybrid`'s `train_batches(epoch)` over `data`, with each step's invariance weight."""
    from hybrid_dialogue.training.data import epoch_dataset

    # epoch_dataset reads only the row count of the frame.
    split = SplitData(frame=pd.DataFrame(index=pd.RangeIndex(len(data))), input_ids=data.input_ids,
                      response_ids=data.response_ids)
    extra = {"counterfactual_ids": data.counterfactual_ids, "has_counterfactual": data.has_counterfactual}

    def batches(epoch: int) -> tf.data.Dataset:
        epoch_weights = tf.constant(weights[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch])
        dataset = epoch_dataset(split, batch_size, steps_per_epoch, seed, epoch, extra)
        return dataset.enumerate().map(
            lambda step, batch: {**batch, "invariance_weight": tf.fill([batch_size], epoch_weights[step])}
        )

    return batches
