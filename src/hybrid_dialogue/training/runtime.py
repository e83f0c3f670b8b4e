"""Process-wide training set-up: distribution strategy, seeding and optimizers.

Mixed precision is a property of the model (`build_model(..., mixed_precision=...)`),
which stores its dtype policy in each layer's config.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import tensorflow as tf

logger = logging.getLogger(__name__)


def select_strategy() -> tf.distribute.Strategy:
    """Return a MirroredStrategy over every GPU when there are several, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        logger.info("training on %d GPUs with MirroredStrategy", strategy.num_replicas_in_sync)
        return strategy
    logger.info("training on %s with the default strategy", "1 GPU" if gpus else "the CPU")
    return tf.distribute.get_strategy()


def warn_if_bfloat16_is_emulated(mixed_precision: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    """Log a warning when bfloat16 is asked for on a CPU without bfloat16 instructions.

    TensorFlow then emulates bfloat16 arithmetic, which is slower than
    float32. Checks the Linux CPU flags `avx512_bf16` and `amx_bf16`; on other
    systems, or with a GPU, it checks nothing.
    """
    if mixed_precision != "bfloat16" or tf.config.list_logical_devices("GPU") or not cpuinfo.is_file():
        return
    flags = set()
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    if flags and not flags & {"avx512_bf16", "amx_bf16"}:
        logger.warning(
            "model.mixed_precision is bfloat16 but this CPU has no bfloat16 instructions (avx512_bf16 or "
            "amx_bf16): training will be slower than with model.mixed_precision: none"
        )


def seed_everything(seed: int, deterministic: bool, one_op_at_a_time: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow ops deterministic when asked.

    Op determinism makes TensorFlow pick deterministic kernels and raise on
    ops that have none. Its cost is measured in benchmarks/BENCHMARKS.md.
    NOTE: it is process-wide and TensorFlow 2.21 has no public call to turn
    it off, so it stays on for the rest of the process.

    `one_op_at_a_time` also limits TensorFlow's inter-op pool to one thread
    when `deterministic` is set. Steps whose result depends on the order of
    independent ops need it (see `_run_one_op_at_a_time`). The others run
    faster without it.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        if one_op_at_a_time:
            _run_one_op_at_a_time()


# Whether the "runtime already started" warning was logged; once per process is enough.
_warned_inter_op_threads = False


def _run_one_op_at_a_time() -> None:
    """Set TensorFlow's inter-op thread pool to one thread, if the runtime has not started yet.

    Op determinism fixes each kernel's result, but not the order in which
    independent ops run. Steps that update the discriminator inside the
    generator's step (`gan_pretrain`'s adversarial step, `hybrid_finetune`)
    gave gradients that differed in their last bits between identical steps
    when ops ran side by side: two `hybrid_finetune` runs of 60 steps
    differed in the fourth digit of their losses, and two short
    `gan_pretrain` runs in the eighth. With one inter-op thread their weights
    were identical. `vae_pretrain` reproduces without it. Each op still
    uses every core through the intra-op pool, but the step runs slower:
    1.0x to 1.5x the time, depending on the CPU (benchmarks/BENCHMARKS.md).
    """
    global _warned_inter_op_threads
    if tf.config.threading.get_inter_op_parallelism_threads() == 1:
        return
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # The runtime starts with the first op, so a second stage in one
        # process (tests, notebooks) keeps the pool it started with.
        if _warned_inter_op_threads:
            return
        _warned_inter_op_threads = True
        logger.warning(
            "TensorFlow was already running, so its inter-op thread pool stays as it is and "
            "same-seed runs may differ slightly. Run each stage in its own process for identical results."
        )


def make_adam(
    learning_rate: float, clip_norm: float, mixed_precision: str, beta_1: float = 0.9, name: str = "adam"
) -> keras.optimizers.Optimizer:
    """Build Adam with global-norm clipping, wrapped in a LossScaleOptimizer for float16.

    float16 has 5 exponent bits, so small gradients underflow to zero
    unless the loss is scaled up before differentiation. bfloat16 has
    float32's exponent range and needs no scaling.
    """
    optimizer = keras.optimizers.Adam(
        learning_rate=learning_rate, beta_1=beta_1, global_clipnorm=clip_norm, name=name
    )
    if mixed_precision == "float16":
        return keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
    return optimizer
