"""Relevance classifier, baselines, discriminator metrics and report rendering on toy inputs."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_dialogue.evaluation.baselines import ConstantBaseline, RetrievalBaseline
from hybrid_dialogue.evaluation.discriminator import discriminator_metrics
from hybrid_dialogue.evaluation.relevance import IntentClassifier, RelevanceUnavailable, relevance
from hybrid_dialogue.evaluation.report import ReportContent, SampleExchange, render_html, render_markdown

TOY_RESPONSES = [
    ("your parcel ships today from the warehouse", "order_status"),
    ("the parcel left the warehouse and arrives tomorrow", "order_status"),
    ("tracking shows the parcel is on its way", "order_status"),
    ("your refund was issued to the card", "refund"),
    ("the refund reaches your card in five days", "refund"),
    ("we issued a refund for the returned item", "refund"),
    ("a password reset link is in your inbox", "reset_password"),
    ("use the link to choose a new password", "reset_password"),
    ("your password was reset, sign in again", "reset_password"),
]


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    responses, intents = zip(*TOY_RESPONSES)
    return IntentClassifier(seed=0).fit(responses, intents)


def test_classifier_predicts_unseen_responses(classifier: IntentClassifier) -> None:
    predicted = classifier.predict(["the parcel is in the warehouse", "refund to your card", "reset the password"])

    assert predicted.tolist() == ["order_status", "refund", "reset_password"]


def test_relevance_is_share_of_matching_intents(classifier: IntentClassifier) -> None:
    responses = ["the parcel ships today", "your refund was issued", "your refund was issued", "new password link"]
    intents = ["order_status", "refund", "order_status", "reset_password"]

    assert relevance(classifier, responses, intents) == pytest.approx(0.75)


def test_relevance_ignores_pairs_without_intent(classifier: IntentClassifier) -> None:
    responses = ["the parcel ships today", "your refund was issued"]

    assert relevance(classifier, responses, ["order_status", ""]) == pytest.approx(1.0)
    with pytest.raises(RelevanceUnavailable, match="no evaluated pair has an intent"):
        relevance(classifier, responses, ["", ""])


def test_classifier_needs_two_intents() -> None:
    with pytest.raises(RelevanceUnavailable, match="1 distinct intent"):
        IntentClassifier().fit(["a reply", "another reply", "no label"], ["refund", "refund", ""])


def test_classifier_weights_repeated_responses() -> None:
    # "thanks" appears 3 times as refund and once as order_status: the count must decide.
    responses = ["thanks"] * 3 + ["thanks", "parcel ships", "refund issued"]
    intents = ["refund"] * 3 + ["order_status", "order_status", "refund"]

    classifier = IntentClassifier().fit(responses, intents)

    assert classifier.predict(["thanks"]).tolist() == ["refund"]


def test_retrieval_returns_nearest_neighbour_response() -> None:
    baseline = RetrievalBaseline(
        ["where is my parcel", "cancel my subscription", "reset my password", "where is my parcel"],
        ["it ships today", "subscription cancelled", "link sent", "a later duplicate"],
    )

    responses = baseline.respond(["please reset the password", "my parcel, where is it?", "cancel subscription now"])

    assert responses == ["link sent", "it ships today", "subscription cancelled"]


def test_retrieval_rejects_empty_training_set() -> None:
    with pytest.raises(ValueError, match="at least one training pair"):
        RetrievalBaseline([], [])


def test_constant_returns_most_frequent_response() -> None:
    baseline = ConstantBaseline(["b", "a", "a", "b", "c"])

    # "a" and "b" tie at two, so the first one seen wins.
    assert baseline.respond(["x", "y"]) == ["b", "b"]
    assert baseline.count == 2


def test_discriminator_metrics_on_separable_scores() -> None:
    metrics = discriminator_metrics(np.array([0.9, 0.8, 0.4]), np.array([0.1, 0.6]))

    # Correct: 0.9, 0.8 (real >= 0.5) and 0.1 (generated < 0.5): 3 of 5.
    assert metrics["discriminator_accuracy"] == pytest.approx(0.6)
    # Real-over-generated pairs ranked correctly: 0.9 and 0.8 beat both, 0.4 beats 0.1 only: 5 of 6.
    assert metrics["discriminator_roc_auc"] == pytest.approx(5 / 6)
    assert metrics["quality_real"] == pytest.approx(0.7)
    assert metrics["quality_generated"] == pytest.approx(0.35)


def test_discriminator_metrics_reject_empty_side() -> None:
    with pytest.raises(ValueError, match="0 generated"):
        discriminator_metrics(np.array([0.5]), np.array([]))


@pytest.fixture
def report_content() -> ReportContent:
    metrics = {
        "model": {"bleu": 12.345, "rougeL": 0.25, "perplexity": 40.0, "discriminator_roc_auc": 0.7},
        "generator": {"bleu": 6.5, "rougeL": 0.2, "discriminator_roc_auc": 0.95},
        "retrieval": {"bleu": 30.0, "rougeL": 0.5},
        "constant": {"bleu": 5.0, "rougeL": 0.1},
        "reference": {"mean_length": 9.5},
    }
    sample = SampleExchange(
        customer_text="<script>alert('x')</script> my | order *now*",
        reference="Sorry & thanks\nfor waiting",
        generated="[EMAIL] is noted",
        quality=0.4567,
        free_generated="order order *number*",
    )
    return ReportContent("models/hybrid.keras", metrics, 10, 100, [sample], ["Relevance skipped: no intents."])


def test_markdown_report_escapes_text(report_content: ReportContent) -> None:
    markdown = render_markdown(report_content)

    assert "| BLEU (0-100) | 12.35 | 6.50 | 30.00 | 5.00 | n/a |" in markdown
    assert "| Perplexity of references | 40.00 | n/a | n/a | n/a | n/a |" in markdown
    assert "| ROC AUC, real vs generated | 0.7000 | 0.9500 |" in markdown
    assert "ROUGE-2" not in markdown  # rows no column has are left out
    assert "\\<script\\>" in markdown
    assert "<script>" not in markdown
    assert "my \\| order \\*now\\*" in markdown
    assert "Sorry & thanks for waiting" in markdown
    assert "| 0.457 | order order \\*number\\* |" in markdown


def test_html_report_escapes_text(report_content: ReportContent) -> None:
    html = render_html(report_content)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Sorry &amp; thanks" in html
    assert "<li>Relevance skipped: no intents.</li>" in html
    assert "src=" not in html
    assert "href=" not in html


def test_classifier_needs_shared_ngrams() -> None:
    with pytest.raises(RelevanceUnavailable, match="cannot be fitted on 2 distinct responses"):
        IntentClassifier().fit(["parcel shipped", "refund issued"], ["order_status", "refund"])
