"""Distinct-1 and distinct-2 (lexical diversity of generated texts), as an offline `evaluate` metric module."""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Distinct-n: the number of unique n-grams divided by the total number of
n-grams over all predictions together, for n = 1 and 2. Texts are split
into tokens by a sacrebleu tokenizer (13a by default, the same as BLEU).
A value is 0.0 when the predictions hold no n-gram of that order."""

_CITATION = """Li, J., Galley, M., Brockett, C., Gao, J. and Dolan, B. (2016). A
Diversity-Promoting Objective Function for Neural Conversation Models. NAACL."""

_INPUTS = """
Args:
    predictions: list of generated texts.
    tokenize: sacrebleu tokenizer name, "13a" by default ("none" splits on spaces only).
Returns:
    distinct_1, distinct_2: 0 to 1.
    unigrams, bigrams: total n-gram counts behind each ratio.
"""


class Distinct(evaluate.Metric):
    """Distinct-1 and distinct-2 over the whole set of predictions."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, tokenize="13a"):
        tokenizer = sacrebleu.BLEU(tokenize=tokenize).tokenizer
        result = {}
        for order, name in ((1, "unigrams"), (2, "bigrams")):
            unique = set()
            total = 0
            for prediction in predictions:
                tokens = tokenizer(prediction).split()
                ngrams = [tuple(tokens[start : start + order]) for start in range(len(tokens) - order + 1)]
                unique.update(ngrams)
                total += len(ngrams)
            result[f"distinct_{order}"] = len(unique) / total if total else 0.0
            result[name] = total
        return result
