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
