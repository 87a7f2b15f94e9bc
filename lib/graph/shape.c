/* Shape and stride arithmetic shared by every layer. */
#include <stdio.h>
#include <string.h>

#include "lib/graph/tensor-impl.h"

int64_t tg_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void tg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

bool tg_shape_numel_checked(int ndim, const int64_t *shape, int64_t *numel) {
    /* The product of the nonzero sizes bounds every stride and byte count, so a shape
     * such as [0, 2^40, 2^40] (numel 0, strides 2^80) is refused too. */
    int64_t n = 1, nonzero = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return false;
        if (shape[i] == 0) {
            n = 0;
            continue;
        }
        if (nonzero > TG_MAX_NUMEL / shape[i]) return false;
        nonzero *= shape[i];
        n *= shape[i];
    }
    if (numel) *numel = n;
    return true;
}

/* Dense means row-major contiguous: axes of size 1 may have any stride, and an empty
 * tensor is dense whatever its strides. */
bool tg_tensor_is_dense(const tg_tensor *t) {
    if (tg_shape_numel(t->ndim, t->shape) == 0) return true;
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool tg_shape_equal(int na, const int64_t *a, int nb, const int64_t *b) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

const char *tg_shape_str(char *buf, int ndim, const int64_t *shape) {
    int pos = snprintf(buf, 128, "[");
    for (int i = 0; i < ndim && pos < 120; i++)
        pos += snprintf(buf + pos, (size_t)(128 - pos), i ? ",%lld" : "%lld", (long long)shape[i]);
    snprintf(buf + pos, (size_t)(128 - pos), "]");
    return buf;
}

bool tg_axis_norm(int *axis, int ndim) {
    int a = *axis < 0 ? *axis + ndim : *axis;
    if (a < 0 || a >= ndim) return false;
    *axis = a;
    return true;
}
