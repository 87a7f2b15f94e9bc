/* L-BFGS against first-order methods on a full-batch problem (the notes' quasi-Newton
 * method): L2-regularised softmax regression on Fashion-MNIST images, every method given
 * the same number of loss-and-gradient evaluations. L-BFGS (strong-Wolfe line search)
 * runs through a closure, since each of its steps evaluates the loss as often as its line
 * search needs; gradient descent, SGD with Nesterov momentum and Adam take one
 * evaluation a step. Prints one table: evaluations, final loss, train and test accuracy,
 * seconds.
 *
 *     build/examples/lbfgs_vs_sgd [--data DIR] [--limit N] [--evals E] [--l2 X]
 *         [--device NAME] [--check]
 *
 * --check makes it a test: exit 1 unless L-BFGS ends with the lowest loss. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_mnist.h"

typedef struct {
    tg_tensor *x, *y;     /* full batch: x f32 (N,784) standardised, y i32 (N) */
    tg_tensor *w, *b;     /* the parameters */
    double l2;
    int evals;
} problem;

/* mean cross-entropy + l2/2 |w|^2 */
static tg_tensor *objective(problem *p) {
    tg_tensor *logits = tg_add(tg_matmul(p->x, p->w), p->b);
    tg_tensor *reg = tg_mul_scalar(tg_sum(tg_square(p->w), TG_ALL, false), 0.5 * p->l2);
    return tg_add(tg_cross_entropy(logits, p->y), reg);
}

static tg_status closure(void *ctx, double *loss) {
    problem *p = ctx;
    tg_zero_grad(p->w), tg_zero_grad(p->b);
    tg_tensor *l = objective(p);
    p->evals++;
    *loss = tg_item(l);
    return l ? tg_backward(l) : TG_ERR_INVALID;
}

static double accuracy(const problem *p, tg_tensor *x, tg_tensor *y) {
    bool prev = tg_set_grad_enabled(false);
    tg_scope_begin();
    tg_tensor *pred = tg_argmax(tg_add(tg_matmul(x, p->w), p->b), 1, false);
    double acc = tg_item(tg_mean(tg_cast(tg_eq(pred, y), TG_F32), TG_ALL, false));
    tg_scope_end();
    tg_set_grad_enabled(prev);
    return acc;
}

typedef enum { M_LBFGS, M_GD, M_NESTEROV, M_ADAM } method;
static const char *method_name[] = { "L-BFGS (strong Wolfe, history 10)", "gradient descent, lr 0.1",
                                     "SGD Nesterov 0.9, lr 0.1", "Adam, lr 0.01" };

static tg_optim *make_optim(method m, tg_tensor **params) {
    switch (m) {
    case M_LBFGS:
        return tg_lbfgs_new(2, params, &(tg_lbfgs_opts){ .history_size = 10, .max_iter = 20,
                                                          .line_search = TG_LINE_SEARCH_STRONG_WOLFE });
    case M_GD: return tg_sgd_new(2, params, &(tg_sgd_opts){ .lr = TG_SOME(0.1) });
    case M_NESTEROV: return tg_sgd_new(2, params, &(tg_sgd_opts){ .lr = TG_SOME(0.1), .momentum = 0.9, .nesterov = true });
    default: return tg_adam_new(2, params, &(tg_adam_opts){ .lr = TG_SOME(0.01) });
    }
}

/* Runs method m from zero weights for `budget` evaluations; the final loss, NaN on error. */
static double run(method m, problem *p, int budget, double *seconds) {
    tg_release(p->w), tg_release(p->b); /* the previous method's */
    p->w = tg_take(tg_param(tg_zeros(TG_F32, TG_SHAPE(IMAGE_SIZE, CLASSES), tg_device_of(p->x))));
    p->b = tg_take(tg_param(tg_zeros(TG_F32, TG_SHAPE(CLASSES), tg_device_of(p->x))));
    tg_tensor *params[2] = { p->w, p->b };
    tg_optim *opt = make_optim(m, params);
    p->evals = 0;
    double t0 = now_s(), loss = NAN;
    while (opt && p->evals < budget) {
        if (tg_optim_step_closure(opt, closure, p, &loss) != TG_OK) {
            fprintf(stderr, "lbfgs_vs_sgd: %s\n", tg_last_error());
            loss = NAN;
            break;
        }
    }
    *seconds = now_s() - t0;
    tg_optim_free(opt);
    if (!isnan(loss)) { /* the loss at the final parameters */
        tg_scope_begin();
        bool prev = tg_set_grad_enabled(false);
        loss = tg_item(objective(p));
        tg_set_grad_enabled(prev);
        tg_scope_end();
    }
    return loss;
}

int main(int argc, char **argv) {
    const char *dir = DEFAULT_DATA_DIR, *device = NULL;
    int limit = 5000, budget = 100;
    double l2 = 1e-3;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(argv[i], "--data")) dir = v, i++;
        else if (!strcmp(argv[i], "--device")) device = v, i++;
        else if (!strcmp(argv[i], "--limit")) limit = atoi(v), i++;
        else if (!strcmp(argv[i], "--evals")) budget = atoi(v), i++;
        else if (!strcmp(argv[i], "--l2")) l2 = atof(v), i++;
        else if (!strcmp(argv[i], "--check")) check = true;
        else {
            fprintf(stderr, "usage: lbfgs_vs_sgd [--data DIR] [--limit N] [--evals E] [--l2 X] [--device NAME] [--check]\n");
            return 2;
        }
    }
    tg_device *dev;
    split train, test;
    if (!open_fashion_mnist("lbfgs_vs_sgd", dir, device, NULL, &dev, &train, &test)) return 1;
    problem p = { .x = tg_keep(normalise(tg_slice(train.x, 0, 0, limit, 1))), .y = tg_slice(train.y, 0, 0, limit, 1),
                  .l2 = l2 };
    tg_tensor *test_x = normalise(test.x);
    printf("softmax regression, %d training images (full batch), L2 %g, %d loss+gradient evaluations each\n\n", limit,
           l2, budget);
    printf("%-36s %6s %12s %10s %10s %8s\n", "method", "evals", "final loss", "train acc", "test acc", "seconds");
    double best_other = INFINITY, lbfgs = NAN;
    for (method m = M_LBFGS; m <= M_ADAM; m++) {
        double secs, loss = run(m, &p, budget, &secs);
        if (isnan(loss)) return 1;
        printf("%-36s %6d %12.5f %10.4f %10.4f %8.2f\n", method_name[m], p.evals, loss, accuracy(&p, p.x, p.y),
               accuracy(&p, test_x, test.y), secs);
        if (m == M_LBFGS) lbfgs = loss;
        else if (loss < best_other) best_other = loss;
    }
    tg_release(p.w), tg_release(p.b);
    if (check && !(lbfgs < best_other)) {
        fprintf(stderr, "lbfgs_vs_sgd: L-BFGS's loss %.5f is not the lowest (%.5f)\n", lbfgs, best_other);
        return 1;
    }
    return 0;
}
