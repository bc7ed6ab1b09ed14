#!/usr/bin/env bash
# test/check_release.sh [DIR]: the install SQL of a checkout (DIR, default
# this one) against its releases. A released version's install script is
# frozen as extension/marketdata--X.sql; the install SQL of the version in
# marketdata.control is extension/schema.sql + functions.sql + bars.sql.
# Fails when
#   - the install SQL differs from the frozen script of the same version
#     (a released version changed: give it a new version and an upgrade script),
#   - the control file's version is older than the last release, or
#   - a release (or the unreleased current version) cannot be reached from
#     the one before it by an upgrade script marketdata--A--B.sql.
# That the upgrade script really turns A into B is test/t/040_upgrade.pl's job.
set -uo pipefail
DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)}
EXT="$DIR/extension"

fail() {
	echo "release check: $*" >&2
	exit 1
}

current=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$DIR/marketdata.control")
[ -n "$current" ] || fail "no default_version in marketdata.control"

# frozen releases, oldest first: marketdata--X.sql, not marketdata--A--B.sql
releases=$(cd "$EXT" && ls marketdata--*.sql 2>/dev/null | grep -v -- '--.*--' |
	sed 's/^marketdata--\(.*\)\.sql$/\1/' | sort -V)
[ -n "$releases" ] || fail "no released install script extension/marketdata--X.sql"
last=$(echo "$releases" | tail -n 1)

if [ "$current" = "$last" ]; then
	if ! cat "$EXT/schema.sql" "$EXT/functions.sql" "$EXT/bars.sql" | cmp -s - "$EXT/marketdata--$last.sql"; then
		fail "extension/schema.sql + functions.sql + bars.sql differ from release $last (extension/marketdata--$last.sql):" \
			"set a new default_version in marketdata.control and add extension/marketdata--$last--NEW.sql" \
			"(docs/operations.md, Releases)"
	fi
	chain=$releases
else
	newest=$(printf '%s\n%s\n' "$last" "$current" | sort -V | tail -n 1)
	[ "$newest" = "$current" ] ||
		fail "marketdata.control's version $current is older than release $last"
	chain=$(printf '%s\n%s\n' "$releases" "$current")
fi

prev=
for v in $chain; do
	if [ -n "$prev" ] && [ ! -f "$EXT/marketdata--$prev--$v.sql" ]; then
		fail "no upgrade script from $prev to $v: add extension/marketdata--$prev--$v.sql"
	fi
	prev=$v
done
echo "release check: version $current, releases $(echo $releases), upgrade path complete"
