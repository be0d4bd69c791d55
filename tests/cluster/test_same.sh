#!/bin/sh
# `shoal run --workers N` gives the same bytes as single-process `shoal run`: stories260K text
# (greedy 200 tokens, seeded sampling), every hf/* model's ids (greedy with the logits of every
# prompt position, prefill in batches, seeded sampling). Usage: test_same.sh N
. "$(dirname "$0")/lib.sh"
N=${1:?usage: test_same.sh N}

W="--workers $N"
same stories-greedy 0 "$W" $STORIES --temp 0 -n 200
head -c -1 "$TD/stories260K/expected_greedy_200.txt" > "$TMP/expected.txt"
cmp -s "$TMP/stories-greedy.dist" "$TMP/expected.txt" || bad "stories260K over $N workers differs from expected_greedy_200.txt"
same stories-seeded 0 "$W" $STORIES -p "Once upon a time" $SAMPLING -n 60
same stories-stop 0 "$W" $STORIES --temp 0 -n 200 --stop Lily
for m in $HF_MODELS; do
    same "$m-greedy" 1 "$W" -m "$TD/hf/$m" --prompt-ids $PROMPT_IDS --print-ids --temp 0 -n 24
    same "$m-batch" 1 "$W" -m "$TD/hf/$m" --prompt-ids $PROMPT_IDS --print-ids --temp 0 -n 8 --batch 7
    same "$m-seeded" 0 "$W" -m "$TD/hf/$m" --prompt-ids $PROMPT_IDS --print-ids $SAMPLING -n 24
done
# the HF copy of stories260K, as text
same stories-hf-text 0 "$W" -m "$TD/hf/stories260K-hf" --tokenizer "$TD/stories260K/tok512.bin" --temp 0 -n 100
# the plan and the timings are on stderr, stdout has only the text
grep -q "plan: " "$TMP/stories-greedy.dist.err" || bad "no plan on stderr"
grep -q "tokens/s" "$TMP/stories-greedy.dist.err" || bad "no timings on stderr"
stages=$(grep -c "^shoal run:   stage " "$TMP/stories-greedy.dist.err")
[ "$stages" -eq "$N" ] || bad "$stages stages planned for $N workers (stories260K has 5 layers)"
no_orphans
finish
