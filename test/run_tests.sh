#!/usr/bin/env bash
# Run every test suite: pg_regress (sql/), isolation (test/isolation/) and
# TAP (test/t/). Ends with "N passed, N failed" summed over all of them and
# exits non-zero when anything failed. Run after "make install".
set -uo pipefail
. "$(dirname "$0")/lib.sh"

OUT="$TOP/tmp_check"
db_user_dir "$OUT" fresh
passed=0
failed=0

# count_results LOG RC: add a log's passed and failed tests (pg_regress
# "... ok" / "... FAILED" lines, TAP "ok N" / "not ok N" lines); a suite
# that exited non-zero without a failed test (it died) counts one failure
count_results() {
	local ok bad
	ok=$(grep -cE '\.\.\. +ok|^ *ok +[0-9]+' "$1" || true)
	bad=$(grep -cE '\.\.\. +FAILED|^ *not ok +[0-9]+' "$1" || true)
	if [ "$2" -ne 0 ] && [ "$bad" -eq 0 ]; then
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
	echo "$ok passed, $bad failed"
}

suite() {
	echo
	echo "=== $1 ==="
}

# 1. pg_regress: every sql/*.sql, in name order, against a temporary instance
suite "pg_regress"
tests=$(cd "$TOP/sql" && ls *.sql | sed 's/\.sql$//' | sort)
as_db_user "$PGXS_DIR/src/test/regress/pg_regress" \
	--temp-instance="$OUT/regress/instance" \
	--temp-config="$TOP/test/regress.conf" \
	--inputdir="$TOP" --outputdir="$OUT/regress" \
	--bindir="$PG_BINDIR" --load-extension=marketdata \
	--dbname=contrib_regression $tests 2>&1 | tee "$OUT/regress.log"
rc=${PIPESTATUS[0]}
count_results "$OUT/regress.log" "$rc"
if [ "$rc" -ne 0 ] && [ -f "$OUT/regress/regression.diffs" ]; then
	cat "$OUT/regress/regression.diffs"
fi

# 2. isolation: concurrent sessions
suite "isolation"
specs=$(cd "$TOP/test/isolation/specs" && ls *.spec | sed 's/\.spec$//' | sort)
as_db_user "$PGXS_DIR/src/test/isolation/pg_isolation_regress" \
	--temp-instance="$OUT/isolation/instance" \
	--temp-config="$TOP/test/regress.conf" \
	--inputdir="$TOP/test/isolation" --outputdir="$OUT/isolation" \
	--bindir="$PG_BINDIR" --load-extension=marketdata \
	--dbname=isolation_regression $specs 2>&1 | tee "$OUT/isolation.log"
rc=${PIPESTATUS[0]}
count_results "$OUT/isolation.log" "$rc"
if [ "$rc" -ne 0 ] && [ -f "$OUT/isolation/regression.diffs" ]; then
	cat "$OUT/isolation/regression.diffs"
fi

# 3. TAP: real servers and processes (the fake provider is built first)
suite "TAP"
make -s -C "$TOP/test/fake_provider" || { echo "could not build the fake provider"; failed=$((failed + 1)); }
db_user_dir "$OUT/tap"
(cd "$TOP" && as_db_user env TESTDIR="$OUT/tap" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
	MD_TOP="$TOP" prove --verbose -I "$PGXS_DIR/src/test/perl" -I "$TOP/test/perl" test/t/*.pl) \
	>"$OUT/tap.log" 2>&1
rc=$?
grep -E '^(ok|not ok) |^t/|^test/t/|^#   Failed|^Result' "$OUT/tap.log" || true
count_results "$OUT/tap.log" "$rc"
if [ "$rc" -ne 0 ]; then
	tail -n 40 "$OUT/tap.log"
	ls "$OUT"/tap/tmp_check/log/ 2>/dev/null | sed 's/^/  log: /'
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
