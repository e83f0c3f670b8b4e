"""Counterfactual swapping of names and gendered words, the lexicon checks, and the probe set."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from helpers_fairness import make_named_pairs
from hybrid_dialogue.data.synth_templates import load_resources
from hybrid_dialogue.fairness.counterfactual import CounterfactualSwapper, LexiconError, default_swapper, load_lexicon
from hybrid_dialogue.fairness.probes import NAME, ORIGINAL, SWAP, build_probe_set

SWAP_TABLE = [
    # Pronouns: "her" and "his" by the next word, "hers" and "him" one to one.
    ("i told her about it.", "i told him about it."),
    ("please call her back", "please call him back"),
    ("i asked her.", "i asked him."),
    ("her order never came", "his order never came"),
    ("her new phone broke", "his new phone broke"),
    ("the phone is his.", "the phone is hers."),
    ("his order is late", "her order is late"),
    ("is it his or hers?", "is it hers or his?"),
    ("ask him", "ask her"),
    ("he did it himself", "she did it herself"),
    ("she's late", "he's late"),
    # Gendered nouns, both directions, hyphenated compounds and possessives.
    ("my husband says", "my wife says"),
    ("my wife says", "my husband says"),
    ("my ex-husband's card", "my ex-wife's card"),
    ("as a mom of two", "as a dad of two"),
    ("my boyfriend told me", "my girlfriend told me"),
    ("mrs smith", "mr smith"),
    # Names, both directions and with accents.
    ("hi, i'm maria.", "hi, i'm james."),
    ("thanks, james", "thanks, maria"),
    ("zoë here", "louis here"),
    ("this is josé", "this is linda"),
    # Case is kept.
    ("Hi, I'm Maria. HE said HIS", "Hi, I'm James. SHE said HERS"),
    ("Her Order", "His Order"),
    # Whole words only: no partial matches inside longer words or usernames.
    ("marianne sent the hero a message", "marianne sent the hero a message"),
    ("my username is maria_b2", "my username is maria_b2"),
    ("the theme is here", "the theme is here"),
    ("shepherd manager", "shepherd manager"),
    ("o'neill", "o'neill"),
    ("no names here", "no names here"),
]


@pytest.mark.parametrize(("text", "expected"), SWAP_TABLE)
def test_swap_table(text: str, expected: str) -> None:
    assert default_swapper().swap(text) == expected


@pytest.mark.parametrize("text", ["hi, i'm maria. my husband says he never got it", "thanks, james. my wife asked me"])
def test_swap_twice_restores_names_and_nouns(text: str) -> None:
    swapper = default_swapper()

    assert swapper.swap(swapper.swap(text)) == text


def test_lexicon_covers_corpus_names() -> None:
    resources = load_resources()
    lexicon = load_lexicon()

    for gender in ("female", "male"):
        for name in resources.first_names[gender]:
            assert lexicon.group_of_name("gender", name) == gender, name


def test_lexicon_name_lists_pair_up() -> None:
    lexicon = load_lexicon()

    assert len(lexicon.names["gender"]["female"]) == len(lexicon.names["gender"]["male"])
    assert lexicon.groups("gender") == ("female", "male")
    assert lexicon.groups("region") == ()


def test_replace_name_keeps_case() -> None:
    swapper = default_swapper()

    assert swapper.replace_name("this is maria. MARIA! Maria.", "Maria", "aisha") == "this is aisha. AISHA! Aisha."
    assert swapper.replace_name("mariana", "maria", "aisha") == "mariana"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"names": {"gender": {"female": ["anna", "mia"], "male": ["tom"]}}}, r"female has 2 names but names\.gender\.male has 1"),
        ({"names": {"gender": {"female": ["anna"], "male": ["anna"]}}}, r"'anna' appears in names\.gender\.female and in names\.gender\.male"),
        ({"word_pairs": [["he", "she", "they"]]}, r"word_pairs\[0\] is .*expected \[masculine, feminine\]"),
        ({"word_pairs": [["him", "them"]]}, r"'him' is in word_pairs\[0\]; the swapper handles it by context"),
        ({"word_pairs": [["two words", "x"]]}, r"'two words', which is not a single word"),
    ],
)
def test_lexicon_errors_name_entry(tmp_path: Path, payload: dict, message: str) -> None:
    path = tmp_path / "lexicon.json"
    path.write_text(json.dumps(payload), encoding="utf-8")

    with pytest.raises(LexiconError, match=message):
        load_lexicon(path)


def test_custom_lexicon_swaps(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.json"
    path.write_text(json.dumps({"names": {"gender": {"female": ["ada"], "male": ["alan"]}}, "word_pairs": [["king", "queen"]]}),
                    encoding="utf-8")
    swapper = CounterfactualSwapper(load_lexicon(path))

    assert swapper.swap("Ada met the king") == "Alan met the queen"
    assert swapper.swap("maria") == "maria"


def test_probe_set_pairs_variants_with_originals() -> None:
    frame = make_named_pairs(24)
    probes = build_probe_set(frame, default_swapper(), "gender", names_per_message=2, seed=0)
    rows = probes.rows

    originals = probes.originals
    assert set(rows["kind"]) == {ORIGINAL, SWAP, NAME}
    assert len(originals) == rows["message_id"].nunique()
    for message_id, group in rows.groupby("message_id"):
        original = group[group["kind"] == ORIGINAL].iloc[0]
        for variant in group[group["kind"] != ORIGINAL].itertuples():
            assert variant.input_text != original.input_text
            assert variant.group != original.group, (message_id, variant.input_text)
            assert variant.agent_text == original.agent_text


def test_probe_set_name_variants_use_other_group() -> None:
    frame = pd.DataFrame([{
        "pair_id": "d1:1", "intent": "refund", "input_text": "hi, i'm maria. my husband wants a refund",
        "agent_text": "i have refunded it", "customer_name": "Maria", "gender": "female", "region": "north",
    }])
    lexicon_names = load_lexicon().names["gender"]["male"]

    probes = build_probe_set(frame, default_swapper(), "gender", names_per_message=3, seed=1)
    names = probes.rows[probes.rows["kind"] == NAME]

    assert len(names) == 3
    swapped = probes.rows[probes.rows["kind"] == SWAP].iloc[0]
    assert swapped.input_text == "hi, i'm james. my wife wants a refund"
    for text in names["input_text"]:
        introduced = text.removeprefix("hi, i'm ").split(".")[0]
        assert introduced in lexicon_names
        assert introduced != "james"
        assert "my wife" in text
    assert set(names["group"]) == {"male"}


def test_probe_set_skips_messages_without_signals() -> None:
    frame = make_named_pairs(12)
    frame["input_text"] = "where is my order"
    frame["customer_text"] = "where is my order"

    probes = build_probe_set(frame, default_swapper(), "gender", names_per_message=1)

    assert len(probes) == 0


def test_probe_set_caps_messages() -> None:
    frame = make_named_pairs(60)

    probes = build_probe_set(frame, default_swapper(), "gender", names_per_message=1, max_messages=5, seed=3)
    again = build_probe_set(frame, default_swapper(), "gender", names_per_message=1, max_messages=5, seed=3)

    assert len(probes.originals) == 5
    pd.testing.assert_frame_equal(probes.rows, again.rows)
