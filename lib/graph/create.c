/* Creating tensors: from host data, constants, ranges, the identity, random numbers;
 * and reading them back (tg_item, tg_copy_to_host). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"

static _Atomic uint64_t g_seed = 0x5eed;
static _Atomic uint64_t g_counter;

static bool check_args(const char *name, tg_dtype dtype, tg_device *dev) {
    if ((unsigned)dtype >= TG_NUM_DTYPES) {
        tg_error(TG_ERR_DTYPE, "%s: unknown dtype %d", name, (int)dtype);
        return false;
    }
    if (!dev) {
        if (tg_last_status() == TG_OK) tg_error(TG_ERR_DEVICE, "%s: device is NULL", name);
        return false;
    }
    return true;
}

static tg_tensor *new_tensor(const char *name, tg_dtype dtype, tg_shape shape, tg_device *dev) {
    if (!check_args(name, dtype, dev)) return NULL;
    return tg_tensor_new(dtype, shape.ndim, shape.dims, dev); /* its messages take the API's name */
}

tg_tensor *tg_empty(tg_dtype dtype, tg_shape shape, tg_device *dev) {
    TG_API_ENTER("tg_empty");
    return new_tensor("tg_empty", dtype, shape, dev);
}

tg_tensor *tg_from_data(const void *data, tg_dtype dtype, tg_shape shape, tg_device *dev) {
    TG_API_ENTER("tg_from_data");
    if (!data) return tg_error_null(TG_ERR_INVALID, "tg_from_data: data is NULL");
    tg_tensor *t = new_tensor("tg_from_data", dtype, shape, dev);
    if (!t) return NULL;
    if (dev->be->upload(dev, t->storage->data, 0, data, t->storage->nbytes) != TG_OK) return NULL;
    return t;
}

tg_tensor *tg_from_f32(const float *d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_from_f32");
    return tg_from_data(d, TG_F32, s, dev);
}
tg_tensor *tg_from_f64(const double *d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_from_f64");
    return tg_from_data(d, TG_F64, s, dev);
}
tg_tensor *tg_from_i32(const int32_t *d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_from_i32");
    return tg_from_data(d, TG_I32, s, dev);
}
tg_tensor *tg_from_i64(const int64_t *d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_from_i64");
    return tg_from_data(d, TG_I64, s, dev);
}
tg_tensor *tg_from_u8(const uint8_t *d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_from_u8");
    return tg_from_data(d, TG_U8, s, dev);
}

tg_tensor *tg_full(tg_dtype dtype, tg_shape shape, double value, tg_device *dev) {
    TG_API_ENTER("tg_full");
    tg_tensor *t = new_tensor("tg_full", dtype, shape, dev);
    if (!t || dev->be->fill(t, value) != TG_OK) return NULL;
    return t;
}

tg_tensor *tg_zeros(tg_dtype dtype, tg_shape shape, tg_device *dev) {
    TG_API_ENTER("tg_zeros");
    return tg_full(dtype, shape, 0, dev);
}
tg_tensor *tg_ones(tg_dtype dtype, tg_shape shape, tg_device *dev) {
    TG_API_ENTER("tg_ones");
    return tg_full(dtype, shape, 1, dev);
}
tg_tensor *tg_scalar(tg_dtype dtype, double value, tg_device *dev) {
    TG_API_ENTER("tg_scalar");
    return tg_full(dtype, TG_SCALAR_SHAPE, value, dev);
}

tg_tensor *tg_full_like(const tg_tensor *t, double value) {
    TG_API_ENTER("tg_full_like");
    if (!t) return tg_last_status() ? NULL : tg_error_null(TG_ERR_INVALID, "tg_full_like: t is NULL");
    return tg_full(t->dtype, tg_shape_of(t), value, t->storage->dev);
}
tg_tensor *tg_zeros_like(const tg_tensor *t) {
    TG_API_ENTER("tg_zeros_like");
    return tg_full_like(t, 0);
}
tg_tensor *tg_ones_like(const tg_tensor *t) {
    TG_API_ENTER("tg_ones_like");
    return tg_full_like(t, 1);
}

/* The count is computed in double and checked before it becomes an int64: 1e30
 * elements would be undefined behaviour to convert, not just too many. */
tg_tensor *tg_arange(tg_dtype dtype, double start, double end, double step, tg_device *dev) {
    TG_API_ENTER("tg_arange");
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
        return tg_error_null(TG_ERR_INVALID, "tg_arange: bad range [%g, %g) step %g", start, end, step);
    double n = ceil((end - start) / step);
    if (!(n <= (double)TG_MAX_NUMEL)) /* also an infinite quotient: (1e308 - -1e308) / 1 */
        return tg_error_null(TG_ERR_INVALID, "tg_arange: [%g, %g) step %g has %g elements (at most %lld)", start,
                             end, step, n, (long long)TG_MAX_NUMEL);
    tg_tensor *t = new_tensor("tg_arange", dtype, TG_SHAPE(n > 0 ? (int64_t)n : 0), dev);
    if (!t || dev->be->arange(t, start, step) != TG_OK) return NULL;
    return t;
}

/* Computed on the host, from both ends as numpy and PyTorch do, so the last value is
 * exactly `end`; then converted to dtype on the device. The tensor is made (and its
 * size checked) before the host buffer, whose byte count then cannot overflow. */
tg_tensor *tg_linspace(tg_dtype dtype, double start, double end, int64_t steps, tg_device *dev) {
    TG_API_ENTER("tg_linspace");
    if (steps < 0) return tg_error_null(TG_ERR_INVALID, "tg_linspace: steps must be >= 0, got %lld", (long long)steps);
    if (steps > TG_MAX_NUMEL)
        return tg_error_null(TG_ERR_INVALID, "tg_linspace: %lld steps is too many (at most %lld)", (long long)steps,
                             (long long)TG_MAX_NUMEL);
    if (!check_args("tg_linspace", dtype, dev)) return NULL;
    tg_tensor *t = new_tensor("tg_linspace", dtype, TG_SHAPE(steps), dev);
    tg_tensor *host = t ? tg_tensor_new_unscoped(TG_F64, 1, t->shape, tg_cpu_device()) : NULL;
    if (!host) return NULL;
    double *v = host->storage->data;
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    for (int64_t i = 0; i < steps; i++) v[i] = i < (steps + 1) / 2 ? start + (double)i * step : end - (double)(steps - 1 - i) * step;
    tg_status st = TG_OK;
    if (dtype == TG_F64) st = dev->be->upload(dev, t->storage->data, 0, v, (size_t)steps * sizeof *v);
    else { /* narrow on the host, then upload the bytes */
        tg_tensor *narrow = tg_tensor_new_unscoped(dtype, 1, t->shape, tg_cpu_device());
        st = narrow ? tg_cpu_device()->be->copy(narrow, host) : tg_last_status();
        if (st == TG_OK) st = dev->be->upload(dev, t->storage->data, 0, narrow->storage->data, (size_t)steps * tg_elsize(dtype));
        tg_tensor_decref(narrow);
    }
    tg_tensor_decref(host);
    return st == TG_OK ? t : NULL;
}

tg_tensor *tg_eye(tg_dtype dtype, int64_t n, tg_device *dev) {
    TG_API_ENTER("tg_eye");
    if (n < 0) return tg_error_null(TG_ERR_INVALID, "tg_eye: n must be >= 0, got %lld", (long long)n);
    tg_tensor *t = tg_zeros(dtype, TG_SHAPE(n, n), dev);
    if (!t) return NULL;
    tg_tensor diag = *t; /* the diagonal as a strided 1-D view */
    diag.ndim = 1;
    diag.shape[0] = n;
    diag.strides[0] = n + 1;
    return dev->be->fill(&diag, 1) == TG_OK ? t : NULL;
}

/* ------------------------------------------------------------- random */

void tg_manual_seed(uint64_t seed) {
    TG_API_ENTER("tg_manual_seed");
    atomic_store(&g_seed, seed);
    atomic_store(&g_counter, 0);
}

tg_rng_state tg_get_rng_state(void) {
    return (tg_rng_state){ atomic_load(&g_seed), atomic_load(&g_counter) };
}

void tg_set_rng_state(tg_rng_state state) {
    TG_API_ENTER("tg_set_rng_state");
    atomic_store(&g_seed, state.seed);
    atomic_store(&g_counter, state.offset);
}

tg_status tg_random_fill(tg_rng_kind kind, tg_tensor *t, double p0, double p1) {
    uint64_t n = (uint64_t)tg_shape_numel(t->ndim, t->shape);
    uint64_t counter = atomic_fetch_add(&g_counter, n), seed = atomic_load(&g_seed);
    if (tg_tensor_is_dense(t)) return t->storage->dev->be->random(kind, t, seed, counter, p0, p1);
    tg_tensor *tmp = tg_tensor_new_unscoped(t->dtype, t->ndim, t->shape, t->storage->dev);
    if (!tmp) return tg_last_status();
    tg_status st = t->storage->dev->be->random(kind, tmp, seed, counter, p0, p1);
    if (st == TG_OK) st = t->storage->dev->be->copy(t, tmp);
    tg_tensor_decref(tmp);
    return st;
}

static tg_tensor *random_new(const char *name, tg_rng_kind kind, tg_dtype dtype, tg_shape shape, tg_device *dev,
                             double p0, double p1) {
    if (!check_args(name, dtype, dev)) return NULL;
    if (kind != TG_RNG_BERNOULLI && !tg_is_float(dtype))
        return tg_error_null(TG_ERR_DTYPE, "%s: expected a floating dtype (f32 or f64), got %s", name, tg_dtype_name(dtype));
    tg_tensor *t = new_tensor(name, dtype, shape, dev);
    if (!t) return NULL;
    return tg_random_fill(kind, t, p0, p1) == TG_OK ? t : NULL;
}

tg_tensor *tg_rand(tg_dtype d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_rand");
    return random_new("tg_rand", TG_RNG_UNIFORM, d, s, dev, 0, 1);
}
tg_tensor *tg_randn(tg_dtype d, tg_shape s, tg_device *dev) {
    TG_API_ENTER("tg_randn");
    return random_new("tg_randn", TG_RNG_NORMAL, d, s, dev, 0, 1);
}

/* Any dtype: 0 or 1 (an i64 or u8 mask, or floats). */
tg_tensor *tg_bernoulli(tg_dtype d, tg_shape s, double p, tg_device *dev) {
    TG_API_ENTER("tg_bernoulli");
    if (!(p >= 0 && p <= 1)) return tg_error_null(TG_ERR_INVALID, "tg_bernoulli: p must be in [0, 1], got %g", p);
    return random_new("tg_bernoulli", TG_RNG_BERNOULLI, d, s, dev, p, 0);
}

/* ------------------------------------------------------------- reading back */

tg_status tg_copy_to_host(const tg_tensor *t, void *dst, size_t nbytes) {
    TG_API_ENTER("tg_copy_to_host");
    if (!t || !dst) return tg_error(TG_ERR_INVALID, "tg_copy_to_host: NULL argument");
    size_t need = (size_t)tg_shape_numel(t->ndim, t->shape) * tg_elsize(t->dtype);
    if (nbytes < need)
        return tg_error(TG_ERR_INVALID, "tg_copy_to_host: buffer of %zu bytes, tensor needs %zu", nbytes, need);
    tg_device *dev = t->storage->dev;
    if (tg_tensor_is_dense(t))
        return dev->be->download(dev, dst, t->storage->data, (size_t)t->offset * tg_elsize(t->dtype), need);
    tg_tensor *tmp = tg_tensor_new_unscoped(t->dtype, t->ndim, t->shape, dev);
    if (!tmp) return tg_last_status();
    tg_status st = dev->be->copy(tmp, t);
    if (st == TG_OK) st = dev->be->download(dev, dst, tmp->storage->data, 0, need);
    tg_tensor_decref(tmp);
    return st;
}

double tg_item(const tg_tensor *t) {
    TG_API_ENTER("tg_item");
    if (!t) {
        if (tg_last_status() == TG_OK) tg_error(TG_ERR_INVALID, "tg_item: tensor is NULL");
        return NAN;
    }
    if (tg_shape_numel(t->ndim, t->shape) != 1) {
        char b[128];
        tg_error(TG_ERR_SHAPE, "tg_item: the tensor has shape %s; only one-element tensors have an item",
                 tg_shape_str(b, t->ndim, t->shape));
        return NAN;
    }
    union { float f; double d; int32_t i; int64_t l; uint8_t u; } v;
    if (tg_copy_to_host(t, &v, sizeof v) != TG_OK) return NAN;
    switch (t->dtype) {
    case TG_F32: return v.f;
    case TG_F64: return v.d;
    case TG_I32: return v.i;
    case TG_I64: return (double)v.l; /* nearest double past 2^53 */
    default: return v.u;
    }
}
