"""Bias measures: the resolution lexicon, group gaps through fairlearn's MetricFrame, and consistency."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybrid_dialogue.data.synth import CorpusConfig, is_curt_reply, synthesize_corpus
from hybrid_dialogue.fairness.measure import (
    GAP_METRICS,
    BleuScorer,
    ResolutionLexicon,
    consistency,
    group_gaps,
    response_lengths,
)


@pytest.fixture(scope="module")
def bleu() -> BleuScorer:
    return BleuScorer()


def toy_responses() -> tuple[pd.DataFrame, list[str]]:
    """Return six responses, three per group. Group "a" is more helpful, longer and better scored than group "b"."""
    frame = pd.DataFrame({
        "response": ["i have refunded it", "i have sent it", "i will check", "no idea.", "no idea.", "i can help"],
        "reference": ["i have refunded it", "i have sent it", "i will check it", "i have sent it", "i can do it", "i can help"],
        "quality": [0.9, 0.8, 0.7, 0.2, 0.1, 0.6],
        "length": [4.0, 4.0, 3.0, 3.0, 3.0, 3.0],
        "relevant": [1.0, 1.0, np.nan, 0.0, 1.0, 0.0],
        "helpful": [1.0, 1.0, 1.0, 0.0, 0.0, 1.0],
    })
    return frame, ["a", "a", "a", "b", "b", "b"]


def test_group_gaps_known_values(bleu: BleuScorer) -> None:
    frame, groups = toy_responses()

    gaps = group_gaps(frame, groups, "gender", bleu)

    assert gaps is not None
    assert set(gaps.difference) == set(GAP_METRICS) - {"preference"}
    assert gaps.by_group["quality"] == pytest.approx({"a": 0.8, "b": 0.3})
    assert gaps.difference["quality"] == pytest.approx(0.5)
    assert gaps.by_group["helpfulness"] == pytest.approx({"a": 1.0, "b": 1 / 3})
    assert gaps.difference["helpfulness"] == pytest.approx(2 / 3)
    assert gaps.difference["length"] == pytest.approx(11 / 3 - 3.0)
    # Relevance averages the rows that have an intent: a = 2/2, b = 1/3.
    assert gaps.by_group["relevance"] == pytest.approx({"a": 1.0, "b": 1 / 3})
    assert gaps.counts == {"a": 3, "b": 3}


def test_group_gaps_optional_preference(bleu: BleuScorer) -> None:
    frame, groups = toy_responses()
    frame["preference"] = [-1.0, -2.0, -3.0, 1.0, 2.0, 0.0]

    gaps = group_gaps(frame, groups, "gender", bleu)

    assert gaps.by_group["preference"] == pytest.approx({"a": -2.0, "b": 1.0})
    assert gaps.difference["preference"] == pytest.approx(3.0)


def test_group_gaps_bleu_per_group(bleu: BleuScorer) -> None:
    frame, groups = toy_responses()

    gaps = group_gaps(frame, groups, "gender", bleu)

    expected_a = bleu(frame["response"][:3].tolist(), frame["reference"][:3].tolist())
    expected_b = bleu(frame["response"][3:].tolist(), frame["reference"][3:].tolist())
    assert gaps.by_group["bleu"] == pytest.approx({"a": expected_a, "b": expected_b})
    assert gaps.difference["bleu"] == pytest.approx(abs(expected_a - expected_b))
    assert expected_a > expected_b


def test_group_gaps_ignore_unknown_group(bleu: BleuScorer) -> None:
    frame, groups = toy_responses()
    groups[0] = ""

    gaps = group_gaps(frame, groups, "gender", bleu)

    assert gaps.counts == {"a": 2, "b": 3}


def test_group_gaps_need_two_groups(bleu: BleuScorer) -> None:
    frame, _ = toy_responses()

    assert group_gaps(frame, ["a"] * len(frame), "region", bleu) is None


def test_group_gaps_reject_misaligned_groups(bleu: BleuScorer) -> None:
    frame, groups = toy_responses()

    with pytest.raises(ValueError, match="got 5 group labels for 6 responses"):
        group_gaps(frame, groups[:5], "gender", bleu)


def test_consistency_counts_identical_pairs(bleu: BleuScorer) -> None:
    result = consistency(["i have sent it", "no idea.", "i can help"], ["i have sent it", "i can help", "i can help"], bleu)

    assert result["identical_rate"] == pytest.approx(2 / 3)
    assert result["pairs"] == 3
    assert 0 < result["bleu"] < 100


def test_consistency_identical_responses_full_bleu(bleu: BleuScorer) -> None:
    responses = ["i have refunded your order today", "your parcel arrives on monday morning"]

    result = consistency(responses, list(responses), bleu)

    assert result["identical_rate"] == 1.0
    assert result["bleu"] == pytest.approx(100.0)


def test_consistency_empty(bleu: BleuScorer) -> None:
    assert consistency([], [], bleu) == {"identical_rate": None, "bleu": None, "pairs": 0}


def test_resolution_lexicon_matches_whole_phrases() -> None:
    lexicon = ResolutionLexicon(["i have", "within"])

    found = lexicon.has_resolution_step(["I have sent it", "i haveno idea", "Within  a day", "no idea.", "I  have"])

    assert found.tolist() == [True, False, True, False, True]


def test_resolution_lexicon_rejects_empty_list() -> None:
    with pytest.raises(ValueError, match="the resolution lexicon is empty"):
        ResolutionLexicon(["  "])


def test_resolution_lexicon_separates_curt_replies(tmp_path: Path) -> None:
    """On the synthetic corpus the lexicon marks every helpful agent reply and no curt one."""
    corpus = tmp_path / "dialogues.jsonl"
    synthesize_corpus(CorpusConfig(n_dialogues=400, seed=11), corpus)
    replies = [turn["text"] for line in corpus.read_text(encoding="utf-8").splitlines()
               for turn in json.loads(line)["turns"] if turn["role"] == "agent"]
    curt = np.array([is_curt_reply(text) for text in replies])

    helpful = ResolutionLexicon.load().has_resolution_step([text.lower() for text in replies])

    assert curt.any()
    assert (~curt).any()
    assert (helpful == ~curt).all(), [text for text, flag, bad in zip(replies, helpful, curt) if flag == bad][:5]


def test_response_lengths_use_13a_tokens() -> None:
    assert response_lengths(["i have sent it.", "", "no idea"]).tolist() == [5.0, 0.0, 2.0]


def test_bleu_scorer_empty_is_nan(bleu: BleuScorer) -> None:
    assert math.isnan(bleu([], []))


@pytest.mark.parametrize(
    ("gap_before", "gap_after", "expected"),
    [
        (0.2, 0.05, "met"),
        (0.2, 0.15, "not met"),
        (0.0, 0.0, "not applicable"),
        (0.0, 0.3, "not met"),
        (None, None, "not applicable"),
        (0.2, None, "not measured"),
        (0.2, float("nan"), "not measured"),
    ],
)
def test_gap_target_status(gap_before: float | None, gap_after: float | None, expected: str) -> None:
    from hybrid_dialogue.fairness.config import TargetConfig
    from hybrid_dialogue.fairness.report import _summary_lines
    from hybrid_dialogue.fairness.stage import summarize

    before = {"gap": gap_before, "quality": {"bleu": 10.0}}
    after = {"gap": gap_after, "quality": {"bleu": 9.0}, "gap_source": "test pairs by metadata"}
    metrics = summarize(before, after, TargetConfig())
    gap_line = next(line for line in _summary_lines(metrics) if line.startswith("Gap reduction"))

    assert metrics["targets"]["gap_reduction_status"] == expected
    assert metrics["targets"]["gap_reduction_met"] == (expected == "met")
    assert gap_line.endswith(f": {expected}).")


@pytest.mark.parametrize(
    ("bleu_before", "bleu_after", "expected"),
    [
        (10.0, 9.8, "met"),
        (10.0, 9.0, "not met"),
        (0.0, 5.0, "met"),
        (10.0, None, "not measured"),
        (float("nan"), 5.0, "not measured"),
    ],
)
def test_bleu_target_status(bleu_before: float | None, bleu_after: float | None, expected: str) -> None:
    from hybrid_dialogue.fairness.config import TargetConfig
    from hybrid_dialogue.fairness.report import _summary_lines
    from hybrid_dialogue.fairness.stage import summarize

    before = {"gap": 0.2, "quality": {"bleu": bleu_before}}
    after = {"gap": 0.1, "quality": {"bleu": bleu_after}, "gap_source": "test pairs by metadata"}
    metrics = summarize(before, after, TargetConfig())
    bleu_line = next(line for line in _summary_lines(metrics) if line.startswith("Relative BLEU loss"))

    assert metrics["targets"]["bleu_loss_status"] == expected
    assert bleu_line.endswith(f": {expected}).")
