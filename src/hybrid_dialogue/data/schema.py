"""The raw dialogue schema shared by the corpus generator, the importers and preprocessing.

One JSON object per line of `data/raw/*.jsonl`:

    {
      "id": "d000001",                       # unique, non-empty string
      "turns": [                             # ordered, at least one
        {"role": "customer", "text": "..."},  # role is "customer" or "agent"
        {"role": "agent", "text": "..."}
      ],
      "intent": "order_status",              # string, or null when unknown
      "metadata": {                          # optional, free-form strings
        "customer_name": "Maria",
        "gender": "female",                  # group attributes for fairness work
        "region": "south"
      }
    }

`parse_dialogue` checks one decoded record and raises `RecordError` with a
short machine-readable reason; preprocessing quarantines such records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ROLES = ("customer", "agent")

# Metadata keys that name a customer group; fairness metrics group by these.
GROUP_ATTRIBUTES = ("gender", "region")


class RecordError(ValueError):
    """A raw record that does not follow the schema; `reason` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Turn:
    role: str
    text: str


@dataclass(frozen=True)
class Dialogue:
    id: str
    turns: tuple[Turn, ...]
    intent: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record in schema order, ready for `json.dumps`."""
        payload = asdict(self)
        payload["turns"] = [asdict(turn) for turn in self.turns]
        return payload


def parse_dialogue(record: Any, max_turn_chars: int | None = None) -> Dialogue:
    """Validate one decoded JSON record and return it as a `Dialogue`.

    Raises `RecordError` with reason `not_an_object`, `missing_id`,
    `missing_turns`, `empty_turn`, `unknown_role`, `turn_too_long`,
    `invalid_intent` or `invalid_metadata`.
    """
    if not isinstance(record, dict):
        raise RecordError("not_an_object", f"expected a JSON object, got {type(record).__name__}")

    dialogue_id = record.get("id")
    if not isinstance(dialogue_id, str) or not dialogue_id.strip():
        raise RecordError("missing_id", f"'id' must be a non-empty string, got {dialogue_id!r}")

    raw_turns = record.get("turns")
    if not isinstance(raw_turns, list) or not raw_turns:
        raise RecordError("missing_turns", f"'turns' must be a non-empty list in {dialogue_id}")

    turns = tuple(_parse_turn(turn, index, dialogue_id, max_turn_chars) for index, turn in enumerate(raw_turns))

    intent = record.get("intent")
    if intent is not None and (not isinstance(intent, str) or not intent.strip()):
        raise RecordError("invalid_intent", f"'intent' must be a non-empty string or null in {dialogue_id}")

    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError("invalid_metadata", f"'metadata' must be an object in {dialogue_id}")
    metadata = {str(key): str(value) for key, value in metadata.items() if value is not None}

    return Dialogue(id=dialogue_id, turns=turns, intent=intent, metadata=metadata)


def _parse_turn(turn: Any, index: int, dialogue_id: str, max_turn_chars: int | None) -> Turn:
    if not isinstance(turn, dict):
        raise RecordError("empty_turn", f"turn {index} of {dialogue_id} is not an object")
    role = turn.get("role")
    if role not in ROLES:
        raise RecordError("unknown_role", f"turn {index} of {dialogue_id} has role {role!r}; expected one of {ROLES}")
    text = turn.get("text")
    if not isinstance(text, str) or not text.strip():
        raise RecordError("empty_turn", f"turn {index} of {dialogue_id} has no text")
    if max_turn_chars is not None and len(text) > max_turn_chars:
        raise RecordError(
            "turn_too_long",
            f"turn {index} of {dialogue_id} has {len(text)} characters; the maximum is {max_turn_chars}",
        )
    return Turn(role=role, text=text)
