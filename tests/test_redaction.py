"""Redaction of personal data: a table of tricky positives and negatives, and the leftover checks."""

from __future__ import annotations

import random
import re

import pytest

from hybrid_dialogue.data.redaction import (
    KINDS,
    LEFTOVER_PATTERNS,
    RedactionCounts,
    count_card_numbers,
    luhn_valid,
    redact,
)

# (input, expected output). Inputs are lower-case, as `clean_text` passes them on.
POSITIVES = [
    # Emails
    ("email me at john.doe+tag@mail.co.uk please", "email me at [EMAIL] please"),
    ("reply to o'brien_99@example-shop.com.", "reply to [EMAIL]."),
    ("my address is maria@sub.domain.de, thanks", "my address is [EMAIL], thanks"),
    # Phone numbers in several national formats
    ("my number is +44 20 7946 0958", "my number is [PHONE]"),
    ("call (555) 123-4567 after 5", "call [PHONE] after 5"),
    ("mon portable: 06 12 34 56 78", "mon portable: [PHONE]"),
    ("handy 0176 1234 5678", "handy [PHONE]"),
    ("555-123-4567 is my cell", "[PHONE] is my cell"),
    ("toll free 1-800-555-0199", "toll free [PHONE]"),
    ("+491761234567", "[PHONE]"),
    ("tel:+33 6 12 34 56 78", "tel:[PHONE]"),
    ("from abroad 0044 20 7946 0958", "from abroad [PHONE]"),
    ("mobile 07700 900123", "mobile [PHONE]"),
    ("aus: 0412 345 678", "aus: [PHONE]"),
    ("06.12.34.56.78 is best", "[PHONE] is best"),
    ("+91 98765 43210 in the evening", "[PHONE] in the evening"),
    ("call me on 5551234567", "call me on [PHONE]"),
    ("+1 (555) 123-4567", "[PHONE]"),
    # Payment cards, grouped or not, Luhn-valid
    ("card 4111 1111 1111 1111 expires", "card [CARD] expires"),
    ("card 5500-0000-0000-0004", "card [CARD]"),
    ("amex 3782 822463 10005", "amex [CARD]"),
    ("charged to 4532015112830366 twice", "charged to [CARD] twice"),
    # Street addresses
    ("i live at 12 baker street, london", "i live at [ADDRESS], london"),
    ("apt 4b, 221 main st. is my address", "[ADDRESS] is my address"),
    ("ship to 1600 pennsylvania avenue nw", "ship to [ADDRESS]"),
    ("deliver to 12 oak street, springfield, il 62704.", "deliver to [ADDRESS]."),
    ("7 high street, london sw1a 2aa thanks", "[ADDRESS] thanks"),
    ("12 rue de la paix, 75002 paris merci", "[ADDRESS] merci"),
    ("berliner straße 12, 10115 berlin bitte", "[ADDRESS] bitte"),
    ("use po box 1234 instead", "use [ADDRESS] instead"),
    ("221b baker st, flat 2 is home", "[ADDRESS] is home"),
]

# Texts that must come back unchanged: order numbers, dates, times, amounts, ids.
NEGATIVES = [
    "order 12345 has not arrived",
    "order #a1b2c3 is missing",
    "cancel order 113542617735902",  # 15 digits, not Luhn-valid
    "cancel order 00004587345",
    "order 4111111111111111 from last week",  # Luhn-valid, but right after 'order'
    "order 1234567890123456",  # 16 digits, not Luhn-valid
    "my invoice #85632",
    "invoice inv-2026-69106 is wrong",
    "tracking number trk-54696814",
    "tracking 1z999aa10123456784",
    "ref ord-684720 please",
    "delivered 2024-03-15 at 14:30",
    "on 15.03.2024 10 items arrived",
    "meet on 05 03 2024 12",
    "i paid 49.99 on 3/15/2024",
    "refund of $1,234.56 please",
    "it costs 1 234 567,89 €",
    "between 10:30 and 11:45",
    "my package is 2 days late, on the way",
    "2 items on the way",
    "a 10 mile drive",
    "ip 192.168.1.1",
    "version 1.2.3",
    "1234 5678 9012 3456",  # card-shaped, fails the Luhn check
    "order 0123 456789",
    "ticket 555 123 4567",
    "we have 3 kids and 2 dogs",
    "@applesupport my phone is broken",
    "size 10 or 11, color 3",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_redact_positive(text: str, expected: str) -> None:
    redacted, counts = redact(text)
    assert redacted == expected
    assert sum(counts.as_dict().values()) == expected.count("[")


@pytest.mark.parametrize("text", NEGATIVES)
def test_redact_negative_unchanged(text: str) -> None:
    redacted, counts = redact(text)
    assert redacted == text
    assert not counts


def test_table_has_enough_cases() -> None:
    assert len(POSITIVES) + len(NEGATIVES) >= 30
    covered = {kind for text, expected in POSITIVES for kind in KINDS if f"[{kind.upper()}]" in expected}
    assert covered == set(KINDS)


def test_counts_per_kind() -> None:
    text = "mail a@b.co or c@d.org, call +44 20 7946 0958, card 4111-1111-1111-1111, 12 baker street"
    redacted, counts = redact(text)
    assert counts == RedactionCounts(email=2, phone=1, card=1, address=1)
    assert redacted == "mail [EMAIL] or [EMAIL], call [PHONE], card [CARD], [ADDRESS]"


def test_only_requested_kinds() -> None:
    text = "a@b.co and +44 20 7946 0958"
    redacted, counts = redact(text, ["phone"])
    assert redacted == "a@b.co and [PHONE]"
    assert counts == RedactionCounts(phone=1)


def test_unknown_kind_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown redaction kind\(s\) \['ssn'\]"):
        redact("text", ["email", "ssn"])


def test_counts_add_up() -> None:
    total = RedactionCounts(email=1) + RedactionCounts(email=2, card=1)
    assert total.as_dict() == {"email": 3, "phone": 0, "card": 1, "address": 0}


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("378282246310005", True), ("4111111111111112", False), ("0", True)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_leftover_patterns_clear_after_redaction(text: str, expected: str) -> None:
    redacted, _ = redact(text)
    for kind, pattern in LEFTOVER_PATTERNS.items():
        assert re.search(pattern, redacted) is None, kind
    assert count_card_numbers(redacted) == 0


@pytest.mark.parametrize("text", NEGATIVES)
def test_leftover_patterns_ignore_kept_values(text: str) -> None:
    for kind, pattern in LEFTOVER_PATTERNS.items():
        assert re.search(pattern, text) is None, kind
    assert count_card_numbers(text) == 0


def test_leftover_patterns_find_unredacted() -> None:
    assert re.search(LEFTOVER_PATTERNS["email"], "write to john.doe@mail.co.uk")
    assert re.search(LEFTOVER_PATTERNS["phone"], "call +44 20 7946 0958")
    assert re.search(LEFTOVER_PATTERNS["phone"], "call (555) 123-4567")
    assert count_card_numbers("card 4111 1111 1111 1111") == 1


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    ["1" * 5000, ("12 " * 3000) + "street", "x" * 3000 + "@" + "b." * 2000, ("0" * 30 + " ") * 300],
)
def test_long_inputs_finish(text: str) -> None:
    # These take milliseconds; a pattern with catastrophic backtracking would
    # take minutes on them and hit the timeout.
    redacted, _ = redact(text)
    assert len(redacted) <= len(text)


def test_leftover_patterns_run_on_pyarrow_re2() -> None:
    # pandas hands RE2-compatible patterns to pyarrow, which scans a column in
    # one call; others fall back to Python's re, row by row, many times slower.
    pa = pytest.importorskip("pyarrow")
    compute = pytest.importorskip("pyarrow.compute")
    texts = pa.array(["mail a@b.co now", "call +44 20 7946 0958", "order 12345"])
    assert compute.match_substring_regex(texts, LEFTOVER_PATTERNS["email"]).to_pylist() == [True, False, False]
    assert compute.match_substring_regex(texts, LEFTOVER_PATTERNS["phone"]).to_pylist() == [False, True, False]


@pytest.mark.parametrize(
    "alphabet",
    ["abcde" * 5 + "@@..-_+' 12é" + "4111", "0123456789" * 4 + "  +()-.#:/,@abcxyz_é٣", "0123456789" * 3 + "+ +(-)"],
)
def test_leftover_patterns_never_match_redacted_text(alphabet: str) -> None:
    # Random strings dense in digits, separators and '@': whatever the
    # redaction leaves, the validation patterns must not flag.
    rng = random.Random(0)
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 40)))
        redacted, _ = redact(text)
        for kind, pattern in LEFTOVER_PATTERNS.items():
            assert re.search(pattern, redacted) is None, (kind, text, redacted)
        assert count_card_numbers(redacted) == 0, (text, redacted)
