"""Default locations of the pipeline's files, relative to the repository root.

`dvc.yaml`, the CLI defaults and the Kubeflow components all take paths from
here, so that a path is written down once.
"""

from pathlib import Path

RAW_DIR = Path("data/raw")
RAW_CORPUS = RAW_DIR / "dialogues.jsonl"
PROCESSED_DIR = Path("data/processed")
QUARANTINE_FILE = Path("data/quarantine/preprocess.jsonl")
MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics")
PLOTS_DIR = Path("metrics/plots")
REPORTS_DIR = Path("reports")
CHECKPOINTS_DIR = Path("checkpoints")
MLFLOW_DIR = Path("mlflow")
PARAMS_FILE = Path("params.yaml")

# Trained models, one file per stage.
VAE_MODEL = MODELS_DIR / "vae.keras"
GAN_MODEL = MODELS_DIR / "gan.keras"
HYBRID_MODEL = MODELS_DIR / "hybrid.keras"
MITIGATED_MODEL = MODELS_DIR / "mitigated.keras"

# Kubeflow Pipelines: the committed compiled pipeline, and the default root of
# `hybrid-dialogue kfp run-local` task outputs.
COMPILED_PIPELINE = Path("pipelines/hybrid_dialogue_pipeline.yaml")
KFP_LOCAL_ROOT = Path(".kfp-local")

# Metric files that the register stage reads and writes.
EVALUATE_METRICS = METRICS_DIR / "evaluate.json"
BIAS_METRICS = METRICS_DIR / "bias.json"
REGISTER_METRICS = METRICS_DIR / "register.json"

# The evaluate stage's Markdown and HTML report.
EVALUATION_REPORT_DIR = REPORTS_DIR / "evaluation"

# The preprocess stage's metrics and Great Expectations Data Docs.
PREPROCESS_METRICS = METRICS_DIR / "preprocess.json"
DATA_DOCS_DIR = REPORTS_DIR / "data_docs"

# The bias_mitigation and shap_analysis stages' reports, and the SHAP stage's metrics.
BIAS_REPORT_DIR = REPORTS_DIR / "bias"
SHAP_REPORT_DIR = REPORTS_DIR / "shap"
SHAP_METRICS = METRICS_DIR / "shap.json"
