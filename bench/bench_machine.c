/* The machine's limits alone: CPU model, f32 FMA peak on 1 thread and on every usable
 * CPU, triad bandwidth on 1 thread and on every usable CPU. Other benchmarks print the
 * same probe (machine.h) beside their figures. Measures, never asserts.
 * Usage: bench_machine [--json] [--threads N]   (N: default, the CPUs usable) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"

int main(int argc, char **argv) {
    int json = 0, threads = bench_cpu_count();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--json] [--threads N]\n", argv[0]);
            return 2;
        }
    }
    bench_machine m;
    bench_machine_probe(&m, threads);
    double med1, triad1 = bench_triad_gbs(1, 9, &med1);
    if (json) {
        printf("{\"machine\": ");
        bench_machine_json(stdout, &m);
        printf(", \"triad1_gbs\": %.2f, \"triad1_median_gbs\": %.2f}\n", triad1, med1);
        return 0;
    }
    bench_machine_print(stdout, &m);
    printf("triad on 1 thread: %.1f GB/s (best of 9; median %.1f)\n", triad1, med1);
    printf("per core: %.1f GFLOP/s alone, %.1f with all %d threads busy\n", m.peak1, m.peak / m.threads,
           m.threads);
    return 0;
}
