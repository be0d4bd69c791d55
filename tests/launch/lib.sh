# Helpers sourced by the launcher test scripts (bash).

# A TCP port on 127.0.0.1 that nothing listens on, chosen below the kernel's ephemeral range
# (32768 and up) so that outgoing connections do not take it meanwhile.
free_port() {
    local p i
    for i in $(seq 1 100); do
        p=$(( (RANDOM % 12000) + 20000 ))
        if command -v ss >/dev/null 2>&1; then
            [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
        elif ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"; return 0
        fi
    done
    echo "free_port: no free port found" >&2
    return 1
}

# The variables any starter could have left in our environment: the test sets its own.
clean_rank_env() {
    unset SHOAL_RANK SHOAL_WORLD_SIZE SHOAL_MASTER SHOAL_CLUSTER_KEY SHOAL_CLUSTER_KEY_FILE \
        SHOAL_GROUP_ID SHOAL_LOCAL_RANK SHOAL_LOCAL_SIZE RANK WORLD_SIZE LOCAL_RANK \
        LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT PMI_RANK PMI_SIZE SLURM_PROCID SLURM_NTASKS
}
