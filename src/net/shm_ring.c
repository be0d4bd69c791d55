/* SPSC byte rings over a memfd segment (see shm_ring.h). */
#define _GNU_SOURCE 1
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/common.h"
#include "net/shm_ring.h"

_Static_assert(sizeof(shoal__ring_ctl) <= SHOAL__RING_CTL_BYTES, "ring control block overlaps the data");

void shoal__ring_attach(shoal__ring *r, void *mem, size_t size, int init) {
    r->ctl = mem;
    r->tail_seen = 0;
    r->pos = 0;
    r->data = (uint8_t *)mem + SHOAL__RING_CTL_BYTES;
    r->mask = size - 1;
    /* pos starts at 0 in both roles: the counter a side writes is its own, and this process
     * has not used the ring yet (the other side may have: tail_seen is read) */
    if (!init) r->tail_seen = atomic_load(&r->ctl->tail);
    if (init) {
        atomic_store(&r->ctl->head, 0);
        atomic_store(&r->ctl->tail, 0);
        atomic_store(&r->ctl->sleeping, 0);
        atomic_store(&r->ctl->pwaiting, 0);
        atomic_store(&r->ctl->job_next, 0);
        atomic_store(&r->ctl->job_done, 0);
        atomic_store(&r->ctl->job_failed, 0);
        r->ctl->size = size;
    }
}

/* Copies len bytes to ring position pos, wrapping at the end. */
static void put(shoal__ring *r, uint64_t pos, const uint8_t *src, size_t len) {
    if (len == 0) return; /* an empty payload may come with a NULL buffer */
    size_t off = (size_t)(pos & r->mask), size = (size_t)r->mask + 1;
    size_t first = len < size - off ? len : size - off;
    memcpy(r->data + off, src, first);
    if (len > first) memcpy(r->data, src + first, len - first);
}

static void get(const shoal__ring *r, uint64_t pos, uint8_t *dst, size_t len) {
    size_t off = (size_t)(pos & r->mask), size = (size_t)r->mask + 1;
    size_t first = len < size - off ? len : size - off;
    memcpy(dst, r->data + off, first);
    if (len > first) memcpy(dst + first, r->data, len - first);
}

/* Free bytes for a write of `want`: from the cached tail when that shows enough. */
static size_t space_for(shoal__ring *r, uint64_t head, size_t want) {
    size_t space = (size_t)(r->mask + 1 - (head - r->tail_seen));
    if (space < want) { /* only then look at where the consumer really is */
        r->tail_seen = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
        space = (size_t)(r->mask + 1 - (head - r->tail_seen));
    }
    return space;
}

int shoal__ring_write_all(shoal__ring *r, const struct iovec *iov, int n) {
    uint64_t head = r->pos;
    size_t want = 0, done = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    if (space_for(r, head, want) < want) return 0;
    for (int i = 0; i < n; i++) {
        put(r, head + done, iov[i].iov_base, iov[i].iov_len);
        done += iov[i].iov_len;
    }
    r->pos = head + done;
    atomic_store_explicit(&r->ctl->head, r->pos, memory_order_seq_cst); /* see take_wakeup */
    return 1;
}

size_t shoal__ring_writev(shoal__ring *r, const struct iovec *iov, int n) {
    uint64_t head = r->pos;
    size_t want = 0, done = 0;
    for (int i = 0; i < n; i++) want += iov[i].iov_len;
    size_t space = space_for(r, head, want);
    for (int i = 0; i < n && space > 0; i++) {
        size_t len = iov[i].iov_len < space ? iov[i].iov_len : space;
        put(r, head + done, iov[i].iov_base, len);
        done += len;
        space -= len;
        if (len < iov[i].iov_len) break;
    }
    if (done) {
        r->pos = head + done;
        atomic_store_explicit(&r->ctl->head, r->pos, memory_order_seq_cst); /* see take_wakeup */
    }
    return done;
}

size_t shoal__ring_read(shoal__ring *r, void *dst, size_t cap) {
    uint64_t tail = r->pos;
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
    size_t n = (size_t)(head - tail) < cap ? (size_t)(head - tail) : cap;
    if (n == 0) return 0;
    get(r, tail, dst, n);
    r->pos = tail + n;
    atomic_store_explicit(&r->ctl->tail, r->pos, memory_order_seq_cst); /* as consume */
    return n;
}

size_t shoal__ring_peek(const shoal__ring *r, const uint8_t **p) {
    uint64_t tail = r->pos;
    uint64_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
    size_t off = (size_t)(tail & r->mask), size = (size_t)r->mask + 1, avail = (size_t)(head - tail);
    *p = r->data + off;
    return avail < size - off ? avail : size - off;
}

void shoal__ring_consume(shoal__ring *r, size_t n) {
    r->pos += n;
    atomic_store_explicit(&r->ctl->tail, r->pos, memory_order_seq_cst); /* see take_space_wakeup */
}

int shoal__ring_arm_sleep(shoal__ring *r) {
    atomic_store_explicit(&r->ctl->sleeping, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&r->ctl->head, memory_order_seq_cst) == r->pos) return 1;
    atomic_store_explicit(&r->ctl->sleeping, 0, memory_order_relaxed);
    return 0;
}

void shoal__ring_disarm_sleep(shoal__ring *r) {
    atomic_store_explicit(&r->ctl->sleeping, 0, memory_order_relaxed);
}

/* The write's seq_cst store of head, then this seq_cst load, pair with arm_sleep's store of
 * `sleeping` then load of head: one side must see the other's store, so a wake-up cannot be
 * lost. (A seq_cst store is one xchg on x86: cheaper than a plain store and a full fence.) */
int shoal__ring_take_wakeup(shoal__ring *r) {
    if (atomic_load_explicit(&r->ctl->sleeping, memory_order_seq_cst) == 0) return 0;
    return atomic_exchange(&r->ctl->sleeping, 0) == 1;
}

int shoal__ring_arm_space(shoal__ring *r) {
    atomic_store_explicit(&r->ctl->pwaiting, 1, memory_order_seq_cst);
    uint64_t used = r->pos - atomic_load_explicit(&r->ctl->tail, memory_order_seq_cst);
    if (used == r->mask + 1) return 1;
    atomic_store_explicit(&r->ctl->pwaiting, 0, memory_order_relaxed);
    return 0;
}

/* consume's seq_cst store of tail, then this load, pair with arm_space (as take_wakeup). */
int shoal__ring_take_space_wakeup(shoal__ring *r) {
    if (atomic_load_explicit(&r->ctl->pwaiting, memory_order_seq_cst) == 0) return 0;
    return atomic_exchange(&r->ctl->pwaiting, 0) == 1;
}

int shoal__shm_create(const char *name, size_t len, int *fd, void **mem) {
    int f = memfd_create(name, MFD_CLOEXEC);
    if (f < 0) return SHOAL_ERR_SYSTEM;
    if (ftruncate(f, (off_t)len) < 0) {
        close(f);
        return SHOAL_ERR_SYSTEM;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
    if (p == MAP_FAILED) {
        close(f);
        return SHOAL_ERR_SYSTEM;
    }
    *fd = f;
    *mem = p;
    return SHOAL_OK;
}

int shoal__shm_map(int fd, size_t len, void **mem) {
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || (size_t)size != len) return SHOAL_ERR_PROTOCOL; /* not the segment we expect */
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return SHOAL_ERR_SYSTEM;
    *mem = p;
    return SHOAL_OK;
}
