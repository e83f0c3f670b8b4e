"""`hybrid-dialogue corpus ...`: make the default corpus or import your own."""

from __future__ import annotations

import click

from hybrid_dialogue.cli.main import cli


@cli.group()
def corpus() -> None:
    """Make the default synthetic corpus or import dialogues from other formats."""
