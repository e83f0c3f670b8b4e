"""Kubeflow components of the three training stages: VAE pre-training, GAN pre-training, hybrid fine-tuning."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def vae_pretrain(
    processed: Input[Dataset],
    params_json: str,
    preset: str,
    execution_id: str,
    mlflow_experiment: str,
    model: Output[Model],
    metrics: Output[Metrics],
):
    """Train the encoder and decoder to reconstruct customer messages (`run_vae_pretrain`)."""
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.kubeflow import component_io
    from hybrid_dialogue.training.config import VaePretrainConfig
    from hybrid_dialogue.training.vae import run_vae_pretrain

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(VaePretrainConfig, "vae_pretrain", params_json)
    model_config = component_io.model_config(params_json, preset)

    # NOTE: checkpoints live in the pod's scratch space, so a retried task
    # starts training over instead of resuming.
    with tempfile.TemporaryDirectory(prefix="vae-pretrain-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_vae_pretrain(
            processed_dir=processed.path,
            output_model=component_io.model_file(model.path),
            config=config,
            model_config=model_config,
            metrics_dir=scratch / "metrics",
            checkpoint_dir=scratch / "checkpoints",
        )
        component_io.log_metrics_file(metrics, result.metrics_path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gan_pretrain(
    processed: Input[Dataset],
    vae_model: Input[Model],
    params_json: str,
    preset: str,
    execution_id: str,
    mlflow_experiment: str,
    model: Output[Model],
    metrics: Output[Metrics],
):
    """Train the generator and discriminator on the frozen encoder's latents (`run_gan_pretrain`)."""
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.kubeflow import component_io
    from hybrid_dialogue.training.config import GanPretrainConfig
    from hybrid_dialogue.training.gan import run_gan_pretrain

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(GanPretrainConfig, "gan_pretrain", params_json)
    model_config = component_io.model_config(params_json, preset)

    with tempfile.TemporaryDirectory(prefix="gan-pretrain-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_gan_pretrain(
            processed_dir=processed.path,
            input_model=component_io.model_file(vae_model.path),
            output_model=component_io.model_file(model.path),
            config=config,
            model_config=model_config,
            metrics_dir=scratch / "metrics",
            checkpoint_dir=scratch / "checkpoints",
        )
        component_io.log_metrics_file(metrics, result.metrics_path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def hybrid_finetune(
    processed: Input[Dataset],
    gan_model: Input[Model],
    params_json: str,
    preset: str,
    execution_id: str,
    mlflow_experiment: str,
    model: Output[Model],
    metrics: Output[Metrics],
):
    """Train every part end to end on the four weighted losses (`run_hybrid_finetune`)."""
    import tempfile
    from pathlib import Path

    from hybrid_dialogue.kubeflow import component_io
    from hybrid_dialogue.training.config import HybridFinetuneConfig
    from hybrid_dialogue.training.hybrid import run_hybrid_finetune

    component_io.apply_run_settings(execution_id, mlflow_experiment)
    config = component_io.stage_config(HybridFinetuneConfig, "hybrid_finetune", params_json)
    model_config = component_io.model_config(params_json, preset)

    with tempfile.TemporaryDirectory(prefix="hybrid-finetune-") as scratch_name:
        scratch = Path(scratch_name)
        result = run_hybrid_finetune(
            processed_dir=processed.path,
            input_model=component_io.model_file(gan_model.path),
            output_model=component_io.model_file(model.path),
            config=config,
            model_config=model_config,
            metrics_dir=scratch / "metrics",
            checkpoint_dir=scratch / "checkpoints",
        )
        component_io.log_metrics_file(metrics, result.metrics_path)
