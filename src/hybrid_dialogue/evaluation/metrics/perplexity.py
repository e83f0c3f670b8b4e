"""Perplexity from per-sequence log-likelihoods and token counts, as an offline `evaluate` metric module."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Corpus perplexity: exp(-sum(log_likelihoods) / sum(token_counts)), the
exponential of the mean negative log-likelihood per token, where each
sequence contributes its summed natural-log likelihood and the number of
tokens that sum covers. The model computes the likelihoods. This module only
aggregates them."""

_INPUTS = """
Args:
    log_likelihoods: summed natural-log probability of each sequence (<= 0).
    token_counts: number of tokens in each sequence's sum (> 0).
Returns:
    perplexity: >= 1.
    mean_nll: mean negative log-likelihood per token, in nats.
"""


class Perplexity(evaluate.Metric):
    """Token-level perplexity of a set of sequences."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"log_likelihoods": datasets.Value("float64"), "token_counts": datasets.Value("int64")}
            ),
        )

    def _compute(self, log_likelihoods, token_counts):
        log_likelihoods = np.asarray(log_likelihoods, dtype=np.float64)
        token_counts = np.asarray(token_counts, dtype=np.int64)
        if np.any(token_counts <= 0):
            raise ValueError(f"every token count must be positive, got minimum {token_counts.min()}")
        if not np.all(np.isfinite(log_likelihoods)) or np.any(log_likelihoods > 1e-6):
            raise ValueError(
                "log-likelihoods must be finite and <= 0 (natural-log probabilities), "
                f"got range [{log_likelihoods.min()}, {log_likelihoods.max()}]"
            )
        mean_nll = float(-log_likelihoods.sum() / token_counts.sum())
        return {"perplexity": float(np.exp(mean_nll)), "mean_nll": mean_nll}
