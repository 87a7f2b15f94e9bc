/* The peers of tapegrad-bench (peers.c, blas_child.c). */
#ifndef TG_TOOL_PEERS_H
#define TG_TOOL_PEERS_H

#include "bench.h"

typedef struct {
    const char *python;       /* the interpreter with torch: /usr/bin/python3 */
    const char *torch_script; /* peer_torch.py */
    const char *self;         /* this program, for --blas-child */
    const char *coretype;     /* OPENBLAS_CORETYPE for the peers, NULL: OpenBLAS's own choice */
    int threads;
    bench_timing timing;
} bench_peer_opts;

/* Each runs its peer on the workloads it knows among ws[0..n), adds a result per
 * workload measured, and returns how many; note says what ran (the kernel) or why not. */
int bench_peer_torch(const bench_peer_opts *o, const bench_workload *ws, int n, bench_run *run, char *note,
                     size_t note_size);
int bench_peer_blas(const bench_peer_opts *o, const bench_workload *ws, int n, bench_run *run, char *note,
                    size_t note_size);

/* The OpenBLAS core type at which the system BLAS runs fastest here ("" for its own
 * detection), timing 512^3 SGEMM under each candidate the CPU supports; why lists them. */
const char *bench_pick_coretype(const bench_peer_opts *o, char *why, size_t why_size);

/* The child side of bench_peer_blas: argv = sizes ("512,1024"), budget seconds, threads.
 * Prints the peer JSON on stdout; returns the exit status. */
int bench_blas_child(int argc, char **argv);

#endif
