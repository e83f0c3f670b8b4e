"""The project's `evaluate` metric modules: hand-checked values and loading with no network."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hybrid_dialogue.evaluation.text_metrics import METRIC_MODULES_DIR, METRIC_NAMES, TextMetrics, load_metric


@pytest.fixture(scope="module")
def bleu():
    return load_metric("bleu")


def test_bleu_identical_texts_score_100(bleu) -> None:
    result = bleu.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])

    assert result["bleu"] == pytest.approx(100.0)
    assert result["brevity_penalty"] == pytest.approx(1.0)


def test_bleu_matches_hand_computed_value(bleu) -> None:
    result = bleu.compute(predictions=["the cat sat on the mat"], references=["the cat is on the mat"])

    # Matches per order: 5/6 unigrams, 3/5 bigrams, 1/4 trigrams, 0/3 4-grams.
    # sacrebleu's default "exp" smoothing turns the first zero count into 1 / (2 * 3).
    expected = 100 * ((5 / 6) * (3 / 5) * (1 / 4) * (1 / 6)) ** 0.25
    assert result["bleu"] == pytest.approx(expected)
    assert result["precisions"][:3] == pytest.approx([500 / 6, 60.0, 25.0])


def test_bleu_accepts_reference_lists(bleu) -> None:
    single = bleu.compute(predictions=["hello there", "good day"], references=["hello there", "good night"])
    listed = bleu.compute(predictions=["hello there", "good day"], references=[["hello there"], ["good night"]])

    assert listed["bleu"] == pytest.approx(single["bleu"])


def test_bleu_rejects_uneven_reference_counts(bleu) -> None:
    with pytest.raises(ValueError, match="same number of references"):
        bleu.compute(predictions=["a b", "c d"], references=[["a b"], ["c d", "c e"]])


def test_rouge_matches_hand_computed_pair() -> None:
    rouge = load_metric("rouge")

    result = rouge.compute(predictions=["the cat sat"], references=["the cat sat on the mat"])

    # ROUGE-1 and ROUGE-L: 3 shared tokens, precision 3/3, recall 3/6.
    assert result["rouge1"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert result["rougeL"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    # ROUGE-2: both predicted bigrams occur among the 5 reference bigrams.
    assert result["rouge2"] == pytest.approx(2 * 1.0 * 0.4 / 1.4)


def test_rouge_averages_f1_over_pairs() -> None:
    rouge = load_metric("rouge")

    result = rouge.compute(
        predictions=["the cat sat", "good morning"],
        references=["the cat sat on the mat", "good morning"],
    )

    assert result["rouge1"] == pytest.approx((2 / 3 + 1.0) / 2)


def test_distinct_counts_ngrams_within_each_text() -> None:
    distinct = load_metric("distinct")

    result = distinct.compute(predictions=["a b a", "a b c"])

    # Unigrams a b a a b c: 3 unique of 6. Bigrams ab ba ab bc: 3 unique of 4.
    assert result["distinct_1"] == pytest.approx(0.5)
    assert result["distinct_2"] == pytest.approx(0.75)
    assert result["unigrams"] == 6
    assert result["bigrams"] == 4


def test_distinct_is_zero_without_ngrams() -> None:
    distinct = load_metric("distinct")

    result = distinct.compute(predictions=["", "one"])

    assert result["distinct_1"] == pytest.approx(1.0)
    assert result["distinct_2"] == 0.0


def test_response_length_uses_bleu_tokens() -> None:
    length = load_metric("response_length")

    result = length.compute(predictions=["hello, world", "a"], references=["a b c d", "a b c d"])

    # 13a splits "hello, world" into 3 tokens: (3 + 1) / 2 = 2 against 4.
    assert result["prediction_length"] == pytest.approx(2.0)
    assert result["reference_length"] == pytest.approx(4.0)
    assert result["length_ratio"] == pytest.approx(0.5)


def test_perplexity_is_exp_of_mean_token_nll() -> None:
    perplexity = load_metric("perplexity")

    result = perplexity.compute(log_likelihoods=[2 * math.log(0.5), 2 * math.log(0.25)], token_counts=[2, 2])

    # Mean NLL per token: (2 ln 2 + 4 ln 2) / 4 = 1.5 ln 2.
    assert result["mean_nll"] == pytest.approx(1.5 * math.log(2))
    assert result["perplexity"] == pytest.approx(2**1.5)


@pytest.mark.parametrize(
    ("log_likelihoods", "token_counts", "message"),
    [
        ([-1.0], [0], "token count must be positive"),
        ([0.5], [1], "must be finite and <= 0"),
        ([float("nan")], [1], "must be finite and <= 0"),
    ],
)
def test_perplexity_rejects_invalid_inputs(log_likelihoods, token_counts, message) -> None:
    perplexity = load_metric("perplexity")

    with pytest.raises(ValueError, match=message):
        perplexity.compute(log_likelihoods=log_likelihoods, token_counts=token_counts)


def test_text_metrics_score_identical_texts() -> None:
    texts = ["where is my order", "your order ships today"]

    scores = TextMetrics().score(texts, texts)

    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["rougeL"] == pytest.approx(1.0)
    assert scores["length_ratio"] == pytest.approx(1.0)
    assert scores["distinct_1"] == pytest.approx(7 / 8)


def test_text_metrics_reject_empty_predictions() -> None:
    with pytest.raises(ValueError, match="no predictions"):
        TextMetrics().score([], [])


def test_load_metric_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown metric module 'sacrebleu'"):
        load_metric("sacrebleu")


def test_metric_modules_import_no_sibling_files() -> None:
    # `evaluate` copies one script into its cache and fetches relative imports, so none may exist.
    for name in METRIC_NAMES:
        source = (METRIC_MODULES_DIR / f"{name}.py").read_text(encoding="utf-8")
        import_lines = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert all(not line.startswith("from .") for line in import_lines), name
        assert all("hybrid_dialogue" not in line for line in import_lines), name


def test_metrics_load_with_network_blocked(tmp_path: Path) -> None:
    # A fresh process with an empty Hugging Face cache and every socket connection raising.
    script = textwrap.dedent(
        """
        import json, socket

        def block_connection(*args, **kwargs):
            raise OSError("network access blocked by the test")

        socket.socket.connect = block_connection
        socket.socket.connect_ex = block_connection
        socket.create_connection = block_connection

        from hybrid_dialogue.evaluation.text_metrics import TextMetrics

        metrics = TextMetrics()
        scores = metrics.score(["where is my order"], ["where is my order"])
        scores["perplexity"] = metrics.perplexity([-2.0], [2])
        print(json.dumps(scores))
        """
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE"))}
    env["HF_HOME"] = str(tmp_path / "hf")

    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    scores = json.loads(completed.stdout.strip().splitlines()[-1])
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["perplexity"] == pytest.approx(math.e)
    assert list((tmp_path / "hf" / "modules" / "evaluate_modules" / "metrics").iterdir())
