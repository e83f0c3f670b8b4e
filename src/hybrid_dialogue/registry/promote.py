"""Promotion of a registered version to the `champion` alias, behind quality gates.

`evaluate_gates` is a pure function of the two versions' headline metrics
and the gate thresholds. `promote` reads the metrics from the version tags
that registration wrote, moves `champion` only when every gate passes (or
when forced with a reason), and records the decision as version tags.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from hybrid_dialogue.registry import CHALLENGER_ALIAS, CHAMPION_ALIAS, MODEL_NAME
from hybrid_dialogue.registry.config import GateConfig
from hybrid_dialogue.registry.metrics import metrics_from_tags

logger = logging.getLogger(__name__)

FORCED_REASON_TAG = "promotion.forced_reason"
PROMOTION_TAG = "promotion.result"
PREVIOUS_CHAMPION_TAG = "promotion.previous_champion"


class PromotionError(RuntimeError):
    """A promotion request that cannot be carried out (no such version, no reason for --force)."""


@dataclass(frozen=True)
class GateResult:
    """One gate: the challenger's value, the value it is compared with, and the outcome."""

    name: str
    challenger: float | None
    reference: float | None
    reference_label: str  # what `reference` is: "champion", "threshold" or "-"
    passed: bool
    note: str = ""


@dataclass(frozen=True)
class PromotionResult:
    """The outcome of one promotion attempt."""

    name: str
    version: str
    previous_champion: str | None
    gates: list[GateResult] = field(default_factory=list)
    promoted: bool = False
    forced: bool = False
    reason: str | None = None

    @property
    def gates_passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "previous_champion": self.previous_champion,
            "promoted": self.promoted,
            "forced": self.forced,
            "reason": self.reason,
            "gates_passed": self.gates_passed,
            "gates": [gate.__dict__ for gate in self.gates],
        }


def evaluate_gates(
    challenger: dict[str, float], champion: dict[str, float] | None, gates: GateConfig
) -> list[GateResult]:
    """Check the challenger's headline metrics against the champion's and the baselines.

    Without a champion (the first version) only the baseline and fairness
    gates apply. A metric the challenger lacks fails its gate, except
    relevance when neither version has it (a corpus without intents) and the
    fairness gap when bias mitigation has not run.
    """
    results = []
    if champion is None:
        results.append(GateResult("bleu_vs_champion", challenger.get("bleu"), None, "-", True, "no champion yet"))
        results.append(GateResult("relevance_vs_champion", challenger.get("relevance"), None, "-", True, "no champion yet"))
    else:
        results.append(_no_worse_than("bleu", challenger, champion, gates.bleu_tolerance))
        results.append(_no_worse_than("relevance", challenger, champion, gates.relevance_tolerance))
    results.append(_bleu_vs_retrieval(challenger, gates.min_bleu_vs_retrieval))
    results.append(_fairness_gap(challenger, gates.max_fairness_gap))
    return results


def _no_worse_than(metric: str, challenger: dict, champion: dict, tolerance: float) -> GateResult:
    name = f"{metric}_vs_champion"
    ours, theirs = challenger.get(metric), champion.get(metric)
    if ours is None and theirs is None:
        return GateResult(name, None, None, "champion", True, f"{metric} measured for neither version")
    if ours is None:
        return GateResult(name, None, theirs, "champion", False, f"challenger has no {metric}: rerun evaluate")
    if theirs is None:
        return GateResult(name, ours, None, "champion", True, f"champion has no {metric}")
    passed = ours >= theirs - tolerance
    return GateResult(name, ours, theirs, "champion", passed, f"tolerance {tolerance:g}")


def _bleu_vs_retrieval(challenger: dict, min_fraction: float) -> GateResult:
    name = "bleu_vs_retrieval"
    bleu, retrieval = challenger.get("bleu"), challenger.get("retrieval_bleu")
    if bleu is None or retrieval is None:
        return GateResult(name, bleu, None, "threshold", False, "BLEU or retrieval BLEU missing: rerun evaluate")
    threshold = min_fraction * retrieval
    note = f"{min_fraction:g} x retrieval BLEU {retrieval:.2f}"
    return GateResult(name, bleu, threshold, "threshold", bleu >= threshold, note)


NO_GAP_NOTE = "no gap measured (no bias metrics, or no group metadata or names in the test split): not checked"


def _fairness_gap(challenger: dict, max_gap: float) -> GateResult:
    gap = challenger.get("fairness_gap")
    if gap is None:
        # Passes so that corpora without group metadata or names can still be
        # promoted. The note explains why no gap exists.
        return GateResult("fairness_gap", None, max_gap, "threshold", True, NO_GAP_NOTE)
    return GateResult("fairness_gap", gap, max_gap, "threshold", gap <= max_gap, "maximum")


def promote(
    gates: GateConfig,
    version: str | int | None = None,
    force: bool = False,
    reason: str | None = None,
    name: str = MODEL_NAME,
) -> PromotionResult:
    """Compare `version` (default: the `challenger`) with the `champion` and move `champion` if every gate passes.

    With `force`, `champion` moves regardless of the gate results, and `reason` is
    stored on the version as the tag `promotion.forced_reason`. Uses the
    tracking URI that MLflow is configured with.
    """
    import mlflow

    if force and not (reason and reason.strip()):
        raise PromotionError("--force needs --reason TEXT, which is recorded on the version")
    client = mlflow.MlflowClient()
    candidate = _resolve_version(client, name, version)
    champion = _alias_version(client, name, CHAMPION_ALIAS)
    # Version numbers are int from the SQLite store and str over REST.
    candidate_version = str(candidate.version)
    previous = str(champion.version) if champion is not None else None

    if previous == candidate_version:
        logger.info("Version %s of %s is already the champion", candidate_version, name)
        return PromotionResult(name, candidate_version, previous, [], promoted=False)

    champion_metrics = metrics_from_tags(champion.tags) if champion is not None else None
    results = evaluate_gates(metrics_from_tags(candidate.tags), champion_metrics, gates)
    passed = all(result.passed for result in results)

    if passed or force:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, candidate_version)
        client.set_model_version_tag(name, candidate_version, PREVIOUS_CHAMPION_TAG, previous or "none")
        if force:
            client.set_model_version_tag(name, candidate_version, FORCED_REASON_TAG, reason.strip())
        logger.info("Version %s of %s is now the champion (previous: %s)", candidate_version, name, previous)
    outcome = "failed"
    if passed:
        outcome = "passed"
    elif force:
        outcome = "forced"
    client.set_model_version_tag(name, candidate_version, PROMOTION_TAG, outcome)

    return PromotionResult(
        name, candidate_version, previous, results, promoted=passed or force, forced=force and not passed,
        reason=reason.strip() if force else None,
    )


def format_table(result: PromotionResult) -> str:
    """Render the gates as a fixed-width text table, followed by the decision."""
    if not result.gates:
        return _decision(result)
    header = ("gate", "challenger", "compared with", "result", "note")
    rows = [header]
    for gate in result.gates:
        reference = "-" if gate.reference is None else f"{gate.reference_label} {gate.reference:.4g}"
        rows.append((
            gate.name, _format_value(gate.challenger), reference, "pass" if gate.passed else "FAIL", gate.note,
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    lines.append(_decision(result))
    return "\n".join(lines)


def _decision(result: PromotionResult) -> str:
    subject = f"{result.name} version {result.version}"
    if not result.gates:
        return f"{subject} is already the champion."
    if result.forced:
        return f"{subject} is now the champion, FORCED past failed gates (reason: {result.reason})."
    if result.promoted:
        return f"{subject} is now the champion (previous: {result.previous_champion or 'none'})."
    if result.previous_champion is None:
        return f"{subject} was not promoted because a gate failed. No version is champion yet."
    return f"{subject} was not promoted because a gate failed. The champion stays version {result.previous_champion}."


def _format_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _resolve_version(client: Any, name: str, version: str | int | None) -> Any:
    from mlflow.exceptions import MlflowException

    if version is None:
        found = _alias_version(client, name, CHALLENGER_ALIAS)
        if found is None:
            raise PromotionError(
                f"registered model {name!r} has no '{CHALLENGER_ALIAS}' version: run "
                "`hybrid-dialogue register` first, or pass --version N"
            )
        return found
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as error:
        raise PromotionError(f"version {version} of registered model {name!r} not found: {error.message}") from error


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
