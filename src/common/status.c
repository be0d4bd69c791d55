/* Status code text and the library version. */
#include <stdarg.h>
#include <stdio.h>

#include "common/common.h"

const char *shoal_status_str(int status) {
    switch (status) {
    case SHOAL_OK: return "ok";
    case SHOAL_ERR_INVALID: return "invalid argument";
    case SHOAL_ERR_NOMEM: return "out of memory";
    case SHOAL_ERR_SYSTEM: return "system error";
    case SHOAL_ERR_TIMEOUT: return "timeout";
    case SHOAL_ERR_PEER_FAILED: return "peer failed";
    case SHOAL_ERR_PROTOCOL: return "protocol error";
    case SHOAL_ERR_AUTH: return "authentication failed";
    case SHOAL_ERR_CANCELLED: return "cancelled";
    case SHOAL_ERR_ABORTED: return "aborted";
    case SHOAL_ERR_TRUNCATED: return "message truncated";
    case SHOAL_ERR_NOT_FOUND: return "not found";
    case SHOAL_ERR_UNSUPPORTED: return "unsupported";
    case SHOAL_ERR_REMOTE: return "remote error";
    case SHOAL_ERR_IO: return "i/o error";
    case SHOAL_ERR_FORMAT: return "bad format";
    default: return "unknown status";
    }
}

#define SHOAL__STR2(x) #x
#define SHOAL__STR(x) SHOAL__STR2(x)
const char *shoal_version(void) {
    return SHOAL__STR(SHOAL_VERSION_MAJOR) "." SHOAL__STR(SHOAL_VERSION_MINOR) "." SHOAL__STR(
        SHOAL_VERSION_PATCH);
}

void shoal__errf(char *buf, size_t cap, const char *fmt, ...) {
    if (!buf || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}
