"""Counts that describe a raw dialogue corpus: dialogues, turns, intents, groups, curt replies."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hybrid_dialogue.data.schema import GROUP_ATTRIBUTES, RecordError, parse_dialogue
from hybrid_dialogue.data.synth import is_curt_reply

logger = logging.getLogger(__name__)

MISSING_VALUE = "(missing)"


@dataclass(frozen=True)
class CorpusStats:
    """Counts over the valid records of one JSONL corpus. Invalid records are only counted."""

    path: str
    n_dialogues: int
    n_invalid: int
    invalid_reasons: dict[str, int]
    n_turns: int
    n_customer_turns: int
    n_agent_turns: int
    # Number of dialogues per turn count.
    turns_per_dialogue: dict[int, int]
    # Dialogues per intent, where "(none)" counts dialogues without one.
    intents: dict[str, int]
    # Dialogues per value of each group attribute.
    groups: dict[str, dict[str, int]]
    # Agent replies, and the curt ones among them, per value of each group
    # attribute. Curt means one of the synthetic generator's curt templates,
    # so the count is zero for imported corpora.
    agent_replies: dict[str, dict[str, int]]
    curt_replies: dict[str, dict[str, int]]

    def curt_share(self, attribute: str, value: str) -> float:
        """Return the share of agent replies to customers with `attribute` = `value` that are curt."""
        replies = self.agent_replies.get(attribute, {}).get(value, 0)
        return self.curt_replies.get(attribute, {}).get(value, 0) / replies if replies else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as JSON-ready data."""
        payload = asdict(self)
        payload["turns_per_dialogue"] = {str(turns): count for turns, count in self.turns_per_dialogue.items()}
        return payload


def corpus_stats(path: Path) -> CorpusStats:
    """Read a raw JSONL corpus and count its dialogues, turns, intents and customer groups."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus not found: {path}. Run 'hybrid-dialogue corpus synth' or pass a JSONL path.")

    invalid: Counter[str] = Counter()
    turn_counts: Counter[int] = Counter()
    roles: Counter[str] = Counter()
    intents: Counter[str] = Counter()
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    agent_replies: dict[str, Counter[str]] = defaultdict(Counter)
    curt_replies: dict[str, Counter[str]] = defaultdict(Counter)

    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                dialogue = parse_dialogue(json.loads(raw))
            except (UnicodeDecodeError, json.JSONDecodeError):
                invalid["invalid_json"] += 1
                continue
            except RecordError as error:
                invalid[error.reason] += 1
                continue

            turn_counts[len(dialogue.turns)] += 1
            intents[dialogue.intent or "(none)"] += 1
            agent_texts = [turn.text for turn in dialogue.turns if turn.role == "agent"]
            curt_count = sum(is_curt_reply(text) for text in agent_texts)
            roles.update(turn.role for turn in dialogue.turns)
            for attribute in GROUP_ATTRIBUTES:
                value = dialogue.metadata.get(attribute, MISSING_VALUE)
                groups[attribute][value] += 1
                agent_replies[attribute][value] += len(agent_texts)
                curt_replies[attribute][value] += curt_count

    n_invalid = sum(invalid.values())
    if n_invalid:
        logger.warning("%d invalid records in %s were not counted (%s)", n_invalid, path, dict(invalid))
    return CorpusStats(
        path=str(path),
        n_dialogues=sum(turn_counts.values()),
        n_invalid=n_invalid,
        invalid_reasons=dict(sorted(invalid.items())),
        n_turns=sum(roles.values()),
        n_customer_turns=roles["customer"],
        n_agent_turns=roles["agent"],
        turns_per_dialogue=dict(sorted(turn_counts.items())),
        intents=dict(sorted(intents.items())),
        groups={attribute: dict(sorted(groups[attribute].items())) for attribute in GROUP_ATTRIBUTES},
        agent_replies={attribute: dict(sorted(agent_replies[attribute].items())) for attribute in GROUP_ATTRIBUTES},
        curt_replies={attribute: dict(sorted(curt_replies[attribute].items())) for attribute in GROUP_ATTRIBUTES},
    )


def format_stats(stats: CorpusStats) -> str:
    """Render the counts as a short plain-text report."""
    lines = [
        f"corpus: {stats.path}",
        f"dialogues: {stats.n_dialogues:,} (invalid records: {stats.n_invalid:,})",
        f"turns: {stats.n_turns:,} (customer {stats.n_customer_turns:,}, agent {stats.n_agent_turns:,})",
    ]
    if stats.n_dialogues:
        mean = stats.n_turns / stats.n_dialogues
        lines.append(
            f"turns per dialogue: min {min(stats.turns_per_dialogue)}, mean {mean:.2f}, "
            f"max {max(stats.turns_per_dialogue)}"
        )
    lines.append(f"intents ({len(stats.intents)}):")
    lines += [f"  {intent}: {count:,}" for intent, count in sorted(stats.intents.items(), key=lambda item: -item[1])]
    for attribute, values in stats.groups.items():
        lines.append(f"{attribute}:")
        for value, count in values.items():
            share = stats.curt_share(attribute, value)
            replies = stats.agent_replies[attribute][value]
            lines.append(f"  {value}: {count:,} dialogues, curt agent replies {share:.1%} of {replies:,}")
    return "\n".join(lines)
