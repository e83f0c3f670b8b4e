"""ROUGE-1, ROUGE-2 and ROUGE-L F1 computed by rouge-score, as an offline `evaluate` metric module."""

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

_DESCRIPTION = """Mean ROUGE-1, ROUGE-2 and ROUGE-L F1 (0 to 1) over prediction-reference
pairs, from `rouge_score.rouge_scorer.RougeScorer`. Its default tokenizer
lowercases and splits on non-alphanumeric characters. Stemming is off unless
`use_stemmer` is set."""

_CITATION = """Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries."""

_INPUTS = """
Args:
    predictions: list of generated texts.
    references: one reference text per prediction, or a list of references
        per prediction (a pair scores against its best-matching reference).
    use_stemmer: apply the Porter stemmer, False by default.
Returns:
    rouge1, rouge2, rougeL: mean F1 over the pairs, 0 to 1.
"""


class Rouge(evaluate.Metric):
    """Mean ROUGE F1 through `rouge_score`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("string"), "references": datasets.List(datasets.Value("string"))}
                ),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            reference_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
        )

    def _compute(self, predictions, references, use_stemmer=False):
        scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)
        f1 = {rouge_type: [] for rouge_type in ROUGE_TYPES}
        for prediction, reference in zip(predictions, references):
            if isinstance(reference, str):
                scores = scorer.score(reference, prediction)
            else:
                # score_multi keeps the best-matching reference by F1.
                scores = scorer.score_multi(list(reference), prediction)
            for rouge_type in ROUGE_TYPES:
                f1[rouge_type].append(scores[rouge_type].fmeasure)
        return {rouge_type: float(np.mean(values)) for rouge_type, values in f1.items()}
