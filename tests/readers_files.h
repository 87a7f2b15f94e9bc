/* Test files for the dataset readers (test_cifar, test_csv, test_images): a fresh temp
 * directory per program (mkdtemp), files written into it, paths joined, and the tree
 * removed at exit. */
#ifndef TG_TEST_READERS_FILES_H
#define TG_TEST_READERS_FILES_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmpdir[4096];

static int rm_entry_(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tmpdir_(void) {
    if (g_tmpdir[0]) nftw(g_tmpdir, rm_entry_, 16, FTW_DEPTH | FTW_PHYS);
}

/* The program's temp directory, made on first use and removed at exit. */
static const char *tmpdir(void) {
    if (!g_tmpdir[0]) {
        const char *d = getenv("TMPDIR");
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/tg_readers_XXXXXX", d && *d ? d : "/tmp");
        if (!mkdtemp(g_tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(rm_tmpdir_);
    }
    return g_tmpdir;
}

/* tmpdir()/name in one of a few rotating static buffers. */
static const char *tmp_path(const char *name) {
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    if (snprintf(b, 4096, "%s/%s", tmpdir(), name) >= 4096) abort();
    return b;
}

static inline void make_dir(const char *name) {
    if (mkdir(tmp_path(name), 0755) != 0) {
        perror("mkdir");
        abort();
    }
}

/* Writes n bytes to tmpdir()/name; returns the path (a tmp_path buffer). */
static inline const char *write_file(const char *name, const void *data, size_t n) {
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

static inline const char *write_text(const char *name, const char *text) { return write_file(name, text, strlen(text)); }

/* An exact expected message with a path in it. */
static const char *msgf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static const char *msgf(const char *fmt, ...) {
    static char buf[4][8192];
    static int next;
    char *b = buf[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}

#endif
