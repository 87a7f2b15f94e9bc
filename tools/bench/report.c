/* tapegrad-bench's outputs: a table for people, JSON for tools, and an SVG chart of each
 * figure as a fraction of its device's measured roofline. */
#include <math.h>
#include <string.h>

#include "bench.h"

static const char *unit_of(const bench_result *r) { return r->work.flops > 0 ? "GFLOP/s" : "GB/s"; }

/* ---------------------------------------------------------------- table */

static void print_limits(FILE *f, const bench_run *run) {
    fprintf(f, "CPU: %s, %d threads; load average %.2f before, %.2f after\n", run->cpu, run->threads,
            run->load_before, run->load_after);
    for (int i = 0; i < run->n_limits; i++) {
        const bench_limits *l = &run->limits[i];
        fprintf(f, "  %-10s %-40.40s peak %8.1f GFLOP/s  bandwidth %6.1f GB/s  (%s)\n", l->target, l->name,
                l->peak_gflops, l->bw_gbs, l->how);
    }
}

void bench_print_table(FILE *f, const bench_run *run) {
    print_limits(f, run);
    fprintf(f, "\n%-26s %-18s %10s %19s %9s %6s %8s %7s\n", "workload", "target", "ms", "[min - max]", "rate",
            "unit", "roofline", "vs cpu");
    const char *last_group = "";
    for (int i = 0; i < run->n; i++) {
        const bench_result *r = &run->results[i];
        if (strcmp(r->group, last_group)) fprintf(f, "-- %s\n", r->group), last_group = r->group;
        if (r->n == 0) {
            fprintf(f, "%-26s %-18s %s\n", r->workload, r->target, r->note);
            continue;
        }
        const bench_result *cpu = bench_run_find(run, r->workload, "cpu");
        char vs[16] = "";
        if (cpu && cpu->n && r != cpu) snprintf(vs, sizeof vs, "%.2fx", cpu->median / r->median);
        char roof[16] = "";
        double frac = bench_result_roofline(run, r);
        if (frac > 0) snprintf(roof, sizeof roof, "%.0f%%", 100 * frac);
        fprintf(f, "%-26s %-18s %10.3f [%8.3f - %8.3f] %9.1f %-7s %7s %7s", r->workload, r->target, 1e3 * r->median,
                1e3 * r->min, 1e3 * r->max, bench_result_rate(r), unit_of(r), roof, vs);
        if (r->work.images > 0) fprintf(f, "  %.0f img/s", r->work.images / r->median);
        if (r->note[0]) fprintf(f, "  (%s)", r->note);
        fputc('\n', f);
    }
}

/* ---------------------------------------------------------------- JSON */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", (unsigned char)*s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_result(FILE *f, const bench_run *run, const bench_result *r) {
    fprintf(f, "    {\"workload\": ");
    json_string(f, r->workload);
    fprintf(f, ", \"group\": ");
    json_string(f, r->group);
    fprintf(f, ", \"target\": ");
    json_string(f, r->target);
    fprintf(f, ", \"flops\": %.6g, \"bytes\": %.6g, \"images\": %.6g, \"samples\": %d", r->work.flops, r->work.bytes,
            r->work.images, r->n);
    if (r->n)
        fprintf(f, ", \"median_s\": %.6g, \"min_s\": %.6g, \"max_s\": %.6g, \"rate\": %.6g, \"unit\": \"%s\", \"roofline\": %.4f",
                r->median, r->min, r->max, bench_result_rate(r), unit_of(r), bench_result_roofline(run, r));
    fprintf(f, ", \"note\": ");
    json_string(f, r->note);
    fputc('}', f);
}

bool bench_write_json(const char *path, const bench_run *run) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "{\n  \"tool\": \"tapegrad-bench\", \"when\": ");
    json_string(f, run->when);
    fprintf(f, ", \"cpu\": ");
    json_string(f, run->cpu);
    fprintf(f, ", \"threads\": %d, \"load_before\": %.2f, \"load_after\": %.2f,\n  \"limits\": [\n", run->threads,
            run->load_before, run->load_after);
    for (int i = 0; i < run->n_limits; i++) {
        const bench_limits *l = &run->limits[i];
        fprintf(f, "    {\"target\": ");
        json_string(f, l->target);
        fprintf(f, ", \"name\": ");
        json_string(f, l->name);
        fprintf(f, ", \"peak_gflops\": %.6g, \"bandwidth_gbs\": %.6g, \"how\": ", l->peak_gflops, l->bw_gbs);
        json_string(f, l->how);
        fprintf(f, "}%s\n", i + 1 < run->n_limits ? "," : "");
    }
    fprintf(f, "  ],\n  \"results\": [\n");
    for (int i = 0; i < run->n; i++) {
        json_result(f, run, &run->results[i]);
        fprintf(f, "%s\n", i + 1 < run->n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    return fclose(f) == 0;
}

/* ---------------------------------------------------------------- SVG */

static const char *palette[] = { "#4878d0", "#ee854a", "#6acc64", "#d65f5f", "#956cb4", "#8c613c", "#dc7ec0", "#797979" };

static int target_index(char targets[][64], int *n, const char *t) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(targets[i], t)) return i;
    if (*n == 8) return 7;
    snprintf(targets[*n], 64, "%s", t);
    return (*n)++;
}

static void svg_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

/* One row a workload, one bar a target: the fraction of that target's roofline. */
bool bench_write_svg(const char *path, const bench_run *run) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    char targets[8][64];
    int nt = 0, rows = 0;
    for (int i = 0; i < run->n; i++) {
        if (run->results[i].n) target_index(targets, &nt, run->results[i].target);
        if (i == 0 || strcmp(run->results[i].workload, run->results[i - 1].workload)) rows++;
    }
    const int left = 190, width = 560, bar = 7, top = 50;
    int row_h = bar * (nt ? nt : 1) + 6, height = top + rows * row_h + 40;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"10\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            left + width + 40, height);
    fprintf(f, "<text x=\"10\" y=\"18\" font-size=\"13\">tapegrad-bench: fraction of each device's measured roofline "
               "(FMA peak or bandwidth)</text>\n<text x=\"10\" y=\"34\">");
    svg_escape(f, run->cpu);
    fprintf(f, ", %d threads</text>\n", run->threads);
    for (int k = 0; k <= 10; k += 2) {
        int x = left + width * k / 10;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%d\" "
                   "text-anchor=\"middle\">%d%%</text>\n", x, top - 4, x, height - 36, x, height - 24, 10 * k);
    }
    int row = -1;
    for (int i = 0; i < run->n; i++) {
        const bench_result *r = &run->results[i];
        if (i == 0 || strcmp(r->workload, run->results[i - 1].workload)) {
            row++;
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, top + row * row_h + row_h / 2 + 3);
            svg_escape(f, r->workload);
            fputs("</text>\n", f);
        }
        if (!r->n) continue;
        int t = target_index(targets, &nt, r->target);
        double frac = fmin(1.0, bench_result_roofline(run, r));
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>", left,
                top + row * row_h + t * bar + 3, width * frac, bar - 1, palette[t]);
        svg_escape(f, r->target);
        fprintf(f, ": %.1f %s, %.0f%%</title></rect>\n", bench_result_rate(r), unit_of(r), 100 * frac);
    }
    for (int t = 0; t < nt; t++) {
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
                left + 110 * t, height - 14, palette[t], left + 110 * t + 14, height - 5);
        svg_escape(f, targets[t]);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    return fclose(f) == 0;
}
