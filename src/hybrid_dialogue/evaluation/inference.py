"""Run the model once over the evaluated pairs and keep everything the metrics need."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from hybrid_dialogue.data.tokenizer import PAD_ID, TextTokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelOutputs:
    """The model's outputs for N evaluated pairs, row-aligned with them."""

    responses: list[str]  # decoded responses, as `respond` gives them (inventory decoding when the model has one)
    generated_quality: np.ndarray  # (N,) discriminator score of each of those responses
    free_responses: list[str]  # the generator's own text: free decoding of the same distributions
    free_quality: np.ndarray  # (N,) discriminator score of each free response
    reference_quality: np.ndarray  # (N,) discriminator score of each reference response
    reference_log_prob: np.ndarray  # (N,) summed log-probability of each reference under the generator
    reference_tokens: np.ndarray  # (N,) non-[PAD] tokens in each reference, the count that sum covers


def run_model(
    model, tokenizer: TextTokenizer, input_ids: np.ndarray, response_ids: np.ndarray, batch_size: int
) -> ModelOutputs:
    """Generate (as served and freely), score and compute reference likelihoods for (N, max_len) ids.

    `model` is a `HybridDialogueModel`. Every model call takes at most `batch_size` rows.
    """
    started = time.perf_counter()
    generated = model.respond(input_ids, batch_size=batch_size)
    responses = tokenizer.decode_batch(generated["response_ids"])
    free = model.respond(input_ids, batch_size=batch_size, decoding="free")

    reference_quality = np.concatenate(
        [np.asarray(model.score(response_ids[start : start + batch_size])) for start in range(0, len(response_ids), batch_size)]
    )
    # response_log_prob sums over the non-[PAD] steps, [BOS] and [EOS] included.
    reference_log_prob = model.response_log_prob(input_ids, response_ids, batch_size=batch_size)
    reference_tokens = np.count_nonzero(response_ids != PAD_ID, axis=1)

    logger.info("Model outputs for %d pairs in %.1f s", len(input_ids), time.perf_counter() - started)
    return ModelOutputs(
        responses=responses,
        generated_quality=np.asarray(generated["quality"], dtype=np.float64),
        free_responses=tokenizer.decode_batch(free["response_ids"]),
        free_quality=np.asarray(free["quality"], dtype=np.float64),
        reference_quality=reference_quality.astype(np.float64),
        reference_log_prob=np.asarray(reference_log_prob, dtype=np.float64),
        reference_tokens=reference_tokens,
    )
