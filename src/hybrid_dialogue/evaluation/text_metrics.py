"""Load the project's `evaluate` metric modules by path and score generated texts with them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRIC_MODULES_DIR = Path(__file__).parent / "metrics"
METRIC_NAMES = ("bleu", "rouge", "distinct", "response_length", "perplexity")


def load_metric(name: str) -> Any:
    """Load one metric module of `metrics/` through `evaluate.load`, with no network access.

    `evaluate` copies the module file into `$HF_HOME/modules/evaluate_modules/`
    (default `~/.cache/huggingface`) and imports it from there. The metric keeps
    its inputs in memory, so `compute` writes no Arrow cache files.
    """
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric module {name!r}: expected one of {METRIC_NAMES}")

    # `evaluate` and `huggingface_hub` read these flags when first imported. A
    # local module needs no network, and the flags make any stray Hub lookup
    # fail fast instead of waiting on a timeout. setdefault keeps a user's own value.
    os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import evaluate

    return evaluate.load(str(METRIC_MODULES_DIR / f"{name}.py"), keep_in_memory=True)


class TextMetrics:
    """The text metric modules, loaded once and applied to any system's outputs."""

    def __init__(self) -> None:
        self._modules = {name: load_metric(name) for name in METRIC_NAMES}

    def score(self, predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """Return BLEU (0-100), ROUGE-1/2/L F1, distinct-1/2, mean length in tokens and length ratio."""
        if not predictions:
            raise ValueError("no predictions to score: the evaluated split must contain at least one pair")
        if len(predictions) != len(references):
            raise ValueError(f"got {len(predictions)} predictions but {len(references)} references")

        predictions = list(predictions)
        references = list(references)
        bleu = self._modules["bleu"].compute(predictions=predictions, references=references)
        rouge = self._modules["rouge"].compute(predictions=predictions, references=references)
        distinct = self._modules["distinct"].compute(predictions=predictions)
        length = self._modules["response_length"].compute(predictions=predictions, references=references)
        return {
            "bleu": bleu["bleu"],
            "rouge1": rouge["rouge1"],
            "rouge2": rouge["rouge2"],
            "rougeL": rouge["rougeL"],
            "distinct_1": distinct["distinct_1"],
            "distinct_2": distinct["distinct_2"],
            "mean_length": length["prediction_length"],
            "length_ratio": length["length_ratio"],
        }

    def describe_references(self, references: Sequence[str]) -> dict[str, float]:
        """Return distinct-1/2 and mean length of the references themselves, as a yardstick for the systems."""
        references = list(references)
        distinct = self._modules["distinct"].compute(predictions=references)
        length = self._modules["response_length"].compute(predictions=references, references=references)
        return {
            "distinct_1": distinct["distinct_1"],
            "distinct_2": distinct["distinct_2"],
            "mean_length": length["reference_length"],
        }

    def perplexity(self, log_likelihoods: Sequence[float], token_counts: Sequence[int]) -> float:
        """Return exp(mean negative log-likelihood per token) over all sequences."""
        result = self._modules["perplexity"].compute(
            log_likelihoods=[float(value) for value in log_likelihoods],
            token_counts=[int(value) for value in token_counts],
        )
        return result["perplexity"]
