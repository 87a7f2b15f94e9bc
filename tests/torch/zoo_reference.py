# Writes torchvision models for tests/test_models_torch.c: for resnet18, vgg11_bn, alexnet
# and googlenet (10 classes, random init, random BN statistics so that eval uses them),
# into OUT/<model>/: names.txt ("name f32|i64 d0,d1,..." per state_dict entry, "-" for
# 0-d), i.bin (entry i, raw little-endian), input.txt (N C H W), input.bin and logits.bin
# (the eval logits). Prints each model's names and shapes. Exits 77 without torchvision.
import os
import sys
import warnings
try:
    import torch
    import torchvision.models as M
except ImportError:
    sys.exit(77)
warnings.filterwarnings("ignore")

out = sys.argv[1]
torch.manual_seed(0)
specs = [
    ("resnet18", lambda: M.resnet18(num_classes=10), 64),
    ("vgg11_bn", lambda: M.vgg11_bn(num_classes=10), 32),
    ("alexnet", lambda: M.alexnet(num_classes=10), 64),
    ("googlenet", lambda: M.googlenet(num_classes=10, aux_logits=True, init_weights=True), 64),
]
for name, make, size in specs:
    m = make()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
                mod.num_batches_tracked.fill_(3)
    m.eval()
    d = os.path.join(out, name)
    os.makedirs(d)
    lines = []
    for i, (k, v) in enumerate(m.state_dict().items()):
        v = v.detach().contiguous()
        dt = "i64" if v.dtype == torch.int64 else "f32"
        v.numpy().astype("<i8" if dt == "i64" else "<f4").tofile(os.path.join(d, "%d.bin" % i))
        lines.append("%s %s %s" % (k, dt, ",".join(str(s) for s in v.shape) or "-"))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = m(x)
    x.numpy().astype("<f4").tofile(os.path.join(d, "input.bin"))
    y.numpy().astype("<f4").tofile(os.path.join(d, "logits.bin"))
    with open(os.path.join(d, "names.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(d, "input.txt"), "w") as f:
        f.write("2 3 %d %d\n" % (size, size))
    print(name + ": " + "; ".join(lines))
