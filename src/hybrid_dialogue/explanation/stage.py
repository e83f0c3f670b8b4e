"""The `shap_analysis` stage: which tokens drive the model's responses and quality scores.

For each explained test example it computes two sets of SHAP values with a
Partition explainer over the project tokenizer's tokens:

- `message`: customer-message tokens -> log-probability (nats) of the
  response the model generated for the whole message, kept fixed while the
  message is masked;
- `response`: tokens of that generated response -> the discriminator's
  quality score (0 to 1).

Writes under `report_dir`: `index.html`, one shap text plot per example and
target in `examples/`, `{message,response}_tokens.png` (top tokens by total
|SHAP| overall and per intent) and `shap_values.json`; writes the timing and
summary numbers to `metrics_path`; logs all of them to MLflow.
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
from hybrid_dialogue.io import atomic_directory, write_json

logger = logging.getLogger(__name__)

STAGE = "shap_analysis"


class ExplanationInputError(ValueError):
    """Processed data with nothing to explain. The message explains how to fix it."""


class ShapAnalysisConfig(StageConfig):
    """The `shap_analysis` section of params.yaml."""

    # Test examples explained, drawn with `seed`.
    n_examples: int = Field(default=50, ge=1, le=100_000)
    # Maximum model evaluations (masked texts) per example and target. Partition
    # stops once it has split the text down to single tokens: a 25-token text
    # took 476 evaluations with shap 0.51, so 500 explains such texts fully.
    max_evals: int = Field(default=500, ge=10, le=100_000)
    # Masked texts per model call.
    batch_size: int = Field(default=64, ge=1, le=65_536)
    # Explain only first exchanges (no previous agent turn in the input), so
    # the explained text is the customer's message alone.
    first_exchanges_only: bool = True
    # Tokens in each ranking of the JSON and the overall bar chart; per-intent
    # charts show at most `per_intent_top`.
    top_tokens: int = Field(default=20, ge=1, le=1000)
    per_intent_top: int = Field(default=8, ge=1, le=1000)
    # Tokens seen fewer times than this are left out of the rankings, so a
    # single rare token cannot top them.
    min_token_count: int = Field(default=2, ge=1, le=1000)
    seed: int = Field(default=0, ge=0)


@dataclass(frozen=True)
class ShapAnalysisResult:
    metrics: dict[str, Any]
    metrics_path: Path
    report_dir: Path
    run_id: str


def run_shap_analysis(
    processed_dir: str | Path,
    model_path: str | Path,
    config: ShapAnalysisConfig,
    report_dir: str | Path,
    metrics_path: str | Path,
) -> ShapAnalysisResult:
    """Explain `config.n_examples` test examples of `processed_dir` with the model at `model_path`."""
    import mlflow

    from hybrid_dialogue.data.dataset import load_split, load_tokenizer
    from hybrid_dialogue.models.io import load_model
    from hybrid_dialogue.tracking import stage_run

    processed_dir, model_path = Path(processed_dir), Path(model_path)
    report_dir, metrics_path = Path(report_dir), Path(metrics_path)
    tokenizer = load_tokenizer(processed_dir)
    model = load_model(model_path, tokenizer=tokenizer)
    frame = _pick_examples(load_split(processed_dir, "test").frame, config)
    params = {**config.to_flat_dict(STAGE), "model_path": str(model_path), "processed_dir": str(processed_dir)}

    with stage_run(STAGE, params=params) as run:
        started = time.perf_counter()
        targets, examples = explain_examples(model, tokenizer, processed_dir / "tokenizer.json", frame, config)
        seconds = time.perf_counter() - started
        metrics = _metrics(targets, len(frame), seconds, config)

        with atomic_directory(report_dir) as staging:
            _write_report(staging, targets, examples, metrics, config)
        write_json(metrics_path, metrics)
        mlflow.log_metrics({key: float(value) for key, value in _flat(metrics).items()})
        mlflow.log_artifacts(str(report_dir), artifact_path="shap")
        mlflow.log_artifact(str(metrics_path), artifact_path="shap")

    logger.info("Explained %d examples in %.1f s; report %s", len(frame), seconds, report_dir / "index.html")
    return ShapAnalysisResult(metrics, metrics_path, report_dir, run.info.run_id)


def explain_examples(model: Any, tokenizer: Any, tokenizer_path: Path, frame: Any, config: ShapAnalysisConfig) -> tuple[list[Any], list[dict[str, Any]]]:
    """Explain every row of `frame` for both targets; return the targets and one dict per example.

    Each example dict has `intent`, `message`, `response` and `attribution`:
    the position of its attribution in each target's list, or None. An empty
    generated response has no tokens to explain, so it has no `response` attribution.
    """
    from hybrid_dialogue.explanation.attribution import explain_text, token_importance
    from hybrid_dialogue.explanation.functions import QualityFunction, ResponseLogProbFunction, build_text_masker
    from hybrid_dialogue.explanation.plots import ExplainedTarget

    masker = build_text_masker(tokenizer_path)
    max_len = model.architecture.max_len
    messages = frame["input_text"].tolist()
    intents = frame["intent"].fillna("").astype(str).tolist()
    input_ids, _ = tokenizer.encode_batch(messages, max_len)
    response_ids = model.respond(input_ids, batch_size=config.batch_size)["response_ids"]
    responses = tokenizer.decode_batch(response_ids)
    quality = QualityFunction(model, tokenizer, config.batch_size)

    message_attributions, response_attributions, examples = [], [], []
    for index, (message, intent, response) in enumerate(zip(messages, intents, responses)):
        log_prob = ResponseLogProbFunction(model, tokenizer, response_ids[index], config.batch_size)
        message_attributions.append(explain_text(log_prob, masker, message, intent, config.max_evals, config.batch_size))
        if response.strip():
            response_attributions.append((index, explain_text(quality, masker, response, intent, config.max_evals,
                                                              config.batch_size)))
        examples.append({"index": index, "intent": intent, "message": message, "response": response})
        logger.debug("Explained example %d of %d", index + 1, len(messages))

    def target(name: str, title: str, unit: str, attributions: list[Any]) -> ExplainedTarget:
        importance = token_importance(attributions, config.top_tokens, config.min_token_count)
        return ExplainedTarget(name, title, unit, attributions, importance)

    targets = [
        target("message", "Customer-message tokens -> log-probability of the generated response", "nats",
               message_attributions),
        target("response", "Response tokens -> discriminator quality score", "score (0 to 1)",
               [attribution for _, attribution in response_attributions]),
    ]
    pages = {"message": {i: i for i in range(len(examples))},
             "response": {index: position for position, (index, _) in enumerate(response_attributions)}}
    for example in examples:
        example["attribution"] = {name: positions.get(example["index"]) for name, positions in pages.items()}
    return targets, examples


def _pick_examples(frame: Any, config: ShapAnalysisConfig) -> Any:
    """Return up to `n_examples` test rows drawn with `seed`, first exchanges only when configured."""
    candidates = frame[frame["context_text"].fillna("") == ""] if config.first_exchanges_only else frame
    candidates = candidates[candidates["input_text"].str.strip() != ""]
    if len(candidates) == 0:
        raise ExplanationInputError(
            f"the test split has no {'first-exchange ' if config.first_exchanges_only else ''}pairs to explain; "
            "set shap_analysis.first_exchanges_only to false or use a larger corpus"
        )
    count = min(config.n_examples, len(candidates))
    rows = np.sort(np.random.default_rng(config.seed).choice(len(candidates), size=count, replace=False))
    return candidates.iloc[rows].reset_index(drop=True)


def _metrics(targets: list[Any], examples: int, seconds: float, config: ShapAnalysisConfig) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "examples": examples,
        "max_evals": config.max_evals,
        "seconds": seconds,
        "seconds_per_example": seconds / examples if examples else None,
    }
    for target in targets:
        top = target.importance["overall"]
        metrics[target.name] = {
            "explained": len(target.attributions),
            "punctuation_share": target.importance["punctuation_share"],
            "top_token_total_abs_shap": top[0]["total_abs_shap"] if top else None,
        }
    return metrics


def _write_report(directory: Path, targets: list[Any], examples: list[dict[str, Any]], metrics: dict[str, Any],
                  config: ShapAnalysisConfig) -> None:
    """Write index.html, the example pages, the bar charts and shap_values.json into `directory`."""
    import json

    from hybrid_dialogue.explanation.plots import bar_chart, example_page, index_page

    (directory / "examples").mkdir()
    links = []
    for number, example in enumerate(examples):
        row = {"intent": example["intent"], "message": example["message"], "response": example["response"]}
        context = {"Intent": example["intent"] or "unknown", "Message": example["message"],
                   "Generated response": example["response"] or "(empty)"}
        for target in targets:
            position = example["attribution"][target.name]
            row[target.name] = ""
            if position is None:
                continue
            page = f"examples/{target.name}_{number:03d}.html"
            (directory / page).write_text(example_page(target, number, target.attributions[position], context),
                                          encoding="utf-8")
            row[target.name] = page
        links.append(row)

    for target in targets:
        figure = bar_chart(target, config.per_intent_top)
        figure.savefig(directory / f"{target.name}_tokens.png", dpi=110)

    values = {
        target.name: {
            "title": target.title,
            "unit": target.unit,
            **target.importance,
            "examples": [
                {"text": attribution.text, "intent": attribution.group, "tokens": attribution.tokens,
                 "values": [float(value) for value in attribution.values], "base_value": attribution.base_value,
                 "output_value": attribution.output_value}
                for attribution in target.attributions
            ],
        }
        for target in targets
    }
    (directory / "shap_values.json").write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = {"Examples": metrics["examples"], "max_evals per example and target": config.max_evals,
               "Seconds": f"{metrics['seconds']:.1f}", "First exchanges only": config.first_exchanges_only}
    (directory / "index.html").write_text(index_page(targets, summary, links), encoding="utf-8")


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flat(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat
