/* Internals shared by the cluster's files: the model's file set (what is hashed, streamed and
 * cached), the cache location, and small formatting helpers. */
#ifndef SHOAL_CLUSTER_INT_H
#define SHOAL_CLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cluster/wire.h"
#include "shoal/cluster.h"

/* A cluster setting: the registry's value (settings.c: cache_dir, worker_memory,
 * worker_model), or, if this build's registry lacks the row, the environment variable itself;
 * "" when unset. */
const char *shoal__cl_setting(const char *name, const char *env);

/* "1.5 MiB" */
void shoal__cl_human(uint64_t bytes, char *out, size_t cap);

/* The files a worker needs to open a model: the file itself (GGUF, llama2.c), or for an HF
 * folder config.json, model.safetensors.index.json when present and every *.safetensors,
 * sorted by name. */
typedef struct cl_file {
    char name[CL_MAX_NAME + 1];
    uint64_t size;
    uint8_t sha[32]; /* filled by shoal__cl_files_hash (leader) or while receiving (worker) */
} cl_file;

typedef struct cl_files {
    char root[CL_MAX_PATH];       /* folder holding the files */
    int is_dir;                   /* 1: the model is the folder root (HF) */
    char entry[CL_MAX_NAME + 1];  /* single-file model: its file name; folder: "" */
    int n;
    cl_file *f;
    uint8_t hash[32]; /* the model's content hash (shoal__cl_combined_hash) */
    int hashed;
} cl_files;

int shoal__cl_files_list(const char *model_path, cl_files *out, char *err, size_t errcap);
void shoal__cl_files_free(cl_files *fs);
/* SHA-256 of every file, then the combined hash. */
int shoal__cl_files_hash(cl_files *fs, char *err, size_t errcap);
/* SHA-256 over "shoal-model-v1\n" and, per file in order, name, NUL, u64 size (LE), sha. */
void shoal__cl_combined_hash(const cl_file *f, int n, uint8_t out[32]);
void shoal__cl_hex(const uint8_t h[32], char out[65]);
/* Whether path holds the same files (names and sizes) as fs describes (is_dir/entry/files). */
int shoal__cl_files_match(const char *path, const cl_files *fs);
/* Creates every missing folder of path (mode 0700 for new ones). */
int shoal__cl_mkdirs(const char *path);
/* The cache root: configured, else SHOAL_CACHE_DIR, else $XDG_CACHE_HOME/shoal, else
 * $HOME/.cache/shoal. */
int shoal__cl_cache_root(const char *configured, char *out, size_t cap);
/* Removes a folder and the plain files in it (a failed download). */
void shoal__cl_rmdir_files(const char *dir);

/* Encodes / decodes the file table: u32 is_dir | str entry | u32 n | n x (u64 size
 * [| sha256] | str name). with_sha selects the 32-byte hashes. Decoding checks every name
 * (cl_name_ok), the count (CL_MAX_FILES) and sizes (CL_MAX_FILE_BYTES). */
void shoal__cl_w_files(cl_wbuf *w, const cl_files *fs, int with_sha);
int shoal__cl_r_files(cl_rbuf *r, cl_files *fs, int with_sha);

#endif
