#!/bin/sh
# Weights for workers without their own copy of the model: streamed from the leader (SHA-256
# checked), cached under SHOAL_CACHE_DIR keyed by the content hash, and re-used on the next
# start with nothing re-sent (the counter of received bytes each stage reports is 0). Also: an
# HF folder (several files), --send-weights, and a worker's own copy at another path.
. "$(dirname "$0")/lib.sh"
size=$(wc -c < "$TD/stories260K/stories260K.bin")

# 1. first start: both workers receive the whole file
SHOAL_WORKER_MODEL=none same stream1 0 "--workers 2" $STORIES --temp 0 -n 100
grep -q "sending the model (1.0 MiB) to 2 workers" "$TMP/stream1.dist.err" || bad "stream1: the leader did not send the model"
for s in 0 1; do
    grep -q "stage $s: worker $((s + 1)) loaded layers .* from the leader's stream .*($size bytes received)" "$TMP/stream1.dist.err" \
        || bad "stream1: stage $s did not report $size bytes received"
done
[ "$(grep -c "received $size bytes, SHA-256 verified" "$TMP/stream1.dist.err")" -eq 2 ] || bad "stream1: workers did not verify the hash"
grep -q "weights 100%" "$TMP/stream1.dist.err" || bad "stream1: no progress on stderr"
cached=$(ls "$SHOAL_CACHE_DIR"/models/*/stories260K.bin 2>/dev/null | head -1)
[ -n "$cached" ] && cmp -s "$cached" "$TD/stories260K/stories260K.bin" || bad "stream1: the cache does not hold the model"
[ "$(ls "$SHOAL_CACHE_DIR/models")" != "" ] || bad "stream1: empty cache"
ls "$SHOAL_CACHE_DIR"/models/ | grep -q '\.tmp-' && bad "stream1: a temporary download folder was left"

# 2. next start: from the cache, nothing re-sent
SHOAL_WORKER_MODEL=none same stream2 0 "--workers 2" $STORIES --temp 0 -n 100
grep -q "sending the model" "$TMP/stream2.dist.err" && bad "stream2: the model was sent again"
[ "$(grep -c "has the model in its cache: nothing to send" "$TMP/stream2.dist.err")" -eq 2 ] || bad "stream2: cache not used"
for s in 0 1; do
    grep -q "stage $s: worker $((s + 1)) loaded layers .* from its cache .*(0 bytes received)" "$TMP/stream2.dist.err" \
        || bad "stream2: stage $s did not load from its cache with 0 bytes received"
done

# 3. an HF folder: config.json and model.safetensors travel, the folder is opened from the cache
SHOAL_WORKER_MODEL=none same hf 1 "--workers 3" -m "$TD/hf/tiny-qwen3" --prompt-ids 1,2,3,4,5 --print-ids --temp 0 -n 12
d=$(dirname "$(ls "$SHOAL_CACHE_DIR"/models/*/config.json | head -1)")
cmp -s "$d/config.json" "$TD/hf/tiny-qwen3/config.json" && cmp -s "$d/model.safetensors" "$TD/hf/tiny-qwen3/model.safetensors" \
    || bad "hf: the cached folder differs from the model"
[ -e "$d/reference.json" ] && bad "hf: files the engine does not need were sent"

# 4. --send-weights streams even to workers that have the file (fresh cache)
SHOAL_CACHE_DIR="$TMP/cache2" same forced 0 "--workers 2 --send-weights" $STORIES --temp 0 -n 50
grep -q "sending the model (1.0 MiB) to 2 workers" "$TMP/forced.dist.err" || bad "--send-weights did not stream"
unset SHOAL_CACHE_DIR 2>/dev/null; export SHOAL_CACHE_DIR="$TMP/cache"

# 5. a worker's own copy elsewhere (SHOAL_WORKER_MODEL=PATH) is used as it is
cp "$TD/stories260K/stories260K.bin" "$TMP/copy.bin"
SHOAL_WORKER_MODEL="$TMP/copy.bin" same owncopy 0 "--workers 2" $STORIES --temp 0 -n 50
[ "$(grep -c "from its own copy $TMP/copy.bin (0 bytes received)" "$TMP/owncopy.dist.err")" -eq 2 ] || bad "own copy not used"
unset SHOAL_WORKER_MODEL
no_orphans
finish
