"""One command per pipeline stage; `dvc.yaml` and the Kubeflow components call the same functions."""

from __future__ import annotations

from pathlib import Path

import click

from hybrid_dialogue import paths
from hybrid_dialogue.cli.main import PipelineError, cli


# --- preprocess ---


@cli.command()
@click.option("--raw-dir", type=click.Path(path_type=Path), default=paths.RAW_DIR, show_default=True,
              help="Directory of raw dialogue *.jsonl files.")
@click.option("--output-dir", type=click.Path(path_type=Path), default=paths.PROCESSED_DIR, show_default=True,
              help="Directory that receives the splits, the tokenizer, text_rules.json and manifest.json.")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
              show_default=True, help="Parameter file; the stage reads its 'preprocess' section.")
@click.option("--metrics", "metrics_path", type=click.Path(path_type=Path), default=paths.PREPROCESS_METRICS,
              show_default=True, help="JSON file that receives the metrics (DVC metrics).")
@click.option("--reports-dir", type=click.Path(path_type=Path), default=paths.REPORTS_DIR, show_default=True,
              help="Directory whose data_docs/ subdirectory receives the Great Expectations Data Docs.")
@click.option("--quarantine", "quarantine_path", type=click.Path(path_type=Path), default=paths.QUARANTINE_FILE,
              show_default=True, help="JSONL file that lists every rejected record with its file, line and reason.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the 'preprocess' section, e.g. --set max_len=40 or --set text.lowercase=false "
              "(YAML values; repeatable).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars on stderr.")
def preprocess(
    raw_dir: Path, output_dir: Path, params_path: Path, metrics_path: Path, reports_dir: Path,
    quarantine_path: Path, assignments: tuple[str, ...], progress: bool,
) -> None:
    """Parse, clean, redact, split, tokenize and validate the raw dialogues."""
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.preprocess import SECTION, PreprocessConfig, PreprocessError, run_preprocess

    config = load_section(PreprocessConfig, SECTION, params_path, _parse_assignments(assignments))
    try:
        result = run_preprocess(raw_dir, output_dir, config, metrics_path, reports_dir, quarantine_path, progress)
    except PreprocessError as error:
        raise PipelineError(str(error)) from error
    except OSError as error:
        raise PipelineError(f"preprocess could not read or write a file: {error}") from error

    pairs, records = result.pairs, result.metrics["records"]
    # Present only when the raw data came from `hybrid-dialogue corpus import`.
    imported = ""
    if "import_quarantined" in records:
        imported = f" Rejected earlier by the import: {records['import_quarantined']:,}."
    click.echo(
        f"Pairs: {pairs['train']:,} train, {pairs['validation']:,} validation, {pairs['test']:,} test. "
        f"Quarantined records: {records['quarantined']:,} (listed in {result.quarantine_path}).{imported}"
    )
    click.echo(f"Data: {result.output_dir}. Metrics: {result.metrics_path}. Data Docs: {result.data_docs_index}")


def _parse_assignments(assignments: tuple[str, ...]) -> dict[str, object]:
    """Turn `--set KEY=VALUE` options into overrides, reading each value as YAML (so 40 is a number)."""
    import yaml

    overrides: dict[str, object] = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        if not separator or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {assignment!r}", param_hint="--set")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise click.BadParameter(f"{assignment!r}: the value is not valid YAML ({error})", param_hint="--set")
    return overrides


# --- evaluate ---


@cli.command()
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=paths.MITIGATED_MODEL,
              show_default=True, help="Trained .keras model to evaluate (the pipeline evaluates the mitigated one).")
@click.option("--processed-dir", type=click.Path(path_type=Path), default=paths.PROCESSED_DIR, show_default=True,
              help="Processed data: the test split is scored, the training split feeds the baselines.")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
              show_default=True, help="Parameter file; the stage reads its 'evaluate' section.")
@click.option("--metrics", "metrics_path", type=click.Path(path_type=Path), default=paths.EVALUATE_METRICS,
              show_default=True, help="JSON file that receives the metrics (DVC metrics).")
@click.option("--report-dir", type=click.Path(path_type=Path), default=paths.EVALUATION_REPORT_DIR,
              show_default=True, help="Directory that receives report.md and report.html.")
@click.option("--max-test-pairs", type=int, default=None,
              help="Test pairs to score, overriding evaluate.max_test_pairs (0 scores the whole split).")
def evaluate(
    model_path: Path, processed_dir: Path, params_path: Path, metrics_path: Path, report_dir: Path,
    max_test_pairs: int | None,
) -> None:
    """Score a trained model and the retrieval and constant baselines on the test split."""
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.dataset import DatasetError
    from hybrid_dialogue.data.tokenizer import TokenizerError
    from hybrid_dialogue.evaluation.stage import EvaluateConfig, EvaluationError, run_evaluate
    from hybrid_dialogue.models.io import ModelFileError, TokenizerMismatchError
    from hybrid_dialogue.tracking import TrackingError

    overrides = {} if max_test_pairs is None else {"max_test_pairs": max_test_pairs}
    config = load_section(EvaluateConfig, "evaluate", params_path, overrides)
    expected = (DatasetError, EvaluationError, ModelFileError, TokenizerError, TokenizerMismatchError, TrackingError)
    try:
        result = run_evaluate(processed_dir, model_path, config, metrics_path, report_dir)
    except expected as error:
        raise PipelineError(str(error)) from error

    for system in ("model", "retrieval", "constant"):
        values = result.metrics[system]
        relevance = f"{values['relevance']:.3f}" if "relevance" in values else "n/a"
        click.echo(f"{system:<10} BLEU {values['bleu']:6.2f}  ROUGE-L {values['rougeL']:.3f}  relevance {relevance}")
    click.echo(f"Metrics: {result.metrics_path}. Report: {result.report_dir / 'report.html'}")


# --- vae-pretrain, gan-pretrain, hybrid-finetune ---


def _training_options(section: str, output: Path, input_model: Path | None = None):  # noqa: ANN202 (decorator)
    """Add the options every training command shares; `input_model` adds --input."""

    def decorate(command):  # noqa: ANN001, ANN202
        options = [
            click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
                         show_default=True, help=f"Parameter file; the stage reads its 'model' and '{section}' sections."),
            click.option("--processed-dir", type=click.Path(path_type=Path), default=paths.PROCESSED_DIR,
                         show_default=True, help="Processed data written by preprocess."),
            click.option("--output", "output_model", type=click.Path(path_type=Path), default=output,
                         show_default=True, help="Model file (.keras) that receives the trained model."),
            click.option("--metrics-dir", type=click.Path(path_type=Path), default=paths.METRICS_DIR,
                         show_default=True, help=f"Directory of {section}.json and plots/{section}.csv."),
            click.option("--checkpoint-dir", type=click.Path(path_type=Path), default=paths.CHECKPOINTS_DIR,
                         show_default=True,
                         help=f"Root of the per-epoch checkpoints ({section}/ below it); a rerun resumes from them."),
            click.option("--preset", type=click.Choice(["seed", "cpu", "tiny"]), default=None,
                         help="Model preset, overriding model.preset."),
            click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                         help=f"Override a key of the '{section}' section, e.g. --set batch_size=32 or "
                         "--set budgets.cpu.epochs=2 (YAML values; repeatable)."),
        ]
        if input_model is not None:
            options.append(click.option("--input", "input_model", type=click.Path(path_type=Path),
                                        default=input_model, show_default=True,
                                        help="Model file written by the upstream training stage."))
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _run_training(stage: str, config_class: type, params_path: Path, preset: str | None,
                  assignments: tuple[str, ...], run) -> None:  # noqa: ANN001
    """Load the stage's configs, call `run(config, model_config)`, and print where the outputs went."""
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.dataset import DatasetError
    from hybrid_dialogue.data.tokenizer import TokenizerError
    from hybrid_dialogue.models.config import load_model_config
    from hybrid_dialogue.models.io import ModelFileError, TokenizerMismatchError
    from hybrid_dialogue.tracking import TrackingError
    from hybrid_dialogue.training.data import TrainingInputError

    model_config = load_model_config(params_path, {"preset": preset} if preset else None)
    config = load_section(config_class, stage, params_path, _parse_assignments(assignments))
    expected = (DatasetError, ModelFileError, TokenizerError, TokenizerMismatchError, TrackingError, TrainingInputError)
    try:
        result = run(config, model_config)
    except expected as error:
        raise PipelineError(str(error)) from error

    resumed = f" (resumed after epoch {result.resumed_from_epoch})" if result.resumed_from_epoch else ""
    click.echo(f"{stage}: {result.epochs} epochs{resumed}. Model: {result.model_path}. "
               f"Metrics: {result.metrics_path}. MLflow run: {result.run_id}")


@cli.command("vae-pretrain")
@_training_options("vae_pretrain", paths.VAE_MODEL)
def vae_pretrain(params_path: Path, processed_dir: Path, output_model: Path, metrics_dir: Path,
                 checkpoint_dir: Path, preset: str | None, assignments: tuple[str, ...]) -> None:
    """Pre-train the VAE encoder and decoder on customer messages (reconstruction + annealed KL)."""
    from hybrid_dialogue.training.config import VaePretrainConfig
    from hybrid_dialogue.training.vae import run_vae_pretrain

    _run_training("vae_pretrain", VaePretrainConfig, params_path, preset, assignments,
                  lambda config, model_config: run_vae_pretrain(
                      processed_dir, output_model, config, model_config, metrics_dir, checkpoint_dir))


@cli.command("gan-pretrain")
@_training_options("gan_pretrain", paths.GAN_MODEL, input_model=paths.VAE_MODEL)
def gan_pretrain(params_path: Path, processed_dir: Path, output_model: Path, metrics_dir: Path,
                 checkpoint_dir: Path, preset: str | None, assignments: tuple[str, ...], input_model: Path) -> None:
    """Pre-train the generator (supervised warm-up, then adversarial) on the frozen encoder's latents."""
    from hybrid_dialogue.training.config import GanPretrainConfig
    from hybrid_dialogue.training.gan import run_gan_pretrain

    _run_training("gan_pretrain", GanPretrainConfig, params_path, preset, assignments,
                  lambda config, model_config: run_gan_pretrain(
                      processed_dir, input_model, output_model, config, model_config, metrics_dir, checkpoint_dir))


@cli.command("hybrid-finetune")
@_training_options("hybrid_finetune", paths.HYBRID_MODEL, input_model=paths.GAN_MODEL)
def hybrid_finetune(params_path: Path, processed_dir: Path, output_model: Path, metrics_dir: Path,
                    checkpoint_dir: Path, preset: str | None, assignments: tuple[str, ...], input_model: Path) -> None:
    """Fine-tune encoder, decoder and generator end to end (reconstruction, KL, adversarial, content)."""
    from hybrid_dialogue.training.config import HybridFinetuneConfig
    from hybrid_dialogue.training.hybrid import run_hybrid_finetune

    _run_training("hybrid_finetune", HybridFinetuneConfig, params_path, preset, assignments,
                  lambda config, model_config: run_hybrid_finetune(
                      processed_dir, input_model, output_model, config, model_config, metrics_dir, checkpoint_dir))


# --- bias-mitigation, shap-analysis ---


@cli.command("bias-mitigation")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
              show_default=True, help="Parameter file; the stage reads its 'model' and 'bias_mitigation' sections.")
@click.option("--processed-dir", type=click.Path(path_type=Path), default=paths.PROCESSED_DIR, show_default=True,
              help="Processed data: training pairs are augmented, the test split is audited.")
@click.option("--input", "input_model", type=click.Path(path_type=Path), default=paths.HYBRID_MODEL,
              show_default=True, help="Model file written by hybrid-finetune.")
@click.option("--output", "output_model", type=click.Path(path_type=Path), default=paths.MITIGATED_MODEL,
              show_default=True, help="Model file (.keras) that receives the mitigated model.")
@click.option("--metrics", "metrics_path", type=click.Path(path_type=Path), default=paths.BIAS_METRICS,
              show_default=True, help="JSON file that receives the before and after audits (DVC metrics).")
@click.option("--report-dir", type=click.Path(path_type=Path), default=paths.BIAS_REPORT_DIR, show_default=True,
              help="Directory that receives report.md and report.html.")
@click.option("--checkpoint-dir", type=click.Path(path_type=Path), default=paths.CHECKPOINTS_DIR, show_default=True,
              help="Root of the per-epoch checkpoints (bias_mitigation/ below it); a rerun resumes from them.")
@click.option("--preset", type=click.Choice(["seed", "cpu", "tiny"]), default=None,
              help="Model preset, overriding model.preset.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the 'bias_mitigation' section, e.g. --set invariance.weight=2 or "
              "--set finetune.budgets.cpu.epochs=1 (YAML values; repeatable).")
def bias_mitigation(params_path: Path, processed_dir: Path, input_model: Path, output_model: Path, metrics_path: Path,
                    report_dir: Path, checkpoint_dir: Path, preset: str | None, assignments: tuple[str, ...]) -> None:
    """Measure group gaps, fine-tune on counterfactual pairs with an invariance loss, and measure again."""
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.dataset import DatasetError
    from hybrid_dialogue.data.tokenizer import TokenizerError
    from hybrid_dialogue.fairness.stage import BiasMitigationConfig, run_bias_mitigation
    from hybrid_dialogue.models.config import load_model_config
    from hybrid_dialogue.models.io import ModelFileError, TokenizerMismatchError
    from hybrid_dialogue.tracking import TrackingError
    from hybrid_dialogue.training.data import TrainingInputError

    model_config = load_model_config(params_path, {"preset": preset} if preset else None)
    config = load_section(BiasMitigationConfig, "bias_mitigation", params_path, _parse_assignments(assignments))
    expected = (DatasetError, ModelFileError, TokenizerError, TokenizerMismatchError, TrackingError, TrainingInputError)
    try:
        result = run_bias_mitigation(processed_dir, input_model, output_model, config, model_config, metrics_path,
                                     report_dir, checkpoint_dir)
    except expected as error:
        raise PipelineError(str(error)) from error

    metrics = result.metrics
    click.echo(f"Headline gap: {_number(metrics['gap_before'])} before, {_number(metrics['gap_after'])} after. "
               f"Test BLEU: {_number(metrics['before']['quality']['bleu'], '{:.2f}')} before, "
               f"{_number(metrics['after']['quality']['bleu'], '{:.2f}')} after.")
    click.echo(f"Model: {result.model_path}. Metrics: {result.metrics_path}. "
               f"Report: {result.report_dir / 'report.html'}. MLflow run: {result.run_id}")


@cli.command("shap-analysis")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=paths.MITIGATED_MODEL,
              show_default=True, help="Trained .keras model to explain.")
@click.option("--processed-dir", type=click.Path(path_type=Path), default=paths.PROCESSED_DIR, show_default=True,
              help="Processed data whose test split provides the explained examples.")
@click.option("--params", "params_path", type=click.Path(path_type=Path), default=paths.PARAMS_FILE,
              show_default=True, help="Parameter file; the stage reads its 'shap_analysis' section.")
@click.option("--metrics", "metrics_path", type=click.Path(path_type=Path), default=paths.SHAP_METRICS,
              show_default=True, help="JSON file that receives the timing and summary numbers (DVC metrics).")
@click.option("--report-dir", type=click.Path(path_type=Path), default=paths.SHAP_REPORT_DIR, show_default=True,
              help="Directory that receives index.html, the text plots, the bar charts and shap_values.json.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the 'shap_analysis' section, e.g. --set n_examples=10 (YAML values; repeatable).")
def shap_analysis(model_path: Path, processed_dir: Path, params_path: Path, metrics_path: Path, report_dir: Path,
                  assignments: tuple[str, ...]) -> None:
    """Explain which message tokens drive the responses and which response tokens drive the quality score."""
    from hybrid_dialogue.config import load_section
    from hybrid_dialogue.data.dataset import DatasetError
    from hybrid_dialogue.data.tokenizer import TokenizerError
    from hybrid_dialogue.explanation.stage import ExplanationInputError, ShapAnalysisConfig, run_shap_analysis
    from hybrid_dialogue.models.io import ModelFileError, TokenizerMismatchError
    from hybrid_dialogue.tracking import TrackingError

    config = load_section(ShapAnalysisConfig, "shap_analysis", params_path, _parse_assignments(assignments))
    expected = (DatasetError, ExplanationInputError, ModelFileError, TokenizerError, TokenizerMismatchError, TrackingError)
    try:
        result = run_shap_analysis(processed_dir, model_path, config, report_dir, metrics_path)
    except expected as error:
        raise PipelineError(str(error)) from error

    click.echo(f"Explained {result.metrics['examples']} examples in {result.metrics['seconds']:.1f} s. "
               f"Report: {result.report_dir / 'index.html'}. Metrics: {result.metrics_path}. MLflow run: {result.run_id}")


def _number(value: float | None, number_format: str = "{:.4f}") -> str:
    return "n/a" if value is None else number_format.format(value)
