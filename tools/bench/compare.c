/* tapegrad-bench --compare A.json B.json: two runs (two machines, two builds) side by
 * side, workload by workload and target by target: each rate, B's over A's, and each as
 * a fraction of its own machine's roofline, since machines differ in peak and bandwidth. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef TG_HAVE_CJSON
#include <cjson/cJSON.h>

static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "tapegrad-bench: cannot open '%s'\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    buf[got] = '\0';
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j || !cJSON_IsArray(cJSON_GetObjectItem(j, "results")))
        fprintf(stderr, "tapegrad-bench: '%s' is not a tapegrad-bench JSON result\n", path), cJSON_Delete(j), j = NULL;
    return j;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}
static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const cJSON *find(const cJSON *results, const char *workload, const char *target) {
    const cJSON *r;
    cJSON_ArrayForEach(r, results) if (!strcmp(str(r, "workload"), workload) && !strcmp(str(r, "target"), target)) return r;
    return NULL;
}

static void print_machine(const char *tag, const cJSON *j) {
    printf("%s: %s, %d threads, %s\n", tag, str(j, "cpu"), (int)num(j, "threads"), str(j, "when"));
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItem(j, "limits"))
        printf("    %-10s %-36.36s peak %8.1f GFLOP/s, bandwidth %6.1f GB/s\n", str(l, "target"), str(l, "name"),
               num(l, "peak_gflops"), num(l, "bandwidth_gbs"));
}

int bench_compare(const char *a_path, const char *b_path) {
    cJSON *a = read_json(a_path), *b = read_json(b_path);
    if (!a || !b) {
        cJSON_Delete(a), cJSON_Delete(b);
        return 1;
    }
    print_machine("A", a);
    print_machine("B", b);
    printf("\n%-26s %-18s %10s %10s %7s %9s %9s\n", "workload", "target", "A rate", "B rate", "B/A", "A roof", "B roof");
    const cJSON *ra, *rb = cJSON_GetObjectItem(b, "results");
    cJSON_ArrayForEach(ra, cJSON_GetObjectItem(a, "results")) {
        const cJSON *m = find(rb, str(ra, "workload"), str(ra, "target"));
        double x = num(ra, "rate"), y = m ? num(m, "rate") : 0;
        printf("%-26s %-18s %10.1f ", str(ra, "workload"), str(ra, "target"), x);
        if (y > 0) printf("%10.1f %6.2fx", y, x > 0 ? y / x : 0);
        else printf("%10s %7s", "-", "");
        printf(" %8.0f%% %8.0f%%  %s\n", 100 * num(ra, "roofline"), m ? 100 * num(m, "roofline") : 0, str(ra, "unit"));
    }
    cJSON_Delete(a), cJSON_Delete(b);
    return 0;
}
#else
int bench_compare(const char *a, const char *b) {
    (void)a, (void)b;
    fprintf(stderr, "tapegrad-bench: --compare needs cJSON; this build has none\n");
    return 1;
}
#endif
