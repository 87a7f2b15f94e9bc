/* safetensors files: the reader (from a path or a memory buffer) that validates every
 * header field before it allocates, and the atomic writer (temporary file, fsync,
 * rename, directory fsync). The JSON header is parsed and printed with cJSON. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* fileno, fsync, O_CLOEXEC (meson sets it) */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TG_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

#include "lib/graph/error.h"
#include "tapegrad/data.h"

const char *tg_metadata_get(const tg_metadata *m, const char *key) {
    if (!m || !key) return NULL;
    for (int i = 0; i < m->n; i++)
        if (m->keys && m->keys[i] && !strcmp(m->keys[i], key)) return m->values ? m->values[i] : NULL;
    return NULL;
}

void tg_metadata_free(tg_metadata *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) {
        if (m->keys) free(m->keys[i]);
        if (m->values) free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    *m = (tg_metadata){ 0 };
}

#ifndef TG_HAVE_CJSON

#define NO_CJSON(fn) tg_error(TG_ERR_INVALID, "%s: tapegrad was built without cJSON (safetensors needs it)", fn)

tg_status tg_safetensors_save(const tg_state_dict *sd, const char *path, const tg_metadata *metadata) {
    (void)sd, (void)path, (void)metadata;
    return NO_CJSON("tg_safetensors_save");
}

tg_state_dict *tg_safetensors_load(const char *path, tg_device *dev, tg_metadata *metadata) {
    (void)path, (void)dev;
    if (metadata) *metadata = (tg_metadata){ 0 };
    NO_CJSON("tg_safetensors_load");
    return NULL;
}

tg_state_dict *tg_safetensors_load_buffer(const void *data, size_t size, tg_device *dev, tg_metadata *metadata) {
    (void)data, (void)size, (void)dev;
    if (metadata) *metadata = (tg_metadata){ 0 };
    NO_CJSON("tg_safetensors_load_buffer");
    return NULL;
}

#else /* TG_HAVE_CJSON */

/* The reference implementation's limit on the header, against memory exhaustion. */
#define ST_MAX_HEADER 100000000u
/* Integers in the JSON are doubles to cJSON: exact up to 2^53. */
#define ST_MAX_INT 9007199254740992.0

/* How a file dtype becomes a tapegrad one. */
typedef enum { CV_SAME, CV_F16, CV_BF16, CV_BOOL, CV_I16, CV_U16, CV_I8 } st_conv;

typedef struct {
    const char *name;
    size_t size; /* bytes per element in the file */
    tg_dtype dtype;
    st_conv conv;
} st_dtype;

/* Native dtypes first: the writer looks them up by tapegrad dtype. */
static const st_dtype k_dtypes[] = {
    { "F64", 8, TG_F64, CV_SAME },  { "I64", 8, TG_I64, CV_SAME },  { "F32", 4, TG_F32, CV_SAME },
    { "I32", 4, TG_I32, CV_SAME },  { "U8", 1, TG_U8, CV_SAME },    { "F16", 2, TG_F32, CV_F16 },
    { "BF16", 2, TG_F32, CV_BF16 }, { "BOOL", 1, TG_U8, CV_BOOL },  { "I16", 2, TG_I32, CV_I16 },
    { "U16", 2, TG_I32, CV_U16 },   { "I8", 1, TG_I32, CV_I8 },
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

static const st_dtype *dtype_by_name(const char *name) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (!strcmp(k_dtypes[i].name, name)) return &k_dtypes[i];
    return NULL;
}

static const st_dtype *dtype_native(tg_dtype d) {
    for (size_t i = 0; i < N_DTYPES; i++)
        if (k_dtypes[i].conv == CV_SAME && k_dtypes[i].dtype == d) return &k_dtypes[i];
    return NULL;
}

static bool host_is_le(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Little-endian file bytes <-> host order, in place. */
static void swap_elems(uint8_t *p, size_t n, size_t size) {
    if (size == 1 || host_is_le()) return;
    for (size_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b], p[b] = t;
        }
}

/* ------------------------------------------------------------- reading: the source */

typedef struct {
    const char *path; /* for messages: the path, or "<buffer>" */
    const uint8_t *mem;
    FILE *f;
    uint64_t size;
} st_src;

/* Reads n bytes at off; the caller has checked that they lie within the source. */
static tg_status src_read(const st_src *s, uint64_t off, void *dst, size_t n) {
    if (n == 0) return TG_OK;
    if (s->mem) {
        memcpy(dst, s->mem + off, n);
        return TG_OK;
    }
    if (fseeko(s->f, (off_t)off, SEEK_SET) != 0 || fread(dst, 1, n, s->f) != n) {
        if (ferror(s->f)) return tg_error(TG_ERR_IO, "tg_safetensors_load: cannot read '%s': %s", s->path, strerror(errno));
        return tg_error(TG_ERR_IO, "tg_safetensors_load: '%s' is truncated: it shrank while being read", s->path);
    }
    return TG_OK;
}

static tg_status src_open(st_src *s, const char *path) {
    s->path = path;
    s->f = fopen(path, "rb");
    if (!s->f) return tg_error(TG_ERR_IO, "tg_safetensors_load: cannot open '%s': %s", path, strerror(errno));
    struct stat stt;
    if (fstat(fileno(s->f), &stt) != 0)
        return tg_error(TG_ERR_IO, "tg_safetensors_load: cannot read '%s': %s", path, strerror(errno));
    if (!S_ISREG(stt.st_mode)) return tg_error(TG_ERR_IO, "tg_safetensors_load: '%s' is not a regular file", path);
    s->size = (uint64_t)stt.st_size;
    return TG_OK;
}

/* ------------------------------------------------------------- reading: the header */

typedef struct {
    const char *name; /* in the cJSON tree */
    const st_dtype *dt;
    tg_shape shape;
    uint64_t begin, end;
} st_entry;

typedef struct {
    st_src src;
    cJSON *root;
    st_entry *e;
    int n;
    uint64_t data_start, data_size;
} st_file;

#define BAD(f, ...) st_bad((f)->src.path, __VA_ARGS__)
static tg_status st_bad(const char *path, const char *fmt, ...) TG_PRINTF(2, 3);
static tg_status st_bad(const char *path, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tg_error(TG_ERR_IO, "tg_safetensors_load: '%s': %s", path, what);
}

static tg_status read_header(st_file *f) {
    uint8_t len8[8];
    if (f->src.size < 8)
        return BAD(f, "truncated: %llu bytes, a safetensors file starts with an 8-byte header length",
                   (unsigned long long)f->src.size);
    tg_status st = src_read(&f->src, 0, len8, 8);
    if (st != TG_OK) return st;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > f->src.size - 8)
        return BAD(f, "truncated: the header length is %llu bytes, only %llu follow", (unsigned long long)n,
                   (unsigned long long)(f->src.size - 8));
    if (n > ST_MAX_HEADER)
        return BAD(f, "the header length %llu is above the limit of %u bytes", (unsigned long long)n, ST_MAX_HEADER);
    if (n == 0) return BAD(f, "the header is empty (length 0)");
    char *json = malloc((size_t)n);
    if (!json) return tg_error(TG_ERR_NOMEM, "tg_safetensors_load: '%s': out of memory for the header", f->src.path);
    st = src_read(&f->src, 8, json, (size_t)n);
    if (st == TG_OK) {
        const char *end = NULL;
        f->root = cJSON_ParseWithLengthOpts(json, (size_t)n, &end, false);
        if (!f->root) {
            long at = end ? (long)(end - json) : cJSON_GetErrorPtr() ? (long)(cJSON_GetErrorPtr() - json) : 0;
            st = BAD(f, "the header is not valid JSON (at byte %ld of %llu)", at, (unsigned long long)n);
        } else {
            for (; st == TG_OK && end && end < json + n; end++)
                if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != '\0')
                    st = BAD(f, "the header has bytes after its JSON (at byte %ld)", (long)(end - json));
            if (st == TG_OK && !cJSON_IsObject(f->root)) st = BAD(f, "the header is JSON but not an object");
        }
    }
    free(json);
    f->data_start = 8 + n;
    f->data_size = f->src.size - 8 - n;
    return st;
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT)) return false;
    uint64_t u = (uint64_t)d;
    if ((double)u != d) return false;
    *out = u;
    return true;
}

static tg_status parse_shape(st_file *f, const char *name, const cJSON *shape, st_entry *e, uint64_t *numel) {
    if (!cJSON_IsArray(shape)) return BAD(f, "tensor '%s': \"shape\" is missing or not an array", name);
    int nd = cJSON_GetArraySize(shape);
    if (nd > TG_MAX_DIMS) return BAD(f, "tensor '%s': %d dimensions, tapegrad holds at most %d", name, nd, TG_MAX_DIMS);
    e->shape.ndim = nd;
    /* The product of the non-zero sizes must fit too: strides are computed from them
     * even when another size is 0. */
    uint64_t nonzero = 1;
    bool overflow = false, empty = false;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, &v)) return BAD(f, "tensor '%s': shape[%d] is not a non-negative integer", name, i);
        e->shape.dims[i] = (int64_t)v;
        empty |= v == 0;
        if (v && nonzero > (uint64_t)INT64_MAX / v) overflow = true;
        else if (v) nonzero *= v;
    }
    if (overflow) return BAD(f, "tensor '%s': its shape's element count overflows", name);
    *numel = empty ? 0 : nonzero;
    return TG_OK;
}

static tg_status parse_entry(st_file *f, const cJSON *item, st_entry *e) {
    const char *name = item->string;
    e->name = name;
    if (!cJSON_IsObject(item)) return BAD(f, "tensor '%s' is not a JSON object", name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dt)) return BAD(f, "tensor '%s': \"dtype\" is missing or not a string", name);
    if (!(e->dt = dtype_by_name(dt->valuestring)))
        return tg_error(TG_ERR_DTYPE, "tg_safetensors_load: '%s': tensor '%s': dtype '%.40s' is not supported", f->src.path,
                        name, dt->valuestring);
    uint64_t numel = 0;
    tg_status st = parse_shape(f, name, cJSON_GetObjectItemCaseSensitive(item, "shape"), e, &numel);
    if (st != TG_OK) return st;
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &e->begin) ||
        !json_uint(off->child->next, &e->end))
        return BAD(f, "tensor '%s': \"data_offsets\" is not two non-negative integers", name);
    if (e->begin > e->end)
        return BAD(f, "tensor '%s': data_offsets [%llu, %llu] end before they begin", name, (unsigned long long)e->begin,
                   (unsigned long long)e->end);
    if (e->end > f->data_size)
        return BAD(f, "truncated: tensor '%s' ends at byte %llu of the data, which holds %llu", name,
                   (unsigned long long)e->end, (unsigned long long)f->data_size);
    if (numel > (e->end - e->begin) / e->dt->size || numel * e->dt->size != e->end - e->begin) {
        char shp[200], need[32] = "more than 2^64";
        if (numel <= UINT64_MAX / e->dt->size) snprintf(need, sizeof need, "%llu", (unsigned long long)(numel * e->dt->size));
        int w = 0;
        for (int i = 0; i < e->shape.ndim && w < (int)sizeof shp - 24; i++)
            w += snprintf(shp + w, sizeof shp - (size_t)w, "%s%lld", i ? "," : "", (long long)e->shape.dims[i]);
        shp[w] = '\0';
        return BAD(f, "tensor '%s': data_offsets [%llu, %llu] span %llu bytes, its shape [%s] of %s needs %s", name,
                   (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)(e->end - e->begin),
                   shp, e->dt->name, need);
    }
    return TG_OK;
}

/* "__metadata__": an object of strings, copied into *meta (may be NULL). */
static tg_status parse_metadata(st_file *f, const cJSON *item, tg_metadata *meta) {
    if (!cJSON_IsObject(item)) return BAD(f, "\"__metadata__\" is not a JSON object");
    int n = cJSON_GetArraySize(item);
    for (const cJSON *v = item->child; v; v = v->next)
        if (!cJSON_IsString(v)) return BAD(f, "metadata '%s' is not a string", v->string);
    if (!meta || n == 0) return TG_OK;
    meta->keys = calloc((size_t)n, sizeof(char *));
    meta->values = calloc((size_t)n, sizeof(char *));
    if (!meta->keys || !meta->values) goto nomem;
    for (const cJSON *v = item->child; v; v = v->next, meta->n++) {
        meta->keys[meta->n] = strdup(v->string);
        meta->values[meta->n] = strdup(v->valuestring);
        if (!meta->keys[meta->n] || !meta->values[meta->n]) {
            meta->n++;
            goto nomem;
        }
    }
    return TG_OK;
nomem:
    tg_metadata_free(meta);
    return tg_error(TG_ERR_NOMEM, "tg_safetensors_load: '%s': out of memory for the metadata", f->src.path);
}

static int by_begin(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names unique (JSON allows repeats; we do not), byte ranges disjoint. */
static tg_status check_disjoint(st_file *f) {
    if (f->n < 2) return TG_OK;
    const char **names = malloc((size_t)f->n * sizeof *names);
    st_entry *sorted = malloc((size_t)f->n * sizeof *sorted);
    tg_status st = TG_OK;
    if (!names || !sorted) st = tg_error(TG_ERR_NOMEM, "tg_safetensors_load: '%s': out of memory", f->src.path);
    for (int i = 0; st == TG_OK && i < f->n; i++) names[i] = f->e[i].name, sorted[i] = f->e[i];
    if (st == TG_OK) {
        qsort(names, (size_t)f->n, sizeof *names, by_name);
        for (int i = 1; st == TG_OK && i < f->n; i++)
            if (!strcmp(names[i - 1], names[i])) st = BAD(f, "tensor '%s' appears twice", names[i]);
        qsort(sorted, (size_t)f->n, sizeof *sorted, by_begin);
        const st_entry *last = NULL; /* the non-empty tensor that ends last so far */
        for (int i = 0; st == TG_OK && i < f->n; i++) {
            if (sorted[i].begin == sorted[i].end) continue;
            if (last && sorted[i].begin < last->end)
                st = BAD(f, "tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", last->name,
                         (unsigned long long)last->begin, (unsigned long long)last->end, sorted[i].name,
                         (unsigned long long)sorted[i].begin, (unsigned long long)sorted[i].end);
            if (!last || sorted[i].end > last->end) last = &sorted[i];
        }
    }
    free(names);
    free(sorted);
    return st;
}

static tg_status parse_entries(st_file *f, tg_metadata *meta) {
    int n = cJSON_GetArraySize(f->root);
    f->e = calloc((size_t)(n ? n : 1), sizeof *f->e);
    if (!f->e) return tg_error(TG_ERR_NOMEM, "tg_safetensors_load: '%s': out of memory", f->src.path);
    bool seen_meta = false;
    for (const cJSON *item = f->root->child; item; item = item->next) {
        tg_status st;
        if (!strcmp(item->string, "__metadata__")) {
            if (seen_meta) return BAD(f, "\"__metadata__\" appears twice");
            seen_meta = true;
            st = parse_metadata(f, item, meta);
        } else {
            st = parse_entry(f, item, &f->e[f->n++]);
        }
        if (st != TG_OK) return st;
    }
    return check_disjoint(f);
}

/* ------------------------------------------------------------- reading: the tensors */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0 && man != 0) { /* subnormal: man * 2^-24 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 0x1f) bits = sign | 0x7f800000u | man << 13;
    else if (exp) bits = sign | (exp + 112) << 23 | man << 13;
    else bits = sign;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Converts n elements of raw (little-endian file bytes) into out (the tapegrad dtype). */
static void convert(const st_dtype *dt, const uint8_t *raw, void *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = raw + i * dt->size;
        uint16_t u16 = (uint16_t)(p[0] | (dt->size > 1 ? p[1] << 8 : 0));
        switch (dt->conv) {
        case CV_F16: ((float *)out)[i] = half_to_float(u16); break;
        case CV_BF16: {
            uint32_t bits = (uint32_t)u16 << 16;
            memcpy((float *)out + i, &bits, sizeof(float));
            break;
        }
        case CV_BOOL: ((uint8_t *)out)[i] = p[0] != 0; break;
        case CV_I16: ((int32_t *)out)[i] = (int16_t)u16; break;
        case CV_U16: ((int32_t *)out)[i] = u16; break;
        case CV_I8: ((int32_t *)out)[i] = (int8_t)p[0]; break;
        case CV_SAME: break;
        }
    }
}

static tg_tensor *load_tensor(st_file *f, const st_entry *e, tg_device *dev) {
    size_t nbytes = (size_t)(e->end - e->begin), numel = nbytes / e->dt->size;
    uint8_t *raw = malloc(nbytes ? nbytes : 1), *conv = NULL;
    tg_tensor *t = NULL;
    if (!raw) goto nomem;
    if (src_read(&f->src, f->data_start + e->begin, raw, nbytes) != TG_OK) goto done;
    void *data = raw;
    if (e->dt->conv == CV_SAME) {
        swap_elems(raw, numel, e->dt->size);
    } else {
        if (!(conv = malloc(numel ? numel * tg_dtype_size(e->dt->dtype) : 1))) goto nomem;
        convert(e->dt, raw, conv, numel);
        data = conv;
    }
    t = tg_from_data(data, e->dt->dtype, e->shape, dev);
    goto done;
nomem:
    tg_error(TG_ERR_NOMEM, "tg_safetensors_load: '%s': out of memory for tensor '%s' (%zu bytes)", f->src.path, e->name,
             nbytes);
done:
    free(raw);
    free(conv);
    return t;
}

static tg_state_dict *load(st_src *src, tg_device *dev, tg_metadata *meta) {
    st_file f = { .src = *src };
    tg_state_dict *sd = NULL;
    tg_status st = read_header(&f);
    if (st == TG_OK) st = parse_entries(&f, meta);
    if (st == TG_OK && !(sd = tg_state_dict_new())) st = tg_last_status();
    for (int i = 0; st == TG_OK && i < f.n; i++) {
        tg_scope_begin();
        tg_tensor *t = load_tensor(&f, &f.e[i], dev);
        st = t ? tg_state_dict_set(sd, f.e[i].name, t) : tg_last_status();
        tg_scope_end();
    }
    cJSON_Delete(f.root);
    free(f.e);
    if (st == TG_OK) return sd;
    tg_state_dict_free(sd);
    if (meta) tg_metadata_free(meta);
    return NULL;
}

tg_state_dict *tg_safetensors_load(const char *path, tg_device *dev, tg_metadata *metadata) {
    TG_API_ENTER("tg_safetensors_load");
    if (metadata) *metadata = (tg_metadata){ 0 };
    if (!path) return tg_error_null(TG_ERR_INVALID, "tg_safetensors_load: path is NULL");
    if (!dev) return tg_error_null(TG_ERR_DEVICE, "tg_safetensors_load: device is NULL");
    st_src src = { 0 };
    tg_state_dict *sd = src_open(&src, path) == TG_OK ? load(&src, dev, metadata) : NULL;
    if (src.f) fclose(src.f);
    return sd;
}

tg_state_dict *tg_safetensors_load_buffer(const void *data, size_t size, tg_device *dev, tg_metadata *metadata) {
    TG_API_ENTER("tg_safetensors_load_buffer");
    if (metadata) *metadata = (tg_metadata){ 0 };
    if (!data && size) return tg_error_null(TG_ERR_INVALID, "tg_safetensors_load_buffer: data is NULL");
    if (!dev) return tg_error_null(TG_ERR_DEVICE, "tg_safetensors_load_buffer: device is NULL");
    st_src src = { .path = "<buffer>", .mem = data ? data : (const uint8_t *)"", .size = size };
    return load(&src, dev, metadata);
}

/* ------------------------------------------------------------- writing: atomic files */

typedef struct {
    const char *path;
    char *tmp;
    int fd;
} st_out;

static tg_status out_open(st_out *o, const char *path) {
    static _Atomic unsigned counter;
    size_t len = strlen(path) + 64;
    o->path = path, o->fd = -1;
    if (!(o->tmp = malloc(len))) return tg_error(TG_ERR_NOMEM, "tg_safetensors_save: out of memory");
    for (int tries = 0; tries < 100 && o->fd < 0; tries++) {
        snprintf(o->tmp, len, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (o->fd < 0 && errno != EEXIST) break;
    }
    if (o->fd < 0) {
        tg_status st = tg_error(TG_ERR_IO, "tg_safetensors_save: cannot create '%s': %s", o->tmp, strerror(errno));
        free(o->tmp), o->tmp = NULL;
        return st;
    }
    return TG_OK;
}

static tg_status out_write(st_out *o, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(o->fd, b, n > ((size_t)1 << 30) ? (size_t)1 << 30 : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return tg_error(TG_ERR_IO, "tg_safetensors_save: cannot write '%s': %s", o->tmp, strerror(errno));
        b += w, n -= (size_t)w;
    }
    return TG_OK;
}

/* Removes the temporary file (the target is untouched). */
static void out_abort(st_out *o) {
    if (o->fd >= 0) close(o->fd);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    o->fd = -1, o->tmp = NULL;
}

/* fsync, rename over the target, fsync the directory so the rename itself is durable. */
static tg_status out_commit(st_out *o) {
    tg_status st = TG_OK;
    if (fsync(o->fd) != 0) st = tg_error(TG_ERR_IO, "tg_safetensors_save: cannot sync '%s': %s", o->tmp, strerror(errno));
    int rc = close(o->fd);
    o->fd = -1;
    if (st == TG_OK && rc != 0)
        st = tg_error(TG_ERR_IO, "tg_safetensors_save: cannot write '%s': %s", o->tmp, strerror(errno));
    if (st == TG_OK && rename(o->tmp, o->path) != 0)
        st = tg_error(TG_ERR_IO, "tg_safetensors_save: cannot rename '%s' to '%s': %s", o->tmp, o->path, strerror(errno));
    if (st != TG_OK) {
        out_abort(o);
        return st;
    }
    free(o->tmp), o->tmp = NULL;
    const char *slash = strrchr(o->path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == o->path ? 1 : (int)(slash - o->path), o->path);
    int dfd = open(dir, O_RDONLY | O_CLOEXEC);
    if (dfd >= 0) { /* best effort: some file systems refuse fsync on a directory */
        (void)fsync(dfd);
        close(dfd);
    }
    return TG_OK;
}

/* ------------------------------------------------------------- writing: header and data */

typedef struct {
    const char *name;
    tg_tensor *t;
    const st_dtype *dt;
    uint64_t nbytes;
} st_item;

/* The reference's order: larger elements first (so each tensor is aligned), then by name. */
static int write_order(const void *a, const void *b) {
    const st_item *x = a, *y = b;
    if (x->dt->size != y->dt->size) return x->dt->size > y->dt->size ? -1 : 1;
    return strcmp(x->name, y->name);
}

static cJSON *json_int(uint64_t v) {
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf); /* exact beyond 2^53, never in exponent form */
}

static tg_status check_save_args(const tg_state_dict *sd, const char *path, const tg_metadata *meta) {
    const char *fn = "tg_safetensors_save";
    if (!sd || !path) return tg_error(TG_ERR_INVALID, "%s: %s is NULL", fn, sd ? "path" : "the state dict");
    for (int i = 0; i < tg_state_dict_size(sd); i++) {
        const char *name = tg_state_dict_name(sd, i);
        if (!*name) return tg_error(TG_ERR_INVALID, "%s: '%s': a tensor has an empty name", fn, path);
        if (!strcmp(name, "__metadata__"))
            return tg_error(TG_ERR_INVALID, "%s: '%s': the name \"__metadata__\" is reserved", fn, path);
        if (!dtype_native(tg_dtype_of(tg_state_dict_tensor(sd, i))))
            return tg_error(TG_ERR_DTYPE, "%s: '%s': tensor '%s' has a dtype safetensors cannot hold", fn, path, name);
    }
    if (!meta) return TG_OK;
    if (meta->n < 0 || (meta->n > 0 && (!meta->keys || !meta->values)))
        return tg_error(TG_ERR_INVALID, "%s: '%s': the metadata has %d entries but no arrays", fn, path, meta->n);
    for (int i = 0; i < meta->n; i++) {
        if (!meta->keys[i] || !meta->values[i] || !*meta->keys[i])
            return tg_error(TG_ERR_INVALID, "%s: '%s': metadata entry %d has a NULL or empty key or value", fn, path, i);
        for (int k = 0; k < i; k++)
            if (!strcmp(meta->keys[k], meta->keys[i]))
                return tg_error(TG_ERR_INVALID, "%s: '%s': metadata key '%s' appears twice", fn, path, meta->keys[i]);
    }
    return TG_OK;
}

/* The header JSON in write order, data_offsets filled in; NULL when memory runs out. */
static char *build_header(st_item *items, int n, const tg_metadata *meta) {
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && meta && meta->n > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < meta->n; i++) ok = cJSON_AddStringToObject(m, meta->keys[i], meta->values[i]) != NULL;
    }
    uint64_t off = 0;
    for (int i = 0; ok && i < n; i++) {
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        ok = e && shape && offs && cJSON_AddItemToObject(root, items[i].name, e);
        if (!ok) {
            cJSON_Delete(e), cJSON_Delete(shape), cJSON_Delete(offs);
            break;
        }
        tg_shape s = tg_shape_of(items[i].t);
        for (int d = 0; ok && d < s.ndim; d++) ok = cJSON_AddItemToArray(shape, json_int((uint64_t)s.dims[d]));
        ok = ok && cJSON_AddItemToArray(offs, json_int(off)) && cJSON_AddItemToArray(offs, json_int(off + items[i].nbytes));
        ok = cJSON_AddStringToObject(e, "dtype", items[i].dt->name) && ok;
        ok = cJSON_AddItemToObject(e, "shape", shape) && ok;
        ok = cJSON_AddItemToObject(e, "data_offsets", offs) && ok;
        off += items[i].nbytes;
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

static tg_status write_tensor(st_out *o, const st_item *it) {
    uint8_t *buf = malloc(it->nbytes ? (size_t)it->nbytes : 1);
    if (!buf) return tg_error(TG_ERR_NOMEM, "tg_safetensors_save: out of memory for tensor '%s'", it->name);
    tg_status st = tg_copy_to_host(it->t, buf, (size_t)it->nbytes);
    if (st == TG_OK) {
        swap_elems(buf, (size_t)(it->nbytes / it->dt->size), it->dt->size);
        st = out_write(o, buf, (size_t)it->nbytes);
    }
    free(buf);
    return st;
}

static tg_status write_file(st_out *o, st_item *items, int n, const tg_metadata *meta) {
    char *json = build_header(items, n, meta);
    if (!json) return tg_error(TG_ERR_NOMEM, "tg_safetensors_save: out of memory for the header");
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    char *head = malloc(8 + padded);
    tg_status st = head ? TG_OK : tg_error(TG_ERR_NOMEM, "tg_safetensors_save: out of memory for the header");
    if (st == TG_OK) {
        for (int i = 0; i < 8; i++) head[i] = (char)(uint8_t)((uint64_t)padded >> (8 * i));
        memcpy(head + 8, json, len);
        memset(head + 8 + len, ' ', padded - len);
        st = out_write(o, head, 8 + padded);
    }
    free(head);
    cJSON_free(json);
    for (int i = 0; st == TG_OK && i < n; i++) st = write_tensor(o, &items[i]);
    return st;
}

tg_status tg_safetensors_save(const tg_state_dict *sd, const char *path, const tg_metadata *metadata) {
    TG_API_ENTER("tg_safetensors_save");
    tg_status st = check_save_args(sd, path, metadata);
    if (st != TG_OK) return st;
    int n = tg_state_dict_size(sd);
    st_item *items = malloc((size_t)(n ? n : 1) * sizeof *items);
    if (!items) return tg_error(TG_ERR_NOMEM, "tg_safetensors_save: out of memory");
    for (int i = 0; i < n; i++) {
        items[i].name = tg_state_dict_name(sd, i), items[i].t = tg_state_dict_tensor(sd, i);
        items[i].dt = dtype_native(tg_dtype_of(items[i].t));
        items[i].nbytes = (uint64_t)tg_numel(items[i].t) * items[i].dt->size;
    }
    qsort(items, (size_t)n, sizeof *items, write_order);
    st_out o;
    st = out_open(&o, path);
    if (st == TG_OK) {
        st = write_file(&o, items, n, metadata);
        if (st == TG_OK) st = out_commit(&o);
        else out_abort(&o);
    }
    free(items);
    return st;
}

#endif /* TG_HAVE_CJSON */
