/* The fuzz targets' shared input file: each input is written to one memfd, reached by
 * its /proc/self/fd path, so a reader opens it like any file. */
#ifndef TG_FUZZ_MEMFD_H
#define TG_FUZZ_MEMFD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create (meson sets it) */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Replaces the file's contents with data; returns its path. */
static const char *fuzz_file(const char *name, const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create(name, 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
    return path;
}

#endif
