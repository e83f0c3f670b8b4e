"""Phrasing templates of the synthetic corpus and the noise applied to customer text.

The templates live in `resources/intents.json` (per intent: customer requests,
helpful and curt agent replies, follow-up exchanges) and
`resources/phrases.json` (greetings, closings, personal-data sentences, value
lists). A template marks a slot as `{name}`, for example `{order_id}`.
`load_resources` parses and checks them once per process.
"""

from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_PLACEHOLDER_SPLIT = re.compile(r"(\{[a-z_]+\})")
_TYPO_WORD = re.compile(r"[A-Za-z]{4,}")

# Slots whose values the customer states. An agent template may use one only
# after the customer mentioned it, so that a reply never cites an unseen value.
CUSTOMER_SLOTS = frozenset(
    {"order_id", "order_date", "amount", "product", "plan", "promo_code", "username", "invoice_id"}
)
# Slots that carry new information from the agent (dates, references).
AGENT_SLOTS = frozenset({"delivery_date", "tracking", "days", "ticket"})
NAME_SLOT = "name"
PII_KINDS = ("email", "phone", "card", "address")
KNOWN_SLOTS = CUSTOMER_SLOTS | AGENT_SLOTS | {NAME_SLOT} | frozenset(PII_KINDS)

# Neighbouring keys on a QWERTY keyboard, for substitution typos.
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_NEIGHBOURS = {
    key: "".join(row[max(0, i - 1) : i] + row[i + 1 : i + 2])
    for row in _KEYBOARD_ROWS
    for i, key in enumerate(row)
}


@dataclass(frozen=True)
class Template:
    """A phrasing with `{slot}` placeholders, and the set of slots it uses."""

    text: str
    slots: frozenset[str]


@dataclass(frozen=True)
class FollowUp:
    """A customer follow-up question with the agent replies that answer it."""

    customer: tuple[Template, ...]
    agent: tuple[Template, ...]


@dataclass(frozen=True)
class IntentTemplates:
    """Phrasings of one intent, with the key slot that an agent requests when the customer omits it."""

    name: str
    key_slot: str | None
    customer: tuple[Template, ...]
    agent: tuple[Template, ...]
    curt: tuple[str, ...]
    follow_ups: tuple[FollowUp, ...]


@dataclass(frozen=True)
class KeySlotTemplates:
    """Agent requests for a missing key value (helpful and curt) and the customer replies that supply it."""

    ask: tuple[Template, ...]
    curt_ask: tuple[str, ...]
    provide: tuple[Template, ...]


@dataclass(frozen=True)
class SynthResources:
    """Every template and value list the generator draws from, parsed and checked."""

    intents: dict[str, IntentTemplates]
    key_slots: dict[str, KeySlotTemplates]
    first_names: dict[str, tuple[str, ...]]
    surnames: tuple[str, ...]
    regions: tuple[str, ...]
    greetings: tuple[str, ...]
    introductions: tuple[Template, ...]
    signatures: tuple[Template, ...]
    gendered_sentences: dict[str, tuple[Template, ...]]
    pii_sentences: dict[str, tuple[Template, ...]]
    curt_resolutions: tuple[str, ...]
    generic_follow_ups: tuple[FollowUp, ...]
    curt_follow_up_replies: tuple[str, ...]
    customer_closings: tuple[Template, ...]
    agent_closings: tuple[Template, ...]
    curt_closings: tuple[str, ...]
    values: dict[str, Any]

    @property
    def curt_texts(self) -> frozenset[str]:
        """Every curt agent reply the generator can write."""
        texts = set(self.curt_resolutions) | set(self.curt_follow_up_replies) | set(self.curt_closings)
        for intent in self.intents.values():
            texts.update(intent.curt)
        for key_slot in self.key_slots.values():
            texts.update(key_slot.curt_ask)
        return frozenset(texts)


class ResourceError(ValueError):
    """A template file that the generator cannot use, with the template that fails."""


def parse_template(text: str, where: str) -> Template:
    """Parse one template, rejecting placeholders the generator has no value for."""
    slots = frozenset(PLACEHOLDER.findall(text))
    unknown = sorted(slots - KNOWN_SLOTS)
    if unknown:
        raise ResourceError(f"{where}: template {text!r} uses unknown slot(s) {unknown}; known: {sorted(KNOWN_SLOTS)}")
    return Template(text=text, slots=slots)


def fill_template(text: str, values: dict[str, str]) -> str:
    """Replace every `{slot}` in `text` with its value from `values`."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@functools.lru_cache(maxsize=1)
def load_resources() -> SynthResources:
    """Load and check the packaged template files."""
    intents_raw = _read_json("intents.json")
    phrases = _read_json("phrases.json")
    names = _read_json("names.json")

    key_slots = {
        slot: KeySlotTemplates(
            ask=_templates(spec["ask"], f"key_slots.{slot}.ask"),
            curt_ask=_plain_texts(spec["curt_ask"], f"key_slots.{slot}.curt_ask"),
            provide=_templates(spec["provide"], f"key_slots.{slot}.provide"),
        )
        for slot, spec in phrases["key_slots"].items()
    }
    intents = {name: _intent(name, spec, key_slots) for name, spec in sorted(intents_raw.items())}
    generic_follow_ups = tuple(
        _follow_up(spec, f"generic_follow_ups[{index}]") for index, spec in enumerate(phrases["generic_follow_ups"])
    )

    return SynthResources(
        intents=intents,
        key_slots=key_slots,
        first_names={gender: tuple(names[gender]) for gender in ("female", "male")},
        surnames=tuple(names["surnames"]),
        regions=tuple(names["regions"]),
        greetings=tuple(phrases["greetings"]),
        introductions=_templates(phrases["introductions"], "introductions"),
        signatures=_templates(phrases["signatures"], "signatures"),
        gendered_sentences={
            gender: _templates(texts, f"gendered_sentences.{gender}")
            for gender, texts in phrases["gendered_sentences"].items()
        },
        pii_sentences={kind: _templates(phrases["pii_sentences"][kind], f"pii_sentences.{kind}") for kind in PII_KINDS},
        curt_resolutions=_plain_texts(phrases["curt_resolutions"], "curt_resolutions"),
        generic_follow_ups=generic_follow_ups,
        curt_follow_up_replies=_plain_texts(phrases["curt_follow_up_replies"], "curt_follow_up_replies"),
        customer_closings=_templates(phrases["customer_closings"], "customer_closings"),
        agent_closings=_agent_templates(phrases["agent_closings"], "agent_closings"),
        curt_closings=_plain_texts(phrases["curt_closings"], "curt_closings"),
        values={
            key: phrases[key]
            for key in ("products", "plans", "username_words", "promo_words", "email_domains", "addresses")
        },
    )


def add_noise(template: str, rng: random.Random, typo_rate: float, casing_rate: float) -> str:
    """Add typos and casing noise to the words of `template`, leaving `{slot}` placeholders intact.

    With probability `typo_rate` one or two words of four letters or more get a
    typo, and with probability `casing_rate` the message is lower-cased,
    upper-cased or loses its first capital. Slot values are filled in later, so
    order numbers and personal data stay exact.
    """
    chunks = _PLACEHOLDER_SPLIT.split(template)  # even indices: text, odd indices: placeholders

    if rng.random() < typo_rate:
        word_count = sum(len(_TYPO_WORD.findall(chunk)) for chunk in chunks[::2])
        if word_count:
            typo_count = 1 if rng.random() < 0.7 else 2
            chosen = set(rng.sample(range(word_count), min(typo_count, word_count)))
            chunks = _apply_typos(chunks, chosen, rng)

    if rng.random() < casing_rate:
        style = rng.random()
        if style < 0.65:
            chunks = [chunk if index % 2 else chunk.lower() for index, chunk in enumerate(chunks)]
        elif style < 0.8:
            chunks = [chunk if index % 2 else chunk.upper() for index, chunk in enumerate(chunks)]
        elif chunks[0]:
            chunks[0] = chunks[0][0].lower() + chunks[0][1:]

    return "".join(chunks)


def _apply_typos(chunks: list[str], chosen: set[int], rng: random.Random) -> list[str]:
    counter = 0

    def maybe_misspell(match: re.Match[str]) -> str:
        nonlocal counter
        word = match.group(0)
        counter += 1
        return _misspell(word, rng) if counter - 1 in chosen else word

    return [chunk if index % 2 else _TYPO_WORD.sub(maybe_misspell, chunk) for index, chunk in enumerate(chunks)]


def _misspell(word: str, rng: random.Random) -> str:
    """Apply one typo of the kinds people make when typing fast; the first letter stays."""
    position = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # swap two adjacent letters
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    if kind == 1:  # drop a letter
        return word[:position] + word[position + 1 :]
    if kind == 2:  # double a letter
        return word[:position] + word[position] + word[position:]
    letter = word[position]
    neighbours = _KEY_NEIGHBOURS.get(letter.lower(), letter)
    replacement = neighbours[rng.randrange(len(neighbours))]
    return word[:position] + (replacement.upper() if letter.isupper() else replacement) + word[position + 1 :]


def _read_json(name: str) -> Any:
    return json.loads(resources.files("hybrid_dialogue.data").joinpath("resources", name).read_text(encoding="utf-8"))


def _templates(texts: list[str], where: str) -> tuple[Template, ...]:
    if not texts:
        raise ResourceError(f"{where}: needs at least one template")
    return tuple(parse_template(text, f"{where}[{index}]") for index, text in enumerate(texts))


def _agent_templates(
    texts: list[str], where: str, always_mentioned: frozenset[str] = frozenset()
) -> tuple[Template, ...]:
    """Parse agent templates; at least one must fit a customer who gave no details.

    `always_mentioned` contains the slots that every customer template before
    this reply states, so replies may use them.
    """
    templates = _templates(texts, where)
    allowed = AGENT_SLOTS | always_mentioned
    if not any(template.slots <= allowed for template in templates):
        raise ResourceError(
            f"{where}: every template uses a slot that the customer may not have stated; "
            f"add one that uses only {sorted(allowed)}"
        )
    return templates


def _common_slots(templates: tuple[Template, ...]) -> frozenset[str]:
    return frozenset.intersection(*(template.slots for template in templates))


def _plain_texts(texts: list[str], where: str) -> tuple[str, ...]:
    """Check curt replies: they carry no slots, so `is_curt_reply` can match them exactly."""
    templates = _templates(texts, where)
    for template in templates:
        if template.slots:
            raise ResourceError(f"{where}: curt reply {template.text!r} must not contain slots")
    return tuple(template.text for template in templates)


def _follow_up(spec: dict[str, list[str]], where: str) -> FollowUp:
    customer = _templates(spec["customer"], f"{where}.customer")
    return FollowUp(
        customer=customer,
        agent=_agent_templates(spec["agent"], f"{where}.agent", _common_slots(customer)),
    )


def _intent(name: str, spec: dict[str, Any], key_slots: dict[str, KeySlotTemplates]) -> IntentTemplates:
    key_slot = spec["key_slot"]
    if key_slot is not None and key_slot not in key_slots:
        raise ResourceError(f"intents.{name}: key_slot {key_slot!r} has no ask/provide phrasings in phrases.json")
    customer = _templates(spec["customer"], f"intents.{name}.customer")
    return IntentTemplates(
        name=name,
        key_slot=key_slot,
        customer=customer,
        agent=_agent_templates(spec["agent"], f"intents.{name}.agent", _common_slots(customer)),
        curt=_plain_texts(spec["curt"], f"intents.{name}.curt"),
        follow_ups=tuple(
            _follow_up(follow_up, f"intents.{name}.follow_ups[{index}]")
            for index, follow_up in enumerate(spec["follow_ups"])
        ),
    )
