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
		runuser -u postgres -- env PATH="$PATH" HOME=/tmp "$@"
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
