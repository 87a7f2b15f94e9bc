/* Listing the devices tapegrad can run on. Included by tapegrad.h. */
#ifndef TAPEGRAD_DEVICES_H
#define TAPEGRAD_DEVICES_H

#include "tapegrad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TG_DEVICE_CPU, TG_DEVICE_OPENCL } tg_device_kind;

typedef struct {
    char name[128];           /* "cpu" or the OpenCL device name */
    char id[32];              /* what tg_device_get takes: "cpu", "opencl:0", ... */
    char vendor[128];
    char platform[128];       /* OpenCL platform name; "" for the CPU path */
    char driver_version[64];
    tg_device_kind kind;
    bool is_gpu;
    int compute_units;        /* OpenCL compute units; CPU: threads in use */
    uint64_t global_mem_bytes;
    uint64_t local_mem_bytes; /* per work-group; 0 for the CPU path */
    uint64_t max_alloc_bytes;
    bool fp64;                /* f64 tensors supported */
} tg_device_info;

/* Fills up to max entries (the CPU first, then every OpenCL device in platform order)
 * and returns how many devices there are. out may be NULL to count. */
TG_API int tg_device_list(tg_device_info *out, int max);
TG_API tg_status tg_device_get_info(const tg_device *dev, tg_device_info *out);

#ifdef __cplusplus
}
#endif
#endif
