"""The steps every training stage shares: check inputs, build or load the model, resume, train, publish."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hybrid_dialogue.data.records import file_sha256
from hybrid_dialogue.models.config import ModelConfig
from hybrid_dialogue.tracking import stage_run
from hybrid_dialogue.training import reporting
from hybrid_dialogue.training.checkpoint import TrainingCheckpoint
from hybrid_dialogue.training.config import Budget, _TrainingConfig
from hybrid_dialogue.training.data import (
    TrainingData,
    TrainingInputError,
    check_model_matches_preset,
    dataset_digest,
    epoch_dataset,
    load_training_data,
    steps_in_epoch,
    validation_dataset,
)
from hybrid_dialogue.training.loop import EpochMetrics, FitPlan, StageTrainer, fit
from hybrid_dialogue.training.runtime import seed_everything, select_strategy, warn_if_bfloat16_is_emulated

logger = logging.getLogger(__name__)

# make_trainer(model, config, strategy, plan, budget) -> the stage's StageTrainer, where
# config is the stage config resolved for the preset (its batch size included).
TrainerFactory = Callable[[Any, Any, tf.distribute.Strategy, FitPlan, Budget], StageTrainer]


@dataclass(frozen=True)
class StagePaths:
    """Files a training stage reads and writes."""

    processed_dir: Path
    output_model: Path
    metrics_dir: Path
    # Checkpoints of this stage only; deleted once its outputs are published.
    checkpoint_dir: Path
    # The upstream stage's model; None builds a new model (vae_pretrain).
    input_model: Path | None = None

    @staticmethod
    def of(
        processed_dir: str | Path,
        output_model: str | Path,
        metrics_dir: str | Path,
        checkpoint_dir: str | Path,
        input_model: str | Path | None = None,
    ) -> StagePaths:
        return StagePaths(
            Path(processed_dir),
            Path(output_model),
            Path(metrics_dir),
            Path(checkpoint_dir),
            Path(input_model) if input_model is not None else None,
        )


@dataclass(frozen=True)
class TrainResult:
    """Paths, metrics and MLflow run id of a finished training stage."""

    stage: str
    model_path: Path
    metrics_path: Path
    plots_path: Path
    epochs: int
    resumed_from_epoch: int
    history: list[EpochMetrics]
    metrics: dict[str, Any]
    run_id: str


@dataclass(frozen=True)
class StageSpec:
    """Stage-specific parts of a training stage: its name, trainer and sample output."""

    name: str
    make_trainer: TrainerFactory
    # Key of `model.respond`'s result that the epoch samples show.
    sample_output: str = "response_ids"
    # Further row-aligned training arrays for a trainer's extra loss (see HybridTrainer).
    extra_train_arrays: Callable[[TrainingData], dict[str, np.ndarray]] | None = None
    # Settings of the model besides its weights, such as its response inventory. Applied
    # before the first epoch, so the epoch samples show the responses as served.
    prepare_model: Callable[[Any, TrainingData, _TrainingConfig], None] | None = None


def run_training_stage(
    spec: StageSpec, paths: StagePaths, config: _TrainingConfig, model_config: ModelConfig
) -> TrainResult:
    """Run one training stage end to end and publish its model, metrics and MLflow run.

    Raises `TrainingInputError` (and the data and model loaders' errors) with
    the mismatch and its fix before any training starts.
    """
    # 1. Seed, then load the data and check it against the preset.
    config = config.for_preset(model_config.preset)
    seed_everything(config.seed, config.deterministic)
    data = load_training_data(paths.processed_dir, model_config.preset, model_config.sizes.max_len)
    budget = config.budget_for(model_config.preset)
    steps = steps_in_epoch(len(data.train), config.batch_size, budget.steps_per_epoch)
    plan = FitPlan(epochs=budget.epochs, steps_per_epoch=steps, batch_size=config.batch_size)

    # 2. Build or load the model, and the stage's trainer, under the distribution strategy.
    strategy = select_strategy()
    warn_if_bfloat16_is_emulated(model_config.mixed_precision)
    if config.batch_size % strategy.num_replicas_in_sync:
        raise TrainingInputError(
            f"batch_size {config.batch_size} does not split evenly over {strategy.num_replicas_in_sync} "
            "replicas: set this stage's batch_size to a multiple of the replica count"
        )
    with strategy.scope():
        model = _prepare_model(paths.input_model, data, model_config, config.seed)
        if spec.prepare_model is not None:
            spec.prepare_model(model, data, config)
        trainer = spec.make_trainer(model, config, strategy, plan, budget)

    # 3. Resume from this run's last checkpoint, if a killed run left one.
    digest, digest_kind = dataset_digest(paths.processed_dir)
    checkpoint = TrainingCheckpoint(
        paths.checkpoint_dir,
        _run_fingerprint(spec.name, config, model_config, digest, paths.input_model),
        model=model,
        # Seed-generator states and the Gumbel temperature are not weights, so list them explicitly.
        model_state=list(model.non_trainable_variables),
        **trainer.checkpoint_objects(),
    )
    start_epoch, history = checkpoint.restore()

    # 4. Train inside the stage's MLflow run.
    params = {
        **_model_params(model_config, data.tokenizer.vocab_size),
        **config.to_flat_dict(spec.name),
    }
    tags = {"preset": model_config.preset, "resumed_from_epoch": str(start_epoch)}
    with stage_run(spec.name, params=params, tags=tags) as run:
        reporting.log_dataset_input(paths.processed_dir, digest, digest_kind, data.manifest)
        for earlier in history:
            reporting.log_epoch(earlier)

        samples = reporting.SampleLogger(model, data.tokenizer, data.validation, config.sample_responses, spec.sample_output)
        try:
            history = fit(
                trainer,
                plan,
                epoch_batches=_epoch_batches(spec, data, config, plan.steps_per_epoch),
                validation=_validation(data, config),
                checkpoint=checkpoint,
                start_epoch=start_epoch,
                history=history,
                on_epoch_end=lambda epoch, metrics: _report_epoch(spec.name, samples, epoch, metrics),
            )
        except (KeyboardInterrupt, SystemExit):
            _log_resume_point(spec.name, checkpoint)
            raise

        # 5. Publish the model, metrics and plot data, then record them in the run.
        trainer.restore_model_settings()
        result = _publish(spec.name, paths, model, plan, start_epoch, history, run.info.run_id)

    checkpoint.clear()
    return result


def _log_resume_point(stage: str, checkpoint: TrainingCheckpoint) -> None:
    """Log where a rerun of an interrupted stage starts: after the last checkpointed epoch, or from the beginning."""
    completed = checkpoint.saved_epochs
    if completed:
        logger.warning("%s interrupted: rerun the same command to resume after epoch %d", stage, completed)
    else:
        logger.warning("%s interrupted before its first epoch ended: a rerun starts from the beginning", stage)


def _prepare_model(input_model: Path | None, data: TrainingData, model_config: ModelConfig, seed: int) -> Any:
    from hybrid_dialogue.models.io import build_model, load_model

    architecture = model_config.architecture(data.tokenizer.vocab_size)
    if input_model is None:
        return build_model(architecture, data.tokenizer.fingerprint, seed, model_config.mixed_precision)

    model = load_model(input_model, tokenizer=data.tokenizer)
    check_model_matches_preset(model, architecture, model_config.mixed_precision, input_model)
    return model


def _epoch_batches(
    spec: StageSpec, data: TrainingData, config: _TrainingConfig, steps: int
) -> Callable[[int], tf.data.Dataset]:
    extra = spec.extra_train_arrays(data) if spec.extra_train_arrays is not None else None

    def batches(epoch: int) -> tf.data.Dataset:
        return epoch_dataset(data.train, config.batch_size, steps, config.seed, epoch, extra)

    return batches


def _validation(data: TrainingData, config: _TrainingConfig) -> tf.data.Dataset | None:
    if config.validation_batches == 0 or len(data.validation) < config.batch_size:
        return None
    return validation_dataset(data.validation, config.batch_size, config.validation_batches)


def _report_epoch(stage: str, samples: reporting.SampleLogger, epoch: int, metrics: EpochMetrics) -> None:
    import mlflow

    reporting.log_epoch(metrics)
    text = samples.log(stage, epoch)
    if text:
        mlflow.log_text(text, f"samples/epoch_{epoch:03d}.txt")


def _publish(
    stage: str,
    paths: StagePaths,
    model: Any,
    plan: FitPlan,
    start_epoch: int,
    history: list[EpochMetrics],
    run_id: str,
) -> TrainResult:
    import mlflow

    from hybrid_dialogue.models.io import save_model

    save_model(model, paths.output_model)

    final = {name: value for name, value in history[-1].items() if name != "epoch"} if history else {}
    summary = {
        "epochs": plan.epochs,
        "steps_per_epoch": plan.steps_per_epoch,
        "batch_size": plan.batch_size,
        "resumed_from_epoch": start_epoch,
        **final,
    }
    metrics_path = paths.metrics_dir / f"{stage}.json"
    plots_path = paths.metrics_dir / "plots" / f"{stage}.csv"
    reporting.write_metrics(metrics_path, summary)
    reporting.write_plot_data(plots_path, history)

    mlflow.log_artifact(str(paths.output_model), artifact_path="model")
    mlflow.log_artifact(str(plots_path), artifact_path="plots")
    if history:
        mlflow.log_figure(reporting.loss_curve_figure(stage, history), f"plots/{stage}_losses.png")
    logger.info("%s finished: %d epochs, model %s, metrics %s", stage, plan.epochs, paths.output_model, metrics_path)
    return TrainResult(
        stage=stage,
        model_path=paths.output_model,
        metrics_path=metrics_path,
        plots_path=plots_path,
        epochs=plan.epochs,
        resumed_from_epoch=start_epoch,
        history=history,
        metrics=summary,
        run_id=run_id,
    )


def _run_fingerprint(
    stage: str, config: _TrainingConfig, model_config: ModelConfig, data_digest: str, input_model: Path | None
) -> str:
    """Hash what decides a run's result, so a checkpoint only resumes the same run."""
    material = {
        "stage": stage,
        "config": config.model_dump(mode="json"),
        "model": model_config.model_dump(mode="json"),
        "data": data_digest,
        "input_model": file_sha256(input_model) if input_model is not None else None,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _model_params(model_config: ModelConfig, vocab_size: int) -> dict[str, Any]:
    """Return the selected preset's sizes as `model.*` parameters (the other presets do not apply)."""
    return {
        "model.preset": model_config.preset,
        "model.mixed_precision": model_config.mixed_precision,
        **model_config.architecture(vocab_size).to_flat_dict("model"),
    }
