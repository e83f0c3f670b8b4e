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


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's results repeatable when asked.

    `deterministic` turns on op determinism (deterministic kernels, and an
    error for ops without one). It also turns off grappler, TensorFlow's graph
    optimizer, for functions traced afterwards, because grappler made the
    steps that update the discriminator inside the generator's step
    (gan_pretrain's adversarial step, hybrid_finetune, bias_mitigation) differ
    in their last bits between repeats from the same state, at the cpu
    preset's size with two inter-op threads. Turning off every grappler pass
    that TensorFlow 2.21 lets a caller toggle did not help, so only the whole
    switch does. The cost is measured in benchmarks/BENCHMARKS.md.
    NOTE: checked on one 2-core Intel Xeon VM only, not on other CPUs, larger
    thread pools or GPUs. Both settings are process-wide, and op determinism
    cannot be turned off again in TensorFlow 2.21.
    """
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


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
