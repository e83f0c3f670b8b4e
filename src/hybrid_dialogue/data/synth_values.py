"""Slot values and planted personal data for the synthetic corpus.

All values come from the `random.Random` passed in, so a seed fixes them. The
personal data is fake but has real-world shape: card numbers pass the Luhn
check, and phone numbers follow US, UK, German, French and other
international layouts, because redaction must recognise those shapes.
"""

from __future__ import annotations

import random
import unicodedata
from typing import Any

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
# The corpus is set in one fixed year, so that no output depends on today's date.
CORPUS_YEAR = 2026


class SlotSampler:
    """Draws one dialogue's slot values (order number, dates, amount, product, ...)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._products = tuple(values["products"])
        self._plans = tuple(values["plans"])
        self._adjectives = tuple(values["username_words"]["adjectives"])
        self._nouns = tuple(values["username_words"]["nouns"])
        self._promo_words = tuple(values["promo_words"])

    def sample(self, rng: random.Random) -> dict[str, str]:
        """Return a value for every customer and agent slot."""
        month = rng.randrange(12)
        order_day = rng.randint(1, 20)
        delivery_day = order_day + rng.randint(3, 8)
        return {
            "order_id": _order_id(rng),
            "order_date": _order_date(rng, month, order_day),
            "delivery_date": _delivery_date(rng, month, delivery_day),
            "amount": _amount(rng),
            "product": rng.choice(self._products),
            "plan": rng.choice(self._plans),
            "promo_code": f"{rng.choice(self._promo_words)}{rng.choice((10, 15, 20, 25))}",
            "username": f"{rng.choice(self._adjectives)}_{rng.choice(self._nouns)}{rng.randint(1, 99)}",
            "invoice_id": f"INV-{CORPUS_YEAR}-{rng.randint(10000, 99999)}",
            "days": str(rng.choice((3, 5, 7, 10))),
            "ticket": f"TCK-{rng.randint(10000, 99999)}",
            "tracking": f"TRK-{rng.randint(10_000_000, 99_999_999)}",
        }


class PiiSampler:
    """Draws fake personal data: e-mail addresses, phone numbers, card numbers, street addresses."""

    def __init__(self, values: dict[str, Any], surnames: tuple[str, ...]) -> None:
        self._domains = tuple(values["email_domains"])
        self._addresses = values["addresses"]
        self._surnames = surnames

    def sample(self, kind: str, rng: random.Random, first_name: str) -> str:
        """Return one value of `kind` (email, phone, card or address)."""
        if kind == "email":
            return self._email(rng, first_name)
        if kind == "phone":
            return _phone(rng)
        if kind == "card":
            return _card(rng)
        if kind == "address":
            return self._address(rng)
        raise ValueError(f"unknown personal-data kind {kind!r}; expected email, phone, card or address")

    def _email(self, rng: random.Random, first_name: str) -> str:
        first = _ascii_lower(first_name)
        last = _ascii_lower(rng.choice(self._surnames))
        digits = rng.randint(1, 99)
        layouts = (f"{first}.{last}", f"{first}{digits}", f"{first[0]}{last}", f"{first}_{last}{digits}")
        local = layouts[rng.randrange(len(layouts))]
        return f"{local}@{rng.choice(self._domains)}"

    def _address(self, rng: random.Random) -> str:
        country = rng.choice(("us", "uk", "de", "fr"))
        spec = self._addresses[country]
        street = rng.choice(spec["streets"])
        city, code = rng.choice(spec["cities"])
        number = rng.randint(1, 250)
        if country == "us":
            return f"{number} {street}, {city}, {code} {rng.randint(10000, 99999)}"
        if country == "uk":
            return f"{number} {street}, {city} {code}"
        if country == "de":
            return f"{street} {number}, {code} {city}"
        return f"{number} {street}, {code} {city}"


def luhn_check_digit(digits: str) -> str:
    """Return the Luhn check digit that makes `digits` + digit a valid card number."""
    total = 0
    # Double every second digit from the right of the full number; the check
    # digit will sit rightmost, so doubling starts at the last payload digit.
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def _order_id(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"#{rng.randint(1_000_000, 9_999_999)}"
    return f"ORD-{rng.randint(100_000, 999_999)}"


def _order_date(rng: random.Random, month: int, day: int) -> str:
    style = rng.randrange(4)
    if style == 0:
        return f"{MONTHS[month]} {day}"
    if style == 1:
        return f"{day} {MONTHS[month]}"
    if style == 2:
        return f"{CORPUS_YEAR}-{month + 1:02d}-{day:02d}"
    return rng.choice(WEEKDAYS)


def _delivery_date(rng: random.Random, month: int, day: int) -> str:
    style = rng.randrange(3)
    if style == 0:
        return f"{MONTHS[month]} {day}"
    if style == 1:
        return f"{day} {MONTHS[month]}"
    return rng.choice(WEEKDAYS)


def _amount(rng: random.Random) -> str:
    value = f"{rng.randint(5, 400)}.{rng.choice(('00', '49', '50', '99'))}"
    style = rng.randrange(4)
    if style == 0:
        return f"${value}"
    if style == 1:
        return f"€{value}"
    if style == 2:
        return f"£{value}"
    return f"{value} EUR"


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


def _phone(rng: random.Random) -> str:
    """Return a phone number in one of several national or international layouts."""
    style = rng.randrange(12)
    if style == 0:  # US, national
        return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{_digits(rng, 4)}"
    if style == 1:
        return f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{_digits(rng, 4)}"
    if style == 2:  # US, international
        return f"+1 {rng.randint(201, 989)} {rng.randint(200, 999)} {_digits(rng, 4)}"
    if style == 3:  # UK landline, London
        return f"020 {rng.randint(7000, 8999)} {_digits(rng, 4)}"
    if style == 4:  # UK mobile
        return f"07{_digits(rng, 3)} {_digits(rng, 6)}"
    if style == 5:
        return f"+44 7{_digits(rng, 3)} {_digits(rng, 6)}"
    if style == 6:  # Germany
        return f"+49 {rng.choice(('30', '40', '89', '151', '170'))} {_digits(rng, 8)}"
    if style == 7:
        return f"0{rng.choice(('30', '40', '89', '151', '170'))} {_digits(rng, 8)}"
    if style == 8:  # France, grouped in pairs
        pairs = " ".join(_digits(rng, 2) for _ in range(4))
        return f"+33 {rng.randint(1, 7)} {pairs}"
    if style == 9:
        pairs = ".".join(_digits(rng, 2) for _ in range(4))
        return f"0{rng.choice((1, 6, 7))}.{pairs}"
    if style == 10:  # Australia
        return f"+61 2 {_digits(rng, 4)} {_digits(rng, 4)}"
    return f"+91 9{_digits(rng, 4)} {_digits(rng, 5)}"  # India, mobile


def _card(rng: random.Random) -> str:
    """Return a Luhn-valid card number grouped with spaces or dashes (Visa, Mastercard or Amex layout)."""
    separator = rng.choice((" ", "-"))
    brand = rng.randrange(3)
    if brand == 2:  # Amex: 15 digits grouped 4-6-5
        payload = rng.choice(("34", "37")) + _digits(rng, 12)
        number = payload + luhn_check_digit(payload)
        return separator.join((number[:4], number[4:10], number[10:]))
    prefix = "4" if brand == 0 else str(rng.randint(51, 55))
    payload = prefix + _digits(rng, 15 - len(prefix))
    number = payload + luhn_check_digit(payload)
    return separator.join(number[i : i + 4] for i in range(0, 16, 4))


def _ascii_lower(name: str) -> str:
    """Fold accents away for e-mail local parts: 'Zoë' -> 'zoe', 'Müller' -> 'muller'."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
