/* The OpenCL caching allocator and host transfers. A storage's data is a cl_mem of a
 * size class (the CPU allocator's: quarters of powers of two); freed buffers wait on a
 * free list per class and are handed out again, so a training step in steady state
 * makes no clCreateBuffer. Reusing a buffer at once is safe: the one in-order queue
 * runs every later command after the earlier ones that still read it.
 * Requests above the device's largest allocation, or that would take the buffers
 * past its global memory, fail with TG_ERR_NOMEM naming the device and the size;
 * before failing, the cache is emptied and the request retried. */
#include <stdlib.h>

#include "lib/graph/error.h"
#include "lib/graph/size-class.h"
#include "lib/opencl/opencl.h"

#define class_size tg_size_class_bytes /* the size classes shared with the CPU allocator */
#define size_class tg_size_class_of

static void release_cached(tg_cl_device *d) {
    for (int c = 0; c < TG_CL_NCLASSES; c++) {
        while (d->free_list[c]) {
            tg_cl_block *b = d->free_list[c];
            d->free_list[c] = b->next;
            clReleaseMemObject(b->mem);
            d->bytes_device -= class_size(c);
            free(b);
        }
    }
    d->base.stats.bytes_cached = 0;
}

static tg_status nomem(tg_cl_device *d, size_t nbytes, const char *why) {
    return tg_error(TG_ERR_NOMEM, "out of device memory on %s (%s): %zu bytes requested: %s", d->id, d->name,
                    nbytes, why);
}

tg_status tg_cl_alloc(tg_device *dev, size_t nbytes, void **out) {
    tg_cl_device *d = dev->impl;
    char why[160];
    if (nbytes > d->max_alloc) {
        snprintf(why, sizeof why, "more than the device's largest allocation (%llu bytes)",
                 (unsigned long long)d->max_alloc);
        return nomem(d, nbytes, why);
    }
    int c = size_class(nbytes);
    size_t size = class_size(c);
    if (size > d->max_alloc) size = nbytes; /* not cached: tg_cl_free releases it */
    pthread_mutex_lock(&d->lock);
    tg_cl_block *b = size == class_size(c) ? d->free_list[c] : NULL;
    if (b) {
        d->free_list[c] = b->next;
        dev->stats.bytes_cached -= size;
        pthread_mutex_unlock(&d->lock);
        *out = b->mem;
        free(b);
        return TG_OK;
    }
    if (d->bytes_device + size > d->global_mem) release_cached(d);
    bool fits = d->bytes_device + size <= d->global_mem;
    cl_int e = CL_SUCCESS;
    cl_mem m = fits ? clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, size, NULL, &e) : NULL;
    if (fits && !m) {
        release_cached(d);
        m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE, size, NULL, &e);
    }
    if (m) {
        d->bytes_device += size;
        dev->stats.allocations++;
    }
    size_t used = d->bytes_device;
    pthread_mutex_unlock(&d->lock);
    if (!fits) {
        snprintf(why, sizeof why, "%zu bytes of buffers exist and the device has %llu", used,
                 (unsigned long long)d->global_mem);
        return nomem(d, nbytes, why);
    }
    if (!m) {
        snprintf(why, sizeof why, "clCreateBuffer failed: %s", tg_cl_errname(e));
        return nomem(d, nbytes, why);
    }
    *out = m;
    return TG_OK;
}

void tg_cl_free(tg_device *dev, void *data, size_t nbytes) {
    tg_cl_device *d = dev->impl;
    if (!data) return;
    int c = size_class(nbytes);
    size_t size = class_size(c);
    tg_cl_block *b = size <= d->max_alloc ? malloc(sizeof *b) : NULL;
    pthread_mutex_lock(&d->lock);
    if (b) {
        b->mem = data;
        b->next = d->free_list[c];
        d->free_list[c] = b;
        dev->stats.bytes_cached += size;
    } else {
        clReleaseMemObject(data);
        d->bytes_device -= size <= d->max_alloc ? size : nbytes;
    }
    pthread_mutex_unlock(&d->lock);
}

void tg_cl_empty_cache(tg_device *dev) {
    tg_cl_device *d = dev->impl;
    pthread_mutex_lock(&d->lock);
    release_cached(d);
    pthread_mutex_unlock(&d->lock);
}

/* Blocking, so the caller's host memory is free to reuse on return (and, for reads,
 * holds the values): the only points where the host waits for the device. */
/* Pinned host memory: a buffer the driver allocates in host memory
 * (CL_MEM_ALLOC_HOST_PTR), mapped once for the host to use; reads and writes between
 * it and device buffers need no extra copy through the driver's own staging. */
tg_status tg_cl_host_alloc(tg_device *dev, size_t nbytes, void **ptr, void **handle) {
    tg_cl_device *d = dev->impl;
    cl_int e;
    cl_mem m = clCreateBuffer(d->ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, nbytes ? nbytes : 1, NULL, &e);
    if (e != CL_SUCCESS) return tg_cl_fail(d, "clCreateBuffer (pinned host memory)", e);
    void *p = clEnqueueMapBuffer(d->queue, m, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, nbytes ? nbytes : 1, 0, NULL,
                                 NULL, &e);
    if (e != CL_SUCCESS) {
        clReleaseMemObject(m);
        return tg_cl_fail(d, "clEnqueueMapBuffer (pinned host memory)", e);
    }
    *ptr = p;
    *handle = m;
    return TG_OK;
}

void tg_cl_host_free(tg_device *dev, void *ptr, void *handle) {
    tg_cl_device *d = dev->impl;
    clEnqueueUnmapMemObject(d->queue, (cl_mem)handle, ptr, 0, NULL, NULL);
    clFinish(d->queue);
    clReleaseMemObject((cl_mem)handle);
}

tg_status tg_cl_upload(tg_device *dev, void *dst, size_t off, const void *src, size_t n) {
    tg_cl_device *d = dev->impl;
    if (!n) return TG_OK;
    cl_int e = clEnqueueWriteBuffer(d->queue, (cl_mem)dst, CL_TRUE, off, n, src, 0, NULL, NULL);
    tg_cl_count_transfer(d);
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, "clEnqueueWriteBuffer", e);
}

tg_status tg_cl_download(tg_device *dev, void *dst, const void *src, size_t off, size_t n) {
    tg_cl_device *d = dev->impl;
    if (!n) return TG_OK;
    cl_int e = clEnqueueReadBuffer(d->queue, (cl_mem)src, CL_TRUE, off, n, dst, 0, NULL, NULL);
    tg_cl_count_transfer(d);
    tg_cl_register_drain(false); /* after kernels the driver compiled as it ran them */
    return e == CL_SUCCESS ? TG_OK : tg_cl_fail(d, "clEnqueueReadBuffer", e);
}
