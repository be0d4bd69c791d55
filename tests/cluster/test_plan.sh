#!/bin/sh
# The layer plan from the command line: capacities 1:3 give layer counts 1:3 (within one),
# --layers is honoured (and the output is unchanged), a plan that cannot fit is refused with a
# message naming the worker, a malformed --layers is a usage error (exit 2).
. "$(dirname "$0")/lib.sh"
"$BIN" genmodel -o "$TMP/l12.gguf" --dim 64 --hidden 128 --layers 12 --heads 4 --kv-heads 2 --vocab 256 --seq 256 \
    || bad "genmodel exited $?"
M="-m $TMP/l12.gguf --prompt-ids 1,2,3,4 --print-ids --temp 0 -n 16"

# layer count of stage S in a run's stderr ("stage S: worker R (...): layers A-B ...")
layers_of() { sed -n "s/^shoal run:   stage $2: worker [0-9]* (.*): layers \([0-9]*\)-\([0-9]*\).*/\1 \2/p" "$1" | { read -r a b && echo $((b - a + 1)); }; }

# 1:3 -> 3 and 9 layers (within one)
SHOAL_WORKER_MEMORY=1G,3G same cap13 0 "--workers 2" $M
n0=$(layers_of "$TMP/cap13.dist.err" 0) n1=$(layers_of "$TMP/cap13.dist.err" 1)
echo "capacities 1:3 -> layers $n0:$n1"
[ "${n0:-0}" -ge 2 ] && [ "${n0:-0}" -le 4 ] && [ "${n1:-0}" -ge 8 ] && [ "${n1:-0}" -le 10 ] && [ $((n0 + n1)) -eq 12 ] \
    || bad "capacities 1:3 gave layers $n0:$n1"
# 3:1 the other way round, and 1:1:2 over three workers
SHOAL_WORKER_MEMORY=3G,1G same cap31 0 "--workers 2" $M
n0=$(layers_of "$TMP/cap31.dist.err" 0)
[ "${n0:-0}" -ge 8 ] && [ "${n0:-0}" -le 10 ] || bad "capacities 3:1 gave $n0 layers to the first"
SHOAL_WORKER_MEMORY=1G,1G,2G same cap112 0 "--workers 3" $M
n2=$(layers_of "$TMP/cap112.dist.err" 2)
[ "${n2:-0}" -ge 5 ] && [ "${n2:-0}" -le 7 ] || bad "capacities 1:1:2 gave $n2 layers to the last"

unset SHOAL_WORKER_MEMORY # (dash keeps an assignment made before a function call)

# --layers is honoured
same fixed 0 "--workers 3 --layers 0-0,1-9,10-11" $M
grep -q "stage 0: worker 1 .*: layers 0-0 + embedding" "$TMP/fixed.dist.err" || bad "--layers: stage 0 is not layers 0-0"
grep -q "stage 1: worker 2 .*: layers 1-9," "$TMP/fixed.dist.err" || bad "--layers: stage 1 is not layers 1-9"
grep -q "stage 2: worker 3 .*: layers 10-11 + head" "$TMP/fixed.dist.err" || bad "--layers: stage 2 is not layers 10-11"
grep -q "as --layers says" "$TMP/fixed.dist.err" || bad "--layers: the plan does not say so"

# a plan that cannot fit is refused, naming the worker that is too small
SHOAL_WORKER_MEMORY=4G,64K "$BIN" run $M --workers 2 > "$TMP/nofit.out" 2> "$TMP/nofit.err"; rc=$?
[ $rc -eq 1 ] || bad "impossible plan: exit $rc, not 1"
grep -q "does not fit: worker 2 offers 64.0 KiB" "$TMP/nofit.err" || bad "impossible plan message: $(grep 'shoal run' "$TMP/nofit.err" | tail -1)"
[ -s "$TMP/nofit.out" ] && bad "impossible plan printed output"
SHOAL_WORKER_MEMORY=64K "$BIN" run $M --workers 2 --layers 0-5,6-11 > /dev/null 2> "$TMP/nofit2.err"; rc=$?
[ $rc -eq 1 ] && grep -q -- "--layers: worker 1 would hold layers 0-5" "$TMP/nofit2.err" || bad "impossible --layers plan: exit $rc, $(tail -1 "$TMP/nofit2.err")"

# malformed --layers: usage errors, found before any worker starts
for spec in 0-5,7-11 0-5 0-5,6-12 a-b 0-3,4-7,8-11; do
    "$BIN" run $M --workers 2 --layers "$spec" > /dev/null 2> "$TMP/usage.err"; rc=$?
    [ $rc -eq 2 ] || bad "--layers $spec: exit $rc, not 2 ($(cat "$TMP/usage.err"))"
done
SHOAL_WORKER_MEMORY=1G,lots "$BIN" run $M --workers 2 > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || bad "a malformed SHOAL_WORKER_MEMORY gave exit $rc, not 2"
"$BIN" run $M --listen 127.0.0.1:1 > /dev/null 2>&1; [ $? -eq 2 ] || bad "--listen without --expect is not a usage error"
SHOAL_CLUSTER_KEY= SHOAL_CLUSTER_KEY_FILE= "$BIN" run $M --listen 127.0.0.1:1 --expect 1 > /dev/null 2>&1
[ $? -eq 2 ] || bad "--listen without a cluster key is not a usage error"
"$BIN" run $M --layers 0-11 > /dev/null 2>&1; [ $? -eq 2 ] || bad "--layers without workers is not a usage error"
no_orphans
finish
