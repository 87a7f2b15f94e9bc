/* Normalisation kernels (lib/opencl/norm.c). */
