"""Kubeflow component: score the model and the baselines on the test split."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    processed: Input[Dataset],
    model: Input[Model],
    params_json: str,
    execution_id: str,
    mlflow_experiment: str,
    metrics: Output[Metrics],
    evaluation: Output[Artifact],
    report_html: Output[HTML],
    report_markdown: Output[Markdown],
):
    """Run `run_evaluate`. `evaluation` is the nested metrics JSON that registration reads."""
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.evaluation.stage import EvaluateConfig, run_evaluate
    from hybrid_dialogue.kubeflow import component_io

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(EvaluateConfig, "evaluate", params_json)

    with tempfile.TemporaryDirectory(prefix="evaluate-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_evaluate(
            processed_dir=processed.path,
            model_path=component_io.model_file(model.path),
            config=config,
            metrics_path=scratch / "evaluate.json",
            report_dir=scratch / "report",
        )

        component_io.log_metrics_file(metrics, result.metrics_path)
        component_io.publish_file(evaluation, result.metrics_path)
        component_io.publish_file(report_html, result.report_dir / "report.html")
        component_io.publish_file(report_markdown, result.report_dir / "report.md")
