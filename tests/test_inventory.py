"""Tests of the response inventory: how it is built, how a response is picked from it, and how it is saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybrid_dialogue.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, TextTokenizer
from hybrid_dialogue.models.config import load_model_config
from hybrid_dialogue.models.decoding import pick_from_inventory
from hybrid_dialogue.models.inventory import build_response_inventory
from hybrid_dialogue.models.io import build_model, load_model, save_model

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"

RESPONSES = [
    "your order has shipped",
    "we have issued a refund",
    "your order has shipped",
    "i have cancelled your subscription",
    "we have issued a refund",
    "your order has shipped",
    "a replacement is on its way",
]
# The dialogue of each response: "refund" comes twice but from one dialogue.
DIALOGUES = ["d1", "d2", "d3", "d4", "d2", "d5", "d6"]
MESSAGES = ["where is my order", "i want a refund", "please cancel my subscription", "the parcel arrived damaged"]


def _step(vocab: dict[int, float]) -> list[float]:
    """One step's distribution over a 6-token vocabulary; ids not in `vocab` share what is left."""
    rest = (1.0 - sum(vocab.values())) / (6 - len(vocab))
    return [vocab.get(token, rest) for token in range(6)]


# --- building ---


def test_inventory_counts_dialogues_not_rows():
    ids = np.arange(len(RESPONSES) * 3, dtype=np.int32).reshape(len(RESPONSES), 3)  # row i: a recognisable id row

    inventory, coverage = build_response_inventory(RESPONSES, DIALOGUES, ids, min_dialogues=2, max_responses=10)

    # "shipped" occurs in 3 dialogues (first at row 0). "refund" occurs twice, in one dialogue only.
    np.testing.assert_array_equal(inventory, ids[[0]])
    assert coverage == pytest.approx(3 / 7)


def test_inventory_ties_keep_first_appearance_and_cap_applies():
    ids = np.arange(len(RESPONSES) * 3, dtype=np.int32).reshape(len(RESPONSES), 3)

    every, every_coverage = build_response_inventory(RESPONSES, DIALOGUES, ids, min_dialogues=1, max_responses=10)
    capped, capped_coverage = build_response_inventory(RESPONSES, DIALOGUES, ids, min_dialogues=1, max_responses=3)

    # Row counts 3, 2, then "cancelled" (row 3) and "replacement" (row 6) once each.
    np.testing.assert_array_equal(every, ids[[0, 1, 3, 6]])
    np.testing.assert_array_equal(capped, ids[[0, 1, 3]])
    assert every_coverage == pytest.approx(1.0)
    assert capped_coverage == pytest.approx(6 / 7)


def test_inventory_can_be_empty():
    ids = np.ones((len(RESPONSES), 3), dtype=np.int32)

    assert build_response_inventory(RESPONSES, DIALOGUES, ids, min_dialogues=2, max_responses=0)[0].shape == (0, 3)
    inventory, coverage = build_response_inventory(RESPONSES, DIALOGUES, ids, min_dialogues=4, max_responses=10)
    assert inventory.shape == (0, 3)
    assert coverage == 0.0


def test_inventory_rejects_misaligned_rows():
    with pytest.raises(ValueError, match="7 agent texts, 7 dialogue ids and 2 rows"):
        build_response_inventory(RESPONSES, DIALOGUES, np.ones((2, 3), dtype=np.int32), min_dialogues=1, max_responses=5)


# --- picking ---


def test_pick_from_inventory_maximises_expected_overlap():
    # Row 0: the text likely runs to step 3. Hazards 0, 0.1, 0.2 at steps 0-2
    # give survivals 1, 0.9, 0.72, so E[length] = 1 + 1 + 0.9 + 0.72 = 3.62.
    #   [BOS, EOS]        : 2 * (1 + 0.1) / (2 + 3.62)              = 0.391
    #   [BOS, 4, EOS]     : 2 * (1 + 0.6 + 0.2) / (3 + 3.62)        = 0.544
    #   [BOS, 4, 5, EOS]  : 2 * (1 + 0.6 + 0.6 + 0.9) / (4 + 3.62)  = 0.814  <- best
    #   [BOS, 5, 4, EOS]  : 2 * (1 + 0.2 + 0.05 + 0.9) / (4 + 3.62) = 0.564
    # Row 1: [EOS] is likely at step 1 (hazard 0.9), so E[length] = 1 + 1 + 0.1 + 0.08 = 2.18:
    #   [BOS, EOS]        : 2 * (1 + 0.9) / (2 + 2.18)              = 0.909  <- best
    #   [BOS, 4, 5, EOS]  : 2 * (1 + 0.05 + 0.6 + 0.9) / (4 + 2.18) = 0.825
    probabilities = np.array(
        [
            [_step({BOS_ID: 1.0}), _step({4: 0.6, 5: 0.2, EOS_ID: 0.1}), _step({5: 0.6, EOS_ID: 0.2}), _step({EOS_ID: 0.9})],
            [_step({BOS_ID: 1.0}), _step({EOS_ID: 0.9, 4: 0.05}), _step({5: 0.6, EOS_ID: 0.2}), _step({EOS_ID: 0.9})],
        ],
        dtype=np.float32,
    )
    inventory = np.array(
        [
            [BOS_ID, EOS_ID, PAD_ID, PAD_ID],
            [BOS_ID, 4, EOS_ID, PAD_ID],
            [BOS_ID, 4, 5, EOS_ID],
            [BOS_ID, 5, 4, EOS_ID],
        ],
        dtype=np.int32,
    )

    np.testing.assert_array_equal(pick_from_inventory(probabilities, inventory), [2, 0])


# --- the model with an inventory ---


@pytest.fixture(scope="module")
def tokenizer() -> TextTokenizer:
    return TextTokenizer.fit((RESPONSES + MESSAGES) * 3, vocab_size=80)


@pytest.fixture()
def model_and_inventory(tokenizer):
    config = load_model_config(PARAMS, {"preset": "tiny"})
    model = build_model(config.architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=3)
    model.inference_jit_compile = False
    response_ids, _ = tokenizer.encode_batch(RESPONSES, config.sizes.max_len)
    inventory, _ = build_response_inventory(RESPONSES, DIALOGUES, response_ids, min_dialogues=1, max_responses=10)
    input_ids, _ = tokenizer.encode_batch(MESSAGES, config.sizes.max_len)
    return model, inventory, input_ids


def test_respond_answers_with_inventory_rows(model_and_inventory):
    model, inventory, input_ids = model_and_inventory
    parameters = model.count_params()

    model.set_response_inventory(inventory)
    responses = model.respond(input_ids)["response_ids"]

    assert model.count_params() == parameters  # the inventory is not a weight
    rows = {tuple(row) for row in inventory.tolist()}
    assert all(tuple(row) in rows for row in responses.tolist())


def test_inventory_survives_save_and_load(model_and_inventory, tokenizer, tmp_path):
    model, inventory, input_ids = model_and_inventory
    model.set_response_inventory(inventory)

    save_model(model, tmp_path / "model.keras")
    loaded = load_model(tmp_path / "model.keras", tokenizer=tokenizer)
    loaded.inference_jit_compile = False

    np.testing.assert_array_equal(loaded.response_inventory, inventory)
    for key, value in model.respond(input_ids).items():
        np.testing.assert_array_equal(loaded.respond(input_ids)[key], value)


def test_free_decoding_stays_available(model_and_inventory):
    model, inventory, input_ids = model_and_inventory
    free_before = model.respond(input_ids)["response_ids"]  # no inventory yet: free decoding

    model.set_response_inventory(inventory)

    np.testing.assert_array_equal(model.respond(input_ids, decoding="free")["response_ids"], free_before)
    model.set_response_inventory(None)
    assert model.response_inventory is None
    with pytest.raises(ValueError, match="has none: use decoding 'free'"):
        model.respond(input_ids, decoding="inventory")
    with pytest.raises(ValueError, match="unknown decoding 'beam'"):
        model.respond(input_ids, decoding="beam")


def test_inventory_rows_must_fit_the_model(model_and_inventory):
    model, _, _ = model_and_inventory
    vocab_size = model.architecture.vocab_size

    cases = [
        ([[BOS_ID, 5, EOS_ID], [BOS_ID, vocab_size, EOS_ID]], "row 1 contains \\[PAD\\] or ids outside"),
        ([[BOS_ID, 5, PAD_ID, 6, EOS_ID]], "row 0 contains \\[PAD\\] or ids outside"),
        ([[PAD_ID, PAD_ID]], "row 0 has 0 tokens before its \\[PAD\\] tail"),
        ([[5, 6, EOS_ID]], "row 0 must start with \\[BOS\\] and end with its only \\[EOS\\]"),
        ([[BOS_ID, 5, 6]], "row 0 must start with \\[BOS\\]"),
        ([[BOS_ID, EOS_ID, 5, EOS_ID]], "row 0 must start with \\[BOS\\]"),
        ([[BOS_ID, 5.5, EOS_ID]], "row 0 must be a 1-D sequence of integer token ids"),
        ([[True, True, False]], "row 0 must be a 1-D sequence of integer token ids"),
        ([[[BOS_ID, EOS_ID]]], "row 0 must be a 1-D sequence"),
        ("hello", "must be a list or array of token id rows, got str"),
    ]
    for responses, message in cases:
        with pytest.raises(ValueError, match=message):
            model.set_response_inventory(responses)


def test_decoding_must_be_named(model_and_inventory):
    model, inventory, input_ids = model_and_inventory
    model.set_response_inventory(inventory)

    for decoding in ("", 0, "Free"):
        with pytest.raises(ValueError, match="unknown decoding"):
            model.respond(input_ids, decoding=decoding)


def test_low_coverage_inventory_is_dropped(model_and_inventory, tokenizer, caplog):
    import pandas as pd

    from hybrid_dialogue.data.dataset import SplitData
    from hybrid_dialogue.training.config import ResponseInventoryConfig
    from hybrid_dialogue.training.hybrid import set_response_inventory

    model, _, input_ids = model_and_inventory
    response_ids, _ = tokenizer.encode_batch(RESPONSES, model.architecture.max_len)
    frame = pd.DataFrame({"agent_text": RESPONSES, "dialogue_id": DIALOGUES})
    train = SplitData(frame, input_ids[:1].repeat(len(RESPONSES), 0), response_ids)

    # Responses used in one dialogue or more cover all 7 pairs, those used in two or more 3 of them (43%).
    set_response_inventory(model, train, ResponseInventoryConfig(min_dialogues=1, min_coverage=0.5))
    assert model.response_inventory.shape == (4, model.architecture.max_len)

    set_response_inventory(model, train, ResponseInventoryConfig(min_dialogues=2, min_coverage=0.5))
    assert model.response_inventory is None
    assert "cover 42.9% of the training pairs, under response_inventory.min_coverage (50.0%)" in caplog.text
