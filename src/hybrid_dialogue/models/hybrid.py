"""The hybrid GAN + VAE dialogue model: four sub-models behind one serialisable Keras model.

Training code reaches the parts through `.encoder`, `.decoder`, `.generator`,
`.discriminator` and `.gumbel`. The methods below give the model's five
capabilities: encode, generate, score, reconstruct and respond.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from hybrid_dialogue.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from hybrid_dialogue.models.config import DTYPE_POLICIES, Architecture
from hybrid_dialogue.models.decoder import build_decoder
from hybrid_dialogue.models.decoding import decode_ids, pick_from_inventory
from hybrid_dialogue.models.discriminator import build_discriminator
from hybrid_dialogue.models.encoder import build_encoder
from hybrid_dialogue.models.generator import build_generator
from hybrid_dialogue.models.layers import PACKAGE, GumbelSoftmax

# Rows per compiled call in `respond` and `response_log_prob`: bounds the
# (batch, max_len, vocab) float32 tensors to batch * max_len * vocab * 4 bytes.
DEFAULT_INFERENCE_BATCH = 256

# Floor of a float32 probability before its log: the smallest normal float32,
# so log-probabilities are exact unless the softmax underflowed (then -87.3).
_MIN_PROBABILITY = float(np.finfo(np.float32).tiny)


@contextlib.contextmanager
def dtype_policy_scope(mixed_precision: str) -> Iterator[None]:
    """Set the global Keras dtype policy for `mixed_precision` while layers are built, then restore it.

    Each layer stores its policy in its config, so a loaded model keeps its
    precision without the global policy being set again.
    """
    if mixed_precision not in DTYPE_POLICIES:
        raise ValueError(
            f"unknown mixed_precision {mixed_precision!r}. Expected one of: {', '.join(DTYPE_POLICIES)}."
        )
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(DTYPE_POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


@keras.saving.register_keras_serializable(package=PACKAGE)
class HybridDialogueModel(keras.Model):
    """Encoder, decoder, generator and discriminator of one architecture, saved and loaded together.

    `tokenizer_fingerprint` is the `TextTokenizer.fingerprint` of the
    vocabulary the model was built for. `seed` fixes the sampling, dropout and
    Gumbel noise sequences. Weight initialisation follows Keras's global seed,
    which `io.build_model` sets.
    """

    # Default of the `inference_jit_compile` property: None means "XLA unless
    # a GPU is visible".
    _inference_jit_compile: bool | None = None

    # Largest chunk that runs XLA-compiled, while larger chunks run as plain
    # graphs. On 2 CPU cores (`cpu` preset) XLA used half the CPU time of a
    # plain graph for one message, but it runs on one thread, so at 16 rows
    # and more the plain graph on both cores finished sooner (benchmarks/BENCHMARKS.md).
    inference_xla_max_rows = 4

    def __init__(
        self,
        architecture: Architecture | dict[str, Any],
        tokenizer_fingerprint: str,
        seed: int | None = 0,
        mixed_precision: str = "none",
        gumbel_temperature: float = 1.0,
        response_inventory: list[list[int]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(architecture, dict):
            architecture = Architecture.model_validate(architecture)
        self.architecture = architecture
        self.tokenizer_fingerprint = str(tokenizer_fingerprint)
        self.seed = seed
        self.mixed_precision = mixed_precision

        # Distinct seeds per random layer, so their noise is not correlated.
        seeds = [None] * 4 if seed is None else [seed, seed + 1, seed + 2, seed + 3]
        with dtype_policy_scope(mixed_precision):
            self.encoder = build_encoder(architecture, seed=seeds[0])
            self.decoder = build_decoder(architecture)
            self.generator = build_generator(architecture, seed=seeds[1])
            self.discriminator = build_discriminator(architecture, seed=seeds[2])

        # float32 whatever the policy: the log of small probabilities and the
        # division by a low temperature overflow or underflow in 16 bits.
        self.gumbel = GumbelSoftmax(gumbel_temperature, seed=seeds[3], dtype="float32", name="gumbel")
        self.gumbel.build()
        self.set_response_inventory(response_inventory)
        self.built = True

    # --- training-time building blocks (tensors in, tensors out, differentiable) ---

    def call(self, input_ids: Any, training: bool | None = None) -> dict[str, Any]:
        """Run every part once: the message's latent code, its reconstruction, a response and its score."""
        z_mean, z_log_var, z = self.encoder(input_ids, training=training)
        reconstruction = self.decoder(z, training=training)  # (batch, L, vocab)
        response = self.generator(z, training=training)  # (batch, L, vocab)
        quality = self.discriminator(self.gumbel(response, training=training), training=training)
        return {
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "reconstruction": reconstruction,
            "response": response,
            "quality": quality,  # (batch, 1)
        }

    def encode(self, input_ids: Any, training: bool = False) -> tuple[Any, Any, Any]:
        """Return (z_mean, z_log_var, z), each (batch, latent_dim), for ids (batch, max_len)."""
        z_mean, z_log_var, z = self.encoder(input_ids, training=training)
        return z_mean, z_log_var, z

    def generate(self, z: Any, training: bool = False) -> Any:
        """Return response probabilities (batch, max_len, vocab) for latent codes (batch, latent_dim)."""
        return self.generator(z, training=training)

    def sample_distributions(self, z: Any, training: bool = True) -> Any:
        """Return Gumbel-softmax samples (batch, max_len, vocab) of the generator's output, for the discriminator."""
        return self.gumbel(self.generator(z, training=training), training=training)

    def set_response_inventory(self, responses: Any) -> None:
        """Make `respond` pick its responses from `responses`, or generate them freely when None or empty.

        `responses` is token ids, one response per row ([BOS] words [EOS], then
        optional [PAD]), as an array (C, max_len) or a list of lists. Raises
        ValueError naming the first invalid row. The inventory is saved with
        the model (its config) and is not a weight, so parameter counts do
        not change.
        """
        inventory = None
        if responses is not None and len(responses):
            inventory = _inventory_array(responses, self.architecture.max_len, self.architecture.vocab_size)
        # Out of Keras's attribute tracking, like the compiled functions; a new
        # inventory needs new compiled functions.
        self.__dict__["_response_inventory"] = inventory
        self.__dict__.pop("_inference_functions", None)

    @property
    def response_inventory(self) -> np.ndarray | None:
        """The (C, max_len) int32 responses `respond` picks from, or None when it generates freely."""
        return self.__dict__.get("_response_inventory")

    def set_gumbel_temperature(self, value: float) -> None:
        """Set the Gumbel-softmax temperature (positive) for the following steps."""
        self.gumbel.set_temperature(value)

    def reconstruct(self, input_ids: Any, training: bool = False) -> Any:
        """Return probabilities (batch, max_len, vocab) of the message rebuilt from its latent code.

        Decodes z_mean at inference and the sampled z when training.
        """
        z_mean, _, z = self.encoder(input_ids, training=training)
        return self.decoder(z if training else z_mean, training=training)

    def score(self, response: Any, training: bool = False) -> Any:
        """Return the authenticity score (batch,) float32 in [0, 1] of responses.

        `response` is token ids (batch, max_len), scored as one-hot rows, or
        distributions (batch, max_len, vocab). Compiled: the first call per
        input dtype and `training` value traces a graph. Differentiable with
        respect to float inputs.
        """
        return self._compiled_score(response, training=training)

    # --- inference (NumPy in, NumPy out, deterministic) ---

    def respond(
        self, input_ids: Any, batch_size: int = DEFAULT_INFERENCE_BATCH, decoding: str | None = None
    ) -> dict[str, np.ndarray]:
        """Generate a response, a reconstruction and a quality score for each customer message.

        `input_ids` is (batch, max_len) token ids. Returns `response_ids` and
        `reconstructed_ids`, (batch, max_len) int32 with [PAD] after the first
        [EOS], and `quality`, (batch,) float32: the score of the returned
        response. The generator's distributions for z_mean become a response
        by `decoding`: "inventory" picks the inventory response they favour
        (`decoding.pick_from_inventory`), "free" takes a length and then the
        most likely word per step (`decoding.decode_ids`). The default is
        "inventory" when the model has one. The same input gives the same output.
        """
        input_ids = self._check_ids(input_ids, "input_ids")
        if decoding is None:
            decoding = "inventory" if self.response_inventory is not None else "free"
        if decoding not in ("inventory", "free"):
            raise ValueError(f"unknown decoding {decoding!r}: expected 'inventory', 'free' or None (the default)")
        if decoding == "inventory" and self.response_inventory is None:
            raise ValueError(
                "decoding 'inventory' needs a response inventory, and this model has none: "
                "use decoding 'free', or set one with set_response_inventory"
            )
        chunks = self._run_in_chunks(f"respond_{decoding}", [input_ids], batch_size)
        return {
            key: _concatenate([chunk[key] for chunk in chunks], key, self.architecture.max_len)
            for key in ("response_ids", "reconstructed_ids", "quality")
        }

    def response_log_prob(
        self, input_ids: Any, response_ids: Any, batch_size: int = DEFAULT_INFERENCE_BATCH
    ) -> np.ndarray:
        """Return the log-probability (batch,) float32 of each response under the generator.

        Sums log p(response token at step t | z_mean of the message) over the
        non-[PAD] steps of `response_ids`, [BOS] and [EOS] included. Both
        arguments are (batch, max_len) token ids. A probability that
        underflows float32 counts as log(1.2e-38) = -87.3.
        """
        input_ids = self._check_ids(input_ids, "input_ids")
        response_ids = self._check_ids(response_ids, "response_ids")
        if len(input_ids) != len(response_ids):
            raise ValueError(
                f"input_ids has {len(input_ids)} rows but response_ids has {len(response_ids)}. "
                "Pass one response per message."
            )
        parts = self._run_in_chunks("log_prob", [input_ids, response_ids], batch_size)
        return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)

    @property
    def inference_jit_compile(self) -> bool:
        """Whether `respond` and `response_log_prob` run XLA-compiled.

        Only chunks of up to `inference_xla_max_rows` rows use XLA. The
        default is True on CPU-only machines, where XLA halved the `cpu`
        preset's single-message CPU time (benchmarks/BENCHMARKS.md) but
        compiles for several seconds per new batch shape. Set it to False for
        short-lived uses such as tests, where compilation would dominate. With
        a GPU the default is False, because Keras 3.15 runs LSTMs there as
        cuDNN ops, which XLA cannot compile.
        """
        if self._inference_jit_compile is None:
            # NOTE: the GPU branch has not been run on a GPU machine.
            return not tf.config.list_physical_devices("GPU")
        return self._inference_jit_compile

    @inference_jit_compile.setter
    def inference_jit_compile(self, enabled: bool) -> None:
        self.__dict__["_inference_jit_compile"] = bool(enabled)

    # --- serialisation ---

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "architecture": self.architecture.to_dict(),
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "seed": self.seed,
            "mixed_precision": self.mixed_precision,
            "gumbel_temperature": self.gumbel.initial_temperature,
            # Rows without their [PAD] tail, which keeps config.json small.
            "response_inventory": None
            if self.response_inventory is None
            else [[int(token) for token in row if token != PAD_ID] for row in self.response_inventory],
        }

    # --- helpers ---

    def _score_tensor(self, response: Any, training: bool = False) -> Any:
        response = ops.convert_to_tensor(response)
        if "int" in str(response.dtype):
            response = ops.one_hot(response, self.architecture.vocab_size, dtype="float32")  # (batch, L, vocab)
        return ops.squeeze(self.discriminator(response, training=training), axis=-1)  # (batch,)

    def _respond_tensor(self, input_ids: tf.Tensor, inventory: bool = False) -> dict[str, tf.Tensor]:
        z_mean = self._mean_encoder(input_ids, training=False)
        reconstructed = decode_ids(self.decoder(z_mean, training=False))
        distributions = self.generator(z_mean, training=False)
        if inventory:
            candidates = ops.convert_to_tensor(self.response_inventory)
            response = ops.take(candidates, pick_from_inventory(distributions, candidates), axis=0)
        else:
            response = decode_ids(distributions)
        quality = self._score_tensor(response)
        return {"response_ids": response, "reconstructed_ids": reconstructed, "quality": quality}

    def _log_prob_tensor(self, input_ids: tf.Tensor, response_ids: tf.Tensor) -> tf.Tensor:
        z_mean = self._mean_encoder(input_ids, training=False)
        probabilities = self.generator(z_mean, training=False)  # (batch, L, vocab) float32
        token_probabilities = ops.take_along_axis(probabilities, response_ids[..., None], axis=-1)[..., 0]
        log_probabilities = ops.log(ops.maximum(token_probabilities, _MIN_PROBABILITY))  # (batch, L)
        mask = ops.cast(ops.not_equal(response_ids, PAD_ID), "float32")
        return ops.sum(log_probabilities * mask, axis=-1)  # (batch,)

    @functools.cached_property
    def _mean_encoder(self) -> keras.Model:
        """The encoder's layers up to z_mean, sharing their weights.

        Inference uses it instead of the whole encoder, whose sampling layer
        draws from the seed generator at every call. Otherwise each `respond`
        would move the random state that training uses next, and the number of
        sample responses logged per epoch would change the trained weights.
        """
        return keras.Model(self.encoder.input, self.encoder.get_layer("z_mean").output, name="mean_encoder")

    # The compiled functions live in the instance __dict__, out of Keras's
    # attribute tracking, so saving ignores them.
    @functools.cached_property
    def _compiled_score(self) -> Any:
        return tf.function(self._score_tensor, reduce_retracing=True)

    def _inference_function(self, kind: str, xla: bool) -> Any:
        """Return the compiled "respond_inventory", "respond_free" or "log_prob" function, creating it on first use."""
        functions = self.__dict__.setdefault("_inference_functions", {})
        if (kind, xla) not in functions:
            spec = tf.TensorSpec((None, self.architecture.max_len), tf.int32)
            if kind.startswith("respond_"):
                python_function = functools.partial(self._respond_tensor, inventory=kind == "respond_inventory")
                signature = [spec]
            else:
                python_function, signature = self._log_prob_tensor, [spec, spec]
            functions[(kind, xla)] = tf.function(python_function, input_signature=signature, jit_compile=xla)
        return functions[(kind, xla)]

    def _run_in_chunks(self, kind: str, arrays: list[np.ndarray], batch_size: int) -> list[Any]:
        """Call the `kind` function on chunks of at most `batch_size` rows and return NumPy outputs per chunk.

        Chunks of up to `inference_xla_max_rows` rows run XLA-compiled when
        `inference_jit_compile` is set. XLA compiles once per input shape, so
        they are padded with [PAD] rows to a power-of-two row count, which
        bounds the compilations to a handful. Padding rows are removed from
        the outputs.
        """
        _check_batch_size(batch_size)
        outputs = []
        for start in range(0, len(arrays[0]), batch_size):
            chunk = [array[start : start + batch_size] for array in arrays]
            rows = len(chunk[0])
            xla = self.inference_jit_compile and rows <= self.inference_xla_max_rows
            if xla:
                bucket = 1 << (rows - 1).bit_length()
                chunk = [np.pad(part, ((0, bucket - rows), (0, 0)), constant_values=PAD_ID) for part in chunk]

            result = self._inference_function(kind, xla)(*chunk)
            if isinstance(result, dict):
                outputs.append({key: value.numpy()[:rows] for key, value in result.items()})
            else:
                outputs.append(result.numpy()[:rows])
        return outputs

    def _check_ids(self, ids: Any, name: str) -> np.ndarray:
        """Return `ids` as int32 (batch, max_len), or raise ValueError naming what is wrong."""
        array = np.asarray(ids)
        max_len, vocab_size = self.architecture.max_len, self.architecture.vocab_size
        if array.ndim != 2 or array.shape[1] != max_len:
            raise ValueError(
                f"{name} must have shape (batch, {max_len}), got {array.shape}. "
                f"Encode texts with TextTokenizer.encode_batch(texts, max_len={max_len})."
            )
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{name} must contain integer token ids, got dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= vocab_size):
            raise ValueError(
                f"{name} contains token ids outside [0, {vocab_size}) "
                f"(min {array.min()}, max {array.max()}). Encode the texts with the tokenizer the model was built for."
            )
        return array.astype(np.int32, copy=False)


def _inventory_array(responses: Any, max_len: int, vocab_size: int) -> np.ndarray:
    """Return `responses` as int32 (C, max_len) rows [BOS] words [EOS] [PAD]..., or raise ValueError."""
    if isinstance(responses, (str, bytes)) or not hasattr(responses, "__len__"):
        raise ValueError(
            f"the response inventory must be a list or array of token id rows, got {type(responses).__name__}"
        )
    inventory = np.full((len(responses), max_len), PAD_ID, dtype=np.int32)
    for row, ids in enumerate(responses):
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and (ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer))):
            raise ValueError(f"response inventory row {row} must be a 1-D sequence of integer token ids, got {ids!r}")

        # Drop trailing [PAD]. None may remain inside the response.
        length = int(np.flatnonzero(ids != PAD_ID)[-1]) + 1 if np.any(ids != PAD_ID) else 0
        tokens = ids[:length]
        problem = None
        if length < 2 or length > max_len:
            problem = f"has {length} tokens before its [PAD] tail, expected 2 to {max_len}"
        elif tokens[0] != BOS_ID or tokens[-1] != EOS_ID or np.count_nonzero(tokens == EOS_ID) != 1:
            problem = "must start with [BOS] and end with its only [EOS]"
        elif np.any(tokens == PAD_ID) or tokens.min() < 0 or tokens.max() >= vocab_size:
            problem = f"contains [PAD] or ids outside [0, {vocab_size})"
        if problem:
            raise ValueError(
                f"response inventory row {row} {problem}: {ids.tolist()}. Build the inventory with "
                "models.inventory.build_response_inventory from rows the model's tokenizer encoded."
            )
        inventory[row, :length] = tokens
    return inventory


def _check_batch_size(batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return batch_size


def _concatenate(parts: list[np.ndarray], key: str, max_len: int) -> np.ndarray:
    """Join per-chunk outputs. An empty batch gives empty arrays of the right shape and dtype."""
    if parts:
        return np.concatenate(parts)
    if key == "quality":
        return np.zeros((0,), dtype=np.float32)
    return np.zeros((0, max_len), dtype=np.int32)
