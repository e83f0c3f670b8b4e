"""Benchmark generation: single-message latency and batch throughput of `HybridDialogueModel.respond`.

For each preset, precision and compile mode, it builds an untrained model
(generation is non-autoregressive, so its cost does not depend on the weights),
warms it up, then times:
- single-message latency: `respond` on one message (NumPy in, NumPy out),
  median and 95th percentile of wall time over `--calls` calls, and the
  median CPU time of the process per call (all threads). When other jobs
  share the cores, wall time grows but CPU time barely does, so CPU time
  estimates the wall time of mostly single-threaded calls on an idle machine;
- batch throughput: messages per second of `respond` at each `--batch-sizes`.

Run from the repository root:

    .venv/bin/python benchmarks/bench_generation.py
    .venv/bin/python benchmarks/bench_generation.py --presets cpu --precisions none bfloat16 --json out.json

It prints a Markdown table, the form used in benchmarks/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from hybrid_dialogue.models.config import load_model_config  # noqa: E402
from hybrid_dialogue.models.io import build_model  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="parameter file with the model section"
    )
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu"], help="model presets to measure")
    parser.add_argument(
        "--precisions", nargs="+", default=["none"], help="model.mixed_precision values: none, bfloat16, float16"
    )
    parser.add_argument(
        "--compile-modes",
        nargs="+",
        default=["auto", "xla", "graph"],
        help="auto: the model's default (XLA for chunks of up to inference_xla_max_rows rows), "
        "xla: XLA for every chunk, graph: no XLA",
    )
    parser.add_argument(
        "--vocab-size", type=int, default=2004, help="vocabulary size (preprocess default: 2000 plus 4 placeholders)"
    )
    parser.add_argument("--calls", type=int, default=200, help="timed single-message calls")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls before timing")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256], help="batch sizes for throughput")
    parser.add_argument("--batch-repeats", type=int, default=5, help="timed calls per batch size")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser.parse_args()


def cpu_model_name() -> str:
    """Return the CPU model from /proc/cpuinfo, or the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def measure(args: argparse.Namespace, preset: str, precision: str, compile_mode: str) -> dict:
    """Time one configuration and return its latency and throughput figures."""
    config = load_model_config(args.params, {"preset": preset})
    arch = config.architecture(args.vocab_size)
    model = build_model(arch, tokenizer_fingerprint="benchmark", mixed_precision=precision)
    model.inference_jit_compile = compile_mode != "graph"
    if compile_mode == "xla":
        model.inference_xla_max_rows = max(args.batch_sizes)

    # Random non-special ids: only the shapes matter for the cost.
    rng = np.random.default_rng(0)
    largest = max(args.batch_sizes)
    messages = rng.integers(4, arch.vocab_size, size=(largest, arch.max_len), dtype=np.int32)
    single = messages[:1]

    started = time.perf_counter()
    model.respond(single)
    first_call_s = time.perf_counter() - started
    for _ in range(args.warmup):
        model.respond(single)

    latencies_ms, cpu_times_ms = [], []
    for _ in range(args.calls):
        started, cpu_started = time.perf_counter(), time.process_time()
        model.respond(single)
        latencies_ms.append(1000 * (time.perf_counter() - started))
        cpu_times_ms.append(1000 * (time.process_time() - cpu_started))

    throughput = {}
    for batch_size in args.batch_sizes:
        batch = messages[:batch_size]
        model.respond(batch, batch_size=batch_size)  # compiles this batch shape
        started = time.perf_counter()
        for _ in range(args.batch_repeats):
            model.respond(batch, batch_size=batch_size)
        throughput[batch_size] = batch_size * args.batch_repeats / (time.perf_counter() - started)

    return {
        "preset": preset,
        "precision": precision,
        "compile": compile_mode,
        "parameters": model.count_params(),
        "max_len": arch.max_len,
        "vocab_size": arch.vocab_size,
        "first_call_s": first_call_s,
        "latency_median_ms": statistics.median(latencies_ms),
        "latency_p95_ms": float(np.percentile(latencies_ms, 95)),
        "cpu_time_median_ms": statistics.median(cpu_times_ms),
        "throughput_messages_per_s": throughput,
    }


def markdown_table(results: list[dict], batch_sizes: list[int]) -> str:
    header = (
        "| preset | precision | compile | parameters | first call (s) "
        "| latency median (ms) | latency p95 (ms) | CPU time median (ms) |"
    )
    header += "".join(f" batch {size} (messages/s) |" for size in batch_sizes)
    rule = "|---" * (8 + len(batch_sizes)) + "|"
    rows = []
    for result in results:
        row = (
            f"| {result['preset']} | {result['precision']} | {result['compile']} | {result['parameters']:,} "
            f"| {result['first_call_s']:.1f} | {result['latency_median_ms']:.1f} | {result['latency_p95_ms']:.1f} "
            f"| {result['cpu_time_median_ms']:.1f} |"
        )
        row += "".join(f" {result['throughput_messages_per_s'][size]:.0f} |" for size in batch_sizes)
        rows.append(row)
    return "\n".join([header, rule, *rows])


def main() -> None:
    args = parse_args()
    results = []
    for preset in args.presets:
        for precision in args.precisions:
            for compile_mode in args.compile_modes:
                results.append(measure(args, preset, precision, compile_mode))

    # Other processes share the cores, so the load average gives the numbers their context.
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"CPU: {cpu_model_name()}, {os.cpu_count()} logical cores; load average at the end {load}")
    print(f"vocabulary {args.vocab_size}")
    print(markdown_table(results, args.batch_sizes))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
