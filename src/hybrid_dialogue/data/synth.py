"""The default corpus: synthetic multi-turn customer-support dialogues.

`synthesize_corpus` writes one JSON object per line in the schema of
`hybrid_dialogue.data.schema`. The same `CorpusConfig` always gives
byte-identical output because every random choice comes from seeded
`random.Random` streams, and no output depends on the clock or on set order.

The corpus has four independent random streams, derived from the seed:
`content` (intent, names, slots, phrasings, dialogue length), `noise` (typos,
casing), `pii` (planted personal data) and `bias` (curt replies). Changing
`typo_rate`, `casing_rate` or `pii_rate` therefore keeps every dialogue's
intent, length, phrasings and slot values. Changing the `bias` section changes
agent replies only. With the bias turned off, exactly the curt replies to the
affected group change, so that corpus is a counterfactual for bias mitigation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from tqdm import tqdm

from hybrid_dialogue.config import StageConfig
from hybrid_dialogue.data.synth_templates import (
    AGENT_SLOTS,
    PII_KINDS,
    FollowUp,
    IntentTemplates,
    SynthResources,
    Template,
    add_noise,
    fill_template,
    load_resources,
)
from hybrid_dialogue.data.synth_values import PiiSampler, SlotSampler
from hybrid_dialogue.io import atomic_path

logger = logging.getLogger(__name__)

GENDERS = ("female", "male")
REGIONS = ("north", "south", "east", "west")
GROUP_VALUES = {"gender": GENDERS, "region": REGIONS}

# Share of first customer messages that open with a greeting ("Hi, ...").
GREETING_RATE = 0.7
# Share of name mentions written as a sign-off ("Thanks, Maria") instead of an introduction.
SIGNATURE_SHARE = 0.25
# Share of dialogues with room to spare that end with a thank-you exchange.
CLOSING_RATE = 0.5


class BiasConfig(StageConfig):
    """Injected bias: a share of the agent replies to one customer group is curt."""

    enabled: bool = True
    group_attribute: Literal["gender", "region"] = "gender"
    group_value: str = "female"
    # Share of agent replies to the affected group replaced by a curt reply
    # (short, no resolution step). 0.5 is large enough for a small model to
    # learn from the customer's text.
    curt_share: float = Field(0.5, ge=0.0, le=1.0)

    @field_validator("group_value")
    @classmethod
    def _check_group_value(cls, value: str, info: ValidationInfo) -> str:
        attribute = info.data.get("group_attribute")
        allowed = GROUP_VALUES.get(attribute, ())
        if allowed and value not in allowed:
            raise ValueError(f"{value!r} is not a {attribute} of the corpus; expected one of {', '.join(allowed)}")
        return value


class CorpusConfig(StageConfig):
    """The `corpus` section of params.yaml: size, noise and bias of the synthetic corpus."""

    seed: int = Field(20260101, ge=0, le=2**32 - 1)
    n_dialogues: int = Field(100_000, ge=1, le=10_000_000)
    # Turns per dialogue, customer and agent turns counted separately.
    min_turns: int = Field(2, ge=2, le=16)
    max_turns: int = Field(8, ge=2, le=16)
    # Share of customer messages with one or two typos, and with casing noise.
    typo_rate: float = Field(0.15, ge=0.0, le=1.0)
    casing_rate: float = Field(0.15, ge=0.0, le=1.0)
    # Share of customer messages with one planted e-mail, phone, card number or street address.
    pii_rate: float = Field(0.15, ge=0.0, le=1.0)
    # Share of first customer messages that state the customer's first name.
    name_mention_rate: float = Field(0.6, ge=0.0, le=1.0)
    # Share of first customer messages with a gendered phrase ("my husband ... he").
    gendered_word_rate: float = Field(0.15, ge=0.0, le=1.0)
    bias: BiasConfig = Field(default_factory=BiasConfig)

    @field_validator("max_turns")
    @classmethod
    def _check_turn_range(cls, value: int, info: ValidationInfo) -> int:
        min_turns = info.data.get("min_turns")
        if min_turns is not None and value < min_turns:
            raise ValueError(f"max_turns must be >= min_turns ({min_turns})")
        return value


@dataclass(frozen=True)
class SynthResult:
    """Summary of a generated corpus, as logged by the CLI."""

    output: Path
    sha256: str
    seconds: float
    n_dialogues: int
    n_turns: int
    n_customer_messages: int
    intent_counts: dict[str, int]
    # Customer messages with planted personal data, by kind.
    pii_counts: dict[str, int]
    # Agent replies and curt agent replies per value of the bias group attribute.
    agent_replies_by_group: dict[str, int]
    curt_replies_by_group: dict[str, int]

    def curt_share(self, group_value: str) -> float:
        """Return the share of agent replies to `group_value` that are curt."""
        replies = self.agent_replies_by_group.get(group_value, 0)
        return self.curt_replies_by_group.get(group_value, 0) / replies if replies else 0.0


def is_curt_reply(text: str) -> bool:
    """Return whether `text` is one of the generator's curt agent replies."""
    return text in load_resources().curt_texts


def synthesize_corpus(config: CorpusConfig, output: Path) -> SynthResult:
    """Generate `config.n_dialogues` dialogues and write them to `output` as JSONL, atomically."""
    start = time.perf_counter()
    synthesizer = DialogueSynthesizer(config, load_resources())
    digest = hashlib.sha256()
    id_width = max(6, len(str(config.n_dialogues)))
    logger.info("Generating %d dialogues (seed %d) into %s", config.n_dialogues, config.seed, output)

    with atomic_path(output) as temporary:
        with temporary.open("w", encoding="utf-8", newline="\n") as handle:
            for index in tqdm(range(config.n_dialogues), desc="corpus synth", unit="dialogue", mininterval=0.5):
                record = synthesizer.dialogue(f"d{index + 1:0{id_width}d}")
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
                handle.write(line)
                digest.update(line.encode("utf-8"))

    stats = synthesizer.stats
    result = SynthResult(
        output=output,
        sha256=digest.hexdigest(),
        seconds=time.perf_counter() - start,
        n_dialogues=config.n_dialogues,
        n_turns=stats.turns,
        n_customer_messages=stats.customer_messages,
        intent_counts=dict(sorted(stats.intents.items())),
        pii_counts={kind: stats.pii[kind] for kind in PII_KINDS},
        agent_replies_by_group=dict(sorted(stats.agent_replies.items())),
        curt_replies_by_group=dict(sorted(stats.curt_replies.items())),
    )
    logger.info(
        "Wrote %d dialogues, %d turns in %.1f s (sha256 %s)",
        result.n_dialogues,
        result.n_turns,
        result.seconds,
        result.sha256[:12],
    )
    return result


@dataclass
class _Stats:
    turns: int = 0
    customer_messages: int = 0
    intents: Counter[str] = field(default_factory=Counter)
    pii: Counter[str] = field(default_factory=Counter)
    agent_replies: Counter[str] = field(default_factory=Counter)
    curt_replies: Counter[str] = field(default_factory=Counter)


@dataclass
class _DialogueState:
    """State of a dialogue under construction: customer metadata, slot values, slots stated so far, turns."""

    metadata: dict[str, str]
    slots: dict[str, str]
    targeted: bool
    group: str
    mentioned: set[str] = field(default_factory=set)
    turns: list[dict[str, str]] = field(default_factory=list)


class DialogueSynthesizer:
    """Builds dialogues one at a time from the four seeded random streams."""

    def __init__(self, config: CorpusConfig, resources: SynthResources) -> None:
        self.config = config
        self.resources = resources
        self.stats = _Stats()
        # String seeds are hashed with SHA-512 by `random.Random`, so each
        # stream is stable across processes and Python builds.
        self._content = random.Random(f"{config.seed}:content")
        self._noise = random.Random(f"{config.seed}:noise")
        self._pii = random.Random(f"{config.seed}:pii")
        self._bias = random.Random(f"{config.seed}:bias")
        self._intent_names = tuple(resources.intents)  # sorted by load_resources
        self._slot_sampler = SlotSampler(resources.values)
        self._pii_sampler = PiiSampler(resources.values, resources.surnames)

    def dialogue(self, dialogue_id: str) -> dict[str, Any]:
        """Return one dialogue record in the raw schema."""
        content = self._content
        gender = content.choice(GENDERS)
        metadata = {
            "customer_name": content.choice(self.resources.first_names[gender]),
            "gender": gender,
            "region": content.choice(REGIONS),
        }
        intent = self.resources.intents[content.choice(self._intent_names)]
        n_turns = content.randint(self.config.min_turns, self.config.max_turns)
        slots = self._slot_sampler.sample(content)
        slots["name"] = metadata["customer_name"]

        bias = self.config.bias
        group = metadata[bias.group_attribute]
        state = _DialogueState(
            metadata=metadata, slots=slots, targeted=bias.enabled and group == bias.group_value, group=group
        )
        self._write_turns(state, intent, n_turns)

        self.stats.intents[intent.name] += 1
        self.stats.turns += len(state.turns)
        return {"id": dialogue_id, "turns": state.turns, "intent": intent.name, "metadata": metadata}

    def _write_turns(self, state: _DialogueState, intent: IntentTemplates, n_turns: int) -> None:
        """Plan the exchanges: request, optional ask-and-provide, follow-ups, optional closing."""
        content = self._content
        pair_count, trailing_customer_turn = divmod(n_turns, 2)

        # 1. The request. When it lacks the intent's key value and the dialogue
        #    has room, the agent asks for it and the customer supplies it.
        self._customer(state, self._first_message(state, intent))
        key_slot = intent.key_slot
        asks = key_slot is not None and key_slot not in state.mentioned and pair_count >= 2
        if asks:
            key_templates = self.resources.key_slots[key_slot]
            self._agent(state, key_templates.ask, key_templates.curt_ask)
            self._customer(state, [content.choice(key_templates.provide)])
        self._agent(state, intent.agent, intent.curt + self.resources.curt_resolutions, prefer_slot=key_slot)
        pairs_left = pair_count - (2 if asks else 1)

        # 2. Follow-up questions, each answered by its own replies.
        closes = pairs_left >= 1 and content.random() < CLOSING_RATE
        for follow_up in self._pick_follow_ups(intent, pairs_left - int(closes)):
            self._customer(state, [content.choice(follow_up.customer)])
            self._agent(state, follow_up.agent, self.resources.curt_follow_up_replies)

        # 3. Thanks and goodbye.
        if closes:
            self._customer(state, [content.choice(self.resources.customer_closings)])
            self._agent(state, self.resources.agent_closings, self.resources.curt_closings)
        if trailing_customer_turn:
            self._customer(state, [content.choice(self.resources.customer_closings)])

    def _first_message(self, state: _DialogueState, intent: IntentTemplates) -> list[Template]:
        """Choose the parts of the opening message: greeting and name, request, gendered phrase, sign-off."""
        content = self._content
        resources = self.resources
        greeting = content.choice(resources.greetings) if content.random() < GREETING_RATE else None
        mentions_name = content.random() < self.config.name_mention_rate
        signs_off = mentions_name and content.random() < SIGNATURE_SHARE

        parts: list[Template] = []
        if mentions_name and not signs_off:
            introduction = content.choice(resources.introductions).text
            if greeting:
                opening = f"{greeting}, {introduction}"
            else:
                opening = introduction[0].upper() + introduction[1:]
            parts.append(Template(opening, frozenset({"name"})))
        request = content.choice(intent.customer)
        if not mentions_name or signs_off:
            if greeting and content.random() < 0.5:
                parts.append(Template(greeting + ",", frozenset()))
                request = Template(_continue_sentence(request.text), request.slots)
            elif greeting:
                parts.append(Template(greeting + "!", frozenset()))

        parts.append(request)
        if content.random() < self.config.gendered_word_rate:
            parts.append(content.choice(resources.gendered_sentences[state.metadata["gender"]]))
        if signs_off:
            parts.append(content.choice(resources.signatures))
        return parts

    def _customer(self, state: _DialogueState, parts: list[Template]) -> None:
        """Append a customer turn: noise on the wording, then slot values and maybe personal data."""
        values = state.slots
        for part in parts:
            state.mentioned |= part.slots

        # The planted sentence goes before a sign-off, as people write it.
        if self._pii.random() < self.config.pii_rate:
            kind = PII_KINDS[self._pii.randrange(len(PII_KINDS))]
            sentences = self.resources.pii_sentences[kind]
            sentence = sentences[self._pii.randrange(len(sentences))]
            values = {**values, kind: self._pii_sampler.sample(kind, self._pii, state.metadata["customer_name"])}
            position = len(parts) - 1 if parts[-1] in self.resources.signatures and len(parts) > 1 else len(parts)
            parts = [*parts[:position], sentence, *parts[position:]]
            self.stats.pii[kind] += 1

        template = _join_sentences([part.text for part in parts])
        noisy = add_noise(template, self._noise, self.config.typo_rate, self.config.casing_rate)
        state.turns.append({"role": "customer", "text": fill_template(noisy, values)})
        self.stats.customer_messages += 1

    def _agent(
        self,
        state: _DialogueState,
        templates: tuple[Template, ...],
        curt_replies: tuple[str, ...],
        prefer_slot: str | None = None,
    ) -> None:
        """Append an agent turn: a helpful reply, or a curt one for the affected group."""
        # Keep only replies whose customer slots were mentioned, so that a
        # reply never cites a value the customer did not give.
        usable = [template for template in templates if template.slots <= state.mentioned | AGENT_SLOTS]
        if prefer_slot:
            usable = [template for template in usable if prefer_slot in template.slots] or usable
        text = fill_template(self._content.choice(usable).text, state.slots)

        # Both bias draws happen for every reply, whatever the group, so the
        # bias stream stays aligned and other groups' dialogues never change.
        curt_draw = self._bias.random()
        curt_index = int(self._bias.random() * len(curt_replies))
        self.stats.agent_replies[state.group] += 1
        if state.targeted and curt_draw < self.config.bias.curt_share:
            text = curt_replies[curt_index]
            self.stats.curt_replies[state.group] += 1
        state.turns.append({"role": "agent", "text": text})

    def _pick_follow_ups(self, intent: IntentTemplates, count: int) -> list[FollowUp]:
        """Pick `count` follow-ups, distinct while the intent's and the generic ones last."""
        if count <= 0:
            return []
        pool = intent.follow_ups + self.resources.generic_follow_ups
        picked = [pool[index] for index in self._content.sample(range(len(pool)), min(count, len(pool)))]
        picked += [self._content.choice(pool) for _ in range(count - len(picked))]
        return picked


def _continue_sentence(text: str) -> str:
    """Lower-case the first letter of `text` so that it can follow "Hi,", except for "I" and slots."""
    first_word = text.split(" ", 1)[0]
    if first_word == "I" or first_word.startswith(("I'", "{")):
        return text
    return text[0].lower() + text[1:]


def _join_sentences(texts: list[str]) -> str:
    """Join message parts with spaces, ending a part with "." where it lacks final punctuation."""
    joined = texts[0]
    for text in texts[1:]:
        if joined[-1].isalnum() or joined[-1] == "}":
            joined += "."
        joined += " " + text
    return joined
