"""Training pairs from dialogues, and the split of dialogues into train, validation and test.

A pair is (customer message, optional previous agent turn) -> agent response.
Each agent turn that follows one or more customer turns makes one pair.
Consecutive customer turns are joined into one message, because the agent
replies to all of them at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hybrid_dialogue.data.dataset import PAIR_COLUMNS, SPLITS
from hybrid_dialogue.data.records import QuarantinedRecord
from hybrid_dialogue.data.redaction import NO_REDACTIONS, RedactionCounts
from hybrid_dialogue.data.schema import Dialogue
from hybrid_dialogue.data.text import TextRules, build_input_text, clean_text

# Every intent needs one dialogue in each split (see `split_dialogues`).
MIN_DIALOGUES_PER_INTENT = len(SPLITS)


class SplitError(ValueError):
    """Dialogues that cannot be split so that every intent reaches every split."""


@dataclass
class PairSet:
    """The pairs of a corpus, and what cleaning set aside or counted on the way."""

    frame: pd.DataFrame  # columns PAIR_COLUMNS, one row per pair
    redactions: RedactionCounts = NO_REDACTIONS
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    dialogues_without_pairs: int = 0
    unpaired_agent_turns: int = 0  # agent turns with no customer turn since the previous agent turn
    unanswered_customer_turns: int = 0  # customer turns after the last agent turn of a dialogue
    customer_turns_cut: int = 0  # earlier turns of a joined message dropped to fit max_message_chars


def build_pairs(
    records: Iterable[tuple[Dialogue, str, int]],
    rules: TextRules,
    use_context: bool,
    max_message_chars: int,
) -> PairSet:
    """Clean every turn and build the pairs of every dialogue.

    `records` yields `(dialogue, file name, line number)`, as iterating a
    `RawCorpus` does. A dialogue with a turn that is empty or longer than
    `max_message_chars` once cleaned (NFKC and placeholders can change the
    length a little) is quarantined whole.
    """
    columns: dict[str, list] = {name: [] for name in PAIR_COLUMNS}
    result = PairSet(frame=pd.DataFrame())
    redactions = RedactionCounts()
    cache: dict[str, tuple[str, RedactionCounts]] = {}  # agent replies repeat often in real and generated corpora

    for dialogue, file_name, line in records:
        cleaned: list[str] = []
        dialogue_redactions = NO_REDACTIONS
        for turn in dialogue.turns:
            text_and_counts = cache.get(turn.text)
            if text_and_counts is None:
                text_and_counts = cache[turn.text] = clean_text(turn.text, rules)
            cleaned.append(text_and_counts[0])
            if text_and_counts[1]:
                dialogue_redactions = dialogue_redactions + text_and_counts[1]

        problem = _cleaned_turn_problem(cleaned, max_message_chars)
        if problem is not None:
            result.quarantined.append(QuarantinedRecord(file_name, line, problem[0], problem[1], dialogue.id))
            continue
        redactions = redactions + dialogue_redactions
        if not _append_pairs(dialogue, cleaned, use_context, max_message_chars, columns, result):
            result.dialogues_without_pairs += 1

    result.frame = pd.DataFrame(columns, columns=list(PAIR_COLUMNS))
    result.redactions = redactions
    return result


def _cleaned_turn_problem(cleaned: list[str], max_message_chars: int) -> tuple[str, str] | None:
    for index, text in enumerate(cleaned):
        if not text:
            return "empty_turn", f"turn {index} is empty after normalisation"
        if len(text) > max_message_chars:
            return (
                "turn_too_long",
                f"turn {index} has {len(text)} characters after normalisation; the maximum is {max_message_chars}",
            )
    return None


def _append_pairs(
    dialogue: Dialogue,
    cleaned: list[str],
    use_context: bool,
    max_message_chars: int,
    columns: dict[str, list],
    result: PairSet,
) -> bool:
    """Append the pairs of one dialogue to `columns`; return whether there was at least one."""
    metadata = dialogue.metadata
    intent = dialogue.intent or ""
    pending: list[str] = []  # customer turns since the last agent turn
    context = ""  # the latest agent turn before `pending`
    found = False

    for index, (turn, text) in enumerate(zip(dialogue.turns, cleaned)):
        if turn.role == "customer":
            pending.append(text)
            continue
        if not pending:
            result.unpaired_agent_turns += 1
            context = text
            continue

        customer_text, cut = _join_latest(pending, max_message_chars)
        result.customer_turns_cut += cut
        row = {
            "pair_id": f"{dialogue.id}:{index}",
            "dialogue_id": dialogue.id,
            "turn_index": index,
            "intent": intent,
            "customer_text": customer_text,
            "context_text": context,
            "input_text": build_input_text(customer_text, context, use_context),
            "agent_text": text,
            "customer_name": metadata.get("customer_name", ""),
            "gender": metadata.get("gender", ""),
            "region": metadata.get("region", ""),
        }
        for name in PAIR_COLUMNS:
            columns[name].append(row[name])
        found = True
        pending = []
        context = text

    result.unanswered_customer_turns += len(pending)
    return found


def _join_latest(turns: list[str], max_chars: int) -> tuple[str, int]:
    """Join customer turns with spaces, dropping the earliest ones beyond `max_chars`; return the text and the drops."""
    joined = turns[-1]
    joined_count = 1
    for earlier in reversed(turns[:-1]):
        candidate = earlier + " " + joined
        if len(candidate) > max_chars:
            break
        joined = candidate
        joined_count += 1
    return joined, len(turns) - joined_count


def split_dialogues(
    dialogue_intents: pd.Series, validation_fraction: float, test_fraction: float, seed: int
) -> pd.Series:
    """Assign each dialogue to a split, stratified by intent, with every intent in every split.

    `dialogue_intents` maps dialogue id (index) to intent ("" when unknown);
    the result maps the same ids to "train", "validation" or "test". Within
    each intent the dialogues are shuffled with `seed` and cut by the
    fractions, rounded, with at least one dialogue per split. scikit-learn's
    stratified splitters round per class without that minimum, so a rare
    intent could miss a split. Raises `SplitError` when an intent has fewer
    dialogues than there are splits.
    """
    by_intent: dict[str, list[str]] = defaultdict(list)
    for dialogue_id, intent in dialogue_intents.items():
        by_intent[intent].append(dialogue_id)
    rare = {intent: len(ids) for intent, ids in by_intent.items() if len(ids) < MIN_DIALOGUES_PER_INTENT}
    if rare:
        listed = ", ".join(f"{intent or '(none)'!r}: {count}" for intent, count in sorted(rare.items()))
        raise SplitError(
            f"{len(rare)} intent(s) have fewer than {MIN_DIALOGUES_PER_INTENT} dialogues with pairs ({listed}), "
            "so they cannot appear in every split. Relabel those dialogues with a broader intent, or add more "
            "dialogues of those intents."
        )

    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for intent in sorted(by_intent):
        ids = sorted(by_intent[intent])  # sorted first, so the result does not depend on file order
        order = rng.permutation(len(ids))
        n_validation = max(1, round(len(ids) * validation_fraction))
        n_test = max(1, round(len(ids) * test_fraction))
        n_train = len(ids) - n_validation - n_test
        if n_train < 1:  # only for 3 or 4 dialogues with large fractions
            n_validation, n_test = 1, 1
            n_train = len(ids) - 2
        for rank, position in enumerate(order):
            if rank < n_train:
                assignment[ids[position]] = "train"
            elif rank < n_train + n_validation:
                assignment[ids[position]] = "validation"
            else:
                assignment[ids[position]] = "test"

    return pd.Series(assignment, name="split").reindex(dialogue_intents.index)
