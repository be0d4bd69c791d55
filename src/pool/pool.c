/* The leader side of a worker pool: start or accept N workers, ping them, reap them, shut
 * them down (see include/shoal/pool.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "comm/coll/coll.h"
#include "common/common.h"
#include "net/net.h"
#include "shoal/launch.h"
#include "shoal/pool.h"

struct shoal_pool {
    int n;
    shoal_comm *comm;
    shoal_rpc *rpc;
    shoal_launch *job; /* NULL for joined (remote) workers */
    uint8_t *reported; /* [n]: exit already reported by shoal_pool_reap */
    char master[SHOAL__HOST_MAX + 16];
};

static _Thread_local char start_err[512];

static int pool_fail(int st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pool_fail(int st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(start_err, sizeof start_err, fmt, ap);
    va_end(ap);
    return st;
}

const char *shoal_pool_start_error(void) { return start_err; }

static void random_hex(char *out, size_t bytes) {
    uint8_t raw[64];
    if (bytes > sizeof raw) bytes = sizeof raw;
    if (shoal__random_bytes(raw, bytes) != SHOAL_OK) /* never expected; still not a constant key */
        for (size_t i = 0; i < bytes; i++) raw[i] = (uint8_t)(rand() ^ (int)(shoal__now() * 1e9));
    for (size_t i = 0; i < bytes; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

/* Local workers: the launcher starts ranks 1..n with our master, key and group. */
static int spawn_local(shoal_pool *p, const shoal_pool_config *cfg, const char *key, const char *group) {
    static char *const default_args[] = {"worker", NULL};
    char *const *args = cfg->worker_args ? cfg->worker_args : default_args;
    int nargs = 0;
    while (args[nargs]) nargs++;
    char **argv = calloc((size_t)nargs + 2, sizeof *argv);
    if (!argv) return pool_fail(SHOAL_ERR_NOMEM, "out of memory");
    argv[0] = (char *)(cfg->exe ? cfg->exe : "/proc/self/exe");
    for (int i = 0; i < nargs; i++) argv[i + 1] = args[i];
    shoal_launch_config lc = SHOAL_LAUNCH_CONFIG_INIT;
    lc.nranks = cfg->workers;
    lc.argv = argv;
    lc.env = cfg->env;
    lc.die_with_parent = cfg->orphans_die;
    lc.keep_going = 1; /* one worker's death is reported, not a reason to kill the rest */
    lc.master = p->master;
    lc.cluster_key = key;
    lc.group_id = group;
    lc.first_rank = 1;
    lc.world_size = cfg->workers + 1;
    int st = shoal_launch_start(&lc, &p->job);
    free(argv);
    if (st != SHOAL_OK) return pool_fail(st, "cannot start the workers: %s", shoal_launch_start_error());
    return SHOAL_OK;
}

/* A free loopback port for a local pool's store. */
static int free_port(uint16_t *port) {
    int fd = -1;
    char err[128];
    int st = shoal__tcp_listen("127.0.0.1", 0, &fd, port, err, sizeof err);
    if (st == SHOAL_OK) close(fd);
    return st;
}

int shoal_pool_start(shoal_pool **out, const shoal_pool_config *cfg) {
    if (!out || !cfg || cfg->struct_size != sizeof *cfg || cfg->version != SHOAL_POOL_CONFIG_VERSION)
        return pool_fail(SHOAL_ERR_INVALID, "pool: config not initialised with SHOAL_POOL_CONFIG_INIT");
    *out = NULL;
    if (cfg->workers < 1 || cfg->workers > 4095)
        return pool_fail(SHOAL_ERR_INVALID, "pool: %d workers is out of range", cfg->workers);
    shoal_pool *p = calloc(1, sizeof *p);
    if (!p) return pool_fail(SHOAL_ERR_NOMEM, "out of memory");
    p->n = cfg->workers;
    p->reported = calloc((size_t)p->n, 1);
    char key[65] = "", group[40] = "";
    const char *use_key = cfg->cluster_key;
    const char *use_group = NULL;
    int st = p->reported ? SHOAL_OK : pool_fail(SHOAL_ERR_NOMEM, "out of memory");
    if (st == SHOAL_OK && !cfg->listen) {
        uint16_t port = 0;
        if ((st = free_port(&port)) != SHOAL_OK) st = pool_fail(st, "pool: no free loopback port");
        snprintf(p->master, sizeof p->master, "127.0.0.1:%u", port);
        if (!use_key) {
            random_hex(key, 32);
            use_key = key;
        }
        snprintf(group, sizeof group, "pool-");
        random_hex(group + 5, 8);
        use_group = group;
        if (st == SHOAL_OK) st = spawn_local(p, cfg, use_key, use_group);
    } else if (st == SHOAL_OK) {
        snprintf(p->master, sizeof p->master, "%s", cfg->listen);
    }
    if (st == SHOAL_OK) {
        shoal_comm_config cc = SHOAL_COMM_CONFIG_INIT;
        cc.rank = 0;
        cc.world_size = p->n + 1;
        cc.master = p->master;
        if (use_key) {
            cc.key = use_key;
            cc.key_len = strlen(use_key);
        }
        cc.group_id = use_group;
        cc.init_timeout_s = cfg->join_timeout_s;
        cc.timeout_s = cfg->timeout_s;
        cc.heartbeat_interval_s = cfg->heartbeat_interval_s;
        cc.heartbeat_timeout_s = cfg->heartbeat_timeout_s;
        st = shoal_comm_init(&p->comm, &cc);
        if (st != SHOAL_OK) st = pool_fail(st, "pool: forming the group: %s", shoal_comm_init_error());
    }
    if (st == SHOAL_OK && (st = shoal_rpc_create(&p->rpc, p->comm, NULL)) != SHOAL_OK)
        st = pool_fail(st, "pool: %s", shoal_comm_last_error(p->comm));
    /* ready/acknowledge: every worker enters this barrier after registering its handlers */
    if (st == SHOAL_OK && (st = shoal_barrier(p->comm)) != SHOAL_OK)
        st = pool_fail(st, "pool: waiting for the workers to be ready: %s", shoal_comm_last_error(p->comm));
    if (st != SHOAL_OK) {
        shoal_rpc_free(p->rpc);
        if (p->comm) shoal_comm_abort(p->comm);
        shoal_comm_free(p->comm);
        shoal_launch_free(p->job); /* kills and reaps whatever was started */
        free(p->reported);
        free(p);
        return st;
    }
    *out = p;
    return SHOAL_OK;
}

shoal_comm *shoal_pool_comm(shoal_pool *p) { return p ? p->comm : NULL; }
shoal_rpc *shoal_pool_rpc(shoal_pool *p) { return p ? p->rpc : NULL; }
int shoal_pool_workers(const shoal_pool *p) { return p ? p->n : 0; }

int shoal_pool_ping(shoal_pool *p, double timeout_s, double *max_rtt_s) {
    if (!p) return SHOAL_ERR_INVALID;
    shoal_future **fs = calloc((size_t)p->n, sizeof *fs);
    int *silent = calloc((size_t)p->n, sizeof *silent);
    if (!fs || !silent) {
        free(fs);
        free(silent);
        return SHOAL_ERR_NOMEM;
    }
    double t0 = shoal__now(), slowest = 0;
    int first = SHOAL_OK, nsilent = 0;
    for (int w = 0; w < p->n; w++) {
        int st = shoal_rpc_call_async(p->rpc, w + 1, "shoal.ping", NULL, 0, timeout_s, &fs[w]);
        if (st != SHOAL_OK) fs[w] = NULL;
    }
    for (int w = 0; w < p->n; w++) {
        int st = fs[w] ? shoal_future_wait(fs[w], NULL, NULL) : SHOAL_ERR_INVALID;
        double rtt = shoal__now() - t0;
        if (st == SHOAL_OK && rtt > slowest) slowest = rtt;
        if (st != SHOAL_OK) {
            silent[nsilent++] = w + 1;
            if (first == SHOAL_OK) first = st;
        }
    }
    if (max_rtt_s) *max_rtt_s = slowest;
    free(fs);
    if (first != SHOAL_OK) {
        /* reported on the comm so callers read it where they read every other error */
        char list[256] = "";
        size_t used = 0;
        for (int i = 0; i < nsilent && used + 16 < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", i ? ", " : "", silent[i]);
        shoal__comm_fail(p->comm, first, silent, nsilent, "ping: no answer from rank%s %s (%s)",
                         nsilent == 1 ? "" : "s", list, shoal_status_str(first));
    }
    free(silent);
    return first;
}

int shoal_pool_reap(shoal_pool *p, shoal_worker_exit *exits, int max) {
    if (!p || !p->job) return 0;
    int st_job;
    shoal_launch_wait(p->job, 0, &st_job); /* reaps whoever has exited; never blocks */
    int n = 0;
    for (int w = 0; w < p->n && n < max; w++) {
        int st = shoal_launch_rank_status(p->job, w);
        if (st < 0 || p->reported[w]) continue;
        p->reported[w] = 1;
        int sig = shoal_launch_rank_signal(p->job, w);
        exits[n++] = (shoal_worker_exit){w + 1, (int)shoal_launch_pid(p->job, w), sig ? -1 : st, sig};
    }
    return n;
}

int shoal_pool_shutdown(shoal_pool *p, double grace_s, int *clean) {
    if (!p) return SHOAL_ERR_INVALID;
    if (grace_s < 0) grace_s = 5;
    shoal_future **fs = calloc((size_t)p->n, sizeof *fs);
    for (int w = 0; fs && w < p->n; w++)
        if (!shoal_comm_peer_failed(p->comm, w + 1) &&
            shoal_rpc_call_async(p->rpc, w + 1, "shoal.shutdown", NULL, 0, grace_s, &fs[w]) != SHOAL_OK)
            fs[w] = NULL;
    for (int w = 0; fs && w < p->n; w++)
        if (fs[w]) shoal_future_wait(fs[w], NULL, NULL);
    free(fs);
    shoal_rpc_free(p->rpc);
    shoal_comm_free(p->comm); /* orderly goodbye with every worker still there */
    int all_clean = 1;
    if (p->job) {
        int status = 0;
        if (shoal_launch_wait(p->job, grace_s, &status) != SHOAL_OK) {
            all_clean = 0;
            shoal_launch_terminate(p->job);
            shoal_launch_wait(p->job, grace_s + 2, &status);
        }
        for (int w = 0; w < p->n; w++)
            if (shoal_launch_rank_status(p->job, w) != 0) all_clean = 0;
        shoal_launch_free(p->job); /* SIGKILLs and reaps anything still there */
    }
    if (clean) *clean = all_clean;
    free(p->reported);
    free(p);
    return SHOAL_OK;
}
