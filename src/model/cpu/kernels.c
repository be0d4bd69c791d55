/* Run-time choice of the CPU kernel set from the CPU's features. */
#include <string.h>

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

const shoal__cpu_kernels *shoal__cpu_kernels_pick(const char *isa) {
    if (!isa || !*isa || strcmp(isa, "auto") == 0)
        return has_avx512() ? &shoal__kernels_avx512 : has_avx2() ? &shoal__kernels_avx2 : &shoal__kernels_scalar;
    if (strcmp(isa, "scalar") == 0) return &shoal__kernels_scalar;
    if (strcmp(isa, "avx2") == 0) return has_avx2() ? &shoal__kernels_avx2 : NULL;
    if (strcmp(isa, "avx512") == 0) return has_avx512() ? &shoal__kernels_avx512 : NULL;
    return NULL;
}
