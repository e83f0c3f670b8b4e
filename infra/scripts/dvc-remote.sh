#!/usr/bin/env bash
# Make s3://$HYBRID_DIALOGUE_BUCKET/dvc the default DVC remote of the
# repository in the working directory.
#
# The remote URL goes to .dvc/config (commit it). The endpoint goes to
# .dvc/config.local, which git ignores, because each machine may reach the
# store at a different address. Credentials are never written: DVC reads
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment.
#
# Environment: HYBRID_DIALOGUE_BUCKET (required), MLFLOW_S3_ENDPOINT_URL or
# AWS_ENDPOINT_URL (unset means AWS S3), DVC_REMOTE (storage), DVC (dvc).
set -euo pipefail

bucket=${HYBRID_DIALOGUE_BUCKET:?set HYBRID_DIALOGUE_BUCKET to the bucket name, for example hybrid-dialogue}
endpoint=${MLFLOW_S3_ENDPOINT_URL:-${AWS_ENDPOINT_URL:-}}
remote=${DVC_REMOTE:-storage}
dvc=${DVC:-dvc}

"$dvc" remote add --force --default "$remote" "s3://${bucket}/dvc"

if [[ -n $endpoint ]]; then
  "$dvc" remote modify --local "$remote" endpointurl "$endpoint"
  echo "DVC remote '${remote}': s3://${bucket}/dvc on ${endpoint} (endpoint in .dvc/config.local)."
else
  "$dvc" remote modify --local --unset "$remote" endpointurl
  echo "DVC remote '${remote}': s3://${bucket}/dvc on AWS S3."
fi
echo "Push the data with: dvc push"
