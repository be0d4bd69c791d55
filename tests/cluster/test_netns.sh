#!/bin/sh
# Several hosts for real: the leader and two workers each in a network namespace of their own,
# joined by a bridge (10.77.0.1 leader, .2 and .3 workers), so every connection crosses a
# virtual network between distinct addresses, with the cluster key. Checks that ids and text
# equal single-process output (stories260K, every hf/* model, greedy and seeded), that
# workers without the key are refused while the run goes on with the two that belong, and that
# workers with no copy of the model receive it over the network, cache it, and take it from
# the cache next time. Needs root and `ip netns` (exit 77: skipped). Namespaces are named
# after this process and always deleted. No traffic leaves them.
. "$(dirname "$0")/lib.sh"
command -v ip > /dev/null 2>&1 || { echo "SKIP: no ip command"; exit 77; }
NS=shoal$$
LNS=${NS}L W1=${NS}A W2=${NS}B
pids=""
cleanup() {
    for p in $pids; do kill -9 "$p" 2> /dev/null; done
    for n in $LNS $W1 $W2; do ip netns del "$n" 2> /dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
if ! ip netns add $LNS 2> "$TMP/netns.err"; then
    echo "SKIP: cannot create a network namespace: $(cat "$TMP/netns.err")"
    exit 77
fi
ip netns add $W1 && ip netns add $W2 || { bad "ip netns add"; finish; }
ip -n $LNS link set lo up
ip -n $LNS link add br0 type bridge
ip -n $LNS addr add 10.77.0.1/24 dev br0
ip -n $LNS link set br0 up
i=1
for ns in $W1 $W2; do
    ip -n $LNS link add b$i type veth peer name h$i netns $ns || bad "veth $i"
    ip -n $LNS link set b$i master br0
    ip -n $LNS link set b$i up
    ip -n $ns link set lo up
    ip -n $ns addr add 10.77.0.$((i + 1))/24 dev h$i
    ip -n $ns link set h$i up
    i=$((i + 1))
done
[ $fail -eq 0 ] || finish
if command -v ping > /dev/null 2>&1; then # worker to worker, across the bridge
    ip netns exec $W1 ping -c 1 -W 5 10.77.0.3 > /dev/null 2>&1 || bad "10.77.0.2 cannot reach 10.77.0.3"
fi

export SHOAL_CLUSTER_KEY="netns-key-$$"
export SHOAL_INIT_TIMEOUT=30
port=29500
DIST_PREFIX="ip netns exec $LNS"

# joins NAME ENV...: starts one worker on each "host" (ENV: extra NAME=value for both)
joins() {
    jn=$1
    shift
    ip netns exec $W1 env "$@" "$BIN" worker --join 10.77.0.1:$port 2> "$TMP/$jn.w1.err" & j1=$!
    ip netns exec $W2 env "$@" "$BIN" worker --join 10.77.0.1:$port 2> "$TMP/$jn.w2.err" & j2=$!
    pids="$pids $j1 $j2"
}
joined() { # NAME: both workers exited 0
    wait $j1; r1=$?
    wait $j2; r2=$?
    [ $r1 -eq 0 ] && [ $r2 -eq 0 ] || bad "$1: workers exited $r1 and $r2"
}
# ns_same NAME DUMP ARGS...: as `same`, the distributed run being the leader in its namespace
ns_same() {
    n=$1 d=$2
    shift 2
    port=$((port + 1))
    joins "$n" SHOAL_NS_TEST=1
    same "$n" "$d" "--listen 10.77.0.1:$port --expect 2 --join-timeout 30" "$@"
    joined "$n"
}

ns_same stories-greedy 0 $STORIES --temp 0 -n 200
ns_same stories-seeded 0 $STORIES -p "Once upon a time" $SAMPLING -n 60
for m in $HF_MODELS; do
    ns_same "$m-greedy" 1 -m "$TD/hf/$m" --prompt-ids $PROMPT_IDS --print-ids --temp 0 -n 24
    ns_same "$m-seeded" 0 -m "$TD/hf/$m" --prompt-ids $PROMPT_IDS --print-ids $SAMPLING -n 24
done
# the traffic crossed the virtual network: both workers' veths carried it
i=1
for ns in $W1 $W2; do
    rx=$(ip -n $ns -s link show dev h$i | awk '/RX:/ { getline; print $1; exit }')
    echo "host $i (10.77.0.$((i + 1))) received $rx bytes over its veth"
    [ "${rx:-0}" -gt 100000 ] || bad "$ns received only ${rx:-0} bytes over its veth"
    i=$((i + 1))
done

# workers without the key are refused (while the leader waits) and do not count
port=$((port + 1))
"$BIN" run $STORIES --temp 0 -n 100 > "$TMP/keyed.single" 2> /dev/null
ip netns exec $LNS "$BIN" run $STORIES --temp 0 -n 100 --listen 10.77.0.1:$port --expect 2 --join-timeout 30 \
    > "$TMP/keyed.dist" 2> "$TMP/keyed.dist.err" &
leader=$!
pids="$pids $leader"
wait_listening "$TMP/keyed.dist.err"
ip netns exec $W2 env SHOAL_CLUSTER_KEY=wrong SHOAL_INIT_TIMEOUT=10 "$BIN" worker --join 10.77.0.1:$port 2> "$TMP/wrong.err"
rc=$?
[ $rc -eq 1 ] || bad "the wrong-key worker exited $rc, not 1"
grep -q "wrong cluster key" "$TMP/wrong.err" || bad "wrong-key worker: $(tail -1 "$TMP/wrong.err")"
ip netns exec $W1 env -u SHOAL_CLUSTER_KEY SHOAL_INIT_TIMEOUT=10 "$BIN" worker --join 10.77.0.1:$port 2> "$TMP/nokey.err"
rc=$?
[ $rc -eq 1 ] || bad "the keyless worker exited $rc, not 1"
joins keyed
wait $leader; rc=$?
[ $rc -eq 0 ] || bad "keyed: the leader exited $rc"
joined keyed
cmp -s "$TMP/keyed.single" "$TMP/keyed.dist" || bad "keyed: output differs from single-process"
grep -q "refused connection from 10.77.0" "$TMP/keyed.dist.err" || bad "keyed: the leader did not log the refused worker"

# no copy of the model on the worker hosts: streamed over the network, cached per host, re-used
size=$(wc -c < "$TD/stories260K/stories260K.bin")
for run in 1 2; do
    port=$((port + 1))
    ip netns exec $W1 env SHOAL_WORKER_MODEL=none SHOAL_CACHE_DIR="$TMP/hostA-cache" "$BIN" worker --join 10.77.0.1:$port \
        2> "$TMP/s$run.w1.err" & j1=$!
    ip netns exec $W2 env SHOAL_WORKER_MODEL=none SHOAL_CACHE_DIR="$TMP/hostB-cache" "$BIN" worker --join 10.77.0.1:$port \
        2> "$TMP/s$run.w2.err" & j2=$!
    pids="$pids $j1 $j2"
    same "stream$run" 0 "--listen 10.77.0.1:$port --expect 2 --join-timeout 30" $STORIES --temp 0 -n 100
    joined "stream$run"
done
[ "$(grep -c "from the leader's stream .*($size bytes received)" "$TMP/stream1.dist.err")" -eq 2 ] || bad "stream1: not streamed to both hosts"
[ "$(grep -c "from its cache .*(0 bytes received)" "$TMP/stream2.dist.err")" -eq 2 ] || bad "stream2: not from the hosts' caches"
grep -q "sending the model" "$TMP/stream2.dist.err" && bad "stream2: the model was sent again"
ls "$TMP"/hostA-cache/models/*/stories260K.bin > /dev/null 2>&1 || bad "host A has no cached model"
no_orphans
finish
