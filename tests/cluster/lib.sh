# Shared helpers of the cluster CLI tests (sourced). Needs SHOAL_BIN (set by ctest) and the
# test data (SHOAL_TESTDATA, else SHOAL_TESTDATA_DEFAULT, else ../shared/testdata).
set -u
BIN=${SHOAL_BIN:?SHOAL_BIN is not set}
TD=${SHOAL_TESTDATA:-${SHOAL_TESTDATA_DEFAULT:-../shared/testdata}}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/shoal-test-cluster-XXXXXX")
export SHOAL_CACHE_DIR="$TMP/cache" # never the user's ~/.cache
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
cleanup_tmp() { rm -rf "$TMP"; }
trap cleanup_tmp EXIT

STORIES="-m $TD/stories260K/stories260K.bin --tokenizer $TD/stories260K/tok512.bin"
HF_MODELS="stories260K-hf tiny-llama tiny-qwen3 tiny-llama-bf16"
PROMPT_IDS=1,166,294,37,310,166,131,74,85,236,254,121,43,104,149,280,26,135,55,10 # < 320: every vocabulary
SAMPLING="--temp 0.9 --top-k 40 --top-p 0.9 --min-p 0.05 --repeat-penalty 1.1 --seed 42"

# same NAME DUMP DIST ARGS...: runs `shoal run ARGS` alone and `shoal run ARGS DIST` (the
# distributed form: DIST is split into words; run under $DIST_PREFIX, e.g. `ip netns exec X`,
# when that is set) and checks both exit 0 and print the same bytes;
# with DUMP 1 both also write --dump-logits, which must be byte-identical too.
same() {
    name=$1 dump=$2 dist=$3
    shift 3
    d1="" d2=""
    if [ "$dump" = 1 ]; then d1="--dump-logits $TMP/$name.single.f32" d2="--dump-logits $TMP/$name.dist.f32"; fi
    # shellcheck disable=SC2086
    "$BIN" run "$@" $d1 > "$TMP/$name.single" 2> "$TMP/$name.single.err" || { bad "$name: single-process run exited $?"; tail -3 "$TMP/$name.single.err" >&2; }
    # shellcheck disable=SC2086
    ${DIST_PREFIX:-} "$BIN" run "$@" $d2 $dist > "$TMP/$name.dist" 2> "$TMP/$name.dist.err" || { bad "$name: distributed run ($dist) exited $?"; tail -5 "$TMP/$name.dist.err" >&2; }
    cmp -s "$TMP/$name.single" "$TMP/$name.dist" || bad "$name: output differs: '$(head -c 80 "$TMP/$name.single")' vs '$(head -c 80 "$TMP/$name.dist")'"
    [ -s "$TMP/$name.single" ] || bad "$name: no output"
    if [ "$dump" = 1 ]; then
        [ -s "$TMP/$name.single.f32" ] || bad "$name: no logits dump"
        cmp -s "$TMP/$name.single.f32" "$TMP/$name.dist.f32" || bad "$name: --dump-logits differ"
    fi
}

# No process of ours may be left: none whose command line is a `shoal worker` started for
# this test (they carry SHOAL_CACHE_DIR=$TMP/cache in their environment).
no_orphans() {
    left=""
    for p in /proc/[0-9]*; do
        if grep -qzx "SHOAL_CACHE_DIR=$TMP/cache" "$p/environ" 2>/dev/null; then
            pid=${p#/proc/}
            [ "$pid" = "$$" ] && continue
            cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)
            case "$cmd" in *shoal*worker*|*shoal*run*) left="$left $pid($cmd)";; esac
        fi
    done
    [ -z "$left" ] || bad "processes left behind:$left"
}

# free_port SALT: a TCP port no socket uses now, below the kernel's ephemeral range (so no
# outgoing connection takes it meanwhile), from a pid-derived start
free_port() {
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2> /dev/null || echo 32768)
    [ "$lo" -gt 12000 ] || lo=32768
    span=$((lo - 11000))
    fp=$((10000 + ($$ * ${1:-7919}) % span))
    while command -v ss > /dev/null 2>&1 && [ -n "$(ss -Htan "sport = :$fp" 2> /dev/null)" ]; do fp=$((fp + 1)); done
    echo $fp
}

# wait_listening ERRFILE: until a `shoal run --listen` says it waits for workers (its store
# listens right after), 10 s at most
wait_listening() {
    i=0
    while ! grep -q "waiting on .* for" "$1" 2> /dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.3
}

finish() {
    [ $fail -eq 0 ] && echo ok
    exit $fail
}
