"""Kubeflow component: clean, redact, split and tokenize the raw dialogues, and validate them."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def preprocess(
    raw_data: Input[Dataset],
    params_json: str,
    preset: str,
    execution_id: str,
    mlflow_experiment: str,
    processed: Output[Dataset],
    quarantine: Output[Dataset],
    metrics: Output[Metrics],
    data_docs: Output[HTML],
    data_docs_site: Output[Artifact],
):
    """Run `run_preprocess` on `raw_data`, a directory of `*.jsonl` dialogues or one such file.

    `data_docs` is the index page of the Great Expectations Data Docs, which
    the Kubeflow UI shows (its links lead into `data_docs_site`, the whole
    site with one page per validation).

    The sequence length comes from the model preset, because the training
    stages reject processed data whose `max_len` differs from the preset's.
    """
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.config import parse_section
    from hybrid_dialogue.data.preprocess import PreprocessConfig, run_preprocess
    from hybrid_dialogue.kubeflow import component_io

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    max_len = component_io.model_config(params_json, preset).sizes.max_len
    values = {**component_io.section_values(params_json, "preprocess"), "max_len": max_len}
    config = parse_section(PreprocessConfig, "preprocess", values, source="params_json")

    with tempfile.TemporaryDirectory(prefix="preprocess-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_preprocess(
            raw_dir=component_io.raw_directory(raw_data.path, scratch),
            output_dir=processed.path,
            config=config,
            metrics_path=scratch / "preprocess.json",
            reports_dir=scratch / "reports",
            quarantine_path=Path(quarantine.path),
        )
        component_io.log_metrics_file(metrics, result.metrics_path)
        component_io.publish_file(data_docs, result.data_docs_index)
        component_io.publish_directory(data_docs_site, result.data_docs_index.parent)
