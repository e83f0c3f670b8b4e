"""The registered model as an MLflow pyfunc: a DataFrame of raw customer messages in, responses out.

Its artifacts are the bundle files of `hybrid_dialogue.generation` (the
`.keras` model, `tokenizer.json`, `text_rules.json`, `manifest.json`), so the
served model cleans and redacts text exactly as preprocessing did. The
project's source travels in the model's `code` folder, so a fresh process
can load it with only the locked dependencies installed.
"""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from hybrid_dialogue.generation import BUNDLE_FILES, ResponseGenerator

logger = logging.getLogger(__name__)

INPUT_COLUMN = "customer_message"
RESPONSE_COLUMN = "response"
QUALITY_COLUMN = "quality_score"
INPUT_EXAMPLE = pd.DataFrame({INPUT_COLUMN: ["Where is my order 12345?"]})
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", INPUT_COLUMN)]),
    outputs=Schema([ColSpec("string", RESPONSE_COLUMN), ColSpec("double", QUALITY_COLUMN)]),
)

# The package itself, copied into the logged model, and the file that MLflow
# runs to build the model object at load time.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
MODEL_CODE_FILE = Path(__file__).with_name("model_code.py")

# Distributions the model needs at load time, pinned to the versions installed
# when it was logged. `mlflow models serve --env-manager local` ignores them,
# but the virtualenv and conda environment managers install them.
RUNTIME_DISTRIBUTIONS = (
    "mlflow", "tensorflow-cpu", "keras", "tokenizers", "numpy", "pandas", "pydantic", "pyyaml",
)


class HybridDialoguePyfunc(mlflow.pyfunc.PythonModel):
    """Generates agent responses for the `customer_message` column of a DataFrame."""

    def load_context(self, context: Any) -> None:
        artifacts = context.artifacts
        self._generator = ResponseGenerator.from_files(*(artifacts[name] for name in BUNDLE_FILES))

    @property
    def generator(self) -> ResponseGenerator:
        """The loaded generator, for callers that unwrap the pyfunc (the `generate` command)."""
        return self._generator

    # MLflow infers no schema from a `pd.DataFrame` type hint, so SIGNATURE
    # stays the model's only schema.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Return a DataFrame with `response` and `quality_score`, one row per input row.

        Raises `MlflowException` (INVALID_PARAMETER_VALUE) when the column is
        missing or a message is not non-empty text within the length limit.
        The scoring server returns it as HTTP 400 with the message.
        """
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if INPUT_COLUMN not in frame.columns:
            raise MlflowException(
                f"input has no '{INPUT_COLUMN}' column (columns: {list(frame.columns)}): "
                f"send a DataFrame with one customer message per row in '{INPUT_COLUMN}'",
                error_code=INVALID_PARAMETER_VALUE,
            )
        try:
            responses = self._generator.respond(frame[INPUT_COLUMN].tolist())
        except ValueError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error
        return pd.DataFrame({
            RESPONSE_COLUMN: [response.text for response in responses],
            QUALITY_COLUMN: [response.quality for response in responses],
        })


def log_pyfunc_model(bundle_dir: str | Path, name: str = "model") -> Any:
    """Log a bundle directory as a pyfunc model in the active run and return the `ModelInfo`.

    In MLflow 3 the logged model lives outside the run's artifact folder, so
    callers must use the returned `model_uri`.
    """
    bundle_dir = Path(bundle_dir)
    with tempfile.TemporaryDirectory(prefix="hybrid-dialogue-code-") as staging:
        # A clean copy of the package, without bytecode caches.
        code_dir = Path(staging) / PACKAGE_DIR.name
        shutil.copytree(PACKAGE_DIR, code_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE_FILE),
            artifacts={file_name: str(bundle_dir / file_name) for file_name in BUNDLE_FILES},
            code_paths=[str(code_dir)],
            signature=SIGNATURE,
            input_example=INPUT_EXAMPLE,
            pip_requirements=runtime_requirements(),
        )


def runtime_requirements() -> list[str]:
    requirements = []
    for distribution in RUNTIME_DISTRIBUTIONS:
        try:
            requirements.append(f"{distribution}=={importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            logger.warning("%s is not installed; it is left out of the model's requirements", distribution)
    return requirements
