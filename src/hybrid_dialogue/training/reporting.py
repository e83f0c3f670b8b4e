"""Outputs of a training stage besides its model: metrics files, DVC plot data, MLflow records, sample responses."""

from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path
from typing import Any

from hybrid_dialogue.data.dataset import SplitData
from hybrid_dialogue.data.tokenizer import TextTokenizer
from hybrid_dialogue.io import atomic_path, write_json
from hybrid_dialogue.training.loop import EpochMetrics

logger = logging.getLogger(__name__)

# Metrics that are not losses: left out of the loss-curve image.
_NOT_LOSSES = ("samples_per_second", "accuracy", "distinct", "active_units", "gumbel_temperature", "kl_weight")


class SampleLogger:
    """Logger of the responses (or reconstructions) that the model generates for a few fixed validation messages."""

    def __init__(self, model: Any, tokenizer: TextTokenizer, validation: SplitData, count: int, output: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.output = output  # "response_ids" or "reconstructed_ids", a key of model.respond's result
        self.input_ids = validation.input_ids[:count]
        self.customer_texts = list(validation.frame["customer_text"][:count])
        self.reference_texts = list(validation.frame["agent_text"][:count])

    def log(self, stage: str, epoch: int) -> str:
        """Log one block of samples and return it as text."""
        if len(self.input_ids) == 0:
            return ""
        generated = self.tokenizer.decode_batch(self.model.respond(self.input_ids)[self.output])
        label = "agent" if self.output == "response_ids" else "reconstruction"
        # With an inventory, the served response is a training reply, so show the generator's own text too.
        free = None
        if self.output == "response_ids" and getattr(self.model, "response_inventory", None) is not None:
            free = self.tokenizer.decode_batch(self.model.respond(self.input_ids, decoding="free")[self.output])

        lines = [f"{stage} epoch {epoch}: generated {label}s for validation messages"]
        for index, (customer, text) in enumerate(zip(self.customer_texts, generated, strict=True)):
            lines.append(f"  customer:  {customer}")
            if self.output == "response_ids":
                lines.append(f"  reference: {self.reference_texts[index]}")
            lines.append(f"  {label}: {text}")
            if free is not None:
                lines.append(f"  generator, free decoding: {free[index]}")
        block = "\n".join(lines)
        logger.info("%s", block)
        return block


def write_metrics(path: str | Path, summary: dict[str, Any]) -> None:
    """Write the stage's final metrics (flat, split-keyed names such as `validation/loss`) as JSON."""
    write_json(path, summary)


def write_plot_data(path: str | Path, history: list[EpochMetrics]) -> None:
    """Write one CSV row per epoch as `dvc plots` data. A metric missing from an epoch is left empty."""
    columns: list[str] = []
    for metrics in history:
        columns.extend(name for name in metrics if name not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(history)
    with atomic_path(path) as temporary:
        temporary.write_text(buffer.getvalue(), encoding="utf-8")


def loss_curve_figure(stage: str, history: list[EpochMetrics]) -> Any:
    """Draw each loss per epoch (training solid, validation dashed) and return the matplotlib Figure."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    epochs = [metrics["epoch"] for metrics in history]
    names = sorted({name for metrics in history for name in metrics if "/" in name})
    for name in names:
        split, _, metric = name.partition("/")
        if split not in ("train", "validation") or any(word in metric for word in _NOT_LOSSES):
            continue
        values = [metrics.get(name, float("nan")) for metrics in history]
        axes.plot(epochs, values, linestyle="-" if split == "train" else "--", marker="o", label=name)
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(f"{stage} losses")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", ncols=2)
    return figure


def log_dataset_input(processed_dir: Path, digest: str, digest_kind: str, manifest: dict[str, Any]) -> None:
    """Record the processed data as the active MLflow run's training input, identified by its digest."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():
        # MLflow 3.17 registers its local artifact source under two URI schemes
        # and warns that a local path matches both; either one records the same path.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        source = resolve_dataset_source(str(processed_dir.resolve()))
    dataset = MetaDataset(source=source, name=f"processed-dialogues-{digest[:8]}", digest=digest)
    mlflow.log_input(dataset, context="training", tags={"digest_kind": digest_kind, "max_len": str(manifest["max_len"])})


def log_epoch(metrics: EpochMetrics) -> None:
    """Log one epoch's metrics to the active MLflow run, with the epoch as step."""
    import mlflow

    epoch = int(metrics["epoch"])
    mlflow.log_metrics({name: float(value) for name, value in metrics.items() if name != "epoch"}, step=epoch)
