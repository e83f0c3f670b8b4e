"""`clean_text`, the normalisation that preprocessing and serving share."""

from __future__ import annotations

import pytest

from hybrid_dialogue.config import ConfigError, parse_section
from hybrid_dialogue.data.redaction import RedactionCounts
from hybrid_dialogue.data.text import CONTEXT_SEPARATOR, TextRules, build_input_text, clean_text


def test_default_rules_normalise_and_redact() -> None:
    text = "Hi\u00a0there,\u200b  call ＋４４ 20 7946 0958\n or MAIL Maria@Example.com"
    cleaned, counts = clean_text(text, TextRules())
    assert cleaned == "hi there, call [PHONE] or mail [EMAIL]"
    assert counts == RedactionCounts(email=1, phone=1)


def test_placeholders_stay_upper_case() -> None:
    cleaned, _ = clean_text("Card 4111 1111 1111 1111 PLEASE", TextRules(lowercase=True))
    assert cleaned == "card [CARD] please"


def test_rules_switched_off_keep_text() -> None:
    rules = TextRules(nfkc=False, strip_invisible=False, collapse_whitespace=False, lowercase=False, redact=())
    text = "  Ｍixed\u200b  Case a@b.co  "
    cleaned, counts = clean_text(text, rules)
    assert cleaned == text
    assert not counts


def test_nfkc_folds_compatibility_forms() -> None:
    cleaned, _ = clean_text("ｆｕｌｌ ﬁle ①", TextRules(redact=()))
    assert cleaned == "full file 1"


def test_invisible_only_message_is_empty() -> None:
    cleaned, _ = clean_text("\u200b\ufeff\x00 \t", TextRules())
    assert cleaned == ""


def test_casing_kept_when_lowercase_off() -> None:
    cleaned, _ = clean_text("Where is ORDER 12345?", TextRules(lowercase=False))
    assert cleaned == "Where is ORDER 12345?"


def test_rules_round_trip_through_json() -> None:
    rules = TextRules(lowercase=False, redact=("email", "card"))
    restored = parse_section(TextRules, "text_rules", rules.model_dump(mode="json"))
    assert restored == rules


def test_unknown_redaction_kind_rejected() -> None:
    with pytest.raises(ConfigError, match=r"text_rules\.redact\.1 = 'ssn' is invalid"):
        parse_section(TextRules, "text_rules", {"redact": ["email", "ssn"]})


def test_input_text_puts_message_first() -> None:
    assert build_input_text("where is it", "your order shipped", True) == "where is it" + CONTEXT_SEPARATOR + "your order shipped"
    assert build_input_text("where is it", "your order shipped", False) == "where is it"
    assert build_input_text("hello", "", True) == "hello"
