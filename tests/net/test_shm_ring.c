/* The shared-memory byte ring (src/net/shm_ring.c) on its own: a producer and a consumer
 * thread stream 16 MiB through a 4 KiB ring with random write sizes (writev, partial writes,
 * write_all's all-or-nothing) and random reads (peek/consume, read), wrapping many times; every
 * byte is checked against the stream's pattern. Then, single-threaded: write_all refuses what
 * does not fit and leaves the ring as it was; the sleep and space wake-up flags. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "net/shm_ring.h"

#define RING 4096u
#define TOTAL (16u << 20)

static uint8_t pattern(uint64_t i) { return (uint8_t)(i * 2654435761u >> 13); }

static uint64_t rng_next(uint64_t *s) { /* xorshift64*: deterministic, a failure reproduces */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

typedef struct stream {
    void *mem;
    int bad; /* consumer: bytes that did not match */
} stream;

static void *produce(void *arg) {
    stream *st = arg;
    shoal__ring r;
    shoal__ring_attach(&r, st->mem, RING, 0);
    uint64_t s = 12345, sent = 0;
    uint8_t buf[3][700];
    while (sent < TOTAL) {
        int n = 1 + (int)(rng_next(&s) % 3), all = rng_next(&s) % 4 == 0;
        struct iovec iov[3];
        uint64_t at = sent;
        for (int k = 0; k < n; k++) {
            size_t len = (size_t)(rng_next(&s) % sizeof buf[k]); /* empty pieces too */
            if (len > TOTAL - at) len = (size_t)(TOTAL - at);   /* end exactly at TOTAL */
            for (size_t i = 0; i < len; i++) buf[k][i] = pattern(at + i);
            iov[k].iov_base = buf[k];
            iov[k].iov_len = len;
            at += len;
        }
        if (all) {
            while (!shoal__ring_write_all(&r, iov, n)) sched_yield();
            sent = at;
        } else {
            size_t w = shoal__ring_writev(&r, iov, n); /* may be partial: resend the rest later */
            sent += w;
            if (w == 0) sched_yield();
        }
    }
    return NULL;
}

static void test_stream(void) {
    size_t bytes = shoal__ring_bytes(RING);
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED) return;
    shoal__ring r;
    shoal__ring_attach(&r, mem, RING, 1);
    stream st = {mem, 0};
    pthread_t t;
    pthread_create(&t, NULL, produce, &st);
    uint64_t s = 777, got = 0;
    uint8_t buf[1500];
    while (got < TOTAL) {
        if (rng_next(&s) % 2) {
            const uint8_t *p;
            size_t n = shoal__ring_peek(&r, &p);
            size_t take = n ? 1 + (size_t)(rng_next(&s) % n) : 0;
            for (size_t i = 0; i < take; i++) st.bad += p[i] != pattern(got + i);
            if (take) shoal__ring_consume(&r, take);
            got += take;
        } else {
            size_t n = shoal__ring_read(&r, buf, 1 + (size_t)(rng_next(&s) % sizeof buf));
            for (size_t i = 0; i < n; i++) st.bad += buf[i] != pattern(got + i);
            got += n;
        }
        if (shoal__ring_avail(&r) == 0) sched_yield();
    }
    pthread_join(t, NULL);
    CHECK_EQ_INT(st.bad, 0);
    CHECK_EQ_INT(got, TOTAL);
    CHECK_EQ_INT(shoal__ring_avail(&r), 0);
    munmap(mem, bytes);
}

static void test_limits_and_flags(void) {
    static uint8_t mem[SHOAL__RING_CTL_BYTES + RING] __attribute__((aligned(128)));
    shoal__ring prod, cons;
    shoal__ring_attach(&cons, mem, RING, 1);
    shoal__ring_attach(&prod, mem, RING, 0);
    static uint8_t big[RING + 1];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)i;
    struct iovec whole = {big, RING + 1};
    CHECK_EQ_INT(shoal__ring_write_all(&prod, &whole, 1), 0); /* one byte too many: nothing */
    CHECK_EQ_INT(shoal__ring_avail(&cons), 0);
    CHECK_EQ_INT(shoal__ring_arm_sleep(&cons), 1); /* empty: safe to sleep */
    struct iovec part = {big, 100};
    CHECK_EQ_INT(shoal__ring_write_all(&prod, &part, 1), 1);
    CHECK_EQ_INT(shoal__ring_take_wakeup(&prod), 1); /* the sleeper asked to be woken */
    CHECK_EQ_INT(shoal__ring_take_wakeup(&prod), 0); /* once */
    CHECK_EQ_INT(shoal__ring_arm_sleep(&cons), 0);   /* data waiting: do not sleep */
    whole.iov_len = RING - 100;
    CHECK_EQ_INT(shoal__ring_write_all(&prod, &whole, 1), 1); /* exactly full */
    CHECK_EQ_INT(shoal__ring_avail(&cons), RING);
    CHECK_EQ_INT(shoal__ring_writev(&prod, &part, 1), 0);
    CHECK_EQ_INT(shoal__ring_arm_space(&prod), 1); /* full: the producer may wait */
    uint8_t out[64];
    CHECK_EQ_INT(shoal__ring_read(&cons, out, sizeof out), 64);
    CHECK(memcmp(out, big, 64) == 0);
    CHECK_EQ_INT(shoal__ring_take_space_wakeup(&cons), 1);
    CHECK_EQ_INT(shoal__ring_take_space_wakeup(&cons), 0);
    CHECK_EQ_INT(shoal__ring_arm_space(&prod), 0); /* room again */
}

int main(void) {
    test_stream();
    test_limits_and_flags();
    return check_report("net_shm_ring");
}
