#!/usr/bin/env bash
# bench/run.sh: every benchmark under bench/ (make bench).
set -euo pipefail
cd "$(dirname "$0")"
for b in *.sh; do
	[ "$b" = run.sh ] && continue
	echo "=== $b"
	"./$b"
done
