"""The project's Hugging Face `evaluate` metric modules, one file per metric.

`evaluate.load("bleu")` fetches its script from the Hugging Face Hub, so it
fails with no network. These modules are loaded by file path instead (see
`hybrid_dialogue.evaluation.text_metrics.load_metric`). Each one imports only
installed libraries and never a sibling file, because `evaluate` copies the
script alone into its module cache and would try to fetch a relative import.
"""
