#!/usr/bin/env bash
# bench/stream.sh: GET /prices/stream with 1,000 SSE clients, each
# following 10 of 1,000 symbols (bench/stream_client.c, libcurl multi):
#   1. the target load: 2,000 prices/s ingested by SQL (pgbench -R, one
#      price per transaction, market time = clock_timestamp() before the
#      commit) for BENCH_DURATION s. Targets: p99 commit-to-receipt < 50 ms,
#      no client missing the newest price of any of its symbols at the end.
#   2. capacity: a burst of BENCH_BURST price events PUBLISHed straight into
#      Redis (one Lua script, no database), fanned out by the API and by a
#      bare Kore handler built here (one hiredis subscription, each event
#      written to every connection whose query names the symbol, nothing
#      else), each to 1,000 clients. Target: events delivered per second by
#      the API >= 0.5x the bare handler's.
# Runs privately on loopback under bench/results/stream/ (not committed),
# bounded: BENCH_DURATION (default 20 s), BENCH_BURST (default 20000),
# BENCH_WORKERS (Kore workers, default 2).
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"

DUR="${BENCH_DURATION:-20}"
BURST="${BENCH_BURST:-20000}"
WORKERS="${BENCH_WORKERS:-2}"
CLIENTS=1000
SYMBOLS=1000
RATE=2000
OUT="$TOP/bench/results/stream"
db_user_dir "$OUT" fresh
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	as_db_user pg_ctl -D "$OUT/pgdata" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
ulimit -n 8192

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cc -std=c11 -O2 -Wall -Wextra -Werror -o "$OUT/stream_client" "$TOP/bench/stream_client.c" -lcurl -ljansson

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" \
	--daemonize no >"$OUT/redis.log" 2>&1 &
PIDS+=($!)
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.05; done

PGPORT=$(free_port)
as_db_user initdb -D "$OUT/pgdata" -U postgres --auth=trust >/dev/null
cat >>"$OUT/pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$OUT'
shared_preload_libraries = 'marketdata'
max_connections = 100
synchronous_commit = off
marketdata.redis_url = 'redis://127.0.0.1:$REDIS_PORT'
CONF
as_db_user pg_ctl -D "$OUT/pgdata" -l "$OUT/postgres.log" -w start >/dev/null
PSQL=(psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -tA)
as_db_user "${PSQL[@]}" -c "CREATE EXTENSION marketdata" >/dev/null
as_db_user "${PSQL[@]}" -c "SELECT md_ingest_price('S1', 'finnhub', 1, now() - interval '1 day')" >/dev/null
KEY=$(as_db_user "${PSQL[@]}" -c "SELECT md_create_api_key('bench', 'reader')")

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
worker_max_connections 4096
worker_rlimit_nofiles 8192
load $so
include $conf
CONF
	(cd "$OUT/$name" && exec env "$@" kore -f -n -r -c "$OUT/$name/kore.conf" >"$OUT/$name/kore.log" 2>&1) &
	PIDS+=($!)
	until curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1; do sleep 0.05; done
}

# run_clients NAME URL SECONDS [LATEST_FILE]: 1,000 clients in the
# background; waits until all are connected
run_clients() {
	local name=$1 url=$2 secs=$3 latest=${4:--}
	"$OUT/stream_client" "$url" "$KEY" "$CLIENTS" "$SYMBOLS" "$secs" "$latest" \
		>"$OUT/$name.out" 2>"$OUT/$name.err" &
	CLIENT_PID=$!
	until grep -q connected "$OUT/$name.err" 2>/dev/null; do
		kill -0 "$CLIENT_PID" 2>/dev/null || { cat "$OUT/$name.err" >&2; exit 1; }
		sleep 0.1
	done
}

# burst: BURST events PUBLISHed in one script, newer market times each
burst() {
	redis-cli -p "$REDIS_PORT" EVAL "
		for i = 1, tonumber(ARGV[1]) do
			local s = 'S' .. (i % $SYMBOLS + 1)
			local ts = string.format('2030-01-01T%02d:%02d:%02d.%06dZ', ARGV[2] % 24,
				math.floor(i / 60000000) % 60, math.floor(i / 1000000) % 60, i % 1000000)
			redis.call('PUBLISH', 'md:prices:' .. s, '{\"symbol\":\"' .. s .. '\",\"price\":' .. i ..
				',\"timestamp\":\"' .. ts .. '\",\"source\":\"finnhub\",\"raw_response_id\":null}')
		end
		return 0" 0 "$BURST" "$1" >/dev/null
}

api_env=(MD_API_DATABASE_URL="host=$OUT port=$PGPORT dbname=postgres user=postgres"
	REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
	MD_API_RATE_LIMIT_IP=0 MD_API_RATE_LIMIT_READER=0
	MD_API_STREAM_MAX_PER_KEY=0 MD_API_STREAM_MAX_PER_IP=0)
API_PORT=$(free_port)
start_kore api "$TOP/api/api.so" "$TOP/api/conf/api.conf" "$API_PORT" "${api_env[@]}"

# 1. the target load
cat >"$OUT/ingest.sql" <<'SQL'
\set s random(1, 1000)
SELECT md_ingest_price('S' || :s, 'finnhub', (100 + random())::numeric(12, 6), clock_timestamp());
SQL
run_clients load "http://127.0.0.1:$API_PORT" $((DUR + 10)) "$OUT/latest.txt"
as_db_user pgbench -n -h 127.0.0.1 -p "$PGPORT" -U postgres -c 4 -j 2 -R "$RATE" -T "$DUR" \
	-f "$OUT/ingest.sql" postgres >"$OUT/pgbench.out" 2>&1
sleep 1
as_db_user "${PSQL[@]}" -F ' ' -c "SELECT symbol, md._iso_utc(ts) FROM md.latest_prices" >"$OUT/latest.txt"
wait "$CLIENT_PID"
read -r _ _ _ _ _ load_events _ load_rate _ load_p50 _ load_p99 _ load_max _ load_missing <"$OUT/load.out"
ingested=$(awk '/^number of transactions actually processed/ { print $NF }' "$OUT/pgbench.out")
ingest_rate=$(awk '/^tps = / { printf "%.0f", $3 }' "$OUT/pgbench.out")
streams=$(curl -fs "http://127.0.0.1:$API_PORT/metrics" | awk '/^md_api_stream_conflated_total/ { c = $2 } /^md_api_stream_slow_closed_total/ { s = $2 } END { print c + 0, s + 0 }')

# 2. capacity: the burst through the API
run_clients api-burst "http://127.0.0.1:$API_PORT" 60
burst 1
wait "$CLIENT_PID" || true
read -r _ _ _ _ _ api_events _ api_rate _ <"$OUT/api-burst.out"

# the bare handler
mkdir -p "$OUT/bare"
cat >"$OUT/bare/bare.c" <<'C'
/* one hiredis subscription; each message to every SSE connection whose
 * query names the symbol; no auth, ids, limits or conflation */
#include <sys/epoll.h>
#include <string.h>
#include <stdlib.h>
#include <kore/kore.h>
#include <kore/http.h>
#include <kore/seccomp.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
int	bare(struct http_request *);
int	health(struct http_request *);
void	kore_worker_configure(void);
void	kore_seccomp_hook(void);
static struct sock_filter filt[] = { KORE_SYSCALL_ALLOW(socket), KORE_SYSCALL_ALLOW(connect),
	KORE_SYSCALL_ALLOW(getsockopt), KORE_SYSCALL_ALLOW(setsockopt), KORE_SYSCALL_ALLOW(getpeername),
	KORE_SYSCALL_ALLOW(getsockname), KORE_SYSCALL_ALLOW(poll), KORE_SYSCALL_ALLOW(sendto),
	KORE_SYSCALL_ALLOW(recvfrom) };
void kore_seccomp_hook(void) { kore_seccomp_filter("bare", filt, KORE_FILTER_LEN(filt)); }
struct watcher { struct kore_event evt; redisAsyncContext *ac; int events; };
static struct watcher w;
static char *queries[65536];
static int on_recv(struct netbuf *nb) { net_recv_reset(nb->owner, 512, on_recv); return (KORE_RESULT_OK); }
static void gone(struct connection *c) { free(queries[c->fd]); queries[c->fd] = NULL; }
static void update(void) { if (w.events) kore_platform_event_schedule(w.ac->c.fd, w.events, 0, &w); }
static void add_r(void *p) { (void)p; w.events |= EPOLLIN; update(); }
static void del_r(void *p) { (void)p; w.events &= ~EPOLLIN; update(); }
static void add_w(void *p) { (void)p; w.events |= EPOLLOUT; update(); }
static void del_w(void *p) { (void)p; w.events &= ~EPOLLOUT; update(); }
static void handle(void *p, int err) {
	int f = w.evt.flags; (void)p; w.evt.flags = 0;
	if (f & KORE_EVENT_WRITE) redisAsyncHandleWrite(w.ac);
	if ((f & KORE_EVENT_READ) || err) redisAsyncHandleRead(w.ac);
}
static void on_msg(redisAsyncContext *ac, void *r, void *priv) {
	redisReply *m = r; struct connection *c; struct kore_buf b; char sym[64];
	(void)ac; (void)priv;
	if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements != 4) return;
	snprintf(sym, sizeof(sym), "%s,", m->element[2]->str + 10);
	kore_buf_init(&b, m->element[3]->len + 32);
	kore_buf_appendf(&b, "id: %s\nevent: price\ndata: %s\n\n", m->element[2]->str + 10,
	    m->element[3]->str);
	TAILQ_FOREACH(c, &connections, list) {
		char *q = queries[c->fd];
		size_t n = strlen(sym) - 1;
		if (q == NULL) continue;
		for (char *p = strstr(q, m->element[2]->str + 10); p; p = strstr(p + 1, m->element[2]->str + 10))
			if ((p == q || p[-1] == ',' || p[-1] == '=') && (p[n] == ',' || p[n] == '\0')) {
				net_send_queue(c, b.data, b.offset); net_send_flush(c); break;
			}
	}
	kore_buf_cleanup(&b);
}
void kore_worker_configure(void) {
	const char *url = getenv("REDIS_PORT");
	w.evt.type = 100; w.evt.handle = handle;
	w.ac = redisAsyncConnect("127.0.0.1", atoi(url));
	w.ac->ev.addRead = add_r; w.ac->ev.delRead = del_r;
	w.ac->ev.addWrite = add_w; w.ac->ev.delWrite = del_w;
	redisAsyncCommand(w.ac, on_msg, NULL, "PSUBSCRIBE md:prices:*");
	add_w(NULL);
}
int health(struct http_request *req) { http_response(req, 200, "ok", 2); return (KORE_RESULT_OK); }
int bare(struct http_request *req) {
	struct connection *c = req->owner;
	http_response_header(req, "content-type", "text/event-stream");
	req->flags |= HTTP_REQUEST_NO_CONTENT_LENGTH;
	http_response(req, 200, NULL, 0);
	c->flags &= ~CONN_CLOSE_EMPTY; c->http_timeout = 0; c->idle_timer.length = 3600000;
	net_recv_reset(c, 512, on_recv);
	c->disconnect = gone;
	queries[c->fd] = strdup(req->query_string ? req->query_string : "");
	return (KORE_RESULT_OK);
}
C
cat >"$OUT/bare/bare.conf" <<CONF
domain * {
	attach api
	route /prices/stream bare
	route /health health
}
CONF
cc -O2 -fPIC -shared $(cat /usr/share/kore/features) -I/usr/share/kore/include \
	-o "$OUT/bare/bare.so" "$OUT/bare/bare.c" -lhiredis
BARE_PORT=$(free_port)
start_kore bare-run "$OUT/bare/bare.so" "$OUT/bare/bare.conf" "$BARE_PORT" REDIS_PORT="$REDIS_PORT"
run_clients bare-burst "http://127.0.0.1:$BARE_PORT" 60
burst 2
wait "$CLIENT_PID" || true
read -r _ _ _ _ _ bare_events _ bare_rate _ <"$OUT/bare-burst.out"

verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : (op == "==") ? v == t : v < t; print ok ? "met" : "MISSED" }'; }
ratio=$(awk -v a="$api_rate" -v b="$bare_rate" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
{
	echo "stream benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, Kore workers $WORKERS, $CLIENTS SSE clients x 10 of $SYMBOLS symbols)"
	printf '  load: %s prices in %s s (%s/s asked, %s/s done), %s events received (%s/s)\n' \
		"$ingested" "$DUR" "$RATE" "$ingest_rate" "$load_events" "$load_rate"
	printf '  commit-to-receipt p50 %s ms, p99 %s ms, max %s ms (target p99 < 50: %s)\n' \
		"$load_p50" "$load_p99" "$load_max" "$(verdict "$load_p99" "<" 50)"
	printf '  clients missing a newest price: %s (target 0: %s); conflated, slow closed: %s\n' \
		"$load_missing" "$(verdict "$load_missing" "==" 0)" "$streams"
	printf '  burst of %s events: API %s delivered at %s/s, bare Kore %s at %s/s; ratio %s (target >= 0.5: %s)\n' \
		"$BURST" "$api_events" "$api_rate" "$bare_events" "$bare_rate" "$ratio" "$(verdict "$ratio" ">=" 0.5)"
} | tee "$OUT/summary.txt"
