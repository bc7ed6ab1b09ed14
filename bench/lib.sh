# bench/lib.sh: shared by the benchmark scripts (sourced, not run): a
# throwaway cluster on loopback, the fake provider and the Kafka test
# broker, each stopped when the script exits, and small statistics helpers.
#
# The caller sets PGDATA (the cluster) and WORK (logs, scratch files; the
# database user can write there) before start_cluster.
. "$(dirname "${BASH_SOURCE[0]}")/../test/lib.sh"

BENCH_PIDS=()

# a port nobody listens on (connecting is refused), picked at random below
# the kernel's ephemeral range (32768 up), where an outgoing connection's
# local port could make bind fail although nobody listens
free_port() {
	local p i
	for i in $(seq 100); do
		p=$((10000 + RANDOM % 22000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "bench: no free port found" >&2
	return 1
}

bench_stop() {
	local pid
	for pid in "${BENCH_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	if [ -f "$PGDATA/postmaster.pid" ]; then
		as_db_user pg_ctl -D "$PGDATA" -w stop -m fast >/dev/null || true
	fi
}

# start_cluster [SETTING...]: initdb PGDATA and start it on 127.0.0.1 at a
# random free port (PGPORT), marketdata preloaded, each SETTING (a
# postgresql.conf line) added; stopped at exit
start_cluster() {
	db_user_dir "$PGDATA" fresh
	db_user_dir "$WORK"
	as_db_user initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
		>"$WORK/initdb.log"
	PGPORT=$(free_port)
	{
		cat <<CONF
# marketdata benchmarks (bench/): loopback only, no Unix socket
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = ''
shared_preload_libraries = 'marketdata'
# the fake provider is on loopback
marketdata.allow_private_provider_urls = on
CONF
		printf '%s\n' "$@"
	} >>"$PGDATA/postgresql.conf"
	trap bench_stop EXIT
	as_db_user pg_ctl -D "$PGDATA" -l "$WORK/postgres.log" -w start >/dev/null
}

# psql_db [ARG...]: psql in database DB of the cluster, stopping at errors
psql_db() {
	as_db_user psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d "$DB" "$@"
}

# start_fake_provider LATENCY_MS: the fake provider on a free port (FAKE_PORT)
start_fake_provider() {
	make -s -C "$TOP/test/fake_provider"
	"$TOP/test/fake_provider/fake_provider" --fixtures "$TOP/test/fixtures/providers" \
		--port 0 --latency-ms "$1" >"$WORK/fake.out" 2>"$WORK/fake.err" &
	BENCH_PIDS+=($!)
	for _ in $(seq 100); do grep -q '^PORT ' "$WORK/fake.out" && break; sleep 0.05; done
	FAKE_PORT=$(awk '/^PORT /{print $2}' "$WORK/fake.out")
	[ -n "$FAKE_PORT" ] || { echo "bench: the fake provider did not start" >&2; return 1; }
}

# start_kafka_broker PARTITIONS TOPIC...: the Kafka test broker (BOOTSTRAP);
# built by "make test/kafka_broker" (make bench does)
start_kafka_broker() {
	[ -x "$TOP/test/kafka_broker" ] ||
		{ echo "bench: build test/kafka_broker first (make test/kafka_broker)" >&2; return 1; }
	rm -f "$WORK/bootstrap"
	"$TOP/test/kafka_broker" -p "$1" -f "$WORK/bootstrap" "${@:2}" \
		>"$WORK/broker.out" 2>"$WORK/broker.err" &
	BENCH_PIDS+=($!)
	for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.05; done
	BOOTSTRAP=$(head -1 "$WORK/bootstrap")
	[ -n "$BOOTSTRAP" ] || { echo "bench: the Kafka test broker did not start" >&2; return 1; }
}

# poll_until SECONDS CMD...: run CMD until it succeeds, at most SECONDS
poll_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# median of the numbers on stdin: the machine is shared and noisy, and
# noise only ever slows a run down, so the median is steadier than the mean
median() {
	sort -g | awk '{ v[NR] = $1 } END { printf "%.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'
}
