"""Typed config of the `bias_mitigation` section of params.yaml (no TensorFlow import)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hybrid_dialogue.config import StageConfig
from hybrid_dialogue.training.config import HybridFinetuneConfig


class InvarianceConfig(StageConfig):
    """Weight and warm-up of the counterfactual invariance loss."""

    # The loss is a mean over latent dimensions, so the weight does not
    # depend on latent_dim.
    weight: float = Field(default=1.0, ge=0.0, le=1000.0)
    # Share of all steps over which the weight rises linearly from 0, so the
    # first steps adapt to the augmented data before the latents are pulled together.
    warmup_fraction: float = Field(default=0.2, ge=0.0, le=1.0)


class AuditConfig(StageConfig):
    """Rows and batch size of the before and after audits."""

    # Test messages probed with counterfactual copies. 0 probes every test
    # message that mentions a listed name or gendered word.
    max_probe_messages: int = Field(default=2000, ge=0, le=10_000_000)
    # Other-group names that replace the customer's own name in each probed message.
    names_per_message: int = Field(default=1, ge=0, le=50)
    # Test pairs for the metadata group gaps and the quality cost (0: the whole split).
    max_test_pairs: int = Field(default=2000, ge=0, le=10_000_000)
    # Rows per model call.
    batch_size: int = Field(default=256, ge=1, le=65_536)
    # Most frequent unhelpful and helpful training responses each, whose
    # likelihoods give the preference gap (0 skips it).
    preference_responses: int = Field(default=8, ge=0, le=1000)
    # Probed messages shown in the report with their responses before and after.
    report_examples: int = Field(default=12, ge=0, le=1000)
    seed: int = Field(default=0, ge=0)


class TargetConfig(StageConfig):
    """Targets of mitigation. The report states whether each is met, and a missed target never fails the stage."""

    # The headline gap must fall by at least this share of its value before mitigation.
    min_gap_reduction: float = Field(default=0.5, ge=0.0, le=1.0)
    # Test BLEU may fall by at most this share of its value before mitigation.
    max_relative_bleu_loss: float = Field(default=0.05, ge=0.0, le=1.0)


class BiasMitigationConfig(StageConfig):
    """The `bias_mitigation` section of params.yaml."""

    # Attribute of the probes and the headline gap. Only gender has name and
    # word lists to swap; region gaps are still measured on the test pairs.
    attribute: Literal["gender"] = "gender"
    # Add a swapped copy of every training pair whose message has a listed name or gendered word.
    augmentation: bool = True
    # Draw training pairs with reweighing weights of (attribute group, helpful
    # agent response), so that every group gets the same share of helpful
    # responses: that of all pairs ("overall") or of the best-served group
    # ("best_group"). "best_group" also works when one group never gets an
    # unhelpful response, where "overall" cannot reach equal shares. Needs
    # the attribute's metadata; pairs without it count as one more group.
    reweighing: Literal["none", "overall", "best_group"] = "overall"
    invariance: InvarianceConfig = InvarianceConfig()
    audit: AuditConfig = AuditConfig()
    targets: TargetConfig = TargetConfig()
    # The hybrid fine-tuning settings of the mitigation run, with budgets per model preset.
    finetune: HybridFinetuneConfig
