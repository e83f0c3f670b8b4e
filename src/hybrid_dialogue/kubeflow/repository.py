"""Find the repository that contains `components/` and `pipelines/`, and import the pipeline from it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from hybrid_dialogue.kubeflow import KubeflowError

# Files that identify a Hybrid Dialogue checkout.
MARKERS = (Path("components/__init__.py"), Path("pipelines/pipeline.py"))
PIPELINE_MODULE = "pipelines.pipeline"
PIPELINE_FUNCTION = "hybrid_dialogue_pipeline"


def find_repository_root(start: str | Path | None = None) -> Path:
    """Return the nearest directory at or above `start` (default: the working directory) with the markers."""
    start = Path(start or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if all((candidate / marker).is_file() for marker in MARKERS):
            return candidate
    raise KubeflowError(
        f"no Hybrid Dialogue repository found at or above {start}: expected "
        f"{' and '.join(str(marker) for marker in MARKERS)}. "
        "Run `hybrid-dialogue kfp` inside a clone of the repository."
    )


def load_pipeline(root: Path) -> Any:
    """Import `pipelines/pipeline.py` from `root` and return the pipeline function.

    `root` goes first on `sys.path`, because `components` and `pipelines` are
    top-level folders of the checkout, not parts of the installed package.
    """
    root_text = str(root)
    if root_text not in sys.path:
        sys.path.insert(0, root_text)
    module = importlib.import_module(PIPELINE_MODULE)

    module_file = Path(module.__file__ or "").resolve()
    if not module_file.is_relative_to(root):
        raise KubeflowError(
            f"module {PIPELINE_MODULE} was imported from {module_file}, not from {root}. "
            "Another installed package named `pipelines` shadows the repository's folder: "
            "run the command in a fresh process from the repository root."
        )
    return getattr(module, PIPELINE_FUNCTION)
