#!/bin/sh
# Pipeline benchmark: generation (decode) tokens/s of `shoal run` in one process versus a
# pipeline of 2 and 4 local worker processes (`--workers N`), on a random TinyLlama-1.1B-shaped
# model (dim 2048, hidden 5632, 22 layers, 32 heads, 4 kv heads, vocab 32000; Q8_0 by default,
# 1.2 GB), with the time per decode step split into compute (the stages in the model engine,
# summed) and activation transfer + dispatch (everything else: messages from the leader to the
# first stage, stage to stage, the result back; wake-ups). "sends" is the part of the latter
# spent inside the stages' activation sends. Every run's ids must equal the single-process ids.
#
#   bench/cluster/bench_cluster.sh [-b SHOAL_BIN] [-d MODEL_DIR] [-t DTYPE] [-w "2 4"] [-n GEN] [-p PROMPT] [-r REPS] [-j THREADS]
#
# MODEL_DIR caches the generated model (default ${TMPDIR:-/tmp}/shoal-bench-models, shared with
# bench/model). -j sets --threads for every process (default: all cores each). Medians over
# REPS runs (default 3), interleaved. A timing is never a test assertion (DESIGN.md).
set -eu
BIN=${SHOAL_BIN:-build/shoal}
DIR=${TMPDIR:-/tmp}/shoal-bench-models
DT=q8_0
WORKERS="2 4"
NG=32
NP=16
REPS=3
THREADS=""
while getopts b:d:t:w:n:p:r:j: o; do
    case $o in
    b) BIN=$OPTARG ;; d) DIR=$OPTARG ;; t) DT=$OPTARG ;; w) WORKERS=$OPTARG ;; n) NG=$OPTARG ;; p) NP=$OPTARG ;;
    r) REPS=$OPTARG ;; j) THREADS="--threads $OPTARG" ;;
    *) echo "usage: $0 [-b SHOAL_BIN] [-d MODEL_DIR] [-t DTYPE] [-w WORKERS] [-n N] [-p N] [-r REPS] [-j THREADS]" >&2; exit 2 ;;
    esac
done
mkdir -p "$DIR"
M="$DIR/tinyllama-1.1b-$DT.gguf"
if [ ! -s "$M" ]; then
    echo "generating $M (once; kept for later runs) ..." >&2
    "$BIN" genmodel --preset tinyllama-1.1b --dtype "$DT" --seed 1 -o "$M.tmp" && mv "$M.tmp" "$M"
fi
OUT=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench-cluster-XXXXXX")
trap 'rm -rf "$OUT"' EXIT
ids=1
i=1
while [ $i -lt "$NP" ]; do ids="$ids,$(( (i * 7919) % 32000 ))"; i=$((i + 1)); done

# run CONFIG REP: one generation; stderr kept for parsing
run() {
    if [ "$1" = 1 ]; then extra=""; else extra="--workers $1"; fi
    # shellcheck disable=SC2086
    "$BIN" run -m "$M" --prompt-ids "$ids" --print-ids --temp 0 -n "$NG" $THREADS $extra \
        > "$OUT/$1.$2.ids" 2> "$OUT/$1.$2.err" || { echo "run with $1 failed:" >&2; tail -3 "$OUT/$1.$2.err" >&2; exit 1; }
}
CONFIGS="1 $WORKERS"
r=1
while [ $r -le "$REPS" ]; do
    for c in $CONFIGS; do run "$c" "$r"; done
    r=$((r + 1))
done

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
field() { # CONFIG AWK-EXPR: the median over reps of a value parsed from stderr
    r=1
    while [ $r -le "$REPS" ]; do
        awk "$2" "$OUT/$1.$r.err"
        r=$((r + 1))
    done | median
}
echo "# shoal pipeline benchmark: $(basename "$M") ($(du -h "$M" | cut -f1)), prompt $NP tokens, $NG generated, greedy," \
    "medians of $REPS; $(nproc) cores${THREADS:+, $THREADS}"
printf '%-18s %10s %10s %12s %12s %12s %9s %6s\n' "config" "decode t/s" "ms/token" "compute ms" "transfer ms" "(sends ms)" "vs single" "same"
base=""
for c in $CONFIGS; do
    tps=$(field "$c" '/generated .* tokens\/s/ { s = $0; sub(/.*\(/, "", s); sub(/ tokens\/s.*/, "", s); print s }')
    if [ "$c" = 1 ]; then
        name="single process"
        comp="-" xfer="-" sends="-"
        ms=$(echo "$tps" | awk '{ printf "%.1f", 1000 / $1 }')
        base=$tps
    else
        name="$c workers"
        ms=$(field "$c" '/per decode step/ { s = $0; sub(/.*per decode step /, "", s); sub(/ ms.*/, "", s); print s }')
        comp=$(field "$c" '/per decode step/ { s = $0; sub(/.*compute /, "", s); sub(/ ms.*/, "", s); print s }')
        xfer=$(field "$c" '/per decode step/ { s = $0; sub(/.*dispatch /, "", s); sub(/ ms.*/, "", s); print s }')
        sends=$(field "$c" '/per decode step/ { s = $0; sub(/.*sends /, "", s); sub(/ ms.*/, "", s); print s }')
    fi
    same=yes
    r=1
    while [ $r -le "$REPS" ]; do
        cmp -s "$OUT/1.1.ids" "$OUT/$c.$r.ids" || same=NO
        r=$((r + 1))
    done
    rel=$(echo "$tps $base" | awk '{ printf "%.2fx", $1 / $2 }')
    printf '%-18s %10s %10s %12s %12s %12s %9s %6s\n' "$name" "$tps" "$ms" "$comp" "$xfer" "$sends" "$rel" "$same"
done
echo "# decode step = one token through every stage; compute = sum over stages of time in the model engine;"
echo "# transfer = step wall time - compute (leader->first stage, stage->stage activations of 8 KiB, result back)"
