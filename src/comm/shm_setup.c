/* Setting up the same-host transport.
 *
 * Ranks publish a host identity in the store. For each pair on the same host, once the TCP
 * mesh is up, the higher rank connects to the lower rank's abstract unix socket (no file, and
 * private to the network namespace), both run the usual authenticated handshake (lane 2), and
 * the lower rank sends an anonymous memfd segment holding the pair's four rings (control and
 * data lane, one per direction) with SCM_RIGHTS. Neither side ever names the segment, so
 * nothing can be left in /dev/shm: the memory goes away with the last process mapping it,
 * whatever way it ends. The TCP connections stay open for doorbells and to notice a death.
 *
 * Last, each side proves it can read the other's memory with process_vm_readv (the single
 * copy of large messages, DATA_REF frames): it reads a random word at an address the peer
 * names, by the pid the kernel reports for the socket's other end, and says whether the word
 * matched. Where ptrace rules (Yama), pid namespaces or shm_cma=0 forbid it, the pair keeps
 * using the rings for every size. */
#define _GNU_SOURCE 1 /* accept4, process_vm_readv, SO_PEERCRED */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "comm/comm_core.h"
#include "comm/shm_coll.h"

#define SHM_LANE 2                /* the hello's lane for this setup connection */
#define CTRL_RING (256u << 10)    /* control lane: small frames (barriers, rpc, heartbeats) */
#define SETUP_MAX_S 5.0
#define SHOAL__SHM_MAX_RANKS 64 /* the group area's waits scan every rank: keep it small */

static void read_first_line(const char *path, char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\n")] = 0;
    fclose(f);
}

/* boot id + hostname + network namespace: processes that match can share memory and reach
 * each other's abstract sockets. SHOAL_HOST_ID overrides it (tests make "hosts" that way). */
static void host_identity(const shoal__resolved_config *rc, char *out, size_t cap) {
    if (rc->host_id[0]) {
        snprintf(out, cap, "id:%s", rc->host_id);
        return;
    }
    char boot[64], host[128] = "", ns[64] = "";
    read_first_line("/proc/sys/kernel/random/boot_id", boot, sizeof boot);
    gethostname(host, sizeof host - 1);
    ssize_t n = readlink("/proc/self/ns/net", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = 0;
    snprintf(out, cap, "%s/%s/%s", boot, host, ns);
}

static void sock_addr(const shoal__mesh *m, int rank, struct sockaddr_un *a, socklen_t *len) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    char name[96];
    int k = snprintf(name, sizeof name, "shoal-");
    for (int i = 0; i < SHOAL__GROUP_ID_SIZE; i++) k += snprintf(name + k, sizeof name - (size_t)k, "%02x", m->auth.group[i]);
    k += snprintf(name + k, sizeof name - (size_t)k, "-%d", rank);
    memcpy(a->sun_path + 1, name, (size_t)k); /* sun_path[0] == 0: the abstract namespace */
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k);
}

static void host_key(char *buf, size_t cap, int rank) { snprintf(buf, cap, "shoal/host/%d", rank); }

int shoal__shm_prepare(shoal__mesh *m, shoal__resolved_config *rc, double deadline, int *lfd) {
    *lfd = -1;
    if (m->size == 1) return SHOAL_OK;
    char id[600], key[64], err[256];
    host_identity(rc, id, sizeof id - 8);
    if (rc->transport != 1) {
        struct sockaddr_un a;
        socklen_t alen;
        sock_addr(m, m->rank, &a, &alen);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, alen) == 0 && listen(fd, 128) == 0) {
            *lfd = fd;
        } else {
            if (rc->transport == 2)
                return shoal__init_fail(SHOAL_ERR_SYSTEM, NULL, 0, "SHOAL_TRANSPORT=shm: no local socket: %s",
                                        strerror(errno));
            shoal__log(SHOAL__LOG_WARN, "shared memory unavailable (%s): using TCP only", strerror(errno));
            if (fd >= 0) close(fd);
        }
    }
    /* the identity is published even over TCP: counting the ranks of this host tells whether
     * the host is oversubscribed (then waits yield instead of spinning) */
    strcat(id, *lfd >= 0 ? "#shm" : "#tcp");
    host_key(key, sizeof key, m->rank);
    int st = shoal__store_set(m->store, key, id, strlen(id), deadline, err, sizeof err);
    if (st != SHOAL_OK) {
        if (*lfd >= 0) close(*lfd);
        *lfd = -1;
        return shoal__init_fail(st, NULL, 0, "rendezvous: %s", err);
    }
    return SHOAL_OK;
}

/* Whether peer shares our host (*local) and can share memory with us (*shm), by the
 * published identities "ID#shm" / "ID#tcp". */
static int same_host(shoal__mesh *m, const char *mine, int peer, double deadline, int *local, int *shm) {
    char key[64], err[256];
    host_key(key, sizeof key, peer);
    void *val = NULL;
    size_t len = 0;
    int st = shoal__store_get(m->store, key, &val, &len, deadline, err, sizeof err);
    if (st != SHOAL_OK) return shoal__init_fail(st, &peer, 1, "rendezvous: rank %d's host: %s", peer, err);
    size_t n = strlen(mine) - 4; /* without the #shm / #tcp suffix */
    *local = len == n + 4 && memcmp(val, mine, n) == 0;
    *shm = *local && memcmp((char *)val + n, "#shm", 4) == 0 && strcmp(mine + n, "#shm") == 0;
    free(val);
    return SHOAL_OK;
}

static int online_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void attach(shoal__mesh *m, int peer, uint8_t *base, size_t len, size_t ctrl, size_t data, int low, int init) {
    size_t off[4] = {0, shoal__ring_bytes(ctrl), 2 * shoal__ring_bytes(ctrl),
                     2 * shoal__ring_bytes(ctrl) + shoal__ring_bytes(data)};
    for (int lane = 0; lane < 2; lane++) {
        shoal__conn *c = &m->conns[peer * 2 + lane];
        size_t size = lane ? data : ctrl;
        /* ring 2*lane carries low -> high, ring 2*lane+1 high -> low */
        shoal__ring_attach(low ? &c->tx : &c->rx, base + off[2 * lane], size, init);
        shoal__ring_attach(low ? &c->rx : &c->tx, base + off[2 * lane + 1], size, init);
        c->shm = 1;
        m->nshm++;
    }
    m->conns[peer * 2].shm_base = base;
    m->conns[peer * 2].shm_len = len;
}

/* process_vm_readv (write 0) or process_vm_writev (1) of len bytes, retried until whole. */
static int peer_copy(int pid, void *local_buf, uint64_t addr, size_t len, int write) {
    size_t got = 0;
    while (got < len) {
        struct iovec local = {(uint8_t *)local_buf + got, len - got};
        struct iovec remote = {(void *)(uintptr_t)(addr + got), len - got};
        ssize_t n = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0)
                          : process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno : EFAULT;
        got += (size_t)n;
    }
    return 0;
}

int shoal__peer_read(int pid, void *dst, uint64_t addr, size_t len) { return peer_copy(pid, dst, addr, len, 0); }

int shoal__peer_write(int pid, const void *src, uint64_t addr, size_t len) {
    return peer_copy(pid, (void *)src, addr, len, 1);
}

/* What one side tells the other: where its probe word is, and its value. */
static void probe_offer(const shoal__mesh *m, uint8_t out[16]) {
    shoal__put_u64(out, m->ref_min == UINT64_MAX ? 0 : (uint64_t)(uintptr_t)&m->ref_probe);
    shoal__put_u64(out + 8, m->ref_probe);
}

/* Reads the peer's probe word (offer from probe_offer) through its pid: 1 if it matches. */
static int probe_peer(const shoal__mesh *m, int fd, const uint8_t offer[16], int *pid) {
    struct ucred cred;
    socklen_t clen = sizeof cred;
    uint64_t addr = shoal__get_u64(offer), want = shoal__get_u64(offer + 8), got = ~want;
    *pid = 0;
    if (m->ref_min == UINT64_MAX || addr == 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.pid <= 0)
        return 0;
    if (shoal__peer_read(cred.pid, &got, addr, sizeof got) != 0 || got != want) return 0;
    *pid = cred.pid;
    return 1;
}

static void set_ref(shoal__mesh *m, int peer, int rx, int tx, int pid) {
    for (int lane = 0; lane < 2; lane++) {
        shoal__conn *c = &m->conns[peer * 2 + lane];
        c->ref_rx = rx;
        c->ref_tx = tx && m->ref_min != UINT64_MAX;
        c->peer_pid = pid;
    }
}

static int valid_ring(uint64_t v) { return v >= 4096 && v <= (1ull << 30) && !(v & (v - 1)); }

/* Higher rank: fetch the segment from the lower rank `peer`. */
static int dial(shoal__mesh *m, int peer, double deadline) {
    char err[256] = "";
    struct sockaddr_un a;
    socklen_t alen;
    sock_addr(m, peer, &a, &alen);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), st = SHOAL_ERR_SYSTEM, mfd = -1, gfd = -1;
    while (fd >= 0 && connect(fd, (struct sockaddr *)&a, alen) < 0) {
        if ((errno != EAGAIN && errno != ECONNREFUSED) || shoal__now() >= deadline) {
            shoal__errf(err, sizeof err, "connect: %s", strerror(errno));
            goto out;
        }
        usleep(2000);
    }
    shoal__hello self = {.version = SHOAL__PROTOCOL_VERSION, .kind = SHOAL__CONN_MESH,
                         .rank = (uint32_t)m->rank, .world_size = (uint32_t)m->size, .lane = SHM_LANE}, them;
    double hd = shoal__deadline_in(SETUP_MAX_S);
    if (hd > deadline) hd = deadline;
    st = shoal__handshake_connect(fd, &m->auth, &self, &them, hd, err, sizeof err);
    if (st != SHOAL_OK) goto out;
    st = SHOAL_ERR_PROTOCOL;
    if ((int)them.rank != peer) {
        shoal__errf(err, sizeof err, "the socket belongs to rank %u", them.rank);
        goto out;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, shoal__ms_until(hd, -1)) <= 0) {
        st = SHOAL_ERR_TIMEOUT;
        shoal__errf(err, sizeof err, "no segment arrived");
        goto out;
    }
    uint8_t sizes[24];
    char cbuf[CMSG_SPACE(2 * sizeof(int))];
    struct iovec iov = {sizes, sizeof sizes};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    int nfds = cm && cm->cmsg_type == SCM_RIGHTS ? (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
    if (nfds >= 1) memcpy(&mfd, CMSG_DATA(cm), sizeof mfd);
    if (nfds == 2) memcpy(&gfd, CMSG_DATA(cm) + sizeof(int), sizeof gfd);
    uint64_t glen = n == (ssize_t)sizeof sizes ? shoal__get_u64(sizes + 16) : 0;
    if (n != (ssize_t)sizeof sizes || nfds < 1 || nfds > 2 || (nfds == 2) != (glen != 0) || (glen && peer != 0)) {
        shoal__errf(err, sizeof err, "malformed segment message");
        goto out;
    }
    if (glen) { /* rank 0 shares the group area: every rank is on this host */
        void *area = NULL;
        if (glen != shoal__shm_area_bytes(m->size) || shoal__shm_map(gfd, (size_t)glen, &area) != SHOAL_OK ||
            !shoal__shm_area_check(area, (size_t)glen, m->size)) {
            if (area) munmap(area, (size_t)glen);
            shoal__errf(err, sizeof err, "bad group area");
            goto out;
        }
        m->group_area = area;
        m->group_len = (size_t)glen;
    }
    uint64_t ctrl = shoal__get_u64(sizes), data = shoal__get_u64(sizes + 8);
    if (!valid_ring(ctrl) || !valid_ring(data)) {
        shoal__errf(err, sizeof err, "bad ring sizes %llu/%llu", (unsigned long long)ctrl, (unsigned long long)data);
        goto out;
    }
    size_t len = 2 * shoal__ring_bytes(ctrl) + 2 * shoal__ring_bytes(data);
    void *mem = NULL;
    if ((st = shoal__shm_map(mfd, len, &mem)) != SHOAL_OK) {
        shoal__errf(err, sizeof err, "cannot map the segment");
        goto out;
    }
    attach(m, peer, mem, len, ctrl, data, 0, 0);
    /* taken; then the single-copy probe both ways: our offer, its verdict + offer, ours */
    uint8_t offer[17] = {1}, reply[17];
    probe_offer(m, offer + 1);
    if ((st = shoal__write_full(fd, offer, sizeof offer, hd)) != SHOAL_OK ||
        (st = shoal__read_full(fd, reply, sizeof reply, hd)) != SHOAL_OK) {
        shoal__errf(err, sizeof err, "single-copy probe: %s", shoal_status_str(st));
        goto out;
    }
    int pid, rx = probe_peer(m, fd, reply + 1, &pid);
    uint8_t verdict = (uint8_t)rx;
    if ((st = shoal__write_full(fd, &verdict, 1, hd)) != SHOAL_OK) goto out;
    set_ref(m, peer, rx, reply[0] == 1, pid);
out:
    if (mfd >= 0) close(mfd);
    if (gfd >= 0) close(gfd);
    if (fd >= 0) close(fd);
    if (st != SHOAL_OK)
        return shoal__init_fail(st, &peer, 1, "shared memory with rank %d: %s", peer, err);
    return SHOAL_OK;
}

/* Lower rank: one setup connection from a same-host higher rank. */
static void serve_one(shoal__mesh *m, int lfd, const int *same, int *done, size_t data, int gfd, double deadline) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) return;
    shoal__set_nonblock(fd, 0);
    char err[256] = "";
    shoal__hello self = {.version = SHOAL__PROTOCOL_VERSION, .kind = SHOAL__CONN_MESH,
                         .rank = (uint32_t)m->rank, .world_size = (uint32_t)m->size, .lane = SHM_LANE}, them;
    double hd = shoal__deadline_in(SETUP_MAX_S);
    if (hd > deadline) hd = deadline;
    int st = shoal__handshake_accept(fd, &m->auth, &self, &them, hd, err, sizeof err);
    int r = (int)them.rank, mfd = -1;
    void *mem = NULL;
    size_t len = 2 * shoal__ring_bytes(CTRL_RING) + 2 * shoal__ring_bytes(data);
    if (st == SHOAL_OK && (them.lane != SHM_LANE || r <= m->rank || !same[r] || done[r])) {
        shoal__errf(err, sizeof err, "rank %d lane %u may not set up shared memory here", r, them.lane);
        shoal__handshake_verdict(fd, SHOAL__VERDICT_REFUSED, hd);
        st = SHOAL_ERR_AUTH;
    }
    if (st == SHOAL_OK) st = shoal__handshake_verdict(fd, SHOAL__VERDICT_OK, hd);
    if (st == SHOAL_OK && (st = shoal__shm_create("shoal-shm", len, &mfd, &mem)) != SHOAL_OK)
        shoal__errf(err, sizeof err, "cannot create a %zu-byte segment", len);
    if (st == SHOAL_OK) {
        attach(m, r, mem, len, CTRL_RING, data, 1, 1);
        uint8_t sizes[24];
        int nfds = gfd >= 0 ? 2 : 1, fds[2] = {mfd, gfd};
        shoal__put_u64(sizes, CTRL_RING);
        shoal__put_u64(sizes + 8, data);
        shoal__put_u64(sizes + 16, gfd >= 0 ? m->group_len : 0);
        char cbuf[CMSG_SPACE(2 * sizeof(int))];
        memset(cbuf, 0, sizeof cbuf);
        struct iovec iov = {sizes, sizeof sizes};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int))};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
        uint8_t offer[17] = {0}, reply[17], verdict = 0;
        if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof sizes ||
            shoal__read_full(fd, offer, sizeof offer, hd) != SHOAL_OK || offer[0] != 1) {
            st = SHOAL_ERR_PEER_FAILED;
            shoal__errf(err, sizeof err, "rank %d did not take the segment", r);
        } else {
            int pid, rx = probe_peer(m, fd, offer + 1, &pid);
            reply[0] = (uint8_t)rx;
            probe_offer(m, reply + 1);
            if (shoal__write_full(fd, reply, sizeof reply, hd) != SHOAL_OK ||
                shoal__read_full(fd, &verdict, 1, hd) != SHOAL_OK || verdict > 1) {
                st = SHOAL_ERR_PEER_FAILED;
                shoal__errf(err, sizeof err, "rank %d broke off the single-copy probe", r);
            } else {
                set_ref(m, r, rx, verdict, pid);
            }
        }
    }
    if (mfd >= 0) close(mfd);
    close(fd);
    if (st == SHOAL_OK) {
        done[r] = 1;
        return;
    }
    if (mem && r > m->rank && r < m->size && m->conns[r * 2].shm_base == mem) { /* undo attach */
        for (int lane = 0; lane < 2; lane++) {
            m->conns[r * 2 + lane].shm = 0;
            m->nshm--;
        }
        set_ref(m, r, 0, 0, 0);
        m->conns[r * 2].shm_base = NULL;
        munmap(mem, len);
    }
    shoal__log(SHOAL__LOG_WARN, "refused a shared-memory setup connection: %s", err);
}

int shoal__shm_connect(shoal__mesh *m, shoal__resolved_config *rc, double deadline, int lfd) {
    m->local_ranks = 1;
    if (m->size == 1) return SHOAL_OK;
    int st = SHOAL_OK, *same = calloc((size_t)m->size, sizeof *same), *done = calloc((size_t)m->size, sizeof *done);
    char mine[600];
    if (!same || !done) {
        st = shoal__init_fail(SHOAL_ERR_NOMEM, NULL, 0, "out of memory");
        goto out;
    }
    host_identity(rc, mine, sizeof mine - 8);
    strcat(mine, lfd >= 0 ? "#shm" : "#tcp");
    for (int p = 0; p < m->size && st == SHOAL_OK; p++) {
        if (p == m->rank) continue;
        int local = 0;
        st = same_host(m, mine, p, deadline, &local, &same[p]);
        m->local_ranks += local;
        if (st == SHOAL_OK && rc->transport == 2 && !same[p])
            st = shoal__init_fail(SHOAL_ERR_INVALID, &p, 1, "SHOAL_TRANSPORT=shm, but rank %d is on another host", p);
    }
    m->oversubscribed = m->local_ranks > online_cpus();
    int gfd = -1, all_here = lfd >= 0;
    for (int p = 0; p < m->size; p++) all_here &= p == m->rank || same[p];
    if (st == SHOAL_OK && m->rank == 0 && all_here && m->size <= SHOAL__SHM_MAX_RANKS) {
        void *area = NULL;
        size_t len = shoal__shm_area_bytes(m->size);
        if (shoal__shm_create("shoal-group", len, &gfd, &area) == SHOAL_OK) {
            shoal__shm_area_init(area, m->size);
            m->group_area = area;
            m->group_len = len;
        } else {
            gfd = -1; /* the rings alone still work */
        }
    }
    for (int p = 0; p < m->rank && st == SHOAL_OK; p++)
        if (same[p]) st = dial(m, p, deadline);
    int expected = 0;
    for (int p = m->rank + 1; p < m->size; p++) expected += same[p];
    while (st == SHOAL_OK && expected > 0) {
        int got = 0;
        for (int p = m->rank + 1; p < m->size; p++) got += done[p];
        if (got == expected) break;
        if (shoal__now() >= deadline) {
            st = shoal__init_fail(SHOAL_ERR_TIMEOUT, NULL, 0, "init timed out setting up shared memory");
            break;
        }
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, shoal__ms_until(deadline, 1000)) > 0)
            serve_one(m, lfd, same, done, (size_t)rc->shm_ring, gfd, deadline);
    }
    m->all_shm = m->nshm == 2 * (m->size - 1);
    if (gfd >= 0) close(gfd);
out:
    if (lfd >= 0) close(lfd);
    free(same);
    free(done);
    return st;
}

void shoal__shm_doorbell(shoal__mesh *m, int peer) {
    int fd = m->conns[peer * 2].fd;
    uint8_t b = 1;
    if (fd >= 0) {
        ssize_t w = send(fd, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w; /* EAGAIN: the peer has unread bells already, so it will wake */
    }
}
