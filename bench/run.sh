#!/usr/bin/env bash
# bench/run.sh: run every benchmark under bench/ (make bench), one after
# another; each starts what it needs, compares with its baseline in the same
# run and prints its numbers. Exits non-zero when one of them failed.
set -uo pipefail
cd "$(dirname "$0")"
status=0
for b in *.sh; do
	case "$b" in run.sh|lib.sh) continue ;; esac
	echo "=== bench/$b ==="
	"./$b" || status=1
done
exit $status
