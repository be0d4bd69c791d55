/* Internal helpers shared by every layer: time, logging, settings, error text, allocation.
 * Nothing here includes a higher layer. */
#ifndef SHOAL_COMMON_H
#define SHOAL_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shoal/shoal.h"

/* ---- time: monotonic seconds; a "deadline" is an absolute shoal__now() value, or
 * SHOAL__FOREVER when there is none. */
#define SHOAL__FOREVER 1e300
double shoal__now(void);
/* The same clock at the kernel tick's resolution (a few ms), for much less: liveness stamps. */
double shoal__now_coarse(void);
double shoal__deadline_in(double timeout_s); /* timeout_s < 0 gives SHOAL__FOREVER */
/* Milliseconds until the deadline for poll()/epoll_wait(): 0 if passed, -1 if forever, capped
 * at cap_ms when cap_ms >= 0. */
int shoal__ms_until(double deadline, int cap_ms);

/* ---- logging to stderr: "shoal[rank R] level: message". Levels: 0 error, 1 warn, 2 info,
 * 3 debug (SHOAL_LOG_LEVEL, default 1). */
enum { SHOAL__LOG_ERROR = 0, SHOAL__LOG_WARN = 1, SHOAL__LOG_INFO = 2, SHOAL__LOG_DEBUG = 3 };
void shoal__log_set_rank(int rank);
int shoal__log_enabled(int level);
void shoal__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- settings registry (src/common/settings.c). Typed getters parse the effective value
 * (environment, else default). They return SHOAL_ERR_INVALID with a message in err when the
 * environment holds text that does not parse, so a typo is reported instead of ignored. */
int shoal__setting_double(const char *name, double *out, char *err, size_t errcap);
int shoal__setting_int(const char *name, long long *out, char *err, size_t errcap);
int shoal__setting_bytes(const char *name, uint64_t *out, char *err, size_t errcap); /* 4K, 1M, 1G */
int shoal__setting_bool(const char *name, int *out, char *err, size_t errcap);
const char *shoal__setting_str(const char *name); /* "" when unset and no default */

/* Parses "123", "64K", "1M", "2G" (binary multiples). */
int shoal__parse_bytes(const char *text, uint64_t *out);

/* n bytes from the kernel's CSPRNG (getrandom); SHOAL_ERR_SYSTEM if it fails. */
int shoal__random_bytes(void *buf, size_t n);

/* snprintf that always terminates and never fails loudly (err buffers). */
void shoal__errf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- little-endian codecs for wire formats
 * On a little-endian host these are single unaligned loads and stores (memcpy); the byte
 * loops are the portable definition, kept for big-endian hosts. Frame headers are decoded on
 * every message, so this is on the latency path. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SHOAL__LE_CODEC(bits)                                                                  \
    static inline void shoal__put_u##bits(uint8_t *p, uint##bits##_t v) { memcpy(p, &v, sizeof v); } \
    static inline uint##bits##_t shoal__get_u##bits(const uint8_t *p) {                         \
        uint##bits##_t v;                                                                      \
        memcpy(&v, p, sizeof v);                                                               \
        return v;                                                                              \
    }
#else
#define SHOAL__LE_CODEC(bits)                                                                  \
    static inline void shoal__put_u##bits(uint8_t *p, uint##bits##_t v) {                      \
        for (int i = 0; i < (bits) / 8; i++) p[i] = (uint8_t)(v >> (8 * i));                   \
    }                                                                                          \
    static inline uint##bits##_t shoal__get_u##bits(const uint8_t *p) {                         \
        uint##bits##_t v = 0;                                                                  \
        for (int i = (bits) / 8 - 1; i >= 0; i--) v = (uint##bits##_t)((v << 8) | p[i]);       \
        return v;                                                                              \
    }
#endif
SHOAL__LE_CODEC(16)
SHOAL__LE_CODEC(32)
SHOAL__LE_CODEC(64)
#undef SHOAL__LE_CODEC

#endif
