"""Bias mitigation: hybrid fine-tuning on counterfactually augmented, reweighed pairs with an invariance loss.

Three measures work together:

- Counterfactual data augmentation: every training pair whose message
  contains a listed name or gendered word is added a second time with the
  swapped message and the same agent response, so a name no longer predicts
  how the agent replies.
- A counterfactual invariance loss: the mean squared difference, per latent
  dimension, between the encoder's latent means of a message and of its
  swapped copy, so the message's group does not reach the generator through
  the latent code.
- Reweighing (after Kamiran and Calders, "Data preprocessing techniques for
  classification without discrimination", 2012): each pair is drawn with
  weight P*(outcome) / P(outcome | group), with the group from the pair's
  metadata, the outcome whether the agent response has a resolution step,
  and P* a target outcome distribution shared by all groups (see
  `reweighing_weights`). In the reweighed data the response's helpfulness
  no longer depends on the group. So a cue of the group that the swaps do not
  touch, such as a curt earlier agent turn in the context, stops predicting
  a curt reply too, unless it carries more information about the reply than
  the group does.

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
    # (rows,) float64 reweighing weights with mean 1, or None when the pairs are not reweighed.
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def counterfactual_training(
    train: SplitData,
    swapper: CounterfactualSwapper,
    tokenizer: TextTokenizer,
    augment: bool,
    outcomes: np.ndarray | None = None,
    attribute: str = "",
    reweighing: str = "overall",
) -> CounterfactualTraining:
    """Swap every training message and build the arrays the mitigation loop trains on.

    `outcomes` is one bool per row of `train`. When it is given and the
    `attribute` column has at least two known groups, the result carries the
    `reweighing_weights` of (group, outcome) for the `reweighing` target. A
    swapped copy takes its original's weight.
    """
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

    weights = None
    groups = train.frame[attribute].fillna("").astype(str).to_numpy() if attribute in train.frame.columns else None
    # Reweighing needs two known groups. Without them every weight would be
    # 1 and drawing rows would only change which pairs are seen.
    if outcomes is not None and groups is not None and len(set(groups) - {""}) >= 2:
        weights = reweighing_weights(groups, np.asarray(outcomes, dtype=bool), reweighing)
        if added:
            weights = np.concatenate([weights, weights[changed]])
        weights = weights / weights.mean()
    return CounterfactualTraining(
        input_ids=input_ids.astype(np.int32, copy=False),
        response_ids=response_ids.astype(np.int32, copy=False),
        counterfactual_ids=counterfactual_ids.astype(np.int32, copy=False),
        has_counterfactual=has_counterfactual,
        original_rows=len(texts),
        added_rows=added,
        weights=weights,
    )


def reweighing_weights(groups: np.ndarray, outcomes: np.ndarray, target: str = "overall") -> np.ndarray:
    """Return each row's weight P*(outcome) / P(outcome | group) (rows,) float64.

    `groups` contains each row's group ("" for unknown, which counts as a
    group of its own) and `outcomes` each row's binary outcome, True being
    the favourable one. The target P* is the outcome distribution of all
    rows for "overall", which is Kamiran and Calders' reweighing
    P(group) P(outcome) / P(group, outcome). For "best_group" it is that of
    the known group with the largest share of favourable outcomes, so the
    other groups are weighted up to that group's rate. Either way each group
    gets the target distribution, except where one of its (group, outcome)
    cells is empty: weights cannot create rows.
    """
    frame = pd.DataFrame({"group": groups, "outcome": np.asarray(outcomes, dtype=bool)})
    if frame.empty:
        return np.zeros(0)
    share_in_group = frame.groupby("group")["outcome"].transform("mean")  # P(True | group) per row
    if target == "overall":
        favourable = float(frame["outcome"].mean())
    elif target == "best_group":
        known = frame[frame["group"] != ""]
        favourable = float(known.groupby("group")["outcome"].mean().max()) if len(known) else float(frame["outcome"].mean())
    else:
        raise ValueError(f"unknown reweighing target {target!r}. Expected 'overall' or 'best_group'.")
    target_share = np.where(frame["outcome"], favourable, 1.0 - favourable)
    group_share = np.where(frame["outcome"], share_in_group, 1.0 - share_in_group)  # > 0: the row is in its cell
    return (target_share / group_share).astype(np.float64)


def resample(data: CounterfactualTraining, seed: int) -> CounterfactualTraining:
    """Return `data` with its rows drawn with replacement in proportion to `data.weights`, as many as before.

    Drawing rows (preferential sampling) instead of weighting the loss keeps
    the training step unchanged. Without weights, `data` comes back as it is.
    """
    if data.weights is None or len(data) == 0:
        return data
    rows = np.random.default_rng(seed).choice(len(data), size=len(data), replace=True, p=data.weights / data.weights.sum())
    rows.sort()  # keeps the originals-then-copies order; epoch_dataset shuffles each epoch
    return CounterfactualTraining(
        input_ids=data.input_ids[rows],
        response_ids=data.response_ids[rows],
        counterfactual_ids=data.counterfactual_ids[rows],
        has_counterfactual=data.has_counterfactual[rows],
        original_rows=data.original_rows,
        added_rows=data.added_rows,
        weights=None,
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
