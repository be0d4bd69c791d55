#!/usr/bin/env bash
# shoal vs Open MPI on the same collective, sizes and ranks, in the same run:
#   1. `shoal bench coll` with SHOAL_TRANSPORT=tcp (shoal's TCP mesh over loopback)
#   2. mpi_coll_bench under `mpirun --mca btl self,tcp` (Open MPI over TCP: the same transport)
#   3. `shoal bench coll` with its default transport (shared memory between local ranks)
#   4. mpi_coll_bench under plain `mpirun` (Open MPI's default transports: shared memory)
# Each is repeated --reps times, interleaved so that drift of the machine hits all alike, and
# the tables show per-size medians. See bench/README.md for the columns.
#
# Usage: bench/compare_mpi.sh [--build DIR] [--op OP] [-n N] [--min SIZE] [--max SIZE]
#                             [--dtype T] [--iters N] [--warmup N] [--reps R] [--algo A]
#                             [--only tcp|shm]
set -euo pipefail

build=build op=allreduce n=4 min=8 max=64M reps=3 algo=auto only=
common=()
usage() { # usage STATUS: the header comment; on stderr after a mistake
    local fd=1
    [ "${1:-0}" -ne 0 ] && fd=2
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&"$fd"
    exit "${1:-0}"
}
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift 2 ;;
    --op) op=$2; shift 2 ;;
    -n) n=$2; shift 2 ;;
    --min) min=$2; shift 2 ;;
    --max) max=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --algo) algo=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --dtype | --iters | --warmup) common+=("$1" "$2"); shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "compare_mpi.sh: unknown option '$1'" >&2; usage 2 ;;
    esac
done
[[ $reps =~ ^[1-9][0-9]*$ ]] || { echo "compare_mpi.sh: --reps needs a positive integer" >&2; exit 2; }
case $only in "" | tcp | shm) ;; *) echo "compare_mpi.sh: --only takes tcp or shm" >&2; exit 2 ;; esac

shoal=$build/shoal
mpibench=$build/bench/mpi_coll_bench
[ -x "$shoal" ] || { echo "compare_mpi.sh: $shoal not found: run 'make' first" >&2; exit 1; }
if ! command -v mpirun >/dev/null 2>&1 || [ ! -x "$mpibench" ]; then
    echo "compare_mpi.sh: needs mpirun and $mpibench (apt-get install openmpi-bin" \
        "libopenmpi-dev, then 'make')" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sweep=(--op "$op" --min "$min" --max "$max" "${common[@]}")
mpirun=(mpirun --allow-run-as-root --oversubscribe -np "$n")

for ((r = 1; r <= reps; r++)); do
    echo "# repetition $r of $reps: shoal and Open MPI over TCP, then both over shared memory" >&2
    if [ "$only" != shm ]; then
        SHOAL_TRANSPORT=tcp "$shoal" bench coll -n "$n" --algo "$algo" "${sweep[@]}" >"$tmp/shoal.$r"
        "${mpirun[@]}" --mca btl self,tcp "$mpibench" "${sweep[@]}" >"$tmp/tcp.$r"
    fi
    if [ "$only" != tcp ]; then
        "$shoal" bench coll -n "$n" --algo "$algo" "${sweep[@]}" >"$tmp/shoalshm.$r"
        "${mpirun[@]}" "$mpibench" "${sweep[@]}" >"$tmp/shm.$r"
    fi
done

# medians FILES...: one line per size, "bytes median_time_us median_busbw", in sweep order.
medians() {
    awk '
    function median(list,    a, k, i, j, x) {
        k = split(list, a, " ")
        for (i = 2; i <= k; i++) {          # insertion sort (mawk has no asort)
            x = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]
            a[j + 1] = x
        }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    !/^#/ && NF >= 4 {
        if (!($1 in t)) order[++n] = $1
        t[$1] = t[$1] " " $2
        b[$1] = b[$1] " " $4
    }
    END { for (i = 1; i <= n; i++) print order[i], median(t[order[i]]), median(b[order[i]]) }
    ' "$@"
}


# table TITLE MPI_MEDIANS SHOAL_MEDIANS: shoal's medians beside one Open MPI configuration's.
table() {
    echo
    echo "## $op, $n ranks: $1 (medians of $reps runs)"
    awk '
    NR == FNR { mt[$1] = $2; mb[$1] = $3; next }
    FNR == 1 {
        printf "%14s %11s %11s %8s %12s %12s %8s\n", "bytes", "shoal_us", "mpi_us",
               "ratio", "shoal_busbw", "mpi_busbw", "ratio"
    }
    ($1 in mt) {
        # Same bytes and factor on both sides, so the bandwidth ratio is the inverse time
        # ratio; computed from the times, it does not suffer from the rounded busbw columns.
        tr = mt[$1] > 0 ? $2 / mt[$1] : 0
        br = $2 > 0 ? mt[$1] / $2 : 0
        printf "%14d %11.2f %11.2f %8.2f %12.3f %12.3f %8.2f\n", $1, $2, mt[$1], tr, $3, mb[$1], br
    }
    ' "$2" "$3"
}

if [ "$only" != shm ]; then
    medians "$tmp"/shoal.* >"$tmp/shoal.med"
    medians "$tmp"/tcp.* >"$tmp/tcp.med"
    head -n 1 "$tmp/shoal.1"
    head -n 1 "$tmp/tcp.1"
    table "shoal over TCP vs Open MPI over TCP (--mca btl self,tcp)" "$tmp/tcp.med" "$tmp/shoal.med"
fi
if [ "$only" != tcp ]; then
    medians "$tmp"/shoalshm.* >"$tmp/shoalshm.med"
    medians "$tmp"/shm.* >"$tmp/shm.med"
    head -n 1 "$tmp/shm.1"
    table "shoal shared memory vs Open MPI default transports (shared memory, btl vader)" "$tmp/shm.med" "$tmp/shoalshm.med"
fi
echo
echo "# time ratio = shoal_us / mpi_us (below 1: shoal is faster);" \
    "busbw ratio = shoal_busbw / mpi_busbw (above 1: shoal is faster)"
