"""SHAP parts: the project-tokenizer masker, the model functions, the sanity check and the aggregation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers_data import write_tiny_processed
from hybrid_dialogue.data.dataset import load_tokenizer
from hybrid_dialogue.explanation.attribution import Attribution, explain_text, punctuation_share, token_importance
from hybrid_dialogue.explanation.functions import (
    QualityFunction,
    ResponseLogProbFunction,
    ShapTokenizer,
    build_text_masker,
)

TEXT = "i want a refund for the laptop please"


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_processed(tmp_path_factory.mktemp("explanation") / "processed", n_pairs=96)


@pytest.fixture(scope="module")
def tiny_model(processed: Path):  # noqa: ANN201 (a HybridDialogueModel)
    from hybrid_dialogue.models.config import load_model_config
    from hybrid_dialogue.models.io import build_model

    tokenizer = load_tokenizer(processed)
    model_config = load_model_config(Path(__file__).resolve().parents[1] / "params.yaml", {"preset": "tiny"})
    model = build_model(model_config.architecture(tokenizer.vocab_size), tokenizer.fingerprint, seed=0)
    model.inference_jit_compile = False
    return model


def test_shap_tokenizer_matches_project_tokens(processed: Path) -> None:
    tokenizer = load_tokenizer(processed)
    shap_tokenizer = ShapTokenizer(processed / "tokenizer.json")

    encoded = shap_tokenizer(TEXT, return_offsets_mapping=True)
    ids, _ = tokenizer.encode_batch([TEXT], max_len=32)

    body = ids[0][1 : 1 + len(encoded["input_ids"])].tolist()
    assert encoded["input_ids"] == body
    assert [TEXT[start:end].strip() for start, end in encoded["offset_mapping"]] == [
        token.lstrip("▁") for token in tokenizer.tokenize(TEXT)
    ]
    assert shap_tokenizer("")["input_ids"] == []


def test_masker_masks_with_unk_one_per_token(processed: Path) -> None:
    masker = build_text_masker(processed / "tokenizer.json")
    tokens = masker.feature_names(TEXT)[0]
    keep = np.array([token != "refund" for token in tokens])

    (masked,) = masker(keep, TEXT)[0]

    assert "refund" in tokens
    assert masked == TEXT.replace("refund", "[UNK]")


def test_shap_puts_weight_on_deciding_token(processed: Path) -> None:
    """A score that depends only on "refund" gets all its SHAP mass on that token."""
    masker = build_text_masker(processed / "tokenizer.json")

    def score(texts: list[str]) -> np.ndarray:
        return np.array([2.0 if "refund" in str(text).split() else 0.5 for text in texts])

    attribution = explain_text(score, masker, TEXT, "refund", max_evals=100, batch_size=16)

    top = int(np.argmax(np.abs(attribution.values)))
    assert attribution.tokens[top] == "refund"
    assert attribution.values[top] == pytest.approx(1.5)
    assert np.abs(np.delete(attribution.values, top)).max() == pytest.approx(0.0, abs=1e-9)
    assert attribution.base_value == pytest.approx(0.5)
    assert attribution.output_value == pytest.approx(2.0)


def test_shap_splits_weight_between_two_tokens(processed: Path) -> None:
    """An additive score over two tokens gives each its own contribution."""
    masker = build_text_masker(processed / "tokenizer.json")

    def score(texts: list[str]) -> np.ndarray:
        return np.array([1.0 * ("refund" in str(text).split()) + 3.0 * ("laptop" in str(text).split()) for text in texts])

    attribution = explain_text(score, masker, TEXT, "refund", max_evals=200, batch_size=16)
    values = dict(zip(attribution.tokens, attribution.values))

    assert values["refund"] == pytest.approx(1.0)
    assert values["laptop"] == pytest.approx(3.0)


def test_log_prob_function_matches_model(processed: Path, tiny_model) -> None:  # noqa: ANN001
    tokenizer = load_tokenizer(processed)
    max_len = tiny_model.architecture.max_len
    texts = [TEXT, "where is my order", "[UNK] [UNK] refund", "please cancel my order"]
    response_ids, _ = tokenizer.encode_batch(["your refund is on its way"], max_len)
    function = ResponseLogProbFunction(tiny_model, tokenizer, response_ids[0], batch_size=3)

    scores = function(texts)

    input_ids, _ = tokenizer.encode_batch(texts, max_len)
    expected = tiny_model.response_log_prob(input_ids, np.repeat(response_ids, len(texts), axis=0))
    assert scores.shape == (4,)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    assert (scores < 0).all()


def test_quality_function_matches_model(processed: Path, tiny_model) -> None:  # noqa: ANN001
    tokenizer = load_tokenizer(processed)
    texts = ["your refund is on its way", "no idea.", ""]
    function = QualityFunction(tiny_model, tokenizer, batch_size=2)

    scores = function(texts)

    ids, _ = tokenizer.encode_batch(texts, tiny_model.architecture.max_len)
    np.testing.assert_allclose(scores, np.asarray(tiny_model.score(ids)), rtol=1e-5, atol=1e-6)
    assert ((scores >= 0) & (scores <= 1)).all()


def attribution(tokens: list[str], values: list[float], group: str) -> Attribution:
    return Attribution(text=" ".join(tokens), group=group, tokens=tokens, values=np.array(values), base_value=0.0,
                       output_value=float(sum(values)), explanation=None)


def test_token_importance_ranks_by_mean_abs() -> None:
    attributions = [
        attribution(["refund", "my", "."], [2.0, 0.1, -0.5], "refund"),
        attribution(["Refund", "please", "."], [-1.0, 0.2, 0.5], "refund"),
        attribution(["where", "order", "."], [0.3, 1.5, 0.1], "order_status"),
    ]

    importance = token_importance(attributions, top=3, min_count=1)

    assert [score["token"] for score in importance["overall"]] == ["order", "refund", "."]
    assert importance["overall"][1] == {"token": "refund", "mean_abs_shap": 1.5, "count": 2}
    assert [score["token"] for score in importance["by_group"]["refund"]] == ["refund", ".", "please"]
    assert importance["punctuation_share"] == pytest.approx(1.1 / 6.2)


def test_token_importance_merges_trailing_punctuation() -> None:
    attributions = [attribution(["my", "order."], [0.5, 1.0], "order_status"),
                    attribution(["Order", "[EMAIL]", "?"], [3.0, 1.5, 0.4], "order_status")]

    importance = token_importance(attributions, top=5, min_count=1)

    assert importance["overall"][0] == {"token": "order", "mean_abs_shap": 2.0, "count": 2}
    assert [score["token"] for score in importance["overall"]] == ["order", "[EMAIL]", "my", "?"]


def test_token_importance_min_count_drops_rare_tokens() -> None:
    attributions = [attribution(["refund", "zzz"], [1.0, 9.0], "refund"), attribution(["refund"], [2.0], "refund")]

    importance = token_importance(attributions, top=5, min_count=2)

    assert [score["token"] for score in importance["overall"]] == ["refund"]


def test_punctuation_share_none_without_mass() -> None:
    assert punctuation_share([attribution(["a"], [0.0], "")]) is None
