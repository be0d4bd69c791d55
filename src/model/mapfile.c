/* mmap of a whole model file (see mapfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "model/mapfile.h"

int shoal__mapfile_open(const char *path, shoal__mapfile *m, char *err, size_t errcap) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        shoal__errf(err, errcap, "%s: cannot open: %s", path, strerror(e));
        return e == ENOENT ? SHOAL_ERR_NOT_FOUND : SHOAL_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        shoal__errf(err, errcap, "%s: not a regular file", path);
        close(fd);
        return SHOAL_ERR_IO;
    }
    if (st.st_size == 0) { /* mmap of length 0 fails; an empty file is still "opened" */
        close(fd);
        return SHOAL_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        shoal__errf(err, errcap, "%s: mmap failed: %s", path, strerror(e));
        return SHOAL_ERR_IO;
    }
    m->data = p;
    m->size = (size_t)st.st_size;
    m->mapped = 1;
    return SHOAL_OK;
}

void shoal__mapfile_close(shoal__mapfile *m) {
    if (m->mapped && m->data) munmap((void *)m->data, m->size);
    memset(m, 0, sizeof *m);
}
