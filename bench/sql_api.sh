#!/usr/bin/env bash
# bench/sql_api.sh: the SQL API targets of marketdata (issue 2), measured against their
# baselines in the same run, on a throwaway cluster under bench/results/.
# Run after "make install" (make bench does both). PG_CONFIG picks the
# PostgreSQL installation, as for the tests. Prints a table and writes
# bench/results/latest.md. See bench/README.md.
#
#   BENCH_SECONDS=10     duration of each pgbench run (benchmark 1)
#   BENCH_ROUNDS=3       runs of each side, interleaved (both benchmarks);
#                        the median run counts, so one disturbed run does not
#   BENCH_CLIENTS=2      pgbench clients (benchmark 1)
#   BENCH_BATCHES=50     batches per timed ingest run (benchmark 2)
#   BENCH_BATCH_ROWS=1000  rows per batch
#   BENCH_SYMBOLS=250    symbols the rows are spread over
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DURATION=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-2}
BATCHES=${BENCH_BATCHES:-50}
BATCH_ROWS=${BENCH_BATCH_ROWS:-1000}
SYMBOLS=${BENCH_SYMBOLS:-250}

RESULTS="$TOP/bench/results"
PGDATA="$RESULTS/pgdata"
WORK="$RESULTS/work"
REPORT="$RESULTS/latest.md"
DB=bench
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

# pgbench_tps SCRIPT: transactions/s of SCRIPT (a file in bench/)
pgbench_tps() {
	cp "$TOP/bench/$1" "$WORK/$1"
	as_db_user pgbench -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared \
		-c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" -f "$WORK/$1" "$DB" \
		>"$WORK/pgbench-$1-$2.log" 2>&1 || {
		cat "$WORK/pgbench-$1-$2.log" >&2
		return 1
	}
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' \
		"$WORK/pgbench-$1-$2.log"
}

db_user_dir "$RESULTS"
db_user_dir "$WORK" fresh
start_cluster
as_db_user psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE $DB"
psql_db -c "CREATE EXTENSION marketdata"
psql_db -v batches="$BATCHES" -v batch_rows="$BATCH_ROWS" -v symbols="$SYMBOLS" \
	<"$TOP/bench/setup.sql" >/dev/null
psql_db -c "VACUUM ANALYZE"

# --- Benchmark 1: md_price vs the plain indexed SELECT of the same row ------
echo "benchmark 1: md_price vs plain SELECT, $CLIENTS clients, ${DURATION} s per run, $ROUNDS rounds"
: >"$WORK/b1.tsv"
for r in $(seq "$ROUNDS"); do
	for s in plain_select.sql md_price.sql md_price_provider.sql; do
		tps=$(pgbench_tps "$s" "$r")
		printf '%s\t%s\t%s\n' "$s" "$r" "$tps" >>"$WORK/b1.tsv"
		printf "  round %s  %-22s %10.0f tps\n" "$r" "$s" "$tps"
	done
done
b1_median() { awk -F'\t' -v s="$1" '$1 == s { print $3 }' "$WORK/b1.tsv" | median; }
b1_runs() { awk -F'\t' -v s="$1" '$1 == s { printf "%s%.0f", sep, $3; sep = ", " }' "$WORK/b1.tsv"; }
plain_tps=$(b1_median plain_select.sql)
price_tps=$(b1_median md_price.sql)
price_p_tps=$(b1_median md_price_provider.sql)
plan=$(psql_db -tAc "EXPLAIN (COSTS OFF) SELECT price FROM md.latest_prices WHERE symbol = 'AAPL' AND provider = 'yahoo_finance'" | head -1)
# the row must still have been fresh: md_price errors would have failed pgbench
fresh=$(psql_db -tAc "SELECT md_price('AAPL', max_age => '1 hour') IS NOT NULL")

# --- Benchmark 2: md_ingest_prices vs plain INSERT ... ON CONFLICT DO NOTHING
echo "benchmark 2: $BATCHES batches of $BATCH_ROWS rows over $SYMBOLS symbols, $ROUNDS rounds"
{
	# warm-up in this session (prepared plans, caches), then never counted
	echo "CALL bench.sink('warm-up', 0, 0);"
	echo "CALL bench.reset(); CALL bench.plain('warm-up', 0, 0);"
	for r in $(seq "$ROUNDS"); do
		# alternate which side goes first, so drift hits both alike
		if [ $((r % 2)) -eq 1 ]; then order="plain sink"; else order="sink plain"; fi
		for side in $order; do
			echo "CALL bench.reset(); CHECKPOINT;"
			echo "CALL bench.$side('$side', 1, $BATCHES);"
		done
	done
	# the duplicate replay: the same batches again, every row already stored
	echo "CALL bench.reset(); CALL bench.sink('load', 1, $BATCHES); CHECKPOINT;"
	echo "CALL bench.sink('sink replay', 1, $BATCHES);"
	echo "CALL bench.plain('plain replay', 1, $BATCHES);"
} >"$WORK/b2.sql"
psql_db <"$WORK/b2.sql"
psql_db -tA -F $'\t' -c "SELECT run, rows_in, rows_new, round(seconds::numeric, 3),
		round((rows_in / seconds)::numeric, 0)
	FROM bench.runs WHERE run NOT IN ('warm-up', 'load') ORDER BY ctid" >"$WORK/b2.tsv"
while IFS=$'\t' read -r run rows_in rows_new secs rps; do
	printf '  %-13s %7s rows %7s new %8s s %10s rows/s\n' "$run" "$rows_in" "$rows_new" "$secs" "$rps"
done <"$WORK/b2.tsv"
b2_rps() { awk -F'\t' -v s="$1" '$1 == s { print $5 }' "$WORK/b2.tsv" | median; }
b2_runs() { awk -F'\t' -v s="$1" '$1 == s { printf "%s%s", sep, $5; sep = ", " }' "$WORK/b2.tsv"; }
b2_new() { awk -F'\t' -v s="$1" '$1 == s { n += $3 } END { print n }' "$WORK/b2.tsv"; }
plain_rps=$(b2_rps plain)
sink_rps=$(b2_rps sink)
plain_replay_rps=$(b2_rps 'plain replay')
sink_replay_rps=$(b2_rps 'sink replay')
averages=$(psql_db -tAc "SELECT count(*) FROM md.symbol_averages")

r1=$(ratio "$price_tps" "$plain_tps")
r1p=$(ratio "$price_p_tps" "$plain_tps")
r2=$(ratio "$sink_rps" "$plain_rps")
r2r=$(ratio "$sink_replay_rps" "$plain_replay_rps")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "MISSED" }'; }

pgversion=$(psql_db -tAc "SHOW server_version")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "# marketdata benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "PostgreSQL $pgversion, $(nproc) cores ($cpu), load average before: $LOAD_BEFORE."
	echo "Loopback TCP, default settings plus shared_preload_libraries = 'marketdata'."
	echo
	echo "| benchmark | marketdata | baseline | ratio | target |"
	echo "|---|---|---|---|---|"
	echo "| md_price('AAPL', max_age => '1 hour') vs plain indexed SELECT, tps | $price_tps ($(b1_runs md_price.sql)) | $plain_tps ($(b1_runs plain_select.sql)) | $r1 | >= 0.8: $(verdict "$r1" 0.8) |"
	echo "| md_price('AAPL', 'yahoo_finance', '1 hour') vs the same SELECT, tps (information) | $price_p_tps ($(b1_runs md_price_provider.sql)) | $plain_tps | $r1p | |"
	echo "| md_ingest_prices vs INSERT ... ON CONFLICT DO NOTHING, new rows/s | $sink_rps ($(b2_runs sink)) | $plain_rps ($(b2_runs plain)) | $r2 | >= 0.5: $(verdict "$r2" 0.5) |"
	echo "| the same, replaying stored rows (all duplicates), rows/s (information) | $sink_replay_rps | $plain_replay_rps | $r2r | |"
	echo
	echo "Benchmark 1: pgbench -M prepared, $CLIENTS clients, ${DURATION} s per run, $ROUNDS interleaved rounds (median tps; each run in parentheses). Row still fresh after the runs: $fresh. Plan of the plain SELECT: $plan."
	echo "Benchmark 2: $BATCHES batches of $BATCH_ROWS rows over $SYMBOLS symbols per run, one transaction per batch, $ROUNDS rounds into freshly truncated tables (median rows/s; each run in parentheses). New rows: sink $(b2_new sink), plain $(b2_new plain); moving averages kept: $averages."
} >"$REPORT"
echo
cat "$REPORT"
