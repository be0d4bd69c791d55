#!/bin/sh
# Quick start: `shoal run --workers N` with no model generates a random-weight demo model,
# says so on stderr, prints token ids, and removes the model afterwards; the ids equal a
# single-process run of the same generated model. Plain `shoal run` without -m stays a usage
# error.
. "$(dirname "$0")/lib.sh"
mkdir -p "$TMP/t"
TMPDIR="$TMP/t" "$BIN" run --workers 2 -n 16 > "$TMP/demo.out" 2> "$TMP/demo.err" || bad "demo run exited $?"
grep -q "no model given: generated a random-weight demo model" "$TMP/demo.err" || bad "the demo is not announced on stderr"
[ "$(wc -w < "$TMP/demo.out")" -eq 16 ] || bad "demo printed '$(cat "$TMP/demo.out")'"
[ -z "$(ls "$TMP/t")" ] || bad "the demo model was left in TMPDIR: $(ls "$TMP/t")"
# the same model again (weights depend only on shape and seed): single-process gives the same ids
"$BIN" genmodel -o "$TMP/demo.gguf" --dim 256 --hidden 768 --layers 8 --heads 8 --kv-heads 4 --head-dim 32 \
    --vocab 1024 --seq 1024 --seed 1 || bad "genmodel exited $?"
"$BIN" run -m "$TMP/demo.gguf" --prompt-ids 1 --print-ids -n 16 > "$TMP/single.out" 2>/dev/null || bad "single run exited $?"
cmp -s "$TMP/demo.out" "$TMP/single.out" || bad "demo ids '$(cat "$TMP/demo.out")' differ from single-process '$(cat "$TMP/single.out")'"
"$BIN" run > /dev/null 2>&1; [ $? -eq 2 ] || bad "run without -m (and no workers) is not a usage error"
"$BIN" run --workers 2 -p "hello" > /dev/null 2>&1; [ $? -eq 2 ] || bad "a text prompt for the demo model is not a usage error"
no_orphans
finish
