"""Kernel time per TensorFlow op type in a few training steps, to see where a step's time goes.

Builds one variant of `bench_training.py` (same model, data and step),
runs a few warm-up steps, records a few more with the TensorFlow profiler
and sums the kernel time of every op execution by op type. The table
shows whether matrix products, the many small ops of the LSTM loops or
something else bound the step, before a lever is tried.

Kernel times are summed over all threads, so on 2 cores their total can
exceed the step's wall time. "Executions" counts traced kernel runs.
The LSTM loops' tensor-list ops are among them, but their control-flow
ops (Switch, Merge) leave no trace event, so the count misses those.

Usage (from the repository root):
    .venv/bin/python benchmarks/profile_training.py                     # cpu preset, tf.data step
    .venv/bin/python benchmarks/profile_training.py --variant reference --top 15
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_training import DEFAULT_VOCAB, VARIANTS, prepare_variant

# Events of the executor and the function runtime wrap the op kernels, and their names contain "::".
RUNTIME_EVENT = "::"


def kernel_time_by_op(xspace_path: Path) -> tuple[collections.Counter, collections.Counter]:
    """Sum kernel time (ms) and count executions per op type in one profiler trace.

    TensorFlow names an op's trace event "scope/name:OpType".
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    space.ParseFromString(xspace_path.read_bytes())
    milliseconds: collections.Counter = collections.Counter()
    executions: collections.Counter = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if RUNTIME_EVENT in name or ":" not in name:
                    continue
                op_type = name.rsplit(":", 1)[1].strip()
                if op_type.startswith("__"):
                    continue  # the whole compiled function ("__inference_..."), not one op
                milliseconds[op_type] += event.duration_ps / 1e9
                executions[op_type] += 1
    return milliseconds, executions


def profile(preset: str, variant: str, steps: int) -> dict[str, Any]:
    """Profile `steps` steps of one variant after three warm-up steps and return per-step figures."""
    import tensorflow as tf

    prepared = prepare_variant(preset, variant, DEFAULT_VOCAB, steps + 4)
    for _ in range(3):
        prepared["run_step"]()

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        started = time.perf_counter()
        for _ in range(steps):
            prepared["run_step"]()
        wall_seconds = time.perf_counter() - started
        tf.profiler.experimental.stop()
        traces = sorted(Path(logdir).rglob("*.xplane.pb"))
        if not traces:
            raise RuntimeError(f"the TensorFlow profiler wrote no trace under {logdir}. "
                               "Check that the profiler is available in this TensorFlow build.")
        milliseconds, executions = kernel_time_by_op(traces[-1])

    return {
        "step_ms": 1000 * wall_seconds / steps,
        "milliseconds": {op: value / steps for op, value in milliseconds.items()},
        "executions": {op: count / steps for op, count in executions.items()},
        "batch_size": prepared["batch_size"],
    }


def print_report(preset: str, variant: str, result: dict[str, Any], top: int) -> None:
    total = sum(result["milliseconds"].values())
    print(f"{preset} / {variant}: batch {result['batch_size']}, {result['step_ms']:.0f} ms per profiled step "
          f"(the profiler adds overhead), {sum(result['executions'].values()):,.0f} op executions and "
          f"{total:.0f} ms of kernel time per step, summed over threads")
    print("\n| op type | kernel ms per step | share of kernel time | executions per step |")
    print("|---|---|---|---|")
    ranked = sorted(result["milliseconds"].items(), key=lambda item: item[1], reverse=True)
    top = min(top, len(ranked))
    for op_type, milliseconds in ranked[:top]:
        print(f"| {op_type} | {milliseconds:.1f} | {100 * milliseconds / total:.1f}% "
              f"| {result['executions'][op_type]:,.0f} |")
    if top < len(ranked):
        rest = sum(milliseconds for _, milliseconds in ranked[top:])
        print(f"| {len(ranked) - top} other op types | {rest:.1f} | {100 * rest / total:.1f}% | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu", choices=["tiny", "cpu", "seed"],
                        help="model preset from params.yaml (default: %(default)s; a seed step takes seconds)")
    parser.add_argument("--variant", default="tf.data", choices=list(VARIANTS),
                        help="step to profile, as named in bench_training.py (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4,
                        help="profiled steps, after three warm-up steps (default: %(default)s)")
    parser.add_argument("--top", type=int, default=12,
                        help="op types listed before the rest is summed in one row (default: %(default)s)")
    args = parser.parse_args()
    if args.steps < 1 or args.top < 1:
        parser.error(f"--steps and --top must be at least 1, got {args.steps} and {args.top}")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print_report(args.preset, args.variant, profile(args.preset, args.variant, args.steps), args.top)


if __name__ == "__main__":
    main()
