#!/usr/bin/env bash
# with-services.sh CMD [ARGS...]: run CMD with every service the tests need,
# the way `make test` and CI run them:
#
#   - PostgreSQL, for the run history's tests (WHENTHEN_TEST_POSTGRES_URL):
#     the variable if set; else the server at 127.0.0.1:5432 (user postgres,
#     as Debian's is set up); else a Debian cluster started with
#     pg_ctlcluster; else, as root with apt-get, Debian's postgresql
#     installed and started (the postgres user then gets a password, passed
#     in the URL); else it stops with how to provide one.
#   - Chromium, for the history page's browser test: installed with apt-get
#     as root when missing (the test fails without it, it never skips).
#   - promtool (Debian's prometheus package), for deploy/'s alert rules:
#     installed with apt-get as root when missing; else it stops here.
#   - Redis: scripts/with-redis.sh, which runs CMD.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi
here=$(dirname "${BASH_SOURCE[0]}")
say() { echo "with-services: $*" >&2; }

root_apt() { [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; }
apt_updated=""
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	if [[ -z $apt_updated ]]; then
		apt-get update -qq >&2 || say "apt-get update failed; trying the install anyway"
		apt_updated=1
	fi
	apt-get install -y -qq "$@" >&2
}

# Chromium.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && [[ -z ${WHENTHEN_TEST_CHROMIUM:-} ]]; then
	if root_apt; then
		say "chromium is not on PATH: installing it with apt-get"
		apt_install chromium || say "apt-get install chromium reported an error"
	else
		say "chromium is not on PATH and this is not root with apt-get: the browser test will fail (apt-get install chromium)"
	fi
fi

# promtool, for deploy/'s alerting rules (`promtool check rules`, `promtool
# test rules`): Debian's prometheus package ships it. The tests fail
# without it, they never skip.
if ! command -v promtool >/dev/null; then
	if root_apt; then
		say "promtool is not on PATH: installing Debian's prometheus with apt-get"
		apt_install prometheus || say "apt-get install prometheus reported an error"
		# The package starts its own server where there is an init system;
		# the tests need only promtool.
	fi
	if ! command -v promtool >/dev/null; then
		say "promtool is not on PATH and could not be installed: install Debian's prometheus package (apt-get install prometheus) or put promtool on PATH; go test ./deploy/ fails without it"
		exit 1
	fi
fi

# PostgreSQL.
pg_up() { # pg_up URL: does the server answer a query?
	if command -v psql >/dev/null; then
		psql "$1" -tAc 'select 1' >/dev/null 2>&1
	else
		(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
	fi
}
if [[ -z ${WHENTHEN_TEST_POSTGRES_URL:-} ]]; then
	url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	if ! pg_up "$url"; then
		if ! command -v pg_ctlcluster >/dev/null && root_apt; then
			say "PostgreSQL is not installed: installing Debian's postgresql with apt-get"
			apt_install postgresql || say "apt-get install postgresql reported an error"
		fi
		if command -v pg_lsclusters >/dev/null; then
			while read -r ver name port status _; do
				[[ $status == online ]] && continue
				say "starting PostgreSQL cluster $ver/$name on port $port"
				pg_ctlcluster "$ver" "$name" start >&2 || say "pg_ctlcluster $ver $name start failed"
			done < <(pg_lsclusters -h 2>/dev/null)
			for _ in $(seq 50); do pg_up "$url" && break; (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && break; sleep 0.2; done
		fi
		if ! pg_up "$url" && [[ $(id -u) -eq 0 ]] && command -v psql >/dev/null && id postgres >/dev/null 2>&1; then
			# A fresh Debian cluster asks TCP clients for a password: give
			# the postgres user one for the tests.
			su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'whenthen-test'\"" >&2 &&
				url="postgres://postgres:whenthen-test@127.0.0.1:5432/postgres?sslmode=disable"
		fi
	fi
	if ! pg_up "$url"; then
		say "no PostgreSQL answers at 127.0.0.1:5432 and none could be started or installed: install postgresql, or set WHENTHEN_TEST_POSTGRES_URL=postgres://USER:PASSWORD@HOST:PORT/DB (a user that may create databases)"
		exit 1
	fi
	export WHENTHEN_TEST_POSTGRES_URL=$url
fi
say "PostgreSQL at $(sed -E 's#(//[^:/@]*):[^@]*@#\1:…@#' <<<"$WHENTHEN_TEST_POSTGRES_URL")"

exec "$here/with-redis.sh" "$@"
