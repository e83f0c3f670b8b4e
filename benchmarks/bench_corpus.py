"""Time the generation of the default synthetic corpus and print a Markdown table row.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_corpus.py [--params params.yaml] [--n-dialogues N]

The corpus goes to a temporary folder, so `data/raw` stays as it is. Peak
memory is the maximum resident set size of this process (`ru_maxrss`), which
includes the Python interpreter and the imported libraries.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from hybrid_dialogue.config import load_section
from hybrid_dialogue.data.synth import CorpusConfig, synthesize_corpus

HEADER = (
    "| machine | CPU cores | dialogues | turns | wall time (s) | dialogues/s | peak RSS (MiB) | file size (MiB) |\n"
    "|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="parameter file with a corpus section")
    parser.add_argument("--n-dialogues", type=int, default=None, help="override corpus.n_dialogues")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    overrides = {"n_dialogues": arguments.n_dialogues} if arguments.n_dialogues else None
    config = load_section(CorpusConfig, "corpus", arguments.params, overrides)

    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "dialogues.jsonl"
        start = time.perf_counter()
        result = synthesize_corpus(config, output)
        wall = time.perf_counter() - start
        size_mib = output.stat().st_size / 2**20

    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mib = peak / 2**20 if sys.platform == "darwin" else peak / 2**10

    machine = f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"
    print(HEADER)
    print(
        f"| {machine} | {os.cpu_count()} | {result.n_dialogues:,} | {result.n_turns:,} | {wall:.1f} "
        f"| {result.n_dialogues / wall:,.0f} | {peak_mib:.0f} | {size_mib:.1f} |"
    )
    print(f"\nsha256 of the corpus: {result.sha256}", file=sys.stderr)


if __name__ == "__main__":
    main()
