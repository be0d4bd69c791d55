/* The worker side of the cluster: the cluster.* rpc handlers (docs/cluster.md). A worker
 * reports its capacity, receives and caches model files, opens its stage's layers, and runs
 * steps: activations in from the previous stage (or token ids from the leader), its layers,
 * activations out to the next stage (or the head and the sampler on the last stage). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "common/common.h"

struct shoal_cluster_worker {
    char model[CL_MAX_PATH]; /* configured own copy; "" none configured; "none" never */
    uint64_t memory_cfg;
    int threads_cfg;
    char cache_root[CL_MAX_PATH];
    void (*log)(void *user, const char *line);
    void *log_user;

    shoal_comm *comm;
    shoal_rpc *rpc;
    int rank;
    uint64_t memory; /* offered */
    atomic_ullong bytes_received;

    pthread_mutex_t mu; /* the stage below; held for a whole step */
    shoal_model *m;
    int first, last, embed, head, prev_rank, next_rank, dim, vocab;
    shoal_kv *kv;
    shoal_sampler *smp;
    uint32_t gen;
    int have_gen, serving;
    double last_send_s; /* how long the last activation send took */
    uint8_t *in;        /* payloads: ids, BEGIN, error text */
    size_t in_cap;
    uint8_t *act;       /* f32 [n][dim], 64-byte aligned */
    size_t act_cap;
    uint8_t *logits;    /* f32 [rows][vocab], 64-byte aligned */
    size_t logits_cap;
};

static void wlog(shoal_cluster_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(shoal_cluster_worker *w, const char *fmt, ...) {
    if (!w->log) return;
    char line[1024];
    int k = snprintf(line, sizeof line, "worker %d: ", w->rank);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
    va_end(ap);
    w->log(w->log_user, line);
}

/* MemAvailable from /proc/meminfo, else physical memory. */
static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    if (kb) return (uint64_t)kb * 1024;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

/* SHOAL_WORKER_MEMORY: one size, or a comma list picked by rank (rank 1 takes the first). */
static int memory_setting(int rank, uint64_t *out) {
    const char *v = shoal__cl_setting("worker_memory", "SHOAL_WORKER_MEMORY");
    if (!v || !*v) return SHOAL_ERR_NOT_FOUND;
    int count = 1;
    for (const char *p = v; *p; p++) count += *p == ',';
    int want = rank >= 1 ? (rank - 1) % count : 0;
    const char *p = v;
    for (int i = 0; i < want; i++) p = strchr(p, ',') + 1;
    char one[64];
    size_t n = strcspn(p, ",");
    if (n >= sizeof one) return SHOAL_ERR_INVALID;
    memcpy(one, p, n);
    one[n] = 0;
    return shoal__parse_bytes(one, out) == SHOAL_OK && *out > 0 ? SHOAL_OK : SHOAL_ERR_INVALID;
}

int shoal_cluster_worker_create(shoal_cluster_worker **out, const shoal_cluster_worker_config *cfg) {
    if (!out) return SHOAL_ERR_INVALID;
    *out = NULL;
    shoal_cluster_worker_config d = SHOAL_CLUSTER_WORKER_CONFIG_INIT;
    if (!cfg) cfg = &d;
    if (cfg->struct_size != sizeof *cfg || cfg->version != SHOAL_CLUSTER_CONFIG_VERSION) return SHOAL_ERR_INVALID;
    shoal_cluster_worker *w = calloc(1, sizeof *w);
    if (!w) return SHOAL_ERR_NOMEM;
    const char *model = cfg->model ? cfg->model : shoal__cl_setting("worker_model", "SHOAL_WORKER_MODEL");
    snprintf(w->model, sizeof w->model, "%s", model ? model : "");
    w->memory_cfg = cfg->memory;
    w->threads_cfg = cfg->threads;
    w->log = cfg->log;
    w->log_user = cfg->user;
    if (shoal__cl_cache_root(cfg->cache_dir, w->cache_root, sizeof w->cache_root) != SHOAL_OK) {
        free(w);
        return SHOAL_ERR_INVALID;
    }
    if (!w->memory_cfg) { /* a malformed SHOAL_WORKER_MEMORY is refused now, not after joining */
        const char *v = shoal__cl_setting("worker_memory", "SHOAL_WORKER_MEMORY");
        int count = 1;
        for (const char *p = v; *p; p++) count += *p == ',';
        uint64_t m;
        for (int r = 1; *v && r <= count; r++)
            if (memory_setting(r, &m) != SHOAL_OK) {
                free(w);
                return SHOAL_ERR_INVALID;
            }
    }
    pthread_mutex_init(&w->mu, NULL);
    w->first = w->last = -1;
    *out = w;
    return SHOAL_OK;
}

uint64_t shoal_cluster_worker_bytes_received(const shoal_cluster_worker *w) {
    return w ? atomic_load(&((shoal_cluster_worker *)w)->bytes_received) : 0;
}

static void drop_stage(shoal_cluster_worker *w) {
    shoal_sampler_free(w->smp);
    shoal_kv_free(w->kv);
    shoal_model_free(w->m);
    w->smp = NULL;
    w->kv = NULL;
    w->m = NULL;
    w->have_gen = 0;
}

void shoal_cluster_worker_free(shoal_cluster_worker *w) {
    if (!w) return;
    drop_stage(w);
    free(w->in);
    free(w->act);
    free(w->logits);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* The file table, and nothing after it. */
static int read_files(cl_rbuf *r, cl_files *fs, int with_sha) {
    int rc = shoal__cl_r_files(r, fs, with_sha);
    if (rc) return rc;
    if (cl_r_left(r)) {
        shoal__cl_files_free(fs);
        return SHOAL_ERR_PROTOCOL;
    }
    return SHOAL_OK;
}

static int check_version(cl_rbuf *r, char *err, size_t errcap) {
    uint32_t v = cl_r_u32(r);
    if (r->err || v != SHOAL_CLUSTER_PROTOCOL) {
        shoal__errf(err, errcap, "cluster protocol version %u, this worker speaks %d", v, SHOAL_CLUSTER_PROTOCOL);
        return SHOAL_ERR_PROTOCOL;
    }
    return SHOAL_OK;
}

static int reply_buf(cl_wbuf *b, void **reply, size_t *reply_len) {
    if (b->err) {
        free(b->p);
        return SHOAL_ERR_NOMEM;
    }
    *reply = b->p;
    *reply_len = b->len;
    return SHOAL_OK;
}

/* The start of every leader-only call: the caller must be rank 0, and the arguments begin
 * with our protocol version; *r is left at the first argument after it. */
static int open_call(int caller, const void *args, size_t len, cl_rbuf *r, char *err, size_t errcap) {
    if (caller != 0) {
        shoal__errf(err, errcap, "only the leader (rank 0) may call this (caller %d)", caller);
        return SHOAL_ERR_INVALID;
    }
    *r = cl_rbuf_of(args, len);
    return check_version(r, err, errcap);
}

/* cluster.hello: args u32 version | str leader_path | files; reply u32 version | i32 pid |
 * u32 threads | u32 local | u64 memory | str host | str local_path. */
static int h_hello(void *user, int caller, const void *args, size_t len, void **reply, size_t *reply_len,
                   char *err, size_t errcap) {
    shoal_cluster_worker *w = user;
    cl_rbuf r;
    int rc = open_call(caller, args, len, &r, err, errcap);
    if (rc) return rc;
    char leader_path[CL_MAX_PATH];
    cl_r_str(&r, leader_path, sizeof leader_path, CL_MAX_PATH - 1);
    cl_files fs;
    if (r.err || (rc = read_files(&r, &fs, 0))) {
        shoal__errf(err, errcap, "cluster.hello: malformed arguments (%zu bytes)", len);
        return rc == SHOAL_ERR_NOMEM ? rc : SHOAL_ERR_PROTOCOL;
    }
    const char *cand = strcmp(w->model, "none") == 0 ? NULL : w->model[0] ? w->model : leader_path;
    int local = cand && shoal__cl_files_match(cand, &fs);
    shoal__cl_files_free(&fs);
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long long t = 0;
    int threads = w->threads_cfg > 0 ? w->threads_cfg
                  : (shoal__setting_int("threads", &t, NULL, 0) == SHOAL_OK && t > 0) ? (int)t
                                                                                     : (int)(ncpu > 0 ? ncpu : 1);
    cl_wbuf b = {0};
    cl_w_u32(&b, SHOAL_CLUSTER_PROTOCOL);
    cl_w_i32(&b, (int32_t)getpid());
    cl_w_u32(&b, (uint32_t)threads);
    cl_w_u32(&b, (uint32_t)local);
    cl_w_u64(&b, w->memory);
    cl_w_str(&b, host);
    cl_w_str(&b, local ? cand : "");
    return reply_buf(&b, reply, reply_len);
}

static void cache_dir_of(const shoal_cluster_worker *w, const uint8_t hash[32], char *out, size_t cap) {
    char hex[65];
    shoal__cl_hex(hash, hex);
    snprintf(out, cap, "%s/models/%s", w->cache_root, hex);
}

/* cluster.have: args u32 version | hash[32] | files; reply u32 cached. */
static int h_have(void *user, int caller, const void *args, size_t len, void **reply, size_t *reply_len, char *err,
                  size_t errcap) {
    shoal_cluster_worker *w = user;
    cl_rbuf r;
    int rc = open_call(caller, args, len, &r, err, errcap);
    if (rc) return rc;
    const uint8_t *hash = cl_r_bytes(&r, 32);
    cl_files fs;
    if (!hash || (rc = read_files(&r, &fs, 0))) {
        shoal__errf(err, errcap, "cluster.have: malformed arguments (%zu bytes)", len);
        return rc == SHOAL_ERR_NOMEM ? rc : SHOAL_ERR_PROTOCOL;
    }
    char dir[CL_MAX_PATH + 80];
    cache_dir_of(w, hash, dir, sizeof dir);
    int cached = shoal__cl_files_match(dir, &(cl_files){.is_dir = 1, .n = fs.n, .f = fs.f});
    shoal__cl_files_free(&fs);
    cl_wbuf b = {0};
    cl_w_u32(&b, (uint32_t)cached);
    if (cached) wlog(w, "the model is in the cache: %s", dir);
    return reply_buf(&b, reply, reply_len);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* cluster.fetch: args u32 version | hash[32] | u32 chunk | files with sha256; then chunks
 * arrive from the caller on CL_TAG_CHUNK, each acknowledged on CL_TAG_ACK. The files are
 * written into a fresh folder, checked against their hashes and renamed into the cache.
 * Reply: u64 bytes received | str cache folder. */
static int h_fetch(void *user, int caller, const void *args, size_t len, void **reply, size_t *reply_len,
                   char *err, size_t errcap) {
    shoal_cluster_worker *w = user;
    cl_rbuf r;
    int rc = open_call(caller, args, len, &r, err, errcap);
    if (rc) return rc;
    const uint8_t *hp = cl_r_bytes(&r, 32);
    uint32_t chunk = cl_r_u32(&r);
    double timeout = cl_r_f64(&r);
    cl_files fs = {0};
    if (!hp || r.err || chunk < 1 || chunk > CL_CHUNK_MAX || !(timeout > 0) || (rc = read_files(&r, &fs, 1))) {
        shoal__errf(err, errcap, "cluster.fetch: malformed arguments (%zu bytes)", len);
        return rc == SHOAL_ERR_NOMEM ? rc : SHOAL_ERR_PROTOCOL;
    }
    uint8_t hash[32], check[32];
    memcpy(hash, hp, 32);
    shoal__cl_combined_hash(fs.f, fs.n, check); /* the per-file hashes must add up to the key */
    char final[CL_MAX_PATH + 80], tmp[CL_MAX_PATH + 120], models[CL_MAX_PATH + 16];
    cache_dir_of(w, hash, final, sizeof final);
    snprintf(models, sizeof models, "%s/models", w->cache_root);
    snprintf(tmp, sizeof tmp, "%s.tmp-%d-%u", final, (int)getpid(), (unsigned)(shoal__now() * 1e6));
    uint8_t *buf = malloc((size_t)CL_CHUNK_HDR + chunk);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int fd = -1, made = 0;
    uint64_t got = 0, total = 0;
    for (int i = 0; i < fs.n; i++) total += fs.f[i].size;
    if (memcmp(hash, check, 32)) {
        shoal__errf(err, errcap, "cluster.fetch: the file hashes do not give the model hash");
        rc = SHOAL_ERR_PROTOCOL;
        goto done;
    }
    if (!buf || !ctx) {
        rc = SHOAL_ERR_NOMEM;
        goto done;
    }
    if (shoal__cl_mkdirs(models) != SHOAL_OK || mkdir(tmp, 0700) != 0) {
        shoal__errf(err, errcap, "cannot create %s: %s", tmp, strerror(errno));
        rc = SHOAL_ERR_IO;
        goto done;
    }
    made = 1;
    char total_h[32];
    shoal__cl_human(total, total_h, sizeof total_h);
    wlog(w, "receiving %d file%s (%s) from the leader into %s", fs.n, fs.n == 1 ? "" : "s", total_h, final);
    for (int i = 0; i < fs.n && rc == SHOAL_OK; i++) {
        char p[sizeof tmp + CL_MAX_NAME + 2];
        snprintf(p, sizeof p, "%s/%s", tmp, fs.f[i].name);
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            shoal__errf(err, errcap, "cannot create %s: %s", p, strerror(errno));
            rc = SHOAL_ERR_IO;
            break;
        }
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        for (uint64_t off = 0; off < fs.f[i].size;) {
            uint32_t want = fs.f[i].size - off < chunk ? (uint32_t)(fs.f[i].size - off) : chunk;
            shoal_msg_info info;
            shoal_request *rq = NULL;
            rc = shoal_irecv(w->comm, buf, (size_t)CL_CHUNK_HDR + chunk, 0, CL_TAG_CHUNK, &rq);
            if (rc == SHOAL_OK) rc = shoal_wait_timeout(rq, timeout, &info);
            if (rc == SHOAL_ERR_TIMEOUT) {
                shoal_cancel(rq);
                shoal_wait(rq, NULL);
            }
            if (rc) {
                shoal__errf(err, errcap, "receiving %s at byte %llu: %s (%s)", fs.f[i].name, (unsigned long long)off,
                            shoal_status_str(rc), shoal_comm_last_error(w->comm));
                break;
            }
            cl_rbuf h = cl_rbuf_of(buf, info.bytes);
            uint32_t magic = cl_r_u32(&h), file = cl_r_u32(&h);
            uint64_t at = cl_r_u64(&h);
            uint32_t n = cl_r_u32(&h);
            if (h.err || magic != CL_CHUNK_MAGIC || file != (uint32_t)i || at != off || n != want ||
                info.bytes != (size_t)CL_CHUNK_HDR + want) {
                shoal__errf(err, errcap, "bad chunk for %s at byte %llu (%zu bytes, file %u, offset %llu, length %u)",
                            fs.f[i].name, (unsigned long long)off, info.bytes, file, (unsigned long long)at, n);
                rc = SHOAL_ERR_PROTOCOL;
                break;
            }
            if (write_all(fd, buf + CL_CHUNK_HDR, want)) {
                shoal__errf(err, errcap, "writing %s: %s", p, strerror(errno));
                rc = SHOAL_ERR_IO;
                break;
            }
            EVP_DigestUpdate(ctx, buf + CL_CHUNK_HDR, want);
            off += want;
            got += want;
            atomic_fetch_add(&w->bytes_received, want);
            uint8_t ack[CL_ACK_LEN];
            shoal__put_u32(ack, CL_ACK_MAGIC);
            shoal__put_u32(ack + 4, 0);
            shoal__put_u64(ack + 8, got);
            if ((rc = shoal_send(w->comm, ack, sizeof ack, 0, CL_TAG_ACK))) {
                shoal__errf(err, errcap, "acknowledging: %s", shoal_status_str(rc));
                break;
            }
        }
        if (rc) break;
        uint8_t sha[32];
        unsigned int hl = 32;
        EVP_DigestFinal_ex(ctx, sha, &hl);
        if (fsync(fd) != 0 || close(fd) != 0) {
            fd = -1;
            shoal__errf(err, errcap, "writing %s: %s", p, strerror(errno));
            rc = SHOAL_ERR_IO;
            break;
        }
        fd = -1;
        if (memcmp(sha, fs.f[i].sha, 32)) {
            shoal__errf(err, errcap, "%s: SHA-256 of the received bytes differs from the leader's", fs.f[i].name);
            rc = SHOAL_ERR_PROTOCOL;
        }
    }
    if (rc == SHOAL_OK) {
        if (rename(tmp, final) == 0) {
            made = 0;
        } else if (!shoal__cl_files_match(final, &(cl_files){.is_dir = 1, .n = fs.n, .f = fs.f})) {
            shoal__errf(err, errcap, "cannot move %s to %s: %s", tmp, final, strerror(errno));
            rc = SHOAL_ERR_IO;
        } /* else another worker on this host cached it first: ours (tmp) is removed below */
    }
    if (rc == SHOAL_OK) {
        wlog(w, "received %llu bytes, SHA-256 verified, cached in %s", (unsigned long long)got, final);
        cl_wbuf b = {0};
        cl_w_u64(&b, got);
        cl_w_str(&b, final);
        rc = reply_buf(&b, reply, reply_len);
    }
done:
    if (fd >= 0) close(fd);
    if (made) shoal__cl_rmdir_files(tmp);
    EVP_MD_CTX_free(ctx);
    free(buf);
    shoal__cl_files_free(&fs);
    return rc;
}

/* cluster.load: args u32 version | i32 first | i32 last | u32 flags | i32 threads | i32 prev |
 * i32 next | u32 source | hash[32] | files. Reply: i32 first | i32 last | i32 dim | i32
 * n_layers | i32 vocab | i32 threads | u64 bytes_received | str path | str backend. */
static int h_load(void *user, int caller, const void *args, size_t len, void **reply, size_t *reply_len, char *err,
                  size_t errcap) {
    shoal_cluster_worker *w = user;
    cl_rbuf r;
    int rc = open_call(caller, args, len, &r, err, errcap);
    if (rc) return rc;
    int first = cl_r_i32(&r), last = cl_r_i32(&r);
    uint32_t flags = cl_r_u32(&r);
    int threads = cl_r_i32(&r), prev = cl_r_i32(&r), next = cl_r_i32(&r);
    uint32_t source = cl_r_u32(&r);
    const uint8_t *hash = cl_r_bytes(&r, 32);
    char leader_path[CL_MAX_PATH];
    cl_r_str(&r, leader_path, sizeof leader_path, CL_MAX_PATH - 1);
    cl_files fs;
    int size = shoal_comm_size(w->comm);
    if (r.err || !hash || first < 0 || last < first || flags > 3 || threads < 0 || threads > 1024 || prev < 0 ||
        prev >= size || next < 0 || next >= size || source > SHOAL_WEIGHTS_STREAMED || (rc = read_files(&r, &fs, 0))) {
        shoal__errf(err, errcap, "cluster.load: malformed arguments (%zu bytes)", len);
        return rc == SHOAL_ERR_NOMEM ? rc : SHOAL_ERR_PROTOCOL;
    }
    char path[CL_MAX_PATH + 400];
    if (source == SHOAL_WEIGHTS_LOCAL) {
        const char *cand = strcmp(w->model, "none") == 0 ? NULL : w->model[0] ? w->model : leader_path;
        if (!cand || !shoal__cl_files_match(cand, &fs)) {
            shoal__cl_files_free(&fs);
            shoal__errf(err, errcap, "no local copy of the model (%s)", cand ? cand : "none configured");
            return SHOAL_ERR_NOT_FOUND;
        }
        snprintf(path, sizeof path, "%s", cand);
    } else {
        char dir[CL_MAX_PATH + 80];
        cache_dir_of(w, hash, dir, sizeof dir);
        if (!shoal__cl_files_match(dir, &(cl_files){.is_dir = 1, .n = fs.n, .f = fs.f})) {
            shoal__cl_files_free(&fs);
            shoal__errf(err, errcap, "the model is not in the cache (%s)", dir);
            return SHOAL_ERR_NOT_FOUND;
        }
        if (fs.is_dir) snprintf(path, sizeof path, "%s", dir);
        else snprintf(path, sizeof path, "%s/%s", dir, fs.entry);
    }
    shoal__cl_files_free(&fs);
    shoal_model_load_opts lo = SHOAL_MODEL_LOAD_OPTS_INIT;
    lo.first_layer = first;
    lo.last_layer = last;
    lo.embed = (flags & CL_LOAD_EMBED) != 0;
    lo.head = (flags & CL_LOAD_HEAD) != 0;
    lo.threads = threads > 0 ? threads : w->threads_cfg;
    pthread_mutex_lock(&w->mu);
    if (w->serving) { /* another cluster's stage loop still runs here: it must STOP first */
        pthread_mutex_unlock(&w->mu);
        shoal__errf(err, errcap, "cluster.load: this worker still serves a pipeline (free that cluster first)");
        return SHOAL_ERR_INVALID;
    }
    drop_stage(w);
    rc = shoal_model_open(path, &lo, &w->m, err, errcap);
    if (rc == SHOAL_OK) {
        const shoal_model_config *c = shoal_model_get_config(w->m);
        w->first = first;
        w->last = last;
        w->embed = lo.embed;
        w->head = lo.head;
        w->prev_rank = prev;
        w->next_rank = next;
        w->dim = c->dim;
        w->vocab = c->vocab_size;
        wlog(w, "stage loaded: layers %d-%d%s%s from %s (%s)", first, last - 1, lo.embed ? " + embedding" : "",
             lo.head ? " + head" : "", path, shoal_model_backend_name(w->m));
        cl_wbuf b = {0};
        cl_w_i32(&b, first);
        cl_w_i32(&b, last);
        cl_w_i32(&b, c->dim);
        cl_w_i32(&b, c->n_layers);
        cl_w_i32(&b, c->vocab_size);
        cl_w_i32(&b, shoal_model_threads(w->m));
        cl_w_u64(&b, atomic_load(&w->bytes_received));
        cl_w_str(&b, path);
        cl_w_str(&b, shoal_model_backend_name(w->m));
        rc = reply_buf(&b, reply, reply_len);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static int grow(uint8_t **p, size_t *cap, size_t need) {
    if (need <= *cap && *p) return SHOAL_OK;
    size_t n = (need + 63) / 64 * 64;
    void *np = aligned_alloc(64, n ? n : 64);
    if (!np) return SHOAL_ERR_NOMEM;
    free(*p);
    *p = np;
    *cap = need;
    return SHOAL_OK;
}

/* Waits for the next header from src: no deadline (an idle pipeline is normal), only a failed
 * peer or an abort ends the wait. Meanwhile this thread drives the group's sockets. */
static int recv_hdr(shoal_comm *comm, int src, cl_pipe_hdr *h) {
    uint8_t hb[CL_PIPE_HDR];
    shoal_request *rq = NULL;
    shoal_msg_info info;
    int rc = shoal_irecv(comm, hb, sizeof hb, src, CL_TAG_PIPE, &rq);
    if (rc) return rc;
    while ((rc = shoal_wait_timeout(rq, 60.0, &info)) == SHOAL_ERR_TIMEOUT) {
    }
    if (rc) return rc;
    return cl_pipe_decode(hb, info.bytes, h);
}

/* The payload that follows a header: exactly len bytes (len 0: a message we refuse, consumed
 * and dropped). */
static int recv_payload(shoal_comm *comm, int src, void *buf, size_t len, double timeout) {
    shoal_request *rq = NULL;
    shoal_msg_info info;
    int rc = shoal_irecv(comm, buf, len, src, CL_TAG_PIPE, &rq);
    if (rc == SHOAL_OK) rc = shoal_wait_timeout(rq, timeout, &info);
    if (rc == SHOAL_ERR_TIMEOUT) {
        shoal_cancel(rq);
        shoal_wait(rq, NULL);
        return rc;
    }
    if (rc == SHOAL_OK && info.bytes != len) rc = SHOAL_ERR_PROTOCOL;
    return rc;
}

typedef struct serve_ctx {
    shoal_cluster_worker *w;
    double timeout; /* for a payload after its header */
    char err[CL_ERR_TEXT_MAX];
    int consumed; /* the current message's payload has been read */
} serve_ctx;

static int serr(serve_ctx *s, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int serr(serve_ctx *s, int rc, const char *fmt, ...) {
    shoal_cluster_worker *w = s->w;
    int k = snprintf(s->err, sizeof s->err, "worker %d (layers %d-%d): ", w->rank, w->first, w->last - 1);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err + k, sizeof s->err - (size_t)k, fmt, ap);
    va_end(ap);
    return rc;
}

/* Passes h downstream (to the next stage, or as a result to the leader from the last). */
static int pass_on(shoal_cluster_worker *w, cl_pipe_hdr *h, const void *payload, size_t len) {
    if (w->next_rank) {
        h->magic = CL_PIPE_MAGIC;
        return cl_pipe_send(w->comm, w->next_rank, CL_TAG_PIPE, h, payload, len);
    }
    h->magic = CL_RESULT_MAGIC;
    return cl_pipe_send(w->comm, 0, CL_TAG_RESULT, h, payload, len);
}

/* BEGIN: pos = KV positions, n = prompt ids; payload: sampler (36 bytes) + n x i32. */
static int do_begin(serve_ctx *s, cl_pipe_hdr *h) {
    shoal_cluster_worker *w = s->w;
    const shoal_model_config *c = shoal_model_get_config(w->m);
    if (h->n < 0 || h->n > CL_MAX_TOKENS || h->payload != CL_SAMPLER_BYTES + (uint64_t)h->n * 4)
        return serr(s, SHOAL_ERR_PROTOCOL, "BEGIN with %d ids and a %llu-byte payload", h->n, (unsigned long long)h->payload);
    if (h->pos < 1 || h->pos > c->max_seq)
        return serr(s, SHOAL_ERR_INVALID, "%d KV positions requested, the model's context is %d", h->pos, c->max_seq);
    int rc = grow(&w->in, &w->in_cap, (size_t)h->payload);
    if (!rc) rc = recv_payload(w->comm, w->prev_rank, w->in, (size_t)h->payload, s->timeout);
    s->consumed = 1;
    if (rc) return serr(s, rc, "BEGIN payload from rank %d: %s", w->prev_rank, shoal_status_str(rc));
    shoal_sampler_free(w->smp);
    shoal_kv_free(w->kv);
    w->smp = NULL;
    w->kv = NULL;
    w->have_gen = 0;
    if ((rc = shoal_kv_create(w->m, h->pos, &w->kv))) return serr(s, rc, "KV cache of %d positions: %s", h->pos, shoal_status_str(rc));
    if (w->head) {
        cl_rbuf r = cl_rbuf_of(w->in, (size_t)h->payload);
        shoal_sampler_params sp;
        cl_r_sampler(&r, &sp);
        if ((rc = shoal_sampler_create(&sp, c->vocab_size, &w->smp))) return serr(s, rc, "sampler: %s", shoal_status_str(rc));
        for (int i = 0; i < h->n; i++) shoal_sampler_accept(w->smp, cl_r_i32(&r));
    }
    w->gen = h->gen;
    w->have_gen = 1;
    if (!w->next_rank) h->n = 0; /* the leader gets the header alone as the acknowledgement */
    rc = pass_on(w, h, w->next_rank ? w->in : NULL, w->next_rank ? (size_t)h->payload : 0);
    return rc ? serr(s, rc, "passing BEGIN on: %s", shoal_status_str(rc)) : SHOAL_OK;
}

/* STEP: n tokens at pos; payload: n x i32 ids (first stage) or f32 [n][dim] activations. */
static int do_step(serve_ctx *s, cl_pipe_hdr *h) {
    shoal_cluster_worker *w = s->w;
    size_t D = (size_t)w->dim;
    if (!w->have_gen || w->gen != h->gen) return serr(s, SHOAL_ERR_INVALID, "STEP for request %u, none begun here", h->gen);
    if (h->n < 1 || h->pos < 0 || (long long)h->pos + h->n > shoal_kv_max_seq(w->kv))
        return serr(s, SHOAL_ERR_INVALID, "STEP of %d tokens at %d: the KV cache holds %d", h->n, h->pos, shoal_kv_max_seq(w->kv));
    if (h->flags > (CL_STEP_SAMPLE | CL_STEP_LOGITS_ALL) || (!w->next_rank && !w->head))
        return serr(s, SHOAL_ERR_PROTOCOL, "STEP flags %u (%s)", h->flags, w->head ? "unknown" : "the last stage has no head");
    uint64_t want = (uint64_t)h->n * (w->embed ? 4 : D * sizeof(float));
    if (h->payload != want)
        return serr(s, SHOAL_ERR_PROTOCOL, "STEP of %d tokens with a %llu-byte payload (expected %llu)", h->n,
                    (unsigned long long)h->payload, (unsigned long long)want);
    size_t act = (size_t)h->n * D * sizeof(float);
    int rc = grow(&w->act, &w->act_cap, act);
    if (!rc && w->embed) rc = grow(&w->in, &w->in_cap, (size_t)want);
    if (rc) return serr(s, rc, "no memory for %d tokens", h->n);
    float *x = (float *)w->act;
    rc = recv_payload(w->comm, w->prev_rank, w->embed ? (void *)w->in : (void *)x, (size_t)want, s->timeout);
    s->consumed = 1;
    if (rc) return serr(s, rc, "STEP payload from rank %d: %s", w->prev_rank, shoal_status_str(rc));
    double t0 = shoal__now();
    if (w->embed) {
        int32_t *ids = (int32_t *)w->in; /* little-endian i32 on the wire: decoded in place */
        for (int i = 0; i < h->n; i++) ids[i] = (int32_t)shoal__get_u32(w->in + 4 * (size_t)i);
        if ((rc = shoal_model_embed(w->m, ids, h->n, x))) return serr(s, rc, "embed: %s", shoal_model_last_error(w->m));
    }
    if ((rc = shoal_model_forward_layers(w->m, w->kv, h->pos, h->n, x)))
        return serr(s, rc, "forward: %s", shoal_model_last_error(w->m));
    if (w->next_rank) {
        double t1 = shoal__now();
        h->compute_s += t1 - t0;
        /* the send time of this hop is known only afterwards: the next stage adds it */
        if ((rc = pass_on(w, h, x, act))) return serr(s, rc, "activations to rank %d: %s", w->next_rank, shoal_status_str(rc));
        w->last_send_s = shoal__now() - t1;
        return SHOAL_OK;
    }
    /* the last stage: the head (every row, or only the last one, as shoal_model_forward) */
    int V = w->vocab, rows = (h->flags & CL_STEP_LOGITS_ALL) ? h->n : (h->flags & CL_STEP_SAMPLE) ? 1 : 0;
    int32_t token = -1;
    if (rows) {
        if ((rc = grow(&w->logits, &w->logits_cap, (size_t)rows * V * sizeof(float))))
            return serr(s, rc, "no memory for %d rows of logits", rows);
        float *lg = (float *)w->logits;
        rc = rows == h->n ? shoal_model_head(w->m, x, h->n, lg) : shoal_model_head(w->m, x + (size_t)(h->n - 1) * D, 1, lg);
        if (rc) return serr(s, rc, "head: %s", shoal_model_last_error(w->m));
        if (h->flags & CL_STEP_SAMPLE) {
            token = shoal_sampler_sample(w->smp, lg + (size_t)(rows - 1) * V);
            if (token < 0) return serr(s, token, "sampler: %s", shoal_status_str(token));
            shoal_sampler_accept(w->smp, token);
        }
    }
    h->compute_s += shoal__now() - t0;
    int out_rows = (h->flags & CL_STEP_LOGITS_ALL) ? h->n : 0;
    h->flags = (uint32_t)token;
    h->n = out_rows;
    if ((rc = pass_on(w, h, w->logits, (size_t)out_rows * V * sizeof(float))))
        return serr(s, rc, "result to the leader: %s", shoal_status_str(rc));
    return SHOAL_OK;
}

/* cluster.serve: no arguments beyond the version; runs this stage until a STOP passes (reply:
 * u64 messages handled) or its upstream is gone (error). Pipe messages come from the previous
 * stage (the leader for the first) on CL_TAG_PIPE; see docs/cluster.md. A failure while
 * handling one message is passed downstream in its place (status and text), and the loop goes
 * on; only a dead or aborted upstream ends it. */
static int h_serve(void *user, int caller, const void *args, size_t len, void **reply, size_t *reply_len,
                   char *err, size_t errcap) {
    shoal_cluster_worker *w = user;
    cl_rbuf r;
    int rc = open_call(caller, args, len, &r, err, errcap);
    if (rc) return rc;
    double timeout = cl_r_f64(&r);
    if (r.err || cl_r_left(&r) || !(timeout > 0)) {
        shoal__errf(err, errcap, "cluster.serve: malformed arguments (%zu bytes)", len);
        return SHOAL_ERR_PROTOCOL;
    }
    pthread_mutex_lock(&w->mu);
    if (!w->m || w->serving) {
        shoal__errf(err, errcap, w->m ? "cluster.serve: this stage is already serving" : "cluster.serve: no stage is loaded");
        pthread_mutex_unlock(&w->mu);
        return SHOAL_ERR_INVALID;
    }
    w->serving = 1;
    pthread_mutex_unlock(&w->mu);
    serve_ctx s = {.w = w, .timeout = timeout};
    uint64_t handled = 0;
    for (;;) {
        cl_pipe_hdr h;
        rc = recv_hdr(w->comm, w->prev_rank, &h);
        if (rc == SHOAL_OK && h.magic != CL_PIPE_MAGIC) rc = SHOAL_ERR_PROTOCOL;
        if (rc) { /* upstream gone (or garbage): tell downstream, then stop */
            serr(&s, rc, "receiving from rank %d: %s", w->prev_rank, shoal_status_str(rc));
            if (w->prev_rank != 0 || w->next_rank) {
                cl_pipe_hdr e = {.op = CL_OP_STOP, .status = rc};
                pass_on(w, &e, s.err, strlen(s.err));
            }
            shoal__errf(err, errcap, "%s", s.err);
            break;
        }
        handled++;
        pthread_mutex_lock(&w->mu);
        s.consumed = h.payload == 0;
        s.err[0] = 0;
        if (h.status != 0) { /* an upstream failure: pass its text on (best effort) */
            size_t tl = h.payload <= CL_ERR_TEXT_MAX ? (size_t)h.payload : 0;
            if (grow(&w->in, &w->in_cap, CL_ERR_TEXT_MAX + 1) ||
                (h.payload && recv_payload(w->comm, w->prev_rank, tl ? w->in : NULL, tl, timeout)))
                tl = 0; /* (an oversized text is consumed and dropped) */
            if (w->in) w->in[tl] = 0;
            pass_on(w, &h, w->in, tl);
            pthread_mutex_unlock(&w->mu);
            if (h.op == CL_OP_STOP) { /* upstream has stopped for good: so do we */
                rc = SHOAL_ERR_PEER_FAILED;
                shoal__errf(err, errcap, "%s", w->in && tl ? (char *)w->in : "the previous stage stopped");
                break;
            }
            continue;
        } else if (h.op == CL_OP_BEGIN) {
            rc = do_begin(&s, &h);
        } else if (h.op == CL_OP_STEP) {
            h.send_s += w->last_send_s; /* the previous hop's send, measured after it ended */
            w->last_send_s = 0;
            rc = do_step(&s, &h);
        } else { /* STOP */
            rc = pass_on(w, &h, NULL, 0);
            pthread_mutex_unlock(&w->mu);
            break;
        }
        if (rc) {
            if (!s.consumed) recv_payload(w->comm, w->prev_rank, NULL, 0, timeout); /* drop it */
            if (!s.err[0]) serr(&s, rc, "%s", shoal_status_str(rc));
            cl_pipe_hdr e = h;
            e.status = rc;
            e.n = 0;
            e.flags = 0;
            pass_on(w, &e, s.err, strlen(s.err));
            rc = SHOAL_OK;
        }
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_lock(&w->mu);
    w->serving = 0;
    pthread_mutex_unlock(&w->mu);
    if (rc) return rc;
    cl_wbuf b = {0};
    cl_w_u64(&b, handled);
    return reply_buf(&b, reply, reply_len);
}

int shoal_cluster_worker_setup(void *user, shoal_rpc *rpc, shoal_comm *comm) {
    shoal_cluster_worker *w = user;
    if (!w || !rpc || !comm) return SHOAL_ERR_INVALID;
    w->rpc = rpc;
    w->comm = comm;
    w->rank = shoal_comm_rank(comm);
    w->memory = w->memory_cfg;
    if (!w->memory) {
        int rc = memory_setting(w->rank, &w->memory);
        if (rc == SHOAL_ERR_INVALID) {
            shoal__log(SHOAL__LOG_ERROR, "SHOAL_WORKER_MEMORY='%s' is not a size or a comma list of sizes",
                       shoal__cl_setting("worker_memory", "SHOAL_WORKER_MEMORY"));
            return rc;
        }
        if (rc) w->memory = mem_available();
    }
    int rc;
    if ((rc = shoal_rpc_register(rpc, CL_RPC_HELLO, h_hello, w)) || (rc = shoal_rpc_register(rpc, CL_RPC_HAVE, h_have, w)) ||
        (rc = shoal_rpc_register(rpc, CL_RPC_FETCH, h_fetch, w)) || (rc = shoal_rpc_register(rpc, CL_RPC_LOAD, h_load, w)) ||
        (rc = shoal_rpc_register(rpc, CL_RPC_SERVE, h_serve, w)))
        return rc;
    return SHOAL_OK;
}
