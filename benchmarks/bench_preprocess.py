"""Benchmark the preprocess stage on the default 100K-dialogue corpus: wall time and peak memory.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_preprocess.py               # generate 100,000 dialogues, then preprocess
    .venv/bin/python benchmarks/bench_preprocess.py --raw-dir data/raw   # preprocess an existing corpus

Each step runs as its own `hybrid-dialogue` child process, so that its peak
resident memory (`ru_maxrss` from `os.wait4`, the per-child form of
`resource.getrusage(RUSAGE_CHILDREN)`) counts that step alone. Preprocessing
reads the `preprocess` section of params.yaml and includes the Great
Expectations validation and the Data Docs. The target on 2 cores is under
60 s and under 2 GB.

Python compiles each imported module on first use and caches the bytecode.
Importing Great Expectations loads about 2,600 modules. By default the children use
a bytecode cache in the scratch directory, warmed by one import run first, as
on a machine where the stage has run before. `--cold` measures without a
cache (PYTHONDONTWRITEBYTECODE=1), as on the first run after an install that
did not compile bytecode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("hybrid-dialogue")


WARM_UP = "import great_expectations, pandas, pyarrow, tokenizers, hybrid_dialogue.data.preprocess"


def run_child(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `command` and return its wall seconds, CPU seconds and peak RSS in MiB."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit status {process.returncode}")
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 / 1024 if platform.system() == "Linux" else 1 / 1024**2
    return {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss * scale),
    }


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, help="Existing raw corpus directory; skips generation.")
    parser.add_argument("--n-dialogues", type=int, default=100_000, help="Dialogues to generate (default 100,000).")
    parser.add_argument("--cold", action="store_true", help="Run without a bytecode cache (see above).")
    args = parser.parse_args()

    results: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_1min_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as scratch:
        work = Path(scratch)
        env = dict(os.environ)
        if args.cold:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # leaves the virtual environment untouched
            run_child([sys.executable, "-c", WARM_UP], env)
        results["bytecode_cache"] = not args.cold

        raw_dir = args.raw_dir
        if raw_dir is None:
            raw_dir = work / "raw"
            corpus = raw_dir / "dialogues.jsonl"
            synth = ["corpus", "synth", "--output", str(corpus), "--n-dialogues", str(args.n_dialogues)]
            results["generate"] = run_child([str(CLI), *synth], env)
            results["n_dialogues"] = args.n_dialogues
        results["preprocess"] = run_child([
            str(CLI), "--log-level", "INFO", "preprocess", "--no-progress",
            "--raw-dir", str(raw_dir.resolve()), "--output-dir", str(work / "processed"),
            "--metrics", str(work / "metrics.json"), "--reports-dir", str(work / "reports"),
            "--quarantine", str(work / "quarantine.jsonl"),
        ], env)
        metrics = json.loads((work / "metrics.json").read_text(encoding="utf-8"))
        results["pairs"] = metrics["pairs"]["total"]
        results["quarantined"] = metrics["records"]["quarantined"]
    # Other processes on the machine slow every step. The load average shows how busy it was.
    results["load_average_1min_after"] = round(os.getloadavg()[0], 2)

    print(json.dumps(results, indent=2))
    step = results["preprocess"]
    print(
        f"\n| {time.strftime('%Y-%m-%d')} | {results['cpu']}, {results['cores']} cores | "
        f"{results.get('n_dialogues', 'n/a')} | {results['pairs']:,} | {step['wall_s']} | {step['cpu_s']} | "
        f"{step['peak_rss_mib']} | {results['load_average_1min_before']} / {results['load_average_1min_after']} |"
    )


if __name__ == "__main__":
    main()
