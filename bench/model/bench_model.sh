#!/bin/sh
# Model engine benchmark: prompt (prefill) and generation (decode) tokens/s of `shoal run`,
# single process, for stories260K and random TinyLlama-1.1B-shaped models (f32, Q8_0, Q4_0),
# at each thread count, each beside its decode roofline: bytes of weights read per token
# divided by the memcpy read bandwidth measured in the same run with as many threads.
#
#   bench/model/bench_model.sh [-b SHOAL_BIN] [-d MODEL_DIR] [-t "1 2"] [-p PROMPT_TOKENS] [-n GEN_TOKENS] [-q]
#
# MODEL_DIR caches the generated models (6.2 GB for the three 1.1B files; default
# ${TMPDIR:-/tmp}/shoal-bench-models). -q: stories260K and Q4_0 only. A timing is never a test
# assertion (DESIGN.md); this prints a table.
set -eu
BIN=${SHOAL_BIN:-build/shoal}
DIR=${TMPDIR:-/tmp}/shoal-bench-models
THREADS="1 2"
NP=64
NG=32
QUICK=0
while getopts b:d:t:p:n:q o; do
    case $o in
    b) BIN=$OPTARG ;; d) DIR=$OPTARG ;; t) THREADS=$OPTARG ;; p) NP=$OPTARG ;; n) NG=$OPTARG ;; q) QUICK=1 ;;
    *) echo "usage: $0 [-b SHOAL_BIN] [-d MODEL_DIR] [-t THREADS] [-p N] [-n N] [-q]" >&2; exit 2 ;;
    esac
done
HERE=$(cd "$(dirname "$0")" && pwd)
TD=${SHOAL_TESTDATA:-$HERE/../../../shared/testdata}
mkdir -p "$DIR"
CC=${CC:-cc}
$CC -O2 -pthread "$HERE/membw.c" -o "$DIR/membw"

MODELS=""
if [ -s "$TD/stories260K/stories260K.bin" ]; then MODELS="stories260K:$TD/stories260K/stories260K.bin"
else echo "($TD/stories260K/stories260K.bin not found: skipped; set SHOAL_TESTDATA)" >&2; fi
for dt in f32 q8_0 q4_0; do
    [ $QUICK -eq 1 ] && [ $dt != q4_0 ] && continue
    f="$DIR/tinyllama-1.1b-$dt.gguf"
    if [ ! -s "$f" ]; then
        echo "generating $f ..." >&2
        "$BIN" genmodel --preset tinyllama-1.1b --dtype $dt --seed 1 -o "$f.tmp" && mv "$f.tmp" "$f"
    fi
    MODELS="$MODELS tinyllama-1.1b-$dt:$f"
done

# prompt ids: deterministic, inside every vocabulary here (>= 512)
PROMPT=$(awk -v n="$NP" 'BEGIN { s = "1"; for (i = 1; i < n; i++) s = s "," (3 + (i * 37) % 500); print s }')

# bytes of weights read per decoded token: every tensor, except the embedding table when a
# separate classifier exists (then only one embedding row is read)
weight_bytes() {
    "$BIN" inspect --tensors "$1" | awk '
        # columns: name type shape... bytes name-in-file (the shape holds spaces)
        /^token_embd.weight / { emb = $(NF - 1) } /^output.weight / { out = 1 }
        /^(token_embd|output|blk)\./ && $(NF - 1) ~ /^[0-9]+$/ { sum += $(NF - 1) }
        END { if (out) sum -= emb; printf "%.0f\n", sum }'
}

printf "%-22s %3s %12s %12s %13s %9s %9s\n" model thr "prompt t/s" "decode t/s" "roofline t/s" "% roof" "pp/tg"
for entry in $MODELS; do
    name=${entry%%:*}
    path=${entry#*:}
    bytes=$(weight_bytes "$path")
    # warm the page cache so the first thread count does not pay for disk reads
    cat "$path" > /dev/null
    for t in $THREADS; do
        bw=$("$DIR/membw" "$t")
        line=$("$BIN" run -m "$path" --prompt-ids "$PROMPT" --print-ids --temp 0 -n "$NG" --threads "$t" 2>&1 >/dev/null | grep "tokens/s); generated")
        pp=$(echo "$line" | sed 's/.*(\([0-9.]*\) tokens\/s); generated.*/\1/')
        tg=$(echo "$line" | sed 's/.*generated.*(\([0-9.]*\) tokens\/s).*/\1/')
        awk -v n="$name" -v t="$t" -v pp="$pp" -v tg="$tg" -v bw="$bw" -v b="$bytes" 'BEGIN {
            roof = bw * 1e9 / b
            printf "%-22s %3d %12.1f %12.2f %13.2f %8.0f%% %9.1f\n", n, t, pp, tg, roof, 100 * tg / roof, pp / tg }'
    done
    echo "  ($name: $bytes bytes of weights per token; memcpy read bandwidth measured per thread count)"
done
