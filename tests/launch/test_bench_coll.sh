#!/usr/bin/env bash
# `shoal bench coll --check` over every collective and a few dtypes on small sizes: the tool
# runs end to end and every result matches the serial reference. Timings are printed, never
# asserted. SHOAL_TEST_QUICK=1 (sanitizer builds) trims the sweep.
# Usage: test_bench_coll.sh SHOAL_BIN
set -u
shoal=${1:?usage: test_bench_coll.sh SHOAL_BIN}
. "$(dirname "$0")/lib.sh"
clean_rank_env
max=256K
[ "${SHOAL_TEST_QUICK:-0}" = 1 ] && max=16K
failures=0
run() {
    echo "+ shoal bench coll $*"
    if ! "$shoal" bench coll --check --iters 2 --warmup 1 --timeout 100 "$@"; then
        echo "FAIL: shoal bench coll $*" >&2
        failures=$((failures + 1))
    fi
}
for op in allreduce allgather reduce_scatter broadcast reduce alltoall; do
    run --op "$op" -n 4 --min 4 --max "$max"
done
run --op allreduce -n 3 --min 8 --max 64K --dtype bf16 --algo ring
run --op allreduce -n 3 --min 8 --max 64K --dtype i8 --algo rd
run --op reduce_scatter -n 2 --min 8 --max 64K --dtype f64
run --op allgather -n 1 --min 8 --max 1K --dtype u8
[ "$failures" -eq 0 ] || { echo "test_bench_coll: $failures run(s) failed"; exit 1; }
echo "test_bench_coll: all runs passed"
