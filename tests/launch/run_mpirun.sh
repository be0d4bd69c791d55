#!/usr/bin/env bash
# Starts PROGRAM under Open MPI's mpirun: the comm core takes rank and size from
# OMPI_COMM_WORLD_RANK/SIZE and the rendezvous address from SHOAL_MASTER (passed with -x).
# Exits 77 (ctest SKIP_RETURN_CODE) when mpirun is not installed.
# Usage: run_mpirun.sh PROGRAM [N]
set -u
prog=${1:?usage: run_mpirun.sh PROGRAM [N]}
n=${2:-4}
. "$(dirname "$0")/lib.sh"
if ! command -v mpirun >/dev/null 2>&1; then
    echo "run_mpirun: mpirun is not installed: skipped"
    exit 77
fi
clean_rank_env
port=$(free_port) || exit 1
# --oversubscribe: more ranks than cores is fine here; --allow-run-as-root: CI runs as root.
exec mpirun --allow-run-as-root --oversubscribe -np "$n" \
    -x SHOAL_MASTER=127.0.0.1:$port -x SHOAL_INIT_TIMEOUT=${SHOAL_INIT_TIMEOUT:-60} "$prog"
