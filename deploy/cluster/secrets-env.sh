#!/bin/sh
# Entrypoint wrapper of the ClickHouse containers in deploy/compose.cluster.yaml, whose image
# reads its password from the environment only: compose mounts each secret as a file under
# /run/secrets; a file named like an environment variable (CLICKHOUSE_PASSWORD) becomes that
# variable, then the real entrypoint runs. Values are never printed.
# Usage: secrets-env.sh COMMAND [ARGS...]
set -eu
for file in "${SECRETS_ENV_DIR:-/run/secrets}"/*; do
  [ -f "$file" ] || continue
  name=$(basename "$file")
  case "$name" in
    *[!A-Z0-9_]* | [0-9]*) continue ;;   # not a variable name: a certificate, a key...
  esac
  value=$(cat "$file")
  export "$name=$value"
done
exec "$@"
