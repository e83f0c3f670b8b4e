"""The response inventory: the agent responses a model may answer with, taken from its training pairs.

A generator that emits every position at once cannot keep one phrasing: where
an intent has several, the most likely word at each position mixes them.
Scoring whole responses of the training corpus against the generator's
distributions (`decoding.pick_from_inventory`) always gives a fluent reply,
the approach of response-suggestion systems such as Smart Reply, while the
generator still decides which reply fits the message.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def build_response_inventory(
    agent_texts: Sequence[str], response_ids: np.ndarray, min_count: int, max_responses: int
) -> tuple[np.ndarray, float]:
    """Return the token ids (C, max_len) of the training responses seen at least `min_count` times, and their coverage.

    `agent_texts` and `response_ids` are row-aligned (a split's `agent_text`
    column and its (rows, max_len) ids). Responses come most frequent first,
    at most `max_responses` of them (0 gives an empty inventory). A response
    seen only once is more likely to carry one customer's details, and
    `min_count` keeps those out. Ties in frequency keep the order of first
    appearance, so the same pairs give the same inventory. The coverage is
    the share of the rows whose response is in the inventory.
    """
    if len(agent_texts) != len(response_ids):
        raise ValueError(f"got {len(agent_texts)} agent texts but {len(response_ids)} rows of response ids")
    max_len = response_ids.shape[1] if response_ids.ndim == 2 else 0
    if max_responses == 0 or len(agent_texts) == 0:
        return np.zeros((0, max_len), dtype=np.int32), 0.0

    texts = pd.Series(list(agent_texts))
    first_rows = texts.drop_duplicates()  # index: the first row of each distinct text
    counts = texts.value_counts(sort=False).reindex(first_rows.to_numpy()).to_numpy()
    order = np.argsort(-counts, kind="stable")
    selected = order[counts[order] >= min_count][:max_responses]

    inventory = np.asarray(response_ids[first_rows.index.to_numpy()[selected]], dtype=np.int32)
    coverage = float(counts[selected].sum() / len(texts))
    logger.info(
        "Response inventory: %d of %d distinct responses (seen at least %d times), covering %.1f%% of the pairs",
        len(inventory),
        len(first_rows),
        min_count,
        100.0 * coverage,
    )
    return inventory, coverage
