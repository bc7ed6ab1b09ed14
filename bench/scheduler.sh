#!/usr/bin/env bash
# bench/scheduler.sh: the scheduler worker polling 2,000 symbols every second
# from the fake provider (5 ms latency per request). Measures the sustained
# quotes/s and the delay from each run's due time to the commit that makes
# its prices visible in md.latest_prices. Targets (issue 4): every symbol
# polled every second, p99 delay under 250 ms. See bench/README.md.
#
#   BENCH_SCHED_SECONDS=30     measured seconds (due times in the window)
#   BENCH_SCHED_WARMUP=5       seconds of runs before the window, not counted
#   BENCH_SCHED_JOBS=20        polling jobs, interval 1 s, all due together
#   BENCH_SCHED_PER_JOB=100    symbols per job (SYN..., synthetic successes)
#   BENCH_SCHED_CONCURRENCY=128 yahoo_finance's max_concurrency (64 per
#                              scheduler process with the 2 of the default)
#   BENCH_SCHED_LATENCY=5      the fake provider's latency per request, ms
#   BENCH_SCHED_SPREAD=0       1: the jobs' due times spread evenly over the
#                              second (as jobs created at different times
#                              are), instead of all due at the same instant
#   BENCH_SCHED_WORKERS=2      marketdata.scheduler_workers (1: one
#                              scheduler process, as before 2026-11-26)
#   BENCH_SCHED_CONF=          more postgresql.conf lines (bench/retention.sh)
#   BENCH_SCHED_SIZES=0        N > 0: the database's and the growing tables'
#                              sizes every N s into $WORK/sizes.tsv
#   BENCH_SCHED_WORK=scheduler the directory under bench/results/
#
# Needs "make install" first (PG_CONFIG picks the PostgreSQL). Starts its
# own cluster (bench/results/scheduler/) and fake provider, stops them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUN_S=${BENCH_SCHED_SECONDS:-30}
WARMUP_S=${BENCH_SCHED_WARMUP:-5}
JOBS=${BENCH_SCHED_JOBS:-20}
PER_JOB=${BENCH_SCHED_PER_JOB:-100}
CONCURRENCY=${BENCH_SCHED_CONCURRENCY:-128}
LATENCY=${BENCH_SCHED_LATENCY:-5}
SPREAD=${BENCH_SCHED_SPREAD:-0}
WORKERS=${BENCH_SCHED_WORKERS:-2}
EXTRA_CONF=${BENCH_SCHED_CONF:-}
SIZES_S=${BENCH_SCHED_SIZES:-0}
NSYM=$((JOBS * PER_JOB))
# the budget: 5x the load, so the token bucket never holds a request back
RATE_PER_MIN=$((NSYM * 60 * 5))

RESULTS="$TOP/bench/results"
WORK="$RESULTS/${BENCH_SCHED_WORK:-scheduler}"
PGDATA="$WORK/pgdata"
DB=postgres
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)

db_user_dir "$RESULTS"
db_user_dir "$WORK" fresh
start_fake_provider "$LATENCY"
# the workers run in marketdata.databases ('postgres' by default);
# track_commit_timestamp: when each run's prices became visible
start_cluster "track_commit_timestamp = on" "marketdata.scheduler_workers = $WORKERS" "$EXTRA_CONF"

psql_db -c "CREATE EXTENSION marketdata"
scheduler_ready() {
	[ "$(psql_db -tAc "SELECT count(*) FROM md.worker_status
		WHERE worker = 'scheduler' AND state NOT LIKE 'waiting for CREATE%'")" = "$WORKERS" ]
}
poll_until 30 scheduler_ready || { echo "scheduler: the worker did not start" >&2; exit 1; }

psql_db <<SQL
UPDATE md.providers SET base_url = 'http://127.0.0.1:$FAKE_PORT' WHERE name <> 'sandbox';
UPDATE md.providers SET max_concurrency = $CONCURRENCY, rate_limit_per_minute = $RATE_PER_MIN
	WHERE name = 'yahoo_finance';

-- The due time of each run: the job's next_run_at just before the claim
-- moved it on, recorded by a trigger in the claim's transaction (one row
-- per job and second: a small cost for the scheduler, counted in the delay).
CREATE SCHEMA bench;
CREATE TABLE bench.claims (job_id bigint, due_at timestamptz, claimed_at timestamptz);
CREATE FUNCTION bench.record_claim() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.last_status = 'running' AND NEW.next_run_at <> OLD.next_run_at THEN
		INSERT INTO bench.claims VALUES (OLD.id, OLD.next_run_at, now());
	END IF;
	RETURN NULL;
END \$\$;
CREATE TRIGGER record_claim AFTER UPDATE ON md.polling_jobs
	FOR EACH ROW EXECUTE FUNCTION bench.record_claim();

-- $JOBS jobs of $PER_JOB symbols, first due on a whole second 2 s from now
-- (spread: job j a j/$JOBS of a second later)
INSERT INTO md.polling_jobs (symbols, interval, provider, next_run_at)
SELECT ARRAY(SELECT 'SYNS' || lpad(((j - 1) * $PER_JOB + k)::text, 5, '0')
			 FROM generate_series(1, $PER_JOB) k),
	   1, 'yahoo_finance', date_trunc('second', now()) + interval '2 s'
			+ CASE WHEN $SPREAD = 1 THEN (j - 1) * interval '1 s' / $JOBS ELSE interval '0' END
FROM generate_series(1, $JOBS) j;
SQL

echo "scheduler ($WORKERS scheduler process(es)): $JOBS jobs x $PER_JOB symbols = $NSYM symbols every 1 s ($([ "$SPREAD" = 1 ] && echo "due times spread over the second" || echo "all due at the same instant")), fake provider" \
	"latency $LATENCY ms, max_concurrency $CONCURRENCY, rate_limit_per_minute $RATE_PER_MIN;" \
	"${WARMUP_S} s warm-up, ${RUN_S} s measured"
# the window is over when a run due after it has been claimed and every
# run due in it is finished (or after a generous timeout: then it counts
# the unfinished runs as misses)
window_over() {
	[ "$(psql_db -tAc "WITH w AS (SELECT min(due_at) + interval '$((WARMUP_S + RUN_S)) s' AS t1
			FROM bench.claims)
		SELECT EXISTS (SELECT 1 FROM bench.claims, w WHERE due_at >= w.t1)
		   AND NOT EXISTS (SELECT 1 FROM md.job_runs r JOIN bench.claims c
				ON r.job_id = c.job_id AND r.started_at >= c.claimed_at
				   AND r.started_at < c.claimed_at + interval '1 s', w
			WHERE r.status = 'running' AND c.due_at < w.t1)")" = t ]
}
# sizes: seconds since the jobs began, the database, md.raw_responses,
# md.job_runs, md.prices (with indexes and TOAST)
sample_sizes() {
	local t=0
	printf 'seconds\tdatabase_MB\traw_responses_MB\tjob_runs_MB\tprices_MB\n' >"$WORK/sizes.tsv"
	while :; do
		psql_db -tA -F $'\t' -c "SELECT $t, pg_database_size(current_database()) / 1048576,
			pg_total_relation_size('md.raw_responses') / 1048576,
			pg_total_relation_size('md.job_runs') / 1048576,
			(SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) / 1048576
			 FROM pg_inherits WHERE inhparent = 'md.prices'::regclass)" >>"$WORK/sizes.tsv" || true
		sleep "$SIZES_S"
		t=$((t + SIZES_S))
	done
}
if [ "$SIZES_S" -gt 0 ]; then
	sample_sizes &
	BENCH_PIDS+=($!)
fi
sleep $((2 + WARMUP_S + RUN_S))
poll_until 30 window_over || true

# runs due in the window [first due + warm-up, + RUN_S); a run's prices are
# visible at the commit of the transaction that stored them and finished
# the run (its md.job_runs row's xmin)
psql_db -tA -F $'\t' >"$WORK/summary.tsv" <<SQL
WITH w AS (
	SELECT min(due_at) + interval '$WARMUP_S s' AS t0 FROM bench.claims),
runs AS (
	SELECT c.job_id, c.due_at, r.started_at, r.finished_at, r.status, r.symbols_ok, r.symbols_failed,
		   CASE WHEN r.status <> 'running' THEN pg_xact_commit_timestamp(r.xmin) END AS visible_at
	FROM w, bench.claims c
	-- the run a claim made: started (clock_timestamp()) in the claim's
	-- transaction (claimed_at is its now()), before the job's next claim
	LEFT JOIN LATERAL (SELECT r.*, r.xmin FROM md.job_runs r WHERE r.job_id = c.job_id
		AND r.started_at >= c.claimed_at ORDER BY r.started_at LIMIT 1) r ON true
	WHERE c.due_at >= w.t0 AND c.due_at < w.t0 + interval '$RUN_S s'),
ms AS (
	SELECT *, extract(epoch FROM visible_at - due_at) * 1000 AS delay,
		   extract(epoch FROM started_at - due_at) * 1000 AS claim_lag,
		   extract(epoch FROM visible_at - started_at) * 1000 AS work,
		   extract(epoch FROM finished_at - started_at) * 1000 AS fetching,
		   extract(epoch FROM visible_at - finished_at) * 1000 AS storing
	FROM runs)
SELECT count(*),
	   count(DISTINCT (job_id, due_at)),
	   count(*) FILTER (WHERE status = 'succeeded'),
	   coalesce(sum(symbols_ok), 0),
	   coalesce(sum(symbols_failed), 0),
	   round(coalesce(sum(symbols_ok), 0) / $RUN_S.0, 1),
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY delay)::numeric, 1),
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY delay)::numeric, 1),
	   round(max(delay)::numeric, 1),
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY claim_lag)::numeric, 1),
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY work)::numeric, 1),
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY work)::numeric, 1),
	   (SELECT count(*) || ' (request time as libcurl measured it: p50 '
			|| round(percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms)::numeric, 1)
			|| ', p99 ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)::numeric, 1)
			|| ' ms)'
		FROM md.raw_responses, w
		WHERE error_class IS NULL AND received_at >= w.t0
		  AND received_at < w.t0 + interval '$RUN_S s'),
	   count(*) FILTER (WHERE visible_at IS NULL),
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY fetching)::numeric, 1),
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY fetching)::numeric, 1),
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY storing)::numeric, 1),
	   round(percentile_cont(0.99) WITHIN GROUP (ORDER BY storing)::numeric, 1)
FROM ms
SQL
IFS=$'\t' read -r runs slots ok_runs quotes failed qps p50 p99 pmax lag99 work50 work99 raw unfinished \
	fetch50 fetch99 store50 store99 \
	<"$WORK/summary.tsv"
expected_runs=$((JOBS * RUN_S))
latest=$(psql_db -tAc "SELECT count(*) FROM md.latest_prices WHERE symbol LIKE 'SYNS%'")

polled=$(awk -v s="$slots" -v e="$expected_runs" -v q="$quotes" -v n="$NSYM" -v r="$RUN_S" -v ok="$ok_runs" \
	'BEGIN { print (s == e && ok == e && q == n * r) ? "met" : "MISSED" }')
delay_ok=$(awk -v p="$p99" 'BEGIN { print (p != "" && p < 250) ? "met" : "MISSED" }')
{
	echo "scheduler ($WORKERS scheduler process(es)), $(date -u '+%Y-%m-%d %H:%M UTC'), load average before: $LOAD_BEFORE"
	printf '  runs due in the window     : %s of %s slots (%s jobs x %s s), %s succeeded, %s unfinished\n' \
		"$slots" "$expected_runs" "$JOBS" "$RUN_S" "$ok_runs" "$unfinished"
	printf '  quotes                     : %s ok, %s failed: %s quotes/s (target %s/s: %s)\n' \
		"$quotes" "$failed" "$qps" "$NSYM" "$polled"
	printf '  raw responses ok in window : %s\n' "$raw"
	printf '  delay due -> visible, ms   : p50 %s  p99 %s  max %s (target p99 < 250: %s)\n' \
		"$p50" "$p99" "$pmax" "$delay_ok"
	printf '  of which claim lag p99 %s ms; claim -> commit p50 %s, p99 %s ms\n' \
		"$lag99" "$work50" "$work99"
	printf '    claim -> fetched p50 %s, p99 %s ms; fetched -> commit (store) p50 %s, p99 %s ms\n' \
		"$fetch50" "$fetch99" "$store50" "$store99"
	printf '  symbols in md.latest_prices: %s\n' "$latest"
} | tee "$WORK/report.txt"
[ "$polled" = met ] && [ "$delay_ok" = met ]
