/* shoal: version and status codes shared by every subsystem.
 *
 * Every function in libshoal returns an int status: SHOAL_OK (0) on success, a negative
 * shoal_status on error. Codes are never renumbered; retired ones stay reserved. */
#ifndef SHOAL_SHOAL_H
#define SHOAL_SHOAL_H

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_VERSION_MAJOR 0
#define SHOAL_VERSION_MINOR 1
#define SHOAL_VERSION_PATCH 0

typedef enum shoal_status {
    SHOAL_OK = 0,
    SHOAL_ERR_INVALID = -1,     /* bad argument from the caller: count, type, rank out of range */
    SHOAL_ERR_NOMEM = -2,       /* an allocation failed */
    SHOAL_ERR_SYSTEM = -3,      /* a local OS call failed (socket, thread, file) */
    SHOAL_ERR_TIMEOUT = -4,     /* the deadline passed; last_error names the silent ranks */
    SHOAL_ERR_PEER_FAILED = -5, /* a peer's connection dropped or it was declared dead */
    SHOAL_ERR_PROTOCOL = -6,    /* a peer sent bytes that break the wire protocol */
    SHOAL_ERR_AUTH = -7,        /* handshake refused: wrong key, version, group or rank */
    SHOAL_ERR_CANCELLED = -8,   /* the request was cancelled before it completed */
    SHOAL_ERR_ABORTED = -9,     /* the group was aborted (shoal_comm_abort) */
    SHOAL_ERR_TRUNCATED = -10,  /* the message was larger than the receive buffer */
    SHOAL_ERR_NOT_FOUND = -11,  /* a key, file or name does not exist */
    SHOAL_ERR_UNSUPPORTED = -12,/* the build or platform lacks this feature */
    SHOAL_ERR_REMOTE = -13,     /* a remote handler reported an error (rpc) */
    SHOAL_ERR_IO = -14,         /* reading or writing a file failed */
    SHOAL_ERR_FORMAT = -15,     /* a file's contents are malformed */
} shoal_status;

/* A short fixed English description of a status ("timeout", "peer failed", ...).
 * Never NULL; unknown codes give "unknown status". */
const char *shoal_status_str(int status);

/* "MAJOR.MINOR.PATCH" of the linked library. */
const char *shoal_version(void);

#ifdef __cplusplus
}
#endif
#endif
