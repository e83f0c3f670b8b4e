"""Typed configs of the three training stages (`params.yaml` sections `vae_pretrain`,
`gan_pretrain` and `hybrid_finetune`).

Each stage also reads the `model` section (`hybrid_dialogue.models.config.ModelConfig`),
whose selected preset picks the stage's budget from `budgets`.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from hybrid_dialogue.config import StageConfig


class Budget(StageConfig):
    """Training length of one stage under one model preset."""

    epochs: int = Field(ge=1, le=10_000)
    # None trains on the whole training split each epoch. A smaller number
    # takes the first batches of each epoch's shuffled order, so successive
    # epochs still see different pairs.
    steps_per_epoch: int | None = Field(default=None, ge=1)
    # Global batch size under this preset; None keeps the stage's `batch_size`.
    batch_size: int | None = Field(default=None, ge=1, le=65_536)


class GanBudget(Budget):
    """GAN budget: the first `warmup_epochs` epochs are supervised (content loss only)."""

    warmup_epochs: int = Field(default=1, ge=0, le=10_000)

    @model_validator(mode="after")
    def _warmup_leaves_adversarial_epochs(self) -> GanBudget:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs}), "
                "so that at least one adversarial epoch runs"
            )
        return self


class PresetBudgets(StageConfig):
    """One budget per model preset (the presets of `model.presets`)."""

    seed: Budget
    cpu: Budget
    tiny: Budget


class GanPresetBudgets(StageConfig):
    """One GAN budget per model preset."""

    seed: GanBudget
    cpu: GanBudget
    tiny: GanBudget


class KlAnnealing(StageConfig):
    """KL weight schedule against posterior collapse.

    Starting the KL weight at 0 lets the encoder put information into z
    before the prior pulls every posterior towards N(0, I). `linear` rises
    to `weight` over the first `warmup_fraction` of all steps and stays
    there. `cyclical` splits training into `cycles` equal cycles and repeats
    that rise over the first `warmup_fraction` of each, so that later cycles
    can re-open latent units that an early collapse closed. `constant`
    applies `weight` from the first step.
    """

    schedule: Literal["linear", "cyclical", "constant"] = "cyclical"
    # Reconstruction loss is a mean over tokens while KL is a sum over latent
    # dimensions, so a weight of 1 would dwarf reconstruction. 0.1 matches the
    # KL weight of the hybrid stage, so fine-tuning starts on the same balance.
    weight: float = Field(default=0.1, ge=0.0, le=10.0)
    warmup_fraction: float = Field(default=0.5, gt=0.0, le=1.0)
    cycles: int = Field(default=4, ge=1, le=1000)
    # KL floor per latent dimension in nats ("free bits"): below it the prior
    # exerts no pull, so short runs keep informative latent units. 0 turns it off.
    free_bits: float = Field(default=0.0, ge=0.0, le=10.0)


class GumbelTemperature(StageConfig):
    """Gumbel-softmax temperature, decayed geometrically from `start` to `end` over all steps.

    A high temperature gives smooth, low-variance gradients to the generator
    but soft samples that the discriminator can tell from one-hot real
    responses by their entropy alone. Lowering it makes samples nearly
    one-hot as training proceeds.
    """

    start: float = Field(default=1.0, gt=0.0, le=10.0)
    end: float = Field(default=0.5, gt=0.0, le=10.0)


class HybridLossWeights(StageConfig):
    """Weights of the four losses of the end-to-end stage."""

    reconstruction: float = Field(default=1.0, ge=0.0, le=100.0)
    kl: float = Field(default=0.1, ge=0.0, le=100.0)
    adversarial: float = Field(default=1.0, ge=0.0, le=100.0)
    content: float = Field(default=0.5, ge=0.0, le=100.0)


class _TrainingConfig(StageConfig):
    """Settings shared by the three stages."""

    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    # Global batch size, split across replicas when several GPUs train.
    batch_size: int = Field(default=64, ge=1, le=65_536)
    # Gradient clipping by global norm: LSTM gradients can explode on long
    # sequences early in training.
    clip_norm: float = Field(default=5.0, gt=0.0, le=1000.0)
    # Validation batches evaluated at the end of every epoch (0 skips validation losses).
    validation_batches: int = Field(default=8, ge=0, le=100_000)
    # Validation customer messages whose generated responses are logged at each epoch end.
    sample_responses: int = Field(default=3, ge=0, le=100)
    # Make TensorFlow ops deterministic and turn grappler off (runtime.seed_everything),
    # so that one seed gives the same metrics on the same machine.
    deterministic: bool = True
    budgets: PresetBudgets

    def budget_for(self, preset: str) -> Budget:
        """Return the budget of model preset `preset` (seed, cpu or tiny)."""
        return getattr(self.budgets, preset)

    def for_preset(self, preset: str) -> Self:
        """Return this config with `batch_size` replaced by the preset budget's, when that is set."""
        batch_size = self.budget_for(preset).batch_size
        return self if batch_size is None else self.model_copy(update={"batch_size": batch_size})


class VaePretrainConfig(_TrainingConfig):
    """`vae_pretrain`: encoder and decoder reconstruct customer messages."""

    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    kl_annealing: KlAnnealing = KlAnnealing()


class GanPretrainConfig(_TrainingConfig):
    """`gan_pretrain`: the generator learns on the frozen encoder's latents."""

    # Adam(2e-4, beta_1=0.5) for both networks is the DCGAN setting: a lower
    # beta_1 makes the momentum follow the moving adversarial target faster.
    generator_learning_rate: float = Field(default=2e-4, gt=0.0, le=1.0)
    discriminator_learning_rate: float = Field(default=2e-4, gt=0.0, le=1.0)
    beta_1: float = Field(default=0.5, ge=0.0, lt=1.0)
    # Learning rate of the supervised warm-up, which has its own Adam (beta_1 0.9):
    # it is plain supervised learning, so it can move faster than the adversarial phase.
    warmup_learning_rate: float = Field(default=2e-4, gt=0.0, le=1.0)
    # Real labels become 1 - label_smoothing, fake labels stay 0 (one-sided),
    # so the discriminator is never rewarded for confident real scores.
    label_smoothing: float = Field(default=0.1, ge=0.0, lt=0.5)
    # The content loss stays on during adversarial epochs: with the adversarial
    # loss alone, a generator can produce fluent responses unrelated to the message.
    content_weight: float = Field(default=1.0, ge=0.0, le=100.0)
    adversarial_weight: float = Field(default=1.0, ge=0.0, le=100.0)
    gumbel_temperature: GumbelTemperature = GumbelTemperature()
    # Straight-through Gumbel-softmax: the discriminator gets the one-hot argmax of
    # each relaxed sample, and the gradient is that of the soft sample. Soft samples
    # differ from one-hot real responses by their entropy alone. The discriminator
    # learns that within one epoch on the default corpus (accuracy 1.0 on both
    # sides), and from then on its gradient carries no information about the content.
    straight_through_gumbel: bool = True
    budgets: GanPresetBudgets


class ResponseInventoryConfig(StageConfig):
    """Selection of the training responses that the published model returns (see models/inventory.py)."""

    # Distinct training dialogues a response must occur in (see build_response_inventory).
    min_dialogues: int = Field(default=5, ge=1, le=1_000_000)
    max_responses: int = Field(default=2000, ge=0, le=100_000)  # most frequent first; 0 generates freely
    # Minimum share of training pairs whose response is in the inventory. Below it the model decodes freely.
    min_coverage: float = Field(default=0.2, ge=0.0, le=1.0)


class HybridFinetuneConfig(_TrainingConfig):
    """`hybrid_finetune`: every part trained end to end on the four weighted losses."""

    learning_rate: float = Field(default=1e-4, gt=0.0, le=1.0)
    discriminator_learning_rate: float = Field(default=1e-4, gt=0.0, le=1.0)
    beta_1: float = Field(default=0.5, ge=0.0, lt=1.0)
    label_smoothing: float = Field(default=0.1, ge=0.0, lt=0.5)
    loss_weights: HybridLossWeights = HybridLossWeights()
    # KL floor per latent dimension in nats, as in vae_pretrain's kl_annealing.free_bits.
    kl_free_bits: float = Field(default=0.0, ge=0.0, le=10.0)
    # The default starts at the temperature where gan_pretrain ends, so the
    # discriminator gets samples as sharp as those it was trained on.
    gumbel_temperature: GumbelTemperature = GumbelTemperature(start=0.5, end=0.5)
    # See GanPretrainConfig.straight_through_gumbel.
    straight_through_gumbel: bool = True
    # The responses the published model picks from (its `respond` decoding).
    response_inventory: ResponseInventoryConfig = ResponseInventoryConfig()
