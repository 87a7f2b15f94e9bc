/* tg_image_folder: torchvision's ImageFolder layout, root/<class>/<file>.png. Opening
 * lists and sorts everything once; afterwards the object is read-only, so items can be
 * decoded from many threads at once. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/data/reader.h"
#include "lib/graph/error.h"

struct tg_image_folder {
    tg_image_mode mode;
    tg_strings *classes;
    tg_strings *paths; /* "root/<class>/<file>", class by class */
    int64_t *labels;
};

static int by_strcmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_png_name(const char *name) {
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".png") == 0;
}

/* Folders below a class folder deeper than this are not searched. */
#define MAX_DEPTH 32

typedef enum { LIST_DIRS, LIST_SUBDIRS, LIST_PNGS } list_kind;

/* The sorted, non-hidden names in dir of one kind: folders (symbolic links followed),
 * folders that are not symbolic links (so that a link cannot make a loop), or PNG
 * files. NULL with a message on failure; *count gets their number. */
static char **list_dir(const char *fn, const char *dir, list_kind kind, size_t *count) {
    DIR *d = opendir(dir);
    if (!d) return tg_error_null(TG_ERR_IO, "%s: cannot open '%s': %s", fn, dir, strerror(errno));
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' || (kind == LIST_PNGS && !is_png_name(e->d_name))) continue;
        int len = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (len < 0 || (size_t)len >= sizeof path || (kind == LIST_SUBDIRS ? lstat(path, &st) : stat(path, &st)) != 0)
            continue;
        if (kind == LIST_PNGS ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) goto nomem;
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) goto nomem;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_strcmp);
    *count = n;
    return names ? names : calloc(1, sizeof *names);
nomem:
    closedir(d);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return tg_error_null(TG_ERR_NOMEM, "%s: out of memory listing '%s'", fn, dir);
}

static void free_names(char **names, size_t n) {
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

/* Adds "dir" and every folder below it (to MAX_DEPTH) to dirs. */
static tg_status walk_dirs(const char *fn, const char *dir, int depth, tg_strings *dirs) {
    if (tg_data_strings_push(dirs, fn, dir, strlen(dir)) != TG_OK) return tg_last_status();
    if (depth == MAX_DEPTH) return TG_OK;
    size_t n = 0;
    char **subs = list_dir(fn, dir, LIST_SUBDIRS, &n), path[4096];
    tg_status st = subs ? TG_OK : tg_last_status();
    for (size_t i = 0; st == TG_OK && i < n; i++) {
        int len = snprintf(path, sizeof path, "%s/%s", dir, subs[i]);
        if (len > 0 && (size_t)len < sizeof path) st = walk_dirs(fn, path, depth + 1, dirs);
    }
    free_names(subs, n);
    return st;
}

/* Appends the PNG files of dir to f with label k. */
static tg_status add_files(tg_image_folder *f, const char *fn, const char *dir, int k, size_t *cap) {
    char path[8192];
    size_t n = 0;
    char **files = list_dir(fn, dir, LIST_PNGS, &n);
    tg_status st = files ? TG_OK : tg_last_status();
    size_t have = (size_t)tg_strings_count(f->paths);
    if (st == TG_OK && have + n > *cap) {
        size_t ncap = have + n > 2 * *cap ? have + n : 2 * *cap;
        int64_t *nl = realloc(f->labels, ncap * sizeof *nl);
        if (nl) f->labels = nl, *cap = ncap;
        else st = tg_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    }
    for (size_t i = 0; st == TG_OK && i < n; i++) {
        int len = snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        f->labels[have + i] = k;
        st = tg_data_strings_push(f->paths, fn, path, (size_t)len < sizeof path ? (size_t)len : sizeof path - 1);
    }
    free_names(files, n);
    return st;
}

/* Adds class k's files to f: the folders below it in the order of their paths (as
 * torchvision's sorted(os.walk(...))), each folder's files sorted. */
static tg_status add_class(tg_image_folder *f, const char *fn, const char *root, const char *cls, int k,
                           size_t *cap) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", root, cls);
    tg_strings *dirs = tg_data_strings_new(fn);
    const char **order = NULL;
    size_t before = (size_t)tg_strings_count(f->paths);
    tg_status st = dirs ? walk_dirs(fn, dir, 0, dirs) : tg_last_status();
    int nd = tg_strings_count(dirs);
    if (st == TG_OK && !(order = malloc((size_t)nd * sizeof *order))) st = tg_error(TG_ERR_NOMEM, "%s: out of memory", fn);
    for (int i = 0; st == TG_OK && i < nd; i++) order[i] = tg_strings_get(dirs, i);
    if (st == TG_OK) qsort(order, (size_t)nd, sizeof *order, by_strcmp);
    for (int i = 0; st == TG_OK && i < nd; i++) st = add_files(f, fn, order[i], k, cap);
    if (st == TG_OK && (size_t)tg_strings_count(f->paths) == before)
        st = tg_error(TG_ERR_IO, "%s: class folder '%s' has no PNG files", fn, dir);
    free(order);
    tg_strings_free(dirs);
    return st;
}

tg_image_folder *tg_image_folder_open(const char *root, const tg_image_folder_opts *opts) {
    TG_API_ENTER("tg_image_folder_open");
    const char *fn = "tg_image_folder_open";
    if (!root) return tg_error_null(TG_ERR_INVALID, "%s: root is NULL", fn);
    tg_image_folder_opts o = opts ? *opts : (tg_image_folder_opts){ 0 };
    if ((unsigned)o.mode > TG_IMAGE_MODE_RGB_ALPHA)
        return tg_error_null(TG_ERR_INVALID, "%s: unknown mode %d", fn, (int)o.mode);
    tg_image_folder *f = calloc(1, sizeof *f);
    size_t ncls = 0, cap = 0;
    char **cls = NULL;
    if (!f) return tg_error_null(TG_ERR_NOMEM, "%s: out of memory", fn);
    f->mode = o.mode;
    if (!(f->classes = tg_data_strings_new(fn)) || !(f->paths = tg_data_strings_new(fn))) goto fail;
    if (!(cls = list_dir(fn, root, LIST_DIRS, &ncls))) goto fail;
    if (ncls == 0) {
        tg_error(TG_ERR_IO, "%s: '%s' has no class folders (expected root/<class>/<file>.png)", fn, root);
        goto fail;
    }
    if (ncls > INT32_MAX) {
        tg_error(TG_ERR_IO, "%s: '%s' has too many class folders", fn, root);
        goto fail;
    }
    for (size_t k = 0; k < ncls; k++) {
        if (tg_data_strings_push(f->classes, fn, cls[k], strlen(cls[k])) != TG_OK) goto fail;
        if (add_class(f, fn, root, cls[k], (int)k, &cap) != TG_OK) goto fail;
    }
    free_names(cls, ncls);
    return f;
fail:
    free_names(cls, ncls);
    tg_image_folder_free(f);
    return NULL;
}

void tg_image_folder_free(tg_image_folder *f) {
    if (!f) return;
    tg_strings_free(f->classes);
    tg_strings_free(f->paths);
    free(f->labels);
    free(f);
}

int64_t tg_image_folder_size(const tg_image_folder *f) { return f ? tg_strings_count(f->paths) : 0; }

int tg_image_folder_num_classes(const tg_image_folder *f) { return f ? tg_strings_count(f->classes) : 0; }

const char *tg_image_folder_class_name(const tg_image_folder *f, int k) {
    TG_API_ENTER("tg_image_folder_class_name");
    if (!f) return tg_error_null(TG_ERR_INVALID, "tg_image_folder_class_name: folder is NULL");
    if (k < 0 || k >= tg_strings_count(f->classes))
        return tg_error_null(TG_ERR_INVALID, "tg_image_folder_class_name: class %d is out of range for %d classes", k,
                             tg_strings_count(f->classes));
    return tg_strings_get(f->classes, k);
}

/* Checks item i of f; fn names the caller. */
static bool item_ok(const char *fn, const tg_image_folder *f, int64_t i) {
    if (!f) return tg_error(TG_ERR_INVALID, "%s: folder is NULL", fn), false;
    if (i < 0 || i >= tg_image_folder_size(f))
        return tg_error(TG_ERR_INVALID, "%s: item %lld is out of range for %lld images", fn, (long long)i,
                        (long long)tg_image_folder_size(f)), false;
    return true;
}

const char *tg_image_folder_path(const tg_image_folder *f, int64_t i) {
    TG_API_ENTER("tg_image_folder_path");
    return item_ok("tg_image_folder_path", f, i) ? tg_strings_get(f->paths, (int)i) : NULL;
}

int64_t tg_image_folder_label(const tg_image_folder *f, int64_t i) {
    TG_API_ENTER("tg_image_folder_label");
    return item_ok("tg_image_folder_label", f, i) ? f->labels[i] : -1;
}

tg_tensor *tg_image_folder_read(const tg_image_folder *f, int64_t i) {
    TG_API_ENTER("tg_image_folder_read");
    if (!item_ok("tg_image_folder_read", f, i)) return NULL;
    return tg_data_read_png("tg_image_folder_read", tg_strings_get(f->paths, (int)i), f->mode, tg_device_get("cpu"));
}

/* Decodes item i into pixels (allocated at the first item, of n such images). */
static tg_status load_one(const tg_image_folder *f, int64_t i, tg_shape *first, uint8_t **pixels) {
    const char *fn = "tg_image_folder_load", *path = tg_strings_get(f->paths, (int)i);
    tg_status st = TG_OK;
    tg_scope_begin();
    tg_tensor *t = tg_data_read_png(fn, path, f->mode, tg_device_get("cpu"));
    tg_shape s = t ? tg_shape_of(t) : (tg_shape){ 0 };
    size_t bytes = (size_t)tg_numel(t);
    if (!t) {
        st = tg_last_status();
    } else if (i == 0) {
        *first = s;
        int64_t n = tg_image_folder_size(f);
        if (!(*pixels = (uint64_t)n <= SIZE_MAX / bytes ? malloc((size_t)n * bytes) : NULL))
            st = tg_error(TG_ERR_NOMEM, "%s: out of memory for %lld images of %zu bytes", fn, (long long)n, bytes);
    } else if (memcmp(s.dims, first->dims, 3 * sizeof s.dims[0]) != 0) {
        st = tg_error(TG_ERR_SHAPE, "%s: '%s' is %lldx%lldx%lld (C,H,W), but '%s' is %lldx%lldx%lld: images must share "
                      "one size to be stacked", fn, path, (long long)s.dims[0], (long long)s.dims[1],
                      (long long)s.dims[2], tg_strings_get(f->paths, 0), (long long)first->dims[0],
                      (long long)first->dims[1], (long long)first->dims[2]);
    }
    if (st == TG_OK) st = tg_copy_to_host(t, *pixels + (size_t)i * bytes, bytes);
    tg_scope_end();
    return st;
}

tg_status tg_image_folder_load(const tg_image_folder *f, tg_device *dev, tg_labeled_images *out) {
    TG_API_ENTER("tg_image_folder_load");
    const char *fn = "tg_image_folder_load";
    if (!out) return tg_error(TG_ERR_INVALID, "%s: out is NULL", fn);
    *out = (tg_labeled_images){ 0 };
    if (!f) return tg_error(TG_ERR_INVALID, "%s: folder is NULL", fn);
    if (!dev) return tg_last_status() != TG_OK ? tg_last_status() : tg_error(TG_ERR_DEVICE, "%s: device is NULL", fn);
    int64_t n = tg_image_folder_size(f);
    tg_shape first = { 0 };
    uint8_t *pixels = NULL;
    tg_status st = TG_OK;
    for (int64_t i = 0; i < n && st == TG_OK; i++) st = load_one(f, i, &first, &pixels);
    if (st == TG_OK) {
        tg_shape s = TG_SHAPE(n, first.dims[0], first.dims[1], first.dims[2]);
        out->images = tg_from_data(pixels, TG_U8, s, dev);
        out->labels = out->images ? tg_from_data(f->labels, TG_I64, TG_SHAPE(n), dev) : NULL;
        out->classes = out->labels ? tg_data_strings_copy(f->classes, fn) : NULL;
        if (!out->classes) {
            st = tg_last_status();
            *out = (tg_labeled_images){ 0 };
        }
    }
    free(pixels);
    return st;
}

/* ---------------------------------------------------------------- as a loader's dataset */

/* Sample i: the decoded image (on the CPU) and its label as a 0-d i64 tensor. Runs on
 * the loader's workers: the folder is read-only after opening. */
static tg_status folder_sample(void *ctx, int64_t i, tg_tensor **out) {
    const tg_image_folder *f = ctx;
    out[0] = tg_image_folder_read(f, i);
    int64_t label = tg_image_folder_label(f, i);
    out[1] = out[0] ? tg_from_i64(&label, TG_SCALAR_SHAPE, tg_device_get("cpu")) : NULL;
    return out[1] ? TG_OK : tg_last_status();
}

tg_dataset *tg_dataset_from_image_folder(const tg_image_folder *f) {
    TG_API_ENTER("tg_dataset_from_image_folder");
    if (!f) return tg_error_null(TG_ERR_INVALID, "tg_dataset_from_image_folder: folder is NULL");
    return tg_dataset_from_callbacks(&(tg_dataset_callbacks){ .length = tg_image_folder_size(f), .n_fields = 2,
                                                               .get = folder_sample, .ctx = (void *)f });
}
