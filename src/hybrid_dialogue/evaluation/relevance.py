"""Response relevance: does a generated response fit the intent of the customer's message?

An intent classifier (TF-IDF and logistic regression) learns the intent of
reference agent responses of the training split. Relevance of a system is
the share of its responses whose predicted intent equals the intent of the
customer message they reply to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)


class RelevanceUnavailable(ValueError):
    """A corpus that cannot support an intent classifier. The message gives the reason."""


class IntentClassifier:
    """TF-IDF (word 1- and 2-grams) and multinomial logistic regression over agent responses."""

    def __init__(self, seed: int = 0) -> None:
        # min_df=2 drops n-grams of a single distinct response (names, numbers),
        # which cannot generalise. tol=1e-3 instead of 1e-4: on the default
        # corpus (48K distinct responses, 18 intents) it stopped after 23 lbfgs
        # iterations instead of 90, at the same test accuracy (0.511 and 0.508).
        self._pipeline = Pipeline(
            [
                ("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)),
                ("classifier", LogisticRegression(max_iter=1000, tol=1e-3, random_state=seed)),
            ]
        )

    def fit(self, responses: Sequence[str], intents: Sequence[str]) -> IntentClassifier:
        """Fit on (response, intent) pairs, leaving out pairs with an empty intent.

        Raises `RelevanceUnavailable` when fewer than two intents remain.
        """
        pairs = pd.DataFrame({"response": list(responses), "intent": list(intents)})
        pairs = pairs[pairs["intent"].fillna("") != ""]
        intent_count = pairs["intent"].nunique()
        if intent_count < 2:
            raise RelevanceUnavailable(
                f"the training split has {intent_count} distinct intent(s) among {len(pairs)} labelled pairs, but "
                "an intent classifier needs at least 2"
            )

        # Templated corpora repeat responses many times. Fitting each distinct
        # (response, intent) pair once, weighted by its count, gives the same
        # logistic-regression objective at a fraction of the cost. Only the
        # TF-IDF document frequencies differ: they count distinct responses.
        counts = pairs.groupby(["response", "intent"], sort=True).size().reset_index(name="count")
        try:
            self._pipeline.fit(
                counts["response"].tolist(),
                counts["intent"].tolist(),
                classifier__sample_weight=counts["count"].to_numpy(dtype=np.float64),
            )
        except ValueError as error:
            # TfidfVectorizer raises when no n-gram occurs in two distinct responses.
            raise RelevanceUnavailable(
                f"the intent classifier cannot be fitted on {len(counts)} distinct responses: {error}"
            ) from error
        logger.info(
            "Intent classifier fitted on %d distinct responses (%d pairs, %d intents)",
            len(counts),
            len(pairs),
            intent_count,
        )
        return self

    def predict(self, responses: Sequence[str]) -> np.ndarray:
        return self._pipeline.predict(list(responses))


def relevance(classifier: IntentClassifier, responses: Sequence[str], intents: Sequence[str]) -> float:
    """Return the share of `responses` whose predicted intent equals the customer's intent.

    Pairs with an empty intent are left out. Raises `RelevanceUnavailable` when none remain.
    """
    intents = pd.Series(list(intents), dtype=object).fillna("").astype(str).to_numpy()
    labelled = intents != ""
    if not labelled.any():
        raise RelevanceUnavailable("no evaluated pair has an intent")
    predicted = classifier.predict([response for response, keep in zip(responses, labelled) if keep])
    return float(np.mean(predicted == intents[labelled]))
