#!/bin/sh
# shoal run / inspect / genmodel end to end. Needs SHOAL_BIN (set by ctest) and the test data
# (SHOAL_TESTDATA, else SHOAL_TESTDATA_DEFAULT, else ../shared/testdata).
set -u
BIN=${SHOAL_BIN:?SHOAL_BIN is not set}
TD=${SHOAL_TESTDATA:-${SHOAL_TESTDATA_DEFAULT:-../shared/testdata}}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-test-cli-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }

# the expected text is the file without its final newline
head -c -1 "$TD/stories260K/expected_greedy_200.txt" > "$TMP/expected.txt"

"$BIN" run -m "$TD/stories260K/stories260K.bin" --tokenizer "$TD/stories260K/tok512.bin" --temp 0 -n 200 \
    > "$TMP/out1.txt" 2> "$TMP/err1.txt" || bad "run stories260K.bin exited $?"
cmp -s "$TMP/out1.txt" "$TMP/expected.txt" || bad "stories260K.bin text differs from expected_greedy_200.txt"
grep -q "tokens/s" "$TMP/err1.txt" || bad "no timings on stderr"

"$BIN" run -m "$TD/hf/stories260K-hf" --tokenizer "$TD/stories260K/tok512.bin" --temp 0 -n 200 \
    > "$TMP/out2.txt" 2>/dev/null || bad "run stories260K-hf exited $?"
cmp -s "$TMP/out2.txt" "$TMP/expected.txt" || bad "stories260K-hf text differs from expected_greedy_200.txt"

# ids path: HF folder without a tokenizer; the first greedy ids of the reference
ids=$("$BIN" run -m "$TD/hf/tiny-llama" --prompt-ids 1,166,294,370,310,166,131,374,85,236,254,121,343,104,149,280,326,135,55,10,4,76,152,93 \
    --print-ids --temp 0 -n 8 --dump-logits "$TMP/l.f32" 2>/dev/null) || bad "run --print-ids exited $?"
[ "$ids" = "267 267 267 267 108 334 152 267" ] || bad "tiny-llama greedy ids '$ids'"
[ "$(wc -c < "$TMP/l.f32")" -eq $((24 * 384 * 4)) ] || bad "--dump-logits size"
cmp -s "$TMP/l.f32" "$TD/hf/tiny-llama/logits.f32" && bad "logits dump is bit-identical to the f64 reference (suspicious)"

# --stop: the text up to the first stop string, which is not printed
"$BIN" run -m "$TD/stories260K/stories260K.bin" --tokenizer "$TD/stories260K/tok512.bin" --temp 0 -n 200 \
    --stop "Lily" > "$TMP/stop.txt" 2>/dev/null || bad "run --stop exited $?"
[ "$(cat "$TMP/stop.txt")" = "Once upon a time, there was a little girl named " ] || bad "--stop output '$(cat "$TMP/stop.txt")'"

# sampling is reproducible with a seed, and a prompt is not echoed
for i in 1 2; do
    "$BIN" run -m "$TD/stories260K/stories260K.bin" --tokenizer "$TD/stories260K/tok512.bin" -p "Once upon a time" \
        --temp 0.9 --top-k 40 --top-p 0.9 --min-p 0.05 --repeat-penalty 1.1 --seed 42 -n 40 --threads 1 \
        > "$TMP/s$i.txt" 2>/dev/null || bad "sampling run exited $?"
done
cmp -s "$TMP/s1.txt" "$TMP/s2.txt" || bad "same seed, different text"
case "$(cat "$TMP/s1.txt")" in "Once upon a time"*) bad "the prompt was echoed";; esac
[ -s "$TMP/s1.txt" ] || bad "sampling produced nothing"

# inspect
"$BIN" inspect "$TD/hf/tiny-qwen3" > "$TMP/insp.txt" 2>&1 || bad "inspect exited $?"
grep -q "architecture: qwen3" "$TMP/insp.txt" || bad "inspect: no architecture line"
grep -q "head_dim 32" "$TMP/insp.txt" || bad "inspect: no head_dim"
"$BIN" inspect --tensors "$TD/gguf/llama-2-tiny-random.gguf" > "$TMP/insp2.txt" 2>&1 || bad "inspect gguf exited $?"
grep -q "F16" "$TMP/insp2.txt" || bad "inspect gguf: no F16 tensors listed"

# genmodel -> run, in each format
"$BIN" genmodel --preset tiny --dtype q8_0 -o "$TMP/m.gguf" || bad "genmodel gguf exited $?"
"$BIN" genmodel --preset tiny --format hf -o "$TMP/m_hf" || bad "genmodel hf exited $?"
"$BIN" genmodel --preset tiny --format llama2c -o "$TMP/m.bin" || bad "genmodel llama2c exited $?"
for m in "$TMP/m.gguf" "$TMP/m_hf" "$TMP/m.bin"; do
    out=$("$BIN" run -m "$m" --prompt-ids 1,2,3 --print-ids --temp 0 -n 5 2>/dev/null) || bad "run $m exited $?"
    [ "$(echo "$out" | wc -w)" -eq 5 ] || bad "run $m printed '$out'"
done

# errors: bad usage is exit 2, a bad model file exit 1 with a message naming it
"$BIN" run > /dev/null 2>&1; [ $? -eq 2 ] || bad "run without -m is not a usage error"
"$BIN" run -m x --temp abc > /dev/null 2>&1; [ $? -eq 2 ] || bad "--temp abc is not a usage error"
printf 'GGUF\003\000\000\000garbage' > "$TMP/bad.gguf"
"$BIN" run -m "$TMP/bad.gguf" --prompt-ids 1 --print-ids > /dev/null 2> "$TMP/bad.txt"; rc=$?
[ $rc -eq 1 ] || bad "bad gguf exit $rc"
grep -q "bad.gguf" "$TMP/bad.txt" || bad "bad gguf message does not name the file: $(cat "$TMP/bad.txt")"

[ $fail -eq 0 ] && echo ok
exit $fail
