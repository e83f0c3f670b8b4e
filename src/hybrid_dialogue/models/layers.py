"""Custom layers of the hybrid model, registered so that `.keras` files load in safe mode.

Every op follows the layer's compute dtype, so the layers run under the
`mixed_bfloat16` and `mixed_float16` policies as well as `float32`.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

PACKAGE = "hybrid_dialogue"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(keras.layers.Layer):
    """Reparameterised Gaussian sample: z = mean + exp(0.5 * log_var) * eps, eps ~ N(0, I).

    Takes `[z_mean, z_log_var]`, both (batch, latent), and returns z of the
    same shape. The noise comes from a seeded generator, so a fixed `seed`
    gives a fixed sequence of samples.
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: list[Any]) -> Any:
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GumbelSoftmax(keras.layers.Layer):
    """Relaxed categorical sample of per-step distributions (Gumbel-softmax).

    Input: probabilities (batch, length, vocab). Output: a distribution of the
    same shape, softmax((log p + g) / temperature) with Gumbel noise g when
    training, and softmax(log p / temperature) without noise otherwise. A low
    temperature gives near one-hot samples, a high one flattens them. With
    `hard=True` the forward pass returns the one-hot argmax and the gradient
    is that of the soft sample (straight-through estimator).

    The temperature is a non-trainable variable, so a training schedule can
    change it between steps (`set_temperature`) without retracing compiled
    functions, and a saved model keeps its last value.
    """

    def __init__(
        self, temperature: float = 1.0, hard: bool = False, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _check_temperature(temperature)
        self.initial_temperature = float(temperature)
        self.hard = hard
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: tuple | None = None) -> None:
        self.temperature = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_temperature),
            trainable=False,
            name="temperature",
        )

    def set_temperature(self, value: float) -> None:
        """Set the temperature for the following calls. Raises ValueError unless `value` is positive."""
        _check_temperature(value)
        self.temperature.assign(value)

    def call(self, probabilities: Any, training: bool | None = None) -> Any:
        dtype = self.compute_dtype
        tiny = _smallest_normal(dtype)

        # Clipping at the smallest normal number keeps log(0) finite.
        logits = ops.log(ops.maximum(ops.cast(probabilities, dtype), tiny))  # (batch, length, vocab)
        if training:
            uniform = keras.random.uniform(
                ops.shape(logits), minval=0.0, maxval=1.0, dtype=dtype, seed=self.seed_generator
            )
            gumbel_noise = -ops.log(-ops.log(ops.maximum(uniform, tiny)))
            logits = logits + gumbel_noise

        temperature = ops.cast(self.temperature, dtype)
        soft = ops.softmax(logits / temperature, axis=-1)
        if not self.hard:
            return soft

        # Straight-through: one-hot forward, the soft sample's gradient backward.
        hard = ops.one_hot(ops.argmax(soft, axis=-1), ops.shape(soft)[-1], dtype=dtype)
        return soft + ops.stop_gradient(hard - soft)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "temperature": self.initial_temperature,
            "hard": self.hard,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class DistributionEmbedding(keras.layers.Layer):
    """Embedding that takes token ids or per-step distributions over the vocabulary.

    One weight matrix (input_dim, output_dim), the same parameter count as
    `keras.layers.Embedding`. Integer ids (batch, length) select rows, and
    float distributions (batch, length, input_dim) are multiplied by the
    matrix, giving (batch, length, output_dim) either way. A one-hot row
    selects the same vector as its id, so real responses (one-hot) and
    generated ones (probabilities) share the matrix, and the gradient of
    anything downstream reaches the distributions' producer.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str | dict = "uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if input_dim < 1 or output_dim < 1:
            raise ValueError(
                f"DistributionEmbedding expects positive input_dim and output_dim, "
                f"got input_dim={input_dim}, output_dim={output_dim}"
            )
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape: tuple | None = None) -> None:
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            name="embeddings",
        )

    def call(self, inputs: Any) -> Any:
        embeddings = ops.cast(self.embeddings, self.compute_dtype)
        if "int" in str(inputs.dtype):
            return ops.take(embeddings, inputs, axis=0)  # (batch, length, output_dim)

        if inputs.shape[-1] != self.input_dim:
            raise ValueError(
                f"DistributionEmbedding expects distributions over {self.input_dim} tokens "
                f"in the last axis, got shape {tuple(inputs.shape)}"
            )
        return ops.matmul(ops.cast(inputs, self.compute_dtype), embeddings)  # (batch, length, output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }


def _check_temperature(value: Any) -> None:
    # Tensors (from a schedule inside a compiled function) are not checked here.
    if isinstance(value, (int, float)) and not value > 0:
        raise ValueError(f"Gumbel-softmax temperature must be positive, got {value}")


def _smallest_normal(dtype: str) -> float:
    """Return the smallest positive normal number of `dtype`, the floor before taking a log."""
    if dtype == "bfloat16":
        return 1.1754944e-38  # bfloat16 has float32's exponent range
    return float(np.finfo(dtype).tiny)
