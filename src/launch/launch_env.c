/* What a launched child is given: a rendezvous port, a random key and group id, and its
 * environment block. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#include "launch/launch_int.h"

extern char **environ;

int shoal__launch_free_port(unsigned *port, char *err, size_t errcap) {
    int rc = SHOAL_ERR_SYSTEM;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        shoal__errf(err, errcap, "socket: %s", strerror(errno));
        return rc;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        shoal__errf(err, errcap, "bind 127.0.0.1:0: %s", strerror(errno));
        goto out;
    }
    if (getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        shoal__errf(err, errcap, "getsockname: %s", strerror(errno));
        goto out;
    }
    *port = ntohs(a.sin_port);
    rc = SHOAL_OK;
out:
    close(fd);
    return rc;
}

int shoal__launch_random_hex(char *out, size_t nbytes, char *err, size_t errcap) {
    static const char digits[] = "0123456789abcdef";
    unsigned char buf[64];
    if (nbytes > sizeof buf) return SHOAL_ERR_INVALID;
    if (shoal__random_bytes(buf, nbytes) != SHOAL_OK) {
        shoal__errf(err, errcap, "getrandom failed (no entropy source?)");
        return SHOAL_ERR_SYSTEM;
    }
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = digits[buf[i] >> 4];
        out[2 * i + 1] = digits[buf[i] & 15];
    }
    out[2 * nbytes] = 0;
    return SHOAL_OK;
}

int shoal__launch_env_entry_ok(const char *entry) {
    if (!entry) return 0;
    const char *eq = strchr(entry, '=');
    return eq && eq != entry;
}

/* Length of the name of "NAME=value" (the whole string if it has no '='). */
static size_t name_len(const char *entry) {
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

/* Whether entry's name equals the name of any of list[0..n-1]. */
static int overridden(const char *entry, const char *const *list, size_t n) {
    size_t len = name_len(entry);
    for (size_t i = 0; i < n; i++) {
        if (name_len(list[i]) == len && memcmp(entry, list[i], len) == 0) return 1;
    }
    return 0;
}

static size_t count(const char *const *v) {
    size_t n = 0;
    while (v && v[n]) n++;
    return n;
}

char **shoal__launch_env(const char *const *extra, const char *const *set, size_t nset) {
    const char *const *inherited = (const char *const *)environ;
    size_t ninh = count(inherited), nextra = count(extra);
    char **env = malloc((ninh + nextra + nset + 1) * sizeof *env);
    if (!env) return NULL;
    size_t n = 0;
    /* Strings are not copied: the block only has to live until exec (or the failed fork), and
     * nothing changes environ in between (the launcher does not call setenv while starting). */
    for (size_t i = 0; i < ninh; i++) {
        if (!overridden(inherited[i], extra, nextra) && !overridden(inherited[i], set, nset))
            env[n++] = (char *)inherited[i];
    }
    for (size_t i = 0; i < nextra; i++) {
        /* A later extra entry of the same name wins, as with repeated --env options. */
        if (!overridden(extra[i], extra + i + 1, nextra - i - 1) &&
            !overridden(extra[i], set, nset))
            env[n++] = (char *)extra[i];
    }
    for (size_t i = 0; i < nset; i++) env[n++] = (char *)set[i];
    env[n] = NULL;
    return env;
}
