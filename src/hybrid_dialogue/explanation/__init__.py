"""SHAP explanations of the model: the tokenizer masker and model functions (`functions`), attributions and
their aggregation (`attribution`), figures and pages (`plots`) and the `shap_analysis` stage (`stage`)."""
