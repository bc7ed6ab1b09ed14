#!/usr/bin/env bash
# Run every test suite: pg_regress (sql/), isolation (test/isolation/) and
# TAP (test/t/), after the release check of the install SQL
# (test/check_release.sh). Ends with "N passed, N failed" summed over all of them and
# exits non-zero when anything failed. Run after "make install".
#
#   ./test/run_tests.sh                 every suite
#   ./test/run_tests.sh NAME...         only these: a pg_regress test (md_price),
#                                       an isolation spec, a TAP file (test/t/020_consumer.pl),
#                                       "layers" (test/layers.pl), "release_check" or "fuzz" (test/fuzz/run.sh)
set -uo pipefail
. "$(dirname "$0")/lib.sh"

# programs the tests start, built before the tree may be copied below
make -s -C "$TOP/test/fake_provider" || { echo "could not build the fake provider"; exit 1; }

OUT="$TOP/tmp_check"
SRC="$TOP"
if ! db_user_can_read "$TOP/sql"; then
	# the database user cannot read this checkout: test a copy of it
	OUT=$(private_dir tests)
	SRC="$OUT/src"
fi
db_user_dir "$OUT" fresh
if [ "$SRC" != "$TOP" ]; then
	mkdir -p "$SRC"
	tar -C "$TOP" --exclude=./.git --exclude=./tmp_check --exclude=./.run -cf - . | tar -C "$SRC" -xf -
	db_user_dir "$SRC"
	echo "(testing a copy in $SRC: the postgres user cannot read $TOP)"
fi
passed=0
failed=0

# pick NAME...: the names given on the command line that are in the list on stdin
# (everything when none were given)
only=("$@")
pick() {
	local n
	while read -r n; do
		if [ ${#only[@]} -eq 0 ] || printf '%s\n' "${only[@]}" | grep -qxF -e "$n" -e "${n#test/t/}"; then
			echo "$n"
		fi
	done
}
regress_tests=$(cd "$SRC/sql" && ls *.sql | sed 's/\.sql$//' | sort | pick)
isolation_tests=$(cd "$SRC/test/isolation/specs" && ls *.spec | sed 's/\.spec$//' | sort | pick)
tap_tests=$(cd "$SRC" && ls test/t/*.pl | sort | pick)
release_tests=$(echo release_check | pick)

# count_results LOG RC: add a log's passed and failed tests (pg_regress
# "... ok" / "... FAILED" lines, TAP "ok N" / "not ok N" lines); a suite
# that exited non-zero without a failed test (it died) counts one failure
count_results() {
	local ok bad
	ok=$(grep -acE '\.\.\. +ok|^ *ok +[0-9]+' "$1" || true)
	bad=$(grep -acE '\.\.\. +FAILED|^ *not ok +[0-9]+' "$1" || true)
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

# regress_suite NAME DRIVER INPUTDIR TESTS...: run a pg_regress-style driver
# against a temporary instance with the library preloaded; show the diffs
regress_suite() {
	local name=$1 driver=$2 inputdir=$3 rc
	shift 3
	as_db_user "$driver" \
		--temp-instance="$OUT/$name/instance" \
		--temp-config="$SRC/test/regress.conf" \
		--inputdir="$inputdir" --outputdir="$OUT/$name" \
		--bindir="$PG_BINDIR" --load-extension=marketdata \
		--dbname="${name}_regression" "$@" 2>&1 | tee "$OUT/$name.log"
	rc=${PIPESTATUS[0]}
	count_results "$OUT/$name.log" "$rc"
	if [ "$rc" -ne 0 ] && [ -f "$OUT/$name/regression.diffs" ]; then
		cat "$OUT/$name/regression.diffs"
	fi
}

# 0. layers: includes and the objects' symbols (test/layers.pl), after make
if [ ${#only[@]} -eq 0 ] || printf '%s\n' "${only[@]}" | grep -qxF layers; then
	suite "layers"
	perl "$TOP/test/layers.pl" "$TOP" 2>&1 | tee "$OUT/layers.log"
	count_results "$OUT/layers.log" "${PIPESTATUS[0]}"
fi

# 0. the install SQL against the releases: a changed release needs a new
# version and an upgrade script. The check itself must refuse a released
# version whose SQL changed (a copy with 0.1.0's version and a changed schema).
if [ -n "$release_tests" ]; then
	suite "release"
	{
		"$TOP/test/check_release.sh" "$TOP" 2>&1 && r=ok || r=FAILED
		echo "test release_check ... $r"
		tampered=$(mktemp -d)
		mkdir "$tampered/extension"
		cp "$TOP"/extension/*.sql "$tampered/extension/"
		oldest=$(cd "$TOP/extension" && ls marketdata--*.sql | grep -v -- '--.*--' | sort -V | head -n 1)
		sed "s/^default_version.*/default_version = '$(echo "$oldest" | sed 's/^marketdata--\(.*\)\.sql$/\1/')'/" \
			"$TOP/marketdata.control" >"$tampered/marketdata.control"
		cp "$TOP/extension/$oldest" "$tampered/extension/schema.sql"
		echo "-- changed" >"$tampered/extension/functions.sql"
		"$TOP/test/check_release.sh" "$tampered" >/dev/null 2>&1 && r=FAILED || r=ok
		echo "test release_check_refuses_changed_release ... $r"
		rm -rf "$tampered"
	} | tee "$OUT/release.log"
	count_results "$OUT/release.log" 0
fi

# 1. pg_regress: every sql/*.sql, in name order
if [ -n "$regress_tests" ]; then
	suite "pg_regress"
	regress_suite regress "$PGXS_DIR/src/test/regress/pg_regress" "$SRC" $regress_tests
fi

# 2. isolation: concurrent sessions, test/isolation/specs/*.spec
if [ -n "$isolation_tests" ]; then
	suite "isolation"
	regress_suite isolation "$PGXS_DIR/src/test/isolation/pg_isolation_regress" "$SRC/test/isolation" $isolation_tests
fi

# 3. TAP: real servers and processes (the fake provider is built first)
if [ -n "$tap_tests" ]; then
	suite "TAP"
	db_user_dir "$OUT/tap"
	(cd "$SRC" && as_db_user env TESTDIR="$OUT/tap" TEMP_CONFIG="$SRC/test/tap.conf" PG_REGRESS="$PGXS_DIR/src/test/regress/pg_regress" \
		MD_TOP="$SRC" prove --verbose -I "$PGXS_DIR/src/test/perl" -I "$SRC/test/perl" $tap_tests) \
		>"$OUT/tap.log" 2>&1
	rc=$?
	grep -aE '^(ok|not ok) |^t/|^test/t/|^#   Failed|^Result' "$OUT/tap.log" || true
	count_results "$OUT/tap.log" "$rc"
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$OUT/tap.log"
		ls "$OUT"/tap/tmp_check/log/ 2>/dev/null | sed 's/^/  log: /'
	fi
fi

# 4. fuzz: the libFuzzer targets, FUZZ_SECONDS (20) each (test/fuzz/run.sh);
# the servers' fuzzing is the TAP test test/t/090_fuzz_servers.pl
if [ ${#only[@]} -eq 0 ] || printf '%s\n' "${only[@]}" | grep -qxF fuzz; then
	suite "fuzz"
	FUZZ_OUT="$OUT/fuzz" "$TOP/test/fuzz/run.sh" 2>&1 | tee "$OUT/fuzz.log"
	count_results "$OUT/fuzz.log" "${PIPESTATUS[0]}"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
