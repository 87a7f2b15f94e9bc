/* The peers of tapegrad-bench (peers.c, blas_child.c). */
#ifndef TG_TOOL_PEERS_H
#define TG_TOOL_PEERS_H

#include "bench.h"

typedef struct {
    const char *python;       /* Debian's interpreter with torch 1.x: /usr/bin/python3 */
    const char *venv_python;  /* build/peers-venv/bin/python (torch 2.x, onnxruntime); NULL: none */
    const char *torch_script; /* peer_torch.py */
    const char *ort_script;   /* peer_onnxruntime.py */
    const char *self;         /* this program, for --blas-child */
    const char *coretype;     /* OPENBLAS_CORETYPE for the peers, NULL: OpenBLAS's own choice */
    const char *omp_wait;     /* OMP_WAIT_POLICY for the Python peers, NULL: the runtime's own */
    int threads;
    bench_timing timing;
} bench_peer_opts;

/* Each runs its peer on the workloads it knows among ws[0..n), adds a result per
 * workload measured, and returns how many; note says what ran (the kernel) or why not.
 * bench_peer_python runs script (peer_torch.py or peer_onnxruntime.py) under python,
 * which names its own targets ("pytorch-cpu" for torch 1.x, "pytorch2-cpu" and
 * "pytorch2-cuda" for torch 2.x, "onnxruntime-cpu"). */
int bench_peer_python(const bench_peer_opts *o, const char *python, const char *script, const bench_workload *ws,
                      int n, bench_run *run, char *note, size_t note_size);
int bench_peer_blas(const bench_peer_opts *o, const bench_workload *ws, int n, bench_run *run, char *note,
                    size_t note_size);

/* The OpenBLAS core type at which the system BLAS runs fastest here ("" for its own
 * detection), timing 512^3 SGEMM under each candidate the CPU supports; why lists them. */
const char *bench_pick_coretype(const bench_peer_opts *o, char *why, size_t why_size);

/* The OMP_WAIT_POLICY at which script (peer_torch.py) runs fastest under python: NULL
 * (OpenMP's default, spinning) or "passive" (threads sleep at once; far faster on a
 * machine with more runnable threads than cores), timing a 256^3 GEMM and an MLP forward
 * under each; why says what it measured. */
const char *bench_pick_omp_wait(const bench_peer_opts *o, const char *python, const char *script, char *why,
                                size_t why_size);

/* The child side of bench_peer_blas: argv = sizes ("512,1024"), budget seconds, threads.
 * Prints the peer JSON on stdout; returns the exit status. */
int bench_blas_child(int argc, char **argv);

#endif
