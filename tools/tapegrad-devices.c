/* tapegrad-devices: lists every device tapegrad can run on (the CPU, then each OpenCL
 * device in platform order) with the name tg_device_get takes.
 *
 *     tapegrad-devices [--json]
 *
 * Exit status 0; a machine without OpenCL lists the CPU alone. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

static void human_bytes(char *buf, size_t size, uint64_t n) {
    const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* Prints s as a JSON string body (quotes and backslashes escaped). */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 1 && !json) {
        fprintf(stderr, "usage: tapegrad-devices [--json]\n");
        return 2;
    }
    int n = tg_device_list(NULL, 0);
    tg_device_info *infos = calloc((size_t)n, sizeof *infos);
    if (!infos) return 1;
    n = tg_device_list(infos, n);
    if (json) printf("[\n");
    for (int i = 0; i < n; i++) {
        const tg_device_info *d = &infos[i];
        if (json) {
            printf("  {\"id\": ");
            json_str(d->id);
            printf(", \"name\": ");
            json_str(d->name);
            printf(", \"vendor\": ");
            json_str(d->vendor);
            printf(", \"platform\": ");
            json_str(d->platform);
            printf(", \"driver_version\": ");
            json_str(d->driver_version);
            printf(", \"kind\": \"%s\", \"gpu\": %s, \"compute_units\": %d, \"global_mem_bytes\": %" PRIu64
                   ", \"local_mem_bytes\": %" PRIu64 ", \"max_alloc_bytes\": %" PRIu64 ", \"fp64\": %s}%s\n",
                   d->kind == TG_DEVICE_CPU ? "cpu" : "opencl", d->is_gpu ? "true" : "false", d->compute_units,
                   d->global_mem_bytes, d->local_mem_bytes, d->max_alloc_bytes, d->fp64 ? "true" : "false",
                   i + 1 < n ? "," : "");
            continue;
        }
        char g[32], l[32], a[32];
        human_bytes(g, sizeof g, d->global_mem_bytes);
        human_bytes(l, sizeof l, d->local_mem_bytes);
        human_bytes(a, sizeof a, d->max_alloc_bytes);
        printf("%s: %s\n", d->id, d->name);
        if (d->kind == TG_DEVICE_OPENCL) {
            printf("  platform        %s\n", d->platform);
            printf("  vendor          %s\n", d->vendor);
            printf("  driver version  %s\n", d->driver_version);
            printf("  type            %s\n", d->is_gpu ? "GPU" : "not a GPU");
            printf("  compute units   %d\n", d->compute_units);
            printf("  global memory   %s (largest allocation %s)\n", g, a);
            printf("  local memory    %s per work-group\n", l);
        } else {
            printf("  threads         %d\n", d->compute_units);
            printf("  memory          %s\n", g);
        }
        printf("  fp64            %s\n", d->fp64 ? "yes" : "no");
    }
    if (json) printf("]\n");
    free(infos);
    return 0;
}
