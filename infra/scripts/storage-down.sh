#!/usr/bin/env bash
# Stop the moto server that storage-up.sh started. Its objects are lost.
#
# Environment: S3_STATE_DIR (.s3), the folder that contains moto.pid.
set -euo pipefail

state_dir=${S3_STATE_DIR:-.s3}
pid_file="${state_dir}/moto.pid"

if [[ ! -f $pid_file ]]; then
  echo "No moto server recorded in ${pid_file}: nothing to stop."
  exit 0
fi

pid=$(cat "$pid_file")

# Signal the process only if it is still the moto server that was started,
# not an unrelated process that reused the pid.
if kill -0 "$pid" 2>/dev/null && ps -p "$pid" -o args= | grep -q moto_server; then
  kill "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "Error: moto server (pid ${pid}) still running 10 s after SIGTERM; stop it with: kill -9 ${pid}" >&2
    exit 1
  fi
  echo "Stopped moto server (pid ${pid})."
else
  echo "moto server (pid ${pid}) was not running; removing the stale ${pid_file}."
fi
rm -f "$pid_file"
