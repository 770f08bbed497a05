"""The same contrastive-divergence iteration as bench/cd_step_bench.cc, in PyTorch eager.

The net mirrors ebm::image_net_preset and ebm::ImageEnergyNet (ebm/nets/image_nets.cc) exactly:
a 3x3 stem conv, then per stage `blocks` residual blocks, the last block of every stage but the
last ending in 2x2 average pooling; a block is act -> conv1 (3x3) -> act -> dropout (training
only) -> conv2 (3x3, weight scaled by 1e-3 at init) plus the input, through a 1x1 conv when the
channel count changes; every conv (stem, conv1, conv2, skip) spectrally normalised by
torch.nn.utils.parametrizations, the head not; after the blocks relu (swish for swish nets), a
global sum pool and a linear head. small_cnn: stem 16, stages 16/32/64, one block each, swish;
resnet32_large: stem 128, stages 128/256/512, three blocks each, leaky_relu 0.2, dropout 0.5.
The chain is K steps of x <- clamp(x + N(0, 0.005) - 10 * clip(grad E, 0.01), 0, 1) with the net
in eval mode (no dropout, no power iteration), chains from a uint8 replay buffer of 10000 with 5%
fresh uniform starts, loss E+ - E- + (E+^2 + E-^2), and Adam with beta1 = 0 and the IGEBM
per-element gradient clip (3 sqrt(v_hat) + 0.1). --autocast-bf16 1 runs the iteration (chain,
forward, backward) under bf16 autocast on the device, as TrainerOptions::autocast_bf16 does.
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

# ebm::image_net_preset: stem filters, stage filters, blocks per stage, activation, dropout.
PRESETS = {
    "small_cnn": (16, (16, 32, 64), 1, "swish", 0.0),
    "resnet32": (128, (128, 128, 128), 2, "leaky_relu", 0.0),
    "resnet32_large": (128, (128, 256, 512), 3, "leaky_relu", 0.5),
    "resnet32_wider": (192, (192, 192, 192), 3, "leaky_relu", 0.0),
    "resnet32_wider_imagenet": (256, (256, 256, 256), 3, "leaky_relu", 0.0),
}
LEAKY_SLOPE = 0.2


def act(x, kind):
    return F.silu(x) if kind == "swish" else F.leaky_relu(x, LEAKY_SLOPE)


class Block(nn.Module):
    def __init__(self, cin, cout, down, kind, dropout):
        super().__init__()
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        with torch.no_grad():
            conv2.weight.mul_(1e-3)
        self.conv2 = spectral_norm(conv2)
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1)) if cin != cout else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.down = down
        self.kind = kind

    def forward(self, x):
        h = act(self.conv1(act(x, self.kind)), self.kind)
        if self.dropout is not None:
            h = self.dropout(h)
        h = self.conv2(h)
        out = (self.skip(x) if self.skip is not None else x) + h
        return F.avg_pool2d(out, 2) if self.down else out


class ImageNet(nn.Module):
    def __init__(self, name, channels):
        super().__init__()
        stem, stages, blocks, kind, dropout = PRESETS[name]
        self.kind = kind
        self.stem = spectral_norm(nn.Conv2d(channels, stem, 3, padding=1))
        self.blocks = nn.ModuleList()
        c = stem
        for s, out in enumerate(stages):
            for b in range(blocks):
                down = b + 1 == blocks and s + 1 < len(stages)
                self.blocks.append(Block(c, out, down, kind, dropout))
                c = out
        self.head = nn.Linear(c, 1)

    def forward(self, x):
        h = self.stem(x)
        for b in self.blocks:
            h = b(h)
        h = F.silu(h) if self.kind == "swish" else F.relu(h)
        return self.head(h.sum((2, 3))).squeeze(1)


class Buffer:
    def __init__(self, capacity, shape):
        self.data = torch.zeros((capacity,) + shape, dtype=torch.uint8)
        self.size = 0
        self.head = 0
        self.capacity = capacity

    def draw(self, n):
        x = torch.rand((n,) + tuple(self.data.shape[1:]))
        if self.size > n:
            from_buffer = torch.rand(n) >= 0.05
            rows = from_buffer.nonzero().squeeze(1)
            idx = torch.randint(self.size, (rows.numel(),))
            stored = self.data[idx].float()
            x[rows] = (stored + torch.rand_like(stored)) / 256.0
        return x

    def push(self, x):
        q = (x * 256).floor().clamp(0, 255).to(torch.uint8)
        for i in range(q.shape[0]):
            self.data[self.head] = q[i]
            self.head = (self.head + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)


class ClippedAdam:
    def __init__(self, params, lr=3e-4, betas=(0.0, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self):
        prev_c2 = 1 - self.b2 ** self.t
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            v_hat = v / prev_c2 if self.t > 1 else torch.zeros_like(v)
            bound = v_hat.sqrt() * 3 + 0.1
            g = torch.max(torch.min(g, bound), -bound)
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            p.addcdiv_(m, (v / c2).sqrt().add_(self.eps), value=-self.lr / c1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--net", default="small_cnn", choices=sorted(PRESETS))
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--autocast-bf16", type=int, default=0, choices=(0, 1))
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = ImageNet(a.net, a.channels).to(dev)
    params = sum(p.numel() for p in model.parameters())
    opt = ClippedAdam(model.parameters())
    buf = Buffer(10000, (a.channels, a.size, a.size))
    data = torch.rand(a.batch * 8, a.channels, a.size, a.size)

    def iteration(i):
        x_pos = data[(i % 8) * a.batch:(i % 8 + 1) * a.batch].to(dev)
        x_pos = x_pos * (255 / 256) + torch.rand_like(x_pos) / 256
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(a.autocast_bf16)):
            contrast(x_pos)

    def contrast(x_pos):
        x = buf.draw(a.batch).to(dev)
        model.eval()
        for _ in range(a.steps):
            with torch.no_grad():
                x = x + torch.randn_like(x) * 0.005
            x = x.detach().requires_grad_(True)
            e = model(x)
            (g,) = torch.autograd.grad(e.sum(), x)
            with torch.no_grad():
                x = (x - 10.0 * g.clamp(-0.01, 0.01)).clamp(0, 1)
        x_neg = x.detach()
        model.train()
        buf.push(x_neg.cpu())
        energies = model(torch.cat([x_pos, x_neg])).float()
        e_pos, e_neg = energies[: a.batch], energies[a.batch:]
        loss = e_pos.mean() - e_neg.mean() + (e_pos ** 2 + e_neg ** 2).mean()
        for p in model.parameters():
            p.grad = None
        loss.backward()
        if not math.isfinite(loss.item()):
            return
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for i in range(a.warmup):
        iteration(i)
    sync()
    t0 = time.perf_counter()
    for i in range(a.iters):
        iteration(i)
    sync()
    secs = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "device": a.device, "threads": torch.get_num_threads(),
                      "batch": a.batch, "steps": a.steps, "iters": a.iters, "net": a.net,
                      "channels": a.channels, "size": a.size,
                      "autocast_bf16": bool(a.autocast_bf16), "params": params,
                      "ms_per_iter": round(1000 * secs / a.iters, 3)}))


if __name__ == "__main__":
    main()
