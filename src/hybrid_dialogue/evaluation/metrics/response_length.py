"""Mean length of predictions against references, as an offline `evaluate` metric module."""

import datasets
import evaluate
import numpy as np
import sacrebleu

_DESCRIPTION = """Mean number of tokens per prediction and per reference, and their ratio.
Texts are split into tokens by a sacrebleu tokenizer (13a by default, the
same as BLEU). A ratio under 1 means the predictions are shorter than the
references on average."""

_INPUTS = """
Args:
    predictions: list of generated texts.
    references: one reference text per prediction.
    tokenize: sacrebleu tokenizer name, "13a" by default.
Returns:
    prediction_length, reference_length: mean tokens per text.
    length_ratio: prediction_length / reference_length (0.0 when the references are all empty).
"""


class ResponseLength(evaluate.Metric):
    """Mean prediction and reference lengths in tokens."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
        )

    def _compute(self, predictions, references, tokenize="13a"):
        tokenizer = sacrebleu.BLEU(tokenize=tokenize).tokenizer
        prediction_length = float(np.mean([len(tokenizer(text).split()) for text in predictions]))
        reference_length = float(np.mean([len(tokenizer(text).split()) for text in references]))
        return {
            "prediction_length": prediction_length,
            "reference_length": reference_length,
            "length_ratio": prediction_length / reference_length if reference_length else 0.0,
        }
