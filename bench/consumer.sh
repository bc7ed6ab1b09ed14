#!/usr/bin/env bash
# bench/consumer.sh: the Kafka consumer's drain rate against COPY.
#
# Pre-fills a topic of the Kafka test broker with N price events (default
# 1,000,000; 1,000 symbols, 3 providers), subscribes to it and times the
# consumer until every event is stored in md.prices (moving averages and
# Redis write-through on). In the same run, on the same server, COPY loads
# the same N rows into md.prices of a second database. Prints both rates
# and their ratio. Targets (issue 5): >= 0.5x COPY and >= 100,000 events/s.
#
#   PG_CONFIG=... bench/consumer.sh [N]
#   BATCH=20000 PG_CONFIG=... bench/consumer.sh   another marketdata.consumer_batch_size
#   PERF=1 PG_CONFIG=... bench/consumer.sh [N]   also profile the consumer
#                                                (perf report in $WORK/perf.txt)
#
# Run after "make install" and "make test/kafka_broker". Everything runs on
# 127.0.0.1 and free ports and is stopped at the end.
set -euo pipefail
. "$(dirname "$0")/../test/lib.sh"

N=${1:-1000000}
PARTITIONS=$(( N / 30000 + 4 ))
WORK=$(private_dir bench-consumer)
db_user_dir "$WORK" fresh
PGDATA="$WORK/pgdata"
BROKER_PID=""
REDIS_PID=""

free_port() {
	perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

cleanup() {
	as_db_user pg_ctl -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
	[ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null || true
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT

[ -x "$TOP/test/kafka_broker" ] || { echo "build test/kafka_broker first (make test/kafka_broker)" >&2; exit 1; }

# --- the data: one file for Kafka (key TAB event), one for COPY --------------
echo "generating $N events"
perl -e '
	my ($n, $kafka, $csv) = @ARGV;
	my @providers = ("yahoo_finance", "finnhub", "polygon");
	my $base = 1704067200;	# 2024-01-01 UTC
	open(my $k, ">", $kafka) or die; open(my $c, ">", $csv) or die;
	for my $i (0 .. $n - 1) {
		my $sym = sprintf("S%04d", $i % 1000);
		my $p = $providers[int($i / 1000) % 3];
		my $price = sprintf("%.2f", 10 + ($i * 7919 % 100000) / 100);
		my $ts = $base + $i;
		my @t = gmtime($ts);
		my $iso = sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0]);
		print $k "$sym\t{\"symbol\":\"$sym\",\"price\":$price,\"timestamp\":\"$iso\",\"source\":\"$p\"}\n";
		print $c "$sym,$p,$price,$iso\n";
	}' "$N" "$WORK/events.txt" "$WORK/events.csv"
db_user_dir "$WORK"

# --- servers -----------------------------------------------------------------
# the mock cluster keeps about 5 MB per partition: enough partitions to keep all
"$TOP/test/kafka_broker" -p "$PARTITIONS" -f "$WORK/bootstrap" bench-events >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/bootstrap" ] && break; sleep 0.1; done
BOOTSTRAP=$(cat "$WORK/bootstrap")

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$WORK" >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!

PGPORT=$(free_port)
export PGPORT PGHOST="$WORK"
as_db_user initdb -D "$PGDATA" -A trust -U postgres >/dev/null
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PGPORT
shared_buffers = 256MB
max_wal_size = 4GB
shared_preload_libraries = 'marketdata'
marketdata.databases = 'bench'
marketdata.kafka_bootstrap_servers = '$BOOTSTRAP'
marketdata.redis_url = 'redis://127.0.0.1:$REDIS_PORT'
EOF
[ -z "${BATCH:-}" ] || echo "marketdata.consumer_batch_size = $BATCH" >>"$PGDATA/postgresql.conf"
as_db_user pg_ctl -D "$PGDATA" -l "$WORK/postgresql.log" -w start >/dev/null
psql_q() { as_db_user psql -X -q -A -t -v ON_ERROR_STOP=1 -U postgres "$@"; }
psql_q -d postgres -c 'CREATE DATABASE bench' -c 'CREATE DATABASE bench_copy'
for db in bench bench_copy; do
	psql_q -d $db -c 'CREATE EXTENSION marketdata' \
		-c "UPDATE md.kafka_subscriptions SET enabled = false" \
		-c "SELECT md._ensure_price_partition(t) FROM generate_series(timestamptz '2024-01-01 00:00+00', timestamptz '2024-01-01 00:00+00' + $N * interval '1 second', '1 month') t" >/dev/null
done

echo "pre-filling topic bench-events"
kcat -P -b "$BOOTSTRAP" -t bench-events -K "$(printf '\t')" -l "$WORK/events.txt"

now() { date +%s.%N; }

# --- the consumer --------------------------------------------------------------
until [ "$(psql_q -d bench -c "SELECT count(*) FROM md.worker_status WHERE worker = 'consumer' AND state LIKE 'idle%'")" = 1 ]; do
	sleep 0.1
done
PERF_PID=""
if [ "${PERF:-0}" = 1 ]; then
	pid=$(psql_q -d bench -c "SELECT pid FROM md.worker_status WHERE worker = 'consumer'")
	perf record -g -o "$WORK/perf.data" -p "$pid" >"$WORK/perf.log" 2>&1 &
	PERF_PID=$!
fi
psql_q -d bench -c "INSERT INTO md.kafka_subscriptions (topic) VALUES ('bench-events')"
t0=$(now)
until [ "$(psql_q -d bench -c "SELECT coalesce(sum(stored_offset), 0) FROM md.kafka_status WHERE topic = 'bench-events'")" -ge "$N" ]; do
	sleep 0.05
done
t1=$(now)
if [ -n "$PERF_PID" ]; then
	kill -INT "$PERF_PID"; wait "$PERF_PID" || true
	perf report -i "$WORK/perf.data" --no-children --percent-limit 1 --stdio >"$WORK/perf.txt" 2>/dev/null || true
	echo "profile: $WORK/perf.txt"
fi
drain=$(psql_q -d bench -c "SELECT extract(epoch FROM clock_timestamp() - min(ingested_at)) FROM md.prices")
stored=$(psql_q -d bench -c "SELECT count(*) FROM md.prices")
averages=$(psql_q -d bench -c "SELECT count(*) FROM md.symbol_averages")
cached=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" DBSIZE)
dead=$(psql_q -d bench -c "SELECT count(*) FROM md.dead_letters")

if [ "$stored" -ne "$N" ] || [ "$dead" -ne 0 ]; then
	echo "the consumer stored $stored prices and $dead dead letters, not $N prices" >&2
	exit 1
fi

# --- COPY of the same rows -------------------------------------------------------
c0=$(now)
psql_q -d bench_copy -c "COPY md.prices (symbol, provider, price, ts) FROM '$WORK/events.csv' (FORMAT csv)"
c1=$(now)
copied=$(psql_q -d bench_copy -c "SELECT count(*) FROM md.prices")

perl -e '
	my ($n, $t0, $t1, $drain, $c0, $c1, $stored, $copied, $avg, $cached, $dead) = @ARGV;
	my $total = $t1 - $t0;
	my $copy = $c1 - $c0;
	printf "events: %d; stored by the consumer: %d (dead letters %d), averages rows %d, Redis keys %d\n",
		$n, $stored, $dead, $avg, $cached;
	printf "consumer: %.2f s from the first batch (%.0f events/s); %.2f s from INSERT of the subscription (%.0f events/s)\n",
		$drain, $n / $drain, $total, $n / $total;
	printf "COPY:     %.2f s (%.0f rows/s), %d rows\n", $copy, $copied / $copy, $copied;
	printf "ratio consumer/COPY: %.2fx (from the first batch), %.2fx (from INSERT)\n",
		($n / $drain) / ($copied / $copy), ($n / $total) / ($copied / $copy);
' "$N" "$t0" "$t1" "$drain" "$c0" "$c1" "$stored" "$copied" "$averages" "$cached" "$dead"
