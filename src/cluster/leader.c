/* The leader side of the cluster: capacity hello, layer plan, weight transfer, stage loading,
 * and the generation loop (see include/shoal/cluster.h and docs/cluster.md). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "common/common.h"

#define STREAM_CHUNK (1u << 20) /* bytes per weight chunk */
#define STREAM_WINDOW 8         /* chunks in flight per receiver before it must acknowledge */
#define MAX_EXITS 64

struct shoal_cluster {
    shoal_pool *pool;
    shoal_comm *comm;
    shoal_rpc *rpc;
    shoal_cluster_config cfg;
    char model_path[CL_MAX_PATH];
    shoal_model *meta; /* the model's tensor table and config; no layers */
    shoal_model_config mc;
    cl_files files;
    int nw;                  /* workers in the pool */
    shoal_cluster_stage *wk; /* [nw] what each worker offers (hello) */
    int n;                   /* stages: the workers that got layers, in rank order */
    shoal_cluster_stage *st; /* [n] */
    uint32_t gen, step;
    int broken;
    double call_timeout; /* for rpc calls: < 0 means the group's */
    double wait_timeout; /* for a stage waiting on its neighbour */
    shoal_future **serve; /* [n] the stage loops (cluster.serve), running until STOP */
    uint8_t serve_args[12];
    shoal_worker_exit exits[MAX_EXITS];
    int n_exits;
    char err[2048];
};

static void clog_(shoal_cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void clog_(shoal_cluster *c, const char *fmt, ...) {
    if (!c->cfg.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->cfg.log(c->cfg.user, line);
}

static int fail(shoal_cluster *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(shoal_cluster *c, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return rc;
}

static shoal_cluster_stage *stage_of(shoal_cluster *c, int rank) {
    for (int i = 0; c->st && i < c->n; i++)
        if (c->st[i].rank == rank) return &c->st[i];
    for (int i = 0; c->wk && i < c->nw; i++)
        if (c->wk[i].rank == rank) return &c->wk[i];
    return NULL;
}

static void stage_name(shoal_cluster *c, int rank, char *out, size_t cap) {
    shoal_cluster_stage *s = stage_of(c, rank);
    if (!s) {
        snprintf(out, cap, "worker %d", rank);
    } else if (s->last > s->first && c->st && s >= c->st && s < c->st + c->n) {
        snprintf(out, cap, "worker %d (pid %d on %s, stage %d: layers %d-%d)", rank, s->pid, s->host[0] ? s->host : "?",
                 (int)(s - c->st), s->first, s->last - 1);
    } else {
        snprintf(out, cap, "worker %d (pid %d on %s)", rank, s->pid, s->host[0] ? s->host : "?");
    }
}

/* How a failed local worker ended, if the pool can tell within a moment. */
static const shoal_worker_exit *exit_of(shoal_cluster *c, int rank, double wait_s) {
    double end = shoal__now() + wait_s;
    for (;;) {
        for (int i = 0; i < c->n_exits; i++)
            if (c->exits[i].rank == rank) return &c->exits[i];
        if (c->n_exits < MAX_EXITS) c->n_exits += shoal_pool_reap(c->pool, c->exits + c->n_exits, MAX_EXITS - c->n_exits);
        for (int i = 0; i < c->n_exits; i++)
            if (c->exits[i].rank == rank) return &c->exits[i];
        if (shoal__now() >= end) return NULL;
        usleep(10000);
    }
}

/* The error of a call to rank that failed with rc: a dead worker is named as the cause, even
 * when the call that noticed first was to one of its neighbours. */
static int describe(shoal_cluster *c, int rank, int rc, const char *what, const char *detail) {
    int failed[8];
    int nf = shoal_comm_failed_ranks(c->comm, failed, 8);
    char who[256];
    if (nf > 0) {
        int r = failed[0];
        stage_name(c, r, who, sizeof who);
        const shoal_worker_exit *e = exit_of(c, r, 1.0);
        char how[96];
        if (e && e->signal) snprintf(how, sizeof how, "killed by signal %d", e->signal);
        else if (e) snprintf(how, sizeof how, "exited with status %d", e->status);
        else snprintf(how, sizeof how, "its connection dropped or it stopped answering");
        return fail(c, SHOAL_ERR_PEER_FAILED, "%s failed during %s: %s", who, what, how);
    }
    stage_name(c, rank, who, sizeof who);
    return fail(c, rc, "%s: %s: %s%s%s", who, what, shoal_status_str(rc), detail && *detail ? ": " : "",
                detail ? detail : "");
}

/* One round of calls to several workers: each worker's rank, arguments and reply. */
typedef struct cl_fanout {
    int n;
    int *ranks;
    cl_wbuf *args;
    void **rep;
    size_t *rl;
} cl_fanout;

static int fanout_init(shoal_cluster *c, cl_fanout *f, int n) {
    f->n = n;
    f->ranks = calloc((size_t)n, sizeof *f->ranks);
    f->args = calloc((size_t)n, sizeof *f->args);
    f->rep = calloc((size_t)n, sizeof *f->rep);
    f->rl = calloc((size_t)n, sizeof *f->rl);
    if (!f->ranks || !f->args || !f->rep || !f->rl) return fail(c, SHOAL_ERR_NOMEM, "out of memory");
    return SHOAL_OK;
}

static void fanout_free(cl_fanout *f) {
    for (int i = 0; f->rep && i < f->n; i++) free(f->rep[i]);
    for (int i = 0; f->args && i < f->n; i++) free(f->args[i].p);
    free(f->ranks);
    free(f->args);
    free(f->rep);
    free(f->rl);
}

/* Calls name on every rank of f at once (f->args[i] to f->ranks[i]) and waits for all; f->rep[i]
 * / f->rl[i] receive the replies (fanout_free frees them). */
static int call_all(shoal_cluster *c, const char *name, const char *what, cl_fanout *f, double timeout) {
    const int *ranks = f->ranks, nr = f->n;
    cl_wbuf *args = f->args;
    void **replies = f->rep;
    size_t *rlens = f->rl;
    shoal_future **fs = calloc((size_t)nr, sizeof *fs);
    if (!fs) return fail(c, SHOAL_ERR_NOMEM, "out of memory");
    int rc = SHOAL_OK, bad = -1;
    char detail[512] = "";
    for (int i = 0; i < nr; i++) {
        replies[i] = NULL;
        rlens[i] = 0;
    }
    for (int i = 0; i < nr && rc == SHOAL_OK; i++) {
        if (args[i].err) rc = SHOAL_ERR_NOMEM, bad = ranks[i];
        else if ((rc = shoal_rpc_call_async(c->rpc, ranks[i], name, args[i].p, args[i].len, timeout, &fs[i]))) {
            bad = ranks[i];
            snprintf(detail, sizeof detail, "%s", shoal_rpc_last_error(c->rpc));
        }
    }
    for (int i = 0; i < nr; i++) {
        if (!fs[i]) continue;
        if (rc != SHOAL_OK) {
            shoal_future_free(fs[i]);
            continue;
        }
        int st = shoal_future_wait(fs[i], &replies[i], &rlens[i]);
        if (st != SHOAL_OK) {
            rc = st;
            bad = ranks[i];
            snprintf(detail, sizeof detail, "%s", shoal_rpc_last_error(c->rpc));
        }
    }
    free(fs);
    if (rc != SHOAL_OK) {
        for (int i = 0; i < nr; i++) {
            free(replies[i]);
            replies[i] = NULL;
        }
        return describe(c, bad, rc, what, detail);
    }
    return SHOAL_OK;
}

static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long l = strtol(name + 4, &end, 10);
    return end != name + 4 && *end == '.' && l >= 0 && l < INT_MAX ? (int)l : -1;
}

/* Memory estimate of the plan, from the tensor table (what each stage maps or copies) plus
 * the KV cache for ctx positions and the engine's scratch buffers. */
static int plan(shoal_cluster *c, char *err, size_t errcap) {
    const shoal_model_config *m = &c->mc;
    int L = m->n_layers, N = c->nw;
    int ctx = c->cfg.ctx > 0 && c->cfg.ctx < m->max_seq ? c->cfg.ctx : m->max_seq;
    uint64_t *per = calloc((size_t)L + 1, sizeof *per), *cap = calloc((size_t)N, sizeof *cap), *need = calloc((size_t)N, sizeof *need);
    int *first = calloc((size_t)N, sizeof *first), *last = calloc((size_t)N, sizeof *last);
    int rc = per && cap && need && first && last ? SHOAL_OK : SHOAL_ERR_NOMEM;
    uint64_t embed = 0, head = 0, other = 0;
    size_t nt = shoal_model_tensor_count(c->meta);
    for (size_t i = 0; rc == SHOAL_OK && i < nt; i++) {
        shoal_tensor_info ti;
        if (shoal_model_tensor_info(c->meta, i, &ti)) continue;
        int l = layer_of(ti.name);
        if (l >= 0 && l < L) per[l] += ti.nbytes;
        else if (!strcmp(ti.name, "token_embd.weight")) embed += ti.nbytes;
        else if (!strcmp(ti.name, "output_norm.weight") || !strcmp(ti.name, "output.weight")) head += ti.nbytes;
        else if (!strcmp(ti.name, "rope_freqs.weight")) other += ti.nbytes;
    }
    uint64_t kvd = (uint64_t)m->n_kv_heads * m->head_dim, qd = (uint64_t)m->n_heads * m->head_dim;
    for (int l = 0; l < L; l++) per[l] += (uint64_t)ctx * kvd * 2 * sizeof(float);
    uint64_t base = 256ull * (2 * (uint64_t)m->dim + 2 * qd + 2 * (uint64_t)m->hidden_dim) * sizeof(float) +
                    (uint64_t)ctx * m->dim * sizeof(float) + other;
    head += (uint64_t)m->vocab_size * sizeof(float);
    for (int i = 0; i < N; i++) cap[i] = c->wk[i].capacity;
    if (rc == SHOAL_OK) {
        shoal_plan_input in = {L, per, embed, head, m->tied_classifier ? embed : 0, base, N, cap, c->cfg.layers};
        rc = shoal_cluster_plan(&in, first, last, need, err, errcap);
    }
    int na = 0;
    for (int i = 0; rc == SHOAL_OK && i < N; i++) na += last[i] > first[i];
    if (rc == SHOAL_OK && !(c->st = calloc((size_t)na, sizeof *c->st))) rc = SHOAL_ERR_NOMEM;
    if (rc == SHOAL_OK) {
        char a[32], b[32];
        clog_(c, "plan: %d layers over %d worker%s%s (KV cache for %d positions)", L, na, na == 1 ? "" : "s",
              c->cfg.layers ? " as --layers says" : " in proportion to their memory", ctx);
        for (int i = 0; i < N; i++) {
            shoal_cluster_stage *w = &c->wk[i];
            if (last[i] <= first[i]) {
                clog_(c, "  worker %d (pid %d on %s): idle (no layers left for it)", w->rank, w->pid, w->host);
                continue;
            }
            shoal_cluster_stage *s = &c->st[c->n];
            *s = *w;
            s->first = first[i];
            s->last = last[i];
            s->embed = c->n == 0;
            s->head = c->n == na - 1;
            s->need = need[i];
            shoal__cl_human(need[i], a, sizeof a);
            shoal__cl_human(s->capacity, b, sizeof b);
            clog_(c, "  stage %d: worker %d (pid %d on %s, %d threads): layers %d-%d%s%s, needs %s of %s", c->n, s->rank,
                  s->pid, s->host, s->threads, s->first, s->last - 1, s->embed ? " + embedding" : "",
                  s->head ? " + head" : "", a, b);
            c->n++;
        }
    }
    free(per);
    free(cap);
    free(need);
    free(first);
    free(last);
    return rc;
}


/* cluster.hello to every worker: capacity, threads, pid, host, own copy. */
static int hello(shoal_cluster *c) {
    int N = c->nw;
    cl_fanout f = {0};
    int rc = fanout_init(c, &f, N);
    if (rc) goto out;
    for (int i = 0; i < N; i++) {
        f.ranks[i] = i + 1;
        cl_w_u32(&f.args[i], SHOAL_CLUSTER_PROTOCOL);
        cl_w_str(&f.args[i], c->model_path);
        shoal__cl_w_files(&f.args[i], &c->files, 0);
    }
    if ((rc = call_all(c, CL_RPC_HELLO, "the capacity query", &f, c->call_timeout))) goto out;
    for (int i = 0; i < N; i++) {
        cl_rbuf r = cl_rbuf_of(f.rep[i], f.rl[i]);
        shoal_cluster_stage *s = &c->wk[i];
        uint32_t v = cl_r_u32(&r);
        s->rank = i + 1;
        s->pid = cl_r_i32(&r);
        s->threads = (int)cl_r_u32(&r);
        uint32_t local = cl_r_u32(&r);
        s->capacity = cl_r_u64(&r);
        cl_r_str(&r, s->host, sizeof s->host, sizeof s->host - 1);
        char lp[CL_MAX_PATH];
        cl_r_str(&r, lp, sizeof lp, sizeof lp - 1);
        if (r.err || v != SHOAL_CLUSTER_PROTOCOL || local > 1) {
            rc = fail(c, SHOAL_ERR_PROTOCOL, "worker %d: malformed reply to %s (%zu bytes, protocol %u)", i + 1, CL_RPC_HELLO,
                      f.rl[i], v);
            goto out;
        }
        if (c->cfg.threads > 0) s->threads = c->cfg.threads;
        s->source = local && !c->cfg.send_weights ? SHOAL_WEIGHTS_LOCAL : SHOAL_WEIGHTS_STREAMED;
    }
out:
    fanout_free(&f);
    return rc;
}

typedef struct rx {
    int rank;
    shoal_future *f;
    int f_done;
    void *reply;
    size_t reply_len;
    shoal_request *ack;
    uint8_t ack_buf[CL_ACK_LEN];
    uint64_t acked, acked_bytes;
} rx;

/* Waits for the next acknowledgement of receiver x, while watching its fetch call. */
static int wait_ack(shoal_cluster *c, rx *x, uint64_t total_chunks) {
    double deadline = shoal__now() + c->wait_timeout;
    for (;;) {
        shoal_msg_info info;
        int st = shoal_wait_timeout(x->ack, 0.05, &info);
        if (st == SHOAL_OK) {
            x->ack = NULL;
            cl_rbuf r = cl_rbuf_of(x->ack_buf, info.bytes);
            uint32_t magic = cl_r_u32(&r);
            cl_r_u32(&r);
            uint64_t bytes = cl_r_u64(&r);
            if (r.err || magic != CL_ACK_MAGIC || info.bytes != CL_ACK_LEN || bytes < x->acked_bytes)
                return describe(c, x->rank, SHOAL_ERR_PROTOCOL, "the weight transfer", "malformed acknowledgement");
            x->acked++;
            x->acked_bytes = bytes;
            if (x->acked < total_chunks &&
                (st = shoal_irecv(c->comm, x->ack_buf, sizeof x->ack_buf, x->rank, CL_TAG_ACK, &x->ack)))
                return describe(c, x->rank, st, "the weight transfer", shoal_comm_last_error(c->comm));
            return SHOAL_OK;
        }
        if (st != SHOAL_ERR_TIMEOUT) {
            x->ack = NULL;
            return describe(c, x->rank, st, "the weight transfer", shoal_comm_last_error(c->comm));
        }
        if (!x->f_done) {
            int done = 0;
            shoal_future_test(x->f, &done);
            if (done) {
                x->f_done = 1;
                st = shoal_future_wait(x->f, &x->reply, &x->reply_len);
                x->f = NULL;
                if (st) return describe(c, x->rank, st, "the weight transfer", shoal_rpc_last_error(c->rpc));
            }
        }
        if (shoal__now() > deadline)
            return describe(c, x->rank, SHOAL_ERR_TIMEOUT, "the weight transfer", "no acknowledgement");
    }
}

static int pread_all(int fd, uint8_t *p, size_t n, uint64_t off) {
    while (n) {
        ssize_t k = pread(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* Streams every model file to the workers in ranks[] at once: cluster.fetch on each, then
 * chunks on CL_TAG_CHUNK with at most STREAM_WINDOW unacknowledged per receiver. */
static int stream(shoal_cluster *c, const int *ranks, int nr) {
    const cl_files *fs = &c->files;
    uint64_t total = 0, total_chunks = 0;
    for (int i = 0; i < fs->n; i++) {
        total += fs->f[i].size;
        total_chunks += (fs->f[i].size + STREAM_CHUNK - 1) / STREAM_CHUNK;
    }
    cl_wbuf args = {0};
    cl_w_u32(&args, SHOAL_CLUSTER_PROTOCOL);
    cl_w_bytes(&args, fs->hash, 32);
    cl_w_u32(&args, STREAM_CHUNK);
    cl_w_f64(&args, c->wait_timeout);
    shoal__cl_w_files(&args, fs, 1);
    rx *xs = calloc((size_t)nr, sizeof *xs);
    uint8_t *slots = malloc((size_t)STREAM_WINDOW * (CL_CHUNK_HDR + STREAM_CHUNK));
    shoal_request **sreq = calloc((size_t)STREAM_WINDOW * nr, sizeof *sreq);
    int rc = xs && slots && sreq && !args.err ? SHOAL_OK : fail(c, SHOAL_ERR_NOMEM, "out of memory");
    int fd = -1;
    char th[32];
    shoal__cl_human(total, th, sizeof th);
    for (int i = 0; rc == SHOAL_OK && i < nr; i++) {
        xs[i].rank = ranks[i];
        if ((rc = shoal_rpc_call_async(c->rpc, ranks[i], CL_RPC_FETCH, args.p, args.len, 7 * 86400.0, &xs[i].f)))
            rc = describe(c, ranks[i], rc, "the weight transfer", shoal_rpc_last_error(c->rpc));
        else if (total_chunks &&
                 (rc = shoal_irecv(c->comm, xs[i].ack_buf, CL_ACK_LEN, ranks[i], CL_TAG_ACK, &xs[i].ack)))
            rc = describe(c, ranks[i], rc, "the weight transfer", shoal_comm_last_error(c->comm));
    }
    double t0 = shoal__now();
    uint64_t k = 0;
    if (rc == SHOAL_OK && c->cfg.progress) c->cfg.progress(c->cfg.user, 0, total);
    for (int fi = 0; rc == SHOAL_OK && fi < fs->n; fi++) {
        char p[CL_MAX_PATH + CL_MAX_NAME + 2];
        snprintf(p, sizeof p, "%s/%s", fs->root, fs->f[fi].name);
        if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = fail(c, SHOAL_ERR_IO, "%s: %s", p, strerror(errno));
            break;
        }
        for (uint64_t off = 0; rc == SHOAL_OK && off < fs->f[fi].size; off += STREAM_CHUNK, k++) {
            int slot = (int)(k % STREAM_WINDOW);
            uint8_t *buf = slots + (size_t)slot * (CL_CHUNK_HDR + STREAM_CHUNK);
            for (int i = 0; i < nr; i++) { /* the slot's previous sends are done with it */
                shoal_request **q = &sreq[slot * nr + i];
                if (*q) {
                    int st = shoal_wait(*q, NULL);
                    *q = NULL;
                    if (st && rc == SHOAL_OK) rc = describe(c, ranks[i], st, "the weight transfer", shoal_comm_last_error(c->comm));
                }
            }
            if (rc) break;
            uint32_t n = fs->f[fi].size - off < STREAM_CHUNK ? (uint32_t)(fs->f[fi].size - off) : STREAM_CHUNK;
            shoal__put_u32(buf, CL_CHUNK_MAGIC);
            shoal__put_u32(buf + 4, (uint32_t)fi);
            shoal__put_u64(buf + 8, off);
            shoal__put_u32(buf + 16, n);
            shoal__put_u32(buf + 20, 0);
            if (pread_all(fd, buf + CL_CHUNK_HDR, n, off)) {
                rc = fail(c, SHOAL_ERR_IO, "reading %s: %s", p, strerror(errno));
                break;
            }
            for (int i = 0; rc == SHOAL_OK && i < nr; i++) {
                while (rc == SHOAL_OK && k - xs[i].acked >= STREAM_WINDOW) rc = wait_ack(c, &xs[i], total_chunks);
                if (rc == SHOAL_OK && (rc = shoal_isend(c->comm, buf, CL_CHUNK_HDR + (size_t)n, ranks[i], CL_TAG_CHUNK,
                                                        &sreq[slot * nr + i])))
                    rc = describe(c, ranks[i], rc, "the weight transfer", shoal_comm_last_error(c->comm));
            }
            if (rc == SHOAL_OK && c->cfg.progress) {
                uint64_t low = total;
                for (int i = 0; i < nr; i++)
                    if (xs[i].acked_bytes < low) low = xs[i].acked_bytes;
                c->cfg.progress(c->cfg.user, low, total);
            }
        }
        close(fd);
        fd = -1;
    }
    for (int i = 0; rc == SHOAL_OK && i < nr; i++) /* everything acknowledged */
        while (rc == SHOAL_OK && xs[i].acked < total_chunks) rc = wait_ack(c, &xs[i], total_chunks);
    for (int q = 0; sreq && q < STREAM_WINDOW * nr; q++)
        if (sreq[q]) {
            int st = shoal_wait(sreq[q], NULL);
            if (st && rc == SHOAL_OK) rc = describe(c, ranks[q % nr], st, "the weight transfer", shoal_comm_last_error(c->comm));
        }
    if (rc == SHOAL_OK && c->cfg.progress) c->cfg.progress(c->cfg.user, total, total);
    for (int i = 0; xs && i < nr; i++) {
        if (xs[i].ack) shoal_request_free(xs[i].ack);
        if (rc == SHOAL_OK && !xs[i].f_done) {
            int st = shoal_future_wait(xs[i].f, &xs[i].reply, &xs[i].reply_len);
            xs[i].f = NULL;
            xs[i].f_done = 1;
            if (st) rc = describe(c, ranks[i], st, "the weight transfer", shoal_rpc_last_error(c->rpc));
        }
        if (xs[i].f) shoal_future_free(xs[i].f);
        if (rc == SHOAL_OK) {
            cl_rbuf r = cl_rbuf_of(xs[i].reply, xs[i].reply_len);
            uint64_t got = cl_r_u64(&r);
            char where[CL_MAX_PATH];
            cl_r_str(&r, where, sizeof where, sizeof where - 1);
            if (r.err || cl_r_left(&r))
                rc = fail(c, SHOAL_ERR_PROTOCOL, "worker %d: malformed reply to %s", ranks[i], CL_RPC_FETCH);
            else
                clog_(c, "worker %d: received %s (%llu bytes, SHA-256 checked) in %.2f s, cached in %s", ranks[i], th,
                      (unsigned long long)got, shoal__now() - t0, where);
        }
        free(xs[i].reply);
    }
    if (fd >= 0) close(fd);
    free(args.p);
    free(xs);
    free(slots);
    free(sreq);
    return rc;
}

/* Workers without their own copy get the weights from their cache or from us. */
static int weights(shoal_cluster *c) {
    int N = c->n, nneed = 0, rc = SHOAL_OK;
    for (int i = 0; i < N; i++) nneed += c->st[i].source != SHOAL_WEIGHTS_LOCAL;
    if (!nneed) return SHOAL_OK;
    char err[512] = "";
    uint64_t total = 0;
    for (int i = 0; i < c->files.n; i++) total += c->files.f[i].size;
    char th[32];
    shoal__cl_human(total, th, sizeof th);
    double t0 = shoal__now();
    if ((rc = shoal__cl_files_hash(&c->files, err, sizeof err))) return fail(c, rc, "hashing the model: %s", err);
    char hex[65];
    shoal__cl_hex(c->files.hash, hex);
    clog_(c, "model content hash sha256:%.16s... (%d file%s, %s, hashed in %.2f s)", hex, c->files.n,
          c->files.n == 1 ? "" : "s", th, shoal__now() - t0);
    cl_fanout f = {0};
    int *send = calloc((size_t)nneed, sizeof *send);
    rc = fanout_init(c, &f, nneed);
    if (rc == SHOAL_OK && !send) rc = fail(c, SHOAL_ERR_NOMEM, "out of memory");
    if (rc) goto out;
    int k = 0;
    for (int i = 0; i < N; i++)
        if (c->st[i].source != SHOAL_WEIGHTS_LOCAL) {
            f.ranks[k] = c->st[i].rank;
            cl_w_u32(&f.args[k], SHOAL_CLUSTER_PROTOCOL);
            cl_w_bytes(&f.args[k], c->files.hash, 32);
            shoal__cl_w_files(&f.args[k], &c->files, 0);
            k++;
        }
    if ((rc = call_all(c, CL_RPC_HAVE, "the cache query", &f, c->call_timeout))) goto out;
    int nsend = 0;
    for (int i = 0; i < nneed; i++) {
        cl_rbuf r = cl_rbuf_of(f.rep[i], f.rl[i]);
        uint32_t cached = cl_r_u32(&r);
        if (r.err || cl_r_left(&r) || cached > 1) {
            rc = fail(c, SHOAL_ERR_PROTOCOL, "worker %d: malformed reply to %s", f.ranks[i], CL_RPC_HAVE);
            goto out;
        }
        shoal_cluster_stage *s = stage_of(c, f.ranks[i]);
        if (cached) {
            s->source = SHOAL_WEIGHTS_CACHED;
            clog_(c, "worker %d: has the model in its cache: nothing to send", f.ranks[i]);
        } else {
            send[nsend++] = f.ranks[i];
        }
    }
    if (nsend) {
        clog_(c, "sending the model (%s) to %d worker%s", th, nsend, nsend == 1 ? "" : "s");
        rc = stream(c, send, nsend);
    }
out:
    free(send);
    fanout_free(&f);
    return rc;
}

static int load(shoal_cluster *c) {
    int N = c->n;
    cl_fanout f = {0};
    int rc = fanout_init(c, &f, N);
    if (rc) goto out;
    for (int i = 0; i < N; i++) {
        shoal_cluster_stage *s = &c->st[i];
        f.ranks[i] = s->rank;
        cl_wbuf *a = &f.args[i];
        cl_w_u32(a, SHOAL_CLUSTER_PROTOCOL);
        cl_w_i32(a, s->first);
        cl_w_i32(a, s->last);
        cl_w_u32(a, (s->embed ? CL_LOAD_EMBED : 0) | (s->head ? CL_LOAD_HEAD : 0));
        cl_w_i32(a, c->cfg.threads > 0 ? c->cfg.threads : 0);
        cl_w_i32(a, i > 0 ? c->st[i - 1].rank : 0);
        cl_w_i32(a, i < N - 1 ? c->st[i + 1].rank : 0);
        cl_w_u32(a, (uint32_t)(s->source == SHOAL_WEIGHTS_LOCAL ? SHOAL_WEIGHTS_LOCAL : SHOAL_WEIGHTS_CACHED));
        cl_w_bytes(a, c->files.hash, 32); /* zeros when nobody needed the hash */
        cl_w_str(a, c->model_path);
        shoal__cl_w_files(a, &c->files, 0);
    }
    if ((rc = call_all(c, CL_RPC_LOAD, "loading its layers", &f, c->call_timeout))) goto out;
    const char *from[] = {"its own copy", "its cache", "the leader's stream"};
    for (int i = 0; i < N; i++) {
        shoal_cluster_stage *s = &c->st[i];
        cl_rbuf r = cl_rbuf_of(f.rep[i], f.rl[i]);
        int first = cl_r_i32(&r), last = cl_r_i32(&r), dim = cl_r_i32(&r), nl = cl_r_i32(&r), vocab = cl_r_i32(&r);
        int threads = cl_r_i32(&r);
        uint64_t got = cl_r_u64(&r);
        char path[CL_MAX_PATH], be[128];
        cl_r_str(&r, path, sizeof path, sizeof path - 1);
        cl_r_str(&r, be, sizeof be, sizeof be - 1);
        if (r.err || cl_r_left(&r)) {
            rc = fail(c, SHOAL_ERR_PROTOCOL, "worker %d: malformed reply to %s", s->rank, CL_RPC_LOAD);
            goto out;
        }
        if (first != s->first || last != s->last || dim != c->mc.dim || nl != c->mc.n_layers || vocab != c->mc.vocab_size) {
            rc = fail(c, SHOAL_ERR_FORMAT,
                      "worker %d opened a different model at %s (dim %d, %d layers, vocab %d; the leader's has dim %d, %d layers, vocab %d)",
                      s->rank, path, dim, nl, vocab, c->mc.dim, c->mc.n_layers, c->mc.vocab_size);
            goto out;
        }
        s->threads = threads;
        s->bytes_received = got;
        clog_(c, "stage %d: worker %d loaded layers %d-%d from %s %s (%llu bytes received), %s", i, s->rank, first, last - 1,
              from[s->source], path, (unsigned long long)got, be);
    }
out:
    fanout_free(&f);
    return rc;
}

/* ---- the pipe: messages to the first stage, results from the last */

static int pipe_send(shoal_cluster *c, cl_pipe_hdr *h, const void *payload, size_t len) {
    h->magic = CL_PIPE_MAGIC;
    int rc = cl_pipe_send(c->comm, c->st[0].rank, CL_TAG_PIPE, h, payload, len);
    if (rc) {
        c->broken = 1;
        return describe(c, c->st[0].rank, rc, "generation", shoal_comm_last_error(c->comm));
    }
    return SHOAL_OK;
}

/* A stage loop that ended is a failure (it runs until STOP). */
static int serve_ended(shoal_cluster *c, int *rank, int *rc, char *detail, size_t cap) {
    for (int i = 0; c->serve && i < c->n; i++) {
        int done = 0;
        if (!c->serve[i] || shoal_future_test(c->serve[i], &done) || !done) continue;
        *rc = shoal_future_wait(c->serve[i], NULL, NULL);
        c->serve[i] = NULL;
        snprintf(detail, cap, "%s", *rc ? shoal_rpc_last_error(c->rpc) : "its stage loop ended");
        if (!*rc) *rc = SHOAL_ERR_PROTOCOL;
        *rank = c->st[i].rank;
        return 1;
    }
    return 0;
}

/* The next result from the last stage: its header, then rows x vocab logits into logits (or
 * an error text). Waits in slices, watching for failed workers and ended stage loops. */
static int pipe_result(shoal_cluster *c, uint32_t op, uint32_t step, cl_pipe_hdr *h, float *logits, int max_rows) {
    int last = c->st[c->n - 1].rank, rc;
    uint8_t hb[CL_PIPE_HDR];
    shoal_request *rq = NULL;
    shoal_msg_info info;
    char detail[CL_ERR_TEXT_MAX + 1] = "";
    double deadline = shoal__now() + c->wait_timeout;
    c->broken = 1; /* until the result is in */
    if ((rc = shoal_irecv(c->comm, hb, sizeof hb, last, CL_TAG_RESULT, &rq)))
        return describe(c, last, rc, "generation", shoal_comm_last_error(c->comm));
    for (;;) {
        rc = shoal_wait_timeout(rq, 0.25, &info);
        if (rc != SHOAL_ERR_TIMEOUT) break;
        int bad;
        if (serve_ended(c, &bad, &rc, detail, sizeof detail) || shoal_comm_failed_ranks(c->comm, &bad, 1) > 0 ||
            shoal__now() > deadline) {
            shoal_cancel(rq);
            shoal_wait(rq, NULL);
            if (!rc) rc = shoal__now() > deadline ? SHOAL_ERR_TIMEOUT : SHOAL_ERR_PEER_FAILED;
            return describe(c, bad, rc, "generation", detail[0] ? detail : "no result from the last stage");
        }
    }
    if (rc) return describe(c, last, rc, "generation", shoal_comm_last_error(c->comm));
    if (cl_pipe_decode(hb, info.bytes, h) || h->magic != CL_RESULT_MAGIC)
        return describe(c, last, SHOAL_ERR_PROTOCOL, "generation", "malformed result header");
    if (h->status != 0) {
        if (h->payload > CL_ERR_TEXT_MAX) return describe(c, last, SHOAL_ERR_PROTOCOL, "generation", "oversized error text");
        if (h->payload && shoal_recv(c->comm, detail, (size_t)h->payload, last, CL_TAG_RESULT, &info) == SHOAL_OK)
            detail[info.bytes < sizeof detail ? info.bytes : sizeof detail - 1] = 0;
        /* A stage behind a dead worker reports first; our own connection to the dead one
         * tells us who it was a moment later (the monitor notices the socket drop). */
        int bad;
        double until = shoal__now() + (h->status == SHOAL_ERR_PEER_FAILED ? 2.0 : 0.0);
        while (shoal_comm_failed_ranks(c->comm, &bad, 1) == 0 && shoal__now() < until) usleep(5000);
        if (shoal_comm_failed_ranks(c->comm, &bad, 1) > 0) return describe(c, bad, h->status, "generation", detail);
        return fail(c, h->status, "%s", detail[0] ? detail : shoal_status_str(h->status));
    }
    size_t V = (size_t)c->mc.vocab_size;
    int rows = op == CL_OP_STEP ? h->n : 0; /* BEGIN and STOP results echo their header */
    if (h->op != op || h->step != step || h->gen != c->gen || rows < 0 || rows > max_rows ||
        h->payload != (uint64_t)rows * V * sizeof(float))
        return describe(c, last, SHOAL_ERR_PROTOCOL, "generation", "a result that does not match the request");
    if (h->payload) {
        if ((rc = shoal_recv(c->comm, logits, (size_t)h->payload, last, CL_TAG_RESULT, &info)) ||
            info.bytes != h->payload)
            return describe(c, last, rc ? rc : SHOAL_ERR_PROTOCOL, "generation", "logits");
    }
    c->broken = 0;
    return SHOAL_OK;
}

typedef struct step_out {
    int token;
    double compute_s, send_s;
} step_out;

/* One forward pass of n tokens at pos through the pipeline. flags go to the last stage;
 * logits (when CL_STEP_LOGITS_ALL) receive [n][vocab]. */
static int run_step(shoal_cluster *c, int pos, int n, const int32_t *ids, uint32_t flags, float *logits, step_out *o) {
    uint32_t step = ++c->step;
    uint8_t *p = malloc((size_t)n * 4);
    if (!p) return fail(c, SHOAL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) shoal__put_u32(p + 4 * (size_t)i, (uint32_t)ids[i]);
    cl_pipe_hdr h = {.op = CL_OP_STEP, .gen = c->gen, .step = step, .pos = pos, .n = n, .flags = flags};
    int rc = pipe_send(c, &h, p, (size_t)n * 4);
    free(p);
    if (rc) return rc;
    cl_pipe_hdr r;
    if ((rc = pipe_result(c, CL_OP_STEP, step, &r, logits, (flags & CL_STEP_LOGITS_ALL) ? n : 0))) return rc;
    int token = (int32_t)r.flags;
    if ((flags & CL_STEP_LOGITS_ALL) && r.n != n) return describe(c, c->st[c->n - 1].rank, SHOAL_ERR_PROTOCOL, "generation", "missing logits");
    if ((flags & CL_STEP_SAMPLE) ? token < 0 || token >= c->mc.vocab_size : token != -1)
        return describe(c, c->st[c->n - 1].rank, SHOAL_ERR_PROTOCOL, "generation", "a bad token id");
    o->token = token;
    o->compute_s = r.compute_s;
    o->send_s = r.send_s;
    return SHOAL_OK;
}

/* Starts every stage's loop (cluster.serve): from now on steps travel as pipe messages. */
static int start_serving(shoal_cluster *c) {
    c->serve = calloc((size_t)c->n, sizeof *c->serve);
    if (!c->serve) return fail(c, SHOAL_ERR_NOMEM, "out of memory");
    cl_wbuf a = {0};
    cl_w_u32(&a, SHOAL_CLUSTER_PROTOCOL);
    cl_w_f64(&a, c->wait_timeout);
    if (a.err) return fail(c, SHOAL_ERR_NOMEM, "out of memory");
    memcpy(c->serve_args, a.p, a.len);
    free(a.p);
    for (int i = 0; i < c->n; i++) {
        int rc = shoal_rpc_call_async(c->rpc, c->st[i].rank, CL_RPC_SERVE, c->serve_args, sizeof c->serve_args, 1e9,
                                      &c->serve[i]);
        if (rc) return describe(c, c->st[i].rank, rc, "starting its stage", shoal_rpc_last_error(c->rpc));
    }
    return SHOAL_OK;
}

/* Sends STOP down the pipe and waits for every loop to end. */
static void stop_serving(shoal_cluster *c) {
    if (!c->serve) return;
    /* Even after a failure: a loop still waiting on its upstream would keep its worker from
     * leaving when the pool shuts down. Stages behind a dead one see it fail and stop. */
    int first = c->st[0].rank;
    if (!shoal_comm_peer_failed(c->comm, first)) {
        cl_pipe_hdr h = {.magic = CL_PIPE_MAGIC, .op = CL_OP_STOP, .gen = c->gen, .step = ++c->step};
        int broken = c->broken;
        double saved = c->wait_timeout;
        c->wait_timeout = 10;
        if (cl_pipe_send(c->comm, first, CL_TAG_PIPE, &h, NULL, 0) == SHOAL_OK && !broken) {
            cl_pipe_hdr r;
            pipe_result(c, CL_OP_STOP, h.step, &r, NULL, 0);
        }
        c->wait_timeout = saved;
        double end = shoal__now() + 5;
        for (int i = 0; i < c->n; i++) {
            int done = 0;
            while (c->serve[i] && shoal_future_test(c->serve[i], &done) == SHOAL_OK && !done && shoal__now() < end) usleep(1000);
            if (c->serve[i] && done) {
                shoal_future_wait(c->serve[i], NULL, NULL);
                c->serve[i] = NULL;
            }
        }
    }
    for (int i = 0; i < c->n; i++) shoal_future_free(c->serve[i]); /* what is left is cancelled */
    free(c->serve);
    c->serve = NULL;
}

int shoal_cluster_create(shoal_cluster **out, shoal_pool *pool, const shoal_cluster_config *cfg, char *err,
                         size_t errcap) {
    char dummy[8];
    if (!err || !errcap) err = dummy, errcap = sizeof dummy;
    err[0] = 0;
    if (!out || !pool || !cfg || cfg->struct_size != sizeof *cfg || cfg->version != SHOAL_CLUSTER_CONFIG_VERSION ||
        !cfg->model) {
        shoal__errf(err, errcap, "cluster: bad arguments (config not initialised with SHOAL_CLUSTER_CONFIG_INIT?)");
        return SHOAL_ERR_INVALID;
    }
    *out = NULL;
    shoal_cluster *c = calloc(1, sizeof *c);
    if (!c) return SHOAL_ERR_NOMEM;
    c->pool = pool;
    c->comm = shoal_pool_comm(pool);
    c->rpc = shoal_pool_rpc(pool);
    c->cfg = *cfg;
    c->cfg.model = c->model_path;
    c->nw = shoal_pool_workers(pool);
    c->call_timeout = cfg->timeout_s;
    double t = 300;
    shoal__setting_double("timeout", &t, NULL, 0);
    c->wait_timeout = cfg->timeout_s > 0 ? cfg->timeout_s : t > 0 ? t : 300;
    int rc = SHOAL_OK;
    if (!realpath(cfg->model, c->model_path)) {
        shoal__errf(err, errcap, "%s: %s", cfg->model, strerror(errno));
        rc = SHOAL_ERR_NOT_FOUND;
        goto fail;
    }
    c->wk = calloc((size_t)c->nw, sizeof *c->wk);
    if (!c->wk) {
        rc = SHOAL_ERR_NOMEM;
        goto fail;
    }
    shoal_model_load_opts lo = SHOAL_MODEL_LOAD_OPTS_INIT;
    lo.first_layer = 0;
    lo.last_layer = 0;
    lo.embed = 0;
    lo.head = 0;
    lo.threads = 1;
    if ((rc = shoal_model_open(c->model_path, &lo, &c->meta, err, errcap))) goto fail;
    c->mc = *shoal_model_get_config(c->meta);
    if ((rc = shoal__cl_files_list(c->model_path, &c->files, err, errcap))) goto fail;
    if ((rc = hello(c))) goto fail_c;
    if ((rc = plan(c, err, errcap))) goto fail;
    if ((rc = weights(c))) goto fail_c;
    if ((rc = load(c))) goto fail_c;
    if ((rc = start_serving(c))) goto fail_c;
    clog_(c, "pipeline ready: %d stage%s", c->n, c->n == 1 ? "" : "s");
    *out = c;
    return SHOAL_OK;
fail_c:
    shoal__errf(err, errcap, "%s", c->err);
fail:
    shoal_cluster_free(c);
    return rc;
}

void shoal_cluster_free(shoal_cluster *c) {
    if (!c) return;
    stop_serving(c);
    shoal_model_free(c->meta);
    shoal__cl_files_free(&c->files);
    free(c->st);
    free(c->wk);
    free(c);
}

const shoal_model_config *shoal_cluster_model_config(const shoal_cluster *c) { return c ? &c->mc : NULL; }
int shoal_cluster_stages(const shoal_cluster *c) { return c ? c->n : 0; }
int shoal_cluster_stage_info(const shoal_cluster *c, int i, shoal_cluster_stage *out) {
    if (!c || !out || i < 0 || i >= c->n) return SHOAL_ERR_INVALID;
    *out = c->st[i];
    return SHOAL_OK;
}
const char *shoal_cluster_last_error(const shoal_cluster *c) { return c ? c->err : ""; }

int shoal_cluster_generate(shoal_cluster *c, const shoal_cluster_request *req, shoal_cluster_token_fn cb, void *user,
                           shoal_cluster_stats *stats) {
    if (!c) return SHOAL_ERR_INVALID;
    shoal_cluster_stats sdummy;
    if (!stats) stats = &sdummy;
    memset(stats, 0, sizeof *stats);
    if (c->broken) return fail(c, SHOAL_ERR_INVALID, "the cluster failed earlier: free it and start again");
    if (!req || req->size != sizeof *req || !req->prompt || req->n_prompt < 1 || req->n_predict < 0 || req->batch < 0)
        return fail(c, SHOAL_ERR_INVALID, "bad request (prompt of %d tokens, %d to generate)", req ? req->n_prompt : 0,
                    req ? req->n_predict : 0);
    const shoal_model_config *m = &c->mc;
    long long need = (long long)req->n_prompt + req->n_predict;
    long long max_seq = req->max_seq > 0 ? req->max_seq : need;
    if (need > m->max_seq || max_seq < need || max_seq > m->max_seq)
        return fail(c, SHOAL_ERR_INVALID, "prompt (%d tokens) + %d to generate exceeds the model's context of %d",
                    req->n_prompt, req->n_predict, m->max_seq);
    for (int i = 0; i < req->n_prompt; i++)
        if (req->prompt[i] < 0 || req->prompt[i] >= m->vocab_size)
            return fail(c, SHOAL_ERR_INVALID, "prompt token %d at %d is outside the vocabulary (%d)", req->prompt[i], i,
                        m->vocab_size);
    int rc;
    c->gen++;
    /* BEGIN: a fresh KV cache on every stage; the sampler (with the prompt) on the last */
    cl_wbuf bp = {0};
    cl_w_sampler(&bp, &req->sampler);
    for (int t = 0; t < req->n_prompt; t++) cl_w_i32(&bp, req->prompt[t]);
    if (bp.err) return fail(c, SHOAL_ERR_NOMEM, "out of memory");
    cl_pipe_hdr bh = {.op = CL_OP_BEGIN, .gen = c->gen, .step = ++c->step, .pos = (int32_t)max_seq, .n = req->n_prompt};
    rc = pipe_send(c, &bh, bp.p, bp.len);
    free(bp.p);
    cl_pipe_hdr br;
    if (rc || (rc = pipe_result(c, CL_OP_BEGIN, bh.step, &br, NULL, 0))) return rc;
    double tp = shoal__now();
    int batch = req->batch > 0 ? req->batch : req->n_prompt;
    step_out so = {-1, 0, 0};
    for (int p = 0; p < req->n_prompt; p += batch) {
        int nb = req->n_prompt - p < batch ? req->n_prompt - p : batch;
        int final = p + nb == req->n_prompt;
        uint32_t lf = (final && req->n_predict > 0 ? CL_STEP_SAMPLE : 0) | (req->prompt_logits ? CL_STEP_LOGITS_ALL : 0);
        float *lg = req->prompt_logits ? req->prompt_logits + (size_t)p * m->vocab_size : NULL;
        if ((rc = run_step(c, p, nb, req->prompt + p, lf, lg, &so))) goto out;
    }
    double tg = shoal__now();
    stats->prompt_s = tg - tp;
    int32_t token = so.token;
    for (int i = 0; i < req->n_predict; i++) {
        int r = cb ? cb(user, token) : 0;
        if (r < 0) {
            rc = fail(c, r, "the token callback failed: %s", shoal_status_str(r));
            break;
        }
        if (r > 0) break;
        stats->generated++;
        if (i + 1 < req->n_predict) {
            double ts = shoal__now();
            if ((rc = run_step(c, req->n_prompt + i, 1, &token, CL_STEP_SAMPLE, NULL, &so))) goto out;
            stats->step_s += shoal__now() - ts;
            stats->compute_s += so.compute_s;
            stats->send_s += so.send_s;
            stats->decode_steps++;
            token = so.token;
        }
    }
    stats->decode_s = shoal__now() - tg;
out:
    return rc;
}
