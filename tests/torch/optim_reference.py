# torch.optim's trajectories for tests/test_optim_torch.c, in f64: one line
# "name step x0 x1 ..." after each step (the parameters flattened in order). The
# problems and configurations are the C test's table, by name. Exits 77 without torch.
import sys
try:
    import torch
except ImportError:
    sys.exit(77)
torch.set_default_dtype(torch.float64)

LS_X = torch.tensor([[1, 2, -1], [0.5, -1, 2], [-1, 0.3, 0.7], [2, 1, 1],
                     [-0.5, -2, 0.1], [1.5, 0.2, -0.8], [0.1, 0.9, 1.3], [-1.2, 0.4, -0.3]])
LS_Y = torch.tensor([[1, 0], [-1, 2], [0.5, 0.5], [3, 1], [-2, -1], [1, -1], [0, 2], [-1, 0]])


def problem(name):
    """The parameters and the loss: least squares (W 3x2, b 2), its negation (for
    maximize), or Rosenbrock (x 2)."""
    if name == "rosen":
        x = torch.nn.Parameter(torch.tensor([-1.5, 2.0]))
        return [x], lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    w = torch.nn.Parameter(torch.tensor([[0.1, -0.2], [0.3, 0.0], [-0.1, 0.2]]))
    b = torch.nn.Parameter(torch.tensor([0.05, -0.05]))
    sign = -1.0 if name == "nls" else 1.0
    return [w, b], lambda: sign * ((LS_X @ w + b - LS_Y) ** 2).sum() / 8


O = torch.optim
CASES = [  # name, problem, steps, constructor
    ("sgd", "ls", 50, lambda p: O.SGD(p, lr=0.05)),
    ("sgd_momentum_wd", "ls", 50, lambda p: O.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("sgd_nesterov", "rosen", 50, lambda p: O.SGD(p, lr=1e-4, momentum=0.9, nesterov=True)),
    ("sgd_maximize", "nls", 50, lambda p: O.SGD(p, lr=0.05, momentum=0.5, maximize=True)),
    ("adam", "ls", 50, lambda p: O.Adam(p, lr=0.05)),
    ("adam_amsgrad_wd", "rosen", 50, lambda p: O.Adam(p, lr=0.02, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    ("adam_beta1_zero", "ls", 50, lambda p: O.Adam(p, lr=0.01, betas=(0.0, 0.999), eps=1e-6)),
    ("adam_maximize", "nls", 50, lambda p: O.Adam(p, lr=0.05, maximize=True)),
    ("adamw", "ls", 50, lambda p: O.AdamW(p, lr=0.05, weight_decay=0.1)),
    ("adamw_amsgrad", "rosen", 50, lambda p: O.AdamW(p, lr=0.01, weight_decay=0.5, amsgrad=True)),
    ("rmsprop", "ls", 50, lambda p: O.RMSprop(p, lr=0.01)),
    ("rmsprop_centered_momentum", "rosen", 50,
     lambda p: O.RMSprop(p, lr=1e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    ("adagrad", "ls", 50, lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("adagrad_rosen", "rosen", 50, lambda p: O.Adagrad(p, lr=0.05)),
    # Rosenbrock's valley multiplies rounding by ~100 every 5 iterations (torch against
    # itself with the loss written in another order differs by 1.7e-11 after 4 steps and
    # 1.1e-9 after 5; tapegrad by 2.2e-10 and 1.4e-8), so 4 steps keep 1e-8 meaningful.
    ("lbfgs_wolfe", "rosen", 4, lambda p: O.LBFGS(p, max_iter=5, history_size=3, line_search_fn="strong_wolfe")),
    ("lbfgs_wolfe_ls", "ls", 4, lambda p: O.LBFGS(p, max_iter=4, history_size=2, line_search_fn="strong_wolfe")),
    ("lbfgs_plain", "rosen", 6, lambda p: O.LBFGS(p, lr=0.05, max_iter=6, history_size=4)),
    ("lbfgs_plain_ls", "ls", 5, lambda p: O.LBFGS(p, lr=0.5, max_iter=3, history_size=2)),
]

for name, prob, steps, make in CASES:
    params, loss_fn = problem(prob)
    opt = make(params)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for k in range(1, steps + 1):
        opt.step(closure)
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        print(name, k, " ".join(repr(float(v)) for v in flat))
