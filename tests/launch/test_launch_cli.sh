#!/usr/bin/env bash
# The shoal command line: help and usage errors of every command, and `shoal launch` end to
# end (exit-status propagation with the process table checked by pid, signals, exec failure,
# environment, timeout, signal forwarding).
# Usage: test_launch_cli.sh SHOAL_BIN LAUNCH_CHILD
set -u
shoal=${1:?usage: test_launch_cli.sh SHOAL_BIN LAUNCH_CHILD}
child=${2:?}
. "$(dirname "$0")/lib.sh"
clean_rank_env

failures=0
tmp=$(mktemp -d /tmp/shoal-launch-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# expect STATUS CMD...: runs CMD with stdout/stderr in $tmp/out, $tmp/err; checks its status.
expect() {
    local want=$1; shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "'$*' exited $got, expected $want"
        sed 's/^/    stderr: /' "$tmp/err" | head -n 5 >&2
    fi
}
has() { grep -q -- "$2" "$tmp/$1" || fail "$1 of the last command lacks '$2'"; }

# No process left: every pid file names a pid that is gone from the process table.
check_gone() {
    local dir=$1 n=$2 f pid count=0
    for f in "$dir"/pid.*; do
        [ -e "$f" ] || continue
        count=$((count + 1))
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null || [ -e "/proc/$pid" ]; then
            fail "rank pid $pid ($f) is still in the process table"
        fi
    done
    [ "$count" -eq "$n" ] || fail "expected $n pid files in $dir, found $count"
}

# ---- help, version, usage errors
expect 0 "$shoal" --help; has out "launch"; has out "SHOAL_TIMEOUT"
expect 0 "$shoal" --version; has out "shoal [0-9]"
for cmd in launch bench settings "bench coll"; do
    expect 0 "$shoal" $cmd --help; has out "Usage: shoal $cmd"
done
expect 0 "$shoal" help launch; has out "Usage: shoal launch"
expect 2 "$shoal"
expect 2 "$shoal" nosuchcommand; has err "unknown command 'nosuchcommand'"
expect 2 "$shoal" --nosuchoption; has err "unknown option"
expect 2 "$shoal" launch; has err "-n N is required"
expect 2 "$shoal" launch -n 0 -- true; has err "integer in 1.."
expect 2 "$shoal" launch -n two -- true
expect 2 "$shoal" launch -n 2; has err "no PROGRAM"
expect 2 "$shoal" launch -n 2 --env NOEQUALS -- true; has err "NAME=VALUE"
expect 2 "$shoal" launch -n 2 --timeout -1 -- true
expect 2 "$shoal" settings --bogus
expect 2 "$shoal" bench; has err "no suite"
expect 2 "$shoal" bench nosuite
expect 2 "$shoal" bench coll --op nope; has err "allreduce"
expect 2 "$shoal" bench coll --max 2X
expect 2 "$shoal" bench coll --min 1M --max 1K
expect 2 "$shoal" bench coll --max 2G
expect 2 "$shoal" bench coll --dtype f128
expect 2 "$shoal" bench coll --algo fastest
expect 2 "$shoal" bench coll extra-argument

# ---- launch: status propagation, others killed, nothing left behind
mkdir "$tmp/p1"
start=$SECONDS
expect 3 "$shoal" launch -n 4 -- "$child" --pids "$tmp/p1" exit 2 3
has err "rank 2"
[ $((SECONDS - start)) -lt 20 ] || fail "the sleeping ranks were not killed promptly"
check_gone "$tmp/p1" 4

mkdir "$tmp/p2"
expect 137 "$shoal" launch -n 2 -- "$child" --pids "$tmp/p2" kill 0 9
has err "signal 9"
check_gone "$tmp/p2" 2

expect 127 "$shoal" launch -n 2 -- /nonexistent/shoal-program; has err "cannot execute"
expect 127 "$shoal" launch -n 2 shoal-no-such-program-in-path; has err "No such file"

expect 0 "$shoal" launch -n 1 "$child" exit-all 0 # PROGRAM without "--"
expect 5 "$shoal" launch -n 3 -- "$child" exit-all 5

mkdir "$tmp/e"
expect 0 "$shoal" launch -n 2 --env LAUNCH_TEST_EXTRA=cli -e LAUNCH_TEST_INHERITED=over \
    -- "$child" env "$tmp/e"
for r in 0 1; do
    grep -q "^SHOAL_RANK=$r\$" "$tmp/e/env.$r" || fail "env.$r: SHOAL_RANK"
    grep -q "^SHOAL_WORLD_SIZE=2\$" "$tmp/e/env.$r" || fail "env.$r: SHOAL_WORLD_SIZE"
    grep -q "^SHOAL_MASTER=127.0.0.1:[0-9]*\$" "$tmp/e/env.$r" || fail "env.$r: SHOAL_MASTER"
    grep -q "^LAUNCH_TEST_EXTRA=cli\$" "$tmp/e/env.$r" || fail "env.$r: --env"
    grep -q "^LAUNCH_TEST_INHERITED=over\$" "$tmp/e/env.$r" || fail "env.$r: -e"
done

start=$SECONDS
expect 124 "$shoal" launch -n 2 --timeout 0.5 -- "$child" sleep 60; has err "timed out"
[ $((SECONDS - start)) -lt 20 ] || fail "--timeout did not stop the job promptly"

# ---- SIGTERM to the launcher reaches the ranks
mkdir "$tmp/s"
"$shoal" launch -n 2 -- "$child" --pids "$tmp/s" sleep 60 >/dev/null 2>"$tmp/err" &
lp=$!
for _ in $(seq 1 100); do
    [ -e "$tmp/s/pid.0" ] && [ -e "$tmp/s/pid.1" ] && break
    sleep 0.1
done
kill -TERM "$lp"
wait "$lp"
rc=$?
[ "$rc" -eq 143 ] || fail "launcher got SIGTERM: exit $rc, expected 143"
check_gone "$tmp/s" 2

# ---- settings
expect 0 "$shoal" settings; has out "SHOAL_TIMEOUT"
expect 0 "$shoal" settings --markdown
has out "^# shoal settings"; has out "| \`timeout\` | \`SHOAL_TIMEOUT\` |"

if [ "$failures" -ne 0 ]; then
    echo "test_launch_cli: $failures failure(s)"
    exit 1
fi
echo "test_launch_cli: all checks passed"
