#!/usr/bin/env bash
# bench/relay.sh: the relay worker draining 200,000 outbox rows to the Kafka
# test broker, against `kcat -P` producing the same 200,000 messages (same
# keys, same payloads) to the same broker in the same run. Target (issue 4):
# the relay at least 0.5x kcat's messages/s. See bench/README.md.
#
#   BENCH_RELAY_ROWS=200000   outbox rows (price events)
#   BENCH_RELAY_SYMBOLS=2000  symbols (message keys) they are spread over
#   BENCH_RELAY_ROUNDS=3      runs of each side, alternating; the median counts
#   BENCH_RELAY_PARTITIONS=4  partitions of each topic (as make run)
#   BENCH_RELAY_BATCH=        marketdata.relay_batch_size, when not the default
#
# Needs "make install" and "make test/kafka_broker" first (make bench does
# both). Starts its own cluster (bench/results/relay/) and broker.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROWS=${BENCH_RELAY_ROWS:-200000}
SYMBOLS=${BENCH_RELAY_SYMBOLS:-2000}
ROUNDS=${BENCH_RELAY_ROUNDS:-3}
PARTITIONS=${BENCH_RELAY_PARTITIONS:-4}

RESULTS="$TOP/bench/results"
WORK="$RESULTS/relay"
PGDATA="$WORK/pgdata"
DB=postgres
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

command -v kcat >/dev/null || { echo "relay: kcat is missing (test/deps.sh)" >&2; exit 1; }
db_user_dir "$RESULTS"
db_user_dir "$WORK" fresh
# the relay publishes to price-events, kcat to its own topic of the same shape
start_kafka_broker "$PARTITIONS" price-events kcat-baseline
# track_commit_timestamp: when the relay's last "published" mark committed
start_cluster "track_commit_timestamp = on"
psql_db -c "CREATE EXTENSION marketdata"
if [ -n "${BENCH_RELAY_BATCH:-}" ]; then
	psql_db -c "ALTER SYSTEM SET marketdata.relay_batch_size = $BENCH_RELAY_BATCH" -c "SELECT pg_reload_conf()" >/dev/null
fi

# the outbox as the sink writes it: one price event per row, in id order
psql_db <<SQL
INSERT INTO md.outbox (symbol, payload)
SELECT s, md._price_event(s, 'yahoo_finance', 100 + (g % 997) / 100.0,
						  timestamptz '2026-01-02 14:30:00+00' + g * interval '1 ms', g)
FROM generate_series(1, $ROWS) g,
	 LATERAL (SELECT 'SYNR' || lpad((g % $SYMBOLS)::text, 5, '0') AS s) k
ORDER BY g;
VACUUM ANALYZE md.outbox;
SQL
# the same messages for kcat: key TAB value, one a line, in id order (the
# relay sends payload::text, so does this)
psql_db -tA -F $'\t' -c "SELECT symbol, payload::text FROM md.outbox ORDER BY id" \
	>"$WORK/messages.tsv"
[ "$(wc -l <"$WORK/messages.tsv")" -eq "$ROWS" ]

now() { date +%s.%N; }

run_kcat() {
	local t0 t1
	t0=$(now)
	kcat -P -b "$BOOTSTRAP" -t kcat-baseline -K $'\t' -l "$WORK/messages.tsv" 2>"$WORK/kcat.err"
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

pending() { psql_db -tAc "SELECT count(*) FROM md.outbox_pending"; }
drained() { [ "$(pending)" = 0 ]; }

# the relay starts publishing when Kafka is configured (a reload); it is
# done when the last row's "published" mark has committed
run_relay() {
	local t0
	# nothing published yet: no progress recorded
	psql_db -c "TRUNCATE md.outbox_published" -c "VACUUM md.outbox" >/dev/null
	psql_db -c "ALTER SYSTEM SET marketdata.kafka_bootstrap_servers = '$BOOTSTRAP'"
	t0=$(psql_db -tAc "SELECT extract(epoch FROM clock_timestamp()) FROM pg_reload_conf()")
	poll_until 600 drained || { echo "relay: $(pending) rows still pending" >&2; exit 1; }
	# in the broker: the newest message timestamp (CreateTime, set when the
	# relay handed the message to librdkafka; delivery follows within the
	# linger of 5 ms and an acknowledgement)
	in_broker=$(kcat -C -b "$BOOTSTRAP" -t price-events -o -1 -e -q -f '%T\n' 2>/dev/null |
		awk -v t0="$t0" 'BEGIN { m = 0 } $1 > m { m = $1 } END { printf "%.3f", m / 1000 - t0 }')
	marked=$(psql_db -tAc "SELECT round((extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) - $t0)::numeric, 3)
		FROM md.outbox_published")
	echo "$in_broker $marked"
	# stop the relay (it drops its producer) so the next run starts alike
	psql_db -c "ALTER SYSTEM RESET marketdata.kafka_bootstrap_servers" -c "SELECT pg_reload_conf()" >/dev/null
	poll_until 30 relay_idle
}
relay_idle() {
	[ "$(psql_db -tAc "SELECT state FROM md.worker_status WHERE worker = 'relay'")" = "idle: Kafka not configured" ]
}
poll_until 30 relay_idle || { echo "relay: the worker did not start" >&2; exit 1; }

echo "relay: $ROWS outbox rows over $SYMBOLS keys, topics of $PARTITIONS partitions, $ROUNDS rounds"
: >"$WORK/kcat.times"
: >"$WORK/relay.times"
: >"$WORK/relay-broker.times"
for r in $(seq "$ROUNDS"); do
	k=$(run_kcat)
	echo "$k" >>"$WORK/kcat.times"
	run_relay >"$WORK/relay-run.out"
	read -r b d <"$WORK/relay-run.out"
	echo "$b" >>"$WORK/relay-broker.times"
	echo "$d" >>"$WORK/relay.times"
	printf '  round %s: kcat %s s; relay: all in the broker after %s s, all marked published after %s s\n' \
		"$r" "$k" "$b" "$d"
done

# each topic must hold every message of every round
offsets() {
	kcat -Q -b "$BOOTSTRAP" $(for p in $(seq 0 $((PARTITIONS - 1))); do echo "-t $1:$p:-1"; done) 2>/dev/null |
		awk '{ n += $NF } END { print n + 0 }'
}
med() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
kcat_s=$(med <"$WORK/kcat.times")
relay_s=$(med <"$WORK/relay.times")

kcat_rate=$(awk -v n="$ROWS" -v s="$kcat_s" 'BEGIN { printf "%.0f", n / s }')
relay_rate=$(awk -v n="$ROWS" -v s="$relay_s" 'BEGIN { printf "%.0f", n / s }')
r=$(ratio "$relay_rate" "$kcat_rate")
broker_s=$(med <"$WORK/relay-broker.times")
broker_rate=$(awk -v n="$ROWS" -v s="$broker_s" 'BEGIN { printf "%.0f", n / s }')
rb=$(ratio "$broker_rate" "$kcat_rate")
verdict=$(awk -v r="$r" 'BEGIN { print (r >= 0.5) ? "met" : "MISSED" }')
{
	echo "relay, $(date -u '+%Y-%m-%d %H:%M UTC'), load average before: $LOAD_BEFORE"
	printf '  kcat -P : %s s median, %s msg/s  (runs: %s)\n' "$kcat_s" "$kcat_rate" "$(paste -sd' ' "$WORK/kcat.times")"
	printf '  relay, every row in the broker   : %s s median, %s msg/s  (runs: %s), ratio to kcat %s\n' \
		"$broker_s" "$broker_rate" "$(paste -sd' ' "$WORK/relay-broker.times")" "$rb"
	printf '  relay, every row marked published: %s s median, %s msg/s  (runs: %s)\n' \
		"$relay_s" "$relay_rate" "$(paste -sd' ' "$WORK/relay.times")"
	printf '  ratio relay (drained: published and marked) / kcat: %s (target >= 0.5: %s)\n' "$r" "$verdict"
	printf '  messages in the broker: price-events %s, kcat-baseline %s (expected %s each)\n' \
		"$(offsets price-events)" "$(offsets kcat-baseline)" "$((ROWS * ROUNDS))"
} | tee "$WORK/report.txt"
[ "$verdict" = met ]
