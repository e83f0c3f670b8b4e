#!/usr/bin/env bash
# Start a local S3-compatible endpoint (moto server) on loopback in the
# background, wait until it accepts connections, and create the project
# bucket on it.
#
# For development and tests only: moto keeps every object in memory, so
# storage-down.sh (or a crash) loses them. It accepts any access key.
#
# Environment: S3_HOST (127.0.0.1), S3_PORT (9000), S3_STATE_DIR (.s3: pid and
# log files), HYBRID_DIALOGUE_BUCKET (hybrid-dialogue), MOTO_SERVER
# (moto_server), HYBRID_DIALOGUE_CLI (hybrid-dialogue), S3_START_TIMEOUT_S (30).
set -euo pipefail

host=${S3_HOST:-127.0.0.1}
port=${S3_PORT:-9000}
state_dir=${S3_STATE_DIR:-.s3}
bucket=${HYBRID_DIALOGUE_BUCKET:-hybrid-dialogue}
moto_server=${MOTO_SERVER:-moto_server}
cli=${HYBRID_DIALOGUE_CLI:-hybrid-dialogue}
timeout_s=${S3_START_TIMEOUT_S:-30}

endpoint="http://${host}:${port}"
pid_file="${state_dir}/moto.pid"
log_file="${state_dir}/moto.log"

port_open() {
  # A TCP connect through bash's /dev/tcp: no curl needed.
  (exec 3<>"/dev/tcp/${host}/${port}") 2>/dev/null
}

mkdir -p "$state_dir"

if [[ -f $pid_file ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "moto server already running (pid $(cat "$pid_file")); using ${endpoint}."
else
  if port_open; then
    echo "Error: ${host}:${port} is already in use by another program: pick a free port with S3_PORT=PORT." >&2
    exit 1
  fi

  "$moto_server" -H "$host" -p "$port" >"$log_file" 2>&1 &
  echo $! >"$pid_file"
  echo "Started moto server (pid $(cat "$pid_file")) on ${endpoint}; log: ${log_file}"

  deadline=$((SECONDS + timeout_s))
  until port_open; do
    if ! kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      echo "Error: moto server exited during start-up; last lines of ${log_file}:" >&2
      tail -n 20 "$log_file" >&2
      rm -f "$pid_file"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "Error: moto server did not accept connections on ${endpoint} within ${timeout_s} s; see ${log_file}." >&2
      exit 1
    fi
    sleep 0.2
  done
fi

# moto accepts any key pair, so placeholders fill in only where none is set.
AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing} \
AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing} \
  "$cli" storage check --create --bucket "$bucket" --endpoint-url "$endpoint"

cat <<EXPORTS

Local S3 endpoint ready. To use it from this shell:
  export MLFLOW_S3_ENDPOINT_URL=${endpoint}
  export HYBRID_DIALOGUE_BUCKET=${bucket}
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
Stop it (and lose its objects) with: make storage-down
EXPORTS
