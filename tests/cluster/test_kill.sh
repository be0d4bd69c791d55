#!/bin/sh
# Failures mid-generation:
#  1. a local worker is SIGKILLed while tokens stream: the leader says which worker died and
#     how, exits 1 within seconds, and no process is left behind;
#  2. the same for the last stage (the one that samples);
#  3. the leader is SIGKILLed while joined workers serve it: they leave by themselves.
. "$(dirname "$0")/lib.sh"
# slow enough to kill mid-way: a few ms per token, 4000 tokens
"$BIN" genmodel -o "$TMP/slow.gguf" --dim 512 --hidden 1536 --layers 8 --heads 8 --kv-heads 4 --vocab 4096 --seq 4096 \
    --dtype q8_0 || bad "genmodel exited $?"

# wait_for FILE WORDS: until FILE holds at least WORDS words (10 s at most)
wait_for() {
    i=0
    while [ "$(cat "$1" 2> /dev/null | wc -w)" -lt "$2" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
}

kill_stage() { # name stage
    out=$TMP/$1.out err=$TMP/$1.err
    "$BIN" run -m "$TMP/slow.gguf" --prompt-ids 1 --print-ids --temp 0 -n 4000 --workers 3 > "$out" 2> "$err" &
    leader=$!
    wait_for "$out" 3
    line=$(grep "^shoal run:   stage $2: worker" "$err")
    pid=$(echo "$line" | sed 's/.*(pid \([0-9]*\) .*/\1/')
    rank=$(echo "$line" | sed 's/.*stage [0-9]*: worker \([0-9]*\) .*/\1/')
    pids=$(sed -n 's/^shoal run:   stage [0-9]*: worker [0-9]* (pid \([0-9]*\) .*/\1/p' "$err")
    [ -n "$pid" ] || { bad "$1: no pid for stage $2 in the plan"; kill $leader; return; }
    t0=$(date +%s)
    kill -9 "$pid"
    wait $leader; rc=$?
    t=$(($(date +%s) - t0))
    [ $rc -eq 1 ] || bad "$1: the leader exited $rc, not 1"
    [ $t -le 10 ] || bad "$1: the leader took $t s to give up"
    grep -q "worker $rank (pid $pid on .*, stage $2: layers [0-9]*-[0-9]*) failed during generation: killed by signal 9" "$err" \
        || bad "$1: unclear error: $(grep -v '^shoal\[' "$err" | tail -1)"
    [ "$(wc -w < "$out")" -lt 4000 ] || bad "$1: the generation finished anyway"
    for p in $pids; do [ -d /proc/$p ] && bad "$1: worker pid $p is still there ($(cat /proc/$p/stat 2>/dev/null))"; done
    no_orphans
}
kill_stage middle 1
kill_stage last 2

# 3. joined workers outlive a SIGKILLed leader only briefly
export SHOAL_CLUSTER_KEY="kill-test-$$"
ADDR=127.0.0.1:$(free_port 7907)
"$BIN" run -m "$TMP/slow.gguf" --prompt-ids 1 --print-ids --temp 0 -n 4000 --listen $ADDR --expect 2 --join-timeout 30 \
    > "$TMP/l.out" 2> "$TMP/l.err" &
leader=$!
wait_listening "$TMP/l.err"
SHOAL_INIT_TIMEOUT=30 "$BIN" worker --join $ADDR 2> "$TMP/j1.err" & j1=$!
SHOAL_INIT_TIMEOUT=30 "$BIN" worker --join $ADDR 2> "$TMP/j2.err" & j2=$!
wait_for "$TMP/l.out" 3
[ "$(wc -w < "$TMP/l.out")" -ge 3 ] || { bad "the joined run produced no tokens"; cat "$TMP/l.err" >&2; }
kill -9 $leader
wait $leader 2>/dev/null
t0=$(date +%s)
wait $j1; r1=$?
wait $j2; r2=$?
t=$(($(date +%s) - t0))
[ $r1 -eq 3 ] && [ $r2 -eq 3 ] || { bad "joined workers exited $r1 and $r2 after the leader died (want 3)"; tail -3 "$TMP/j1.err" >&2; }
[ $t -le 10 ] || bad "joined workers took $t s to leave"
no_orphans
finish
