"""The `evaluate` stage: score a trained model and two baselines on the test split.

Writes `metrics/evaluate.json` (DVC metrics), `report.md` and `report.html`,
and logs the same numbers to the stage's MLflow run. The metrics file maps
each system to its metrics, so `dvc metrics diff` shows names such as
`model.bleu` and `retrieval.bleu`:

    model       BLEU, ROUGE, distinct-n, length, relevance, perplexity of the
                references, discriminator accuracy, ROC AUC and mean quality scores
    retrieval   the text metrics and relevance of the retrieval baseline
    constant    the same for the constant baseline
    reference   distinct-n, length and classifier relevance of the references themselves
    pairs       test pairs scored and in the split
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from hybrid_dialogue.config import StageConfig
from hybrid_dialogue.data.dataset import SplitData, load_manifest, load_split, load_tokenizer
from hybrid_dialogue.evaluation.baselines import ConstantBaseline, RetrievalBaseline
from hybrid_dialogue.evaluation.discriminator import discriminator_metrics
from hybrid_dialogue.evaluation.inference import ModelOutputs, run_model
from hybrid_dialogue.evaluation.relevance import IntentClassifier, RelevanceUnavailable, relevance
from hybrid_dialogue.evaluation.report import ReportContent, SampleExchange, render_html, render_markdown
from hybrid_dialogue.evaluation.text_metrics import TextMetrics
from hybrid_dialogue.io import atomic_directory, write_json

logger = logging.getLogger(__name__)

# "model" is the model's responses as served (`respond`). "generator" is the same model's free
# decoding, which shows what the generator writes on its own.
SYSTEMS = ("model", "generator", "retrieval", "constant")


class EvaluationError(ValueError):
    """Inputs that the evaluate stage cannot score, with a message that explains the fix."""


class EvaluateConfig(StageConfig):
    """The `evaluate` section of `params.yaml`."""

    # Test pairs scored, drawn at random with `seed`. 0 scores the whole split.
    # The model calls and the retrieval search grow linearly with it. With
    # 2000 pairs of the default corpus they took 35 s and 4 s of 60 s of
    # scoring (cpu preset, 2 CPU cores shared with other jobs). A linear
    # estimate for all 22,830 test pairs is about 8 minutes.
    max_test_pairs: int = Field(default=2000, ge=0, le=100_000_000)
    # Rows per model call. It bounds the (batch, max_len, vocab) float32 tensors.
    batch_size: int = Field(default=256, ge=1, le=65_536)
    # Exchanges shown in the report.
    report_samples: int = Field(default=20, ge=0, le=1000)
    seed: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class EvaluationResult:
    metrics: dict[str, dict[str, float]]  # the content of the metrics file
    samples: list[SampleExchange]
    notes: list[str]
    metrics_path: Path
    report_dir: Path
    run_id: str


def run_evaluate(
    processed_dir: str | Path,
    model_path: str | Path,
    config: EvaluateConfig,
    metrics_path: str | Path,
    report_dir: str | Path,
) -> EvaluationResult:
    """Score the model at `model_path` and the baselines on the test split of `processed_dir`."""
    import mlflow

    from hybrid_dialogue.tracking import stage_run

    processed_dir, model_path = Path(processed_dir), Path(model_path)
    metrics_path, report_dir = Path(metrics_path), Path(report_dir)
    params = {**config.to_flat_dict(), "model_path": str(model_path), "processed_dir": str(processed_dir)}

    with stage_run("evaluate", params=params) as run:
        metrics, samples, notes = _evaluate(processed_dir, model_path, config)

        content = ReportContent(
            model_path=str(model_path),
            metrics=metrics,
            pairs_scored=int(metrics["pairs"]["scored"]),
            pairs_total=int(metrics["pairs"]["total"]),
            samples=samples,
            notes=notes,
        )
        # The report goes first: the metrics file is what later stages read.
        with atomic_directory(report_dir) as staging:
            (staging / "report.md").write_text(render_markdown(content), encoding="utf-8")
            (staging / "report.html").write_text(render_html(content), encoding="utf-8")
        write_json(metrics_path, metrics)

        mlflow.log_metrics(_flatten_metrics(metrics))
        mlflow.log_artifacts(str(report_dir), artifact_path="evaluation")
        mlflow.log_artifact(str(metrics_path), artifact_path="evaluation")
        if notes:
            mlflow.set_tag("evaluation.notes", " ".join(notes)[:5000])

    logger.info("Wrote %s and the report in %s", metrics_path, report_dir)
    return EvaluationResult(
        metrics=metrics,
        samples=samples,
        notes=notes,
        metrics_path=metrics_path,
        report_dir=report_dir,
        run_id=run.info.run_id,
    )


def _evaluate(
    processed_dir: Path, model_path: Path, config: EvaluateConfig
) -> tuple[dict[str, dict[str, float]], list[SampleExchange], list[str]]:
    """Return the metrics, the report's sample exchanges and its notes, without writing files."""
    from hybrid_dialogue.models.io import load_model

    started = time.perf_counter()
    manifest = load_manifest(processed_dir)
    tokenizer = load_tokenizer(processed_dir)
    train = load_split(processed_dir, "train")
    test = load_split(processed_dir, "test")
    if len(test) == 0 or len(train) == 0:
        raise EvaluationError(
            f"{processed_dir} has {len(train)} training and {len(test)} test pairs, but the evaluate stage "
            "needs both. Use a larger corpus or change the split fractions of the preprocess section."
        )

    model = load_model(model_path, tokenizer=tokenizer)
    if model.architecture.max_len != manifest["max_len"]:
        raise EvaluationError(
            f"{model_path} expects sequences of max_len {model.architecture.max_len}, but {processed_dir} "
            f"has max_len {manifest['max_len']}. Evaluate on the data the model was trained on, or retrain it."
        )

    rows = _select_rows(len(test), config.max_test_pairs, config.seed)
    frame = test.frame.iloc[rows].reset_index(drop=True)
    references = frame["agent_text"].tolist()
    messages = frame["customer_text"].tolist()
    logger.info("Scoring %d of %d test pairs", len(rows), len(test))

    outputs = run_model(model, tokenizer, test.input_ids[rows], test.response_ids[rows], config.batch_size)
    retrieval = RetrievalBaseline(train.frame["customer_text"].tolist(), train.frame["agent_text"].tolist())
    constant = ConstantBaseline(train.frame["agent_text"].tolist())
    responses = {
        "model": outputs.responses,
        "generator": outputs.free_responses,
        "retrieval": retrieval.respond(messages),
        "constant": constant.respond(messages),
    }

    text_metrics = TextMetrics()
    metrics: dict[str, dict[str, float]] = {system: text_metrics.score(responses[system], references) for system in SYSTEMS}
    metrics["reference"] = text_metrics.describe_references(references)
    metrics["model"]["perplexity"] = text_metrics.perplexity(outputs.reference_log_prob, outputs.reference_tokens)
    metrics["model"].update(discriminator_metrics(outputs.reference_quality, outputs.generated_quality))
    metrics["generator"].update(discriminator_metrics(outputs.reference_quality, outputs.free_quality))
    metrics["pairs"] = {"scored": len(rows), "total": len(test)}

    notes = _add_relevance(metrics, train, frame["intent"].tolist(), responses, references, config.seed)
    notes.insert(0, _decoding_note(model))
    samples = _pick_samples(messages, references, outputs, config.report_samples, config.seed)
    logger.info(
        "BLEU model %.2f, retrieval %.2f, constant %.2f (%.1f s)",
        metrics["model"]["bleu"],
        metrics["retrieval"]["bleu"],
        metrics["constant"]["bleu"],
        time.perf_counter() - started,
    )
    return metrics, samples, notes


def _decoding_note(model: Any) -> str:
    inventory = model.response_inventory
    if inventory is None:
        return "The model has no response inventory, so the Model and Generator columns both show free decoding."
    return (
        f"The model answers with the one of its {len(inventory)} inventory responses (frequent training "
        "responses) that best matches the generator's per-position distributions. The Generator column "
        "decodes the same distributions freely: a length, then the most likely word per position. "
        "Inventory responses are real agent replies, so the discriminator cannot tell them from the "
        "references: its ROC AUC in the Model column is near 0.5, or below it where it scores frequent "
        "replies as more real than the references. The Generator column shows how well it separates "
        "the generator's own text from real replies."
    )


def _select_rows(total: int, max_pairs: int, seed: int) -> np.ndarray:
    """Return sorted row indices: all rows, or `max_pairs` of them drawn without replacement."""
    if max_pairs == 0 or max_pairs >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=max_pairs, replace=False))


def _add_relevance(
    metrics: dict[str, dict[str, float]],
    train: SplitData,
    intents: list[str],
    responses: dict[str, list[str]],
    references: list[str],
    seed: int,
) -> list[str]:
    """Add relevance to each system's metrics and return the report's notes about it."""
    try:
        classifier = IntentClassifier(seed=seed).fit(train.frame["agent_text"].tolist(), train.frame["intent"].tolist())
        for system in SYSTEMS:
            metrics[system]["relevance"] = relevance(classifier, responses[system], intents)
        metrics["reference"]["relevance"] = relevance(classifier, references, intents)
    except RelevanceUnavailable as error:
        for system in (*SYSTEMS, "reference"):
            metrics[system].pop("relevance", None)
        logger.warning("Relevance skipped: %s", error)
        return [f"Relevance skipped: {error}."]
    return [
        "Relevance is the share of responses whose intent, predicted by a TF-IDF and logistic-regression "
        "classifier trained on the training split's agent responses, equals the customer's intent. "
        "The References column is that classifier's accuracy on the reference responses: the ceiling "
        "for any system judged by it."
    ]


def _pick_samples(
    messages: list[str], references: list[str], outputs: ModelOutputs, count: int, seed: int
) -> list[SampleExchange]:
    count = min(count, len(messages))
    picked = np.sort(np.random.default_rng(seed + 1).choice(len(messages), size=count, replace=False))
    return [
        SampleExchange(
            customer_text=messages[index],
            reference=references[index],
            generated=outputs.responses[index],
            quality=float(outputs.generated_quality[index]),
            free_generated=outputs.free_responses[index],
        )
        for index in picked
    ]


def _flatten_metrics(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Return `{"model.bleu": ...}`: the names `dvc metrics show` prints for the same numbers."""
    return {f"{group}.{name}": float(value) for group, values in metrics.items() for name, value in values.items()}
