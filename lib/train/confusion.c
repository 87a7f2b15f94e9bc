/* The confusion matrix of a classifier (sklearn's layout: rows are the true class) and
 * per-class accuracy, counted on the host from the predictions and labels, and the
 * helper that reads a tensor's values to the host for the image plots. */
#include <math.h>
#include <stdlib.h>

#include "lib/train/svg.h"

/* NULL in: keeps the message of the call that failed to make it, else says which. */
static bool present(const char *api, const char *arg, const tg_tensor *t) {
    if (t) return true;
    if (tg_last_status() == TG_OK) tg_error(TG_ERR_INVALID, "%s: %s is NULL", api, arg);
    return false;
}

static bool is_index(tg_dtype d) { return d == TG_I32 || d == TG_I64; }

double *tg_train_host_values(const char *api, tg_tensor *t) {
    int64_t n = tg_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return tg_error_null(TG_ERR_NOMEM, "%s: out of memory", api);
    tg_dtype d = tg_dtype_of(t);
    bool ok;
    if (d == TG_F64) {
        ok = tg_copy_to_host(t, v, (size_t)n * sizeof *v) == TG_OK;
    } else { /* f32 and integers through a type every device has: no f64 on the device */
        bool flt = d == TG_F32;
        tg_tensor *c = flt ? t : tg_cast(t, TG_I64);
        void *tmp = malloc((size_t)(n ? n : 1) * 8);
        ok = c && tmp && tg_copy_to_host(c, tmp, (size_t)n * (flt ? 4 : 8)) == TG_OK;
        for (int64_t i = 0; ok && i < n; i++) v[i] = flt ? (double)((float *)tmp)[i] : (double)((int64_t *)tmp)[i];
        free(tmp);
    }
    if (ok) return v;
    free(v);
    if (!tg_last_status()) tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    return NULL;
}

static void shape_str(char *buf, size_t size, tg_shape s) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < s.ndim && n < size; i++) n += (size_t)snprintf(buf + n, size - n, i ? ",%lld" : "%lld", (long long)s.dims[i]);
}

/* The predicted class of each sample: pred itself, or the argmax of scores. */
static tg_tensor *predictions(const char *api, tg_tensor *pred, tg_tensor *labels, int64_t c) {
    char a[160], b[160];
    tg_shape ps = tg_shape_of(pred), ls = tg_shape_of(labels);
    bool scores = !is_index(tg_dtype_of(pred));
    bool fits = ps.ndim == ls.ndim + (scores ? 1 : 0) && (!scores || ps.dims[ps.ndim - 1] == c);
    for (int i = 0; fits && i < ls.ndim; i++) fits = ps.dims[i] == ls.dims[i];
    if (!fits) {
        shape_str(a, sizeof a, ps);
        shape_str(b, sizeof b, ls);
        return tg_error_null(TG_ERR_SHAPE, "%s: pred [%s] does not fit labels [%s] (class indices of the labels' shape, "
                             "or scores with one more axis of num_classes = %lld)", api, a, b, (long long)c);
    }
    return scores ? tg_argmax(pred, -1, false) : pred;
}

tg_tensor *tg_confusion_matrix(tg_tensor *pred, tg_tensor *labels, int64_t num_classes) {
    TG_API_ENTER("tg_confusion_matrix");
    const char *api = "tg_confusion_matrix";
    if (!present(api, "pred", pred) || !present(api, "labels", labels)) return NULL;
    if (num_classes < 1 || num_classes > 65536)
        return tg_error_null(TG_ERR_INVALID, "%s: num_classes is %lld (must be 1-65536)", api, (long long)num_classes);
    if (!is_index(tg_dtype_of(labels)))
        return tg_error_null(TG_ERR_DTYPE, "%s: labels must be i32 or i64, got %s", api, tg_dtype_name(tg_dtype_of(labels)));
    tg_dtype pd = tg_dtype_of(pred);
    if (!is_index(pd) && pd != TG_F32 && pd != TG_F64)
        return tg_error_null(TG_ERR_DTYPE, "%s: pred must be i32/i64 classes or f32/f64 scores, got %s", api, tg_dtype_name(pd));
    tg_tensor *p = predictions(api, pred, labels, num_classes);
    if (!p) return NULL;
    int64_t n = tg_numel(labels), c = num_classes;
    double *pv = tg_train_host_values(api, p), *lv = pv ? tg_train_host_values(api, labels) : NULL;
    int64_t *counts = lv ? calloc((size_t)(c * c), sizeof *counts) : NULL;
    tg_tensor *out = NULL;
    if (lv && !counts) tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    for (int64_t i = 0; counts && i < n; i++) {
        bool bad_l = !(lv[i] >= 0 && lv[i] < (double)c), bad_p = !(pv[i] >= 0 && pv[i] < (double)c);
        if (bad_l || bad_p) {
            tg_error(TG_ERR_INVALID, "%s: %s[%lld] is %lld, outside [0, %lld)", api, bad_l ? "labels" : "pred",
                     (long long)i, (long long)(bad_l ? lv[i] : pv[i]), (long long)c);
            goto fail;
        }
        counts[(int64_t)lv[i] * c + (int64_t)pv[i]]++;
    }
    if (counts) out = tg_from_i64(counts, TG_SHAPE(c, c), tg_device_of(labels));
fail:
    free(pv), free(lv), free(counts);
    return out;
}

tg_tensor *tg_per_class_accuracy(tg_tensor *counts) {
    TG_API_ENTER("tg_per_class_accuracy");
    const char *api = "tg_per_class_accuracy";
    if (!present(api, "counts", counts)) return NULL;
    int64_t c = tg_ndim(counts) == 2 ? tg_size(counts, 0) : -1;
    if (c < 1 || tg_size(counts, 1) != c)
        return tg_error_null(TG_ERR_SHAPE, "%s: counts must be a square (C, C) matrix", api);
    double *v = tg_train_host_values(api, counts);
    float *acc = v ? malloc((size_t)c * sizeof *acc) : NULL;
    tg_tensor *out = NULL;
    if (v && !acc) tg_error(TG_ERR_NOMEM, "%s: out of memory", api);
    for (int64_t i = 0; acc && i < c; i++) {
        double row = 0;
        for (int64_t j = 0; j < c; j++) row += v[i * c + j];
        acc[i] = row > 0 ? (float)(v[i * c + i] / row) : NAN;
    }
    if (acc) out = tg_from_f32(acc, TG_SHAPE(c), tg_device_of(counts));
    free(v), free(acc);
    return out;
}
