#!/usr/bin/env bash
# with-redis.sh CMD [ARGS...]: run CMD with WHENTHEN_TEST_REDIS_URL pointing at
# a Redis, the way `make test` and CI run the tests.
#
#   - WHENTHEN_TEST_REDIS_URL already set: run CMD against it.
#   - otherwise start a throwaway redis-server (no persistence, temp dir) on a
#     free 127.0.0.1 port, export WHENTHEN_TEST_REDIS_URL=redis://127.0.0.1:PORT/0,
#     run CMD, stop the server, and exit with CMD's status.
#   - kcat or redis-server missing: as root, install them with apt-get;
#     otherwise fail with how to fix it.
set -euo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

say() { echo "with-redis: $*" >&2; }

# kcat is a real third-party Kafka client some tests drive; they fail under
# CI=true without it. Install it as root when it is missing (best effort).
if ! command -v kcat >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
	say "kcat is not on PATH: installing it with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -qq && apt-get install -y -qq kcat; } >&2 || say "kcat could not be installed"
fi

if [[ -n ${WHENTHEN_TEST_REDIS_URL:-} ]]; then
	exec "$@"
fi

install_redis() {
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		say "redis-server is not on PATH: install redis-server (apt-get install redis-server) or set WHENTHEN_TEST_REDIS_URL=redis://HOST:PORT/DB"
		exit 1
	fi
	say "redis-server is not on PATH: installing it with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || say "apt-get update failed; trying the install anyway"
	# The package's postinst may fail to start its own service where there is
	# no init system; the binary is what we need, so judge by it.
	apt-get install -y -qq redis-server >&2 || say "apt-get install redis-server reported an error"
	if ! command -v redis-server >/dev/null; then
		say "redis-server is still not on PATH after apt-get install: install it by hand or set WHENTHEN_TEST_REDIS_URL"
		exit 1
	fi
}

# ping PORT: does a server on 127.0.0.1:PORT answer PING?
ping() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1"
		printf 'PING\r\n' >&3
		IFS= read -r -t 2 line <&3
		[[ $line == +PONG* ]]
	) 2>/dev/null
}

# in_use PORT: does anything listen on 127.0.0.1:PORT?
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v redis-server >/dev/null || install_redis

dir=$(mktemp -d "${TMPDIR:-/tmp}/whenthen-redis.XXXXXX")
pid=""
cleanup() {
	if [[ -n $pid ]]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=""
for _ in 1 2 3 4 5; do
	p=$((20000 + RANDOM % 40000))
	in_use "$p" && continue
	redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize no --dir "$dir" >"$dir/redis.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do # 10s
		if ping "$p"; then
			port=$p
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break # exited: port taken, try another
		sleep 0.1
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
done
if [[ -z $port ]]; then
	say "could not start redis-server; its log:"
	tail -n 20 "$dir/redis.log" >&2 || true
	exit 1
fi

export WHENTHEN_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
say "redis-server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port"
# CMD runs in the background so that a signal to this script is handled at
# once (bash defers traps until a foreground command ends): it is passed on
# to CMD, and the EXIT trap stops the server when CMD is done.
child=""
trap '[[ -n $child ]] && kill -INT "$child" 2>/dev/null' INT
trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null' TERM
"$@" &
child=$!
status=0
while :; do
	wait "$child" && status=0 || status=$?
	kill -0 "$child" 2>/dev/null || break # else wait was cut short by a signal
done
exit "$status"
