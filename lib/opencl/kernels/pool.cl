/* 2-D pooling kernels (lib/opencl/pool.c). */
