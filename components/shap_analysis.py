"""Kubeflow component: explain the model's responses and quality scores with SHAP."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def shap_analysis(
    processed: Input[Dataset],
    model: Input[Model],
    params_json: str,
    execution_id: str,
    mlflow_experiment: str,
    metrics: Output[Metrics],
    report_html: Output[HTML],
    report_site: Output[Artifact],
):
    """Run `run_shap_analysis`.

    `report_html` is the report's index page, which the Kubeflow UI shows.
    `report_site` is the whole report: the per-example text plots, the bar chart
    images and `shap_values.json`.
    """
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.explanation.stage import ShapAnalysisConfig, run_shap_analysis
    from hybrid_dialogue.kubeflow import component_io

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(ShapAnalysisConfig, "shap_analysis", params_json)

    with tempfile.TemporaryDirectory(prefix="shap-analysis-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_shap_analysis(
            processed_dir=processed.path,
            model_path=component_io.model_file(model.path),
            config=config,
            report_dir=scratch / "report",
            metrics_path=scratch / "shap.json",
        )
        component_io.log_metrics_file(metrics, result.metrics_path)
        component_io.publish_file(report_html, result.report_dir / "index.html")
        component_io.publish_directory(report_site, result.report_dir)
