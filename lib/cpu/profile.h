/* TG_CPU_PROFILE=1: the CPU kernels timed by kind (profile.c). */
#ifndef TG_CPU_PROFILE_H
#define TG_CPU_PROFILE_H

#include "lib/graph/backend.h"

/* plain itself, or (TG_CPU_PROFILE=1 in the environment) a table that times each
 * kernel kind around plain's and prints the totals at exit. Call once. */
const tg_backend *tg_cpu_profiled(const tg_backend *plain);

#endif
