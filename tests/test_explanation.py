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
from hybrid_dialogue.explanation.plots import ExplainedTarget, bar_chart, index_page

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


def test_token_importance_ranks_by_total_abs() -> None:
    attributions = [
        attribution(["refund", "my", "."], [2.0, 0.1, -0.5], "refund"),
        attribution(["Refund", "please", "."], [-1.0, 0.2, 0.5], "refund"),
        attribution(["where", "order", "."], [0.3, 1.5, 0.1], "order_status"),
    ]

    importance = token_importance(attributions, top=3, min_count=1)

    assert [score["token"] for score in importance["overall"]] == ["refund", "order", "."]
    assert importance["overall"][0] == {"token": "refund", "total_abs_shap": 3.0, "mean_abs_shap": 1.5, "count": 2}
    assert importance["overall"][2]["total_abs_shap"] == pytest.approx(1.1)
    assert importance["overall"][2]["mean_abs_shap"] == pytest.approx(1.1 / 3)
    assert [score["token"] for score in importance["by_group"]["refund"]] == ["refund", ".", "please"]
    assert importance["punctuation_share"] == pytest.approx(1.1 / 6.2)


def test_token_importance_frequent_token_beats_rare() -> None:
    # A number fragment seen twice with large values, and a word seen in ten texts with moderate ones:
    # the mean ranks the fragment first (2.0 against 0.6), the total ranks the word first (6.0 against 4.0).
    attributions = [attribution(["refund", "please"], [0.6, 0.1], "refund") for _ in range(8)]
    attributions += [attribution(["refund", "12", "3"], [-0.6, 2.0, 0.05], "refund") for _ in range(2)]

    importance = token_importance(attributions, top=3, min_count=2)

    overall = importance["overall"]
    assert [score["token"] for score in overall] == ["refund", "12", "please"]
    assert overall[0]["total_abs_shap"] == pytest.approx(6.0)
    assert overall[0]["mean_abs_shap"] == pytest.approx(0.6)
    assert overall[0]["count"] == 10
    assert overall[1]["total_abs_shap"] == pytest.approx(4.0)
    assert overall[1]["mean_abs_shap"] == pytest.approx(2.0)
    assert overall[2]["total_abs_shap"] == pytest.approx(0.8)
    assert importance["by_group"]["refund"] == overall


def test_report_shows_total_abs_shap() -> None:
    attributions = [attribution(["refund", "please"], [0.6, 0.1], "refund") for _ in range(8)]
    attributions += [attribution(["refund", "12"], [-0.6, 2.0], "refund") for _ in range(2)]
    importance = token_importance(attributions, top=3, min_count=2)
    target = ExplainedTarget("message", "Message tokens", "nats", attributions, importance)

    figure = bar_chart(target, per_group_top=2)
    overall_axes = figure.axes[0]
    # barh draws the best token at the top, so the bars run from last to first.
    widths = [bar.get_width() for bar in overall_axes.patches][::-1]
    assert widths == pytest.approx([6.0, 4.0, 0.8])
    assert [label.get_text() for label in overall_axes.get_yticklabels()][::-1] == ["refund", "12", "please"]

    page = index_page([target], {"Examples": 10}, [])
    assert "<th>Token</th><th>Total |SHAP|</th><th>Mean |SHAP|</th><th>Occurrences</th>" in page
    assert "<tr><td>refund</td><td>6.0000</td><td>0.6000</td><td>10</td></tr>" in page


def test_token_importance_merges_trailing_punctuation() -> None:
    attributions = [attribution(["my", "order."], [0.5, 1.0], "order_status"),
                    attribution(["Order", "[EMAIL]", "?"], [3.0, 1.5, 0.4], "order_status")]

    importance = token_importance(attributions, top=5, min_count=1)

    assert importance["overall"][0] == {"token": "order", "total_abs_shap": 4.0, "mean_abs_shap": 2.0, "count": 2}
    assert [score["token"] for score in importance["overall"]] == ["order", "[EMAIL]", "my", "?"]


def test_token_importance_min_count_drops_rare_tokens() -> None:
    attributions = [attribution(["refund", "zzz"], [1.0, 9.0], "refund"), attribution(["refund"], [2.0], "refund")]

    importance = token_importance(attributions, top=5, min_count=2)

    assert [score["token"] for score in importance["overall"]] == ["refund"]


def test_punctuation_share_none_without_mass() -> None:
    assert punctuation_share([attribution(["a"], [0.0], "")]) is None
