"""Token attributions with shap's Partition explainer, and their aggregation over examples."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# A token made only of punctuation or symbols, such as "." or "?!".
_PUNCTUATION = re.compile(r"^[\W_]+$")
# Characters stripped from the ends of a token for ranking; brackets are kept
# so that placeholders such as [EMAIL] stay whole.
_EDGE_PUNCTUATION = ".,!?;:'\"()-"
# A redaction placeholder such as [EMAIL], kept in upper case.
_PLACEHOLDER = re.compile(r"^\[[A-Z]+\]$")


@dataclass(frozen=True)
class Attribution:
    """One explained text: its tokens and their SHAP values for one scalar output."""

    text: str
    group: str  # the intent of the example, "" when unknown
    tokens: list[str]  # the masker's tokens, surrounding spaces stripped
    values: np.ndarray  # (tokens,) SHAP values, in the unit of the explained output
    base_value: float  # the output with every token masked
    output_value: float  # the output for the whole text: base_value + values.sum(), up to the explainer's error
    explanation: Any  # the shap.Explanation, for shap.plots.text


@dataclass(frozen=True)
class TokenScore:
    """A token's |SHAP| over the explained texts, in the unit of the explained output."""

    token: str
    total_abs_shap: float  # sum over occurrences, the ranking key
    mean_abs_shap: float  # per occurrence
    count: int  # occurrences over the explained texts

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "total_abs_shap": self.total_abs_shap,
            "mean_abs_shap": self.mean_abs_shap,
            "count": self.count,
        }


def explain_text(function: Callable[[Sequence[str]], np.ndarray], masker: Any, text: str, group: str,
                 max_evals: int, batch_size: int) -> Attribution:
    """Explain `function(text)` with a Partition explainer over `masker`'s tokens.

    `max_evals` bounds the calls of `function` per text (counted in texts);
    `batch_size` masked texts go to `function` at once.
    """
    import shap

    explainer = shap.explainers.Partition(function, masker)
    explanation = explainer([text], max_evals=max_evals, batch_size=batch_size, silent=True)[0]
    values = np.asarray(explanation.values, dtype=np.float64)
    base_value = float(np.asarray(explanation.base_values).reshape(-1)[0])
    return Attribution(
        text=text,
        group=group,
        tokens=[str(token).strip() for token in explanation.data],
        values=values,
        base_value=base_value,
        output_value=base_value + float(values.sum()),
        explanation=explanation,
    )


def token_importance(attributions: Sequence[Attribution], top: int, min_count: int = 1) -> dict[str, Any]:
    """Rank tokens by total |SHAP| (the sum over their occurrences), overall and per group.

    The total is mean |SHAP| x count, so a token ranks high when it moves
    the output in many texts. A ranking by the mean lets a rare token with
    two large values, such as a fragment of an order number, lead.
    Tokens are compared by `token_key` (lower-cased, edge punctuation
    removed). Tokens seen fewer than `min_count` times in a ranking are left
    out of it. Returns `overall` and
    `by_group` (lists of `TokenScore` as dicts, best first, at most `top`),
    and `punctuation_share`: the share of all |SHAP| mass on punctuation tokens.
    """
    overall = _rank(attributions, top, min_count)
    groups = sorted({attribution.group for attribution in attributions if attribution.group})
    by_group = {
        group: _rank([attribution for attribution in attributions if attribution.group == group], top, min_count)
        for group in groups
    }
    return {
        "overall": [score.to_dict() for score in overall],
        "by_group": {group: [score.to_dict() for score in scores] for group, scores in by_group.items()},
        "punctuation_share": punctuation_share(attributions),
    }


def punctuation_share(attributions: Sequence[Attribution]) -> float | None:
    """Return the share of the total |SHAP| mass that falls on punctuation tokens; None when there is none."""
    total = punctuation = 0.0
    for attribution in attributions:
        for token, value in zip(attribution.tokens, np.abs(attribution.values)):
            total += value
            if token and _PUNCTUATION.match(token):
                punctuation += value
    return punctuation / total if total > 0 else None


def token_key(token: str) -> str:
    """Return the ranking key of a token: lower-cased (placeholders excepted), without edge punctuation unless all punctuation.

    The project's BPE tokens keep the punctuation that follows a word
    ("order."), so "order." and "order" rank as one word.
    """
    lowered = token.strip() if _PLACEHOLDER.match(token.strip()) else token.strip().lower()
    stripped = lowered.strip(_EDGE_PUNCTUATION)
    return stripped or lowered


def _rank(attributions: Sequence[Attribution], top: int, min_count: int) -> list[TokenScore]:
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for attribution in attributions:
        for token, value in zip(attribution.tokens, np.abs(attribution.values)):
            key = token_key(token)
            if key:
                sums[key] += float(value)
                counts[key] += 1
    scores = [
        TokenScore(token, sums[token], sums[token] / counts[token], counts[token])
        for token in sums
        if counts[token] >= min_count
    ]
    scores.sort(key=lambda score: (-score.total_abs_shap, score.token))
    return scores[:top]
