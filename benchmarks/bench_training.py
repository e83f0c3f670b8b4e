"""Training throughput of the hybrid step: the project's tuned step against a straightforward reference.

`reference` is the same model and losses in one `tf.function` with
`GradientTape`, float32, batch 64, fed one NumPy batch per step: what a
first training script does. The other variants run the project's
`HybridTrainer` step fed by `training.data.epoch_dataset` (tf.data with
prefetch) and add one lever at a time: bfloat16 mixed precision and a
larger batch. Both do the same arithmetic per sample (the discriminator
update and the end-to-end update share one generator forward pass in
both), so a ratio above 1 comes from how the work runs, not from doing
less of it.

All variants of a preset live in one process and are timed in interleaved
rounds: each round runs a few steps of every variant, in rotating order.
Load from other processes then slows them alike, so the ratios stay
comparable on a shared machine. Op determinism (with grappler off, as the
training stages run it) is process-wide, so its cost is measured in a
second process for the reference and one variant.

FLOPs per sample are counted analytically from the layer sizes (see
`step_flops`). The share of peak uses --peak-gflops, an FP32 estimate.

Usage:
    .venv/bin/python benchmarks/bench_training.py                      # tiny, cpu and seed
    .venv/bin/python benchmarks/bench_training.py --presets cpu --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# Vocabulary of the default preprocess settings (preprocess.vocab_size 2000 plus the placeholders).
DEFAULT_VOCAB = 2004

# name -> (tuned trainer fed by tf.data, mixed_precision, batch size)
VARIANTS = {
    "reference": (False, "none", 64),
    "tf.data": (True, "none", 64),
    "tf.data+bf16": (True, "bfloat16", 64),
    "tf.data+bf16+b128": (True, "bfloat16", 128),
    "tf.data+bf16+b256": (True, "bfloat16", 256),
    "tf.data+b128": (True, "none", 128),
    "tf.data+b256": (True, "none", 256),
    "tf.data+bf16+b512": (True, "bfloat16", 512),
}


# --- analytic FLOP count ---


def lstm_flops(steps: int, inputs: int, units: int) -> int:
    """Forward FLOPs of one LSTM over `steps` steps: 4 gates of (inputs + units) x units multiply-adds."""
    return steps * (2 * 4 * units * (inputs + units) + 10 * units)


def dense_flops(vectors: int, inputs: int, outputs: int) -> int:
    return vectors * 2 * inputs * outputs


def part_flops(arch: Any) -> dict[str, int]:
    """Forward FLOPs per sample of each part, from the layer stacks of `hybrid_dialogue.models`."""
    length, vocab = arch.max_len, arch.vocab_size
    encoder = (
        2 * lstm_flops(length, arch.embedding_dim, arch.encoder_units)
        + lstm_flops(length, 2 * arch.encoder_units, arch.encoder_units)
        + 2 * dense_flops(1, arch.encoder_units, arch.latent_dim)
    )
    decoder = (
        dense_flops(1, arch.latent_dim, arch.decoder_units)
        + lstm_flops(length, arch.decoder_units, arch.decoder_units)
        + lstm_flops(length, arch.decoder_units, arch.decoder_units)
        + dense_flops(length, arch.decoder_units, vocab)
    )
    generator = (
        dense_flops(1, arch.latent_dim, arch.generator_dense_units)
        + dense_flops(1, arch.generator_dense_units, arch.generator_dense_units)
        + lstm_flops(length, arch.generator_dense_units, arch.generator_units)
        + lstm_flops(length, arch.generator_units, arch.generator_units)
        + lstm_flops(length, arch.generator_units, arch.generator_last_units)
        + dense_flops(length, arch.generator_last_units, vocab)
    )
    widths = [2 * arch.discriminator_inner_units, *arch.discriminator_dense_units, 1]
    discriminator = (
        dense_flops(length, vocab, arch.embedding_dim)  # distributions times the embedding matrix
        + 2 * lstm_flops(length, arch.embedding_dim, arch.discriminator_units)
        + 2 * lstm_flops(length, 2 * arch.discriminator_units, arch.discriminator_inner_units)
        + sum(dense_flops(1, a, b) for a, b in zip(widths, widths[1:], strict=False))
    )
    return {"encoder": encoder, "decoder": decoder, "generator": generator, "discriminator": discriminator}


def step_flops(arch: Any) -> int:
    """FLOPs per sample of one hybrid step (an estimate: matmuls and LSTM gates only).

    A backward pass costs about twice its forward pass (gradients of inputs
    and of weights). Encoder, decoder and generator: forward + backward = 3x.
    Discriminator: 8x in all. Its own update runs it on real and fake (2x)
    plus backward (4x). The end-to-end update runs it once more on fake (1x)
    and back-propagates to its input only (1x).
    """
    parts = part_flops(arch)
    return 3 * (parts["encoder"] + parts["decoder"] + parts["generator"]) + 8 * parts["discriminator"]


# --- measurements (each preset runs in its own subprocess) ---


def reference_step(model: Any, optimizer: Any, discriminator_optimizer: Any, config: Any) -> Any:
    """Build the straightforward compiled step: one tf.function with GradientTape, the hybrid stage's math."""
    import tensorflow as tf

    from hybrid_dialogue.training import losses

    weights = config.loss_weights
    variables = [*model.encoder.trainable_variables, *model.decoder.trainable_variables,
                 *model.generator.trainable_variables]
    discriminator_variables = model.discriminator.trainable_variables

    @tf.function
    def step(input_ids: tf.Tensor, response_ids: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = model.encoder(input_ids, training=True)
            reconstruction = model.decoder(z, training=True)
            response = model.generator(z, training=True)
            fake = model.gumbel(response, training=True)
            with tape.stop_recording():
                real = tf.one_hot(response_ids, model.architecture.vocab_size)
                with tf.GradientTape() as discriminator_tape:
                    d_loss = tf.reduce_mean(losses.discriminator_loss(
                        model.discriminator(real, training=True),
                        model.discriminator(tf.stop_gradient(fake), training=True),
                        config.label_smoothing))
                gradients = discriminator_tape.gradient(d_loss, discriminator_variables)
                discriminator_optimizer.apply_gradients(zip(gradients, discriminator_variables))
            scores = model.discriminator(fake, training=True)
            loss = (weights.reconstruction * tf.reduce_mean(losses.masked_token_cross_entropy(input_ids, reconstruction))
                    + weights.kl * tf.reduce_mean(losses.kl_divergence(z_mean, z_log_var))
                    + weights.adversarial * tf.reduce_mean(losses.generator_adversarial_loss(scores))
                    + weights.content * tf.reduce_mean(losses.masked_token_cross_entropy(response_ids, response)))
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    return step


def synthetic_ids(rows: int, max_len: int, vocab: int, seed: int) -> Any:
    """Token rows shaped like the processed data: [BOS] tokens [EOS] then [PAD], lengths 4 to max_len."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = np.zeros((rows, max_len), dtype=np.int32)
    lengths = rng.integers(4, max_len + 1, size=rows)
    for row, length in enumerate(lengths):
        ids[row, 0] = 2
        ids[row, 1 : length - 1] = rng.integers(4, vocab, size=length - 2)
        ids[row, length - 1] = 3
    return ids


def prepare_variant(preset: str, variant: str, vocab: int, total_steps: int) -> dict[str, Any]:
    """Build one variant's model and step, run its first (tracing) step, and return a step callable."""
    import numpy as np
    import pandas as pd
    import tensorflow as tf

    from hybrid_dialogue.config import parse_section
    from hybrid_dialogue.data.dataset import SplitData
    from hybrid_dialogue.models.config import load_model_config
    from hybrid_dialogue.models.io import build_model
    from hybrid_dialogue.training.config import HybridFinetuneConfig
    from hybrid_dialogue.training.data import epoch_dataset
    from hybrid_dialogue.training.hybrid import HybridTrainer
    from hybrid_dialogue.training.runtime import make_adam

    tuned, precision, batch_size = VARIANTS[variant]
    arch = load_model_config(REPO_ROOT / "params.yaml", {"preset": preset}).architecture(vocab)
    model = build_model(arch, "benchmark", 0, precision)
    budgets = {name: {"epochs": 1} for name in ("seed", "cpu", "tiny")}
    config = parse_section(HybridFinetuneConfig, "hybrid_finetune", {"batch_size": batch_size, "budgets": budgets})

    rows = total_steps * batch_size
    input_ids = synthetic_ids(rows, arch.max_len, vocab, 1)
    response_ids = synthetic_ids(rows, arch.max_len, vocab, 2)

    if tuned:
        trainer = HybridTrainer(model, config, tf.distribute.get_strategy())
        split = SplitData(frame=pd.DataFrame(index=range(rows)), input_ids=input_ids, response_ids=response_ids)
        batches = iter(epoch_dataset(split, batch_size, total_steps, 0, 0))
        schedule = trainer.schedule(0, total_steps, 0)

        def run_step() -> float:
            return float(trainer.train_step(next(batches), 0, schedule)["loss"])  # float() waits for the step
    else:
        optimizer = make_adam(config.learning_rate, config.clip_norm, "none", config.beta_1)
        discriminator_optimizer = make_adam(config.discriminator_learning_rate, config.clip_norm, "none", config.beta_1)
        step = reference_step(model, optimizer, discriminator_optimizer, config)
        starts = iter(range(0, rows, batch_size))

        def run_step() -> float:
            start = next(starts)
            return float(step(input_ids[start : start + batch_size], response_ids[start : start + batch_size]))

    started = time.perf_counter()
    loss = run_step()
    compile_seconds = time.perf_counter() - started
    if not np.isfinite(loss):
        raise RuntimeError(f"{preset}/{variant}: loss is {loss}")
    return {"run_step": run_step, "batch_size": batch_size, "precision": precision,
            "compile_seconds": compile_seconds, "flops_per_sample": step_flops(arch),
            "parameters": model.count_params()}


def measure_preset(preset: str, variants: list[str], rounds: int, steps: int, vocab: int,
                   deterministic: bool) -> list[dict[str, Any]]:
    """Time `rounds` interleaved rounds of `steps` steps of every variant; return one row per variant."""
    import tensorflow as tf

    from hybrid_dialogue.training.runtime import seed_everything

    # As in the training stages: determinism also turns grappler off (runtime.seed_everything).
    seed_everything(0, deterministic)
    prepared = {name: prepare_variant(preset, name, vocab, rounds * steps + 2) for name in variants}
    # One untimed step each: the first call of a compiled step after another model ran can take seconds.
    for name in variants:
        prepared[name]["run_step"]()

    round_seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(rounds):
        order = variants[round_index % len(variants):] + variants[: round_index % len(variants)]
        for name in order:
            started = time.perf_counter()
            for _ in range(steps):
                prepared[name]["run_step"]()
            round_seconds[name].append((time.perf_counter() - started) / steps)

    rows = []
    for name in variants:
        info = prepared[name]
        step_seconds = statistics.median(round_seconds[name])
        row = {key: value for key, value in info.items() if key != "run_step"}
        row.update({"preset": preset, "variant": name, "deterministic": deterministic,
                    "step_seconds": step_seconds, "samples_per_second": info["batch_size"] / step_seconds,
                    "tensorflow": tf.__version__})
        if "reference" in round_seconds:
            # Median over rounds of the per-round throughput ratio: robust to load that changes between rounds.
            ratios = [(info["batch_size"] / mine) / (64 / reference)
                      for mine, reference in zip(round_seconds[name], round_seconds["reference"], strict=True)]
            row["vs_reference"] = statistics.median(ratios)
        rows.append(row)
    return rows


def measure_generation(preset: str, vocab: int, repeats: int) -> dict[str, Any]:
    """Time `model.respond` for one message (median latency) and for a batch of 256 (throughput)."""
    from hybrid_dialogue.models.config import load_model_config
    from hybrid_dialogue.models.io import build_model

    arch = load_model_config(REPO_ROOT / "params.yaml", {"preset": preset}).architecture(vocab)
    model = build_model(arch, "benchmark", 0)
    ids = synthetic_ids(256, arch.max_len, vocab, 3)
    model.respond(ids[:1])  # traces
    latencies = []
    for row in range(repeats):
        started = time.perf_counter()
        model.respond(ids[row % 256 : row % 256 + 1])
        latencies.append(time.perf_counter() - started)
    model.respond(ids)
    started = time.perf_counter()
    model.respond(ids)
    batch_seconds = time.perf_counter() - started
    return {
        "preset": preset,
        "latency_ms_median": 1000 * statistics.median(latencies),
        "latency_ms_p90": 1000 * statistics.quantiles(latencies, n=10)[-1],
        "batch_256_per_second": 256 / batch_seconds,
    }


# --- driver ---


def run_worker(arguments: list[str]) -> Any:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    command = [sys.executable, __file__, "--worker", json.dumps(arguments)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"worker {arguments} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def print_table(results: list[dict[str, Any]], peak_gflops: float) -> None:
    print("| preset | variant | batch | precision | determinism | compile (s) | step (ms) | samples/s "
          "| vs reference | GFLOP/s | share of FP32 peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        gflops = row["samples_per_second"] * row["flops_per_sample"] / 1e9
        ratio = f"{row['vs_reference']:.2f}x" if "vs_reference" in row else "n/a"
        print(f"| {row['preset']} | {row['variant']} | {row['batch_size']} | {row['precision']} "
              f"| {'on' if row['deterministic'] else 'off'} | {row['compile_seconds']:.1f} "
              f"| {1000 * row['step_seconds']:.0f} | {row['samples_per_second']:.0f} | {ratio} "
              f"| {gflops:.1f} | {100 * gflops / peak_gflops:.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu", "seed"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    parser.add_argument("--determinism-variant", default="tf.data", choices=list(VARIANTS),
                        help="variant also timed with op determinism on, against the reference")
    parser.add_argument("--vocab", type=int, default=DEFAULT_VOCAB, help="vocabulary size")
    parser.add_argument("--peak-gflops", type=float, default=332.8,
                        help="FP32 peak in GFLOP/s (default: 2 cores x 2.6 GHz x 64 FLOPs/cycle, an estimate)")
    parser.add_argument("--generation-repeats", type=int, default=200)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        kind, preset, *rest = json.loads(args.worker)
        if kind == "train":
            variants, rounds, steps, vocab, deterministic = rest
            print(json.dumps(measure_preset(preset, variants, rounds, steps, vocab, deterministic)))
        else:
            vocab, repeats = rest
            print(json.dumps(measure_generation(preset, vocab, repeats)))
        return

    print(f"load average before: {os.getloadavg()}", flush=True)
    results = []
    for preset in args.presets:
        # The seed preset takes seconds per step, so it runs the reference and one tuned variant only.
        variants = args.variants if preset != "seed" else ["reference", "tf.data+bf16"]
        rounds = args.rounds if preset != "seed" else min(args.rounds, 3)
        steps = args.steps if preset != "seed" else 1
        for deterministic in (False, True):
            chosen = variants if not deterministic else ["reference", args.determinism_variant]
            rows = run_worker(["train", preset, chosen, rounds, steps, args.vocab, deterministic])
            for row in rows:
                print(json.dumps(row), flush=True)
            results.extend(rows)
    print_table(results, args.peak_gflops)

    print("\n| preset | respond latency, 1 message (ms, median) | p90 (ms) | batch of 256 (messages/s) |")
    print("|---|---|---|---|")
    for preset in args.presets:
        row = run_worker(["generate", preset, args.vocab, args.generation_repeats])
        print(f"| {preset} | {row['latency_ms_median']:.1f} | {row['latency_ms_p90']:.1f} "
              f"| {row['batch_256_per_second']:.0f} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
