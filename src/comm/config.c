/* Resolves a group's configuration: explicit fields of shoal_comm_config first, then SHOAL_*
 * settings, then the variables other launchers set (torchrun, Open MPI, PMI, Slurm), so a
 * program starts unchanged under any of them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_core.h"

#define KEY_FILE_MAX 4096

/* First variable of names[] that is set, parsed as a non-negative int; -1 if none is set;
 * -2 (with err) if one is set but malformed. */
static int env_int(const char *const *names, const char **which, char *err, size_t cap) {
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (!v || !*v) continue;
        char *end = NULL;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || *end || x < 0 || x > 1 << 24) {
            shoal__errf(err, cap, "%s=%s is not a valid non-negative integer", names[i], v);
            return -2;
        }
        *which = names[i];
        return (int)x;
    }
    return -1;
}

static int read_key_file(const char *path, shoal__resolved_config *rc) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return shoal__init_fail(SHOAL_ERR_IO, NULL, 0, "cannot open cluster key file %s: %s",
                                path, strerror(errno));
    uint8_t *buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return shoal__init_fail(SHOAL_ERR_NOMEM, NULL, 0, "out of memory reading key file");
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    fclose(f);
    if (n > KEY_FILE_MAX) {
        free(buf);
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "cluster key file %s is larger than %d bytes", path, KEY_FILE_MAX);
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--; /* editors add newlines */
    if (n == 0) {
        free(buf);
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "cluster key file %s is empty", path);
    }
    rc->key = buf;
    rc->key_len = n;
    return SHOAL_OK;
}

static int resolve_key(const shoal_comm_config *cfg, shoal__resolved_config *rc) {
    const void *src = NULL;
    size_t len = 0;
    if (cfg && cfg->key) {
        src = cfg->key;
        len = cfg->key_len;
    } else {
        const char *k = shoal__setting_str("cluster_key");
        if (*k) {
            src = k;
            len = strlen(k);
        } else {
            const char *path = shoal__setting_str("cluster_key_file");
            if (*path) return read_key_file(path, rc);
        }
    }
    if (len > KEY_FILE_MAX)
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "cluster key longer than %d bytes",
                                KEY_FILE_MAX);
    rc->key = malloc(len ? len : 1);
    if (!rc->key) return shoal__init_fail(SHOAL_ERR_NOMEM, NULL, 0, "out of memory");
    if (len) memcpy(rc->key, src, len);
    rc->key_len = len;
    return SHOAL_OK;
}

static int resolve_identity(const shoal_comm_config *cfg, shoal__resolved_config *rc) {
    static const char *const rank_vars[] = {"SHOAL_RANK", "RANK", "OMPI_COMM_WORLD_RANK",
                                            "PMI_RANK", "SLURM_PROCID", NULL};
    static const char *const size_vars[] = {"SHOAL_WORLD_SIZE", "WORLD_SIZE",
                                            "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS",
                                            NULL};
    char err[256] = "";
    const char *which = "rank";
    rc->rank = (cfg && cfg->rank >= 0) ? cfg->rank : env_int(rank_vars, &which, err, sizeof err);
    if (rc->rank == -2) return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "%s", err);
    rc->size = (cfg && cfg->world_size >= 0) ? cfg->world_size
                                              : env_int(size_vars, &which, err, sizeof err);
    if (rc->size == -2) return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "%s", err);
    if (rc->rank < 0)
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "no rank given: set SHOAL_RANK (or start under shoal launch, "
                                "mpirun, torchrun or srun)");
    if (rc->size <= 0)
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "no world size given: set SHOAL_WORLD_SIZE (or start under shoal "
                                "launch, mpirun, torchrun or srun)");
    if (rc->rank >= rc->size)
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "rank %d is out of range for world size %d",
                                rc->rank, rc->size);
    return SHOAL_OK;
}

static int resolve_master(const shoal_comm_config *cfg, shoal__resolved_config *rc) {
    char err[256] = "";
    const char *m = (cfg && cfg->master) ? cfg->master : shoal__setting_str("master");
    if (*m) {
        if (shoal__addr_parse(m, rc->master_host, sizeof rc->master_host, &rc->master_port, err,
                              sizeof err) != SHOAL_OK)
            return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "master address '%s': %s", m, err);
        return SHOAL_OK;
    }
    const char *addr = getenv("MASTER_ADDR"), *port = getenv("MASTER_PORT");
    if (addr && *addr) { /* torchrun */
        long p = 29500;  /* torchrun's default port */
        if (port && *port) {
            char *end = NULL;
            p = strtol(port, &end, 10);
            if (*end || p <= 0 || p > 65535)
                return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "MASTER_PORT=%s is not a port",
                                        port);
        }
        snprintf(rc->master_host, sizeof rc->master_host, "%s", addr);
        rc->master_port = (uint16_t)p;
        return SHOAL_OK;
    }
    if (rc->size == 1) { /* a group of one needs no rendezvous peer: any free loopback port */
        snprintf(rc->master_host, sizeof rc->master_host, "127.0.0.1");
        rc->master_port = 0;
        return SHOAL_OK;
    }
    return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                            "no rendezvous address: set SHOAL_MASTER=host:port (or MASTER_ADDR "
                            "and MASTER_PORT)");
}

static int resolve_tuning(const shoal_comm_config *cfg, shoal__resolved_config *rc) {
    char err[256] = "";
    int st;
    double d;
    uint64_t b;
    long long ll;
#define GET(call, dst, conv)                                                         \
    do {                                                                             \
        st = (call);                                                                 \
        if (st == SHOAL_OK) dst = conv;                                              \
        else if (st != SHOAL_ERR_NOT_FOUND)                                          \
            return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "%s", err);          \
    } while (0)
    rc->timeout_s = 300;
    rc->init_timeout_s = 120;
    rc->max_message = 1ull << 30;
    rc->tuning.ring_threshold = 64 << 10;
    rc->tuning.chunk = 0; /* 0: chosen per transport when the mesh is up (comm.c) */
    rc->spin_us = 50;
    rc->insecure = 0;
    rc->hb_interval = 1;
    rc->hb_timeout = 5;
    GET(shoal__setting_double("heartbeat_interval", &d, err, sizeof err), rc->hb_interval, d);
    GET(shoal__setting_double("heartbeat_timeout", &d, err, sizeof err), rc->hb_timeout, d);
    GET(shoal__setting_double("timeout", &d, err, sizeof err), rc->timeout_s, d);
    GET(shoal__setting_double("init_timeout", &d, err, sizeof err), rc->init_timeout_s, d);
    GET(shoal__setting_bytes("max_message", &b, err, sizeof err), rc->max_message, b);
    GET(shoal__setting_bytes("ring_threshold", &b, err, sizeof err), rc->tuning.ring_threshold, b);
    GET(shoal__setting_bytes("chunk", &b, err, sizeof err), rc->tuning.chunk, b);
    GET(shoal__setting_int("spin_us", &ll, err, sizeof err), rc->spin_us, (int)ll);
    int ins = 0;
    GET(shoal__setting_bool("insecure", &ins, err, sizeof err), rc->insecure, ins);
    rc->shm_ring = 256 << 10; /* small enough to stay in cache: measured faster than 4M */
    GET(shoal__setting_bytes("shm_ring", &b, err, sizeof err), rc->shm_ring, b);
    rc->shm_cma = 1;
    GET(shoal__setting_bool("shm_cma", &ins, err, sizeof err), rc->shm_cma, ins);
    rc->shm_cma_min = 128 << 10; /* below it the rings measured as fast (pingpong, 2 ranks, with coop) */
    GET(shoal__setting_bytes("shm_cma_min", &b, err, sizeof err), rc->shm_cma_min, b);
    rc->shm_coop = 1;
    GET(shoal__setting_bool("shm_coop", &ins, err, sizeof err), rc->shm_coop, ins);
    rc->shm_direct_min = 32 << 10; /* faster than the group area and the rings from here (2-8 ranks) */
    GET(shoal__setting_bytes("shm_direct_min", &b, err, sizeof err), rc->shm_direct_min, b);
#undef GET
    if (cfg && cfg->insecure >= 0) rc->insecure = cfg->insecure;
    if (cfg && cfg->timeout_s >= 0) rc->timeout_s = cfg->timeout_s;
    if (cfg && cfg->init_timeout_s >= 0) rc->init_timeout_s = cfg->init_timeout_s;
    if (cfg && cfg->max_message) rc->max_message = cfg->max_message;
    rc->tuning.max_message = rc->max_message; /* collectives split messages to fit it */
    if (cfg && cfg->heartbeat_interval_s >= 0) rc->hb_interval = cfg->heartbeat_interval_s;
    if (cfg && cfg->heartbeat_timeout_s >= 0) rc->hb_timeout = cfg->heartbeat_timeout_s;
    if (rc->hb_interval < 0) rc->hb_interval = 0;
    if (rc->hb_interval > 0 && rc->hb_timeout <= rc->hb_interval)
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "heartbeat timeout (%g s) must exceed the interval (%g s)",
                                rc->hb_timeout, rc->hb_interval);
    if (rc->tuning.chunk && rc->tuning.chunk < 1024) rc->tuning.chunk = 1024;
    if (rc->spin_us < 0) rc->spin_us = 0;
    if (rc->timeout_s <= 0 || rc->init_timeout_s <= 0)
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "timeouts must be positive");
    if (rc->shm_ring < 4096 || rc->shm_ring > (1ull << 30) || (rc->shm_ring & (rc->shm_ring - 1)))
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "SHOAL_SHM_RING must be a power of two from 4K to 1G");
    const char *tp = shoal__setting_str("transport");
    if (!*tp || !strcmp(tp, "auto")) rc->transport = 0;
    else if (!strcmp(tp, "tcp")) rc->transport = 1;
    else if (!strcmp(tp, "shm")) rc->transport = 2;
    else
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0, "SHOAL_TRANSPORT=%s: use auto, tcp or shm", tp);
    const char *algo = (cfg && cfg->algo) ? cfg->algo : shoal__setting_str("algo");
    if (!*algo || !strcmp(algo, "auto")) rc->algo = SHOAL__ALGO_AUTO;
    else if (!strcmp(algo, "ring")) rc->algo = SHOAL__ALGO_RING;
    else if (!strcmp(algo, "rd")) rc->algo = SHOAL__ALGO_RD;
    else
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "unknown collective algorithm '%s' (auto, ring or rd)", algo);
    return SHOAL_OK;
}

int shoal__config_resolve(const shoal_comm_config *cfg, shoal__resolved_config *rc) {
    memset(rc, 0, sizeof *rc);
    if (cfg && (cfg->struct_size < sizeof(uint32_t) * 2 || cfg->version != SHOAL_COMM_CONFIG_VERSION ||
                cfg->struct_size != sizeof(shoal_comm_config)))
        return shoal__init_fail(SHOAL_ERR_INVALID, NULL, 0,
                                "shoal_comm_config not initialised with SHOAL_COMM_CONFIG_INIT "
                                "(size %u, version %u)", cfg->struct_size, cfg->version);
    int st = resolve_identity(cfg, rc);
    if (st == SHOAL_OK) st = resolve_master(cfg, rc);
    if (st == SHOAL_OK) st = resolve_tuning(cfg, rc);
    if (st == SHOAL_OK) st = resolve_key(cfg, rc);
    if (st != SHOAL_OK) {
        shoal__config_release(rc);
        return st;
    }
    const char *g = (cfg && cfg->group_id) ? cfg->group_id : shoal__setting_str("group_id");
    if (*g) snprintf(rc->group, sizeof rc->group, "%s", g);
    else snprintf(rc->group, sizeof rc->group, "master:%s:%u", rc->master_host, rc->master_port);
    snprintf(rc->host_id, sizeof rc->host_id, "%s", shoal__setting_str("host_id"));
    const char *b = (cfg && cfg->bind_host) ? cfg->bind_host : shoal__setting_str("bind");
    snprintf(rc->bind_host, sizeof rc->bind_host, "%s", b);
    return SHOAL_OK;
}

void shoal__config_release(shoal__resolved_config *rc) {
    if (rc->key) {
        memset(rc->key, 0, rc->key_len); /* do not leave the secret in freed memory */
        free(rc->key);
    }
    rc->key = NULL;
    rc->key_len = 0;
}
