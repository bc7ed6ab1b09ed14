#!/usr/bin/env bash
# bench/run.sh: run every benchmark under bench/ (make bench), one after another.
set -euo pipefail
cd "$(dirname "$0")"
for b in *.sh; do
	[ "$b" = run.sh ] && continue
	echo "=== bench/$b ==="
	"./$b"
done
