#!/usr/bin/env bash
# bench/polling_jobs.sh: md.polling_jobs' size under 200 jobs of one symbol
# every second (issue 14), run by the real scheduler against the fake
# provider: each run updates its job's row twice (claim, finish). Twice,
# interleaved: the 0.2.0 layout (no index on next_run_at, fillfactor 50:
# HOT updates) and the 0.1.0 layout (an index on next_run_at, fillfactor
# 100) as the baseline. Prints, every sample, the table's and its indexes'
# size and the share of HOT updates. See bench/README.md.
#
#   BENCH_PJ_SECONDS=300    seconds per layout (3600: the hour of issue 14)
#   BENCH_PJ_SAMPLE=60      seconds between samples
#   BENCH_PJ_JOBS=200       jobs, interval 1 s
#   BENCH_PJ_LAYOUTS="0.2.0 0.1.0"  the layouts to run, in order
#
# Needs "make install" first. Starts its own cluster (bench/results/polling_jobs/).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUN_S=${BENCH_PJ_SECONDS:-300}
SAMPLE_S=${BENCH_PJ_SAMPLE:-60}
JOBS=${BENCH_PJ_JOBS:-200}
LAYOUTS=${BENCH_PJ_LAYOUTS:-0.2.0 0.1.0}

RESULTS="$TOP/bench/results"
WORK="$RESULTS/polling_jobs"
PGDATA="$WORK/pgdata"
DB=postgres

db_user_dir "$RESULTS"
db_user_dir "$WORK" fresh
start_fake_provider 5
start_cluster
psql_db -c "CREATE EXTENSION marketdata"
psql_db -c "UPDATE md.providers SET base_url = 'http://127.0.0.1:$FAKE_PORT', rate_limit_per_minute = 1000000, max_concurrency = 256"

# run LAYOUT: the jobs for RUN_S seconds, a sample every SAMPLE_S
run() {
	local layout=$1 t
	psql_db -c "DELETE FROM md.polling_jobs" -c "TRUNCATE md.job_runs"
	if [ "$layout" = 0.1.0 ]; then
		psql_db -c "CREATE INDEX IF NOT EXISTS polling_jobs_due_idx ON md.polling_jobs (next_run_at) WHERE enabled" \
			-c "ALTER TABLE md.polling_jobs SET (fillfactor = 100)"
	else
		psql_db -c "DROP INDEX IF EXISTS md.polling_jobs_due_idx" -c "ALTER TABLE md.polling_jobs SET (fillfactor = 50)"
	fi
	psql_db -c "VACUUM FULL md.polling_jobs" -c "SELECT pg_stat_reset_single_table_counters('md.polling_jobs'::regclass)"
	psql_db -c "INSERT INTO md.polling_jobs (symbols, interval, provider)
		SELECT ARRAY['SYNJ' || g], 1, 'yahoo_finance' FROM generate_series(1, $JOBS) g"
	echo "layout $layout: $JOBS jobs every second for $RUN_S s"
	printf '%8s %10s %10s %10s %8s %8s\n' seconds heap_kB index_kB runs updates hot_%
	for t in $(seq 0 "$SAMPLE_S" "$RUN_S"); do
		[ "$t" -eq 0 ] || sleep "$SAMPLE_S"
		psql_db -At -F' ' -c "SELECT $t, pg_relation_size('md.polling_jobs') / 1024,
				pg_indexes_size('md.polling_jobs') / 1024,
				(SELECT count(*) FROM md.job_runs), n_tup_upd,
				round(100.0 * n_tup_hot_upd / greatest(n_tup_upd, 1), 1)
			FROM pg_stat_user_tables WHERE relid = 'md.polling_jobs'::regclass" |
			awk '{ printf "%8s %10s %10s %10s %8s %8s\n", $1, $2, $3, $4, $5, $6 }'
	done
}

for layout in $LAYOUTS; do
	run "$layout"
done
