"""GAN pre-training: the generator learns agent responses from the frozen encoder's latent codes.

Epochs before `warmup_epochs` are supervised (content loss only), so the
adversarial phase starts from a generator that already fits the reference
responses. Later epochs alternate a discriminator update and a generator
update per batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hybrid_dialogue.models.config import ModelConfig
from hybrid_dialogue.models.decoding import decode_ids
from hybrid_dialogue.training import losses
from hybrid_dialogue.training.config import GanPretrainConfig
from hybrid_dialogue.training.loop import Batch, EpochMetrics, StageTrainer
from hybrid_dialogue.training.runtime import make_adam
from hybrid_dialogue.training.schedules import gumbel_temperature
from hybrid_dialogue.training.stage import StagePaths, StageSpec, TrainResult, run_training_stage

STAGE = "gan_pretrain"


def update_discriminator(
    model: Any,
    optimizer: Any,
    response_ids: tf.Tensor,
    fake: tf.Tensor,
    label_smoothing: float,
    average: Callable[[tf.Tensor], tf.Tensor],
) -> dict[str, tf.Tensor]:
    """Take one discriminator step on real responses (ids) against generated distributions.

    response_ids: (batch, L) int. fake: (batch, L, vocab), treated as a
    constant. Returns the loss and the accuracy on each side.
    """
    real = tf.one_hot(response_ids, model.architecture.vocab_size, dtype=tf.float32)  # (batch, L, vocab)
    fake = tf.cast(tf.stop_gradient(fake), tf.float32)
    batch_size = tf.shape(real)[0]
    variables = model.discriminator.trainable_variables
    with tf.GradientTape() as tape:
        # One pass over the real and fake rows stacked (2 x batch), so each LSTM loop of the
        # discriminator runs once instead of twice. Every layer treats rows independently,
        # so the scores equal those of two passes, apart from the dropout draws.
        scores = model.discriminator(tf.concat([real, fake], axis=0), training=True)  # (2 x batch, 1)
        real_scores, fake_scores = scores[:batch_size], scores[batch_size:]
        loss = average(losses.discriminator_loss(real_scores, fake_scores, label_smoothing))
        scaled_loss = optimizer.scale_loss(loss)
    optimizer.apply_gradients(zip(tape.gradient(scaled_loss, variables), variables))
    return {
        "discriminator_loss": loss,
        "discriminator_accuracy_real": average(losses.score_accuracy(real_scores, real=True)),
        "discriminator_accuracy_fake": average(losses.score_accuracy(fake_scores, real=False)),
    }


class GanTrainer(StageTrainer):
    """Compiled steps of the GAN stage: supervised warm-up, then alternating D and G updates."""

    def __init__(
        self,
        model: Any,
        config: GanPretrainConfig,
        strategy: tf.distribute.Strategy,
        warmup_epochs: int,
        steps_per_epoch: int,
    ) -> None:
        self.config = config
        self.warmup_epochs = warmup_epochs
        self.warmup_steps = warmup_epochs * steps_per_epoch
        self.generator_variables = model.generator.trainable_variables
        with strategy.scope():
            self.generator_optimizer = make_adam(
                config.generator_learning_rate, config.clip_norm, model.mixed_precision, config.beta_1, "generator_adam"
            )
            self.discriminator_optimizer = make_adam(
                config.discriminator_learning_rate,
                config.clip_norm,
                model.mixed_precision,
                config.beta_1,
                "discriminator_adam",
            )
            self.warmup_optimizer = make_adam(
                config.warmup_learning_rate, config.clip_norm, model.mixed_precision, name="warmup_adam"
            )
            self.generator_optimizer.build(self.generator_variables)
            self.warmup_optimizer.build(self.generator_variables)
            self.discriminator_optimizer.build(model.discriminator.trainable_variables)
        super().__init__(model, strategy, config.batch_size)
        # Read when the steps are traced (first call), so set before training starts.
        self._saved_hard_gumbel = model.gumbel.hard
        model.gumbel.hard = config.straight_through_gumbel
        self._warmup_function = self.compile_step(self.replica_warmup_step)
        self._generate_ids = compile_generation(model)

    def restore_model_settings(self) -> None:
        self.model.gumbel.hard = self._saved_hard_gumbel

    def checkpoint_objects(self) -> dict[str, Any]:
        return {
            "warmup_optimizer": self.warmup_optimizer,
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
        }

    def schedule(self, step: int, total_steps: int, epoch: int) -> dict[str, float]:
        # The temperature anneals over the adversarial steps only: warm-up never samples.
        adversarial_step = max(step - self.warmup_steps, 0)
        temperature = gumbel_temperature(
            adversarial_step, total_steps - self.warmup_steps, self.config.gumbel_temperature
        )
        self.model.set_gumbel_temperature(temperature)
        return {"gumbel_temperature": temperature}

    def train_step(self, batch: Batch, epoch: int, schedule: dict[str, float]) -> dict[str, tf.Tensor]:
        step_function = self._warmup_function if epoch < self.warmup_epochs else self._train_function
        return step_function(batch, {})

    def replica_warmup_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        # 1. Latent codes of the messages from the frozen encoder: (batch, latent).
        _, _, z = self.model.encoder(batch["input_ids"], training=False)

        # 2. Fit the generator's distributions to the reference responses.
        with tf.GradientTape() as tape:
            response = self.model.generator(z, training=True)  # (batch, L, vocab)
            content = self.average(losses.masked_token_cross_entropy(batch["response_ids"], response))
            scaled_loss = self.warmup_optimizer.scale_loss(content)
        gradients = tape.gradient(scaled_loss, self.generator_variables)
        self.warmup_optimizer.apply_gradients(zip(gradients, self.generator_variables))
        return {"generator_loss": content, "content": content}

    def replica_train_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        response_ids = batch["response_ids"]

        # 1. Latent codes of the messages from the frozen encoder: (batch, latent).
        _, _, z = self.model.encoder(batch["input_ids"], training=False)

        with tf.GradientTape() as tape:
            # 2. Generate distributions and relax them to near one-hot samples: (batch, L, vocab).
            response = self.model.generator(z, training=True)
            fake = self.model.gumbel(response, training=True)

            # 3. Discriminator update on real vs these samples. The generator's
            #    forward pass is shared with step 4 instead of being run twice.
            with tape.stop_recording():
                logs = update_discriminator(
                    self.model,
                    self.discriminator_optimizer,
                    response_ids,
                    fake,
                    self.config.label_smoothing,
                    self.average,
                )

            # 4. Generator loss against the updated discriminator, plus content preservation.
            fake_scores = self.model.discriminator(fake, training=True)
            adversarial = self.average(losses.generator_adversarial_loss(fake_scores))
            content = self.average(losses.masked_token_cross_entropy(response_ids, response))
            loss = self.config.adversarial_weight * adversarial + self.config.content_weight * content
            scaled_loss = self.generator_optimizer.scale_loss(loss)

        # 5. Update the generator only.
        gradients = tape.gradient(scaled_loss, self.generator_variables)
        self.generator_optimizer.apply_gradients(zip(gradients, self.generator_variables))
        return {**logs, "generator_loss": loss, "adversarial": adversarial, "content": content}

    def replica_evaluate_step(self, batch: Batch, schedule: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return evaluate_responses(self.model, batch, self.average)

    def epoch_diagnostics(self, validation: tf.data.Dataset) -> EpochMetrics:
        return response_diversity(self._generate_ids, validation)


def evaluate_responses(model: Any, batch: Batch, average: Callable[[tf.Tensor], tf.Tensor]) -> dict[str, tf.Tensor]:
    """Score the deterministic responses (from z_mean) of a validation batch.

    Returns content loss and token accuracy against the reference, and the
    discriminator's accuracy on the reference (real) and on the Gumbel-softmax
    output of the responses without noise (fake; one-hot argmax rows when the
    Gumbel layer is straight-through).
    """
    response_ids = batch["response_ids"]
    z_mean, _, _ = model.encoder(batch["input_ids"], training=False)
    response = model.generator(z_mean, training=False)  # (batch, L, vocab)
    real = tf.one_hot(response_ids, model.architecture.vocab_size, dtype=tf.float32)
    real_scores = model.discriminator(real, training=False)
    fake_scores = model.discriminator(model.gumbel(response, training=False), training=False)
    return {
        "content": average(losses.masked_token_cross_entropy(response_ids, response)),
        "token_accuracy": average(losses.masked_token_accuracy(response_ids, response)),
        "discriminator_accuracy_real": average(losses.score_accuracy(real_scores, real=True)),
        "discriminator_accuracy_fake": average(losses.score_accuracy(fake_scores, real=False)),
    }


def response_diversity(generate_ids: Callable[[tf.Tensor], tf.Tensor], validation: tf.data.Dataset) -> EpochMetrics:
    """Distinct-1 and distinct-2 of the responses generated for the validation messages."""
    rows = [generate_ids(batch["input_ids"]).numpy() for batch in validation]
    if not rows:
        return {}
    generated = np.concatenate(rows)
    return {
        "diagnostics/distinct_1": losses.distinct_n(generated, 1),
        "diagnostics/distinct_2": losses.distinct_n(generated, 2),
    }


def compile_generation(model: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    """Return a compiled function: message ids (batch, L) -> response ids (batch, L) from z_mean, as `respond` decodes."""

    def generate_ids(input_ids: tf.Tensor) -> tf.Tensor:
        z_mean, _, _ = model.encoder(input_ids, training=False)
        return decode_ids(model.generator(z_mean, training=False))

    return tf.function(generate_ids)


def run_gan_pretrain(
    processed_dir: str | Path,
    input_model: str | Path,
    output_model: str | Path,
    config: GanPretrainConfig,
    model_config: ModelConfig,
    metrics_dir: str | Path,
    checkpoint_dir: str | Path,
) -> TrainResult:
    """Pre-train the generator and discriminator of the VAE-stage model `input_model`.

    Writes `output_model` and `metrics/gan_pretrain.json`. Checkpoints go to
    `checkpoint_dir/gan_pretrain/` and are removed once the outputs are written.
    """

    def make_trainer(
        model: Any, resolved: GanPretrainConfig, strategy: tf.distribute.Strategy, plan: Any, budget: Any
    ) -> GanTrainer:
        return GanTrainer(model, resolved, strategy, budget.warmup_epochs, plan.steps_per_epoch)

    spec = StageSpec(name=STAGE, make_trainer=make_trainer)
    paths = StagePaths.of(processed_dir, output_model, metrics_dir, Path(checkpoint_dir) / STAGE, input_model)
    return run_training_stage(spec, paths, config, model_config)
