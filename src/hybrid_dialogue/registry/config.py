"""Typed `register` section of `params.yaml`: promotion gates and whether the stage promotes."""

from __future__ import annotations

from pydantic import Field

from hybrid_dialogue.config import StageConfig


class GateConfig(StageConfig):
    """Thresholds a challenger must meet before it replaces the champion.

    BLEU is on sacrebleu's 0-100 scale and relevance is a share in [0, 1], as
    `metrics/evaluate.json` reports them.
    """

    # Small run-to-run noise on the test sample should not block promotion,
    # but a drop beyond this many BLEU points below the champion does.
    bleu_tolerance: float = Field(default=1.0, ge=0.0, le=100.0)

    # Largest allowed drop of the relevance share below the champion's.
    relevance_tolerance: float = Field(default=0.02, ge=0.0, le=1.0)

    # Minimum BLEU as a fraction of the retrieval baseline's BLEU on the same
    # split. It is a floor against a degenerate model (constant or empty
    # responses), not a quality target: a generator that only copies the
    # nearest training response would reach 1.0.
    min_bleu_vs_retrieval: float = Field(default=0.25, ge=0.0, le=10.0)

    # Largest allowed fairness gap after bias mitigation (difference between
    # groups, 0 = none). Checked only when `metrics/bias.json` exists.
    max_fairness_gap: float = Field(default=0.1, ge=0.0, le=1.0)


class RegisterConfig(StageConfig):
    """Configuration of the `register` stage and of `hybrid-dialogue promote`."""

    # Try promotion right after registering. Failed gates are logged and
    # recorded in metrics/register.json but do not fail the stage, so that
    # every pipeline run ends with a registered challenger.
    promote: bool = True
    gates: GateConfig = GateConfig()
