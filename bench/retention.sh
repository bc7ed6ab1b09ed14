#!/usr/bin/env bash
# bench/retention.sh: retention under load (issue 14). The scheduler polls
# 2,000 symbols every second (bench/scheduler.sh) for BENCH_RET_SECONDS
# with md.raw_responses kept 2 minutes, and again with nothing removed, in
# turns. Reports the sizes over time (the database's must stay flat with
# retention) and the scheduler's p99 delay of each run and their ratio
# (target: with retention within 10% of without). See bench/README.md.
#
#   BENCH_RET_SECONDS=600   measured seconds per run
#   BENCH_RET_KEEP=120      marketdata.raw_response_retention (and _error_)
#   BENCH_RET_INTERVAL=60   marketdata.retention_interval, s
#   BENCH_RET_ROUNDS=1      pairs of runs (with, without), interleaved
#   BENCH_RET_SAMPLE=30     seconds between size samples
#
# md.job_runs keeps its rows in both runs: the scheduler benchmark reads
# each run's commit time from them. At 20 jobs a second they are a few MB.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SECONDS_RUN=${BENCH_RET_SECONDS:-600}
KEEP=${BENCH_RET_KEEP:-120}
INTERVAL=${BENCH_RET_INTERVAL:-60}
ROUNDS=${BENCH_RET_ROUNDS:-1}
SAMPLE=${BENCH_RET_SAMPLE:-30}
RESULTS="$TOP/bench/results"

# one LABEL KEEP_SECONDS: a scheduler run, its report and sizes kept
one() {
	local label=$1 keep=$2
	BENCH_SCHED_SECONDS=$SECONDS_RUN BENCH_SCHED_SIZES=$SAMPLE BENCH_SCHED_WORK=retention-$label \
	BENCH_SCHED_CONF="marketdata.raw_response_retention = $keep
marketdata.raw_response_error_retention = $keep
marketdata.job_run_retention = 0
marketdata.retention_interval = $INTERVAL" \
		"$TOP/bench/scheduler.sh" >/dev/null || true
	sed -n 's/.*p99 \([0-9.]*\)  max.*/\1/p' "$RESULTS/retention-$label/report.txt" >>"$RESULTS/retention-$label.p99"
	echo "--- $label (marketdata.raw_response_retention = $keep s) ---"
	cat "$RESULTS/retention-$label/report.txt"
	column -t "$RESULTS/retention-$label/sizes.tsv"
}

db_user_dir "$RESULTS"
rm -f "$RESULTS"/retention-with.p99 "$RESULTS"/retention-without.p99
for _ in $(seq 1 "$ROUNDS"); do
	one with "$KEEP"
	one without 0
done
with=$(median <"$RESULTS/retention-with.p99")
without=$(median <"$RESULTS/retention-without.p99")
echo "retention: p99 with $with ms, without $without ms: $(ratio "$with" "$without")x (target <= 1.10)"
