"""Counterfactual text: swap first names and gendered words between groups.

`CounterfactualSwapper.swap` turns "Hi, I'm Maria. My husband thinks he never
got her invoice" into "Hi, I'm James. My wife thinks she never got his
invoice". It swaps in both directions, whole words only, and keeps the case
of each word ("He" -> "She", "MARIA" -> "JAMES"). The lists live in
`resources/counterfactual.json`.

Four English pronouns have no one-to-one partner, so the next word decides:
"her" becomes "his" before a noun ("her order") and "him" otherwise ("call
her back", "for her."); "his" becomes "her" before a noun and "hers"
otherwise ("the phone is his."); "hers" becomes "his" and "him" becomes
"her". The noun test is a heuristic: the next word counts as the start of a
noun phrase unless it is in `_NOT_NOUN_STARTS` (prepositions, conjunctions,
determiners, pronouns, auxiliaries and common adverbs) or there is no next
word (end of text or punctuation).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

GENDER = "gender"
FEMALE, MALE = "female", "male"

# Words after which "her" is an object pronoun ("tell her about it") and
# "his" is a standalone pronoun ("it is his and mine"), not a determiner before a noun.
_NOT_NOUN_STARTS = frozenset(
    """
    to for with about at on in into onto from of by up out off back down over again away
    and or but so because if when while that as than though then
    a an the this these those my your our their his her its it
    i you we they he she me us them myself yourself
    now today tonight yesterday tomorrow already too also please anymore soon yet here there
    know is was are were be been has had have will would can could should may might must do does did
    not no why how what which who whom where whether
    """.split()
)

# A letter-initial word right after a match, possibly after spaces: the word
# that decides "her" and "his". Digits, punctuation and placeholders such as
# [EMAIL] count as no word.
_NEXT_WORD = re.compile(r"\s*([^\W\d_]+)")


class LexiconError(ValueError):
    """A word or name list that cannot define a swap (unpaired, duplicated or overlapping entries)."""


@dataclass(frozen=True)
class CounterfactualLexicon:
    """Names by attribute and group, and gendered word pairs, all lower-case.

    `names[attribute][group]` lists that group's first names; the gender
    lists are paired by position. `word_pairs` are (masculine, feminine)
    pairs that swap both ways; `one_way` maps words with no unique partner
    ("mrs" -> "mr", "mum" -> "dad").
    """

    names: dict[str, dict[str, tuple[str, ...]]]
    word_pairs: tuple[tuple[str, str], ...]
    one_way: dict[str, str]

    def groups(self, attribute: str) -> tuple[str, ...]:
        """Return the groups of `attribute` that have names, sorted ("female", "male" for gender)."""
        return tuple(sorted(self.names.get(attribute, {})))

    def group_of_name(self, attribute: str, name: str) -> str | None:
        """Return the group whose list contains `name` (any case), or None."""
        key = _normalise(name)
        for group, names in self.names.get(attribute, {}).items():
            if key in names:
                return group
        return None


def load_lexicon(path: str | Path | None = None) -> CounterfactualLexicon:
    """Load and check a lexicon file; the default is the package's `resources/counterfactual.json`.

    Raises `LexiconError` naming the entry and the fix when the female and
    male name lists differ in length, a word appears twice, or a word is
    in two lists.
    """
    if path is None:
        text = resources.files("hybrid_dialogue.fairness").joinpath("resources/counterfactual.json").read_text("utf-8")
        return _parse_lexicon(json.loads(text), "resources/counterfactual.json")
    path = Path(path)
    return _parse_lexicon(json.loads(path.read_text(encoding="utf-8")), str(path))


@cache
def default_swapper() -> CounterfactualSwapper:
    """Return a swapper over the package's lexicon, built once per process."""
    return CounterfactualSwapper(load_lexicon())


class CounterfactualSwapper:
    """Swaps gendered words and first names in texts; see the module docstring for the rules."""

    def __init__(self, lexicon: CounterfactualLexicon) -> None:
        self.lexicon = lexicon
        female, male = lexicon.names.get(GENDER, {}).get(FEMALE, ()), lexicon.names.get(GENDER, {}).get(MALE, ())
        table: dict[str, str] = {}
        for masculine, feminine in [*zip(male, female, strict=True), *lexicon.word_pairs]:
            table[masculine] = feminine
            table[feminine] = masculine
        table.update(lexicon.one_way)
        self._table = table
        words = sorted([*table, "her", "his", "hers", "him"], key=len, reverse=True)
        self._pattern = _whole_words(words)

    def swap(self, text: str) -> str:
        """Return `text` with every listed name and gendered word replaced by its counterpart."""
        return self._pattern.sub(lambda match: self._replacement(match, text), text)

    def opposite_group(self, group: str) -> str | None:
        """Return the other gender for "female" or "male", else None."""
        return {FEMALE: MALE, MALE: FEMALE}.get(group)

    def replace_name(self, text: str, name: str, replacement: str) -> str:
        """Replace every whole-word occurrence of `name` (any case) by `replacement`, keeping each one's case."""
        key = _normalise(name)
        if not key:
            return text
        target = _normalise(replacement)
        return _whole_words([key]).sub(lambda match: _match_case(match.group(0), target), text)

    def mentions(self, text: str, word: str) -> bool:
        """Return whether `word` occurs in `text` as a whole word, in any case."""
        key = _normalise(word)
        return bool(key) and _whole_words([key]).search(text) is not None

    def _replacement(self, match: re.Match[str], text: str) -> str:
        word = match.group(0)
        key = word.lower()
        if key in ("her", "his"):
            following = _next_word(text, match.end())
            noun_follows = following is not None and following not in _NOT_NOUN_STARTS
            if key == "her":
                target = "his" if noun_follows else "him"
            else:
                target = "her" if noun_follows else "hers"
        elif key == "hers":
            target = "his"
        elif key == "him":
            target = "her"
        else:
            target = self._table[key]
        return _match_case(word, target)


def _next_word(text: str, position: int) -> str | None:
    """Return the lower-cased word that follows `position`, or None at punctuation or the end."""
    match = _NEXT_WORD.match(text, position)
    return match.group(1).lower() if match else None


@cache
def _whole_words_cached(words: tuple[str, ...]) -> re.Pattern[str]:
    # An apostrophe before a word also blocks a match, so "o'neill" keeps
    # its parts; after a word it does not, so "he's" becomes "she's".
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<![\w'])(?:{alternatives})(?!\w)", re.IGNORECASE)


def _whole_words(words: list[str]) -> re.Pattern[str]:
    return _whole_words_cached(tuple(words))


def _match_case(source: str, target: str) -> str:
    """Give `target` the case pattern of `source`: UPPER, Capitalised or lower."""
    if len(source) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def _normalise(word: str) -> str:
    # NFC, so that "Zoë" typed with a combining diaeresis matches the list.
    return unicodedata.normalize("NFC", word.strip()).lower()


def _parse_lexicon(payload: dict, source: str) -> CounterfactualLexicon:
    names: dict[str, dict[str, tuple[str, ...]]] = {}
    seen: dict[str, str] = {}

    def claim(word: str, where: str) -> str:
        key = _normalise(word)
        if not key or not re.fullmatch(r"[^\W\d_]+(?:'[^\W\d_]+)?", key):
            raise LexiconError(f"{source}: {where} has the entry {word!r}, which is not a single word")
        if key in seen:
            raise LexiconError(f"{source}: {word!r} appears in {seen[key]} and in {where}; keep it in one list only")
        seen[key] = where
        return key

    for attribute, groups in (payload.get("names") or {}).items():
        names[attribute] = {
            group: tuple(claim(name, f"names.{attribute}.{group}") for name in group_names)
            for group, group_names in groups.items()
        }

    gender_names = names.get(GENDER, {})
    if gender_names:
        if set(gender_names) != {FEMALE, MALE}:
            raise LexiconError(f"{source}: names.gender must have exactly the groups female and male, got {sorted(gender_names)}")
        if len(gender_names[FEMALE]) != len(gender_names[MALE]):
            raise LexiconError(
                f"{source}: names.gender.female has {len(gender_names[FEMALE])} names but names.gender.male has "
                f"{len(gender_names[MALE])}; the lists swap by position, so give them the same length"
            )

    pairs = []
    for index, pair in enumerate(payload.get("word_pairs") or []):
        if len(pair) != 2:
            raise LexiconError(f"{source}: word_pairs[{index}] is {pair!r}; expected [masculine, feminine]")
        pairs.append((claim(pair[0], f"word_pairs[{index}]"), claim(pair[1], f"word_pairs[{index}]")))

    one_way = {}
    for word, target in (payload.get("one_way") or {}).items():
        one_way[claim(word, "one_way")] = _normalise(target)

    for pronoun in ("her", "his", "hers", "him"):
        if pronoun in seen:
            raise LexiconError(f"{source}: {pronoun!r} is in {seen[pronoun]}; the swapper handles it by context, so remove it")
    return CounterfactualLexicon(names=names, word_pairs=tuple(pairs), one_way=one_way)
