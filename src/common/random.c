/* Cryptographic random bytes from the kernel (getrandom). Used for nonces, cluster keys and
 * group ids. Not OpenSSL's RAND_bytes: that keeps per-thread generator state, which the
 * short-lived handshake threads would leave behind at exit. */
#include <errno.h>
#include <sys/random.h>

#include "common/common.h"

int shoal__random_bytes(void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            return SHOAL_ERR_SYSTEM;
        }
        p += got;
        n -= (size_t)got;
    }
    return SHOAL_OK;
}
