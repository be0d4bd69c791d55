/* Monotonic time and deadlines. */
#include <time.h>

#include "common/common.h"

double shoal__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double shoal__now_coarse(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double shoal__deadline_in(double timeout_s) {
    if (timeout_s < 0) return SHOAL__FOREVER;
    return shoal__now() + timeout_s;
}

int shoal__ms_until(double deadline, int cap_ms) {
    if (deadline >= SHOAL__FOREVER) return cap_ms >= 0 ? cap_ms : -1;
    double left = deadline - shoal__now();
    if (left <= 0) return 0;
    double ms = left * 1000.0 + 0.999; /* round up so we never wake just before the deadline */
    if (cap_ms >= 0 && ms > cap_ms) return cap_ms;
    if (ms > 1e9) return 1000000000;
    return (int)ms;
}
