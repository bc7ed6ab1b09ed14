#!/usr/bin/env bash
# bench/bars.sh: the bar targets of marketdata (issue 17), each against its
# baseline in the same run, on a throwaway cluster under bench/results/.
# Run after "make install" (make bench does both). Prints a table and
# writes bench/results/bars.md. See bench/README.md ("bars").
#
#   BENCH_ROUNDS=5          runs of each side, interleaved; the median counts
#   BENCH_QUERY_DAYS=252    trading days of the query symbol (a year)
#   BENCH_PER_MINUTE=10     its prices a minute (390 minutes a day)
#   BENCH_BATCHES=50        batches per timed ingest run
#   BENCH_BATCH_ROWS=1000   rows per batch
#   BENCH_SYMBOLS=250       symbols the rows are spread over
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=${BENCH_ROUNDS:-5}
QUERY_DAYS=${BENCH_QUERY_DAYS:-252}
PER_MINUTE=${BENCH_PER_MINUTE:-10}
BATCHES=${BENCH_BATCHES:-50}
BATCH_ROWS=${BENCH_BATCH_ROWS:-1000}
SYMBOLS=${BENCH_SYMBOLS:-250}

RESULTS="$TOP/bench/results"
PGDATA="$RESULTS/pgdata-bars"
WORK="$RESULTS/work-bars"
REPORT="$RESULTS/bars.md"
DB=bench
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

db_user_dir "$RESULTS"
db_user_dir "$WORK" fresh
start_cluster
as_db_user psql -X -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE $DB"
psql_db -c "CREATE EXTENSION marketdata"
psql_db -v batches="$BATCHES" -v batch_rows="$BATCH_ROWS" -v symbols="$SYMBOLS" \
	<"$TOP/bench/setup.sql" >/dev/null
echo "loading the query symbol: $QUERY_DAYS days, $PER_MINUTE prices a minute"
psql_db -v query_days="$QUERY_DAYS" -v per_minute="$PER_MINUTE" <"$TOP/bench/bars.sql" >/dev/null
psql_db -c "VACUUM ANALYZE"
lo=$(psql_db -tAc "SELECT quote_literal(lo) FROM bench.query_range")
hi=$(psql_db -tAc "SELECT quote_literal(hi) FROM bench.query_range")
prices=$(psql_db -tAc "SELECT count(*) FROM md.prices WHERE symbol = 'QBENCH'")
minute_bars=$(psql_db -tAc "SELECT count(*) FROM md.bars WHERE symbol = 'QBENCH' AND \"interval\" = '1 minute'")

# --- Query: md_bars 1 hour over the year vs the GROUP BY over md.prices ------
q_bars="SELECT * FROM md_bars('QBENCH', '1 hour', $lo, $hi)"
q_group="SELECT * FROM bench.group_by_hour($lo, $hi)"
q_bars5="SELECT * FROM md_bars('QBENCH', '5 minutes', $lo, $hi)"
same=$(psql_db -tAc "SELECT (SELECT count(*) FROM (($q_group) EXCEPT
		(SELECT bucket, open, high, low, close, volume, prices FROM md_bars('QBENCH', '1 hour', $lo, $hi))) a)
	+ (SELECT count(*) FROM ((SELECT bucket, open, high, low, close, volume, prices
		FROM md_bars('QBENCH', '1 hour', $lo, $hi)) EXCEPT ($q_group)) b)")
hours=$(psql_db -tAc "SELECT count(*) FROM ($q_bars) b")
echo "query: $prices prices, $minute_bars minute bars, $hours hour bars; rows differing: $same"
{
	# warm-up: plans and caches
	echo "CALL bench.time_query('warm-up', \$q\$$q_bars\$q\$);"
	echo "CALL bench.time_query('warm-up', \$q\$$q_group\$q\$);"
	for r in $(seq "$ROUNDS"); do
		echo "CALL bench.time_query('md_bars', \$q\$$q_bars\$q\$);"
		echo "CALL bench.time_query('group by', \$q\$$q_group\$q\$);"
		echo "CALL bench.time_query('md_bars 5 minutes', \$q\$$q_bars5\$q\$);"
	done
} >"$WORK/query.sql"
psql_db <"$WORK/query.sql"
q_runs() { psql_db -tAc "SELECT string_agg(round((seconds * 1000)::numeric, 1)::text, ', ' ORDER BY ctid) FROM bench.query_runs WHERE run = '$1'"; }
bars_ms=$(psql_db -tAc "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) * 1000 FROM bench.query_runs WHERE run = 'md_bars'")
group_ms=$(psql_db -tAc "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) * 1000 FROM bench.query_runs WHERE run = 'group by'")
bars5_ms=$(psql_db -tAc "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds) * 1000 FROM bench.query_runs WHERE run = 'md_bars 5 minutes'")
q_ratio=$(awk -v a="$group_ms" -v b="$bars_ms" 'BEGIN { printf "%.1f\n", a / b }')
q5_ratio=$(awk -v a="$group_ms" -v b="$bars5_ms" 'BEGIN { printf "%.1f\n", a / b }')

# --- Write cost: the sink with bars on (3 levels) vs off -----------------------
echo "write cost: $BATCHES batches of $BATCH_ROWS rows over $SYMBOLS symbols, $ROUNDS rounds"
{
	echo "SET marketdata.bar_intervals = ''; CALL bench.sink('warm-up', 0, 0);"
	echo "RESET marketdata.bar_intervals; CALL bench.reset_bars(); CALL bench.sink('warm-up', 0, 0);"
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) -eq 1 ]; then order="off on"; else order="on off"; fi
		for side in $order; do
			if [ "$side" = off ]; then echo "SET marketdata.bar_intervals = '';"; else echo "RESET marketdata.bar_intervals;"; fi
			echo "CALL bench.reset_bars(); CHECKPOINT;"
			echo "CALL bench.sink('bars $side', 1, $BATCHES);"
		done
	done
} >"$WORK/write.sql"
psql_db <"$WORK/write.sql"
psql_db -tA -F $'\t' -c "SELECT run, rows_new, round(seconds::numeric, 3), round((rows_new / seconds)::numeric, 0)
	FROM bench.runs WHERE run LIKE 'bars %' ORDER BY ctid" >"$WORK/write.tsv"
while IFS=$'\t' read -r run rows_new secs rps; do
	printf '  %-9s %7s new %8s s %10s rows/s\n' "$run" "$rows_new" "$secs" "$rps"
done <"$WORK/write.tsv"
w_rps() { awk -F'\t' -v s="$1" '$1 == s { print $4 }' "$WORK/write.tsv" | median; }
w_runs() { awk -F'\t' -v s="$1" '$1 == s { printf "%s%s", sep, $4; sep = ", " }' "$WORK/write.tsv"; }
on_rps=$(w_rps 'bars on')
off_rps=$(w_rps 'bars off')
w_ratio=$(ratio "$on_rps" "$off_rps")
bars_kept=$(psql_db -tAc "SELECT count(*) FROM md.bars WHERE symbol <> 'QBENCH'")

verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r >= t) ? "met" : "MISSED" }'; }
pgversion=$(psql_db -tAc "SHOW server_version")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "# marketdata bar benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "PostgreSQL $pgversion, $(nproc) cores ($cpu), load average before: $LOAD_BEFORE."
	echo
	echo "| benchmark | marketdata | baseline | ratio | target |"
	echo "|---|---|---|---|---|"
	echo "| md_bars 1 hour over $QUERY_DAYS trading days vs date_trunc GROUP BY over md.prices, ms | $bars_ms ($(q_runs md_bars)) | $group_ms ($(q_runs 'group by')) | ${q_ratio}x faster | >= 20x: $(verdict "$q_ratio" 20) |"
	echo "| md_bars 5 minutes (rolled up from 1-minute bars) vs the same GROUP BY (information), ms | $bars5_ms ($(q_runs 'md_bars 5 minutes')) | $group_ms | ${q5_ratio}x faster | |"
	echo "| the sink with bars on (1 minute, 1 hour, 1 day) vs off, new rows/s | $on_rps ($(w_runs 'bars on')) | $off_rps ($(w_runs 'bars off')) | $w_ratio | >= 0.7: $(verdict "$w_ratio" 0.7) |"
	echo
	echo "Query: $prices prices of one symbol, $minute_bars 1-minute bars, $hours hour bars; rows differing between md_bars and the GROUP BY: $same (must be 0). $ROUNDS interleaved rounds, median (each run in parentheses), timed by the server's clock, all rows read."
	echo "Write cost: bench.sink of bench/setup.sql, $BATCHES batches of $BATCH_ROWS rows over $SYMBOLS symbols per run, one transaction per batch, into freshly truncated tables, $ROUNDS rounds alternating which side goes first; bars kept by the last on run: $bars_kept."
} >"$REPORT"
echo
cat "$REPORT"
[ "$same" = 0 ]
