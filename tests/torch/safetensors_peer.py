"""An independent safetensors reader and writer (json + struct + torch.frombuffer; the
safetensors package is not needed) and the small CNN of tests/test_checkpoint.c in torch.

  read  MODEL X OUT   load tapegrad's MODEL file into the CNN (strict), run it in eval
                      mode on X's "x", write "y" to OUT
  write MODEL IO      write a CNN with random trained-looking weights to MODEL, and
                      "x" and the CNN's eval output "y" to IO
"""
import json
import struct
import sys

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}
NAMES = {v: k for k, v in DTYPES.items()}


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        raw = bytearray(data[b:end])
        t = torch.frombuffer(raw, dtype=dt) if raw else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def save(tensors, path):
    """As the reference: larger elements first, then by name; header padded to 8."""
    items = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    header, chunks, off = {}, [], 0
    for name, t in items:
        b = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3))


def main():
    mode = sys.argv[1]
    net = cnn()
    if mode == "read":
        net.load_state_dict(load(sys.argv[2]), strict=True)
        net.eval()
        with torch.no_grad():
            y = net(load(sys.argv[3])["x"])
        save({"y": y}, sys.argv[4])
    elif mode == "write":
        torch.manual_seed(0)
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0, 0.3)
            bn = net[1]
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.num_batches_tracked.fill_(7)
            net.eval()
            x = torch.randn(2, 3, 5, 5)
            y = net(x)
        save(net.state_dict(), sys.argv[2])
        save({"x": x, "y": y}, sys.argv[3])
    else:
        sys.exit("usage: safetensors_peer.py read MODEL X OUT | write MODEL IO")


if __name__ == "__main__":
    main()
