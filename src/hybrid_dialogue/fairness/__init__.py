"""Bias measurement and mitigation: counterfactual swapping (`counterfactual`), the probe set (`probes`),
the measures (`measure`, `audit`), counterfactual fine-tuning (`mitigate`), the report (`report`) and the
`bias_mitigation` stage (`stage`, configured by `config`)."""
