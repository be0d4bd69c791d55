/* TCP sockets: address parsing, listen/connect/accept, and deadline-bounded full reads and
 * writes. Every call is bounded by a deadline (or returns at once), so no caller can hang on a
 * silent peer, and no write can raise SIGPIPE (MSG_NOSIGNAL). */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

/* Retry pacing of tcp_connect while the peer is not listening yet: start fast (ranks usually
 * come up within milliseconds of each other), then back off so a slow peer costs little CPU. */
#define CONNECT_RETRY_FIRST_MS 20
#define CONNECT_RETRY_MAX_MS 100

/* ---- addresses ----------------------------------------------------------------------------- */

static int parse_port(const char *s, uint16_t *port) {
    if (!*s) return SHOAL_ERR_INVALID;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return SHOAL_ERR_INVALID;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 65535) return SHOAL_ERR_INVALID;
    }
    *port = (uint16_t)v;
    return SHOAL_OK;
}

int shoal__addr_parse(const char *hostport, char *host, size_t hostcap, uint16_t *port,
                      char *err, size_t errcap) {
    if (!hostport || !host || hostcap == 0 || !port) {
        shoal__errf(err, errcap, "address: missing argument");
        return SHOAL_ERR_INVALID;
    }
    const char *h = hostport, *colon;
    size_t hlen;
    if (hostport[0] == '[') {
        /* "[v6addr]:port": the brackets are what lets a v6 address contain colons */
        const char *close = strchr(hostport, ']');
        if (!close || close[1] != ':') {
            shoal__errf(err, errcap, "address '%s': expected [v6addr]:port", hostport);
            return SHOAL_ERR_INVALID;
        }
        h = hostport + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(hostport, ':');
        if (!colon) {
            shoal__errf(err, errcap, "address '%s': expected host:port", hostport);
            return SHOAL_ERR_INVALID;
        }
        if (memchr(hostport, ':', (size_t)(colon - hostport))) {
            shoal__errf(err, errcap, "address '%s': write IPv6 addresses as [addr]:port",
                        hostport);
            return SHOAL_ERR_INVALID;
        }
        hlen = (size_t)(colon - hostport);
    }
    if (hlen == 0) {
        shoal__errf(err, errcap, "address '%s': empty host", hostport);
        return SHOAL_ERR_INVALID;
    }
    if (hlen >= hostcap || hlen >= SHOAL__HOST_MAX) {
        shoal__errf(err, errcap, "address '%s': host name too long", hostport);
        return SHOAL_ERR_INVALID;
    }
    if (parse_port(colon + 1, port) != SHOAL_OK) {
        shoal__errf(err, errcap, "address '%s': port must be a number 0..65535", hostport);
        return SHOAL_ERR_INVALID;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return SHOAL_OK;
}

int shoal__host_is_loopback(const char *host) {
    if (!host) return 0;
    char buf[SHOAL__HOST_MAX];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2); /* tolerate a bracketed v6 literal */
        buf[n - 2] = '\0';
        host = buf;
    }
    if (strcasecmp(host, "localhost") == 0) return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127; /* ::ffff:127.x.y.z */
    }
    return 0;
}

static int resolve(const char *host, uint16_t port, int passive, struct addrinfo **res,
                   char *err, size_t errcap) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    char serv[8];
    snprintf(serv, sizeof serv, "%u", (unsigned)port);
    /* An empty host or "*" means every interface (only meaningful when listening). */
    const char *node = (!host || !*host || strcmp(host, "*") == 0) ? NULL : host;
    int rc = getaddrinfo(node, serv, &hints, res);
    if (rc != 0) {
        shoal__errf(err, errcap, "cannot resolve '%s': %s", host ? host : "",
                    rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return rc == EAI_AGAIN ? SHOAL_ERR_TIMEOUT : SHOAL_ERR_INVALID;
    }
    return SHOAL_OK;
}

/* ---- socket options ------------------------------------------------------------------------ */

int shoal__set_nonblock(int fd, int on) {
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0) return SHOAL_ERR_SYSTEM;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? SHOAL_ERR_SYSTEM : SHOAL_OK;
}

static void set_nodelay(int fd) {
    int one = 1;
    /* Frames are small and latency-bound (barriers, store requests): never wait for Nagle. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void shoal__sock_tune_bulk(int fd) {
    uint64_t bytes = 0;
    char err[160] = "";
    if (shoal__setting_bytes("socket_buffer", &bytes, err, sizeof err) == SHOAL_OK && bytes > 0) {
        /* The kernel doubles the value and caps it at net.core.[rw]mem_max; clamp to int. */
        int v = bytes > (uint64_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)bytes;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    } else if (err[0]) {
        shoal__log(SHOAL__LOG_WARN, "%s; keeping the kernel's socket buffer sizes", err);
    }
    set_nodelay(fd);
}

static void format_sockaddr(const struct sockaddr_storage *ss, int with_port, char *buf,
                            size_t cap) {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        if (with_port)
            shoal__errf(buf, cap, "%s:%u", host, port);
        else
            shoal__errf(buf, cap, "%s", host);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        if (with_port)
            shoal__errf(buf, cap, "[%s]:%u", host, port);
        else
            shoal__errf(buf, cap, "%s", host);
    } else if (ss->ss_family == AF_UNIX) {
        shoal__errf(buf, cap, "unix");
    } else {
        shoal__errf(buf, cap, "?");
    }
}

void shoal__sock_peer_str(int fd, char *buf, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        shoal__errf(buf, cap, "?");
        return;
    }
    format_sockaddr(&ss, 1, buf, cap);
}

int shoal__sock_local_host(int fd, char *host, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return SHOAL_ERR_SYSTEM;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) return SHOAL_ERR_INVALID;
    char buf[INET6_ADDRSTRLEN + 8];
    format_sockaddr(&ss, 0, buf, sizeof buf);
    if (strlen(buf) >= cap) return SHOAL_ERR_INVALID;
    memcpy(host, buf, strlen(buf) + 1);
    return SHOAL_OK;
}

/* ---- listen / accept ----------------------------------------------------------------------- */

static int listen_one(const struct addrinfo *ai, int *fd_out, int *err_no) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0) {
        *err_no = errno;
        return SHOAL_ERR_SYSTEM;
    }
    int one = 1;
    /* REUSEADDR: a restarted rank can bind its port again while old connections sit in
     * TIME_WAIT. */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        *err_no = errno;
        close(fd);
        return SHOAL_ERR_SYSTEM;
    }
    *fd_out = fd;
    return SHOAL_OK;
}

static uint16_t bound_port_of(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int shoal__tcp_listen(const char *host, uint16_t port, int *fd, uint16_t *bound_port, char *err,
                      size_t errcap) {
    struct addrinfo *res = NULL;
    int rc = resolve(host, port, 1, &res, err, errcap);
    if (rc != SHOAL_OK) return rc == SHOAL_ERR_TIMEOUT ? SHOAL_ERR_SYSTEM : rc;
    int err_no = 0;
    rc = SHOAL_ERR_SYSTEM;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (listen_one(ai, fd, &err_no) == SHOAL_OK) {
            rc = SHOAL_OK;
            break;
        }
    }
    freeaddrinfo(res);
    if (rc != SHOAL_OK) {
        shoal__errf(err, errcap, "cannot listen on %s port %u: %s", host && *host ? host : "*",
                    (unsigned)port, strerror(err_no));
        return rc;
    }
    if (bound_port) *bound_port = bound_port_of(*fd);
    return SHOAL_OK;
}

int shoal__tcp_accept(int listen_fd, int *fd, char *peer, size_t peercap) {
    for (;;) {
        /* accept4 without SOCK_NONBLOCK gives a blocking socket even from a non-blocking
         * listener (Linux does not inherit O_NONBLOCK). */
        int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (c >= 0) {
            set_nodelay(c);
            if (peer && peercap) shoal__sock_peer_str(c, peer, peercap);
            *fd = c;
            return SHOAL_OK;
        }
        if (errno == EINTR) continue;
        /* A connection reset before we got to it is not an error of ours: try the next. */
        if (errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return SHOAL_ERR_TIMEOUT;
        return SHOAL_ERR_SYSTEM;
    }
}

/* ---- connect ------------------------------------------------------------------------------- */

static int connect_retryable(int e) {
    /* The listener may not be up yet, or the route is still coming up. */
    return e == ECONNREFUSED || e == ETIMEDOUT || e == ENETUNREACH || e == EHOSTUNREACH ||
           e == ECONNRESET || e == EAGAIN;
}

/* TCP simultaneous open can connect a socket to itself when we retry towards a free port in
 * the ephemeral range on the same host; such a "connection" would look like a silent peer. */
static int is_self_connect(int fd) {
    struct sockaddr_storage a, b;
    socklen_t la = sizeof a, lb = sizeof b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    if (getsockname(fd, (struct sockaddr *)&a, &la) != 0) return 0;
    if (getpeername(fd, (struct sockaddr *)&b, &lb) != 0) return 0;
    return la == lb && memcmp(&a, &b, la) == 0;
}

/* One non-blocking attempt bounded by the deadline. SHOAL_OK with *out, SHOAL_ERR_TIMEOUT at
 * the deadline, or SHOAL_ERR_SYSTEM with *err_no (retryable or not: the caller decides). */
static int connect_once(const struct addrinfo *ai, double deadline, int *out, int *err_no) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0) {
        *err_no = errno;
        return SHOAL_ERR_SYSTEM;
    }
    int rc = SHOAL_ERR_SYSTEM;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            *err_no = errno;
            goto fail;
        }
        for (;;) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = poll(&p, 1, shoal__ms_until(deadline, -1));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                *err_no = errno;
                goto fail;
            }
            if (n == 0) {
                *err_no = ETIMEDOUT;
                rc = SHOAL_ERR_TIMEOUT;
                goto fail;
            }
            break;
        }
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) soerr = errno;
        if (soerr != 0) {
            *err_no = soerr;
            goto fail;
        }
    }
    if (is_self_connect(fd)) {
        *err_no = ECONNREFUSED;
        goto fail;
    }
    if (shoal__set_nonblock(fd, 0) != SHOAL_OK) {
        *err_no = errno;
        goto fail;
    }
    set_nodelay(fd);
    *out = fd;
    return SHOAL_OK;
fail:
    close(fd);
    return rc;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int shoal__tcp_connect(const char *host, uint16_t port, double deadline, int *fd, char *err,
                       size_t errcap) {
    if (!host || !*host || !fd) {
        shoal__errf(err, errcap, "connect: no host given");
        return SHOAL_ERR_INVALID;
    }
    int backoff = CONNECT_RETRY_FIRST_MS;
    int last_errno = 0;
    for (;;) {
        struct addrinfo *res = NULL;
        char rerr[256] = "";
        int rc = resolve(host, port, 0, &res, rerr, sizeof rerr);
        if (rc == SHOAL_ERR_INVALID) { /* the name does not exist: retrying will not help */
            shoal__errf(err, errcap, "%s", rerr);
            return rc;
        }
        if (rc == SHOAL_OK) {
            for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int e = 0;
                rc = connect_once(ai, deadline, fd, &e);
                if (rc == SHOAL_OK) {
                    freeaddrinfo(res);
                    return SHOAL_OK;
                }
                last_errno = e;
                if (rc == SHOAL_ERR_TIMEOUT) break;
                if (!connect_retryable(e)) {
                    freeaddrinfo(res);
                    shoal__errf(err, errcap, "connect to %s port %u: %s", host, (unsigned)port,
                                strerror(e));
                    return SHOAL_ERR_SYSTEM;
                }
            }
            freeaddrinfo(res);
        } else {
            last_errno = EAGAIN; /* temporary resolver failure: retry like a refused connect */
        }
        int left = shoal__ms_until(deadline, backoff);
        if (left == 0) break;
        sleep_ms(left);
        backoff = backoff * 2 > CONNECT_RETRY_MAX_MS ? CONNECT_RETRY_MAX_MS : backoff * 2;
    }
    shoal__errf(err, errcap, "connect to %s port %u: timed out (last error: %s)", host,
                (unsigned)port, last_errno ? strerror(last_errno) : "none");
    return SHOAL_ERR_TIMEOUT;
}

/* ---- full reads and writes ----------------------------------------------------------------- */

static int io_errno_status(int e) {
    /* These mean the other end is gone (or unreachable for good), not that we misbehaved. */
    if (e == ECONNRESET || e == EPIPE || e == ECONNABORTED || e == ETIMEDOUT ||
        e == EHOSTUNREACH || e == ENETUNREACH)
        return SHOAL_ERR_PEER_FAILED;
    return SHOAL_ERR_SYSTEM;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        int ms = shoal__ms_until(deadline, -1);
        if (ms == 0) return SHOAL_ERR_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms);
        if (n > 0) return SHOAL_OK; /* ready, or HUP/ERR: the next call reports which */
        if (n == 0) continue;       /* re-check the clock: poll may wake a little early */
        if (errno != EINTR) return SHOAL_ERR_SYSTEM;
    }
}

int shoal__read_full(int fd, void *buf, size_t n, double deadline) {
    uint8_t *p = buf;
    int is_sock = 1;
    while (n > 0) {
        /* MSG_DONTWAIT lets one code path serve blocking and non-blocking sockets alike while
         * poll() enforces the deadline; a pipe or file falls back to poll + read. */
        ssize_t r = is_sock ? recv(fd, p, n, MSG_DONTWAIT) : read(fd, p, n);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0) return SHOAL_ERR_PEER_FAILED; /* EOF before n bytes */
        if (errno == EINTR) continue;
        if (errno == ENOTSOCK && is_sock) {
            is_sock = 0;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return io_errno_status(errno);
        }
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc != SHOAL_OK) return rc;
    }
    return SHOAL_OK;
}

int shoal__write_full(int fd, const void *buf, size_t n, double deadline) {
    const uint8_t *p = buf;
    int is_sock = 1;
    while (n > 0) {
        ssize_t w = is_sock ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == ENOTSOCK && is_sock) {
            /* A pipe: plain write. Give it O_NONBLOCK for a strict deadline, and ignore SIGPIPE
             * yourself: MSG_NOSIGNAL exists only for sockets. */
            is_sock = 0;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return io_errno_status(errno);
        }
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc != SHOAL_OK) return rc;
    }
    return SHOAL_OK;
}
