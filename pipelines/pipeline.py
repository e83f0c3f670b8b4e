"""The Hybrid Dialogue pipeline for Kubeflow Pipelines v2.

preprocess -> vae_pretrain -> gan_pretrain -> hybrid_finetune -> bias_mitigation
-> (shap_analysis, evaluate) -> register, over the same stage functions that
`dvc repro` runs. `hybrid-dialogue kfp compile` writes it to
`pipelines/hybrid_dialogue_pipeline.yaml`.
"""

# No `from __future__ import annotations`: kfp reads the pipeline signature's
# annotations as types, not strings.
from dataclasses import dataclass
from pathlib import Path

from kfp import dsl, kubernetes

from components.bias_mitigation import bias_mitigation
from components.evaluate import evaluate
from components.preprocess import preprocess
from components.register import register
from components.shap_analysis import shap_analysis
from components.training import gan_pretrain, hybrid_finetune, vae_pretrain
from hybrid_dialogue.config import load_params
from hybrid_dialogue.kubeflow.parameters import params_to_json
from hybrid_dialogue.paths import PARAMS_FILE
from hybrid_dialogue.tracking import DEFAULT_EXPERIMENT

PIPELINE_NAME = "hybrid-dialogue"
REPOSITORY = Path(__file__).resolve().parents[1]

# Runs use the params.yaml of the checkout that compiled the pipeline unless
# the `params_json` argument replaces it, so a change to params.yaml needs a
# recompilation, as a change to the code does.
DEFAULT_PARAMS_JSON = params_to_json(load_params(REPOSITORY / PARAMS_FILE))

# Kubernetes objects of infra/k8s that every task reads its settings from:
# object name -> {key in the object: environment variable in the container}.
# They must exist in the namespace where the pipeline's pods run.
SECRETS = {
    "hybrid-dialogue-s3": {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"},
    "hybrid-dialogue-mlflow": {
        "MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD",
    },
}
CONFIG_MAP = "hybrid-dialogue-config"
CONFIG_MAP_ENV = {
    "MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL",
    "HYBRID_DIALOGUE_BUCKET": "HYBRID_DIALOGUE_BUCKET",
    "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION",
}


@dataclass(frozen=True)
class Resources:
    """Kubernetes CPU (cores) and memory requests and limits of one task."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


# NOTE: estimates for the `seed` preset on the default corpus, not measured
# on a cluster. A training task keeps the corpus's token arrays and a
# 17M-parameter model with its optimizer state in memory. Evaluation and SHAP
# keep a test sample and the model.
LIGHT = Resources(cpu_request="1", cpu_limit="2", memory_request="2Gi", memory_limit="4Gi")
DATA = Resources(cpu_request="2", cpu_limit="4", memory_request="4Gi", memory_limit="8Gi")
TRAINING = Resources(cpu_request="4", cpu_limit="8", memory_request="16Gi", memory_limit="32Gi")
ANALYSIS = Resources(cpu_request="2", cpu_limit="4", memory_request="8Gi", memory_limit="16Gi")


def _configure(task: dsl.PipelineTask, resources: Resources) -> dsl.PipelineTask:
    """Set the task's resources, and its MLflow and S3 settings from the Secrets and the ConfigMap."""
    task.set_cpu_request(resources.cpu_request).set_cpu_limit(resources.cpu_limit)
    task.set_memory_request(resources.memory_request).set_memory_limit(resources.memory_limit)
    for secret_name, key_to_env in SECRETS.items():
        kubernetes.use_secret_as_env(task, secret_name=secret_name, secret_key_to_env=key_to_env)
    kubernetes.use_config_map_as_env(task, config_map_name=CONFIG_MAP, config_map_key_to_env=CONFIG_MAP_ENV)
    return task


def _train(task: dsl.PipelineTask, accelerator_type: str, accelerator_limit: str) -> dsl.PipelineTask:
    """Configure a training task: training resources plus the accelerators from the pipeline parameters."""
    _configure(task, TRAINING)
    return task.set_accelerator_type(accelerator_type).set_accelerator_limit(accelerator_limit)


@dsl.pipeline(name=PIPELINE_NAME, description="Train, explain, evaluate and register the Hybrid Dialogue GAN + VAE model.")
def hybrid_dialogue_pipeline(
    raw_data_uri: str,
    preset: str = "seed",
    mlflow_experiment: str = DEFAULT_EXPERIMENT,
    accelerator_type: str = "nvidia.com/gpu",
    # A string, as in kfp's own sample of resources from pipeline parameters:
    # the backend substitutes the text into the Kubernetes resource limit.
    accelerator_limit: str = "1",
    params_json: str = DEFAULT_PARAMS_JSON,
):
    """Run every stage on the raw dialogues at `raw_data_uri` (a directory or one JSONL file).

    `preset` picks the model sizes and training budgets (seed, cpu or tiny),
    `params_json` contains the params.yaml sections as JSON, and the training
    tasks request `accelerator_limit` accelerators of `accelerator_type`.
    """
    # Every task gets the run's job id, which groups the stage runs of this
    # pipeline run under one MLflow parent run. It also makes every task's
    # inputs unique to the run, so Kubeflow's cache never reuses a task of
    # another run and MLflow records every stage of every run.
    shared = {
        "params_json": params_json,
        "execution_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        "mlflow_experiment": mlflow_experiment,
    }

    # NOTE: on a cluster the Kubeflow launcher downloads `raw_data_uri` itself.
    # An s3:// URI outside Kubeflow's own object store needs that endpoint and
    # its credentials in the kfp-launcher ConfigMap. This was not tried on a cluster.
    raw_data = dsl.importer(artifact_uri=raw_data_uri, artifact_class=dsl.Dataset, reimport=False)
    raw_data.set_display_name("raw-data")

    prep = _configure(preprocess(raw_data=raw_data.output, preset=preset, **shared), DATA)
    processed = prep.outputs["processed"]

    vae = _train(vae_pretrain(processed=processed, preset=preset, **shared), accelerator_type, accelerator_limit)
    gan = _train(
        gan_pretrain(processed=processed, vae_model=vae.outputs["model"], preset=preset, **shared),
        accelerator_type,
        accelerator_limit,
    )
    hybrid = _train(
        hybrid_finetune(processed=processed, gan_model=gan.outputs["model"], preset=preset, **shared),
        accelerator_type,
        accelerator_limit,
    )
    mitigated = _train(
        bias_mitigation(processed=processed, hybrid_model=hybrid.outputs["model"], preset=preset, **shared),
        accelerator_type,
        accelerator_limit,
    )
    final_model = mitigated.outputs["model"]

    _configure(shap_analysis(processed=processed, model=final_model, **shared), ANALYSIS)
    scored = _configure(evaluate(processed=processed, model=final_model, **shared), ANALYSIS)

    _configure(
        register(
            processed=processed,
            model=final_model,
            evaluation=scored.outputs["evaluation"],
            bias=mitigated.outputs["bias"],
            **shared,
        ),
        LIGHT,
    )
