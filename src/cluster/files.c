/* A model's file set: listing, SHA-256 content hash, comparison with a copy elsewhere, and the
 * cache location (see cluster_int.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "common/common.h"
#include "shoal/settings.h"

static int add_file(cl_files *fs, const char *name, uint64_t size) {
    if (fs->n >= CL_MAX_FILES) return SHOAL_ERR_INVALID;
    cl_file *nf = realloc(fs->f, (size_t)(fs->n + 1) * sizeof *nf);
    if (!nf) return SHOAL_ERR_NOMEM;
    fs->f = nf;
    memset(&nf[fs->n], 0, sizeof nf[fs->n]);
    snprintf(nf[fs->n].name, sizeof nf[fs->n].name, "%s", name);
    nf[fs->n].size = size;
    fs->n++;
    return SHOAL_OK;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const cl_file *)a)->name, ((const cl_file *)b)->name);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int shoal__cl_files_list(const char *path, cl_files *fs, char *err, size_t errcap) {
    memset(fs, 0, sizeof *fs);
    struct stat st;
    if (!path || stat(path, &st) != 0) {
        shoal__errf(err, errcap, "%s: %s", path ? path : "(null)", strerror(errno));
        return SHOAL_ERR_NOT_FOUND;
    }
    if (strlen(path) >= sizeof fs->root) {
        shoal__errf(err, errcap, "%s: path too long", path);
        return SHOAL_ERR_INVALID;
    }
    int rc = SHOAL_OK;
    if (S_ISDIR(st.st_mode)) {
        fs->is_dir = 1;
        snprintf(fs->root, sizeof fs->root, "%s", path);
        DIR *d = opendir(path);
        if (!d) {
            shoal__errf(err, errcap, "%s: %s", path, strerror(errno));
            return SHOAL_ERR_IO;
        }
        struct dirent *de;
        while (rc == SHOAL_OK && (de = readdir(d))) {
            const char *n = de->d_name;
            if (!(strcmp(n, "config.json") == 0 || strcmp(n, "model.safetensors.index.json") == 0 ||
                  ends_with(n, ".safetensors")))
                continue;
            char p[CL_MAX_PATH + CL_MAX_NAME + 2];
            struct stat fst;
            snprintf(p, sizeof p, "%s/%s", path, n);
            if (!cl_name_ok(n) || stat(p, &fst) != 0 || !S_ISREG(fst.st_mode)) continue;
            rc = add_file(fs, n, (uint64_t)fst.st_size);
        }
        closedir(d);
        if (rc == SHOAL_OK && fs->n == 0) {
            shoal__errf(err, errcap, "%s: no config.json or *.safetensors files", path);
            rc = SHOAL_ERR_NOT_FOUND;
        }
        if (rc == SHOAL_OK) qsort(fs->f, (size_t)fs->n, sizeof *fs->f, by_name);
    } else if (S_ISREG(st.st_mode)) {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (!cl_name_ok(base)) {
            shoal__errf(err, errcap, "%s: the file name cannot be sent to a worker", path);
            return SHOAL_ERR_INVALID;
        }
        if (slash == path) snprintf(fs->root, sizeof fs->root, "/");
        else if (slash) snprintf(fs->root, sizeof fs->root, "%.*s", (int)(slash - path), path);
        else snprintf(fs->root, sizeof fs->root, ".");
        snprintf(fs->entry, sizeof fs->entry, "%s", base);
        rc = add_file(fs, base, (uint64_t)st.st_size);
    } else {
        shoal__errf(err, errcap, "%s: neither a file nor a folder", path);
        return SHOAL_ERR_INVALID;
    }
    if (rc) {
        if (!err[0]) shoal__errf(err, errcap, "%s: %s", path, shoal_status_str(rc));
        shoal__cl_files_free(fs);
    }
    return rc;
}

void shoal__cl_files_free(cl_files *fs) {
    if (!fs) return;
    free(fs->f);
    fs->f = NULL;
    fs->n = 0;
}

int shoal__cl_files_hash(cl_files *fs, char *err, size_t errcap) {
    size_t cap = 4u << 20;
    uint8_t *buf = malloc(cap);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = buf && ctx ? SHOAL_OK : SHOAL_ERR_NOMEM;
    for (int i = 0; rc == SHOAL_OK && i < fs->n; i++) {
        char p[CL_MAX_PATH + CL_MAX_NAME + 2];
        snprintf(p, sizeof p, "%s/%s", fs->root, fs->f[i].name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            shoal__errf(err, errcap, "%s: %s", p, strerror(errno));
            rc = SHOAL_ERR_IO;
            break;
        }
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        uint64_t got = 0;
        for (;;) {
            ssize_t r = read(fd, buf, cap);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) {
                shoal__errf(err, errcap, "%s: %s", p, strerror(errno));
                rc = SHOAL_ERR_IO;
                break;
            }
            if (r == 0) break;
            EVP_DigestUpdate(ctx, buf, (size_t)r);
            got += (uint64_t)r;
        }
        close(fd);
        if (rc == SHOAL_OK && got != fs->f[i].size) {
            shoal__errf(err, errcap, "%s changed while it was hashed (%llu bytes, expected %llu)", p,
                        (unsigned long long)got, (unsigned long long)fs->f[i].size);
            rc = SHOAL_ERR_IO;
        }
        unsigned int len = 32;
        if (rc == SHOAL_OK) EVP_DigestFinal_ex(ctx, fs->f[i].sha, &len);
    }
    if (rc == SHOAL_OK) {
        shoal__cl_combined_hash(fs->f, fs->n, fs->hash);
        fs->hashed = 1;
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rc;
}

void shoal__cl_combined_hash(const cl_file *f, int n, uint8_t out[32]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 32;
    if (!ctx) {
        memset(out, 0, 32);
        return;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "shoal-model-v1\n", 15);
    for (int i = 0; i < n; i++) {
        uint8_t sz[8];
        shoal__put_u64(sz, f[i].size);
        EVP_DigestUpdate(ctx, f[i].name, strlen(f[i].name) + 1);
        EVP_DigestUpdate(ctx, sz, 8);
        EVP_DigestUpdate(ctx, f[i].sha, 32);
    }
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

void shoal__cl_hex(const uint8_t h[32], char out[65]) {
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", h[i]);
    out[64] = 0;
}

int shoal__cl_files_match(const char *path, const cl_files *fs) {
    struct stat st;
    if (!path || !*path || stat(path, &st) != 0) return 0;
    if (!fs->is_dir) return fs->n == 1 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == fs->f[0].size;
    if (!S_ISDIR(st.st_mode)) return 0;
    for (int i = 0; i < fs->n; i++) {
        char p[CL_MAX_PATH + CL_MAX_NAME + 2];
        snprintf(p, sizeof p, "%s/%s", path, fs->f[i].name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != fs->f[i].size) return 0;
    }
    return 1;
}

int shoal__cl_mkdirs(const char *path) {
    char p[CL_MAX_PATH];
    if (strlen(path) >= sizeof p) return SHOAL_ERR_INVALID;
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST) return SHOAL_ERR_IO;
            *s = c;
            if (!c) break;
        }
    }
    return SHOAL_OK;
}

int shoal__cl_cache_root(const char *configured, char *out, size_t cap) {
    const char *v = configured && *configured ? configured : shoal__cl_setting("cache_dir", "SHOAL_CACHE_DIR");
    int n;
    if (v && *v) n = snprintf(out, cap, "%s", v);
    else if (getenv("XDG_CACHE_HOME") && *getenv("XDG_CACHE_HOME")) n = snprintf(out, cap, "%s/shoal", getenv("XDG_CACHE_HOME"));
    else if (getenv("HOME") && *getenv("HOME")) n = snprintf(out, cap, "%s/.cache/shoal", getenv("HOME"));
    else n = snprintf(out, cap, "/tmp/shoal-cache-%d", (int)getuid());
    return n > 0 && (size_t)n < cap ? SHOAL_OK : SHOAL_ERR_INVALID;
}

const char *shoal__cl_setting(const char *name, const char *env) {
    const char *v = shoal_setting_value(name);
    if (!v) v = getenv(env);
    return v ? v : "";
}

void shoal__cl_rmdir_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[CL_MAX_PATH + CL_MAX_NAME + 2];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(dir);
}

void shoal__cl_w_files(cl_wbuf *w, const cl_files *fs, int with_sha) {
    cl_w_u32(w, (uint32_t)fs->is_dir);
    cl_w_str(w, fs->entry);
    cl_w_u32(w, (uint32_t)fs->n);
    for (int i = 0; i < fs->n; i++) {
        cl_w_u64(w, fs->f[i].size);
        if (with_sha) cl_w_bytes(w, fs->f[i].sha, 32);
        cl_w_str(w, fs->f[i].name);
    }
}

int shoal__cl_r_files(cl_rbuf *r, cl_files *fs, int with_sha) {
    memset(fs, 0, sizeof *fs);
    uint32_t is_dir = cl_r_u32(r);
    cl_r_str(r, fs->entry, sizeof fs->entry, CL_MAX_NAME);
    uint32_t n = cl_r_u32(r);
    if (r->err || is_dir > 1 || n < 1 || n > CL_MAX_FILES || (uint64_t)n * (with_sha ? 42 : 10) > cl_r_left(r))
        return SHOAL_ERR_PROTOCOL;
    if (!is_dir && (n != 1 || !cl_name_ok(fs->entry))) return SHOAL_ERR_PROTOCOL;
    if (is_dir && fs->entry[0]) return SHOAL_ERR_PROTOCOL;
    fs->is_dir = (int)is_dir;
    fs->f = calloc(n, sizeof *fs->f);
    if (!fs->f) return SHOAL_ERR_NOMEM;
    fs->n = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        fs->f[i].size = cl_r_u64(r);
        if (with_sha) {
            const uint8_t *h = cl_r_bytes(r, 32);
            if (h) memcpy(fs->f[i].sha, h, 32);
        }
        cl_r_str(r, fs->f[i].name, sizeof fs->f[i].name, CL_MAX_NAME);
        if (r->err || fs->f[i].size > CL_MAX_FILE_BYTES || !cl_name_ok(fs->f[i].name)) {
            shoal__cl_files_free(fs);
            return SHOAL_ERR_PROTOCOL;
        }
        for (uint32_t j = 0; j < i; j++) /* a name twice would overwrite a file */
            if (!strcmp(fs->f[j].name, fs->f[i].name)) {
                shoal__cl_files_free(fs);
                return SHOAL_ERR_PROTOCOL;
            }
    }
    if (!is_dir && strcmp(fs->f[0].name, fs->entry)) {
        shoal__cl_files_free(fs);
        return SHOAL_ERR_PROTOCOL;
    }
    return SHOAL_OK;
}
