"""Hybrid fine-tuning: encoder, decoder and generator trained end to end on four weighted losses.

The discriminator keeps its own update each step, so that the adversarial
loss follows the generator as it changes. `HybridTrainer` takes
an optional extra loss, which the bias-mitigation stage uses for a
counterfactual invariance term.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hybrid_dialogue.data.dataset import SplitData
from hybrid_dialogue.models.config import ModelConfig
from hybrid_dialogue.training import losses
from hybrid_dialogue.training.checkpoint import TrainingCheckpoint
from hybrid_dialogue.training.config import HybridFinetuneConfig, ResponseInventoryConfig
from hybrid_dialogue.training.data import TrainingData
from hybrid_dialogue.training.gan import (
    compile_generation,
    evaluate_responses,
    response_diversity,
    update_discriminator,
)
from hybrid_dialogue.training.loop import Batch, EpochMetrics, FitPlan, StageTrainer, fit
from hybrid_dialogue.training.runtime import make_adam
from hybrid_dialogue.training.schedules import gumbel_temperature
from hybrid_dialogue.training.stage import StagePaths, StageSpec, TrainResult, run_training_stage
from hybrid_dialogue.training.vae import compile_encoding, latent_activity

STAGE = "hybrid_finetune"

logger = logging.getLogger(__name__)

# extra_loss_fn(batch, model) -> scalar loss of one replica's batch, added to
# the weighted sum with weight 1. It runs inside the compiled step, so it must
# use TensorFlow ops, and its gradient reaches the encoder, decoder and generator.
ExtraLossFn = Callable[[Batch, Any], tf.Tensor]


class HybridTrainer(StageTrainer):
    """Compiled steps of the hybrid stage: one discriminator update, then one end-to-end update."""

    def __init__(
        self,
        model: Any,
        config: HybridFinetuneConfig,
        strategy: tf.distribute.Strategy,
        extra_loss_fn: ExtraLossFn | None = None,
    ) -> None:
        self.config = config
        self.extra_loss_fn = extra_loss_fn
        self.variables = [
            *model.encoder.trainable_variables,
            *model.decoder.trainable_variables,
            *model.generator.trainable_variables,
        ]
        with strategy.scope():
            self.optimizer = make_adam(
                config.learning_rate, config.clip_norm, model.mixed_precision, config.beta_1, "hybrid_adam"
            )
            self.discriminator_optimizer = make_adam(
                config.discriminator_learning_rate,
                config.clip_norm,
                model.mixed_precision,
                config.beta_1,
                "discriminator_adam",
            )
            self.optimizer.build(self.variables)
            self.discriminator_optimizer.build(model.discriminator.trainable_variables)
        super().__init__(model, strategy, config.batch_size)
        # Read when the steps are traced (first call), so set before training starts.
        self._saved_hard_gumbel = model.gumbel.hard
        model.gumbel.hard = config.straight_through_gumbel
        self._generate_ids = compile_generation(model)
        self._encode_mean = compile_encoding(model)

    def restore_model_settings(self) -> None:
        self.model.gumbel.hard = self._saved_hard_gumbel

    def checkpoint_objects(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer, "discriminator_optimizer": self.discriminator_optimizer}

    def schedule(self, step: int, total_steps: int, epoch: int) -> dict[str, float]:
        temperature = gumbel_temperature(step, total_steps, self.config.gumbel_temperature)
        self.model.set_gumbel_temperature(temperature)
        return {"gumbel_temperature": temperature}

    def replica_train_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        input_ids, response_ids = batch["input_ids"], batch["response_ids"]
        weights = self.config.loss_weights

        with tf.GradientTape() as tape:
            # 1. Encode the message and sample its latent code: (batch, latent).
            z_mean, z_log_var, z = self.model.encoder(input_ids, training=True)

            # 2. Reconstruct the message and generate a response from the same z: (batch, L, vocab) each.
            reconstruction = self.model.decoder(z, training=True)
            response = self.model.generator(z, training=True)
            fake = self.model.gumbel(response, training=True)

            # 3. Discriminator update on real vs these samples, outside the end-to-end gradient.
            with tape.stop_recording():
                logs = update_discriminator(
                    self.model,
                    self.discriminator_optimizer,
                    response_ids,
                    fake,
                    self.config.label_smoothing,
                    self.average,
                )

            # 4. The four weighted losses (plus the optional extra loss).
            fake_scores = self.model.discriminator(fake, training=True)
            reconstruction_loss = self.average(losses.masked_token_cross_entropy(input_ids, reconstruction))
            kl = self.average(losses.kl_divergence(z_mean, z_log_var))
            kl_objective = losses.free_bits_kl(z_mean, z_log_var, self.config.kl_free_bits)
            kl_objective /= self.strategy.num_replicas_in_sync  # a per-replica batch mean
            adversarial = self.average(losses.generator_adversarial_loss(fake_scores))
            content = self.average(losses.masked_token_cross_entropy(response_ids, response))
            loss = (
                weights.reconstruction * reconstruction_loss
                + weights.kl * kl_objective
                + weights.adversarial * adversarial
                + weights.content * content
            )
            if self.extra_loss_fn is not None:
                # A per-replica mean; dividing by the replica count makes the sum over replicas a mean.
                extra = tf.cast(self.extra_loss_fn(batch, self.model), tf.float32)
                extra = extra / self.strategy.num_replicas_in_sync
                loss += extra
                logs["extra"] = extra
            scaled_loss = self.optimizer.scale_loss(loss)

        # 5. Update encoder, decoder and generator together.
        gradients = tape.gradient(scaled_loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        return {
            **logs,
            "loss": loss,
            "reconstruction": reconstruction_loss,
            "kl": kl,
            "adversarial": adversarial,
            "content": content,
        }

    def replica_evaluate_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        input_ids = batch["input_ids"]
        z_mean, z_log_var, z = self.model.encoder(input_ids, training=False)
        metrics = evaluate_responses(self.model, batch, self.average)
        metrics["reconstruction"] = self.average(
            losses.masked_token_cross_entropy(input_ids, self.model.decoder(z, training=False))
        )
        metrics["kl"] = self.average(losses.kl_divergence(z_mean, z_log_var))
        return metrics

    def epoch_diagnostics(self, validation: tf.data.Dataset) -> EpochMetrics:
        return {**response_diversity(self._generate_ids, validation), **latent_activity(self._encode_mean, validation)}


def train_hybrid(
    model: Any,
    train_batches: Callable[[int], tf.data.Dataset],
    plan: FitPlan,
    config: HybridFinetuneConfig,
    extra_loss_fn: ExtraLossFn | None = None,
    validation: tf.data.Dataset | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_fingerprint: str = "",
    on_epoch_end: Callable[[int, EpochMetrics], None] | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> list[EpochMetrics]:
    """Fine-tune `model` end to end in place and return the metrics of every epoch.

    The loop of `run_hybrid_finetune` without its file and MLflow outputs,
    for callers that bring their own batches: `train_batches(epoch)` returns
    a 0-based epoch's `plan.steps_per_epoch` batches of `plan.batch_size`,
    each a dict with at least `input_ids` and `response_ids`, plus whatever
    `extra_loss_fn(batch, model)` reads. With `checkpoint_dir` it checkpoints
    every epoch and resumes a run with the same `checkpoint_fingerprint`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    trainer = HybridTrainer(model, config, strategy, extra_loss_fn)
    checkpoint = None
    start_epoch, history = 0, []
    if checkpoint_dir is not None:
        checkpoint = TrainingCheckpoint(
            checkpoint_dir,
            checkpoint_fingerprint,
            model=model,
            model_state=list(model.non_trainable_variables),
            **trainer.checkpoint_objects(),
        )
        start_epoch, history = checkpoint.restore()
    try:
        return fit(trainer, plan, train_batches, validation, checkpoint, start_epoch, history, on_epoch_end)
    finally:
        trainer.restore_model_settings()


def run_hybrid_finetune(
    processed_dir: str | Path,
    input_model: str | Path,
    output_model: str | Path,
    config: HybridFinetuneConfig,
    model_config: ModelConfig,
    metrics_dir: str | Path,
    checkpoint_dir: str | Path,
    *,
    stage: str = STAGE,
    extra_loss_fn: ExtraLossFn | None = None,
    extra_train_arrays: Callable[[TrainingData], dict[str, np.ndarray]] | None = None,
) -> TrainResult:
    """Fine-tune the GAN-stage model `input_model` end to end, writing `output_model` and `metrics/<stage>.json`.

    Another stage reuses it under its own `stage` name (its MLflow run,
    metrics file and `checkpoint_dir/<stage>/`) with an `extra_loss_fn` and
    the row-aligned training arrays that loss reads (`extra_train_arrays`).
    """
    spec = StageSpec(
        name=stage,
        make_trainer=lambda model, resolved, strategy, plan, budget: HybridTrainer(
            model, resolved, strategy, extra_loss_fn
        ),
        extra_train_arrays=extra_train_arrays,
        prepare_model=lambda model, data, resolved: set_response_inventory(model, data.train, resolved.response_inventory),
    )
    paths = StagePaths.of(processed_dir, output_model, metrics_dir, Path(checkpoint_dir) / stage, input_model)
    return run_training_stage(spec, paths, config, model_config)


def set_response_inventory(model: Any, train: SplitData, config: ResponseInventoryConfig) -> None:
    """Give `model` the inventory of `train`'s responses that `config` selects, or none (free decoding).

    An inventory that covers less than `config.min_coverage` of the training
    pairs is dropped: a corpus whose replies rarely repeat would leave a
    handful of generic replies for every message.
    """
    from hybrid_dialogue.models.inventory import build_response_inventory

    inventory, coverage = build_response_inventory(
        train.frame["agent_text"].tolist(),
        train.frame["dialogue_id"].tolist(),
        train.response_ids,
        config.min_dialogues,
        config.max_responses,
    )
    if config.max_responses > 0 and coverage < config.min_coverage:
        logger.warning(
            "The %d training responses used in at least %d dialogues cover %.1f%% of the training pairs, under "
            "response_inventory.min_coverage (%.1f%%), so the model generates its responses freely. Lower "
            "min_dialogues or min_coverage to give it an inventory.",
            len(inventory),
            config.min_dialogues,
            100.0 * coverage,
            100.0 * config.min_coverage,
        )
        inventory = None
    model.set_response_inventory(inventory)
