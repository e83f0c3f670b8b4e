"""One command per pipeline stage; `dvc.yaml` and the Kubeflow components call the same functions."""

from __future__ import annotations

import click

from hybrid_dialogue.cli.main import cli
