/* The backward engine: accumulation, retain_graph and freed graphs, create_graph and
 * second order (Hessian-vector products, diagonal and not), the functional tg_autograd_grad, grad mode,
 * detach, and version counters on saved tensors. Expected gradients are derived by hand. */
#include "harness.h"

static tg_tensor *vec(tg_device *dev, int n, const double *v) { return tg_from_f64(v, TG_SHAPE(n), dev); }

static bool values_are(tg_tensor *t, int n, const double *want, double tol) {
    double *v = tg_test_values(t);
    bool ok = v != NULL && tg_numel(t) == n;
    for (int i = 0; ok && i < n; i++) ok = fabs(v[i] - want[i]) <= tol;
    free(v);
    return ok;
}

TEST(grad_accumulates_until_zeroed) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 3, (double[]){ 1, 2, 3 }));
    for (int k = 0; k < 2; k++) CHECK(tg_backward(tg_sum(tg_square(x), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 4, 8, 12 }, 0)); /* 2 * 2x */
    tg_tensor *g = tg_grad(x);
    tg_zero_grad(x); /* in place: the gradient keeps its identity */
    CHECK(tg_grad(x) == g);
    CHECK(values_are(g, 3, (double[]){ 0, 0, 0 }, 0));
    tg_tensor *fresh = tg_param(vec(dev, 3, (double[]){ 1, 2, 3 }));
    CHECK_ERROR(tg_grad(fresh), "tg_grad: no gradient yet (run tg_backward on a loss that depends on this tensor)");
    CHECK(tg_backward(tg_sum(x, TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 1, 1, 1 }, 0));
}

TEST(diamond_and_broadcast) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 3, -1 }));
    CHECK(tg_backward(tg_sum(tg_add(tg_mul(x, x), x), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 2, (double[]){ 7, -1 }, 0)); /* 2x + 1 */
    tg_tensor *a = tg_param(tg_ones(TG_F64, TG_SHAPE(3, 1), dev));
    tg_tensor *b = tg_param(tg_ones(TG_F64, TG_SHAPE(1, 4), dev));
    CHECK(tg_backward(tg_sum(tg_mul(a, tg_mul_scalar(b, 2)), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(a), 3, (double[]){ 8, 8, 8 }, 0));
    CHECK(values_are(tg_grad(b), 4, (double[]){ 6, 6, 6, 6 }, 0));
}

TEST(backward_with_grad_output) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 3, (double[]){ 1, 2, 3 }));
    tg_tensor *y = tg_mul_scalar(x, 5);
    CHECK(tg_backward_ex(y, vec(dev, 3, (double[]){ 1, 0, -1 }), NULL) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 5, 0, -5 }, 0));
    CHECK_ERROR(tg_backward(tg_mul_scalar(x, 2)), "tg_backward: the output has shape [3]; a gradient is implicit only for one element (use tg_backward_ex)");
    CHECK_ERROR(tg_backward_ex(tg_mul_scalar(x, 2), tg_ones(TG_F64, TG_SHAPE(2), dev), NULL), "tg_backward: grad_output [2] f64 does not match the output [3] f64");
}

TEST(retain_graph_and_freed_graph) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    tg_tensor *loss = tg_sum(tg_exp(x), TG_ALL, false);
    CHECK(tg_backward_ex(loss, NULL, &(tg_backward_opts){ .retain_graph = true }) == TG_OK);
    CHECK(tg_backward(loss) == TG_OK);
    CHECK(values_are(tg_grad(x), 2, (double[]){ 2 * exp(1), 2 * exp(2) }, 1e-12));
    CHECK_ERROR(tg_backward(loss), "tg_backward: the graph through tg_sum was already freed by a backward pass; pass retain_graph to run backward twice");
}

/* f(x) = sum(x^3): gradient 3x^2, Hessian diag(6x), so H v = 6 x v. */
TEST(hessian_vector_product) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 3, (double[]){ 1, -2, 0.5 }));
    tg_tensor *v = vec(dev, 3, (double[]){ 1, 2, 3 });
    tg_tensor *f = tg_sum(tg_pow_scalar(x, 3), TG_ALL, false);
    tg_tensor *g;
    CHECK(tg_autograd_grad(1, &f, NULL, 1, &x, &g, &(tg_backward_opts){ .create_graph = true }) == TG_OK);
    CHECK(values_are(g, 3, (double[]){ 3, 12, 0.75 }, 1e-12));
    CHECK(tg_requires_grad(g));
    CHECK(tg_backward(tg_sum(tg_mul(g, v), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 3, (double[]){ 6, -24, 9 }, 1e-12));
}

/* Hessian-vector products whose Hessians are not diagonal, against closed forms: the
 * gradient is taken with create_graph, then <g, v> is differentiated again. */
static tg_tensor *hvp(tg_tensor *f, int n, tg_tensor *const *xs, tg_tensor *const *vs, tg_tensor **hv) {
    tg_tensor *g[4];
    if (tg_autograd_grad(1, &f, NULL, n, xs, g, &(tg_backward_opts){ .create_graph = true }) != TG_OK) return NULL;
    tg_tensor *dot = NULL;
    for (int i = 0; i < n; i++) {
        tg_tensor *term = tg_sum(tg_mul(g[i], vs[i]), TG_ALL, false);
        dot = dot ? tg_add(dot, term) : term;
    }
    if (tg_autograd_grad(1, &dot, NULL, n, xs, hv, NULL) != TG_OK) return NULL;
    return hv[0];
}

/* f(x) = (a.x)^2: H = 2 a a^T (rank one), H v = 2 a (a.v). */
TEST(hvp_squared_linear_form) {
    tg_device *dev = tg_test_device();
    const double a[4] = { 0.5, -1, 2, 0.25 }, xv[4] = { 1, 0.3, -0.7, 2 }, v[4] = { -1, 2, 0.5, 3 };
    tg_tensor *x = tg_param(vec(dev, 4, xv)), *vt = vec(dev, 4, v);
    tg_tensor *f = tg_square(tg_sum(tg_mul(vec(dev, 4, a), x), TG_ALL, false));
    double av = 0, want[4];
    for (int i = 0; i < 4; i++) av += a[i] * v[i];
    for (int i = 0; i < 4; i++) want[i] = 2 * a[i] * av;
    tg_tensor *hv;
    CHECK(hvp(f, 1, &x, &vt, &hv) != NULL);
    CHECK(values_are(hv, 4, want, 1e-12));
}

/* f(x) = x^T A x with A not symmetric: H = A + A^T. */
TEST(hvp_quadratic_form) {
    tg_device *dev = tg_test_device();
    const double A[9] = { 1, 2, -1, 0.5, 3, 4, -2, 0, 1.5 }, xv[3] = { 0.2, -1, 0.7 }, v[3] = { 1, -2, 0.5 };
    tg_tensor *x = tg_param(vec(dev, 3, xv)), *vt = vec(dev, 3, v);
    tg_tensor *f = tg_matmul(x, tg_matmul(tg_from_f64(A, TG_SHAPE(3, 3), dev), x)); /* 0-d */
    double want[3] = { 0, 0, 0 };
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) want[i] += (A[i * 3 + j] + A[j * 3 + i]) * v[j];
    tg_tensor *hv;
    CHECK(hvp(f, 1, &x, &vt, &hv) != NULL);
    CHECK(values_are(hv, 3, want, 1e-12));
}

/* f(x) = sum(softmax(x) c), s = softmax(x), m = s.c:
 * H_ij = s_i (d_ij - s_j)(c_i - m) - s_i s_j (c_j - m). */
TEST(hvp_softmax_weighted_sum) {
    tg_device *dev = tg_test_device();
    const double xv[5] = { 0.3, -1.2, 2, 0.5, -0.1 }, c[5] = { 1, -2, 0.5, 3, -1 }, v[5] = { 0.7, 1, -1.5, 0.2, 2 };
    tg_tensor *x = tg_param(vec(dev, 5, xv)), *vt = vec(dev, 5, v);
    tg_tensor *f = tg_sum(tg_mul(tg_softmax(x, 0), vec(dev, 5, c)), TG_ALL, false);
    double s[5], z = 0, m = 0, want[5];
    for (int i = 0; i < 5; i++) z += exp(xv[i]);
    for (int i = 0; i < 5; i++) s[i] = exp(xv[i]) / z, m += s[i] * c[i];
    for (int i = 0; i < 5; i++) {
        want[i] = 0;
        for (int j = 0; j < 5; j++) want[i] += (s[i] * ((i == j) - s[j]) * (c[i] - m) - s[i] * s[j] * (c[j] - m)) * v[j];
    }
    tg_tensor *hv;
    CHECK(hvp(f, 1, &x, &vt, &hv) != NULL);
    CHECK(values_are(hv, 5, want, 1e-12));
}

/* Mixed partials: f(x, y) = sum(exp(x) y^2); H_xx = diag(e^x y^2), H_xy = diag(2 e^x y),
 * H_yy = diag(2 e^x), so Hv = (e^x y^2 vx + 2 e^x y vy, 2 e^x y vx + 2 e^x vy). */
TEST(hvp_mixed_partials) {
    tg_device *dev = tg_test_device();
    const double xv[3] = { 0.1, -0.5, 1 }, yv[3] = { 2, -1, 0.5 }, vx[3] = { 1, 2, -1 }, vy[3] = { -0.5, 1, 3 };
    tg_tensor *xs[2] = { tg_param(vec(dev, 3, xv)), tg_param(vec(dev, 3, yv)) };
    tg_tensor *vs[2] = { vec(dev, 3, vx), vec(dev, 3, vy) };
    tg_tensor *f = tg_sum(tg_mul(tg_exp(xs[0]), tg_square(xs[1])), TG_ALL, false);
    double wx[3], wy[3];
    for (int i = 0; i < 3; i++) {
        double e = exp(xv[i]);
        wx[i] = e * yv[i] * yv[i] * vx[i] + 2 * e * yv[i] * vy[i];
        wy[i] = 2 * e * yv[i] * vx[i] + 2 * e * vy[i];
    }
    tg_tensor *hv[2];
    CHECK(hvp(f, 2, xs, vs, hv) != NULL);
    CHECK(values_are(hv[0], 3, wx, 1e-12));
    CHECK(values_are(hv[1], 3, wy, 1e-12));
}

/* A one-hidden-layer tanh MLP, L = 0.5 sum_n (w2 . tanh(x_n W1 + b1) - t_n)^2: the
 * library's Hv against central differences of a gradient written out on the host. */
enum { MLP_N = 3, MLP_D = 2, MLP_H = 4, MLP_P = MLP_D * MLP_H + 2 * MLP_H };

static void mlp_host_grad(const double *X, const double *t, const double *th, double *g) {
    const double *w1 = th, *b1 = th + MLP_D * MLP_H, *w2 = b1 + MLP_H; /* w1 (D, H) */
    memset(g, 0, MLP_P * sizeof *g);
    for (int n = 0; n < MLP_N; n++) {
        double h[MLP_H], y = 0;
        for (int k = 0; k < MLP_H; k++) {
            double z = b1[k];
            for (int d = 0; d < MLP_D; d++) z += X[n * MLP_D + d] * w1[d * MLP_H + k];
            h[k] = tanh(z);
            y += w2[k] * h[k];
        }
        double e = y - t[n];
        for (int k = 0; k < MLP_H; k++) {
            double dz = e * w2[k] * (1 - h[k] * h[k]);
            g[MLP_D * MLP_H + MLP_H + k] += e * h[k];
            g[MLP_D * MLP_H + k] += dz;
            for (int d = 0; d < MLP_D; d++) g[d * MLP_H + k] += dz * X[n * MLP_D + d];
        }
    }
}

TEST(hvp_mlp_against_host_gradient_differences) {
    tg_device *dev = tg_test_device();
    const double X[MLP_N * MLP_D] = { 0.5, -1, 1.5, 0.2, -0.3, 0.8 }, t[MLP_N] = { 0.3, -0.5, 1 };
    double th[MLP_P], v[MLP_P];
    for (int i = 0; i < MLP_P; i++) th[i] = 0.9 * sin(1.7 * i + 0.3), v[i] = cos(2.3 * i);
    tg_tensor *w1 = tg_param(tg_from_f64(th, TG_SHAPE(MLP_D, MLP_H), dev));
    tg_tensor *b1 = tg_param(vec(dev, MLP_H, th + MLP_D * MLP_H));
    tg_tensor *w2 = tg_param(vec(dev, MLP_H, th + MLP_D * MLP_H + MLP_H));
    tg_tensor *xs[3] = { w1, b1, w2 };
    tg_tensor *vs[3] = { tg_from_f64(v, TG_SHAPE(MLP_D, MLP_H), dev), vec(dev, MLP_H, v + MLP_D * MLP_H),
                         vec(dev, MLP_H, v + MLP_D * MLP_H + MLP_H) };
    tg_tensor *h = tg_tanh(tg_add(tg_matmul(tg_from_f64(X, TG_SHAPE(MLP_N, MLP_D), dev), w1), b1));
    tg_tensor *e = tg_sub(tg_matmul(h, w2), vec(dev, MLP_N, t));
    tg_tensor *f = tg_mul_scalar(tg_sum(tg_square(e), TG_ALL, false), 0.5);
    double want[MLP_P], tp[MLP_P], tm[MLP_P], gp[MLP_P], gm[MLP_P], eps = 1e-5;
    for (int i = 0; i < MLP_P; i++) tp[i] = th[i] + eps * v[i], tm[i] = th[i] - eps * v[i];
    mlp_host_grad(X, t, tp, gp);
    mlp_host_grad(X, t, tm, gm);
    for (int i = 0; i < MLP_P; i++) want[i] = (gp[i] - gm[i]) / (2 * eps);
    /* the host gradient agrees with backward: the differences differentiate the right function */
    double g0[MLP_P];
    mlp_host_grad(X, t, th, g0);
    tg_tensor *g[3];
    CHECK(tg_autograd_grad(1, &f, NULL, 3, xs, g, &(tg_backward_opts){ .retain_graph = true }) == TG_OK);
    CHECK(values_are(g[0], MLP_D * MLP_H, g0, 1e-12) && values_are(g[1], MLP_H, g0 + MLP_D * MLP_H, 1e-12) &&
          values_are(g[2], MLP_H, g0 + MLP_D * MLP_H + MLP_H, 1e-12));
    tg_tensor *hv[3];
    CHECK(hvp(f, 3, xs, vs, hv) != NULL);
    CHECK(values_are(hv[0], MLP_D * MLP_H, want, 1e-7));
    CHECK(values_are(hv[1], MLP_H, want + MLP_D * MLP_H, 1e-7));
    CHECK(values_are(hv[2], MLP_H, want + MLP_D * MLP_H + MLP_H, 1e-7));
}

/* Second order through saved outputs: d2/dx2 exp(x) = exp(x), d2/dx2 tanh = -2 tanh (1 - tanh^2). */
TEST(second_order_through_saved_outputs) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 0.3, -0.7 }));
    tg_tensor *f = tg_sum(tg_add(tg_exp(x), tg_tanh(x)), TG_ALL, false);
    tg_tensor *g;
    CHECK(tg_autograd_grad(1, &f, NULL, 1, &x, &g, &(tg_backward_opts){ .create_graph = true }) == TG_OK);
    CHECK(tg_backward(tg_sum(g, TG_ALL, false)) == TG_OK);
    double want[2];
    for (int i = 0; i < 2; i++) {
        double xi = i ? -0.7 : 0.3, t = tanh(xi);
        want[i] = exp(xi) - 2 * t * (1 - t * t);
    }
    CHECK(values_are(tg_grad(x), 2, want, 1e-12));
}

TEST(autograd_grad_leaves_dot_grad_alone) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    tg_tensor *unused = tg_param(vec(dev, 2, (double[]){ 5, 5 }));
    tg_tensor *mid = tg_mul_scalar(x, 3);
    tg_tensor *y = tg_sum(tg_square(mid), TG_ALL, false);
    tg_tensor *in[3] = { x, unused, mid }, *g[3];
    CHECK(tg_autograd_grad(1, &y, NULL, 3, in, g, NULL) == TG_OK);
    CHECK(values_are(g[0], 2, (double[]){ 18, 36 }, 0)); /* 2 * 3x * 3 */
    CHECK(values_are(g[1], 2, (double[]){ 0, 0 }, 0));
    CHECK(values_are(g[2], 2, (double[]){ 6, 12 }, 0));  /* 2 * mid */
    CHECK_ERROR(tg_grad(x), "tg_grad: no gradient yet (run tg_backward on a loss that depends on this tensor)");
    CHECK_ERROR(tg_autograd_grad(1, &y, NULL, 1, (tg_tensor *[]){ tg_ones(TG_F64, TG_SHAPE(1), dev) }, g, NULL),
                "tg_autograd_grad: input 0 does not require grad");
}

TEST(grad_mode_and_detach) {
    tg_device *dev = tg_test_device();
    tg_tensor *x = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    bool prev = tg_set_grad_enabled(false);
    CHECK(prev && !tg_is_grad_enabled());
    tg_tensor *y = tg_mul(x, x);
    CHECK(!tg_requires_grad(y) && tg_is_leaf(y));
    tg_set_grad_enabled(prev);
    tg_tensor *d = tg_detach(tg_mul(x, x));
    CHECK(!tg_requires_grad(d) && tg_is_leaf(d));
    CHECK(tg_backward(tg_sum(tg_mul(x, d), TG_ALL, false)) == TG_OK);
    CHECK(values_are(tg_grad(x), 2, (double[]){ 1, 4 }, 0)); /* d is a constant */
    CHECK_ERROR(tg_set_requires_grad(tg_mul(x, x), false), "tg_set_requires_grad: only leaves can change it; this tensor was made by tg_mul (use tg_detach for a leaf)");
    CHECK_ERROR(tg_param(tg_zeros(TG_I32, TG_SHAPE(2), dev)), "tg_set_requires_grad: only floating tensors can require grad, got i32");
}

TEST(version_counter_catches_in_place_update) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    tg_tensor *x = vec(dev, 2, (double[]){ 3, 4 });
    tg_tensor *loss = tg_sum(tg_mul(w, x), TG_ALL, false); /* saves x for dw */
    CHECK_ERROR(tg_add_(w, x), "tg_add_: dst requires grad and grad mode is on; update parameters with grad mode off (tg_set_grad_enabled(false))");
    CHECK(tg_add_(x, x) == TG_OK);                          /* x is not a parameter: allowed */
    CHECK_ERROR(tg_backward(loss), "tg_backward: a tensor saved by tg_mul was modified in place (version 1, saved at 0); clone it before updating it");
}

TEST(sgd_step_under_no_grad) {
    tg_device *dev = tg_test_device();
    tg_tensor *w = tg_param(vec(dev, 2, (double[]){ 1, 2 }));
    CHECK(tg_backward(tg_sum(tg_square(w), TG_ALL, false)) == TG_OK);
    bool prev = tg_set_grad_enabled(false);
    CHECK(tg_axpy_(w, -0.25, tg_grad(w)) == TG_OK);
    tg_set_grad_enabled(prev);
    CHECK(values_are(w, 2, (double[]){ 0.5, 1 }, 0)); /* w - 0.25 * 2w */
}

/* axpy into a strided view with a broadcast source; the rest of the base is untouched. */
TEST(axpy_on_views_and_broadcast) {
    tg_device *dev = tg_test_device();
    tg_tensor *base = tg_from_f64((double[]){ 1, 2, 3, 4, 5, 6 }, TG_SHAPE(2, 3), dev);
    tg_tensor *col = tg_slice(base, 1, 0, 3, 2); /* columns 0 and 2: strides (3, 2) */
    CHECK(tg_axpy_(col, 2, vec(dev, 2, (double[]){ 10, 100 })) == TG_OK);
    CHECK(values_are(base, 6, (double[]){ 21, 2, 203, 24, 5, 206 }, 0));
    CHECK_ERROR(tg_axpy_(col, 1, tg_ones(TG_F32, TG_SHAPE(2), dev)), "tg_axpy_: dtypes differ: f64 and f32");
    CHECK_ERROR(tg_axpy_(col, 1, tg_ones(TG_F64, TG_SHAPE(3), dev)), "tg_axpy_: shapes [2,2] and [3] do not broadcast (axis -1: 2 vs 3)");
    /* A source that is a flipped view of dst itself reads the values from before the update. */
    tg_tensor *v = vec(dev, 3, (double[]){ 1, 2, 3 });
    CHECK(tg_axpy_(v, 1, tg_flip(v, TG_AXES(0))) == TG_OK);
    CHECK(values_are(v, 3, (double[]){ 4, 4, 4 }, 0));
    tg_tensor *m = vec(dev, 3, (double[]){ 1, 2, 3 });
    CHECK(tg_add_(m, tg_flip(m, TG_AXES(0))) == TG_OK);
    CHECK(values_are(m, 3, (double[]){ 4, 4, 4 }, 0));
    tg_tensor *ints = tg_zeros(TG_I32, TG_SHAPE(2), dev);
    CHECK_ERROR(tg_axpy_(ints, 1, ints), "tg_axpy_: expected a floating dtype (f32 or f64), got i32");
}

/* A weight shared by every step of a recurrence, h_t = tanh(x_t + h_{t-1} W^T), also used
 * outside a matmul (0.5 sum W^2): the engine stacks the steps' products into one; the
 * gradient must equal backpropagation through time done by hand on the host, with
 * tg_backward and with tg_autograd_grad, and with create_graph (which does not stack). */
#define RT 5
#define RN 3
#define RH 4
static void bptt_host(const double *W, const double *h0, const double *x, double *gW, double *gh0) {
    double h[RT + 1][RN * RH], dh[RN * RH];
    memcpy(h[0], h0, sizeof h[0]);
    for (int t = 0; t < RT; t++)
        for (int n = 0; n < RN; n++)
            for (int j = 0; j < RH; j++) {
                double z = x[(t * RN + n) * RH + j];
                for (int k = 0; k < RH; k++) z += h[t][n * RH + k] * W[j * RH + k];
                h[t + 1][n * RH + j] = tanh(z);
            }
    for (int i = 0; i < RH * RH; i++) gW[i] = W[i];
    for (int i = 0; i < RN * RH; i++) dh[i] = 1;
    for (int t = RT - 1; t >= 0; t--) {
        double dz[RN * RH], prev[RN * RH] = { 0 };
        for (int i = 0; i < RN * RH; i++) dz[i] = dh[i] * (1 - h[t + 1][i] * h[t + 1][i]);
        for (int n = 0; n < RN; n++)
            for (int j = 0; j < RH; j++)
                for (int k = 0; k < RH; k++) {
                    gW[j * RH + k] += dz[n * RH + j] * h[t][n * RH + k];
                    prev[n * RH + k] += dz[n * RH + j] * W[j * RH + k];
                }
        memcpy(dh, prev, sizeof dh);
    }
    memcpy(gh0, dh, sizeof dh);
}

static tg_tensor *recurrence_loss(tg_tensor *W, tg_tensor *h, tg_tensor *x) {
    tg_tensor *wt = tg_transpose(W, 0, 1), *steps[RT];
    tg_chunk(x, RT, 0, steps);
    for (int t = 0; t < RT; t++) h = tg_tanh(tg_add(tg_reshape(steps[t], TG_SHAPE(RN, RH)), tg_matmul(h, wt)));
    return tg_add(tg_sum(h, TG_ALL, false), tg_mul_scalar(tg_sum(tg_square(wt), TG_ALL, false), 0.5));
}

TEST(shared_weight_products_are_stacked) {
    tg_device *dev = tg_test_device();
    double Wv[RH * RH], h0v[RN * RH], xv[RT * RN * RH], gW[RH * RH], gh0[RN * RH];
    for (int i = 0; i < RH * RH; i++) Wv[i] = 0.3 * sin(1.7 * i + 0.2);
    for (int i = 0; i < RN * RH; i++) h0v[i] = 0.5 * cos(0.9 * i);
    for (int i = 0; i < RT * RN * RH; i++) xv[i] = 0.8 * sin(0.37 * i - 1);
    bptt_host(Wv, h0v, xv, gW, gh0);
    tg_tensor *W = tg_param(tg_from_f64(Wv, TG_SHAPE(RH, RH), dev));
    tg_tensor *h0 = tg_param(tg_from_f64(h0v, TG_SHAPE(RN, RH), dev));
    tg_tensor *x = tg_from_f64(xv, TG_SHAPE(RT * RN, RH), dev);
    CHECK(tg_backward(recurrence_loss(W, h0, x)) == TG_OK);
    CHECK(values_are(tg_grad(W), RH * RH, gW, 1e-12));
    CHECK(values_are(tg_grad(h0), RN * RH, gh0, 1e-12));
    for (int create = 0; create <= 1; create++) {
        tg_tensor *g[2];
        tg_backward_opts o = { .create_graph = create };
        CHECK(tg_autograd_grad(1, (tg_tensor *[]){ recurrence_loss(W, h0, x) }, NULL, 2, (tg_tensor *[]){ W, h0 }, g, &o) ==
              TG_OK);
        CHECK(values_are(g[0], RH * RH, gW, 1e-12));
        CHECK(values_are(g[1], RN * RH, gh0, 1e-12));
    }
}

TG_TEST_MAIN(&tg_case_grad_accumulates_until_zeroed, &tg_case_diamond_and_broadcast,
             &tg_case_backward_with_grad_output, &tg_case_retain_graph_and_freed_graph,
             &tg_case_hessian_vector_product, &tg_case_hvp_squared_linear_form,
             &tg_case_hvp_quadratic_form, &tg_case_hvp_softmax_weighted_sum, &tg_case_hvp_mixed_partials,
             &tg_case_hvp_mlp_against_host_gradient_differences, &tg_case_second_order_through_saved_outputs,
             &tg_case_autograd_grad_leaves_dot_grad_alone, &tg_case_grad_mode_and_detach,
             &tg_case_version_counter_catches_in_place_update, &tg_case_sgd_step_under_no_grad,
             &tg_case_axpy_on_views_and_broadcast, &tg_case_shared_weight_products_are_stacked)
