"""Per-epoch checkpoints that let a killed training stage resume where it stopped."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import tensorflow as tf

logger = logging.getLogger(__name__)

FINGERPRINT_KEY = "run_fingerprint/.ATTRIBUTES/VARIABLE_VALUE"


class TrainingCheckpoint:
    """Model, optimizer and RNG state, epoch and step counters, and the metric history of one stage.

    Everything lives in one `tf.train.Checkpoint`, written after each epoch,
    so the counters and the history never disagree with the weights. A
    checkpoint only resumes a run with the same fingerprint (the stage's
    resolved parameters, data digest and input model), so a checkpoint left
    behind by a run with other settings is discarded instead of mixed in.

    `trackables` must already hold every variable (build optimizers before
    creating this object), because restoring checks that each one is found.
    """

    def __init__(self, directory: str | Path, fingerprint: str, max_to_keep: int = 2, **trackables: Any) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self._max_to_keep = max_to_keep
        self.completed_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="completed_epochs")
        self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self._history = tf.Variable("[]", dtype=tf.string, trainable=False, name="history")
        self._fingerprint = tf.Variable(fingerprint, dtype=tf.string, trainable=False, name="run_fingerprint")
        self._checkpoint = tf.train.Checkpoint(
            completed_epochs=self.completed_epochs,
            global_step=self.global_step,
            history=self._history,
            run_fingerprint=self._fingerprint,
            **trackables,
        )
        self._manager = self._new_manager()

    def _new_manager(self) -> tf.train.CheckpointManager:
        return tf.train.CheckpointManager(self._checkpoint, str(self.directory), max_to_keep=self._max_to_keep)

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics of the completed epochs, oldest first."""
        return json.loads(self._history.numpy().decode("utf-8"))

    @property
    def saved_epochs(self) -> int:
        """Completed epochs in the newest checkpoint on disk, 0 when there is none."""
        latest = tf.train.latest_checkpoint(str(self.directory))
        return int(latest.rsplit("-", 1)[1]) if latest else 0  # saved as ckpt-<completed epochs>

    def restore(self) -> tuple[int, list[dict[str, float]]]:
        """Restore the latest checkpoint of this run, if any, and return the completed epochs and their metrics.

        A checkpoint with another fingerprint is deleted with a warning, and
        (0, []) is returned, as when there is no checkpoint.
        """
        latest = self._manager.latest_checkpoint
        if latest is None:
            return 0, []

        saved_fingerprint = tf.train.load_variable(latest, FINGERPRINT_KEY).decode("utf-8")
        if saved_fingerprint != self.fingerprint:
            logger.warning(
                "discarding checkpoint %s: it belongs to a run with other parameters, data or input "
                "model (fingerprint %s, this run %s)",
                latest,
                saved_fingerprint,
                self.fingerprint,
            )
            self.clear()
            self._manager = self._new_manager()
            return 0, []

        self._checkpoint.restore(latest).assert_existing_objects_matched()
        epochs = int(self.completed_epochs.numpy())
        logger.info("resuming from checkpoint %s after epoch %d (step %d)", latest, epochs, int(self.global_step.numpy()))
        return epochs, self.history

    def save(self, completed_epochs: int, global_step: int, history: list[dict[str, float]]) -> Path:
        """Write a checkpoint after `completed_epochs` epochs, keeping the newest `max_to_keep`."""
        self.completed_epochs.assign(completed_epochs)
        self.global_step.assign(global_step)
        self._history.assign(json.dumps(history))
        path = self._manager.save(checkpoint_number=completed_epochs)
        logger.info("checkpoint %s written", path)
        return Path(path)

    def clear(self) -> None:
        """Delete the checkpoint directory, once the stage's outputs are published."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
            logger.info("removed checkpoints in %s", self.directory)
