/* Shape and stride arithmetic shared by every layer. */
#include <stdio.h>
#include <string.h>

#include "lib/graph/tensor-impl.h"

/* Never overflows: a product past int64 saturates (INT64_MAX or INT64_MIN by sign),
 * and a zero size gives 0 whatever the others, so a shape that no tensor can have
 * (an unchecked one from user input) still compares unequal to every real count. */
int64_t tg_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    bool overflow = false, negative = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) return 0;
        if (shape[i] < 0) negative = !negative;
        if (!overflow && __builtin_mul_overflow(n, shape[i], &n)) overflow = true;
    }
    return overflow ? (negative ? INT64_MIN : INT64_MAX) : n;
}

/* Sizes of 0 count as 1, so every stride is bounded by the product of the nonzero
 * sizes; a product past int64 (a shape tg_shape_numel_checked refuses) saturates. */
void tg_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        if (shape[i] > 0 && __builtin_mul_overflow(s, shape[i], &s)) s = INT64_MAX;
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
        if (__builtin_mul_overflow(s, t->shape[i], &s)) return false;
    }
    return true;
}

bool tg_shape_equal(int na, const int64_t *a, int nb, const int64_t *b) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* Eight 20-digit sizes do not fit 128 bytes: sizes that would not fit whole are left
 * out as ",...]", and the result always ends in ']'. */
const char *tg_shape_str(char *buf, int ndim, const int64_t *shape) {
    enum { SIZE = 128, TAIL = 5 }; /* room kept for ",...]" and the NUL */
    size_t pos = 1;
    buf[0] = '[';
    for (int i = 0; i < ndim; i++) {
        char item[32];
        int n = snprintf(item, sizeof item, i ? ",%lld" : "%lld", (long long)shape[i]);
        if (n < 0 || pos + (size_t)n + TAIL > SIZE) {
            memcpy(buf + pos, i ? ",..." : "...", i ? 4 : 3);
            pos += i ? 4 : 3;
            break;
        }
        memcpy(buf + pos, item, (size_t)n);
        pos += (size_t)n;
    }
    buf[pos++] = ']';
    buf[pos] = '\0';
    return buf;
}

bool tg_axis_norm(int *axis, int ndim) {
    if (ndim < 0 || *axis < -ndim || *axis >= ndim) return false; /* also keeps *axis + ndim in range */
    int a = *axis < 0 ? *axis + ndim : *axis;
    if (a < 0 || a >= ndim) return false;
    *axis = a;
    return true;
}
