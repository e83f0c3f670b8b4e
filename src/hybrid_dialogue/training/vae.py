"""VAE pre-training: the encoder and decoder learn to reconstruct customer messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hybrid_dialogue.models.config import ModelConfig
from hybrid_dialogue.training import losses
from hybrid_dialogue.training.config import VaePretrainConfig
from hybrid_dialogue.training.loop import Batch, EpochMetrics, StageTrainer
from hybrid_dialogue.training.runtime import make_adam
from hybrid_dialogue.training.schedules import kl_weight
from hybrid_dialogue.training.stage import StagePaths, StageSpec, TrainResult, run_training_stage

STAGE = "vae_pretrain"


class VaeTrainer(StageTrainer):
    """Compiled steps of the VAE stage: reconstruction cross-entropy plus annealed KL divergence."""

    def __init__(self, model: Any, config: VaePretrainConfig, strategy: tf.distribute.Strategy) -> None:
        self.config = config
        self.variables = [*model.encoder.trainable_variables, *model.decoder.trainable_variables]
        with strategy.scope():
            self.optimizer = make_adam(config.learning_rate, config.clip_norm, model.mixed_precision)
            self.optimizer.build(self.variables)
        super().__init__(model, strategy, config.batch_size)
        self._encode_mean = compile_encoding(model)

    def checkpoint_objects(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer}

    def schedule(self, step: int, total_steps: int, epoch: int) -> dict[str, float]:
        return {"kl_weight": kl_weight(step, total_steps, self.config.kl_annealing)}

    def replica_train_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        input_ids = batch["input_ids"]  # (batch, L)
        with tf.GradientTape() as tape:
            # 1. Encode each message to its posterior and a reparameterised sample: (batch, latent).
            z_mean, z_log_var, z = self.model.encoder(input_ids, training=True)

            # 2. Decode the sample back to per-step token distributions: (batch, L, vocab).
            reconstruction = self.model.decoder(z, training=True)

            # 3. Negative ELBO with the annealed KL weight, averaged over the global batch. The
            #    objective uses the free-bits KL (a per-replica batch mean, so divided by the
            #    replica count); the logged KL is the plain one.
            reconstruction_loss = self.average(losses.masked_token_cross_entropy(input_ids, reconstruction))
            kl = self.average(losses.kl_divergence(z_mean, z_log_var))
            kl_objective = losses.free_bits_kl(z_mean, z_log_var, self.config.kl_annealing.free_bits)
            kl_objective /= self.strategy.num_replicas_in_sync
            loss = reconstruction_loss + schedule["kl_weight"] * kl_objective
            scaled_loss = self.optimizer.scale_loss(loss)

        # 4. Update the encoder and decoder (the GAN parts are untouched).
        gradients = tape.gradient(scaled_loss, self.variables)
        self.optimizer.apply_gradients(zip(gradients, self.variables))
        return {"loss": loss, "reconstruction": reconstruction_loss, "kl": kl}

    def replica_evaluate_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        input_ids = batch["input_ids"]
        z_mean, z_log_var, z = self.model.encoder(input_ids, training=False)
        reconstruction_loss = self.average(
            losses.masked_token_cross_entropy(input_ids, self.model.decoder(z, training=False))
        )
        kl = self.average(losses.kl_divergence(z_mean, z_log_var))
        # Token accuracy of the deterministic reconstruction from z_mean, as `respond` produces it.
        accuracy = self.average(
            losses.masked_token_accuracy(input_ids, self.model.decoder(z_mean, training=False))
        )
        return {
            "loss": reconstruction_loss + schedule.get("kl_weight", 0.0) * kl,
            "reconstruction": reconstruction_loss,
            "kl": kl,
            "token_accuracy": accuracy,
        }

    def epoch_diagnostics(self, validation: tf.data.Dataset) -> EpochMetrics:
        return latent_activity(self._encode_mean, validation)


def compile_encoding(model: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """Return a compiled function: message ids (batch, L) -> z_mean (batch, latent)."""

    def encode_mean(input_ids: tf.Tensor) -> tf.Tensor:
        z_mean, _, _ = model.encoder(input_ids, training=False)
        return z_mean

    return tf.function(encode_mean)


def latent_activity(encode_mean: Callable[[tf.Tensor], tf.Tensor], validation: tf.data.Dataset) -> EpochMetrics:
    """Count the active latent units over the validation messages."""
    z_means = [encode_mean(batch["input_ids"]).numpy() for batch in validation]
    if sum(len(z_mean) for z_mean in z_means) < 2:
        return {}
    return {"diagnostics/active_units": float(losses.active_units(np.concatenate(z_means)))}

def run_vae_pretrain(
    processed_dir: str | Path,
    output_model: str | Path,
    config: VaePretrainConfig,
    model_config: ModelConfig,
    metrics_dir: str | Path,
    checkpoint_dir: str | Path,
) -> TrainResult:
    """Build a new model and pre-train its encoder and decoder; write `output_model` and `metrics/vae_pretrain.json`.

    Checkpoints go to `checkpoint_dir/vae_pretrain/` and are removed once the outputs are written.
    """
    spec = StageSpec(
        name=STAGE,
        make_trainer=lambda model, resolved, strategy, plan, budget: VaeTrainer(model, resolved, strategy),
        sample_output="reconstructed_ids",
    )
    paths = StagePaths.of(processed_dir, output_model, metrics_dir, Path(checkpoint_dir) / STAGE)
    return run_training_stage(spec, paths, config, model_config)
