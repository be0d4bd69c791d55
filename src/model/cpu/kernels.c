/* Run-time choice of the CPU kernel set from the CPU's features. */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "model/cpu/kernels.h"

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

/* AMX tiles need the kernel's permission per process (Linux >= 5.16); asked once. */
static int has_amx(void) {
    static _Atomic int state = -1; /* -1: not asked yet (asking twice is harmless) */
    if (state < 0) {
        int ok = 0;
#if defined(__linux__) && defined(__x86_64__)
        __builtin_cpu_init();
        if (has_avx512() && __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-int8"))
            ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#endif
        state = ok;
    }
    return state;
}

const shoal__cpu_kernels *shoal__cpu_kernels_pick(const char *isa) {
    if (!isa || !*isa || strcmp(isa, "auto") == 0)
        return has_amx()      ? &shoal__kernels_amx
               : has_avx512() ? &shoal__kernels_avx512
               : has_avx2()   ? &shoal__kernels_avx2
                              : &shoal__kernels_scalar;
    if (strcmp(isa, "scalar") == 0) return &shoal__kernels_scalar;
    if (strcmp(isa, "avx2") == 0) return has_avx2() ? &shoal__kernels_avx2 : NULL;
    if (strcmp(isa, "avx512") == 0) return has_avx512() ? &shoal__kernels_avx512 : NULL;
    if (strcmp(isa, "amx") == 0) return has_amx() ? &shoal__kernels_amx : NULL;
    return NULL;
}

int shoal__cpu_kernels_chain(const shoal__cpu_kernels *k, const shoal__cpu_kernels *chain[4]) {
    static const shoal__cpu_kernels *const order[] = {&shoal__kernels_amx, &shoal__kernels_avx512,
                                                      &shoal__kernels_avx2, &shoal__kernels_scalar};
    int i = 0, n = 0;
    while (i < 3 && order[i] != k) i++;
    for (; i < 4; i++) chain[n++] = order[i];
    return n;
}
