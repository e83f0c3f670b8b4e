"""Compile the pipeline to the Kubeflow Pipelines IR YAML that `kfp submit` uploads."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from hybrid_dialogue.io import write_text
from hybrid_dialogue.kubeflow.repository import load_pipeline

logger = logging.getLogger(__name__)


def compile_to_text(root: Path) -> str:
    """Compile the pipeline of the repository at `root` and return the YAML text.

    The output depends only on the code, `params.yaml`, the image name and
    the kfp version, so compiling twice gives identical bytes and the
    committed file can be compared with a fresh compilation.
    """
    from kfp import compiler

    pipeline = load_pipeline(root)
    with tempfile.TemporaryDirectory() as directory:
        # kfp picks the format from the file suffix, so compile to a .yaml path.
        package = Path(directory) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline_func=pipeline, package_path=str(package))
        return package.read_text(encoding="utf-8")


def compile_pipeline(root: Path, output: Path) -> Path:
    """Compile the pipeline, write it to `output` atomically, and return the path written."""
    text = compile_to_text(root)
    write_text(output, text)
    logger.info("Compiled pipeline written to %s (%d bytes)", output, len(text.encode()))
    return output
