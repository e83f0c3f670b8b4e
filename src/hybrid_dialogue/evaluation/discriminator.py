"""How well the model's discriminator separates real test responses from generated ones."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score

# A score at or above this counts as "real" for accuracy. ROC AUC uses no threshold.
REAL_THRESHOLD = 0.5


def discriminator_metrics(real_scores: np.ndarray, generated_scores: np.ndarray) -> dict[str, float]:
    """Return accuracy and ROC AUC of real (label 1) against generated (label 0), and each side's mean score.

    Scores are the discriminator's outputs in [0, 1]. A discriminator that
    cannot separate the two has ROC AUC 0.5.
    """
    real_scores = np.asarray(real_scores, dtype=np.float64).ravel()
    generated_scores = np.asarray(generated_scores, dtype=np.float64).ravel()
    if not len(real_scores) or not len(generated_scores):
        raise ValueError(
            f"need real and generated scores, got {len(real_scores)} real and {len(generated_scores)} generated"
        )

    labels = np.concatenate([np.ones(len(real_scores)), np.zeros(len(generated_scores))])
    scores = np.concatenate([real_scores, generated_scores])
    return {
        "discriminator_accuracy": float(accuracy_score(labels, scores >= REAL_THRESHOLD)),
        "discriminator_roc_auc": float(roc_auc_score(labels, scores)),
        "quality_real": float(real_scores.mean()),
        "quality_generated": float(generated_scores.mean()),
    }
