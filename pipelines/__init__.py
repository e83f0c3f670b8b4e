"""The Kubeflow pipeline DAG (`pipeline.py`) and its committed compiled form."""
