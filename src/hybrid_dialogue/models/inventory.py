"""The response inventory: the agent responses a model can return, taken from its training pairs.

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
    agent_texts: Sequence[str],
    dialogue_ids: Sequence[str],
    response_ids: np.ndarray,
    min_dialogues: int,
    max_responses: int,
) -> tuple[np.ndarray, float]:
    """Return the token ids (C, max_len) of the responses used in at least `min_dialogues` dialogues, and their coverage.

    `agent_texts`, `dialogue_ids` and `response_ids` are row-aligned (a
    split's `agent_text` and `dialogue_id` columns and its (rows, max_len)
    ids). Counting distinct dialogues rather than rows keeps out replies that
    carry one customer's details (an order number, a username): on the
    default corpus, half of the replies seen twice named one, and none of
    those used in 5 dialogues did. Responses come most frequent first (by
    rows), at most `max_responses` of them (0 gives an empty inventory).
    Ties keep the order of first appearance, so the same pairs give the same
    inventory. The coverage is the share of the rows whose response is in
    the inventory.
    """
    if not len(agent_texts) == len(dialogue_ids) == len(response_ids):
        raise ValueError(
            f"got {len(agent_texts)} agent texts, {len(dialogue_ids)} dialogue ids and {len(response_ids)} rows "
            "of response ids: pass the columns of one split"
        )
    max_len = response_ids.shape[1] if response_ids.ndim == 2 else 0
    if max_responses == 0 or len(agent_texts) == 0:
        return np.zeros((0, max_len), dtype=np.int32), 0.0

    rows = pd.DataFrame({"text": list(agent_texts), "dialogue": list(dialogue_ids)})
    by_text = rows.groupby("text", sort=False)  # groups in order of first appearance
    counts = by_text.size().to_numpy()
    dialogues = by_text["dialogue"].nunique().to_numpy()
    first_rows = rows.drop_duplicates("text").index.to_numpy()

    order = np.argsort(-counts, kind="stable")
    selected = order[dialogues[order] >= min_dialogues][:max_responses]

    inventory = np.asarray(response_ids[first_rows[selected]], dtype=np.int32)
    coverage = float(counts[selected].sum() / len(rows))
    logger.info(
        "Response inventory: %d of %d distinct responses (used in at least %d dialogues), covering %.1f%% of the pairs",
        len(inventory),
        len(first_rows),
        min_dialogues,
        100.0 * coverage,
    )
    return inventory, coverage
