#!/usr/bin/env bash
# Run an MLflow tracking server in the foreground: SQLite backend store under
# mlflow/, artifacts proxied to s3://$HYBRID_DIALOGUE_BUCKET/mlflow on an
# S3-compatible endpoint (by default the local one of `make storage-up`).
# Stop it with Ctrl-C.
#
# Clients need only MLFLOW_TRACKING_URI: the server reads and writes the
# artifacts for them, so the S3 credentials stay with the server.
#
# Environment: MLFLOW_HOST (127.0.0.1), MLFLOW_PORT (5000), MLFLOW_WORKERS (1),
# MLFLOW_BACKEND_STORE_URI (sqlite:///<repo>/mlflow/server.db),
# HYBRID_DIALOGUE_BUCKET (hybrid-dialogue), MLFLOW_S3_ENDPOINT_URL
# (http://127.0.0.1:9000), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
# (placeholders that moto accepts when unset), MLFLOW (mlflow),
# HYBRID_DIALOGUE_CLI (hybrid-dialogue).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
host=${MLFLOW_HOST:-127.0.0.1}
port=${MLFLOW_PORT:-5000}
workers=${MLFLOW_WORKERS:-1}
backend=${MLFLOW_BACKEND_STORE_URI:-sqlite:///${here}/server.db}
bucket=${HYBRID_DIALOGUE_BUCKET:-hybrid-dialogue}
mlflow=${MLFLOW:-mlflow}
cli=${HYBRID_DIALOGUE_CLI:-hybrid-dialogue}

export MLFLOW_S3_ENDPOINT_URL=${MLFLOW_S3_ENDPOINT_URL:-http://127.0.0.1:9000}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
# MLflow 3.17 starts seven background job workers for GenAI scorer jobs (about
# 240 MB each, measured here), and the pipeline never submits such jobs.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}

# Fail now, with the storage error, rather than on the first artifact upload.
if ! "$cli" storage check --bucket "$bucket" --endpoint-url "$MLFLOW_S3_ENDPOINT_URL"; then
  echo "Error: the artifact store is not usable. Start it with 'make storage-up'." >&2
  exit 1
fi

cat <<EXPORTS
MLflow tracking server on http://${host}:${port} (backend ${backend},
artifacts s3://${bucket}/mlflow on ${MLFLOW_S3_ENDPOINT_URL}). In another shell:
  export MLFLOW_TRACKING_URI=http://${host}:${port}
EXPORTS

exec "$mlflow" server \
  --backend-store-uri "$backend" \
  --artifacts-destination "s3://${bucket}/mlflow" \
  --host "$host" \
  --port "$port" \
  --workers "$workers"
