"""Headline metrics of a model version, read from the stage metric files and stored as version tags.

Promotion compares versions by these tags, so a version carries the numbers
it was registered with even after `metrics/` has moved on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

METRIC_TAG_PREFIX = "metric."

# Headline name -> (metric file name, dotted key inside it). The first key
# found wins, so a renamed key can be listed next to the old one.
HEADLINE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "bleu": (("evaluate.json", "model.bleu"),),
    "rouge_l": (("evaluate.json", "model.rougeL"), ("evaluate.json", "model.rouge_l")),
    "relevance": (("evaluate.json", "model.relevance"),),
    "perplexity": (("evaluate.json", "model.perplexity"),),
    "retrieval_bleu": (("evaluate.json", "retrieval.bleu"),),
    "constant_bleu": (("evaluate.json", "constant.bleu"),),
    "fairness_gap": (("bias.json", "gap_after"), ("bias.json", "after.gap")),
}


def read_headline_metrics(metric_paths: Iterable[str | Path]) -> dict[str, float]:
    """Return the headline metrics found in the given metric files.

    A missing file is logged and skipped, because `bias.json` exists only
    once bias mitigation has run. Non-numeric or NaN values are skipped too,
    for example relevance on a corpus without intents.
    """
    files: dict[str, dict] = {}
    for path in map(Path, metric_paths):
        if not path.is_file():
            logger.info("Metric file %s not found; its metrics are not recorded", path)
            continue
        files[path.name] = json.loads(path.read_text(encoding="utf-8"))

    headline: dict[str, float] = {}
    for name, candidates in HEADLINE_KEYS.items():
        for file_name, dotted_key in candidates:
            value = _lookup(files.get(file_name, {}), dotted_key)
            if value is not None:
                headline[name] = value
                break
    return headline


def metrics_to_tags(metrics: Mapping[str, float]) -> dict[str, str]:
    return {f"{METRIC_TAG_PREFIX}{name}": repr(float(value)) for name, value in metrics.items()}


def metrics_from_tags(tags: Mapping[str, str]) -> dict[str, float]:
    """Parse the `metric.*` tags of a model version; tags that are not numbers are skipped."""
    metrics: dict[str, float] = {}
    for key, value in tags.items():
        if not key.startswith(METRIC_TAG_PREFIX):
            continue
        try:
            metrics[key[len(METRIC_TAG_PREFIX) :]] = float(value)
        except ValueError:
            logger.warning("Ignoring model version tag %s = %r: not a number", key, value)
    return metrics


def _lookup(payload: Mapping, dotted_key: str) -> float | None:
    value: object = payload
    for part in dotted_key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)
