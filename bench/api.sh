#!/usr/bin/env bash
# bench/api.sh: the REST API under wrk (64 connections), against a
# baseline measured in the same run with the same settings:
#   1. cache hit: GET /prices/latest with an API key and rate limiting on
#      (limits set high) vs a bare Kore handler returning a constant body of
#      the same size (built here). Targets: ratio >= 0.5, p99 < 5 ms.
#   2. cache miss (MD_API_CACHE_TTL=0) from PostgreSQL, one symbol (single
#      flight shares concurrent misses) and 1000 rotating symbols (few
#      shared). Target: >= 10,000 requests/s.
# Everything runs privately on loopback under bench/results/api/ (not
# committed). Settings: BENCH_DURATION (s, default 10), BENCH_WORKERS
# (Kore workers, default 2).
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"

DUR="${BENCH_DURATION:-10}"
WORKERS="${BENCH_WORKERS:-2}"
CONNS=64
OUT="$TOP/bench/results/api"
db_user_dir "$OUT" fresh
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	as_db_user pg_ctl -D "$OUT/pgdata" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# PostgreSQL with the extension, a price and a key
PGPORT=$(free_port)
as_db_user initdb -D "$OUT/pgdata" -U postgres --auth=trust >/dev/null
cat >>"$OUT/pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$OUT'
shared_preload_libraries = 'marketdata'
max_connections = 100
CONF
as_db_user pg_ctl -D "$OUT/pgdata" -l "$OUT/postgres.log" -w start >/dev/null
PSQL=(psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tA)
as_db_user "${PSQL[@]}" -c "CREATE EXTENSION marketdata" >/dev/null
as_db_user "${PSQL[@]}" -c "SELECT md_ingest_prices(array_agg('S' || i), array_agg('yahoo_finance'::text),
	array_agg(100 + i)::numeric[], array_agg(now())) FROM generate_series(1, 1000) i" >/dev/null
as_db_user "${PSQL[@]}" -c "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now())" >/dev/null
KEY=$(as_db_user "${PSQL[@]}" -c "SELECT md_create_api_key('bench', 'reader')")

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" \
	--daemonize no >"$OUT/redis.log" 2>&1 &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done

# start_kore NAME MODULE_DIR PORT [ENV...]: a Kore instance in the foreground
start_kore() {
	local name=$1 so=$2 conf=$3 port=$4
	shift 4
	mkdir -p "$OUT/$name"
	cat >"$OUT/$name/kore.conf" <<CONF
server api {
	bind 127.0.0.1 $port
	tls no
}
workers $WORKERS
load $so
include $conf
CONF
	(cd "$OUT/$name" && exec env "$@" kore -f -n -r -c "$OUT/$name/kore.conf" >"$OUT/$name/kore.log" 2>&1) &
	PIDS+=($!)
	until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do sleep 0.05; done
}

api_env=(MD_API_DATABASE_URL="host=$OUT port=$PGPORT dbname=postgres user=postgres"
	REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
	MD_API_RATE_LIMIT_IP=1000000000 MD_API_RATE_LIMIT_READER=1000000000
	MD_API_MAX_AGE=86400 MD_API_DATABASE_CONNECTIONS=16)

# run_wrk NAME URL [wrk args]: prints "rps p99_ms"
run_wrk() {
	local name=$1 url=$2
	shift 2
	wrk -t2 -c"$CONNS" -d"${DUR}s" --latency -H "X-API-Key: $KEY" "$@" "$url" >"$OUT/$name.wrk" 2>&1
	awk '
		function ms(v) {
			if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
			if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
			return v
		}
		/Requests\/sec/ { rps = $2 }
		/^ +99%/ { p99 = ms($2) }
		/Non-2xx/ { bad = $4 }
		END { printf "%.0f %.3f %d\n", rps, p99, bad }' "$OUT/$name.wrk"
}

# 1. cache hit vs bare Kore
API_PORT=$(free_port)
start_kore api "$TOP/api/api.so" "$TOP/api/conf/api.conf" "$API_PORT" "${api_env[@]}" MD_API_CACHE_TTL=3600
URL="http://127.0.0.1:$API_PORT/prices/latest?symbol=AAPL"
BODY=$(curl -fs -H "X-API-Key: $KEY" "$URL")
curl -fs -H "X-API-Key: $KEY" -D - -o /dev/null "$URL" | grep -qi 'x-cache: HIT' || { echo "no cache hit" >&2; exit 1; }
SIZE=${#BODY}

# the baseline: a Kore module answering a constant body of the same size
mkdir -p "$OUT/bare/src"
cat >"$OUT/bare/src/bare.c" <<C
#include <kore/kore.h>
#include <kore/http.h>
int	bare(struct http_request *);
static char	body[$SIZE];
int
bare(struct http_request *req)
{
	if (body[0] == 0)
		memset(body, 'x', sizeof(body));
	http_response_header(req, "content-type", "application/json");
	http_response(req, 200, body, sizeof(body));
	return (KORE_RESULT_OK);
}
C
cat >"$OUT/bare/bare.conf" <<CONF
domain * {
	attach api
	route /prices/latest bare
	route /health bare
}
CONF
cc -O2 -fPIC -shared $(cat /usr/share/kore/features) -I/usr/share/kore/include \
	-o "$OUT/bare/bare.so" "$OUT/bare/src/bare.c"
BARE_PORT=$(free_port)
start_kore bare-run "$OUT/bare/bare.so" "$OUT/bare/bare.conf" "$BARE_PORT"

read -r bare_rps bare_p99 _ < <(run_wrk bare "http://127.0.0.1:$BARE_PORT/prices/latest?symbol=AAPL")
redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
read -r hit_rps hit_p99 hit_bad < <(run_wrk hit "$URL")
# how much Redis a cache hit still needs: script calls (rate-limit leases)
# and every command (those run inside scripts included) per request
redis_stats=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r')
evalsha_us=$(awk -F'[=,]' '/^cmdstat_evalsha:/ { print $6 }' <<<"$redis_stats")
evalsha_calls=$(awk -F'[=,]' '/^cmdstat_evalsha:/ { print $2 }' <<<"$redis_stats")
redis_calls=$(awk -F'[=,]' '/^cmdstat_/ && !/resetstat/ { n += $2 } END { print n + 0 }' <<<"$redis_stats")
hit_local=$(curl -fs "http://127.0.0.1:$API_PORT/metrics" | awk '/^md_api_cache_local_hits_total/ { print $2 }')

# 2. cache misses: an API without caching
kill -TERM "${PIDS[-2]}"
MISS_PORT=$(free_port)
start_kore miss "$TOP/api/api.so" "$TOP/api/conf/api.conf" "$MISS_PORT" "${api_env[@]}" MD_API_CACHE_TTL=0
cat >"$OUT/rotate.lua" <<'LUA'
local i = 0
request = function()
	i = (i + 1) % 1000
	return wrk.format("GET", "/prices/latest?symbol=S" .. (i + 1))
end
LUA
read -r miss1_rps miss1_p99 miss1_bad < <(run_wrk miss-one "http://127.0.0.1:$MISS_PORT/prices/latest?symbol=AAPL")
read -r missn_rps missn_p99 missn_bad < <(run_wrk miss-rotating "http://127.0.0.1:$MISS_PORT/" -s "$OUT/rotate.lua")
queries=$(curl -fs "http://127.0.0.1:$MISS_PORT/metrics" | awk '/^md_api_price_queries_total/ { print $2 }')

ratio=$(awk -v a="$hit_rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", a / b }')
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v < t; print ok ? "met" : "MISSED" }'; }
{
	echo "REST API benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, Kore workers $WORKERS, wrk -t2 -c$CONNS -d${DUR}s, body $SIZE bytes)"
	printf '  bare Kore, constant body         %8s req/s  p99 %7s ms\n' "$bare_rps" "$bare_p99"
	printf '  cache hit (key + rate limit)     %8s req/s  p99 %7s ms  non-2xx %s\n' "$hit_rps" "$hit_p99" "${hit_bad:-0}"
	printf '  Redis scripts (leases) in the run %8s      (%s us each); Redis commands per hit %s\n' \
		"${evalsha_calls:-0}" "${evalsha_us:-0}" \
		"$(awk -v c="$redis_calls" -v r="$hit_rps" -v d="$DUR" 'BEGIN { printf "%.4f", c / (r * d) }')"
	printf '  hits from the worker cache        %8s      (X-Cache-Level: local)\n' "${hit_local:-0}"
	printf '  ratio hit / bare                 %8s        (target >= 0.5: %s; p99 < 5 ms: %s)\n' \
		"$ratio" "$(verdict "$ratio" ">=" 0.5)" "$(verdict "$hit_p99" "<" 5)"
	printf '  cache miss, one symbol           %8s req/s  p99 %7s ms  non-2xx %s (target >= 10000: %s)\n' \
		"$miss1_rps" "$miss1_p99" "${miss1_bad:-0}" "$(verdict "$miss1_rps" ">=" 10000)"
	printf '  cache miss, 1000 symbols         %8s req/s  p99 %7s ms  non-2xx %s (target >= 10000: %s)\n' \
		"$missn_rps" "$missn_p99" "${missn_bad:-0}" "$(verdict "$missn_rps" ">=" 10000)"
	printf '  database calls for the misses    %8s        (single flight shares concurrent misses of one key)\n' "$queries"
} | tee "$OUT/summary.txt"
