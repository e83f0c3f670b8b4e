"""Kubeflow component: register the model in MLflow as a `challenger` version and try promotion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register(
    processed: Input[Dataset],
    model: Input[Model],
    evaluation: Input[Artifact],
    bias: Input[Artifact],
    params_json: str,
    execution_id: str,
    mlflow_experiment: str,
    registration: Output[Artifact],
) -> str:
    """Run `register_model`, write its result JSON to `registration`, and return the model URI."""
    import shutil
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.kubeflow import component_io
    from hybrid_dialogue.registry.config import RegisterConfig
    from hybrid_dialogue.registry.register import register_model

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(RegisterConfig, "register", params_json)

    # The registry reads headline metrics by file name (evaluate.json,
    # bias.json) and hashes the parameter file, so both are recreated here.
    with tempfile.TemporaryDirectory(prefix="register-") as scratch_name:
        scratch = Path(scratch_name)
        metrics_paths = [scratch / "evaluate.json", scratch / "bias.json"]
        shutil.copyfile(evaluation.path, metrics_paths[0])
        shutil.copyfile(bias.path, metrics_paths[1])
        params_path = scratch / "params.yaml"
        params_path.write_text(params_json, encoding="utf-8")  # JSON is valid YAML

        result = register_model(
            model_path=component_io.model_file(model.path),
            processed_dir=processed.path,
            metrics_paths=metrics_paths,
            config=config,
            params_path=params_path,
            output_path=registration.path,
        )
    return result.model_uri
