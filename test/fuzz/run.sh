#!/usr/bin/env bash
# Fuzzing, bounded: every target for FUZZ_SECONDS (default 20) seconds.
#   test/fuzz/run.sh [TARGET...]   libFuzzer targets: jwt symbol
#
# libFuzzer targets are the code that links outside the servers (api/src
# files without Kore calls), built by clang with ASan and UBSan, their
# corpora seeded from test/fuzz/seeds/<target> (tokens and symbols the
# tests use). Every file of test/fuzz/regressions/<target>/ (the inputs of
# past findings) runs first and must pass. The code that needs the
# PostgreSQL backend or the Kore server is fuzzed through the real servers
# by test/t/090_fuzz_servers.pl. Prints one TAP line per target:
#   ok N - fuzz <target>: <E> executions in <S> s (<R>/s), <C> corpus inputs, clean
# and exits non-zero on a crash, a leak or a sanitizer report (the input
# that did it is kept under tmp_check/fuzz/<target>/).
set -uo pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-20}
OUT=${FUZZ_OUT:-$TOP/tmp_check/fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jwt symbol)
KORE_CFLAGS="-I/usr/include/postgresql -DKORE_USE_PGSQL -DKORE_USE_TASKS"
CC=${FUZZ_CC:-clang}
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Wall -Wextra -Werror -I$TOP/api/src"

build() {
	case "$1" in
	jwt) $CC $CFLAGS -o "$OUT/fuzz_jwt" "$TOP/test/fuzz/fuzz_jwt.c" "$TOP/api/src/jwt_check.c" \
		-ljwt -ljansson -lcrypto ;;
	symbol) $CC $CFLAGS $KORE_CFLAGS -Wno-unused-parameter -o "$OUT/fuzz_symbol" \
		"$TOP/test/fuzz/fuzz_symbol.c" "$TOP/api/src/symbol.c" ;;
	*) echo "fuzz: unknown target $1" >&2; return 1 ;;
	esac
}

mkdir -p "$OUT"
failed=0
n=0
for t in "${targets[@]}"; do
	n=$((n + 1))
	dir="$OUT/$t"
	rm -rf "$dir"
	mkdir -p "$dir/corpus" "$dir/artifacts"
	if ! build "$t" 2>"$dir/build.log"; then
		cat "$dir/build.log"
		echo "not ok $n - fuzz $t: FAILED to build"
		failed=1
		continue
	fi
	regressions=("$TOP/test/fuzz/regressions/$t"/*)
	if [ -e "${regressions[0]}" ] && ! "$OUT/fuzz_$t" "${regressions[@]}" >"$dir/regressions.log" 2>&1; then
		tail -n 30 "$dir/regressions.log"
		echo "not ok $n - fuzz $t: FAILED a regression input"
		failed=1
		continue
	fi
	cp "$TOP/test/fuzz/seeds/$t"/* "$dir/corpus/" 2>/dev/null || true
	ASAN_OPTIONS=detect_leaks=1 "$OUT/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=5 \
		-rss_limit_mb=1024 -max_len=4096 -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/fuzz.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -1)
	secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/fuzz.log" | tail -1)
	corpus=$(find "$dir/corpus" -type f | wc -l)
	if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$dir/fuzz.log"; then
		grep -E -A20 'ERROR:|runtime error:' "$dir/fuzz.log" | head -40
		echo "not ok $n - fuzz $t: FAILED after ${execs:-?} executions; input kept in $dir/artifacts/"
		failed=1
	else
		echo "ok $n - fuzz $t: ${execs:-0} executions in $SECONDS_EACH s (${secs:-0}/s), $corpus corpus inputs, clean"
	fi
done
exit $failed
