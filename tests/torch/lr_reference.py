# Prints torch.optim.lr_scheduler's lr sequences for tests/test_lr_schedule.c's
# against_pytorch case: one line "name lr0 lr1 ...". Exits 77 without torch.
import sys
import warnings
try:
    import torch
    from torch.optim import lr_scheduler as L
except ImportError:
    sys.exit(77)
warnings.filterwarnings("ignore")

def seq(name, make, n=30, adam=False):
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p], lr=0.1) if adam else torch.optim.SGD([p], lr=0.1, momentum=0.9)
    s = make(opt)
    out = []
    for i in range(n):
        if i:
            opt.step()
            s.step()
        out.append(opt.param_groups[0]["lr"])
    print(name, " ".join(repr(v) for v in out))

seq("StepLR", lambda o: L.StepLR(o, 3, gamma=0.5))
seq("MultiStepLR", lambda o: L.MultiStepLR(o, [2, 5, 9]))
seq("ExponentialLR", lambda o: L.ExponentialLR(o, 0.9))
seq("PolynomialLR", lambda o: L.PolynomialLR(o, total_iters=10, power=2.0))
seq("LinearLR", lambda o: L.LinearLR(o, start_factor=0.25, total_iters=4))
seq("CosineAnnealingLR", lambda o: L.CosineAnnealingLR(o, 10, eta_min=0.01))
seq("CosineAnnealingWarmRestarts", lambda o: L.CosineAnnealingWarmRestarts(o, 3, T_mult=2, eta_min=0.001))
seq("CyclicLR", lambda o: L.CyclicLR(o, 0.01, 0.1, step_size_up=2, step_size_down=4, mode="triangular2"))
seq("OneCycleLR", lambda o: L.OneCycleLR(o, 1.0, total_steps=40), n=40, adam=True)
seq("OneCycleLR3", lambda o: L.OneCycleLR(o, 1.0, total_steps=40, three_phase=True, anneal_strategy="linear"), n=40, adam=True)
seq("SequentialLR", lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, total_iters=3), L.CosineAnnealingLR(o, 10)], [3]))
seq("ChainedScheduler", lambda o: L.ChainedScheduler([L.ExponentialLR(o, 0.9), L.LinearLR(o, start_factor=0.5, total_iters=4)]))
