"""Baselines scored beside the model: without them a generation metric means little.

- Retrieval: the agent response of the training customer message nearest to
  the test message by TF-IDF cosine similarity.
- Constant: the most frequent agent response of the training split, for every message.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

logger = logging.getLogger(__name__)


class RetrievalBaseline:
    """Nearest-neighbour retrieval of training responses by TF-IDF cosine similarity of customer messages."""

    # Similarity cells computed per batch of queries: 32M float32 cells are 128 MiB.
    MAX_BATCH_CELLS = 32_000_000

    def __init__(self, messages: Sequence[str], responses: Sequence[str]) -> None:
        if len(messages) != len(responses):
            raise ValueError(f"got {len(messages)} messages but {len(responses)} responses")
        if not messages:
            raise ValueError("the retrieval baseline needs at least one training pair")

        # Identical messages have identical vectors, so each distinct message is
        # indexed once with the response of its first occurrence in the split.
        pairs = pd.DataFrame({"message": list(messages), "response": list(responses)})
        pairs = pairs.drop_duplicates("message", keep="first")
        self._responses = pairs["response"].tolist()

        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
        # Rows are L2-normalised, so a dot product is the cosine similarity.
        self._index = self._vectorizer.fit_transform(pairs["message"].tolist())  # sparse (messages, features)
        logger.info("Retrieval baseline indexes %d distinct training messages", len(self._responses))

    def respond(self, messages: Sequence[str]) -> list[str]:
        """Return the response of the most similar indexed message for each of `messages`.

        Ties go to the message seen first in the training split, so results
        do not depend on the search order.
        """
        if not messages:
            return []
        queries = self._vectorizer.transform(list(messages))
        batch_size = max(1, self.MAX_BATCH_CELLS // self._index.shape[0])
        nearest = []
        for start in range(0, queries.shape[0], batch_size):
            similarity = linear_kernel(queries[start : start + batch_size], self._index)  # dense (batch, messages)
            nearest.append(similarity.argmax(axis=1))  # argmax returns the first of equal maxima
        return [self._responses[index] for index in np.concatenate(nearest)]


class ConstantBaseline:
    """The most frequent training response, returned for every message."""

    def __init__(self, responses: Sequence[str]) -> None:
        if not responses:
            raise ValueError("the constant baseline needs at least one training response")
        # Counter.most_common orders equal counts by first occurrence, so ties resolve the same way every run.
        self.response, self.count = Counter(responses).most_common(1)[0]
        logger.info(
            "Constant baseline returns %r (%d of %d training responses)", self.response, self.count, len(responses)
        )

    def respond(self, messages: Sequence[str]) -> list[str]:
        return [self.response] * len(messages)
