"""The project's tokenizer as a SHAP text masker, and the model as plain functions from texts to scores.

shap's `TeacherForcing` wrapper accepts only Hugging Face Transformers and
PyTorch-style models, so the Keras model is wrapped here as functions from a
list of strings to one score per string. Each function encodes the texts
with the project's tokenizer, calls the model in fixed-size batches and
returns NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_dialogue.data.tokenizer import UNK, TextTokenizer

# Masked tokens become [UNK], one per token, so the model input keeps the
# message's length and word positions and only the masked words are unknown.
MASK_TOKEN = UNK


class ShapTokenizer:
    """The subset of the Hugging Face tokenizer call that `shap.maskers.Text` uses.

    `tokenizer(text, return_offsets_mapping=True)` returns `input_ids` and
    `offset_mapping` (character spans) of the tokens of `text`, without
    [BOS] or [EOS], exactly as `TextTokenizer.encode_batch` splits it. It
    reads the same `tokenizer.json`.
    """

    def __init__(self, tokenizer_path: str | Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))

    def __call__(self, text: str, return_offsets_mapping: bool = False, **_: Any) -> dict[str, list]:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        output: dict[str, list] = {"input_ids": list(encoding.ids)}
        if return_offsets_mapping:
            output["offset_mapping"] = [tuple(span) for span in encoding.offsets]
        return output


def build_text_masker(tokenizer_path: str | Path) -> Any:
    """Return a `shap.maskers.Text` whose tokens are the project tokenizer's, masking with [UNK]."""
    import shap

    return shap.maskers.Text(ShapTokenizer(tokenizer_path), mask_token=MASK_TOKEN, collapse_mask_token=False)


class ResponseLogProbFunction:
    """f(messages) -> (n,) log-probability of one fixed response under the generator, given each message.

    `response_ids` (max_len,) is the response the model generated for the
    unmasked message. It stays fixed while SHAP masks the message, so the
    scores measure how much each message token supports that response.
    """

    def __init__(self, model: Any, tokenizer: TextTokenizer, response_ids: np.ndarray, batch_size: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.response_ids = np.asarray(response_ids, dtype=np.int32)
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        max_len = self.model.architecture.max_len
        input_ids, _ = self.tokenizer.encode_batch([str(text) for text in texts], max_len)
        responses = np.broadcast_to(self.response_ids, input_ids.shape)
        return _in_fixed_batches(
            lambda ids, response: self.model.response_log_prob(ids, response, batch_size=self.batch_size),
            [input_ids, responses],
            self.batch_size,
        )


class QualityFunction:
    """f(responses) -> (n,) discriminator quality score in [0, 1] of each response text."""

    def __init__(self, model: Any, tokenizer: TextTokenizer, batch_size: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        response_ids, _ = self.tokenizer.encode_batch([str(text) for text in texts], self.model.architecture.max_len)
        return _in_fixed_batches(lambda ids: self.model.score(ids), [response_ids], self.batch_size)


def _in_fixed_batches(function: Callable[..., Any], arrays: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Call `function` on chunks of exactly `batch_size` rows and return the (rows,) float64 results.

    The last chunk is padded by repeating its last row, so every call has
    the same shape and a compiled model function is traced once.
    """
    rows = len(arrays[0])
    outputs = []
    for start in range(0, rows, batch_size):
        chunk = [array[start : start + batch_size] for array in arrays]
        size = len(chunk[0])
        if size < batch_size:
            chunk = [np.concatenate([part, np.repeat(part[-1:], batch_size - size, axis=0)]) for part in chunk]
        outputs.append(np.asarray(function(*chunk), dtype=np.float64)[:size])
    return np.concatenate(outputs) if outputs else np.zeros((0,), dtype=np.float64)
