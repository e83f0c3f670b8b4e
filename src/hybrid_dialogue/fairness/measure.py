"""Bias measures: helpfulness, counterfactual consistency and group gaps.

Group gaps come from `fairlearn.metrics.MetricFrame`: one frame per
attribute over the per-response values in `GAP_METRICS`, with `by_group`
giving each group's value and `difference()` the largest minus the smallest
group value of each metric.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# Per-response values a gap is measured on, and what each one means.
GAP_METRICS = {
    "quality": "mean discriminator score of the response (0 to 1)",
    "length": "mean response length in sacrebleu 13a tokens",
    "relevance": "share of responses whose predicted intent is the customer's intent",
    "helpfulness": "share of responses with a resolution step (lexicon)",
    "bleu": "corpus BLEU of the responses against the references (0 to 100)",
    "preference": "mean unhelpful-response preference of the generator, in nats (only when measured)",
}

# Per-response value columns of the mean metrics, by metric name.
_VALUE_COLUMNS = {"quality": "quality", "length": "length", "relevance": "relevant", "helpfulness": "helpful",
                  "preference": "preference"}

# Columns of the frame that `group_gaps` reads, one row per response; `preference` is optional.
RESPONSE_COLUMNS = ("response", "reference", "quality", "length", "relevant", "helpful")

BleuFunction = Callable[[Sequence[str], Sequence[str]], float]


class ResolutionLexicon:
    """Phrases that mark a resolution step ("i have", "you can", "within"), matched as whole words."""

    def __init__(self, phrases: Sequence[str]) -> None:
        cleaned = sorted({" ".join(phrase.lower().split()) for phrase in phrases if phrase.strip()}, key=len, reverse=True)
        if not cleaned:
            raise ValueError("the resolution lexicon is empty; list at least one phrase")
        self.phrases = tuple(cleaned)
        alternatives = "|".join(re.escape(phrase).replace(r"\ ", r"\s+") for phrase in cleaned)
        self._pattern = re.compile(rf"(?<![\w'])(?:{alternatives})(?!\w)", re.IGNORECASE)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ResolutionLexicon:
        """Load a phrase list (`{"phrases": [...]}`); the default is the package's `resources/resolution_phrases.json`."""
        if path is None:
            text = resources.files("hybrid_dialogue.fairness").joinpath("resources/resolution_phrases.json").read_text("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return cls(json.loads(text)["phrases"])

    def has_resolution_step(self, texts: Sequence[str]) -> np.ndarray:
        """Return (N,) bool: whether each text contains at least one phrase."""
        return np.array([self._pattern.search(text) is not None for text in texts], dtype=bool)


@dataclass(frozen=True)
class GroupGaps:
    """Each group's value of each metric, and the largest minus the smallest group value."""

    attribute: str
    by_group: dict[str, dict[str, float | None]]  # metric -> group -> value
    difference: dict[str, float | None]  # metric -> max - min over groups
    counts: dict[str, int]  # group -> responses

    def to_dict(self) -> dict[str, Any]:
        return {"by_group": self.by_group, "difference": self.difference, "counts": self.counts}


def group_gaps(
    responses: pd.DataFrame, groups: Sequence[str], attribute: str, bleu: BleuFunction
) -> GroupGaps | None:
    """Measure the `GAP_METRICS` per group with a fairlearn `MetricFrame`.

    `responses` has the `RESPONSE_COLUMNS`, one row per response, and
    `groups` the group of each row. Rows with an empty group are left out.
    `relevant` may be NaN (no intent); relevance averages the others.
    Returns None when fewer than two groups remain.
    """
    from fairlearn.metrics import MetricFrame

    groups = pd.Series(list(groups), dtype=object).fillna("").astype(str)
    if len(groups) != len(responses):
        raise ValueError(f"got {len(groups)} group labels for {len(responses)} responses")
    keep = (groups != "").to_numpy()
    if groups[keep].nunique() < 2:
        logger.info("No %s gap: fewer than two groups among %d labelled responses", attribute, int(keep.sum()))
        return None

    rows = responses[keep].reset_index(drop=True)
    values = {name: rows[column].to_numpy(dtype=np.float64) for name, column in _VALUE_COLUMNS.items() if column in rows}
    frame = MetricFrame(
        metrics={**{name: _mean_of_values for name in values}, "bleu": lambda y_true, y_pred: bleu(list(y_pred), list(y_true))},
        y_true=rows["reference"].to_numpy(dtype=object),
        y_pred=rows["response"].to_numpy(dtype=object),
        sensitive_features=pd.Series(groups[keep].to_numpy(), name=attribute),
        sample_params={name: {"values": array} for name, array in values.items()},
    )
    by_group = {
        metric: {str(group): _number(value) for group, value in frame.by_group[metric].items()}
        for metric in GAP_METRICS
        if metric in frame.by_group
    }
    difference = {metric: _number(value) for metric, value in frame.difference().items()}
    counts = {str(group): int(count) for group, count in groups[keep].value_counts().sort_index().items()}
    return GroupGaps(attribute=attribute, by_group=by_group, difference=difference, counts=counts)


def consistency(original: Sequence[str], variant: Sequence[str], bleu: BleuFunction) -> dict[str, float | int | None]:
    """Compare responses to messages and to their counterfactual copies, row by row.

    Returns `identical_rate` (share of pairs with the same response), `bleu`
    (corpus BLEU of the variants' responses against the originals' responses,
    0 to 100) and `pairs`.
    """
    if len(original) != len(variant):
        raise ValueError(f"got {len(original)} original and {len(variant)} variant responses; pair them one to one")
    if not original:
        return {"identical_rate": None, "bleu": None, "pairs": 0}
    identical = np.mean([left == right for left, right in zip(original, variant)])
    return {"identical_rate": float(identical), "bleu": _number(bleu(list(variant), list(original))), "pairs": len(original)}


class BleuScorer:
    """Corpus BLEU from the project's `evaluate` module, loaded once; empty inputs give NaN."""

    def __init__(self) -> None:
        from hybrid_dialogue.evaluation.text_metrics import load_metric

        self._module = load_metric("bleu")

    def __call__(self, predictions: Sequence[str], references: Sequence[str]) -> float:
        if not predictions:
            return math.nan
        return float(self._module.compute(predictions=list(predictions), references=list(references))["bleu"])


def response_lengths(texts: Sequence[str]) -> np.ndarray:
    """Return (N,) token counts with sacrebleu's 13a tokenizer, as the evaluate stage's length metric counts."""
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenize = Tokenizer13a()
    return np.array([len(tokenize(text).split()) for text in texts], dtype=np.float64)


def _mean_of_values(y_true: Any, y_pred: Any, values: np.ndarray) -> float:
    # MetricFrame passes each group's slice of `values`; NaN marks "not measured" (relevance without intent).
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _number(value: Any) -> float | None:
    """Return a float, or None for NaN, so the value can go into JSON."""
    value = float(value)
    return None if math.isnan(value) else value
