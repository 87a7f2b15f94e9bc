# PyTorch's Adam (default lr 1e-3, foreach) over ResNet-20's parameter shapes, for
# bench/bench_optim.c, which runs it once a round: prints {"us_per_step": X, "foreach": 0|1,
# "torch": version, "omp_wait": policy}. Unless OMP_WAIT_POLICY is set it runs itself under
# OpenMP's default wait and under passive, and prints the faster of each (spinning threads
# lose on a machine with more runnable threads than cores).
import argparse, json, os, subprocess, sys, time
if "OMP_WAIT_POLICY" not in os.environ and "TG_PEER_WAIT_CHILD" not in os.environ:
    best = {}
    for wait in ("default", "passive"):
        env = dict(os.environ, TG_PEER_WAIT_CHILD="1")
        if wait == "passive":
            env["OMP_WAIT_POLICY"] = "passive"
        p = subprocess.run([sys.executable] + sys.argv, env=env, capture_output=True, text=True)
        if p.returncode:
            sys.exit(p.returncode)
        for line in p.stdout.splitlines():
            r = dict(json.loads(line), omp_wait=wait)
            if r["foreach"] not in best or r["us_per_step"] < best[r["foreach"]]["us_per_step"]:
                best[r["foreach"]] = r
    for k in sorted(best, reverse=True):
        print(json.dumps(best[k]))
    sys.exit(0)
try:
    import torch
except ImportError:
    sys.exit(77)
ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=200)
ap.add_argument("--shapes", required=True)  # "16,3,3,3;16;..." one shape per tensor
a = ap.parse_args()
torch.set_num_threads(a.threads)
ps = [torch.nn.Parameter(torch.randn(*[int(d) for d in s.split(",")])) for s in a.shapes.split(";")]
for p in ps:
    p.grad = torch.randn_like(p)
for foreach in (True, False):
    opt = torch.optim.Adam(ps, foreach=foreach)
    for _ in range(10):
        opt.step()
    best = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(a.steps // 5):
            opt.step()
        best.append((time.perf_counter() - t) / (a.steps // 5))
    best.sort()
    print(json.dumps({"us_per_step": best[len(best) // 2] * 1e6, "foreach": int(foreach), "torch": torch.__version__}))
