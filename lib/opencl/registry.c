/* The OpenCL backend's entry in the graph layer's backend table. */
#include "lib/opencl/opencl.h"

tg_device *tg_opencl_device(int index);           /* device.c */
int tg_opencl_list(tg_device_info *out, int max); /* device.c */
tg_status tg_opencl_info(const tg_device *dev, tg_device_info *out);

static void synchronize(tg_device *dev) {
    tg_cl_device *d = (tg_cl_device *)dev;
    pthread_mutex_lock(&d->lock);
    if (d->queue) clFinish(d->queue);
    pthread_mutex_unlock(&d->lock);
}

const tg_backend_registration tg_backend_opencl = {
    .name = "opencl",
    .indexed = true,
    .open = tg_opencl_device,
    .list = tg_opencl_list,
    .info = tg_opencl_info,
    .synchronize = synchronize,
};
