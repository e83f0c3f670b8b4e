"""Entry point of the registered model, logged as MLflow "model from code".

MLflow copies this file into the logged model and runs it when the model is
loaded, so the model object is built from the packaged source instead of
being unpickled. Nothing in the project imports it.
"""

from mlflow.models import set_model

from hybrid_dialogue.registry.pyfunc import HybridDialoguePyfunc

set_model(HybridDialoguePyfunc())
