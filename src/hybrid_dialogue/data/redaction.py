"""Redaction of personal data in support messages: emails, phone numbers, payment cards, street addresses.

Each kind is replaced by a placeholder token (`[EMAIL]`, `[PHONE]`, `[CARD]`,
`[ADDRESS]`) that the tokenizer keeps whole. Values that the agent's reply
needs stay: order and invoice numbers (`order 113542617735902`, `#A1B2C3`),
dates, times and amounts.

Detection is regex-first (compiled `re` patterns), with a check in Python on
each candidate match where a regex alone cannot decide: the Luhn checksum for
cards, and digit counts, group shapes and nearby keywords for phone numbers.
Texts are expected after NFKC normalisation, so full-width digits and
no-break spaces are already plain ASCII.

Speed: most patterns start with the character they need (a digit, '+' or
'(') and check the character before it with a lookbehind placed after it, so
that `re` can skip ahead to candidate positions instead of trying every one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields

EMAIL, PHONE, CARD, ADDRESS = "email", "phone", "card", "address"
KINDS = (EMAIL, CARD, PHONE, ADDRESS)  # order of application: emails contain digits, cards are longer than phones
PLACEHOLDERS = {EMAIL: "[EMAIL]", PHONE: "[PHONE]", CARD: "[CARD]", ADDRESS: "[ADDRESS]"}


@dataclass(frozen=True, slots=True)
class RedactionCounts:
    """Number of redacted spans of each kind in one text or in a whole corpus."""

    email: int = 0
    phone: int = 0
    card: int = 0
    address: int = 0

    def __add__(self, other: RedactionCounts) -> RedactionCounts:
        return RedactionCounts(
            self.email + other.email, self.phone + other.phone, self.card + other.card, self.address + other.address
        )

    def __bool__(self) -> bool:
        return bool(self.email or self.phone or self.card or self.address)

    def as_dict(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


NO_REDACTIONS = RedactionCounts()

# --- Emails and cards -----------------------------------------------------------

_EMAIL_PATTERN = r"(?<![\w.%+'-])[\w.%+'-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}(?![\w-])"
_EMAIL = re.compile(_EMAIL_PATTERN, re.IGNORECASE)

# 13 to 19 ASCII digits (the Luhn check reads them as such), optionally
# grouped by single spaces or dashes. A candidate must not start right after a
# word character, '#', '+' or '-', so that ids such as '#4111111111111111' and
# international phone numbers are not cards.
CARD_SHAPE = r"[0-9](?:[ -]?[0-9]){12,18}"  # also a fast pre-filter for validation (no lookarounds)
_CARD_CANDIDATE = re.compile(r"[0-9](?<![\w#+-][0-9])(?:[ -]?[0-9]){12,18}(?!\w)")

# --- Phone numbers ----------------------------------------------------------------

# Digit groups as phone numbers are written: an optional country code, an
# optional area code in parentheses, then groups of digits joined by one space,
# dot or dash. Possessive quantifiers keep matching linear on long digit runs.
# The boundaries keep out decimals (1.5), times (14:30), dates (03/15) and
# thousands (1,234).
_PHONE_CANDIDATE = re.compile(
    r"""
    (?:
        \+(?<![\w+]\+)\d{1,3}[ .-]?(?:\(\d{1,5}\)[ .-]?)?+\d{1,12}+   # +44 20, +1 (555) 123
    |
        \((?<![\w#+/.,:-]\()\d{1,5}\)[ .-]?\d{1,12}+                 # (555) 123, (020) 7946
    |
        \d(?<![\w#+/.,:-]\d)\d{0,11}+                                 # 0176, 555, 06
    )
    (?:[ .-]\d{1,12}+){0,6}+
    (?![\w/:]|[.,-]\d)
    """,
    re.VERBOSE,
)
_DIGITS_GROUP = re.compile(r"\d+")
_SEPARATOR = re.compile(r"[ .-]")

# A date with a four-digit year (day or month first, or year first), which
# would otherwise pass as a national phone number when a number follows it.
_DATE_PREFIX = re.compile(r"\d{1,2}([ .-])\d{1,2}\1(?:19|20)\d\d(?!\d)|(?:19|20)\d\d([ .-])\d{1,2}\2\d{1,2}(?!\d)")

# Keywords in the 30 characters before a digit run. An order keyword right
# before the run keeps it (an order id), and a phone keyword nearby marks an
# ungrouped run of digits as a phone number.
_ORDER_KEYWORD_BEFORE = re.compile(
    r"(?:order|purchase|invoice|bill|tracking|shipment|parcel|package|ticket|case|reference|ref|booking|"
    r"confirmation|transaction|item|sku|product|model|serial)"
    r"\s*(?:number|num|no\.?|id|code)?\s*[:#]?\s*$",
    re.IGNORECASE,
)
_PHONE_KEYWORD_BEFORE = re.compile(
    r"\b(?:phone|telephone|tel|mobile|cell|cellphone|fax|whatsapp|call|text|ring|reach)\b[^\d]{0,24}$",
    re.IGNORECASE,
)
_KEYWORD_WINDOW = 30

# --- Street addresses ----------------------------------------------------------

# NOTE: covered layouts are English and French house-number-first, German
# name-first and PO boxes. Others, such as "Calle Mayor 5" or "Via Roma 1",
# pass unredacted.

_STREET_TYPES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|close|"
    r"crescent|square|sq|highway|hwy|parkway|pkwy|circle|cir|trail|grove|gardens"
)
_UNIT = r"(?:apt|apartment|unit|suite|ste|flat|floor|fl|room|rm)\.?\s*[#]?\s*[a-z0-9]{1,5}"  # [#]: verbose mode
# Words that end a street name: without them "2 items on the way" would read
# as a house number, a name and the street type "way".
_NOT_NAME = (
    r"(?:the|a|an|on|in|at|by|of|to|for|from|with|and|or|but|my|your|our|their|his|her|its|this|that|"
    r"these|those|is|are|was|were|be|been|it|i|you|we|they|me|us|them|no|not|more|less|than|per|"
    r"days?|hours?|minutes?|weeks?|months?|years?|times?|items?|units?|orders?|packages?|pieces?|"
    r"euros?|dollars?|pounds?|usd|eur|gbp|business|working|miles?|km|kilometers?|kilometres?|mins?)\b"
)
# City and postcode after a street: US ", Springfield, IL 62704", UK ", London
# SW1A 2AA", German and French ", 10115 Berlin".
_POSTAL_TAIL = (
    r"(?:,\s*[a-z][a-z.'-]*(?:\s[a-z][a-z.'-]*){0,2},\s*[a-z]{2}\s+\d{5}(?:-\d{4})?\b"
    r"|,\s*[a-z][a-z.'-]*(?:\s[a-z][a-z.'-]*){0,2}\s+[a-z]{1,2}\d[a-z\d]?\s?\d[a-z]{2}\b"
    r"|,\s*\d{4,5}\s+[^\W\d_][\w'-]*)?"
)
# House number first. English: "12 Baker Street", "221B Baker St., apt 4",
# "1600 Pennsylvania Avenue NW". French: "12 rue de la Paix", "5 bis, avenue Foch".
_ADDRESS_NUMBER_FIRST = re.compile(
    rf"""
    \d(?<![\w#]\d)\d{{0,4}}+
    (?:
        [a-z]?,?\s+
        (?:(?!{_NOT_NAME})[a-z][a-z'-]*+\.?\s+){{1,3}}
        (?:{_STREET_TYPES})\b\.?
        (?:\s+(?:n|s|e|w|ne|nw|se|sw)\b)?
        (?:,?\s+{_UNIT}\b)?
    |
        (?:\s?(?:bis|ter))?,?\s+
        (?:rue|avenue|av\.|boulevard|bd|allée|chemin|impasse|quai)\s+
        (?!{_NOT_NAME})[\w'-]++(?:\s+(?!{_NOT_NAME})[\w'-]++){{0,3}}
    )
    {_POSTAL_TAIL}
    """,
    re.IGNORECASE | re.VERBOSE,
)
# A unit right before a house number, as in "apt 4B, 221 Main St.".
_UNIT_BEFORE = re.compile(rf"(?<!\w){_UNIT},?\s+$", re.IGNORECASE)
# German, name first: "Hauptstraße 5", "Berliner Straße 12", "Musterstr. 12a".
_GERMAN_STREET = re.compile(
    r"(?<![\w-])(?:[a-zäöüß]+er\s+)?[a-zäöüß-]{0,30}?(?:straße|strasse|str\.|weg|allee|platz|gasse)\s+\d{1,4}[a-z]?\b"
    + _POSTAL_TAIL,
    re.IGNORECASE,
)
_GERMAN_HINTS = ("str", "weg", "allee", "platz", "gasse")
# Post office boxes: "PO Box 1234", "P.O. Box 77".
_PO_BOX = re.compile(r"(?<!\w)p\.?\s?o\.?\s+box\s+\d{1,6}\b", re.IGNORECASE)

_DIGIT = re.compile(r"\d")


# --- Checks on candidate matches ---------------------------------------------

Span = tuple[int, int]


def luhn_valid(digits: str) -> bool:
    """Return whether a string of digits passes the Luhn checksum of payment card numbers."""
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = ord(character) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _follows_order_keyword(text: str, start: int) -> bool:
    return _ORDER_KEYWORD_BEFORE.search(text, max(0, start - _KEYWORD_WINDOW), start) is not None


def _follows_phone_keyword(text: str, start: int) -> bool:
    return _PHONE_KEYWORD_BEFORE.search(text, max(0, start - _KEYWORD_WINDOW), start) is not None


def _is_card(text: str, match: re.Match[str]) -> bool:
    """Return whether a 13-19 digit candidate is a payment card number.

    Numbers of the major networks start with 2 to 6 (Mastercard 2 and 5,
    Amex, Diners and JCB 3, Visa 4, Discover and UnionPay 6) and pass the
    Luhn check, which 1 in 10 random digit strings also pass. An ungrouped
    run right after an order keyword is kept as an order id.

    NOTE: a 13-19 digit id without such a keyword before it becomes `[CARD]`
    when it passes both checks, which about 1 in 20 random ids do.
    """
    candidate = match.group()
    digits = candidate.replace(" ", "").replace("-", "")
    if digits[0] not in "23456" or not luhn_valid(digits):
        return False
    if digits == candidate and _follows_order_keyword(text, match.start()):
        return False
    return True


def _is_phone(text: str, match: re.Match[str]) -> bool:
    """Return whether a candidate digit sequence is a phone number.

    Accepted shapes:
    - international: `+` and 8 to 15 digits (the E.164 maximum).
    - the `00` international prefix and 10 to 17 digits in all.
    - an area code in parentheses and 9 to 12 digits.
    - national, European and Australian style: a leading 0, 9 to 12 digits,
      at least two groups with one kind of separator.
    - North American: 3-3-4 digits, optionally after a leading 1.
    After a phone keyword ("call me on 5551234567"), any run of 8 to 15
    digits counts. Right after an order keyword, only the `+` and
    parenthesised shapes count.
    """
    candidate = match.group()
    groups = _DIGITS_GROUP.findall(candidate)
    digit_count = sum(len(group) for group in groups)
    if digit_count < 8 or digit_count > 17:
        return False
    if candidate[0] == "+":
        return digit_count <= 15
    if candidate[0] == "(":
        return 9 <= digit_count <= 12
    if _DATE_PREFIX.match(candidate) or _follows_order_keyword(text, match.start()):
        return False
    if _follows_phone_keyword(text, match.start()):
        return digit_count <= 15

    if len(groups) < 2 or len(set(_SEPARATOR.findall(candidate))) > 1:
        return False  # an ungrouped run is an id, and mixed separators are a date or a list of numbers
    if candidate.startswith("00"):
        return 10 <= digit_count <= 17
    if candidate[0] == "0":
        return 9 <= digit_count <= 12
    lengths = [len(group) for group in groups]
    return lengths == [3, 3, 4] or (lengths == [1, 3, 3, 4] and groups[0] == "1")


def _card_span(text: str, match: re.Match[str]) -> Span | None:
    return match.span() if _is_card(text, match) else None


def _phone_span(text: str, match: re.Match[str]) -> Span | None:
    return match.span() if _is_phone(text, match) else None


def _address_span(text: str, match: re.Match[str]) -> Span | None:
    """Return the span of a house-number-first address, widened to a unit written before it."""
    start, end = match.span()
    unit = _UNIT_BEFORE.search(text, max(0, start - 24), start)
    return (unit.start() if unit else start), end


# --- Replacement --------------------------------------------------------------


def _replace(
    text: str, pattern: re.Pattern[str], placeholder: str, span_of: Callable[[str, re.Match[str]], Span | None]
) -> tuple[str, int]:
    """Replace the spans that `span_of` returns for the matches of `pattern`; return the text and the count."""
    pieces: list[str] = []
    position = 0
    count = 0
    for match in pattern.finditer(text):
        span = span_of(text, match)
        if span is None:
            continue
        start = max(span[0], position)  # a widened span never reaches back into the previous replacement
        pieces.append(text[position:start])
        pieces.append(placeholder)
        position = span[1]
        count += 1
    if not count:
        return text, 0
    pieces.append(text[position:])
    return "".join(pieces), count


def _redact_addresses(text: str) -> tuple[str, int]:
    text, count = _replace(text, _ADDRESS_NUMBER_FIRST, PLACEHOLDERS[ADDRESS], _address_span)
    lowered = text.lower()
    if any(hint in lowered for hint in _GERMAN_HINTS):
        text, german = _GERMAN_STREET.subn(PLACEHOLDERS[ADDRESS], text)
        count += german
    if "box" in lowered:
        text, boxes = _PO_BOX.subn(PLACEHOLDERS[ADDRESS], text)
        count += boxes
    return text, count


def _redact_emails(text: str) -> tuple[str, int]:
    return _EMAIL.subn(PLACEHOLDERS[EMAIL], text)


def _redact_cards(text: str) -> tuple[str, int]:
    return _replace(text, _CARD_CANDIDATE, PLACEHOLDERS[CARD], _card_span)


def _redact_phones(text: str) -> tuple[str, int]:
    return _replace(text, _PHONE_CANDIDATE, PLACEHOLDERS[PHONE], _phone_span)


_REDACTORS = {EMAIL: _redact_emails, CARD: _redact_cards, PHONE: _redact_phones, ADDRESS: _redact_addresses}

# Passes per kind. Two spans that touch ("a@b.co.c@d.co") hide the second
# from the lookbehind until the first is a placeholder, so a kind runs again
# after any replacement.
_MAX_PASSES = 3


def redact(text: str, kinds: Iterable[str] = KINDS) -> tuple[str, RedactionCounts]:
    """Replace the personal data of the given kinds in `text` by placeholders.

    Returns the redacted text and the number of spans replaced per kind. The
    kinds are applied in the order of `KINDS`, whatever order `kinds` has.
    """
    wanted = set(kinds)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; expected some of {list(KINDS)}")

    counts = dict.fromkeys(KINDS, 0)
    for kind in KINDS:
        if kind not in wanted:
            continue
        # Emails need an '@', and cards, phone numbers and addresses need a digit. Most messages lack both.
        if (kind == EMAIL and "@" not in text) or (kind != EMAIL and not _DIGIT.search(text)):
            continue
        for _ in range(_MAX_PASSES):
            text, replaced = _REDACTORS[kind](text)
            counts[kind] += replaced
            if not replaced:
                break

    if not any(counts.values()):
        return text, NO_REDACTIONS
    return text, RedactionCounts(**counts)


# --- Leftover checks for data validation ---------------------------------------

# Patterns that Great Expectations searches for in processed text. Each one
# matches only text that `redact` replaces, so a match means that a text
# escaped redaction, not that the two disagree. The email pattern has the same
# shape, and the phone patterns cover the international and North American
# shapes only. They avoid lookarounds, `\d` and `\w`, so that pandas hands
# them to pyarrow's RE2 engine, which scans a whole column in one call, instead
# of running Python's `re` row by row. Their ASCII classes, with every
# non-ASCII character counted as a boundary, keep them narrower than the
# Unicode `\w` and `\d` of the redaction. Cards have no pattern because the
# Luhn check cannot be written as a regex, so validation counts them with
# `count_card_numbers` instead.
_NON_ASCII = "\u0080-\U0010ffff"  # the characters themselves, which both engines accept in a class
_PHONE_END = rf"(?:$|[^A-Za-z0-9_/:.,\- {_NON_ASCII}]|[ .,-]$|[ .,-][^0-9{_NON_ASCII}])"
LEFTOVER_PATTERNS = {
    EMAIL: (
        rf"(?i)(?:^|[^A-Za-z0-9_.%+'{_NON_ASCII}-])[A-Za-z0-9_.%+'-]+@(?:[a-z0-9-]+\.)+[a-z]{{2,}}"
        rf"(?:$|[^A-Za-z0-9_{_NON_ASCII}-])"
    ),
    PHONE: (
        rf"(?:^|[^A-Za-z0-9_+{_NON_ASCII}])\+[0-9]{{1,3}}[ .-]?(?:\([0-9]{{2,4}}\)|[0-9]{{2,4}})[ .-]?"
        rf"[0-9]{{3,4}}[ .-]?[0-9]{{3,4}}{_PHONE_END}"
        rf"|(?:^|[^A-Za-z0-9_#+/.,:{_NON_ASCII}-])\([0-9]{{3}}\) ?[0-9]{{3}}[ .-][0-9]{{4}}{_PHONE_END}"
    ),
}


def count_card_numbers(text: str) -> int:
    """Return how many payment card numbers `text` still contains (0 after redaction)."""
    if not _DIGIT.search(text):
        return 0
    return sum(1 for match in _CARD_CANDIDATE.finditer(text) if _is_card(text, match))
