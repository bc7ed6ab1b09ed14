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

CACHE=${MD_DOCKER_CACHE:-$TOP/.cache/docker}
PROJECT=mdtest$$
TAG=test$$
passed=0
failed=0
t_start=$(date +%s)

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
	echo "not ok - $1"
	[ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/#   /' | head -n 40
	failed=$((failed + 1))
}
check() { # check NAME CMD...: ok when CMD succeeds
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi
}
note() { echo "# $*"; }
summary() {
	echo
	echo "$passed passed, $failed failed"
}

for tool in podman runc mmdebstrap openssl curl wrk; do
	if ! command -v "$tool" >/dev/null; then
		not_ok "$tool is installed (make deps)"
		summary
		exit 1
	fi
done

W=$(mktemp -d /tmp/md-docker-test.XXXXXX)
if [ -z "${CONTAINERS_CONF:-}" ]; then
	cat >"$W/containers.conf" <<'CONF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
CONF
	export CONTAINERS_CONF="$W/containers.conf"
fi

compose() {
	/usr/bin/python3 "$W/src/docker/compose_podman.py" -p "$PROJECT" \
		-f "$W/src/docker/compose.yaml" -f "$W/src/docker/compose.podman.yaml" "$@"
}
c() { echo "$PROJECT-$1"; }

cleanup() {
	if [ "${MD_DOCKER_TEST_KEEP:-0}" = 1 ]; then
		note "kept: $PROJECT (remove: CONTAINERS_CONF=$CONTAINERS_CONF /usr/bin/python3 $W/src/docker/compose_podman.py -p $PROJECT -f $W/src/docker/compose.yaml -f $W/src/docker/compose.podman.yaml down --rmi; rm -rf $W)"
		return
	fi
	compose down --rmi >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- images
if ! podman image exists debian:12; then
	mkdir -p "$CACHE"
	rootfs="$CACHE/debian-12-rootfs.tar"
	if [ ! -s "$rootfs" ]; then
		note "making debian:12 with mmdebstrap"
		if ! mmdebstrap --variant=minbase --quiet bookworm "$rootfs.tmp" \
			"deb http://deb.debian.org/debian bookworm main" \
			"deb http://deb.debian.org/debian bookworm-updates main" \
			"deb http://deb.debian.org/debian-security bookworm-security main" \
			>"$W/mmdebstrap.log" 2>&1; then
			not_ok "mmdebstrap debian:12" "$(tail -n 20 "$W/mmdebstrap.log")"
			summary
			exit 1
		fi
		mv "$rootfs.tmp" "$rootfs"
	fi
	podman import --change 'CMD ["bash"]' "$rootfs" localhost/debian:12 >/dev/null
fi
check "a debian:12 image is there" podman image exists debian:12

# the build contexts: the sources the Dockerfiles copy, and docker/
mkdir -p "$W/src"
tar -C "$TOP" -cf - Makefile marketdata.control extension worker api/src api/assets \
	api/conf test/kafka_broker.c docker | tar -C "$W/src" -xf -

# throwaway secrets: nothing here outlives the run
D="$W/src/docker"
rm -f "$D"/secrets/* "$D"/env/*.env "$D/.env"
for ex in "$D"/env/*.example; do cp "$ex" "${ex%.example}"; done
openssl rand -hex 24 >"$D/secrets/postgres_password"
openssl rand -hex 24 >"$D/secrets/replication_password"
openssl rand -hex 24 >"$D/secrets/api_db_password"
openssl rand -hex 32 >"$D/secrets/jwt_secret"
echo "# no provider keys: the sandbox needs none" >"$D/secrets/provider_keys"
echo "# plaintext Kafka inside the stack" >"$D/secrets/kafka_properties"
"$TOP/test/tls_ca.sh" "$W/tls" >/dev/null
cp "$W/tls/server.pem" "$D/secrets/tls.pem"
chmod 600 "$D"/secrets/*
CA="$W/tls/ca.pem"

# free ports on loopback for the LB
port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
HTTPS_PORT=$(port)
HTTP_PORT=$(port)
# The per-IP limit is out of the way of the load tests; the limit shared
# across the instances is checked on the reader role's (same Redis counter).
RL_READER=40
cat >"$D/.env" <<ENV
MD_IMAGE_TAG=$TAG
MD_HTTPS_PORT=$HTTPS_PORT
MD_HTTP_PORT=$HTTP_PORT
MD_KAFKA_PARTITIONS=4
ENV
cat >>"$D/env/api.env" <<ENV
MD_API_RATE_LIMIT_IP=100000000
MD_API_RATE_LIMIT_ADMIN=100000000
MD_API_RATE_LIMIT_WRITER=100000000
MD_API_RATE_LIMIT_READER=$RL_READER
MD_API_SHUTDOWN_TIMEOUT=10
ENV

# ---------------------------------------------------------------- up
t0=$(date +%s)
if compose up --build --timeout 300 >"$W/up.log" 2>&1; then
	t1=$(date +%s)
	ok "the stack builds and starts ($((t1 - t0)) s with the image builds)"
else
	not_ok "the stack builds and starts" "$(tail -n 40 "$W/up.log")"
	summary
	exit 1
fi
if compose wait lb --timeout 120 >"$W/wait.log" 2>&1; then
	ok "every service is healthy ($(($(date +%s) - t0)) s from nothing)"
else
	not_ok "every service is healthy" "$(cat "$W/wait.log")"
fi
for img in postgres api lb pgbouncer redis kafka; do
	note "image marketdata-$img: $(podman image inspect -f '{{.Size}}' "marketdata-$img:$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
done

URL="https://localhost:$HTTPS_PORT"
# curl through the load balancer, trusting only our CA
lb() { curl -sS --cacert "$CA" --max-time 20 "$@"; }
psql_primary() {
	podman exec "$(c "${PRIMARY:-primary}")" setpriv --reuid=postgres --regid=postgres --init-groups \
		psql -X -q -At -h /run/postgresql -d marketdata -v ON_ERROR_STOP=1 -c "$1"
}
# until HAProxy's own checks have seen both instances
wait_until() { # wait_until SECONDS CMD...
	local end=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.5
	done
}
both_up() {
	local seen="" i by
	for i in 1 2 3 4; do
		by=$(lb -o /dev/null -D - "$URL/health" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}')
		seen="$seen $by"
	done
	[[ "$seen" == *api1* && "$seen" == *api2* ]]
}
check "the load balancer sends to both instances" wait_until 60 both_up
ready_ok() { lb "$URL/health/ready" | grep -q '"status":"ok"'; }
check "readiness through the LB says ok" wait_until 60 ready_ok
ADMIN_KEY=$(psql_primary "SELECT md_create_api_key('docker-test-admin', 'admin')")
READER_KEY=$(psql_primary "SELECT md_create_api_key('docker-test-reader', 'reader')")

# ---------------------------------------------------------------- served
ready=$(lb "$URL/health/ready")
check "/health/ready over HTTPS shows database, replica, Redis, Kafka, providers" \
	/usr/bin/python3 -c '
import json, sys
r = json.loads(sys.argv[1])
for k in ("database", "replica", "redis", "kafka", "providers"):
    assert k in r, "no %s in %s" % (k, r)
assert r["status"] == "ok", r
assert r["replica"]["in_recovery"] is True, r
' "$ready"
check "plain HTTP is redirected to HTTPS" bash -c \
	"curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1:$HTTP_PORT/health | grep -q '^301 https://'"

psql_primary "SELECT md_ingest_price('DOCK', 'sandbox', 123.45, now() - interval '1 minute', 10, 'USD')" >/dev/null
seen=""
for i in 1 2 3 4 5 6; do
	hdr=$(lb -D - -o "$W/latest.$i" -H "X-API-Key: $ADMIN_KEY" "$URL/prices/latest?symbol=DOCK&provider=sandbox")
	by=$(printf '%s' "$hdr" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-served-by"{print $2}')
	grep -Eq '"price" *: *123.45' "$W/latest.$i" && seen="$seen $by"
done
check "a price ingested on the primary is served through the LB by api1 and api2" \
	bash -c "echo '$seen' | grep -q api1 && echo '$seen' | grep -q api2 || { echo 'answered by:$seen'; cat $W/latest.1; exit 1; }"
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
check "rate limit across instances: through the LB [$burst_lb] as on one [$burst_one]" bash -c "
	[[ '$burst_lb' == *'$RL_READER 200'*'$RL_READER 429'* ]] && [[ '$burst_one' == *'$RL_READER 200'*'$RL_READER 429'* ]]"

# ---------------------------------------------------------------- stop an instance under load
LATEST="$URL/prices/latest?symbol=DOCK&provider=sandbox"
wrk -t 2 -c 16 -d 14s --timeout 5s -H "X-API-Key: $ADMIN_KEY" "$LATEST" >"$W/wrk1" 2>&1 &
wrk_pid=$!
sleep 3
podman stop -t 30 "$(c api1)" >/dev/null 2>&1
sleep 3
served=$(for i in 1 2 3 4; do hdr x-served-by -H "X-API-Key: $ADMIN_KEY" "$LATEST"; done | sort -u | tr '\n' ' ')
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
write_ok() {
	local code
	code=$(lb -o "$W/job2" -w '%{http_code}' -X POST -H "X-API-Key: $ADMIN_KEY" -H 'Content-Type: application/json' \
		-d '{"symbols":["AFTER"],"interval":1,"provider":"sandbox"}' "$URL/prices/poll")
	[ "$code" = 202 ]
}
check "writes work again through the LB" wait_until 30 write_ok
check "the new primary's scheduler runs the new job" wait_until 10 bash -c \
	"curl -sS --cacert '$CA' -H 'X-API-Key: $ADMIN_KEY' '$URL/prices/history?symbol=AFTER&provider=sandbox' | grep -Eq '\"points\" *: *\\[ *\\{'"

note "checks took $(($(date +%s) - t_start)) s in all"
summary
[ "$failed" -eq 0 ]
