"""The epoch loop shared by the training stages, and the base class of their compiled steps."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from hybrid_dialogue.training.checkpoint import TrainingCheckpoint

logger = logging.getLogger(__name__)

Batch = dict[str, tf.Tensor]
EpochMetrics = dict[str, float]


class StageTrainer:
    """Compiled train and evaluation steps of one stage, run under a distribution strategy.

    Subclasses implement `replica_train_step` and `replica_evaluate_step`,
    which see one replica's share of the global batch and return scalars
    already averaged over the global batch (`self.average`), so summing them
    across replicas gives the global mean.
    """

    def __init__(self, model: Any, strategy: tf.distribute.Strategy, global_batch_size: int) -> None:
        self.model = model
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self._train_function = self.compile_step(self.replica_train_step)
        self._evaluate_function = self.compile_step(self.replica_evaluate_step)

    # --- what a stage defines ---

    def replica_train_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def replica_evaluate_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def checkpoint_objects(self) -> dict[str, Any]:
        """Objects whose state a checkpoint must hold besides the model weights (optimizers)."""
        return {}

    def schedule(self, step: int, total_steps: int, epoch: int) -> dict[str, float]:
        """Set per-step hyperparameters for global `step` and return them (logged per epoch)."""
        return {}

    def train_step(self, batch: Batch, epoch: int, schedule: dict[str, float]) -> dict[str, tf.Tensor]:
        """Run one compiled training step on a global batch."""
        return self._train_function(batch, _as_tensors(schedule))

    def epoch_diagnostics(self, validation: tf.data.Dataset) -> EpochMetrics:
        """Compute stage-specific diagnostics at the end of an epoch (active units, distinct-n)."""
        return {}

    def restore_model_settings(self) -> None:
        """Undo training-only changes to the model's layers before it is saved."""

    # --- shared machinery ---

    def average(self, per_example: tf.Tensor) -> tf.Tensor:
        """Average (replica_batch,) values over the global batch."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

    def compile_step(self, replica_step: Callable[..., dict[str, tf.Tensor]]) -> Callable[..., dict[str, tf.Tensor]]:
        """Wrap a replica step in one `tf.function` that runs it on every replica and sums the results."""

        def distributed_step(batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            per_replica = self.strategy.run(replica_step, args=(batch, schedule))
            return {
                name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in per_replica.items()
            }

        return tf.function(distributed_step)

    def evaluate(self, validation: tf.data.Dataset, schedule: dict[str, float]) -> EpochMetrics:
        """Return the mean of each evaluation value over the validation batches, keyed `validation/NAME`."""
        totals: dict[str, float] = {}
        batches = 0
        for batch in self.strategy.experimental_distribute_dataset(validation):
            for name, value in self._evaluate_function(batch, _as_tensors(schedule)).items():
                totals[name] = totals.get(name, 0.0) + float(value)
            batches += 1
        return {f"validation/{name}": total / batches for name, total in totals.items()} if batches else {}


@dataclass(frozen=True)
class FitPlan:
    """How long a stage trains: epochs of `steps_per_epoch` global batches of `batch_size` pairs."""

    epochs: int
    steps_per_epoch: int
    batch_size: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def fit(
    trainer: StageTrainer,
    plan: FitPlan,
    epoch_batches: Callable[[int], tf.data.Dataset],
    validation: tf.data.Dataset | None,
    checkpoint: TrainingCheckpoint | None = None,
    start_epoch: int = 0,
    history: list[EpochMetrics] | None = None,
    on_epoch_end: Callable[[int, EpochMetrics], None] | None = None,
) -> list[EpochMetrics]:
    """Train epochs `start_epoch` to `plan.epochs - 1` (0-based) and return the metrics of every epoch.

    `epoch_batches(epoch)` returns the batches of a 0-based epoch. After each
    epoch the validation losses and the trainer's diagnostics are computed,
    a checkpoint is written, then `on_epoch_end(epoch, metrics)` runs with
    the 1-based epoch. A resumed run passes the epoch and history that
    `TrainingCheckpoint.restore` returned.
    """
    history = list(history or [])
    global_step = start_epoch * plan.steps_per_epoch
    # Progress bars redraw in place on a terminal and print one line per epoch in logs.
    verbose = 1 if sys.stdout.isatty() else 2

    for epoch in range(start_epoch, plan.epochs):
        logger.info("epoch %d/%d: %d steps of %d pairs", epoch + 1, plan.epochs, plan.steps_per_epoch, plan.batch_size)
        progress = keras.utils.Progbar(plan.steps_per_epoch, verbose=verbose, unit_name="step")
        totals: dict[str, float] = {}
        schedule: dict[str, float] = {}
        started = time.perf_counter()

        # 1. Train on this epoch's batches; the schedule moves every step.
        for index, batch in enumerate(trainer.strategy.experimental_distribute_dataset(epoch_batches(epoch))):
            schedule = trainer.schedule(global_step, plan.total_steps, epoch)
            values = {name: float(value) for name, value in trainer.train_step(batch, epoch, schedule).items()}
            for name, value in values.items():
                totals[name] = totals.get(name, 0.0) + value
            global_step += 1
            progress.update(index + 1, values=list(values.items()))
        seconds = time.perf_counter() - started
        steps = max(global_step - (epoch * plan.steps_per_epoch), 1)

        # 2. Summarise the epoch, then validate and diagnose on held-out pairs.
        metrics: EpochMetrics = {"epoch": epoch + 1}
        metrics.update({f"train/{name}": total / steps for name, total in totals.items()})
        metrics.update({f"schedule/{name}": value for name, value in schedule.items()})
        metrics["train/samples_per_second"] = steps * plan.batch_size / seconds
        if validation is not None:
            metrics.update(trainer.evaluate(validation, schedule))
            metrics.update(trainer.epoch_diagnostics(validation))
        history.append(metrics)

        # 3. Checkpoint before reporting, so a kill during reporting loses no training.
        if checkpoint is not None:
            checkpoint.save(epoch + 1, global_step, history)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, metrics)
    return history


def _as_tensors(values: dict[str, float]) -> dict[str, tf.Tensor]:
    # Tensors, not Python floats: a new float value would retrace the tf.function.
    return {name: tf.constant(value, dtype=tf.float32) for name, value in values.items()}
