/* Per-thread error detail: the text and ranks of the calling thread's last failed call, tagged
 * with the comm it was made on (so a thread using two groups reads each group's own error). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "comm/comm_core.h"

#define ERR_RANKS_MAX 64

typedef struct err_slot {
    const shoal_comm *comm;
    char text[512];
    int ranks[ERR_RANKS_MAX];
    int nranks; /* how many there were (may exceed ERR_RANKS_MAX) */
} err_slot;

static _Thread_local err_slot comm_err;
static _Thread_local err_slot init_err;

static void fill(err_slot *s, const int *ranks, int nranks, const char *fmt, va_list ap) {
    vsnprintf(s->text, sizeof s->text, fmt, ap);
    s->nranks = nranks > 0 ? nranks : 0;
    for (int i = 0; i < nranks && i < ERR_RANKS_MAX; i++) s->ranks[i] = ranks[i];
}

int shoal__comm_fail(const shoal_comm *c, int status, const int *ranks, int nranks,
                     const char *fmt, ...) {
    comm_err.comm = c;
    va_list ap;
    va_start(ap, fmt);
    fill(&comm_err, ranks, nranks, fmt, ap);
    va_end(ap);
    return status;
}

void shoal__comm_clear_error(const shoal_comm *c) {
    if (comm_err.comm == c) {
        comm_err.text[0] = 0;
        comm_err.nranks = 0;
    }
}

int shoal__init_fail(int status, const int *ranks, int nranks, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fill(&init_err, ranks, nranks, fmt, ap);
    va_end(ap);
    return status;
}

const char *shoal_comm_init_error(void) { return init_err.text; }

const char *shoal_comm_last_error(const shoal_comm *c) {
    return (c && comm_err.comm == c) ? comm_err.text : "";
}

int shoal_comm_error_ranks(const shoal_comm *c, int *ranks, int max) {
    if (!c || comm_err.comm != c) return 0;
    for (int i = 0; ranks && i < max && i < comm_err.nranks && i < ERR_RANKS_MAX; i++)
        ranks[i] = comm_err.ranks[i];
    return comm_err.nranks;
}
