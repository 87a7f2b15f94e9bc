/* Run-time dispatch of the SIMD kernels: one table per level, each filled with the C
 * twins first and then overridden by what the level provides; the best level this CPU
 * supports is the one tg_simd() returns. Built once, under pthread_once. */
#include <pthread.h>

#include "lib/cpu/simd/simd.h"

#define TG_SIMD_LEVELS 3

static tg_simd_table g_tables[TG_SIMD_LEVELS];
static int g_have[TG_SIMD_LEVELS];
static int g_best;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void tg_simd_init(void)
{
    tg_simd_fill_c(&g_tables[0]);
    g_have[0] = 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the wider registers. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        g_tables[1] = g_tables[0];
        tg_simd_fill_avx2(&g_tables[1]);
        g_have[1] = 1;
        g_best = 1;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) {
            g_tables[2] = g_tables[1];
            tg_simd_fill_avx512(&g_tables[2]);
            g_have[2] = 1;
            g_best = 2;
        }
    }
#endif
}

const tg_simd_table *tg_simd(void)
{
    pthread_once(&g_once, tg_simd_init);
    return &g_tables[g_best];
}

const tg_simd_table *tg_simd_level(int level)
{
    pthread_once(&g_once, tg_simd_init);
    if (level < 0 || level >= TG_SIMD_LEVELS || !g_have[level])
        return NULL;
    return &g_tables[level];
}
