/* Learning-rate schedules: each lr sequence against its closed formula written here,
 * composition, momentum cycling, ReduceLROnPlateau's rules, restarts, the freed-optimizer
 * error; and, when python3-torch is there (TG_TORCH_LR=tests/torch/lr_reference.py),
 * against torch.optim.lr_scheduler itself. */
#include "harness.h"

#include <math.h>

static tg_optim *sgd(double lr) {
    tg_tensor *p = tg_param(tg_zeros(TG_F32, TG_SHAPE(2), tg_test_device()));
    return tg_sgd_new(1, &p, &(tg_sgd_opts){ .lr = TG_SOME(lr), .momentum = 0.9 });
}

/* Steps s n times; want(e) is the lr at epoch e (epoch 0 after construction). */
static int check_seq(tg_sched *s, tg_optim *o, int n, double (*want)(int64_t, const void *), const void *ctx, double tol,
                     const char *name) {
    int bad = 0;
    for (int64_t e = 0; e < n; e++) {
        if (e) tg_sched_step(s);
        double w = want(e, ctx), got = tg_optim_get_lr(o, 0);
        if (!(fabs(got - w) <= tol * fmax(fabs(w), 1e-300)) || tg_sched_last_lr(s, 0) != got) {
            if (!bad) fprintf(stderr, "  %s: epoch %lld: lr %.17g, expected %.17g\n", name, (long long)e, got, w);
            bad++;
        }
    }
    return bad;
}

static double f_step(int64_t e, const void *c) { (void)c; return 0.1 * pow(0.5, (double)(e / 3)); }
static double f_multi(int64_t e, const void *c) { (void)c; return 0.1 * pow(0.1, (e >= 2) + (e >= 5) + (e >= 5) + (e >= 9)); }
static double f_exp(int64_t e, const void *c) { (void)c; return 0.1 * pow(0.9, (double)e); }
static double f_inv(int64_t e, const void *c) { (void)c; return 0.1 / (1 + 0.5 * (double)e); }
static double f_poly(int64_t e, const void *c) { (void)c; return 0.1 * pow(1 - (double)(e < 10 ? e : 10) / 10, 2); }
static double f_lin(int64_t e, const void *c) { (void)c; return 0.1 * (0.25 + 0.75 * (double)(e < 4 ? e : 4) / 4); }
static double f_cos(int64_t e, const void *c) { (void)c; return 0.01 + (0.1 - 0.01) * (1 + cos(M_PI * (double)e / 10)) / 2; }
static double lam(int64_t e, void *c) { (void)c; return 1.0 / (double)(e + 1); }
static double f_lam(int64_t e, const void *c) { (void)c; return 0.1 / (double)(e + 1); }
/* SGDR, T_0 3, T_mult 2, eta_min 0.001: restarts at 3, 9, 21 */
static double f_sgdr(int64_t e, const void *c) {
    (void)c;
    int64_t T = 3, t = e;
    while (t >= T) t -= T, T *= 2;
    return 0.001 + (0.1 - 0.001) * (1 + cos(M_PI * (double)t / (double)T)) / 2;
}

TEST(each_schedule_matches_its_formula) {
    struct {
        const char *name;
        double (*want)(int64_t, const void *);
    } cases[] = { { "StepLR", f_step },   { "MultiStepLR", f_multi }, { "ExponentialLR", f_exp }, { "InverseTimeLR", f_inv },
                  { "PolynomialLR", f_poly }, { "LinearLR", f_lin },    { "CosineAnnealingLR", f_cos },
                  { "LambdaLR", f_lam },  { "CosineAnnealingWarmRestarts", f_sgdr } };
    for (int k = 0; k < 9; k++) {
        tg_optim *o = sgd(0.1);
        tg_sched *s = NULL;
        switch (k) {
        case 0: s = tg_step_lr_new(o, 3, &(tg_step_lr_opts){ .gamma = TG_SOME(0.5) }); break;
        case 1: s = tg_multistep_lr_new(o, 4, (int64_t[]){ 2, 5, 5, 9 }, NULL); break;
        case 2: s = tg_exponential_lr_new(o, 0.9); break;
        case 3: s = tg_inverse_time_lr_new(o, 0.5); break;
        case 4: s = tg_polynomial_lr_new(o, &(tg_polynomial_lr_opts){ .total_iters = 10, .power = TG_SOME(2) }); break;
        case 5: s = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.25), .total_iters = 4 }); break;
        case 6: s = tg_cosine_lr_new(o, 10, 0.01); break;
        case 7: s = tg_lambda_lr_new(o, lam, NULL); break;
        case 8: s = tg_cosine_warm_restarts_new(o, 3, &(tg_warm_restarts_opts){ .T_mult = 2, .eta_min = 0.001 }); break;
        }
        CHECK(s != NULL);
        /* 35 epochs: the cosine runs past T_max (periodic in PyTorch's chainable form) */
        if (s) CHECK(check_seq(s, o, k == 4 ? 10 : 35, cases[k].want, NULL, 1e-12, cases[k].name) == 0);
        tg_sched_free(s);
        tg_optim_free(o);
    }
}

TEST(restarts_are_reported) {
    tg_optim *o = sgd(0.1);
    tg_sched *s = tg_cosine_warm_restarts_new(o, 3, &(tg_warm_restarts_opts){ .T_mult = 2 });
    int restarts[4], n = 0;
    for (int e = 1; e < 25; e++) {
        tg_sched_step(s);
        if (tg_sched_restarted(s) && n < 4) restarts[n++] = e;
    }
    CHECK(n == 3 && restarts[0] == 3 && restarts[1] == 9 && restarts[2] == 21);
    tg_sched_free(s);
    tg_optim_free(o);
}

/* CyclicLR (triangular2, step_size_up 2, down 4) and the momentum it cycles. */
TEST(cyclic_lr_and_momentum) {
    for (int mode = 0; mode < 3; mode++) {
        tg_optim *o = sgd(0.5);
        tg_sched *s = tg_cyclic_lr_new(o, &(tg_cyclic_lr_opts){ .base_lr = 0.01, .max_lr = 0.1, .step_size_up = 2,
                                                                .step_size_down = TG_SOME(4), .mode = (tg_cyclic_mode)mode,
                                                                .gamma = TG_SOME(0.9) });
        for (int e = 0; e < 20; e++) {
            if (e) tg_sched_step(s);
            double cycle = floor(1 + e / 6.0), x = 1 + e / 6.0 - cycle, r = 2.0 / 6;
            double sf = x <= r ? x / r : (x - 1) / (r - 1);
            double sc = mode == 0 ? 1 : mode == 1 ? 1 / pow(2, cycle - 1) : pow(0.9, e);
            double m;
            CHECK_NEAR(tg_optim_get_lr(o, 0), 0.01 + 0.09 * sf * sc, 1e-14);
            CHECK(tg_optim_get_option(o, 0, "momentum", &m) == TG_OK);
            CHECK_NEAR(m, 0.9 - 0.1 * sf * sc, 1e-14);
        }
        tg_sched_free(s);
        tg_optim_free(o);
    }
    tg_tensor *p = tg_param(tg_zeros(TG_F32, TG_SHAPE(2), tg_test_device()));
    tg_optim *ada = tg_adagrad_new(1, &p, NULL);
    CHECK_ERROR(tg_cyclic_lr_new(ada, &(tg_cyclic_lr_opts){ .base_lr = 0.01, .max_lr = 0.1 }),
                "tg_cyclic_lr_new: optimizer must support momentum or beta1 with cycle_momentum enabled");
    tg_sched *s = tg_cyclic_lr_new(ada, &(tg_cyclic_lr_opts){ .base_lr = 0.01, .max_lr = 0.1, .cycle_momentum = TG_SOME(false) });
    CHECK(s != NULL);
    tg_sched_free(s);
    tg_optim_free(ada);
}

static double onecycle_cos(double a, double b, double pct) { return b + (a - b) / 2 * (cos(M_PI * pct) + 1); }

/* OneCycleLR, cos and linear, two and three phases; Adam's beta1 cycles. */
TEST(onecycle_lr) {
    for (int variant = 0; variant < 3; variant++) {
        tg_tensor *p = tg_param(tg_zeros(TG_F32, TG_SHAPE(2), tg_test_device()));
        tg_optim *o = tg_adam_new(1, &p, NULL);
        bool three = variant == 2, lin = variant == 1;
        tg_sched *s = tg_onecycle_lr_new(o, &(tg_onecycle_lr_opts){ .max_lr = 1.0, .total_steps = 20, .three_phase = three,
                                                                    .anneal_strategy = lin ? TG_ANNEAL_LINEAR : TG_ANNEAL_COS });
        double init = 1.0 / 25, mn = init / 1e4;
        for (int e = 0; e <= 20; e++) {
            if (e) CHECK(tg_sched_step(s) == TG_OK);
            double w, wm;
            double e1 = 0.3 * 20 - 1, e2 = three ? 2 * 0.3 * 20 - 2 : 19, e3 = 19;
            double a, b, ma, mb, pct;
            if (e <= e1) a = init, b = 1, ma = 0.95, mb = 0.85, pct = e / e1;
            else if (e <= e2 || !three) a = 1, b = three ? init : mn, ma = 0.85, mb = 0.95, pct = (e - e1) / (e2 - e1);
            else a = init, b = mn, ma = mb = 0.95, pct = (e - e2) / (e3 - e2);
            w = lin ? (b - a) * pct + a : onecycle_cos(a, b, pct);
            wm = lin ? (mb - ma) * pct + ma : onecycle_cos(ma, mb, pct);
            double m;
            CHECK_NEAR(tg_optim_get_lr(o, 0), w, 1e-13);
            tg_optim_get_option(o, 0, "betas.0", &m);
            CHECK_NEAR(m, wm, 1e-13);
        }
        CHECK_ERROR(tg_sched_step(s), "tg_sched_step: tried to step 22 times. The specified number of total steps is 20");
        tg_sched_free(s);
        tg_optim_free(o);
    }
}

TEST(reduce_on_plateau) {
    tg_optim *o = sgd(1.0);
    tg_sched *s = tg_reduce_lr_on_plateau_new(o, &(tg_plateau_opts){ .patience = TG_SOME(2), .factor = TG_SOME(0.5),
                                                                     .cooldown = 1, .min_lr = 0.2 });
    const double metrics[] = { 10, 9, 9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8 };
    /* best 9 at the 2nd metric; bad 3rd, 4th, 5th -> cut (0.5); the cooldown swallows the 6th;
     * bad 7th, 8th; the 9th improves (8 < 9 (1 - 1e-4)); bad 10th, 11th, 12th -> cut (0.25).
     * The same as torch's ReduceLROnPlateau gives for these metrics. */
    const double lr[] = { 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25 };
    for (int i = 0; i < 14; i++) {
        CHECK(tg_sched_step_metric(s, metrics[i]) == TG_OK);
        if (tg_optim_get_lr(o, 0) != lr[i]) FAIL_("epoch %d: lr %g, expected %g", i + 1, tg_optim_get_lr(o, 0), lr[i]);
    }
    for (int i = 0; i < 20; i++) tg_sched_step_metric(s, 100);
    CHECK(tg_optim_get_lr(o, 0) == 0.2); /* min_lr */
    CHECK_ERROR(tg_sched_step(s), "tg_sched_step: ReduceLROnPlateau steps with a metric: use tg_sched_step_metric");
    tg_sched_free(s);
    tg_optim_free(o);
}

static double f_warm_cos(int64_t e, const void *c) {
    (void)c;
    if (e < 3) return 0.1 * (0.1 + 0.9 * (double)e / 3);
    return 0.1 * (1 + cos(M_PI * (double)(e - 3) / 10)) / 2;
}
static double f_chain(int64_t e, const void *c) {
    (void)c;
    return 0.1 * pow(0.9, (double)e) * (0.5 + 0.5 * (double)(e < 4 ? e : 4) / 4);
}

/* Warm-up then cosine (SequentialLR); exponential times a linear warm-up (ChainedScheduler). */
TEST(sequential_and_chained) {
    tg_optim *o = sgd(0.1);
    tg_sched *w = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.1), .total_iters = 3 });
    tg_sched *c = tg_cosine_lr_new(o, 10, 0);
    tg_sched *s = tg_sequential_lr_new(o, 2, (tg_sched *[]){ w, c }, (int64_t[]){ 3 });
    CHECK(s != NULL);
    CHECK(check_seq(s, o, 14, f_warm_cos, NULL, 1e-12, "SequentialLR") == 0);
    tg_sched_free(s);
    tg_sched *e = tg_exponential_lr_new(o, 0.9);
    tg_sched *l = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.5), .total_iters = 4 });
    tg_optim_set_lr(o, 0, 0.1);
    tg_sched_free(e), tg_sched_free(l);
    tg_optim_free(o);
    o = sgd(0.1);
    e = tg_exponential_lr_new(o, 0.9);
    l = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.5), .total_iters = 4 });
    s = tg_chained_scheduler_new(2, (tg_sched *[]){ e, l });
    CHECK(check_seq(s, o, 12, f_chain, NULL, 1e-12, "ChainedScheduler") == 0);
    tg_sched_free(s);
    tg_optim *other = sgd(0.1);
    tg_sched *a = tg_step_lr_new(o, 2, NULL), *b = tg_step_lr_new(other, 2, NULL);
    CHECK_ERROR(tg_sequential_lr_new(o, 2, (tg_sched *[]){ a, b }, (int64_t[]){ 2 }),
                "tg_sequential_lr_new: schedule 1 belongs to another optimizer");
    tg_optim_free(o);
    tg_optim_free(other);
}

TEST(schedule_errors) {
    tg_optim *o = sgd(0.1);
    CHECK_ERROR(tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0) }),
                "tg_linear_lr_new: starting multiplicative factor expected to be greater than 0 and less or equal to 1, got 0");
    CHECK_ERROR(tg_cosine_warm_restarts_new(o, 0, NULL), "tg_cosine_warm_restarts_new: expected positive integer T_0, but got 0");
    CHECK_ERROR(tg_reduce_lr_on_plateau_new(o, &(tg_plateau_opts){ .factor = TG_SOME(1) }),
                "tg_reduce_lr_on_plateau_new: factor should be < 1.0, got 1");
    CHECK_ERROR(tg_onecycle_lr_new(o, &(tg_onecycle_lr_opts){ .max_lr = 1, .total_steps = 10, .pct_start = TG_SOME(1.5) }),
                "tg_onecycle_lr_new: expected float between 0 and 1 pct_start, but got 1.5");
    tg_sched *s = tg_cosine_lr_new(o, 5, 0);
    tg_optim_free(o);
    CHECK_ERROR(tg_sched_step(s), "tg_sched_step: the schedule's optimizer was freed");
    CHECK_ERROR(tg_sched_last_lr(s, 1), "tg_sched_last_lr: no parameter group 1 (the schedule has 1)");
    tg_sched_free(s);
}

/* Against torch.optim.lr_scheduler: the script prints "name lr0 lr1 ..." lines. */
TEST(against_pytorch) {
    const char *script = getenv("TG_TORCH_LR");
    if (!script || !*script) SKIP("TG_TORCH_LR is not set");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' 2>/dev/null", script);
    FILE *f = popen(cmd, "r");
    if (!f) SKIP("cannot run python3");
    char name[64];
    double want[64];
    int lines = 0;
    while (fscanf(f, "%63s", name) == 1) {
        int n = 0;
        while (n < 40 && fscanf(f, "%lf", &want[n]) == 1) n++;
        tg_optim *o = sgd(0.1);
        tg_tensor *q = tg_param(tg_zeros(TG_F32, TG_SHAPE(2), tg_test_device()));
        tg_optim *adam = tg_adam_new(1, &q, &(tg_adam_opts){ .lr = TG_SOME(0.1) });
        tg_optim *use = strncmp(name, "OneCycle", 8) == 0 ? adam : o;
        tg_sched *s = NULL;
        if (!strcmp(name, "StepLR")) s = tg_step_lr_new(o, 3, &(tg_step_lr_opts){ .gamma = TG_SOME(0.5) });
        else if (!strcmp(name, "MultiStepLR")) s = tg_multistep_lr_new(o, 3, (int64_t[]){ 2, 5, 9 }, NULL);
        else if (!strcmp(name, "ExponentialLR")) s = tg_exponential_lr_new(o, 0.9);
        else if (!strcmp(name, "PolynomialLR")) s = tg_polynomial_lr_new(o, &(tg_polynomial_lr_opts){ .total_iters = 10, .power = TG_SOME(2) });
        else if (!strcmp(name, "LinearLR")) s = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.25), .total_iters = 4 });
        else if (!strcmp(name, "CosineAnnealingLR")) s = tg_cosine_lr_new(o, 10, 0.01);
        else if (!strcmp(name, "CosineAnnealingWarmRestarts")) s = tg_cosine_warm_restarts_new(o, 3, &(tg_warm_restarts_opts){ .T_mult = 2, .eta_min = 0.001 });
        else if (!strcmp(name, "CyclicLR")) s = tg_cyclic_lr_new(o, &(tg_cyclic_lr_opts){ .base_lr = 0.01, .max_lr = 0.1, .step_size_up = 2, .step_size_down = TG_SOME(4), .mode = TG_CYCLIC_TRIANGULAR2 });
        else if (!strcmp(name, "OneCycleLR")) s = tg_onecycle_lr_new(adam, &(tg_onecycle_lr_opts){ .max_lr = 1.0, .total_steps = 40 });
        else if (!strcmp(name, "OneCycleLR3")) s = tg_onecycle_lr_new(adam, &(tg_onecycle_lr_opts){ .max_lr = 1.0, .total_steps = 40, .three_phase = true, .anneal_strategy = TG_ANNEAL_LINEAR });
        else if (!strcmp(name, "SequentialLR")) {
            tg_sched *w = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.1), .total_iters = 3 });
            tg_sched *c = tg_cosine_lr_new(o, 10, 0);
            s = tg_sequential_lr_new(o, 2, (tg_sched *[]){ w, c }, (int64_t[]){ 3 });
        } else if (!strcmp(name, "ChainedScheduler")) {
            tg_sched *e = tg_exponential_lr_new(o, 0.9);
            tg_sched *l = tg_linear_lr_new(o, &(tg_linear_lr_opts){ .start_factor = TG_SOME(0.5), .total_iters = 4 });
            s = tg_chained_scheduler_new(2, (tg_sched *[]){ e, l });
        }
        if (!s) FAIL_("no schedule %s", name);
        for (int i = 0; s && i < n; i++) {
            if (i) tg_sched_step(s);
            double got = tg_optim_get_lr(use, 0);
            if (!(fabs(got - want[i]) <= 1e-12 * fabs(want[i]) + 1e-300)) {
                FAIL_("%s step %d: %.17g vs torch %.17g", name, i, got, want[i]);
                break;
            }
        }
        tg_sched_free(s);
        tg_optim_free(o);
        tg_optim_free(adam);
        lines++;
    }
    int rc = pclose(f);
    if (rc != 0 || lines == 0) SKIP("python3-torch is not there");
}

TG_TEST_MAIN(&tg_case_each_schedule_matches_its_formula, &tg_case_restarts_are_reported, &tg_case_cyclic_lr_and_momentum,
             &tg_case_onecycle_lr, &tg_case_reduce_on_plateau, &tg_case_sequential_and_chained, &tg_case_schedule_errors,
             &tg_case_against_pytorch)
