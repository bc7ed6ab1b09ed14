#!/usr/bin/env bash
# bench/run.sh: run every benchmark under bench/ (make bench).
set -euo pipefail
cd "$(dirname "$0")"
status=0
for b in ./sql_api.sh ./fetch_many.sh ./scheduler.sh ./relay.sh; do
	echo "=== $b ==="
	"$b" || status=1
done
exit $status
