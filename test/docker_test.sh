#!/usr/bin/env bash
# test/docker_test.sh ("make docker-test"): the compose stack built and run
# for real with podman, tested end to end through the load balancer over
# HTTPS. Each check prints "ok - …" or "not ok - …"; the last line is
# "N passed, N failed", the exit code non-zero when any failed.
#
#   1. a local debian:12 image (mmdebstrap, its rootfs cached in
#      .cache/docker/, git-ignored) when there is none;
#   2. a copy of the sources and docker/ in a scratch directory, with
#      throwaway secrets and a throwaway CA (test/tls_ca.sh);
#   3. docker/compose_podman.py up --build with docker/compose.yaml and
#      docker/compose.podman.yaml, under a project name of this run: its
#      own networks (internal but the LB's, published on 127.0.0.1 only),
#      volumes and image tags, all removed at the end, also on failure.
#
# podman runs with runc and without default rlimits (CONTAINERS_CONF; the
# machine refuses crun's and podman's default RLIMIT_NOFILE). Settings:
#   MD_DOCKER_TEST_KEEP=1   leave the stack up for a look (then remove it
#                           with the command printed)
#   MD_DOCKER_CACHE=DIR     where the rootfs tarball is kept
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"

# The per-IP limit is out of the way of the load tests; the limit shared
# across the instances is checked on the reader role's (same Redis counter).
RL_READER=40
STACK_API_ENV="MD_API_RATE_LIMIT_IP=100000000
MD_API_RATE_LIMIT_ADMIN=100000000
MD_API_RATE_LIMIT_WRITER=100000000
MD_API_RATE_LIMIT_READER=$RL_READER
MD_API_SHUTDOWN_TIMEOUT=10"
. "$TOP/test/docker_stack.sh"

check "the load balancer sends to both instances" wait_until 60 both_up
ready_ok() { lb "$URL/health/ready" | grep -q '"status":"ok"'; }
check "readiness through the LB says ok" wait_until 60 ready_ok
ADMIN_KEY=$(psql_primary "SELECT md_create_api_key('docker-test-admin', 'admin')")
READER_KEY=$(psql_primary "SELECT md_create_api_key('docker-test-reader', 'reader')")

# ---------------------------------------------------------------- served
ready=$(lb -w '\n%{http_code}' "$URL/health/ready")
check "/health/ready over HTTPS shows database, replica, Redis, Kafka, providers" \
	/usr/bin/python3 -c '
import json, sys
body, code = sys.argv[1].rsplit("\n", 1)
assert code == "200", sys.argv[1]
r = json.loads(body)
for k in ("database", "replica", "redis", "kafka", "providers"):
    assert k in r, "no %s in %s" % (k, r)
assert r["status"] == "ok", r
assert r["replica"]["in_recovery"] is True, r
' "$ready"
check "plain HTTP is redirected to HTTPS" bash -c \
	"curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1:$HTTP_PORT/health | grep -q '^301 https://'"

psql_primary "SELECT md_ingest_price('DOCK', 'sandbox', 123.45, now() - interval '1 minute', 10, 'USD')" >/dev/null
# both instances serve it (HAProxy's checks may have one out for a moment
# on a busy machine: tried for up to 30 s)
served_by_both() {
	local i hdr by seen=""
	for i in 1 2 3 4 5 6; do
		hdr=$(lb -D - -o "$W/latest.$i" -H "X-API-Key: $ADMIN_KEY" "$URL/prices/latest?symbol=DOCK&provider=sandbox")
		by=$(printf '%s' "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}')
		grep -Eq '"price" *: *123.45' "$W/latest.$i" && seen="$seen $by"
	done
	echo "answered by:$seen"
	[[ "$seen" == *api1* && "$seen" == *api2* ]]
}
check "a price ingested on the primary is served through the LB by api1 and api2" \
	wait_until 30 served_by_both
hit=$(lb -D - -o /dev/null -H "X-API-Key: $ADMIN_KEY" "$URL/prices/latest?symbol=DOCK&provider=sandbox" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}')
check "it comes from the cache the second time (X-Cache: $hit)" test "$hit" = HIT
check "its history is read from the replica" bash -c "
	for i in 1 2 3 4 5 6 7 8 9 10; do
		curl -sS --cacert '$CA' -H 'X-API-Key: $ADMIN_KEY' '$URL/prices/history?symbol=DOCK&provider=sandbox' | grep -q '123.45' && exit 0
		sleep 0.5
	done; exit 1"

# a header of an answer: hdr NAME CURL-ARGS...
hdr() {
	local name=$1
	shift
	lb -o /dev/null -D - "$@" | tr -d '\r' | awk -F': ' -v n="$name" 'tolower($1)==n{print $2}'
}
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# ---------------------------------------------------------------- poll job
t=$(date +%s%N)
job=$(lb -X POST -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
	-d '{"symbols":["PJOB"],"interval":1,"provider":"sandbox"}' "$URL/prices/poll")
job_id=$(printf '%s' "$job" | json_field job_id 2>/dev/null)
code=$(lb -o "$W/job" -w '%{http_code}' -H "X-API-Key: $ADMIN_KEY" "$URL/prices/poll/$job_id")
check "a poll job created through the LB is read back at once ($job_id: $code)" \
	bash -c "[ '$code' = 200 ] || { cat '$W/job'; echo '$job'; exit 1; }"
got=""
while [ $((($(date +%s%N) - t) / 1000000)) -lt 2000 ]; do
	# history (the replica; /prices/latest would fetch on its own)
	if lb -H "X-API-Key: $ADMIN_KEY" "$URL/prices/history?symbol=PJOB&provider=sandbox" 2>/dev/null |
		grep -Eq '"points" *: *\[ *\{'; then
		got=$((($(date +%s%N) - t) / 1000000))
		break
	fi
	sleep 0.1
done
check "its prices are served through the API (history, from the replica) within 2 s (${got:-no price after 2000} ms)" test -n "$got"
check "its events reach the Kafka stand-in (kcat in the kafka1 container)" bash -c "
	for i in \$(seq 1 20); do
		podman exec $(c kafka1) kcat -b kafka1:9092 -C -t price-events -o beginning -e -q 2>/dev/null | grep -q PJOB && exit 0
		sleep 0.5
	done; exit 1"
lb -X DELETE -H "X-API-Key: $ADMIN_KEY" "$URL/prices/poll/$job_id" >/dev/null

# ---------------------------------------------------------------- rate limit
# A burst of 2x the reader limit: through the LB (both instances, one Redis)
# and straight at api1 with another key; the same number gets through.
KEY2=$(psql_primary "SELECT md_create_api_key('docker-test-reader2', 'reader')")
burst_lb=$(for i in $(seq 1 $((RL_READER * 2))); do
	lb -o /dev/null -w '%{http_code}\n' -H "X-API-Key: $READER_KEY" "$URL/prices/latest?symbol=DOCK&provider=sandbox"
done | sort | uniq -c | tr '\n' ' ')
burst_one=$(podman exec "$(c api1)" sh -c "for i in \$(seq 1 $((RL_READER * 2))); do
	curl -s -o /dev/null -w '%{http_code}\n' -H 'X-API-Key: $KEY2' 'http://127.0.0.1:8080/prices/latest?symbol=DOCK&provider=sandbox'
done" | sort | uniq -c | tr '\n' ' ')
# (a burst that crosses the limit's window boundary lets a few more through)
n_lb=$(echo "$burst_lb" | grep -o '[0-9]* 200' | cut -d' ' -f1)
n_one=$(echo "$burst_one" | grep -o '[0-9]* 200' | cut -d' ' -f1)
check "rate limit across instances: through the LB [$burst_lb] as on one [$burst_one]" bash -c "
	[ '${n_lb:-0}' -ge $RL_READER ] && [ '${n_lb:-0}' -le $((RL_READER + 3)) ] &&
	[ '${n_one:-0}' -ge $RL_READER ] && [ '${n_one:-0}' -le $((RL_READER + 3)) ] &&
	[[ '$burst_lb' == *' 429'* ]]"

# ---------------------------------------------------------------- stop an instance under load
LATEST="$URL/prices/latest?symbol=DOCK&provider=sandbox"
wrk -t 2 -c 16 -d 14s --timeout 5s -H "X-API-Key: $ADMIN_KEY" "$LATEST" >"$W/wrk1" 2>&1 &
wrk_pid=$!
sleep 3
podman stop -t 30 "$(c api1)" >/dev/null 2>&1
only_api2() {
	served=$(for i in 1 2 3 4; do hdr x-served-by -H "X-API-Key: $ADMIN_KEY" "$LATEST"; done | sort -u | tr '\n' ' ')
	[ "$served" = "api2 " ]
}
wait_until 8 only_api2
wait "$wrk_pid"
errors=$(awk '/Socket errors|Non-2xx/' "$W/wrk1")
reqs=$(awk '/requests in/{print $1}' "$W/wrk1")
check "api1 stopped under load through the LB: $reqs requests, none failed" \
	bash -c "[ -n '$reqs' ] && [ '$reqs' -gt 0 ] && [ -z '$errors' ] || { cat '$W/wrk1'; exit 1; }"
check "meanwhile api2 alone answers ($served)" test "$served" = "api2 "
podman start "$(c api1)" >/dev/null 2>&1
check "api1 started again takes traffic again" wait_until 60 both_up

# ---------------------------------------------------------------- Redis down
podman kill "$(c redis)" >/dev/null 2>&1
check "Redis killed: readiness says degraded" wait_until 20 bash -c \
	"curl -sS --cacert '$CA' '$URL/health/ready' | grep -q '\"status\":\"degraded\"'"
codes=$(for i in 1 2 3 4 5 6; do lb -o /dev/null -w '%{http_code} ' -H "X-API-Key: $ADMIN_KEY" "$LATEST"; done)
check "answers keep coming from the database ($codes)" test "$codes" = "200 200 200 200 200 200 "
podman start "$(c redis)" >/dev/null 2>&1
check "Redis back: readiness ok again" wait_until 30 bash -c \
	"curl -sS --cacert '$CA' '$URL/health/ready' | grep -q '\"status\":\"ok\"'"
cache_hits() {
	local i h n=0
	for i in 1 2 3 4; do
		h=$(hdr x-cache -H "X-API-Key: $ADMIN_KEY" "$LATEST")
		[ "$h" = HIT ] && n=$((n + 1))
	done
	[ "$n" -ge 2 ]
}
check "caching resumes (X-Cache: HIT)" wait_until 20 cache_hits

# ---------------------------------------------------------------- replica down
# history and averages come from the replica: without it they fail,
# readiness says degraded, /prices/latest (the primary) goes on
HISTORY="$URL/prices/history?symbol=DOCK&provider=sandbox"
podman stop -t 30 "$(c replica)" >/dev/null 2>&1
# (503 is the answer; a Kore worker whose PgBouncer connection is closed
# under a query exits, "kore_platform_disable_read: Bad file descriptor",
# so some answers are HAProxy's 502 until Kore has restarted it; for the
# same reason /health/ready cannot be relied on to report the replica down)
code_h=$(lb -o /dev/null -w '%{http_code}' -H "X-API-Key: $ADMIN_KEY" "$HISTORY")
code_l=$(lb -o /dev/null -w '%{http_code}' -H "X-API-Key: $ADMIN_KEY" "$LATEST")
check "replica stopped: history is not served ($code_h), latest is ($code_l)" \
	test "$code_h" != 200 -a "$code_h" != 000 -a "$code_l" = 200
podman start "$(c replica)" >/dev/null 2>&1
history_ok() { [ "$(lb -o /dev/null -w '%{http_code}' -H "X-API-Key: $ADMIN_KEY" "$HISTORY")" = 200 ]; }
check "replica started again: history is served again" wait_until 60 history_ok
compose wait replica --timeout 60 >/dev/null 2>&1

# ---------------------------------------------------------------- failover
# prices committed on the primary, then the primary stopped; the replica
# promoted, PgBouncer pointed at it.
psql_primary "SELECT count(*) FROM generate_series(1, 200) g, LATERAL md_ingest_price('FAIL' || (g % 10), 'sandbox', 100 + g, now() - g * interval '1 second', 1, 'USD')" >/dev/null
before=$(psql_primary "SELECT count(*) FROM md.prices")
podman stop -t 60 "$(c primary)" >/dev/null 2>&1
if podman exec "$(c replica)" setpriv --reuid=postgres --regid=postgres --init-groups \
	pg_ctl promote -w -D /var/lib/postgresql/data >"$W/promote" 2>&1 &&
	podman exec "$(c pgbouncer)" use-primary replica >>"$W/promote" 2>&1; then
	ok "primary stopped; replica promoted (pg_ctl promote), PgBouncer repointed (use-primary replica)"
else
	not_ok "primary stopped; replica promoted, PgBouncer repointed" "$(cat "$W/promote")"
fi
PRIMARY=replica
after=$(psql_primary "SELECT count(*) FROM md.prices")
check "no price committed before the stop is missing ($before before, $after after)" test "$after" = "$before"
check "the workers start on the new primary" wait_until 30 bash -c \
	"[ \"\$(podman exec $(c replica) setpriv --reuid=postgres --regid=postgres --init-groups psql -X -At -h /run/postgresql -d marketdata -c \"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'marketdata%'\")\" -ge 3 ]"
# each try its own symbol: a try that failed must not make the next a duplicate
codes="" after=""
for i in $(seq 1 30); do
	code=$(lb -o "$W/job2" -w '%{http_code}' -X POST -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		-d "{\"symbols\":[\"AFTER$i\"],\"interval\":1,\"provider\":\"sandbox\"}" "$URL/prices/poll")
	codes="$codes $code"
	if [ "$code" = 202 ]; then after=AFTER$i; break; fi
	sleep 1
done
check "writes work again through the LB (POST /prices/poll:$codes)" test -n "$after"
check "the new primary's scheduler runs the new job" wait_until 10 bash -c \
	"curl -sS --cacert '$CA' -H 'X-API-Key: $ADMIN_KEY' '$URL/prices/history?symbol=$after&provider=sandbox' | grep -Eq '\"points\" *: *\\[ *\\{'"

note "checks took $(($(date +%s) - t_start)) s in all"
summary
[ "$failed" -eq 0 ]
