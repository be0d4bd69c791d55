#!/usr/bin/env bash
# Starts N copies of PROGRAM with the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
# LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and no SHOAL_* ones, waits for all of them and
# fails if any fails (the others are then killed rather than left to time out).
# Usage: run_torchrun_style.sh PROGRAM [N]
set -u
prog=${1:?usage: run_torchrun_style.sh PROGRAM [N]}
n=${2:-4}
. "$(dirname "$0")/lib.sh"
clean_rank_env
port=$(free_port) || exit 1
export SHOAL_INIT_TIMEOUT=${SHOAL_INIT_TIMEOUT:-60}

pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; }
trap cleanup EXIT
for ((r = 0; r < n; r++)); do
    RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 \
        MASTER_PORT=$port "$prog" &
    pids+=($!)
done
for ((left = n; left > 0; left--)); do
    wait -n
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "run_torchrun_style: a rank exited with status $rc; stopping the others" >&2
        exit 1
    fi
done
pids=()
echo "run_torchrun_style: $n ranks on 127.0.0.1:$port all exited 0"
