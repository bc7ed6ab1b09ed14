#!/usr/bin/env bash
# bench/fetch_many.sh: md_fetch_many of N symbols from the fake provider
# (each request delayed by LATENCY ms) against the baseline
# `curl --parallel --parallel-immediate --parallel-max 64` fetching the same N URLs, in the same
# run, from the same fake provider. Target: md_fetch_many <= 1.5x curl.
#
#   bench/fetch_many.sh [N=1000] [LATENCY=20] [RUNS=5]
#
# Needs "make install" first (PG_CONFIG picks the PostgreSQL). Starts its
# own temporary cluster and fake provider on loopback and stops them.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"

N=${1:-1000}
LATENCY=${2:-20}
RUNS=${3:-5}
PARALLEL=64
WORK=$(mktemp -d /tmp/md-bench-fetch-many.XXXXXX)
db_user_dir "$WORK"
PGDATA="$WORK/pgdata"
FAKE_PID=""

cleanup() {
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null || true
	as_db_user pg_ctl -D "$PGDATA" -w stop -m fast >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

make -s -C "$TOP/test/fake_provider"
"$TOP/test/fake_provider/fake_provider" --fixtures "$TOP/test/fixtures/providers" \
	--port 0 --latency-ms "$LATENCY" >"$WORK/fake.out" 2>"$WORK/fake.err" &
FAKE_PID=$!
for _ in $(seq 100); do grep -q '^PORT ' "$WORK/fake.out" && break; sleep 0.05; done
FAKE_PORT=$(awk '/^PORT /{print $2}' "$WORK/fake.out")
BASE="http://127.0.0.1:$FAKE_PORT"

as_db_user initdb -D "$PGDATA" -A trust -U postgres >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
shared_preload_libraries = 'marketdata'
marketdata.allow_private_provider_urls = on
listen_addresses = ''
unix_socket_directories = '$WORK'
fsync = off
CONF
as_db_user pg_ctl -D "$PGDATA" -l "$WORK/postgres.log" -w start >/dev/null
psql_md() { as_db_user psql -X -q -At -h "$WORK" -U postgres -d postgres "$@"; }
psql_md -c "CREATE EXTENSION marketdata" \
	-c "UPDATE md.providers SET base_url = '$BASE', max_concurrency = $PARALLEL WHERE name = 'yahoo_finance'"

# the same N symbols and URLs for both
SYMBOLS="ARRAY(SELECT 'SYNB' || lpad(g::text, 5, '0') FROM generate_series(1, $N) g)"
for i in $(seq -f '%05g' 1 "$N"); do
	echo "url = \"$BASE/v8/finance/chart/SYNB$i?interval=1d&range=1d\""
	echo "output = /dev/null"
done >"$WORK/curl.cfg"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_curl() {
	local t0 t1
	t0=$(now)
	# --parallel-immediate: open connections at once instead of waiting to
	# multiplex (HTTP/1.1 here); without it curl runs nearly one at a time
	curl --silent --no-progress-meter --parallel --parallel-immediate \
		--parallel-max "$PARALLEL" -K "$WORK/curl.cfg" 2>/dev/null
	t1=$(now)
	echo "$t1 - $t0" | bc -l
}

run_md() {
	local t0 t1 ok
	t0=$(now)
	ok=$(psql_md -c "SELECT count(*) FILTER (WHERE error_class IS NULL) FROM md_fetch_many($SYMBOLS, 'yahoo_finance')")
	t1=$(now)
	[ "$ok" = "$N" ] || { echo "md_fetch_many fetched $ok of $N" >&2; exit 1; }
	echo "$t1 - $t0" | bc -l
}

# warm up both (connections, caches), then alternate runs
run_curl >/dev/null
run_md >/dev/null
: >"$WORK/curl.times"
: >"$WORK/md.times"
for _ in $(seq "$RUNS"); do
	run_curl >>"$WORK/curl.times"
	run_md >>"$WORK/md.times"
done
CURL=$(median <"$WORK/curl.times")
MD=$(median <"$WORK/md.times")
RATIO=$(echo "$MD / $CURL" | bc -l)
STORED=$(psql_md -c "SELECT count(*) FROM md.raw_responses")

printf 'fetch_many: %d symbols, %d ms latency per request, %d concurrent, median of %d runs\n' \
	"$N" "$LATENCY" "$PARALLEL" "$RUNS"
printf '  curl --parallel(-immediate) -max %d: %.3f s  (runs: %s)\n' "$PARALLEL" "$CURL" "$(tr '\n' ' ' <"$WORK/curl.times" | xargs printf '%.3f ')"
printf '  md_fetch_many                    : %.3f s  (runs: %s)\n' "$MD" "$(tr '\n' ' ' <"$WORK/md.times" | xargs printf '%.3f ')"
printf '  ratio md_fetch_many / curl       : %.2f  (target <= 1.50)\n' "$RATIO"
printf '  raw responses stored             : %s\n' "$STORED"
if [ "$(echo "$RATIO <= 1.5" | bc -l)" -ne 1 ]; then
	echo "  FAILED: slower than 1.5x curl" >&2
	exit 1
fi
