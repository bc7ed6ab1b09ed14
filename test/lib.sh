# test/lib.sh: shared by the run, test and bench scripts (sourced, not run).
# PostgreSQL refuses to run as root, so as root the servers and the tests run
# as the "postgres" system user, in directories handed to that user.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PG_CONFIG picks the PostgreSQL installation (default: the one on PATH)
PG_CONFIG=${PG_CONFIG:-pg_config}
PG_BINDIR=$("$PG_CONFIG" --bindir)
PGXS_DIR=$(dirname "$(dirname "$(dirname "$("$PG_CONFIG" --pgxs)")")")
export PATH="$PG_BINDIR:$PATH"

# as_db_user CMD...: run CMD as the database user (postgres when we are root)
as_db_user() {
	if [ "$(id -u)" -eq 0 ]; then
		(
			# stay in the current directory only if that user may enter it
			runuser -u postgres -- test -x "$PWD" 2>/dev/null || cd /
			runuser -u postgres -- env PATH="$PATH" HOME=/tmp "$@"
		)
	else
		"$@"
	fi
}

# db_user_dir DIR: create DIR (emptied when asked with a second argument "fresh")
# and make it the database user's
db_user_dir() {
	[ "${2:-}" = fresh ] && rm -rf "$1"
	mkdir -p "$1"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$1"
	fi
}

# db_user_can_read DIR: whether the database user can read DIR (a checkout
# under a private home directory is not readable by "postgres")
db_user_can_read() {
	as_db_user test -r "$1" -a -x "$1" 2>/dev/null
}

# private_dir NAME: a directory outside the checkout for the database user's
# files, one per checkout, used when the checkout is not readable to that user
private_dir() {
	echo "/var/tmp/marketdata-$1-$(echo "$TOP" | cksum | cut -d' ' -f1)"
}
