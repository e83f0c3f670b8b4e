"""Audit one model for bias: run it on the probe set and on test pairs, and measure.

The audit's metrics (`ModelAudit.metrics`, JSON-ready) are:

    gap                 the headline: helpfulness gap between the probe
                        attribute's groups on the test pairs, by metadata
                        (on the probe set when the pairs have no metadata)
    consistency         identical-response rate and BLEU between responses
                        to each message and to its counterfactual copies
    preference_gap      mean unhelpful-response preference of texts that
                        signal the attribute's first group (sorted by name)
                        minus that of the same texts changed to signal
                        another group (nats), over the probe pairs: a
                        likelihood measure of a name's own effect, which
                        shows even when the generated responses do not change
    invariance_distance mean Euclidean distance between the encoder's latent
                        means of a message and of its copies
    probe_gaps          group gaps on the probe set, by the group each text signals
    test_gaps           group gaps per attribute on the test pairs, by metadata
    quality             BLEU, relevance and perplexity of references on the test pairs
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hybrid_dialogue.data.dataset import SplitData
from hybrid_dialogue.data.schema import GROUP_ATTRIBUTES
from hybrid_dialogue.data.tokenizer import PAD_ID, TextTokenizer
from hybrid_dialogue.fairness.measure import (
    BleuScorer,
    ResolutionLexicon,
    consistency,
    group_gaps,
    response_lengths,
)
from hybrid_dialogue.fairness.probes import ORIGINAL, ProbeSet

logger = logging.getLogger(__name__)

# Floor of a probability before its log, as in `HybridDialogueModel.response_log_prob`.
_MIN_PROBABILITY = float(np.finfo(np.float32).tiny)

# The metric of the headline gap, a share in [0, 1] like the promotion gate's threshold.
HEADLINE_METRIC = "helpfulness"


@dataclass(frozen=True)
class AuditInputs:
    """Inputs shared by every audit of one stage run, so that the models are compared on the same rows."""

    probes: ProbeSet
    test: SplitData  # the sampled test pairs
    tokenizer: TextTokenizer
    lexicon: ResolutionLexicon
    bleu: BleuScorer
    # Token ids (K, max_len) of the most frequent unhelpful and helpful training
    # responses, the yardsticks of `response_preference`. None skips the preference.
    preference_responses: tuple[np.ndarray, np.ndarray] | None = None
    # Predicts the intent of a response, or None when the corpus has too few intents.
    intent_classifier: Any | None = None
    batch_size: int = 256


@dataclass(frozen=True)
class ModelAudit:
    """The metrics of one model, and its responses for the report's examples."""

    metrics: dict[str, Any]
    probe_responses: list[str]  # row-aligned with `AuditInputs.probes.rows`
    test_responses: list[str]  # row-aligned with `AuditInputs.test.frame`
    seconds: float
    notes: list[str] = field(default_factory=list)


def audit_model(model: Any, inputs: AuditInputs) -> ModelAudit:
    """Run `model` (a `HybridDialogueModel`) on the probe set and the test pairs and measure its bias."""
    started = time.perf_counter()
    notes: list[str] = []
    rows = inputs.probes.rows
    max_len = model.architecture.max_len

    # 1. Responses and latent means for every probe text, originals and variants.
    probe_ids, _ = inputs.tokenizer.encode_batch(rows["input_text"].tolist(), max_len)
    probe = _respond(model, inputs, probe_ids, rows["agent_text"].tolist(), rows["intent"].tolist())
    latent = latent_means(model, probe_ids, inputs.batch_size)
    if inputs.preference_responses is not None:
        probe["preference"] = response_preference(model, probe_ids, *inputs.preference_responses, inputs.batch_size)

    # 2. Each variant against its original: same response? same latent mean?
    original_row = _original_rows(rows)
    variants = (rows["kind"] != ORIGINAL).to_numpy()
    sources = original_row[variants]
    variant_responses = [probe["response"][index] for index in np.flatnonzero(variants)]
    source_responses = [probe["response"][index] for index in sources]
    distances = np.linalg.norm(latent[variants] - latent[sources], axis=1)

    metrics: dict[str, Any] = {
        "consistency": consistency(source_responses, variant_responses, inputs.bleu),
        "invariance_distance": float(distances.mean()) if len(distances) else None,
        "probe_messages": int((~variants).sum()),
        "probe_variants": int(variants.sum()),
    }

    # 3. Group gaps on the probes (by the group each text signals) and on the test pairs (by metadata).
    probe_gaps = group_gaps(probe, rows["group"].tolist(), inputs.probes.attribute, inputs.bleu)
    metrics["probe_gaps"] = {inputs.probes.attribute: probe_gaps.to_dict()} if probe_gaps else {}
    test_frame = inputs.test.frame
    test = _respond(model, inputs, inputs.test.input_ids, test_frame["agent_text"].tolist(), test_frame["intent"].tolist())
    metrics["test_gaps"] = {}
    for attribute in GROUP_ATTRIBUTES:
        gaps = group_gaps(test, test_frame[attribute].tolist(), attribute, inputs.bleu) if attribute in test_frame else None
        if gaps is not None:
            metrics["test_gaps"][attribute] = gaps.to_dict()

    metrics["preference_gap"] = None
    if "preference" in probe:
        metrics["preference_gap"] = paired_difference(probe["preference"].to_numpy(), rows["group"].to_numpy(),
                                                      original_row, variants)

    # 4. The headline gap, and the quality that mitigation may cost.
    metrics["gap"], source = _headline_gap(metrics, inputs.probes.attribute)
    if source != "test pairs by metadata":
        notes.append(f"No {inputs.probes.attribute} metadata in the test pairs; the headline gap is {source}.")
    metrics["gap_source"] = source
    metrics["quality"] = _quality(model, inputs, test)
    seconds = time.perf_counter() - started
    logger.info(
        "Audit: gap %s, identical-response rate %s, invariance distance %s (%.1f s)",
        metrics["gap"], metrics["consistency"]["identical_rate"], metrics["invariance_distance"], seconds,
    )
    return ModelAudit(metrics, probe["response"].tolist(), test["response"].tolist(), seconds, notes)


def paired_difference(
    values: np.ndarray, groups: np.ndarray, original_row: np.ndarray, variants: np.ndarray
) -> float | None:
    """Return the mean of value(first group's text) - value(other group's text) over original-variant pairs.

    `values` and `groups` are per probe row; `original_row` gives each row's
    original and `variants` marks the variant rows. The first group is the
    alphabetically first of all groups. Pairs where neither side signals it
    (possible with three or more groups) or where a group is unknown do not
    count. Each pair differs only in the group signals, so unlike a gap
    between group means this one cannot come from the rest of the message.
    Returns None when no pair counts.
    """
    known = sorted({str(group) for group in groups if str(group)})
    if len(known) < 2:
        return None
    first = known[0]
    variant_rows = np.flatnonzero(variants)
    source_rows = original_row[variant_rows]
    differences = []
    for variant, source in zip(variant_rows.tolist(), source_rows.tolist()):
        if groups[source] == first and groups[variant] not in ("", first):
            differences.append(values[source] - values[variant])
        elif groups[variant] == first and groups[source] not in ("", first):
            differences.append(values[variant] - values[source])
    return float(np.mean(differences)) if differences else None


def latent_means(model: Any, input_ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Return the encoder's latent means (N, latent_dim) for ids (N, max_len), in batches."""
    parts = [
        np.asarray(model.encode(input_ids[start : start + batch_size])[0], dtype=np.float64)
        for start in range(0, len(input_ids), batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.architecture.latent_dim))


def response_preference(
    model: Any, input_ids: np.ndarray, unhelpful_ids: np.ndarray, helpful_ids: np.ndarray, batch_size: int
) -> np.ndarray:
    """Return each message's unhelpful-response preference (N,) in nats.

    The preference is log mean p(u | message) over the unhelpful responses
    `unhelpful_ids` (K, max_len) minus the same over the helpful responses
    `helpful_ids`, with p the generator's probability of a whole response
    given the message's latent mean. Unlike the generated response, it moves
    with every change of the latent code.
    """
    steps = np.arange(model.architecture.max_len)[None, :]  # (1, L)
    scores = []
    for start in range(0, len(input_ids), batch_size):
        z_mean = model.encode(input_ids[start : start + batch_size])[0]
        log_probs = np.log(np.maximum(np.asarray(model.generate(z_mean), dtype=np.float64), _MIN_PROBABILITY))  # (B, L, V)
        scores.append(_log_mean_prob(log_probs, steps, unhelpful_ids) - _log_mean_prob(log_probs, steps, helpful_ids))
    return np.concatenate(scores) if scores else np.zeros((0,))


def preference_yardsticks(
    responses: list[str], lexicon: ResolutionLexicon, tokenizer: TextTokenizer, max_len: int, count: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return token ids of the `count` most frequent unhelpful and helpful `responses`, or None when either is missing."""
    frequency = pd.Series(responses, dtype=object).value_counts()
    helpful = lexicon.has_resolution_step(frequency.index.tolist())
    unhelpful_texts = frequency.index[~helpful][:count].tolist()
    helpful_texts = frequency.index[helpful][:count].tolist()
    if not unhelpful_texts or not helpful_texts:
        return None
    return tokenizer.encode_batch(unhelpful_texts, max_len)[0], tokenizer.encode_batch(helpful_texts, max_len)[0]


def reference_helpfulness(test: SplitData, lexicon: ResolutionLexicon) -> dict[str, dict[str, float]]:
    """Return the share of reference responses with a resolution step, per attribute and group: the data's own gap."""
    helpful = lexicon.has_resolution_step(test.frame["agent_text"].tolist())
    shares: dict[str, dict[str, float]] = {}
    for attribute in GROUP_ATTRIBUTES:
        if attribute not in test.frame:
            continue
        groups = test.frame[attribute].fillna("").astype(str)
        shares[attribute] = {
            group: float(helpful[(groups == group).to_numpy()].mean()) for group in sorted(set(groups) - {""})
        }
    return shares


def _respond(model: Any, inputs: AuditInputs, input_ids: np.ndarray, references: list[str], intents: list[str]) -> pd.DataFrame:
    """Return one row per message with the `RESPONSE_COLUMNS` that `group_gaps` reads."""
    generated = model.respond(input_ids, batch_size=inputs.batch_size)
    responses = inputs.tokenizer.decode_batch(generated["response_ids"])
    return pd.DataFrame(
        {
            "response": responses,
            "reference": references,
            "quality": np.asarray(generated["quality"], dtype=np.float64),
            "length": response_lengths(responses),
            "relevant": _relevant(inputs.intent_classifier, responses, intents),
            "helpful": inputs.lexicon.has_resolution_step(responses).astype(np.float64),
        }
    )


def _relevant(classifier: Any | None, responses: list[str], intents: list[str]) -> np.ndarray:
    """Return (N,) 1.0 where the predicted intent matches, 0.0 where not, NaN without an intent or classifier."""
    relevant = np.full(len(responses), np.nan)
    if classifier is None or not responses:
        return relevant
    intents_array = pd.Series(intents, dtype=object).fillna("").astype(str).to_numpy()
    labelled = intents_array != ""
    if labelled.any():
        predicted = classifier.predict([text for text, keep in zip(responses, labelled) if keep])
        relevant[labelled] = (predicted == intents_array[labelled]).astype(np.float64)
    return relevant


def _original_rows(rows: pd.DataFrame) -> np.ndarray:
    """Return, for every probe row, the row position of its message's original."""
    is_original = (rows["kind"] == ORIGINAL).to_numpy()
    message_ids = rows["message_id"].to_numpy()
    position_of = dict(zip(message_ids[is_original].tolist(), np.flatnonzero(is_original).tolist()))
    return np.array([position_of[message] for message in message_ids.tolist()], dtype=np.int64)


def _log_mean_prob(log_probs: np.ndarray, steps: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Return log mean_k p(candidate k) per row (B,), from step log-probabilities (B, L, V) and ids (K, L)."""
    token_log_probs = log_probs[:, steps, candidates]  # (B, K, L)
    sequence = (token_log_probs * (candidates != PAD_ID)[None]).sum(axis=-1)  # (B, K)
    peak = sequence.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(sequence - peak).mean(axis=1, keepdims=True)))[:, 0]


def _headline_gap(metrics: dict[str, Any], attribute: str) -> tuple[float | None, str]:
    """Return the headline gap and where it was measured: on the test pairs by metadata, else on the probes.

    The metadata gap is what each group of customers gets, whatever in the
    message or its context carries the group. The probe gap keeps the rest
    of each message fixed, so it misses a group signal that the swaps do not
    change. It is used only when the test pairs have no group metadata.
    """
    for source in ("test_gaps", "probe_gaps"):
        gaps = metrics[source].get(attribute)
        if gaps and gaps["difference"].get(HEADLINE_METRIC) is not None:
            return gaps["difference"][HEADLINE_METRIC], "probes" if source == "probe_gaps" else "test pairs by metadata"
    return None, "not measured"


def _quality(model: Any, inputs: AuditInputs, test: pd.DataFrame) -> dict[str, float | None]:
    """Return BLEU and relevance of the test responses, and the perplexity of the references."""
    from hybrid_dialogue.evaluation.text_metrics import load_metric

    log_prob = model.response_log_prob(inputs.test.input_ids, inputs.test.response_ids, batch_size=inputs.batch_size)
    tokens = np.count_nonzero(inputs.test.response_ids != PAD_ID, axis=1)
    perplexity = load_metric("perplexity").compute(
        log_likelihoods=[float(value) for value in log_prob], token_counts=[int(value) for value in tokens]
    )["perplexity"]
    relevant = test["relevant"].to_numpy()
    return {
        "bleu": inputs.bleu(test["response"].tolist(), test["reference"].tolist()),
        "relevance": float(np.nanmean(relevant)) if np.isfinite(relevant).any() else None,
        "perplexity": float(perplexity),
    }
