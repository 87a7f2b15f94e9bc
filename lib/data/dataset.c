/* Datasets: a length and get(i) giving one sample of a few tensors. Two kinds: views
 * into tensors along their first axis (PyTorch's TensorDataset) and user callbacks (lazy
 * readers). The loader (loader.c) calls get from its worker threads. */
#include <stdlib.h>
#include <string.h>

#include "lib/graph/error.h"
#include "lib/graph/tensor-impl.h"
#include "tapegrad/data.h"

struct tg_dataset {
    int64_t length;
    int n_fields;
    tg_tensor *tensors[TG_SAMPLE_MAX_FIELDS]; /* owned refs; NULL for a callback dataset */
    tg_dataset_callbacks cb;
};

tg_dataset *tg_dataset_from_tensors(int n, tg_tensor *const *tensors) {
    TG_API_ENTER("tg_dataset_from_tensors");
    if (n < 1 || n > TG_SAMPLE_MAX_FIELDS)
        return tg_error_null(TG_ERR_INVALID, "tg_dataset_from_tensors: expected 1 to %d tensors, got %d",
                             TG_SAMPLE_MAX_FIELDS, n);
    if (!tensors) return tg_error_null(TG_ERR_INVALID, "tg_dataset_from_tensors: tensors is NULL");
    for (int i = 0; i < n; i++) {
        if (!tg_tensor_check("tg_dataset_from_tensors", "a tensor", tensors[i])) return NULL;
        if (tensors[i]->ndim == 0)
            return tg_error_null(TG_ERR_SHAPE, "tg_dataset_from_tensors: tensor %d is 0-d (it needs a first axis "
                                 "to index)", i);
        if (tensors[i]->shape[0] != tensors[0]->shape[0])
            return tg_error_null(TG_ERR_SHAPE, "tg_dataset_from_tensors: size mismatch between tensors: tensor 0 "
                                 "has %lld samples, tensor %d has %lld", (long long)tensors[0]->shape[0], i,
                                 (long long)tensors[i]->shape[0]);
    }
    tg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return tg_error_null(TG_ERR_NOMEM, "tg_dataset_from_tensors: out of host memory");
    ds->length = tensors[0]->shape[0];
    ds->n_fields = n;
    for (int i = 0; i < n; i++) {
        ds->tensors[i] = tensors[i];
        tg_tensor_incref(tensors[i]);
    }
    return ds;
}

tg_dataset *tg_dataset_from_callbacks(const tg_dataset_callbacks *cb) {
    TG_API_ENTER("tg_dataset_from_callbacks");
    if (!cb || !cb->get) return tg_error_null(TG_ERR_INVALID, "tg_dataset_from_callbacks: %s is NULL",
                                              cb ? "get" : "callbacks");
    if (cb->length < 0)
        return tg_error_null(TG_ERR_INVALID, "tg_dataset_from_callbacks: length must be >= 0, got %lld",
                             (long long)cb->length);
    if (cb->n_fields < 1 || cb->n_fields > TG_SAMPLE_MAX_FIELDS)
        return tg_error_null(TG_ERR_INVALID, "tg_dataset_from_callbacks: n_fields must be 1 to %d, got %d",
                             TG_SAMPLE_MAX_FIELDS, cb->n_fields);
    tg_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return tg_error_null(TG_ERR_NOMEM, "tg_dataset_from_callbacks: out of host memory");
    ds->length = cb->length;
    ds->n_fields = cb->n_fields;
    ds->cb = *cb;
    return ds;
}

int64_t tg_dataset_len(const tg_dataset *ds) {
    TG_API_ENTER("tg_dataset_len");
    if (!ds) return tg_error(TG_ERR_INVALID, "tg_dataset_len: dataset is NULL"), -1;
    return ds->length;
}

int tg_dataset_num_fields(const tg_dataset *ds) {
    TG_API_ENTER("tg_dataset_num_fields");
    if (!ds) return tg_error(TG_ERR_INVALID, "tg_dataset_num_fields: dataset is NULL"), -1;
    return ds->n_fields;
}

/* A callback's tensors end up owned by the current scope: what it made there stays,
 * and one that lives longer (a cached tensor) gets a reference of that scope. */
static tg_status get_callback(const tg_dataset *ds, int64_t index, tg_tensor **out) {
    tg_api_saved sv = tg_api_suspend();
    tg_clear_error();
    tg_status st = ds->cb.get(ds->cb.ctx, index, out);
    tg_api_resume(sv);
    for (int f = 0; f < ds->n_fields && st == TG_OK; f++) {
        if (!out[f]) {
            st = tg_last_status() != TG_OK ? tg_last_status()
                                           : tg_error(TG_ERR_INVALID, "get left field %d of sample %lld NULL", f,
                                                      (long long)index);
        } else if (!tg_tensor_check("get", "a sample tensor", out[f])) {
            st = tg_last_status();
        } else if (!tg_scope_owns(out[f])) {
            tg_tensor_incref(out[f]);
            st = tg_scope_add(out[f]);
        }
    }
    if (st != TG_OK && tg_last_status() == TG_OK)
        tg_error(st, "get failed with %s for sample %lld", tg_status_str(st), (long long)index);
    return st;
}

tg_status tg_dataset_get(const tg_dataset *ds, int64_t index, tg_tensor **out) {
    TG_API_ENTER("tg_dataset_get");
    if (!ds || !out) return tg_error(TG_ERR_INVALID, "tg_dataset_get: %s is NULL", ds ? "out" : "dataset");
    if (index < 0 || index >= ds->length)
        return tg_error(TG_ERR_INVALID, "tg_dataset_get: index %lld is out of range for a dataset of %lld samples",
                        (long long)index, (long long)ds->length);
    if (!ds->tensors[0]) return get_callback(ds, index, out);
    for (int f = 0; f < ds->n_fields; f++) {
        out[f] = tg_squeeze(tg_slice(ds->tensors[f], 0, index, index + 1, 1), 0);
        if (!out[f]) return tg_last_status();
    }
    return TG_OK;
}

void tg_dataset_free(tg_dataset *ds) {
    if (!ds) return;
    for (int f = 0; f < ds->n_fields; f++)
        if (ds->tensors[f]) tg_tensor_decref(ds->tensors[f]);
    if (ds->cb.free_ctx) ds->cb.free_ctx(ds->cb.ctx);
    free(ds);
}
