/* Sub-groups: shoal_comm_split by color and key; two sub-groups run different collectives at
 * the same time as parent point-to-point traffic, and nothing crosses between them; a rank
 * with SHOAL_UNDEFINED gets no group; nested splits; freeing parent before child.
 * Usage: test_split N */
#include <stdint.h>

#include "comm/harness.h"

static int body(harness_group *g, int rank, void *arg) {
    int n = g->n;
    shoal_comm_config cfg = harness_config(g, rank);
    cfg.timeout_s = 60;
    shoal_comm *c = NULL;
    CHECK_OK(shoal_comm_init(&c, &cfg), NULL);

    /* colors: even/odd; keys reverse the order so sub-rank order differs from parent order */
    int color = rank % 2;
    shoal_comm *sub = NULL;
    CHECK_OK(shoal_comm_split(c, color, n - rank, &sub), c);
    CHECK(sub, "split gave no group");
    int members = (n + 1 - color) / 2;
    CHECK(shoal_comm_size(sub) == members, "sub size %d want %d", shoal_comm_size(sub), members);
    /* key = n - rank: the highest parent rank of the color is sub rank 0 */
    int expect_rank = 0;
    for (int r = color; r < n; r += 2)
        if (r > rank) expect_rank++;
    CHECK(shoal_comm_rank(sub) == expect_rank, "sub rank %d want %d", shoal_comm_rank(sub), expect_rank);

    /* both sub-groups use tag 7 for p2p and run different collectives at once; the parent
     * exchanges messages on tag 7 as well: nothing may cross */
    int sr = shoal_comm_rank(sub), sn = shoal_comm_size(sub);
    for (int iter = 0; iter < 20; iter++) {
        shoal_request *pr = NULL, *ps = NULL;
        int pin = -1, pout = 1000 * iter + rank;
        if (n > 1) {
            CHECK_OK(shoal_irecv(c, &pin, sizeof pin, (rank + n - 1) % n, 7, &pr), c);
            CHECK_OK(shoal_isend(c, &pout, sizeof pout, (rank + 1) % n, 7, &ps), c);
        }
        if (color == 0) {
            int64_t v = rank + iter, sum = 0, want = 0;
            CHECK_OK(shoal_allreduce(sub, &v, &sum, 1, SHOAL_I64, SHOAL_SUM), sub);
            for (int r = 0; r < n; r += 2) want += r + iter;
            CHECK(sum == want, "even allreduce %lld want %lld", (long long)sum, (long long)want);
        } else {
            int32_t mine = rank * 10 + iter, all[64];
            CHECK_OK(shoal_allgather(sub, &mine, all, 1, SHOAL_I32), sub);
            for (int i = 0; i < sn; i++) {
                /* sub rank i is the i-th highest odd parent rank */
                int parent = -1, k = 0;
                for (int r = n - 1; r >= 0; r--)
                    if (r % 2 == 1 && k++ == i) parent = r;
                CHECK(all[i] == parent * 10 + iter, "odd allgather [%d]=%d", i, all[i]);
            }
        }
        if (sn > 1) { /* sub-group p2p on the same tag */
            int in = -1, out = 5000 + sr;
            shoal_request *s;
            CHECK_OK(shoal_isend(sub, &out, sizeof out, (sr + 1) % sn, 7, &s), sub);
            CHECK_OK(shoal_recv(sub, &in, sizeof in, (sr + sn - 1) % sn, 7, NULL), sub);
            CHECK_OK(shoal_wait(s, NULL), sub);
            CHECK(in == 5000 + (sr + sn - 1) % sn, "sub p2p got %d", in);
        }
        if (n > 1) {
            CHECK_OK(shoal_wait(pr, NULL), c);
            CHECK_OK(shoal_wait(ps, NULL), c);
            CHECK(pin == 1000 * iter + (rank + n - 1) % n, "parent p2p got %d", pin);
        }
    }

    /* UNDEFINED: rank 0 joins nothing; the rest form one group */
    shoal_comm *rest = NULL;
    CHECK_OK(shoal_comm_split(c, rank == 0 ? SHOAL_UNDEFINED : 3, rank, &rest), c);
    CHECK((rank == 0) == (rest == NULL), "UNDEFINED handling");
    if (rest) {
        CHECK(shoal_comm_size(rest) == n - 1 && shoal_comm_rank(rest) == rank - 1, "rest rank");
        /* nested split of the rest into singletons, then free the parent first */
        shoal_comm *solo = NULL;
        CHECK_OK(shoal_comm_split(rest, rank, 0, &solo), rest);
        CHECK(shoal_comm_size(solo) == 1, "solo size");
        CHECK_OK(shoal_comm_free(rest), NULL);
        int v = 3, out = 0;
        CHECK_OK(shoal_allreduce(solo, &v, &out, 1, SHOAL_I32, SHOAL_SUM), solo);
        CHECK(out == 3, "solo allreduce");
        CHECK_OK(shoal_comm_free(solo), NULL);
    }
    CHECK(shoal_comm_split(c, -7, 0, &rest) == SHOAL_ERR_INVALID, "negative color must be refused");
    CHECK_OK(shoal_barrier(c), c);
    shoal_comm_free(sub);
    shoal_comm_free(c);
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    harness_group g;
    harness_group_init(&g, n);
    int bad = harness_run(&g, body, NULL, 120, NULL);
    printf("test_split n=%d: %s\n", n, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
