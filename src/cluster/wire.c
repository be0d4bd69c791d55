/* Bounded little-endian encoding for the cluster protocol (see wire.h, docs/cluster.md). */
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "common/common.h"

void cl_w_bytes(cl_wbuf *w, const void *src, size_t n) {
    if (w->err) return;
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap : 256;
        while (nc < w->len + n) nc *= 2;
        uint8_t *np = realloc(w->p, nc);
        if (!np) {
            w->err = 1;
            return;
        }
        w->p = np;
        w->cap = nc;
    }
    if (n) memcpy(w->p + w->len, src, n);
    w->len += n;
}

void cl_w_u32(cl_wbuf *w, uint32_t v) {
    uint8_t b[4];
    shoal__put_u32(b, v);
    cl_w_bytes(w, b, 4);
}
void cl_w_i32(cl_wbuf *w, int32_t v) { cl_w_u32(w, (uint32_t)v); }
void cl_w_u64(cl_wbuf *w, uint64_t v) {
    uint8_t b[8];
    shoal__put_u64(b, v);
    cl_w_bytes(w, b, 8);
}
void cl_w_f32(cl_wbuf *w, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    cl_w_u32(w, u);
}
void cl_w_f64(cl_wbuf *w, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    cl_w_u64(w, u);
}
void cl_w_str(cl_wbuf *w, const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n > 65535) n = 65535;
    uint8_t b[2];
    shoal__put_u16(b, (uint16_t)n);
    cl_w_bytes(w, b, 2);
    cl_w_bytes(w, s, n);
}

const uint8_t *cl_r_bytes(cl_rbuf *r, size_t n) {
    if (r->err || n > r->len - r->off) {
        r->err = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}
uint32_t cl_r_u32(cl_rbuf *r) {
    const uint8_t *p = cl_r_bytes(r, 4);
    return p ? shoal__get_u32(p) : 0;
}
int32_t cl_r_i32(cl_rbuf *r) { return (int32_t)cl_r_u32(r); }
uint64_t cl_r_u64(cl_rbuf *r) {
    const uint8_t *p = cl_r_bytes(r, 8);
    return p ? shoal__get_u64(p) : 0;
}
float cl_r_f32(cl_rbuf *r) {
    uint32_t u = cl_r_u32(r);
    float v;
    memcpy(&v, &u, 4);
    return v;
}
double cl_r_f64(cl_rbuf *r) {
    uint64_t u = cl_r_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
void cl_r_str(cl_rbuf *r, char *out, size_t cap, size_t max) {
    out[0] = 0;
    const uint8_t *lp = cl_r_bytes(r, 2);
    if (!lp) return;
    size_t n = shoal__get_u16(lp);
    if (n > max || n + 1 > cap) {
        r->err = 1;
        return;
    }
    const uint8_t *p = cl_r_bytes(r, n);
    if (!p) return;
    if (memchr(p, 0, n)) {
        r->err = 1;
        return;
    }
    memcpy(out, p, n);
    out[n] = 0;
}

int cl_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > CL_MAX_NAME || !strcmp(name, ".") || !strcmp(name, "..")) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch == '/' || ch < 0x20 || ch == 0x7f) return 0;
    }
    return 1;
}

void cl_w_sampler(cl_wbuf *w, const shoal_sampler_params *p) {
    cl_w_f32(w, p->temperature);
    cl_w_i32(w, p->top_k);
    cl_w_f32(w, p->top_p);
    cl_w_f32(w, p->min_p);
    cl_w_f32(w, p->repeat_penalty);
    cl_w_i32(w, p->repeat_last_n);
    cl_w_u64(w, p->seed);
}

void cl_r_sampler(cl_rbuf *r, shoal_sampler_params *p) {
    shoal_sampler_params d = SHOAL_SAMPLER_PARAMS_INIT;
    *p = d;
    p->temperature = cl_r_f32(r);
    p->top_k = cl_r_i32(r);
    p->top_p = cl_r_f32(r);
    p->min_p = cl_r_f32(r);
    p->repeat_penalty = cl_r_f32(r);
    p->repeat_last_n = cl_r_i32(r);
    p->seed = cl_r_u64(r);
}

void cl_pipe_encode(const cl_pipe_hdr *h, uint8_t out[CL_PIPE_HDR]) {
    uint64_t c, d;
    memcpy(&c, &h->compute_s, 8);
    memcpy(&d, &h->send_s, 8);
    shoal__put_u32(out, h->magic);
    shoal__put_u32(out + 4, h->op);
    shoal__put_u32(out + 8, h->gen);
    shoal__put_u32(out + 12, h->step);
    shoal__put_u32(out + 16, (uint32_t)h->pos);
    shoal__put_u32(out + 20, (uint32_t)h->n);
    shoal__put_u32(out + 24, h->flags);
    shoal__put_u32(out + 28, (uint32_t)h->status);
    shoal__put_u64(out + 32, h->payload);
    shoal__put_u64(out + 40, c);
    shoal__put_u64(out + 48, d);
}

int cl_pipe_decode(const uint8_t *p, size_t len, cl_pipe_hdr *h) {
    if (len != CL_PIPE_HDR) return SHOAL_ERR_PROTOCOL;
    h->magic = shoal__get_u32(p);
    h->op = shoal__get_u32(p + 4);
    h->gen = shoal__get_u32(p + 8);
    h->step = shoal__get_u32(p + 12);
    h->pos = (int32_t)shoal__get_u32(p + 16);
    h->n = (int32_t)shoal__get_u32(p + 20);
    h->flags = shoal__get_u32(p + 24);
    h->status = (int32_t)shoal__get_u32(p + 28);
    h->payload = shoal__get_u64(p + 32);
    uint64_t c = shoal__get_u64(p + 40), d = shoal__get_u64(p + 48);
    memcpy(&h->compute_s, &c, 8);
    memcpy(&h->send_s, &d, 8);
    if ((h->magic != CL_PIPE_MAGIC && h->magic != CL_RESULT_MAGIC) || h->op < CL_OP_BEGIN || h->op > CL_OP_STOP ||
        h->status > 0 || h->status < -1000)
        return SHOAL_ERR_PROTOCOL;
    return SHOAL_OK;
}

int cl_pipe_send(shoal_comm *comm, int dst, int tag, cl_pipe_hdr *h, const void *payload, size_t len) {
    uint8_t hb[CL_PIPE_HDR];
    h->payload = len;
    cl_pipe_encode(h, hb);
    int rc = shoal_send(comm, hb, sizeof hb, dst, tag);
    if (rc == SHOAL_OK && len) rc = shoal_send(comm, payload, len, dst, tag);
    return rc;
}
