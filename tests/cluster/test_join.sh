#!/bin/sh
# `shoal run --listen HOST:PORT --expect N` with workers that join (`shoal worker --join`):
# a worker with the wrong cluster key and one with none are refused (exit 1) and do not count;
# the run goes on with the two that belong and prints the single-process text.
. "$(dirname "$0")/lib.sh"
export SHOAL_CLUSTER_KEY="cluster-test-key-$$"
PORT=$(free_port 7919)
ADDR=127.0.0.1:$PORT

"$BIN" run $STORIES --temp 0 -n 200 > "$TMP/single" 2> /dev/null || bad "single-process run exited $?"
"$BIN" run $STORIES --temp 0 -n 200 --listen $ADDR --expect 2 --join-timeout 30 > "$TMP/dist" 2> "$TMP/dist.err" &
leader=$!
wait_listening "$TMP/dist.err"
# the refused ones first, while the leader waits: they must not count
SHOAL_CLUSTER_KEY="not-the-key" SHOAL_INIT_TIMEOUT=20 "$BIN" worker --join $ADDR 2> "$TMP/wrong.err"; rc=$?
[ $rc -eq 1 ] || bad "the wrong-key worker exited $rc, not 1"
grep -q "wrong cluster key" "$TMP/wrong.err" || bad "the wrong-key worker did not say why: $(cat "$TMP/wrong.err")"
env -u SHOAL_CLUSTER_KEY SHOAL_INIT_TIMEOUT=20 "$BIN" worker --join $ADDR 2> "$TMP/nokey.err"; rc=$?
[ $rc -eq 1 ] || bad "the worker without a key exited $rc, not 1"
"$BIN" worker --join $ADDR 2> "$TMP/good1.err" & g1=$!
"$BIN" worker --join $ADDR 2> "$TMP/good2.err" & g2=$!
wait $leader; rc=$?
[ $rc -eq 0 ] || { bad "the leader exited $rc"; tail -3 "$TMP/dist.err" >&2; }
cmp -s "$TMP/single" "$TMP/dist" || bad "the joined run's text differs from single-process"
wait $g1; rc1=$?
wait $g2; rc2=$?
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] || bad "joined workers exited $rc1 and $rc2"
grep -q "refused connection" "$TMP/dist.err" || bad "the leader did not log the refused worker"
[ "$(grep -c "^shoal run:   stage " "$TMP/dist.err")" -eq 2 ] || bad "not two stages"
no_orphans
finish
