"""Corpus BLEU computed by sacrebleu, as an offline `evaluate` metric module."""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus-level BLEU (0 to 100) from `sacrebleu.corpus_bleu`, with the
default 13a tokenizer unless `tokenize` names another."""

_CITATION = """Post, M. (2018). A Call for Clarity in Reporting BLEU Scores. WMT 2018."""

_INPUTS = """
Args:
    predictions: list of generated texts.
    references: one reference text per prediction, or a list of references
        per prediction (the same number for every prediction).
    tokenize: sacrebleu tokenizer name, "13a" by default.
    lowercase: compare lowercased texts, False by default.
Returns:
    bleu: corpus BLEU, 0 to 100.
    precisions: the 1- to 4-gram precisions, 0 to 100.
    brevity_penalty, length_ratio, hypothesis_length, reference_length.
"""


class Bleu(evaluate.Metric):
    """Corpus BLEU through `sacrebleu.corpus_bleu`."""

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
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False):
        references = [[reference] if isinstance(reference, str) else list(reference) for reference in references]
        counts = {len(group) for group in references}
        if len(counts) != 1:
            raise ValueError(
                f"every prediction needs the same number of references for sacrebleu, got counts {sorted(counts)}"
            )

        # sacrebleu takes reference streams: stream k holds the k-th reference of every prediction.
        streams = [list(stream) for stream in zip(*references)]
        result = sacrebleu.corpus_bleu(predictions, streams, tokenize=tokenize, lowercase=lowercase)
        return {
            "bleu": float(result.score),
            "precisions": [float(value) for value in result.precisions],
            "brevity_penalty": float(result.bp),
            "length_ratio": float(result.ratio),
            "hypothesis_length": int(result.sys_len),
            "reference_length": int(result.ref_len),
        }
