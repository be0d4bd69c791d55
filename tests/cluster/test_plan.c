/* Unit tests of the cluster's pure parts: the layer plan (proportional split, --layers, a plan
 * that does not fit, more workers than layers, the fill-in-turn fallback) and the decoders of
 * everything a peer sends (pipe headers, file tables, strings): every bad length or value is
 * refused, nothing is read past a buffer. */
#include <stdint.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "check.h"

#define MAXW 8

static int plan(int L, uint64_t per, uint64_t embed, uint64_t head, int n, const uint64_t *cap, const char *spec,
                int *first, int *last, uint64_t *need, char *err) {
    uint64_t bytes[64];
    for (int l = 0; l < L; l++) bytes[l] = per;
    shoal_plan_input in = {L, bytes, embed, head, 0, 0, n, cap, spec};
    return shoal_cluster_plan(&in, first, last, need, err, 512);
}

static int count(const int *first, const int *last, int i) { return last[i] - first[i]; }

static void test_proportional(void) {
    int f[MAXW], l[MAXW];
    uint64_t need[MAXW];
    char err[512];
    /* 1:3 gives 1:3 layer counts (within one) for several depths */
    for (int L = 4; L <= 24; L += 4) {
        uint64_t cap[2] = {1ull << 30, 3ull << 30};
        CHECK_RC(plan(L, 1000, 100, 100, 2, cap, NULL, f, l, need, err), SHOAL_OK, err);
        double want0 = L / 4.0;
        CHECK(f[0] == 0 && l[0] == f[1] && l[1] == L);
        CHECK(count(f, l, 0) >= want0 - 1 && count(f, l, 0) <= want0 + 1);
        CHECK(count(f, l, 1) >= 3 * want0 - 1 && count(f, l, 1) <= 3 * want0 + 1);
    }
    /* equal capacities: an even split (22 layers over 4: 6,6,5,5 in some order) */
    uint64_t eq[4] = {5, 5, 5, 5};
    for (int i = 0; i < 4; i++) eq[i] = 1ull << 30;
    CHECK_RC(plan(22, 1000, 0, 0, 4, eq, NULL, f, l, need, err), SHOAL_OK, err);
    for (int i = 0; i < 4; i++) CHECK(count(f, l, i) == 5 || count(f, l, i) == 6);
    CHECK(l[3] == 22);
    /* needs: layers + embedding on the first + head on the last */
    uint64_t two[2] = {1ull << 30, 1ull << 30};
    CHECK_RC(plan(4, 1000, 300, 200, 2, two, NULL, f, l, need, err), SHOAL_OK, err);
    CHECK(need[0] == 2 * 1000 + 300 && need[1] == 2 * 1000 + 200);
    /* a tiny worker still gets one layer */
    uint64_t skew[3] = {1, 1ull << 40, 1ull << 40};
    CHECK_RC(plan(6, 1, 0, 0, 3, skew, NULL, f, l, need, err), SHOAL_OK, err);
    CHECK(count(f, l, 0) == 1);
}

static void test_spec(void) {
    int f[MAXW], l[MAXW];
    uint64_t need[MAXW];
    char err[512];
    uint64_t cap[3] = {1ull << 30, 1ull << 30, 1ull << 30};
    CHECK_RC(plan(8, 10, 0, 0, 2, cap, "0-3,4-7", f, l, need, err), SHOAL_OK, err);
    CHECK(f[0] == 0 && l[0] == 4 && f[1] == 4 && l[1] == 8);
    CHECK_RC(plan(8, 10, 0, 0, 2, cap, "0-0,1-7", f, l, need, err), SHOAL_OK, err);
    CHECK(l[0] == 1 && f[1] == 1);
    CHECK_RC(plan(8, 10, 0, 0, 3, cap, "0,1-6,7", f, l, need, err), SHOAL_OK, err);
    CHECK(l[0] == 1 && l[1] == 7 && f[2] == 7 && l[2] == 8);
    /* fewer ranges than workers: the rest idle */
    CHECK_RC(plan(8, 10, 0, 0, 3, cap, "0-3,4-7", f, l, need, err), SHOAL_OK, err);
    CHECK(f[2] == l[2] && need[2] == 0);
    const char *bad[] = {"0-3,5-7", "0-3", "1-7", "a", "0-3,4-8", "3-0,4-7", "0-3,,4-7", "0-3;4-7", "-1-3",
                         "0-3,4-7,", "0-1,2-3,4-7,8-9", "", "0-99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = plan(8, 10, 0, 0, 3, cap, bad[i], f, l, need, err);
        if (rc != SHOAL_ERR_INVALID) fprintf(stderr, "spec '%s' gave %d\n", bad[i], rc);
        CHECK(rc == SHOAL_ERR_INVALID);
    }
    /* a fixed plan that does not fit names the worker */
    uint64_t small[2] = {25, 1ull << 30};
    CHECK_RC(plan(8, 10, 0, 0, 2, small, "0-3,4-7", f, l, need, err), SHOAL_ERR_NOMEM, err);
    CHECK(strstr(err, "worker 1") != NULL);
}

static void test_no_fit(void) {
    int f[MAXW], l[MAXW];
    uint64_t need[MAXW];
    char err[512];
    uint64_t cap[2] = {400, 400}; /* 900 bytes needed in all */
    CHECK_RC(plan(8, 100, 50, 50, 2, cap, NULL, f, l, need, err), SHOAL_ERR_NOMEM, err);
    CHECK(strstr(err, "does not fit") != NULL && strstr(err, "worker") != NULL);
    /* one worker too small for even a layer */
    uint64_t one_small[2] = {10, 1ull << 30};
    CHECK_RC(plan(8, 100, 0, 0, 2, one_small, NULL, f, l, need, err), SHOAL_ERR_NOMEM, err);
    CHECK(strstr(err, "worker 1") != NULL);
    fprintf(stderr, "no fit: %s\n", err);
    /* proportional does not fit (the embedding is large), filling in turn does */
    uint64_t c2[2] = {1000, 1000};
    CHECK_RC(plan(8, 100, 500, 0, 2, c2, NULL, f, l, need, err), SHOAL_OK, err);
    CHECK(need[0] <= 1000 && need[1] <= 1000 && l[1] == 8);
    CHECK(count(f, l, 0) <= 5);
}

static void test_more_workers(void) {
    int f[MAXW], l[MAXW];
    uint64_t need[MAXW];
    char err[512];
    uint64_t cap[4] = {1ull << 30, 4ull << 30, 2ull << 30, 3ull << 30};
    CHECK_RC(plan(2, 100, 0, 0, 4, cap, NULL, f, l, need, err), SHOAL_OK, err);
    /* the two largest (workers 2 and 4) take one layer each, in rank order */
    CHECK(f[0] == l[0] && f[2] == l[2]);
    CHECK(f[1] == 0 && l[1] == 1 && f[3] == 1 && l[3] == 2);
}

static void test_wire(void) {
    cl_pipe_hdr h = {.magic = CL_PIPE_MAGIC, .op = CL_OP_STEP, .gen = 3, .step = 9, .pos = 5, .n = 2, .flags = 1,
                     .status = 0, .payload = 8, .compute_s = 0.25, .send_s = 0.5};
    uint8_t b[CL_PIPE_HDR];
    cl_pipe_encode(&h, b);
    cl_pipe_hdr g;
    CHECK_RC(cl_pipe_decode(b, sizeof b, &g), SHOAL_OK, "");
    CHECK(g.gen == 3 && g.step == 9 && g.pos == 5 && g.n == 2 && g.payload == 8 && g.compute_s == 0.25 && g.send_s == 0.5);
    CHECK(cl_pipe_decode(b, sizeof b - 1, &g) == SHOAL_ERR_PROTOCOL);
    b[0] ^= 1;
    CHECK(cl_pipe_decode(b, sizeof b, &g) == SHOAL_ERR_PROTOCOL);
    h.op = 9;
    cl_pipe_encode(&h, b);
    CHECK(cl_pipe_decode(b, sizeof b, &g) == SHOAL_ERR_PROTOCOL);
    h.op = CL_OP_STEP;
    h.status = 5; /* statuses are negative */
    cl_pipe_encode(&h, b);
    CHECK(cl_pipe_decode(b, sizeof b, &g) == SHOAL_ERR_PROTOCOL);

    /* strings: bounded, no NUL inside, no reading past the end */
    cl_wbuf w = {0};
    cl_w_str(&w, "hello");
    char out[8];
    cl_rbuf r = cl_rbuf_of(w.p, w.len);
    cl_r_str(&r, out, sizeof out, 7);
    CHECK(!r.err && !strcmp(out, "hello"));
    r = cl_rbuf_of(w.p, w.len);
    cl_r_str(&r, out, sizeof out, 4);
    CHECK(r.err);
    r = cl_rbuf_of(w.p, w.len - 1);
    cl_r_str(&r, out, sizeof out, 7);
    CHECK(r.err);
    CHECK(cl_r_u64(&r) == 0 && r.err);
    free(w.p);

    /* file tables: names a peer may make us create */
    const char *names[] = {"model.safetensors", "..", ".", "a/b", "", "x\ny"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cl_file f = {0};
        snprintf(f.name, sizeof f.name, "%s", names[i]);
        f.size = 10;
        cl_files fs = {.is_dir = 1, .n = 1, .f = &f};
        cl_wbuf fw = {0};
        shoal__cl_w_files(&fw, &fs, 1);
        cl_rbuf fr = cl_rbuf_of(fw.p, fw.len);
        cl_files back;
        int rc = shoal__cl_r_files(&fr, &back, 1);
        CHECK((rc == SHOAL_OK) == (i == 0));
        if (rc == SHOAL_OK) {
            CHECK(back.n == 1 && back.f[0].size == 10 && !strcmp(back.f[0].name, names[0]));
            shoal__cl_files_free(&back);
        }
        /* every truncation of a good table is refused */
        for (size_t cut = 0; i == 0 && cut < fw.len; cut++) {
            cl_rbuf tr = cl_rbuf_of(fw.p, cut);
            CHECK(shoal__cl_r_files(&tr, &back, 1) != SHOAL_OK);
        }
        free(fw.p);
    }
    /* a count far beyond what the bytes can hold is refused before allocating */
    cl_wbuf big = {0};
    cl_w_u32(&big, 1);
    cl_w_str(&big, "");
    cl_w_u32(&big, 4000);
    cl_rbuf br = cl_rbuf_of(big.p, big.len);
    cl_files back;
    CHECK(shoal__cl_r_files(&br, &back, 0) == SHOAL_ERR_PROTOCOL);
    free(big.p);
    /* the combined hash depends on names, sizes and content hashes */
    cl_file a = {.name = "a", .size = 1}, b2 = {.name = "a", .size = 2};
    uint8_t h1[32], h2[32];
    shoal__cl_combined_hash(&a, 1, h1);
    shoal__cl_combined_hash(&b2, 1, h2);
    CHECK(memcmp(h1, h2, 32) != 0);
}

int main(void) {
    test_proportional();
    test_spec();
    test_no_fit();
    test_more_workers();
    test_wire();
    if (check_failures) {
        fprintf(stderr, "test_plan: %d check(s) failed\n", check_failures);
        return 1;
    }
    printf("test_plan: ok\n");
    return 0;
}
