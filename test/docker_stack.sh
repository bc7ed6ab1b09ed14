# test/docker_stack.sh: sourced by test/docker_test.sh and bench/stack.sh.
# Builds the images of docker/ with podman and starts the compose stack
# (docker/compose.yaml + docker/compose.podman.yaml, docker/compose_podman.py)
# under a project name of this run, from a copy of the sources with
# throwaway secrets and CA; removes everything it made on exit (trap).
# Before sourcing: TOP, and optionally STACK_NAME (prefix of the project
# name) and STACK_API_ENV (lines appended to the API's env file).
# After: PROJECT, TAG, W (scratch directory), CA, URL (the LB's HTTPS
# address on loopback), and the helpers compose, c, lb, psql_primary,
# wait_until, both_up; ok/not_ok/check/note/summary count checks.
CACHE=${MD_DOCKER_CACHE:-$TOP/.cache/docker}
PROJECT=${STACK_NAME:-mdtest}$$
TAG=${STACK_NAME:-mdtest}$$
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
	# (a directory there is what an earlier build without --format left)
	[ -d "$rootfs" ] && rm -rf "$rootfs"
	if [ ! -s "$rootfs" ]; then
		note "making debian:12 with mmdebstrap"
		rm -rf "$rootfs.tmp"
		# --format: from the name alone ".tmp" would make a directory
		if ! mmdebstrap --variant=minbase --quiet --format=tar bookworm "$rootfs.tmp" \
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
# (no build outputs: the images build their own, and a parallel make
# in the checkout may be writing them)
tar -C "$TOP" --exclude='*.o' --exclude='*.so' --exclude='*.bc' --exclude='.objs' \
	-cf - Makefile marketdata.control extension worker api/src api/assets \
	api/conf test/kafka_broker.c docker \
	node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js |
	tar -C "$W/src" -xf -

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
cat >"$D/.env" <<ENV
MD_IMAGE_TAG=$TAG
MD_HTTPS_PORT=$HTTPS_PORT
MD_HTTP_PORT=$HTTP_PORT
MD_KAFKA_PARTITIONS=4
ENV
printf '%s\n' "${STACK_API_ENV:-}" >>"$D/env/api.env"

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
