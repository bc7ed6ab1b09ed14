#!/usr/bin/env bash
# bench/stack.sh: GET /prices/latest (cache hit) through the compose stack,
# HAProxy terminating TLS in front of api1 and api2, against one more
# instance of the same API image with the same settings published plainly
# on loopback, in the same run, interleaved (direct, stack, direct, ...).
# Target: the stack's rate >= 0.5x the direct one (TLS and one proxy hop
# cost no more than half). Also reports the image sizes and the time from
# "up" to healthy. Builds and starts the stack like make docker-test
# (test/docker_stack.sh) and removes it at the end. Settings:
# BENCH_DURATION (s per run, default 10), BENCH_ROUNDS (default 3),
# BENCH_CONNECTIONS (default 64).
set -uo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
DUR=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-64}
STACK_NAME=mdbench
STACK_API_ENV="MD_API_RATE_LIMIT_IP=1000000000
MD_API_RATE_LIMIT_ADMIN=1000000000"
. "$TOP/test/docker_stack.sh"

[ "$failed" -eq 0 ] || { echo "bench/stack.sh: the stack did not come up" >&2; exit 1; }
wait_until 60 both_up || { echo "bench/stack.sh: the LB does not reach both instances" >&2; exit 1; }
KEY=$(psql_primary "SELECT md_create_api_key('bench', 'admin')")
psql_primary "SELECT md_ingest_price('BENCH', 'sandbox', 42.5, now(), 1, 'USD')" >/dev/null

# the direct instance: api1's image and environment, its port on loopback
DPORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
podman inspect "$(c api1)" --format '{{range .Config.Env}}{{println .}}{{end}}' | grep -E '^(MD_|REDIS_URL=)' >"$W/direct.env"
podman run -d --name "$(c direct)" --label "md.stack=$PROJECT" \
	--network "${PROJECT}_backend" --network "${PROJECT}_public" -p "127.0.0.1:$DPORT:8080" \
	--env-file "$W/direct.env" \
	-v "$D/secrets/api_db_password:/run/secrets/api_db_password:ro" \
	-v "$D/secrets/jwt_secret:/run/secrets/jwt_secret:ro" \
	"marketdata-api:$TAG" >/dev/null 2>"$W/direct.err" || { cat "$W/direct.err" >&2; exit 1; }
DIRECT="http://127.0.0.1:$DPORT/prices/latest?symbol=BENCH&provider=sandbox"
STACK="$URL/prices/latest?symbol=BENCH&provider=sandbox"
wait_until 30 curl -fsS -o /dev/null -H "X-API-Key: $KEY" "$DIRECT" ||
	{ echo "bench/stack.sh: the direct instance does not answer" >&2; exit 1; }
lb -fsS -o /dev/null -H "X-API-Key: $KEY" "$STACK" || { echo "bench/stack.sh: the stack does not answer" >&2; exit 1; }

# run NAME URL: one wrk run; prints "rps p99_ms non2xx"
run() {
	wrk -t 2 -c "$CONNS" -d "${DUR}s" --latency -H "X-API-Key: $KEY" "$2" >"$W/wrk.$1" 2>&1
	/usr/bin/python3 - "$W/wrk.$1" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print("%.0f %.2f %s" % (rps, p99, bad.group(1) if bad else 0))
PY
}

echo "# $CONNS connections, ${DUR}s per run, $ROUNDS rounds"
printf '%-6s %-7s %10s %9s %7s\n' round target req/s p99_ms non2xx
ratios=()
for r in $(seq 1 "$ROUNDS"); do
	read -r d_rps d_p99 d_bad < <(run "direct$r" "$DIRECT")
	printf '%-6s %-7s %10s %9s %7s\n' "$r" direct "$d_rps" "$d_p99" "$d_bad"
	read -r s_rps s_p99 s_bad < <(run "stack$r" "$STACK")
	printf '%-6s %-7s %10s %9s %7s\n' "$r" stack "$s_rps" "$s_p99" "$s_bad"
	ratios+=("$(echo "scale=3; $s_rps / $d_rps" | bc)")
done
echo "stack/direct ratios: ${ratios[*]} (target >= 0.5)"
