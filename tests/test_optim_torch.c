/* The optimizers against torch.optim itself, in f64: SGD, Adam, AdamW, RMSprop and
 * Adagrad over 50 steps and L-BFGS (history, strong-Wolfe line search, closure) over a
 * few, on least squares and Rosenbrock, every iterate within 1e-8 relative. The
 * trajectories come from tests/torch/optim_reference.py ($TG_TORCH_OPTIM) run by
 * /usr/bin/python3; skipped where it or torch is missing. */
#include "harness.h"

#include <math.h>
#include <string.h>

static const double LS_X[24] = { 1, 2, -1, 0.5, -1, 2, -1, 0.3, 0.7, 2, 1, 1,
                                 -0.5, -2, 0.1, 1.5, 0.2, -0.8, 0.1, 0.9, 1.3, -1.2, 0.4, -0.3 };
static const double LS_Y[16] = { 1, 0, -1, 2, 0.5, 0.5, 3, 1, -2, -1, 1, -1, 0, 2, -1, 0 };

/* The script's problems: "ls" (W 3x2, b 2; sum((X W + b - Y)^2) / 8), "nls" (its
 * negation, for maximize) and "rosen" (x 2). */
typedef struct {
    tg_optim *opt;
    tg_tensor *ps[2];
    int np, n;
    double sign;
    bool rosen;
} problem;

static void problem_init(problem *p, const char *name) {
    tg_device *dev = tg_test_device();
    memset(p, 0, sizeof *p);
    p->rosen = strcmp(name, "rosen") == 0;
    p->sign = strcmp(name, "nls") == 0 ? -1 : 1;
    if (p->rosen) {
        p->ps[0] = tg_take(tg_param(tg_from_f64((double[]){ -1.5, 2.0 }, TG_SHAPE(2), dev)));
        p->np = 1, p->n = 2;
        return;
    }
    p->ps[0] = tg_take(tg_param(tg_from_f64((double[]){ 0.1, -0.2, 0.3, 0.0, -0.1, 0.2 }, TG_SHAPE(3, 2), dev)));
    p->ps[1] = tg_take(tg_param(tg_from_f64((double[]){ 0.05, -0.05 }, TG_SHAPE(2), dev)));
    p->np = 2, p->n = 8;
}

static tg_tensor *problem_loss(const problem *p) {
    tg_device *dev = tg_test_device();
    if (p->rosen) {
        tg_tensor *x = p->ps[0], *x0 = tg_slice(x, 0, 0, 1, 1), *x1 = tg_slice(x, 0, 1, 2, 1);
        tg_tensor *a = tg_square(tg_add_scalar(tg_neg(x0), 1)), *b = tg_square(tg_sub(x1, tg_square(x0)));
        return tg_sum(tg_add(a, tg_mul_scalar(b, 100)), TG_ALL, false);
    }
    tg_tensor *X = tg_from_f64(LS_X, TG_SHAPE(8, 3), dev), *Y = tg_from_f64(LS_Y, TG_SHAPE(8, 2), dev);
    tg_tensor *r = tg_sub(tg_add(tg_matmul(X, p->ps[0]), p->ps[1]), Y);
    return tg_mul_scalar(tg_sum(tg_square(r), TG_ALL, false), p->sign / 8);
}

static tg_status closure(void *ctx, double *loss) {
    problem *p = ctx;
    tg_optim_zero_grad(p->opt);
    tg_tensor *l = problem_loss(p);
    tg_status st = tg_backward(l);
    *loss = tg_item(l);
    return st;
}

/* The script's configurations, by name (problem_of gives each one's problem). */
static tg_optim *make(const char *name, int n, tg_tensor **ps) {
    tg_opt_f64 b1 = TG_SOME(0.9), b2 = TG_SOME(0.999);
    if (!strcmp(name, "sgd")) return tg_sgd_new(n, ps, &(tg_sgd_opts){ .lr = TG_SOME(0.05) });
    if (!strcmp(name, "sgd_momentum_wd"))
        return tg_sgd_new(n, ps, &(tg_sgd_opts){ .lr = TG_SOME(0.05), .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01 });
    if (!strcmp(name, "sgd_nesterov"))
        return tg_sgd_new(n, ps, &(tg_sgd_opts){ .lr = TG_SOME(1e-4), .momentum = 0.9, .nesterov = true });
    if (!strcmp(name, "sgd_maximize"))
        return tg_sgd_new(n, ps, &(tg_sgd_opts){ .lr = TG_SOME(0.05), .momentum = 0.5, .maximize = true });
    if (!strcmp(name, "adam")) return tg_adam_new(n, ps, &(tg_adam_opts){ .lr = TG_SOME(0.05) });
    if (!strcmp(name, "adam_amsgrad_wd"))
        return tg_adam_new(n, ps, &(tg_adam_opts){ .lr = TG_SOME(0.02), .betas = { TG_SOME(0.8), TG_SOME(0.99) },
                                                   .weight_decay = TG_SOME(0.1), .amsgrad = true });
    if (!strcmp(name, "adam_beta1_zero"))
        return tg_adam_new(n, ps, &(tg_adam_opts){ .lr = TG_SOME(0.01), .betas = { TG_SOME(0.0), b2 }, .eps = TG_SOME(1e-6) });
    if (!strcmp(name, "adam_maximize")) return tg_adam_new(n, ps, &(tg_adam_opts){ .lr = TG_SOME(0.05), .maximize = true });
    if (!strcmp(name, "adamw"))
        return tg_adamw_new(n, ps, &(tg_adam_opts){ .lr = TG_SOME(0.05), .betas = { b1, b2 }, .weight_decay = TG_SOME(0.1) });
    if (!strcmp(name, "adamw_amsgrad"))
        return tg_adamw_new(n, ps, &(tg_adam_opts){ .lr = TG_SOME(0.01), .weight_decay = TG_SOME(0.5), .amsgrad = true });
    if (!strcmp(name, "rmsprop")) return tg_rmsprop_new(n, ps, &(tg_rmsprop_opts){ .lr = TG_SOME(0.01) });
    if (!strcmp(name, "rmsprop_centered_momentum"))
        return tg_rmsprop_new(n, ps, &(tg_rmsprop_opts){ .lr = TG_SOME(1e-3), .alpha = TG_SOME(0.9), .momentum = 0.5,
                                                         .centered = true, .weight_decay = 0.01 });
    if (!strcmp(name, "adagrad"))
        return tg_adagrad_new(n, ps, &(tg_adagrad_opts){ .lr = TG_SOME(0.1), .lr_decay = 0.01, .weight_decay = 0.01,
                                                         .initial_accumulator_value = 0.1 });
    if (!strcmp(name, "adagrad_rosen")) return tg_adagrad_new(n, ps, &(tg_adagrad_opts){ .lr = TG_SOME(0.05) });
    if (!strcmp(name, "lbfgs_wolfe"))
        return tg_lbfgs_new(n, ps, &(tg_lbfgs_opts){ .max_iter = 5, .history_size = 3,
                                                     .line_search = TG_LINE_SEARCH_STRONG_WOLFE });
    if (!strcmp(name, "lbfgs_wolfe_ls"))
        return tg_lbfgs_new(n, ps, &(tg_lbfgs_opts){ .max_iter = 4, .history_size = 2,
                                                     .line_search = TG_LINE_SEARCH_STRONG_WOLFE });
    if (!strcmp(name, "lbfgs_plain"))
        return tg_lbfgs_new(n, ps, &(tg_lbfgs_opts){ .lr = TG_SOME(0.05), .max_iter = 6, .history_size = 4 });
    if (!strcmp(name, "lbfgs_plain_ls"))
        return tg_lbfgs_new(n, ps, &(tg_lbfgs_opts){ .lr = TG_SOME(0.5), .max_iter = 3, .history_size = 2 });
    return NULL;
}

static const char *problem_of(const char *name) {
    static const char *const rosen[] = { "sgd_nesterov", "adam_amsgrad_wd", "adamw_amsgrad", "rmsprop_centered_momentum",
                                         "adagrad_rosen", "lbfgs_wolfe", "lbfgs_plain" };
    for (size_t i = 0; i < sizeof rosen / sizeof rosen[0]; i++)
        if (!strcmp(name, rosen[i])) return "rosen";
    return strstr(name, "maximize") ? "nls" : "ls";
}

static void problem_free(problem *p) {
    tg_optim_free(p->opt);
    for (int i = 0; i < p->np; i++) tg_release(p->ps[i]);
    memset(p, 0, sizeof *p);
}

/* max |got - want| / max |want| over the parameters, flattened in order. */
static double rel_err(const problem *p, const double *want) {
    double got[8], err = 0, scale = 0;
    int k = 0;
    for (int i = 0; i < p->np; i++) {
        double *v = tg_test_values(p->ps[i]);
        if (!v) return INFINITY;
        for (int j = 0; j < tg_numel(p->ps[i]); j++) got[k++] = v[j];
        free(v);
    }
    for (int i = 0; i < p->n; i++) err = fmax(err, fabs(got[i] - want[i])), scale = fmax(scale, fabs(want[i]));
    return scale > 0 ? err / scale : err;
}

/* One case's line "name step x0 x1 ...": the step run here and compared. */
static bool run_line(problem *p, char *cur, const char *name, int step, const double *want, int nv, double *worst) {
    if (step == 1) {
        problem_free(p);
        problem_init(p, problem_of(name));
        p->opt = make(name, p->np, p->ps);
        snprintf(cur, 64, "%s", name);
        *worst = 0;
    }
    if (!p->opt || strcmp(cur, name) != 0 || nv != p->n) return false;
    double loss;
    if (tg_optim_step_closure(p->opt, closure, p, &loss) != TG_OK) return false;
    *worst = fmax(*worst, rel_err(p, want));
    return true;
}

TEST(trajectories_match_torch_optim) {
    const char *script = getenv("TG_TORCH_OPTIM");
    if (!script || !*script) SKIP("TG_TORCH_OPTIM is not set");
    tg_tensor *probe = tg_zeros(TG_F64, TG_SHAPE(1), tg_test_device());
    tg_clear_error();
    if (!probe) SKIP("no f64 on this device");
    char cmd[1024], line[4096], name[64], cur[64] = "";
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' 2>/dev/null", script);
    FILE *f = popen(cmd, "r");
    if (!f) SKIP("cannot run python3");
    problem p = { 0 };
    int lines = 0, cases = 0;
    double worst = 0;
    while (fgets(line, sizeof line, f)) {
        int step, used, nv = 0;
        double want[8];
        if (sscanf(line, "%63s %d%n", name, &step, &used) != 2) continue;
        for (char *s = line + used, *e; nv < 8; s = e, nv++) {
            want[nv] = strtod(s, &e);
            if (e == s) break;
        }
        if (step == 1 && cases++) printf("  %-26s max relative error %.2g\n", cur, worst);
        tg_scope_begin();
        bool ok = run_line(&p, cur, name, step, want, nv, &worst);
        tg_scope_end();
        lines++;
        if (!ok) FAIL_("%s step %d: %s", name, step, *tg_last_error() ? tg_last_error() : "no such case or size");
        else if (!(worst <= 1e-8)) FAIL_("%s step %d: relative error %.3g against torch.optim", name, step, worst);
        if (!ok || !(worst <= 1e-8)) break;
    }
    if (cases) printf("  %-26s max relative error %.2g\n", cur, worst);
    problem_free(&p);
    int rc = pclose(f);
    if (lines == 0) SKIP("python3-torch is not there");
    CHECK(rc == 0);
    printf("  %d cases, %d steps compared with torch.optim\n", cases, lines);
}

TG_TEST_MAIN(&tg_case_trajectories_match_torch_optim)
