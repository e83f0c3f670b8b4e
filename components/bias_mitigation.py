"""Kubeflow component: fine-tune the hybrid model against the measured group gaps, and report before and after."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def bias_mitigation(
    processed: Input[Dataset],
    hybrid_model: Input[Model],
    params_json: str,
    preset: str,
    execution_id: str,
    mlflow_experiment: str,
    model: Output[Model],
    metrics: Output[Metrics],
    bias: Output[Artifact],
    report_html: Output[HTML],
    report_markdown: Output[Markdown],
):
    """Run `run_bias_mitigation`. `bias` is the metrics JSON that registration reads."""
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.fairness.stage import BiasMitigationConfig, run_bias_mitigation
    from hybrid_dialogue.kubeflow import component_io

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(BiasMitigationConfig, "bias_mitigation", params_json)
    model_config = component_io.model_config(params_json, preset)

    with tempfile.TemporaryDirectory(prefix="bias-mitigation-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_bias_mitigation(
            processed_dir=processed.path,
            input_model=component_io.model_file(hybrid_model.path),
            output_model=component_io.model_file(model.path),
            config=config,
            model_config=model_config,
            metrics_path=scratch / "bias.json",
            report_dir=scratch / "report",
            checkpoint_dir=scratch / "checkpoints",
        )
        component_io.log_metrics_file(metrics, result.metrics_path)
        component_io.publish_file(bias, result.metrics_path)
        component_io.publish_file(report_html, result.report_dir / "report.html")
        component_io.publish_file(report_markdown, result.report_dir / "report.md")
