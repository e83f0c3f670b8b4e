"""MLflow Model Registry workflow: package the model as pyfunc, register it, promote it."""

MODEL_NAME = "hybrid-dialogue"
CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"
CHAMPION_URI = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"
