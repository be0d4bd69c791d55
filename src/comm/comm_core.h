/* Internal state of the comm layer: the mesh (connections + progress engine, shared by a world
 * group and all its sub-groups), groups (shoal_comm: a view of the mesh with its own context id)
 * and requests.
 *
 * Locking: one mutex per mesh (mesh->mu) guards every queue, list and request state below.
 * Socket I/O is done by whichever thread holds the "progress token" (mesh->progressing): a
 * thread that waits for a request takes the token if it is free and drives epoll itself (so the
 * hot path has no thread hand-off, as in MPI); otherwise it sleeps on mesh->cv until the token
 * holder completes its request or gives the token up. */
#ifndef SHOAL_COMM_CORE_H
#define SHOAL_COMM_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "comm/coll/coll.h"
#include "comm/store.h"
#include "net/net.h"
#include "net/shm_ring.h"
#include "shoal/comm.h"

typedef enum { REQ_SEND = 1, REQ_RECV = 2, REQ_COLL = 3 } shoal__req_kind;
typedef enum { REQ_PENDING = 0, REQ_ACTIVE = 1, REQ_DONE = 2 } shoal__req_state;

typedef struct shoal__umsg shoal__umsg;

#define SHOAL__PREFIX_MAX 64

/* A sink takes every DATA frame of one context straight from the engine instead of the
 * matching queues (rpc uses them: calls arrive from anyone at any time, and their sizes are
 * checked against the rpc cap before any allocation). Both callbacks run with mesh->mu held
 * and must not block or take mu. */
typedef struct shoal__sink {
    uint32_t ctx;
    void *user;
    /* A frame of len bytes from world rank src begins: return a buffer of len bytes to read
     * it into (owned by the sink), or NULL to discard the payload. */
    uint8_t *(*begin)(void *user, int src, uint32_t tag, uint64_t len);
    /* The frame is complete (status SHOAL_OK) or lost (SHOAL_ERR_PEER_FAILED); buf is what
     * begin returned. */
    void (*done)(void *user, int src, uint32_t tag, uint8_t *buf, uint64_t len, int status);
    /* Optional: world rank peer was declared failed (so the sink can fail its own waiters). */
    void (*peer_lost)(void *user, int peer);
} shoal__sink;

#define SHOAL__MAX_SINKS 8

struct shoal_request {
    shoal__req_kind kind;
    shoal__req_state state;
    int status;
    shoal_comm *comm;
    struct shoal__mesh *mesh;
    int lane;
    uint32_t ctx;
    uint32_t tag;
    int any_tag;
    int peer;       /* comm rank, or SHOAL_ANY_SOURCE */
    int peer_world; /* world rank, or -1 for any */
    uint8_t *buf;   /* user buffer */
    size_t cap;     /* send: length; recv: capacity */
    int internal;   /* 1 for collective traffic: truncation is a protocol error */
    int cancel_requested;
    shoal_msg_info info; /* recv result */

    /* send progress: header, then prefix, then payload; `sent` bytes of all written so far */
    uint8_t hdr[SHOAL__FRAME_HDR_SIZE];
    uint8_t pre[SHOAL__PREFIX_MAX]; /* a small header of the layer above (rpc), sent before buf */
    size_t pre_len;
    size_t sent;
    uint8_t frame_type; /* 0 means SHOAL__FRAME_DATA */
    int owned;          /* send: the engine frees buf and the request when it completes */
    int ref;            /* send: goes as a DATA_REF (the peer reads buf itself); done at REF_DONE */
    uint32_t ref_id;    /* its id on the connection */
    double ref_since;   /* when its descriptor was written */
    int ref_pulled;     /* REF_PULL sent for it */

    /* recv progress when reading straight into buf */
    shoal__umsg *attached; /* unexpected message still arriving that this recv will take */

    /* list links: posted receives (mesh), send queue (conn) or collective queue (comm) */
    shoal_request *next, *prev;

    /* collective */
    shoal__coll_fn fn;
    void *args;
    uint32_t coll_tag;
    double deadline;
    char *err_text;  /* error detail captured on the collective thread (malloc'd) */
    int err_ranks[8];
    int err_nranks;
};

/* A message that arrived before its receive was posted. */
struct shoal__umsg {
    int src_world;
    uint32_t ctx, tag;
    uint64_t len, got;
    uint8_t *data;          /* len bytes (malloc'd), NULL when len == 0 */
    int complete;
    shoal_request *claimed; /* a receive matched it while it was still arriving */
    /* a DATA_REF not yet matched: the bytes are still in the sender (data is NULL) */
    int ref;
    int ref_lane;
    uint32_t ref_id;
    uint64_t ref_addr;
    shoal__umsg *next, *prev;
};

#define SHOAL__RBUF 65536

typedef struct shoal__conn {
    int fd; /* -1 once closed */
    int peer;
    int lane;
    int epoll_out; /* EPOLLOUT currently requested */
    int bye_received;
    char addr[96];
    /* send queue (FIFO of REQ_SEND) */
    shoal_request *sq_head, *sq_tail;
    /* receive state machine */
    uint8_t rbuf[SHOAL__RBUF]; /* staging for small frames: one read() takes many */
    size_t rpos, rlen;
    uint8_t hdr[SHOAL__FRAME_HDR_SIZE];
    size_t hdr_got;
    int in_payload;
    shoal__frame_hdr cur;
    uint64_t pay_got;
    shoal_request *cur_req; /* payload goes into this receive's buffer */
    shoal__umsg *cur_msg;   /* ...or into this unexpected message */
    const shoal__sink *cur_sink; /* ...or into this sink's buffer (cur_sink_buf, may be NULL) */
    uint8_t *cur_sink_buf;
    /* same-host transport: frames go through rings in a shared segment; the TCP socket stays
     * open only to carry doorbell bytes (wake a sleeping peer) and to notice the peer's death */
    int shm;
    shoal__ring tx, rx;
    void *shm_base; /* lane 0 only: the pair's segment, unmapped at close */
    size_t shm_len;
    /* single copy (process_vm_readv) between same-host peers, probed at setup (shm_setup.c) */
    int ref_tx;     /* the peer can read our memory: large sends may go as DATA_REF */
    int ref_rx;     /* we can read the peer's memory: DATA_REF frames are accepted */
    int peer_pid;   /* the peer's pid as this process sees it */
    shoal_request *ref_head, *ref_tail; /* DATA_REF sends written, waiting for REF_DONE */
    uint32_t ref_next_id;
    int in_ref_desc;                    /* the payload being read is a DATA_REF descriptor */
    uint8_t ref_desc[16];
} shoal__conn;

typedef struct shoal__mesh {
    int refs; /* comms using it (guarded by mu) */
    int rank, size;
    shoal__conn *conns; /* [size * 2]: conns[peer * 2 + lane]; own entries unused */
    int epfd, kickfd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int progressing;       /* a thread holds the progress token */
    int in_epoll;          /* ...and is blocked in epoll_wait (then a completion must kick it) */
    int token_waiters;     /* threads sleeping on cv */
    shoal_request *posted_head, *posted_tail;
    shoal__umsg *unexp_head, *unexp_tail;
    uint8_t *failed;       /* per world rank: 0 alive, 1 failed, 2 left (orderly) */
    atomic_uint failure_epoch;
    uint64_t max_message;
    int spin_us;
    shoal__store_client *store;
    shoal__store_server *server;
    uint8_t *key;
    size_t key_len;
    shoal__auth auth;
    shoal_comm *comms; /* list through next_in_mesh */
    shoal__sink sinks[SHOAL__MAX_SINKS];
    int nsinks;
    int nshm;       /* connections running over shared memory */
    uint64_t ref_min;   /* sends of at least this many bytes go as DATA_REF where allowed */
    int ref_out;        /* DATA_REF sends waiting for REF_DONE, over all connections */
    int coop;           /* DATA_REF copies are shared by sender and receiver (shm_coop.c) */
    uint64_t coop_helped; /* bytes this rank wrote into receivers' buffers (read by tests) */
    uint64_t direct_min; /* blocking all-reduce of at least this many bytes reads peers' buffers */
    uint64_t ref_probe; /* a random word peers read at setup to prove they can read us */
    void *group_area; /* every rank on this host: the shared area of small collectives */
    size_t group_len;
    int all_shm;    /* every peer is on shared memory: sockets matter only for doorbells */
    unsigned spins; /* poll rounds without sleeping, to space out epoll checks while spinning */
    uint64_t activity; /* bumped whenever bytes move: a busy mesh keeps its waiters spinning */
    int idle_drivers;  /* rpc handler threads free to drive the sockets (the monitor defers) */
    int local_ranks;    /* ranks of the world group on this host, this one included */
    int oversubscribed; /* more local ranks than cores: waits yield the core instead of spinning */
    /* health: heartbeats on the control lane, driven by the monitor thread (monitor.c) */
    double hb_interval, hb_timeout; /* seconds; interval 0 disables heartbeats */
    double *last_rx;                /* per world rank: when we last read a byte from it */
    double last_user_wait;          /* when a caller last entered a wait (monitor backs off) */
    pthread_t monitor;
    int monitor_started, monitor_stop;
    pthread_cond_t monitor_cv;
    char (*fail_why)[128];          /* per world rank: why it was declared failed */
    uint8_t *fail_reported;         /* per world rank: failure callbacks delivered */
} shoal__mesh;

struct shoal_comm {
    shoal__mesh *mesh;
    shoal_comm *parent;
    uint32_t ctx_id; /* p2p ctx = 2*id, collective ctx = 2*id + 1 */
    int rank, size;
    int *world_ranks; /* [size] comm rank -> world rank */
    int *w2c;         /* [mesh->size] world rank -> comm rank or -1 */
    atomic_uint coll_seq;
    uint64_t shm_seq; /* operations through the shared group area (shm_coll.c) */
    int shm_direct;   /* large all-reduce from peers' buffers (shm_direct.c): 0 not asked yet, 1 yes, -1 no */
    void *shm_scratch; /* its read buffers, kept between calls */
    double timeout_s;
    shoal__algo algo;
    shoal__coll_tuning tuning;
    atomic_int aborted;
    shoal_comm *next_in_mesh; /* every comm of the mesh, for abort propagation (mu) */
    void (*fail_cb)(void *user, int rank, const char *why); /* see shoal_comm_on_failure */
    void *fail_cb_user;
    /* collective thread for non-blocking collectives (lazily started), guarded by mesh->mu */
    pthread_t exec_thread;
    int exec_started, exec_stop;
    pthread_cond_t exec_cv;
    shoal_request *exec_head, *exec_tail;
};

/* ---- engine.c ---- */
int shoal__mesh_engine_init(shoal__mesh *m); /* epoll + kick fd; conns must be filled */
void shoal__mesh_engine_close(shoal__mesh *m);
/* Kicks the token holder out of epoll_wait (after queueing work it must see). */
void shoal__mesh_kick(shoal__mesh *m);
/* Queues a send (mu held); may write inline. Completes the request on failure. */
void shoal__engine_post_send(shoal__mesh *m, shoal_request *r);
/* A blocking send's fast path (mu held): a message to a same-host peer with nothing queued
 * before it, written into the ring whole, as post_send would, but without a request.
 * Returns 1 if it was sent, 0 if the caller must take the general path. */
int shoal__engine_send_inline(shoal__mesh *m, int lane, uint32_t ctx, uint32_t tag, const void *buf,
                              size_t len, int peer_world);
/* Posts a receive (mu held): matches unexpected messages first. */
void shoal__engine_post_recv(shoal__mesh *m, shoal_request *r);
/* Removes a pending request from its queue and completes it with status (mu held). */
void shoal__engine_cancel(shoal__mesh *m, shoal_request *r, int status);
/* Waits (mu held; may release it while polling) until r is done or deadline passes.
 * Returns SHOAL_OK when done, SHOAL_ERR_TIMEOUT otherwise. stop_check, when not NULL, is
 * evaluated under mu each round: a nonzero status it returns ends the wait early. */
int shoal__engine_wait(shoal__mesh *m, shoal_request *r, double deadline,
                       int (*stop_check)(void *arg), void *arg);
/* Completes request r with status (mu held) and wakes waiters. */
void shoal__req_complete(shoal__mesh *m, shoal_request *r, int status);
/* Fails every pending request of comm c (and sub-groups sharing the mesh when aborted). */
void shoal__engine_fail_comm(shoal__mesh *m, shoal_comm *c, int status);
/* Orderly close: BYE on every connection, drain until each peer's BYE or EOF or deadline. */
void shoal__engine_goodbye(shoal__mesh *m, double deadline);
/* One non-blocking poll if nobody holds the token (mu held): lets shoal_test make progress. */
void shoal__engine_poll_nowait(shoal__mesh *m);
/* Registers a sink (mu held). SHOAL_ERR_INVALID if the table is full or ctx is taken. */
int shoal__engine_add_sink(shoal__mesh *m, const shoal__sink *s);
void shoal__engine_remove_sink(shoal__mesh *m, uint32_t ctx);
/* Declares a peer failed (mu held): closes its lanes and fails what depends on it. */
void shoal__engine_peer_lost(shoal__mesh *m, int peer, int orderly, const char *why);
/* One round of polling by the token holder (mu held on entry and exit). */
void shoal__engine_poll_once(shoal__mesh *m, int timeout_ms);
/* Queues an engine-owned frame of `type` with no payload to peer on lane (heartbeats); skipped
 * when that lane already has queued data (a beat would add nothing). */
void shoal__engine_send_control(shoal__mesh *m, int peer, int lane, uint8_t type);

/* ---- monitor.c: the per-mesh background thread ---- */
int shoal__monitor_start(shoal__mesh *m);
void shoal__monitor_stop(shoal__mesh *m);

/* ---- error.c ---- */
void shoal__comm_clear_error(const shoal_comm *c);
int shoal__init_fail(int status, const int *ranks, int nranks, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- comm.c ---- */
int shoal__comm_is_aborted(const shoal_comm *c);
/* Status a request on c should fail with right now, because of abort or a failed member it
 * depends on (peer_world, or any member when -1); SHOAL_OK if none. mu held. */
int shoal__comm_health(const shoal_comm *c, int peer_world);
void shoal__mesh_unref(shoal__mesh *m);

/* ---- mesh.c ---- */
typedef struct shoal__resolved_config {
    int rank, size;
    char master_host[SHOAL__HOST_MAX];
    uint16_t master_port;
    char bind_host[SHOAL__HOST_MAX];
    uint8_t *key;
    size_t key_len;
    char group[320];
    int insecure;
    double timeout_s, init_timeout_s;
    uint64_t max_message;
    shoal__algo algo;
    shoal__coll_tuning tuning;
    int spin_us;
    double hb_interval, hb_timeout;
    int transport;        /* 0 auto, 1 tcp only, 2 shm for every peer */
    char host_id[256];    /* peers with the same id share memory */
    uint64_t shm_ring;    /* bytes per data-lane ring */
    int shm_cma;          /* single copy with process_vm_readv where the system allows it */
    uint64_t shm_cma_min; /* from this message size on */
    int shm_coop;         /* senders help copy their large messages (shm_coop.c) */
    uint64_t shm_direct_min; /* all-reduce from peers' buffers from this size on */
} shoal__resolved_config;

int shoal__config_resolve(const shoal_comm_config *cfg, shoal__resolved_config *out);
void shoal__config_release(shoal__resolved_config *rc);
/* Rendezvous and full mesh. On success *out is ready (engine and monitor started). */
int shoal__mesh_create(shoal__resolved_config *rc, shoal__mesh **out);
/* Stops the monitor, closes every socket, the store and its server, frees m. */
void shoal__mesh_destroy(shoal__mesh *m);
void shoal__mesh_free_arrays(shoal__mesh *m);

/* ---- shm_setup.c: the same-host transport ---- */
/* Before the mesh connects: this rank's host id in the store, and its local listener. */
int shoal__shm_prepare(shoal__mesh *m, shoal__resolved_config *rc, double deadline, int *lfd);
/* After the TCP mesh is up: shared segments with every same-host peer (mu not needed: the
 * engine has not started). lfd is closed. */
int shoal__shm_connect(shoal__mesh *m, shoal__resolved_config *rc, double deadline, int lfd);
/* Copies len bytes at addr in process pid into dst (process_vm_readv: one copy, by this
 * process). 0, or the errno of the failure (ESRCH: gone; EFAULT: no such memory; 0 is never
 * returned for a short copy: that is EFAULT too). */
int shoal__peer_read(int pid, void *dst, uint64_t addr, size_t len);
/* The other way: len bytes from src into addr in process pid (process_vm_writev). */
int shoal__peer_write(int pid, const void *src, uint64_t addr, size_t len);

/* ---- shm_coop.c: large single-copy messages copied by both sides at once ---- */
/* Receiver (mu held): copies the DATA_REF `id` of c's peer (len bytes at src there) into dst,
 * sharing the work with the sender when it is waiting. 0, or the errno of the failure. Never
 * returns while the sender may still be writing into dst. */
int shoal__coop_read(shoal__mesh *m, shoal__conn *c, uint32_t id, uint64_t src, uint8_t *dst, uint64_t len);
/* Sender (mu held, while DATA_REF sends wait): takes chunks of any copy job a receiver has
 * published for one of them. */
void shoal__coop_help(shoal__mesh *m);
/* Writes a doorbell byte to peer's control socket: it has new bytes or free space. */
void shoal__shm_doorbell(shoal__mesh *m, int peer);


#endif
