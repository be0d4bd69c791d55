/* Read-only memory mapping of a whole file: every model format reads its bytes through this,
 * so tensors point straight into the page cache and nothing is copied. */
#ifndef SHOAL_MODEL_MAPFILE_H
#define SHOAL_MODEL_MAPFILE_H

#include <stddef.h>

typedef struct shoal__mapfile {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
    int mapped; /* 1: data came from mmap and is unmapped by close */
} shoal__mapfile;

/* Maps path read-only. On error returns SHOAL_ERR_NOT_FOUND / SHOAL_ERR_IO with a message
 * naming the file in err, and *m is zeroed. */
int shoal__mapfile_open(const char *path, shoal__mapfile *m, char *err, size_t errcap);
void shoal__mapfile_close(shoal__mapfile *m);

#endif
