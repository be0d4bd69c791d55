/* Point-to-point semantics between real processes on loopback: order per tag, tags that do not
 * block each other, any-source receives, many small messages, one 256 MiB message, requests
 * (test, wait with timeout, cancel), truncation, self messages and argument errors.
 * Usage: test_p2p N (group size). SHOAL_TEST_QUICK=1 shrinks the big message. */
#include <stdint.h>

#include "comm/harness.h"

static int quick(void) { return getenv("SHOAL_TEST_QUICK") && atoi(getenv("SHOAL_TEST_QUICK")); }

static void order_per_tag(shoal_comm *c, int rank, int n) {
    /* every rank sends 200 numbered messages on tag 5 and 200 on tag 6 to every other rank,
     * alternating tags; receivers drain tag 6 first, then tag 5, each in order */
    enum { K = 200 };
    shoal_request **reqs = calloc((size_t)n * K * 2, sizeof *reqs);
    uint32_t *vals = calloc((size_t)K * 2, sizeof *vals);
    int nr = 0;
    for (int i = 0; i < K * 2; i++) vals[i] = (uint32_t)(rank * 100000 + i);
    for (int d = 0; d < n; d++) {
        if (d == rank) continue;
        for (int i = 0; i < K; i++) {
            CHECK_OK(shoal_isend(c, &vals[2 * i], 4, d, 5, &reqs[nr++]), c);
            CHECK_OK(shoal_isend(c, &vals[2 * i + 1], 4, d, 6, &reqs[nr++]), c);
        }
    }
    for (int s = 0; s < n; s++) {
        if (s == rank) continue;
        for (int tag = 6; tag >= 5; tag--)
            for (int i = 0; i < K; i++) {
                uint32_t v = 0;
                shoal_msg_info info;
                CHECK_OK(shoal_recv(c, &v, 4, s, tag, &info), c);
                uint32_t want = (uint32_t)(s * 100000 + 2 * i + (tag == 6));
                CHECK(v == want && info.source == s && info.tag == tag && info.bytes == 4,
                      "order: from %d tag %d #%d got %u want %u", s, tag, i, v, want);
            }
    }
    CHECK_OK(shoal_wait_all(reqs, nr), c);
    free(reqs);
    free(vals);
}

static void any_source(shoal_comm *c, int rank, int n) {
    if (rank == 0) {
        int seen[64] = {0};
        for (int i = 1; i < n; i++) {
            int v = -1;
            shoal_msg_info info;
            CHECK_OK(shoal_recv(c, &v, sizeof v, SHOAL_ANY_SOURCE, 9, &info), c);
            CHECK(info.source >= 1 && info.source < n && v == info.source * 7 && !seen[info.source],
                  "any-source: source %d value %d", info.source, v);
            seen[info.source] = 1;
        }
        /* any tag as well */
        int v = -1;
        shoal_msg_info info;
        CHECK_OK(shoal_recv(c, &v, sizeof v, SHOAL_ANY_SOURCE, SHOAL_ANY_TAG, &info), c);
        CHECK(info.tag == 1000 + info.source && v == info.source, "any-tag: tag %d", info.tag);
        for (int i = 2; i < n; i++) /* drain the rest */
            CHECK_OK(shoal_recv(c, &v, sizeof v, SHOAL_ANY_SOURCE, SHOAL_ANY_TAG, &info), c);
    } else {
        int v = rank * 7;
        CHECK_OK(shoal_send(c, &v, sizeof v, 0, 9), c);
        v = rank;
        CHECK_OK(shoal_send(c, &v, sizeof v, 0, 1000 + rank), c);
    }
}

static void many_small(shoal_comm *c, int rank, int n) {
    enum { M = 10000, WINDOW = 256 };
    int right = (rank + 1) % n, left = (rank + n - 1) % n;
    uint64_t *out = malloc(sizeof(uint64_t) * M), *in = malloc(sizeof(uint64_t) * M);
    for (int i = 0; i < M; i++) out[i] = ((uint64_t)rank << 32) | (uint64_t)i;
    shoal_request *sr[WINDOW], *rr[WINDOW];
    for (int base = 0; base < M; base += WINDOW) {
        int k = M - base < WINDOW ? M - base : WINDOW;
        for (int i = 0; i < k; i++) CHECK_OK(shoal_irecv(c, &in[base + i], 8, left, 3, &rr[i]), c);
        for (int i = 0; i < k; i++) CHECK_OK(shoal_isend(c, &out[base + i], 8, right, 3, &sr[i]), c);
        CHECK_OK(shoal_wait_all(rr, k), c);
        CHECK_OK(shoal_wait_all(sr, k), c);
    }
    for (int i = 0; i < M; i++)
        CHECK(in[i] == (((uint64_t)left << 32) | (uint64_t)i), "small #%d: got %llx", i,
              (unsigned long long)in[i]);
    free(out);
    free(in);
}

static uint8_t pattern(size_t i, int seed) { return (uint8_t)((i * 2654435761u) >> 13) ^ (uint8_t)seed; }

static void big_message(shoal_comm *c, int rank, int n) {
    size_t bytes = quick() ? (8u << 20) + 3 : (256u << 20);
    if (rank > 1) return;
    uint8_t *buf = malloc(bytes);
    CHECK(buf, "malloc %zu", bytes);
    if (rank == 0) {
        for (size_t i = 0; i < bytes; i++) buf[i] = pattern(i, 1);
        CHECK_OK(shoal_send(c, buf, bytes, 1, 77), c);
    } else {
        memset(buf, 0, bytes);
        shoal_msg_info info;
        CHECK_OK(shoal_recv(c, buf, bytes, 0, 77, &info), c);
        CHECK(info.bytes == bytes, "big: %zu bytes", info.bytes);
        for (size_t i = 0; i < bytes; i++) CHECK(buf[i] == pattern(i, 1), "big: byte %zu", i);
    }
    free(buf);
}

static void requests_and_errors(shoal_comm *c, int rank, int n) {
    /* a receive nobody answers: wait times out, the request survives, cancel ends it */
    shoal_request *r;
    int v = 0, done = -1;
    CHECK_OK(shoal_irecv(c, &v, sizeof v, (rank + 1) % n, 4242, &r), c);
    CHECK_OK(shoal_test(r, &done), c);
    CHECK(done == 0, "test on an unanswered receive says done");
    double t0 = harness_now();
    int st = shoal_wait_timeout(r, 0.2, NULL);
    CHECK(st == SHOAL_ERR_TIMEOUT, "wait_timeout gave %s", shoal_status_str(st));
    CHECK(harness_now() - t0 < 5, "wait_timeout overran");
    int who[4];
    CHECK(shoal_comm_error_ranks(c, who, 4) == 1 && who[0] == (rank + 1) % n,
          "timeout should name rank %d", (rank + 1) % n);
    CHECK_OK(shoal_cancel(r), c);
    st = shoal_wait(r, NULL);
    CHECK(st == SHOAL_ERR_CANCELLED, "cancelled wait gave %s", shoal_status_str(st));

    /* self messages */
    int a = 41 + rank, b = 0;
    CHECK_OK(shoal_isend(c, &a, sizeof a, rank, 11, &r), c);
    CHECK_OK(shoal_recv(c, &b, sizeof b, rank, 11, NULL), c);
    CHECK_OK(shoal_wait(r, NULL), c);
    CHECK(b == a, "self message");

    /* truncation: the message is consumed, the status says so, the size is reported */
    if (n > 1 && rank < 2) {
        char big[100], small[10];
        memset(big, 'x', sizeof big);
        if (rank == 0) CHECK_OK(shoal_send(c, big, sizeof big, 1, 12), c);
        else {
            shoal_msg_info info;
            st = shoal_recv(c, small, sizeof small, 0, 12, &info);
            CHECK(st == SHOAL_ERR_TRUNCATED && info.bytes == 100, "truncation gave %s, %zu",
                  shoal_status_str(st), info.bytes);
        }
    }

    /* argument errors leave the group usable */
    st = shoal_send(c, &a, sizeof a, n, 1);
    CHECK(st == SHOAL_ERR_INVALID && strstr(shoal_comm_last_error(c), "out of range"),
          "bad rank gave %s '%s'", shoal_status_str(st), shoal_comm_last_error(c));
    st = shoal_send(c, &a, sizeof a, 0, -5);
    CHECK(st == SHOAL_ERR_INVALID, "bad tag gave %s", shoal_status_str(st));
    st = shoal_recv(c, NULL, 4, 0, 1, NULL);
    CHECK(st == SHOAL_ERR_INVALID, "NULL buffer gave %s", shoal_status_str(st));
}

static int body(harness_group *g, int rank, void *arg) {
    shoal_comm_config cfg = harness_config(g, rank);
    cfg.timeout_s = 60;
    shoal_comm *c = NULL;
    CHECK_OK(shoal_comm_init(&c, &cfg), NULL);
    CHECK(shoal_comm_rank(c) == rank && shoal_comm_size(c) == g->n, "rank/size");
    int n = g->n;
    if (n > 1) {
        order_per_tag(c, rank, n);
        any_source(c, rank, n);
        CHECK_OK(shoal_barrier(c), c); /* rank 0's any-tag receives must not see what follows */
        many_small(c, rank, n);
        big_message(c, rank, n);
    }
    requests_and_errors(c, rank, n);
    CHECK_OK(shoal_barrier(c), c);
    CHECK_OK(shoal_comm_free(c), NULL);
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    harness_group g;
    harness_group_init(&g, n);
    int bad = harness_run(&g, body, NULL, 240, NULL);
    printf("test_p2p n=%d: %s\n", n, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
