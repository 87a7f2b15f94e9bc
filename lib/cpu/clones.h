/* Loops built for AVX-512 and AVX2 beside the baseline and picked at load time (GCC's
 * target_clones), for CPU kernels whose hot loops are plain C the compiler vectorises.
 * Every lane does the same operations in each clone and -std=c11 contracts nothing into
 * FMAs, so each clone gives the same bits as the baseline. Not under ThreadSanitizer:
 * the clones' resolvers run while the dynamic loader relocates the program, before the
 * TSan runtime is up, and instrumented code crashes there. */
#ifndef TG_CPU_CLONES_H
#define TG_CPU_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(__SANITIZE_THREAD__)
#define TG_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TG_CPU_CLONES
#endif

/* For the helpers of the hot loops: inlined into each clone (a plain static inline one
 * may stay a call to its baseline SSE2 copy). */
#define TG_CPU_INLINE static inline __attribute__((always_inline))

#endif
