/* Single-producer single-consumer byte rings in shared memory: the same-host transport.
 *
 * A ring carries exactly the byte stream a TCP connection would (frame headers and payloads),
 * so the engine's framing and matching code is shared by both transports. The producer and
 * consumer are two processes; `head` and `tail` are free-running byte counters (never wrap in
 * practice: 2^64 bytes), each written by one side only, with release/acquire ordering.
 *
 * Sleeping: a consumer that is about to block sets `sleeping`, re-checks the ring, then sleeps
 * in epoll. A producer that has written checks `sleeping` after a full fence and, when set,
 * rings the consumer's doorbell (a frame on the pair's TCP control connection, which the
 * consumer's epoll watches). The fences on both sides make a lost wake-up impossible. */
#ifndef SHOAL_SHM_RING_H
#define SHOAL_SHM_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define SHOAL__RING_ALIGN 64

typedef struct shoal__ring_ctl {
    _Alignas(SHOAL__RING_ALIGN) _Atomic uint64_t head; /* bytes written, by the producer */
    _Alignas(SHOAL__RING_ALIGN) _Atomic uint64_t tail; /* bytes read, by the consumer */
    _Alignas(SHOAL__RING_ALIGN) _Atomic uint32_t sleeping; /* the consumer may block */
    _Atomic uint32_t pwaiting; /* the producer may block waiting for space */
    uint64_t size; /* data bytes, a power of two; set by the creator */
    /* A copy job for a large message that came through this ring as a DATA_REF: the consumer
     * (receiver) publishes where the bytes go, and both sides copy chunks of it at once
     * (src/comm/shm_coop.c). job_next is DATA_REF id << 32 | 2^31 | next chunk, 0 when idle. */
    _Alignas(SHOAL__RING_ALIGN) _Atomic uint64_t job_next;
    _Atomic uint64_t job_dst, job_len, job_chunk;
    _Alignas(SHOAL__RING_ALIGN) _Atomic uint64_t job_done; /* bytes copied, by either side */
    _Atomic uint32_t job_failed; /* the producer could not copy a chunk it took */
} shoal__ring_ctl;

#define SHOAL__RING_CTL_BYTES 384 /* data starts this far into the ring's region */

typedef struct shoal__ring {
    shoal__ring_ctl *ctl;
    uint8_t *data;
    uint64_t mask;
    /* Private copies, in this process's own memory, so that the hot path never loads a
     * shared line the other side is writing or spinning on (each such load is a cross-core
     * transfer: measured +100 ns per message for the producer re-reading `head`).
     * pos: producer: its head; consumer: its tail (each is the only writer of its own).
     * tail_seen: producer only: the consumer's tail as last read; read again only when the
     * cached value shows too little space. */
    uint64_t pos;
    uint64_t tail_seen;
} shoal__ring;

/* Bytes a ring of `size` data bytes takes in a segment. */
static inline size_t shoal__ring_bytes(size_t size) { return SHOAL__RING_CTL_BYTES + size; }

/* Lays out (creator: init = 1) or attaches to a ring at mem. */
void shoal__ring_attach(shoal__ring *r, void *mem, size_t size, int init);

/* Copies as much of iov as fits; returns the bytes written (0 when full). */
size_t shoal__ring_writev(shoal__ring *r, const struct iovec *iov, int n);
/* Copies all of iov, or nothing if it does not fit now; returns 1 if written. */
int shoal__ring_write_all(shoal__ring *r, const struct iovec *iov, int n);
/* Copies up to cap bytes out; returns how many (0 when empty). */
size_t shoal__ring_read(shoal__ring *r, void *dst, size_t cap);
/* Consumer: the readable bytes that are contiguous in the ring, in place (*p points into the
 * segment; valid until shoal__ring_consume), so they can be parsed and copied once, straight
 * to where they belong. */
size_t shoal__ring_peek(const shoal__ring *r, const uint8_t **p);
/* Consumer: n bytes (at most what peek returned) are done with: the producer may reuse them. */
void shoal__ring_consume(shoal__ring *r, size_t n);
/* Bytes waiting to be read. Inline: the spin loop calls it for every ring, every round.
 * Empty: the next frame will be written at tail. Asking for that line now, while we spin,
 * overlaps its transfer from the producer's core with that of `head` (measured: one-way
 * latency 260-340 ns -> 190-220 ns in a two-process test); otherwise the data line is
 * fetched only after head is seen to move: two cross-core misses in a row. */
static inline uint64_t shoal__ring_avail(const shoal__ring *r) {
    uint64_t tail = r->pos;
    uint64_t avail = atomic_load_explicit(&r->ctl->head, memory_order_acquire) - tail;
    if (avail == 0) __builtin_prefetch(r->data + (tail & r->mask));
    return avail;
}

/* Consumer side of sleeping: arm returns 1 if the ring is still empty (safe to sleep). */
int shoal__ring_arm_sleep(shoal__ring *r);
void shoal__ring_disarm_sleep(shoal__ring *r);
/* Producer side: 1 if the consumer asked to be woken (and clears the request). */
int shoal__ring_take_wakeup(shoal__ring *r);
/* The same pair of calls the other way round, for a producer blocked on a full ring:
 * arm_space returns 1 if the ring is still full; take_space_wakeup (consumer, after reading)
 * returns 1 if the producer asked to be woken. */
int shoal__ring_arm_space(shoal__ring *r);
int shoal__ring_take_space_wakeup(shoal__ring *r);

/* An anonymous shared segment (memfd; name shows in /proc/PID/maps as memfd:NAME) of len
 * bytes, mapped; *fd stays open for passing. */
int shoal__shm_create(const char *name, size_t len, int *fd, void **mem);
/* Maps a segment received from a peer. */
int shoal__shm_map(int fd, size_t len, void **mem);

#endif
