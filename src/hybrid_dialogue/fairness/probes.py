"""The counterfactual probe set: test messages paired with copies that signal another group.

Each probed message appears once as written and once or more as a
counterfactual variant, which keeps every word except those that signal the
customer's group:

- `swap`: names and gendered words swapped by `CounterfactualSwapper.swap`
  ("I'm maria ... my husband" -> "I'm james ... my wife");
- `name`: the customer's own first name, taken from the `customer_name`
  metadata, replaced by a name of another group of the attribute (for
  gender, in the swapped text, so that the gendered words agree). This also
  covers names that are not in the package's lists.

Only messages with at least one variant that differs from the original are
probed. Each row carries the group its text signals: the metadata group for
the original, the other group for a variant. Comparing responses across
those groups compares the model's replies to the same request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybrid_dialogue.fairness.counterfactual import CounterfactualSwapper

logger = logging.getLogger(__name__)

ORIGINAL, SWAP, NAME = "original", "swap", "name"

# Columns of `ProbeSet.rows`.
PROBE_COLUMNS = (
    "probe_id",  # "<pair_id>:<kind>[:<index>]"
    "message_id",  # position of the probed message in the probe set, shared by its variants
    "kind",  # original, swap or name
    "input_text",  # the encoder input: the message (and context) as written or changed
    "group",  # the group the text signals for the probe attribute; "" when unknown
    "intent",
    "agent_text",  # the reference response of the original message
)


@dataclass(frozen=True)
class ProbeSet:
    """Probed messages and their variants, one row each, in the columns of `PROBE_COLUMNS`."""

    attribute: str
    rows: pd.DataFrame

    @property
    def originals(self) -> pd.DataFrame:
        return self.rows[self.rows["kind"] == ORIGINAL]

    @property
    def variants(self) -> pd.DataFrame:
        return self.rows[self.rows["kind"] != ORIGINAL]

    def __len__(self) -> int:
        return len(self.rows)


def build_probe_set(
    frame: pd.DataFrame,
    swapper: CounterfactualSwapper,
    attribute: str = "gender",
    names_per_message: int = 1,
    max_messages: int = 0,
    seed: int = 0,
) -> ProbeSet:
    """Build the probe set of a split's pairs (`frame` in the processed-data columns).

    `names_per_message` other-group names replace the customer's name in each
    message that mentions it, drawn with `seed`. `max_messages` caps the
    probed messages by a seeded sample (0 keeps all). Rows of the result are
    ordered by message, the original first.
    """
    if attribute not in frame.columns:
        raise ValueError(f"the pairs have no {attribute!r} column; expected one of {list(frame.columns)}")
    rng = np.random.default_rng(seed)
    candidates = [_variants(row, swapper, attribute, names_per_message, rng) for row in frame.itertuples(index=False)]
    probed = [index for index, variants in enumerate(candidates) if variants]
    if max_messages and len(probed) > max_messages:
        probed = sorted(np.random.default_rng(seed + 1).choice(probed, size=max_messages, replace=False).tolist())

    records = []
    for message_id, index in enumerate(probed):
        row = frame.iloc[index]
        group = str(row[attribute] or "")
        base = {"message_id": message_id, "intent": row["intent"], "agent_text": row["agent_text"]}
        records.append({**base, "probe_id": f"{row['pair_id']}:{ORIGINAL}", "kind": ORIGINAL,
                        "input_text": row["input_text"], "group": group})
        for number, (kind, text, variant_group) in enumerate(candidates[index]):
            records.append({**base, "probe_id": f"{row['pair_id']}:{kind}:{number}", "kind": kind,
                            "input_text": text, "group": variant_group})

    rows = pd.DataFrame.from_records(records, columns=list(PROBE_COLUMNS))
    logger.info(
        "Probe set: %d of %d messages probed, %d counterfactual variants (attribute %s)",
        len(probed), len(frame), len(rows) - len(probed), attribute,
    )
    return ProbeSet(attribute=attribute, rows=rows)


def _variants(
    row: tuple, swapper: CounterfactualSwapper, attribute: str, names_per_message: int, rng: np.random.Generator
) -> list[tuple[str, str, str]]:
    """Return (kind, text, group) for each variant of one pair that differs from its text."""
    text = row.input_text
    group = str(getattr(row, attribute) or "")
    is_gender = attribute == "gender"
    variants: list[tuple[str, str, str]] = []

    # The swap flips gender signals only, so its group is the other gender.
    swapped = swapper.swap(text)
    if swapped != text:
        swap_group = swapper.opposite_group(group) if is_gender else group
        variants.append((SWAP, swapped, swap_group or ""))

    name = str(row.customer_name or "")
    other_groups = [other for other in swapper.lexicon.groups(attribute) if other != group]
    if not (names_per_message and name and group and other_groups and swapper.mentions(text, name)):
        return variants

    # For gender the name goes into the swapped text, so that the gendered
    # words agree with the new name. The swap's own partner name is skipped.
    base, current = (swapped, swapper.swap(name)) if is_gender else (text, name)
    pool = [
        (other, other_name)
        for other in other_groups
        for other_name in swapper.lexicon.names[attribute][other]
        if other_name != current.lower()
    ]
    picks = rng.choice(len(pool), size=min(names_per_message, len(pool)), replace=False)
    for pick in sorted(picks.tolist()):
        other, other_name = pool[pick]
        variants.append((NAME, swapper.replace_name(base, current, other_name), other))
    return variants
