"""The `bias_mitigation` stage: audit the hybrid model, fine-tune it against bias, audit it again.

Writes the mitigated model, `metrics/bias.json` (DVC metrics) and a Markdown
and HTML report, and logs all of them to the stage's MLflow run. The metrics
file contains the before and after audits (see `fairness.audit`) and the
headline numbers the promotion gate and `dvc metrics show` read:
`gap_before`, `gap_after` (also as `after.gap`), `gap_reduction` and
`relative_bleu_loss`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_dialogue.data.dataset import SplitData, load_split
from hybrid_dialogue.fairness.config import BiasMitigationConfig, TargetConfig
from hybrid_dialogue.io import atomic_directory, write_json

logger = logging.getLogger(__name__)

STAGE = "bias_mitigation"


@dataclass(frozen=True)
class BiasMitigationResult:
    """Outputs of a finished stage run."""

    metrics: dict[str, Any]  # the content of the metrics file
    model_path: Path
    metrics_path: Path
    report_dir: Path
    run_id: str


def run_bias_mitigation(
    processed_dir: str | Path,
    input_model: str | Path,
    output_model: str | Path,
    config: BiasMitigationConfig,
    model_config: Any,
    metrics_path: str | Path,
    report_dir: str | Path,
    checkpoint_dir: str | Path,
) -> BiasMitigationResult:
    """Audit `input_model`, fine-tune it against bias, audit the result, and publish model, metrics and report.

    `model_config` is the `model` section (`ModelConfig`), whose preset picks
    the fine-tuning budget. Checkpoints go to `checkpoint_dir/bias_mitigation/`,
    so a killed run resumes its training, and are deleted once the outputs
    are published. Raises the training stages' input errors
    (`TrainingInputError`, `ModelFileError`, `TokenizerMismatchError`,
    `DatasetError`) before any work starts.
    """
    import mlflow

    from hybrid_dialogue.fairness.audit import audit_model
    from hybrid_dialogue.fairness.report import BiasReport, render_html, render_markdown
    from hybrid_dialogue.models.io import save_model
    from hybrid_dialogue.tracking import stage_run
    from hybrid_dialogue.training import reporting
    from hybrid_dialogue.training.data import dataset_digest
    from hybrid_dialogue.training.hybrid import set_response_inventory
    from hybrid_dialogue.training.runtime import seed_everything

    processed_dir, input_model, output_model = Path(processed_dir), Path(input_model), Path(output_model)
    metrics_path, report_dir = Path(metrics_path), Path(report_dir)
    checkpoint_dir = Path(checkpoint_dir) / STAGE
    started = time.perf_counter()

    # 1. Data, model and the audit's shared inputs, checked before any training.
    seed_everything(config.finetune.seed, config.finetune.deterministic)
    prepared = _prepare(processed_dir, input_model, config, model_config)
    digest, digest_kind = dataset_digest(processed_dir)
    params = {
        **config.to_flat_dict(STAGE),
        "model.preset": model_config.preset,
        "input_model": str(input_model),
        "processed_dir": str(processed_dir),
    }

    with stage_run(STAGE, params=params, tags={"preset": model_config.preset}) as run:
        reporting.log_dataset_input(processed_dir, digest, digest_kind, prepared.manifest)

        # 2. Audit the model as it comes from hybrid fine-tuning.
        before = audit_model(prepared.model, prepared.audit_inputs)

        # 3. Fine-tune on counterfactual pairs with the invariance loss.
        fingerprint = _run_fingerprint(config, model_config, digest, input_model)
        history = _mitigate(prepared, config, model_config, checkpoint_dir, fingerprint)
        # The same inventory rules as hybrid_finetune, from this stage's own settings.
        set_response_inventory(
            prepared.model, prepared.training_data.train, config.finetune.response_inventory
        )

        # 4. Audit the mitigated model on the same rows.
        after = audit_model(prepared.model, prepared.audit_inputs)
        metrics = summarize(before.metrics, after.metrics, config.targets)
        metrics["reference_helpfulness"] = prepared.reference_helpfulness
        metrics["training"] = {
            "epochs": len(history),
            "original_pairs": prepared.training.original_rows,
            "added_pairs": prepared.training.added_rows,
            "reweighed": prepared.training.weights is not None,
            "reweighing": config.reweighing if prepared.training.weights is not None else "none",
            **{key: value for key, value in (history[-1] if history else {}).items() if key != "epoch"},
        }
        metrics["seconds"] = {"audit_before": before.seconds, "audit_after": after.seconds,
                              "total": time.perf_counter() - started}

        # 5. Publish the model, the metrics file and the report, then log them.
        save_model(prepared.model, output_model)
        write_json(metrics_path, metrics)
        report = BiasReport(
            input_model=str(input_model),
            output_model=str(output_model),
            metrics=metrics,
            probes=prepared.audit_inputs.probes,
            before_responses=before.probe_responses,
            after_responses=after.probe_responses,
            examples=config.audit.report_examples,
            seed=config.audit.seed,
            notes=[*prepared.notes, *before.notes, *after.notes],
        )
        with atomic_directory(report_dir) as staging:
            (staging / "report.md").write_text(render_markdown(report), encoding="utf-8")
            (staging / "report.html").write_text(render_html(report), encoding="utf-8")

        mlflow.log_metrics(flatten_metrics(metrics))
        mlflow.log_artifact(str(metrics_path), artifact_path="bias")
        mlflow.log_artifacts(str(report_dir), artifact_path="bias/report")
        mlflow.log_artifact(str(output_model), artifact_path="model")

    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    logger.info(
        "Bias mitigation: gap %s -> %s, BLEU %s -> %s. Model %s, metrics %s, report %s",
        metrics["gap_before"], metrics["gap_after"], metrics["before"]["quality"]["bleu"],
        metrics["after"]["quality"]["bleu"], output_model, metrics_path, report_dir,
    )
    return BiasMitigationResult(metrics, output_model, metrics_path, report_dir, run.info.run_id)


def summarize(before: dict[str, Any], after: dict[str, Any], targets: TargetConfig) -> dict[str, Any]:
    """Return the metrics file's content: both audits, the headline numbers and whether the targets are met."""
    gap_before, gap_after = before["gap"], after["gap"]
    bleu_before, bleu_after = before["quality"]["bleu"], after["quality"]["bleu"]
    reduction = (gap_before - gap_after) / gap_before if gap_before and gap_after is not None else None
    bleu_loss = (bleu_before - bleu_after) / bleu_before if bleu_before and bleu_after is not None else None
    gap_status = _gap_target_status(gap_before, gap_after, reduction, targets.min_gap_reduction)
    bleu_status = _bleu_target_status(bleu_before, bleu_after, bleu_loss, targets.max_relative_bleu_loss)
    return {
        "gap_before": gap_before,
        "gap_after": gap_after,
        "preference_gap_before": before.get("preference_gap"),
        "preference_gap_after": after.get("preference_gap"),
        # Share of the gap removed, or None when there was no gap to remove.
        "gap_reduction": reduction,
        # Negative when BLEU rose.
        "relative_bleu_loss": bleu_loss,
        "targets": {
            "min_gap_reduction": targets.min_gap_reduction,
            "max_relative_bleu_loss": targets.max_relative_bleu_loss,
            # "met", "not met", "not applicable" (no gap before or after, or no groups) or "not measured".
            "gap_reduction_status": gap_status,
            "bleu_loss_status": bleu_status,
            # The statuses as booleans for MLflow, which logs numbers only: true only when met.
            "gap_reduction_met": gap_status == "met",
            "bleu_loss_met": bleu_status == "met",
        },
        "before": before,
        "after": after,
    }


def _gap_target_status(before: float | None, after: float | None, reduction: float | None, minimum: float) -> str:
    if _missing(before) and _missing(after):
        return "not applicable"  # no groups to compare (a corpus without group metadata)
    if _missing(before) or _missing(after):
        return "not measured"
    if before == 0:
        return "not applicable" if after == 0 else "not met"  # no gap to reduce, unless mitigation made one
    return "met" if reduction >= minimum else "not met"


def _bleu_target_status(before: float | None, after: float | None, loss: float | None, maximum: float) -> str:
    if _missing(before) or _missing(after):
        return "not measured"
    if before == 0:
        return "met"  # no BLEU to lose
    return "met" if loss <= maximum else "not met"


def _missing(value: float | None) -> bool:
    # BLEU is NaN when nothing was scored.
    return value is None or math.isnan(value)


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Return the numeric leaves as dotted names (`after.probe_gaps.gender.difference.helpfulness`), leaving out None and text."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, (int, float)):
            flat[name] = float(value)
    return flat


@dataclass(frozen=True)
class _Prepared:
    model: Any
    manifest: dict[str, Any]
    training_data: Any  # training.data.TrainingData
    training: Any  # mitigate.CounterfactualTraining
    audit_inputs: Any  # audit.AuditInputs
    reference_helpfulness: dict[str, dict[str, float]]
    strategy: Any
    notes: list[str]


def _prepare(processed_dir: Path, input_model: Path, config: BiasMitigationConfig, model_config: Any) -> _Prepared:
    """Load and check the data and the model, and build the probe set and the training arrays."""
    from hybrid_dialogue.evaluation.relevance import IntentClassifier, RelevanceUnavailable
    from hybrid_dialogue.fairness.audit import AuditInputs, preference_yardsticks, reference_helpfulness
    from hybrid_dialogue.fairness.counterfactual import default_swapper
    from hybrid_dialogue.fairness.measure import BleuScorer, ResolutionLexicon
    from hybrid_dialogue.fairness.mitigate import counterfactual_training
    from hybrid_dialogue.fairness.probes import build_probe_set
    from hybrid_dialogue.models.io import load_model
    from hybrid_dialogue.training.data import TrainingInputError, check_model_matches_preset, load_training_data
    from hybrid_dialogue.training.runtime import select_strategy

    data = load_training_data(processed_dir, model_config.preset, model_config.sizes.max_len)
    test = load_split(processed_dir, "test")
    if len(test) == 0:
        raise TrainingInputError(
            f"{processed_dir} has no test pairs, which the bias audit measures. Raise preprocess.test_fraction "
            "or use a larger corpus."
        )
    strategy = select_strategy()
    with strategy.scope():
        model = load_model(input_model, tokenizer=data.tokenizer)
    check_model_matches_preset(
        model, model_config.architecture(data.tokenizer.vocab_size), model_config.mixed_precision, input_model
    )

    notes = []
    audit = config.audit
    sample = _sample_rows(test, audit.max_test_pairs, audit.seed)
    swapper = default_swapper()
    probes = build_probe_set(test.frame, swapper, config.attribute, audit.names_per_message,
                             audit.max_probe_messages, audit.seed)
    if len(probes) == 0:
        notes.append("No test message mentions a listed name or gendered word, so there are no probes.")
    try:
        classifier = IntentClassifier(seed=audit.seed).fit(
            data.train.frame["agent_text"].tolist(), data.train.frame["intent"].tolist()
        )
    except RelevanceUnavailable as error:
        logger.warning("Relevance skipped: %s", error)
        notes.append(f"Relevance skipped: {error}.")
        classifier = None

    lexicon = ResolutionLexicon.load()
    yardsticks = None
    if audit.preference_responses:
        yardsticks = preference_yardsticks(data.train.frame["agent_text"].tolist(), lexicon, data.tokenizer,
                                           data.max_len, audit.preference_responses)
        if yardsticks is None:
            notes.append("No preference gap: the training responses are all helpful or all unhelpful.")
    inputs = AuditInputs(probes=probes, test=sample, tokenizer=data.tokenizer, lexicon=lexicon, bleu=BleuScorer(),
                         preference_responses=yardsticks, intent_classifier=classifier, batch_size=audit.batch_size)
    reweigh = config.reweighing != "none"
    outcomes = lexicon.has_resolution_step(data.train.frame["agent_text"].tolist()) if reweigh else None
    training = counterfactual_training(data.train, swapper, data.tokenizer, config.augmentation, outcomes,
                                       config.attribute, config.reweighing)
    if reweigh and training.weights is None:
        notes.append(f"No reweighing: the training pairs have fewer than two known {config.attribute} groups.")
    return _Prepared(model, data.manifest, data, training, inputs, reference_helpfulness(sample, lexicon), strategy, notes)


def _mitigate(
    prepared: _Prepared, config: BiasMitigationConfig, model_config: Any, checkpoint_dir: Path, fingerprint: str
) -> list[dict[str, float]]:
    """Fine-tune `prepared.model` in place and return the metrics of every epoch."""
    from hybrid_dialogue.fairness.mitigate import epoch_batches, invariance_loss, invariance_weights, resample
    from hybrid_dialogue.training import reporting
    from hybrid_dialogue.training.data import steps_in_epoch, validation_dataset
    from hybrid_dialogue.training.hybrid import train_hybrid
    from hybrid_dialogue.training.loop import FitPlan

    finetune = config.finetune
    budget = finetune.budget_for(model_config.preset)
    steps = steps_in_epoch(len(prepared.training), finetune.batch_size, budget.steps_per_epoch)
    plan = FitPlan(epochs=budget.epochs, steps_per_epoch=steps, batch_size=finetune.batch_size)
    weights = invariance_weights(config.invariance, plan.total_steps)
    validation = None
    if finetune.validation_batches and len(prepared.training_data.validation) >= finetune.batch_size:
        validation = validation_dataset(prepared.training_data.validation, finetune.batch_size,
                                        finetune.validation_batches)

    data = prepared.training_data
    samples = reporting.SampleLogger(prepared.model, data.tokenizer, data.validation, finetune.sample_responses,
                                     "response_ids")

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        import mlflow

        reporting.log_epoch({**metrics, "schedule/invariance_weight": float(weights[epoch * steps - 1])})
        text = samples.log(STAGE, epoch)
        if text:
            mlflow.log_text(text, f"samples/epoch_{epoch:03d}.txt")

    training = resample(prepared.training, finetune.seed)
    return train_hybrid(
        prepared.model,
        epoch_batches(training, finetune.batch_size, steps, finetune.seed, weights),
        plan,
        finetune,
        extra_loss_fn=invariance_loss,
        validation=validation,
        checkpoint_dir=checkpoint_dir,
        checkpoint_fingerprint=fingerprint,
        on_epoch_end=on_epoch_end,
        strategy=prepared.strategy,
    )


def _sample_rows(split: SplitData, max_rows: int, seed: int) -> SplitData:
    """Return the whole split, or `max_rows` of its rows drawn with `seed`, in split order."""
    if max_rows == 0 or max_rows >= len(split):
        return split
    rows = np.sort(np.random.default_rng(seed).choice(len(split), size=max_rows, replace=False))
    return SplitData(split.frame.iloc[rows].reset_index(drop=True), split.input_ids[rows], split.response_ids[rows])


def _run_fingerprint(config: BiasMitigationConfig, model_config: Any, data_digest: str, input_model: Path) -> str:
    """Hash what decides the training result, so a checkpoint only resumes the same run."""
    from hybrid_dialogue.data.records import file_sha256

    material = {
        "stage": STAGE,
        "config": config.model_dump(mode="json"),
        "model": model_config.model_dump(mode="json"),
        "data": data_digest,
        "input_model": file_sha256(input_model),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
