"""The U-Net workload of `langevin bench` (`--only unet`) in PyTorch, as the peer measured in the
same run: the same network, the same images, the same work.

Network: langevin's U-Net (crates/langevin-learn/src/unet.rs), layer for layer — Gaussian
Fourier features of the noise input (16 frequencies, sin and cos) → Linear → SiLU → Linear →
SiLU makes the block embedding (4 × base channels); a 3 × 3 input convolution; per level
`blocks` residual blocks (GroupNorm + SiLU, 3 × 3 conv, + projected embedding, GroupNorm + SiLU,
3 × 3 conv, 1 × 1 skip when the channels change) with one-head self-attention at the chosen
levels, a stride-2 3 × 3 convolution down; a middle of residual, attention, residual; on the
way up `blocks + 1` residual blocks on the concatenated skips, nearest up-sampling + 3 × 3 conv;
GroupNorm + SiLU and a 3 × 3 output convolution. GroupNorm ε = 1e-6. The parameter count is
checked against langevin's (1,113,955 for `tiny`, 35,697,155 for `cifar`, 3 channels).

Work, per preset (as langevin's bench): `tiny` on 16 × 16 images, training batch 64, forward
batch 256; `cifar` on 32 × 32, training batch 8, forward batch 16 (`--quick`: 16/32 and 2/2).
A training step: EDM loss (log-normal σ, preconditioned target), Adam, gradient-norm clipping at
1, EMA 0.999. A forward pass without gradients is one sampling step (one denoiser evaluation
per image). Best of three timed blocks after a warm-up step. The forward flops are counted by
torch.utils.flop_counter (convolutions, matrix products), to check langevin's analytic count.
Prints one JSON line per preset.

`--device cuda` (beside `langevin bench --only unet --device cuda`, scripts/gpu-bench.sh): the
same network on the GPU, at langevin's GPU batch sizes (`tiny` 256 and 1,024, `cifar` 128 and
512; `--quick` 32/64 and 8/16), each timed block ended by torch.cuda.synchronize(), with
PyTorch's default precision settings (reported: cuDNN convolutions may use TF32, matrix products
not), and the GPU's f32 matrix-product rate measured as langevin measures it (best of five
8192³ products).
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

QUICK = "--quick" in sys.argv
DEVICE = sys.argv[sys.argv.index("--device") + 1] if "--device" in sys.argv[:-1] else "cpu"
if DEVICE not in ("cpu", "cuda") and not DEVICE.startswith("cuda:"):
    raise SystemExit(f"unet_torch.py: --device {DEVICE}: use cpu or cuda[:N]")
if DEVICE != "cpu" and not torch.cuda.is_available():
    raise SystemExit(
        f"unet_torch.py: --device {DEVICE}, but this PyTorch sees no CUDA GPU (torch.cuda.is_available() is False); "
        "run it on the GPU machine, or use --device cpu"
    )
GPU = DEVICE != "cpu"


def sync():
    if GPU:
        torch.cuda.synchronize()


torch.manual_seed(0)
PRESETS = {
    # base, mults, blocks, attention levels, groups
    "tiny": (32, [1, 2, 2], 1, [2], 8),
    "small": (64, [1, 2, 2, 2], 2, [1], 16),
    "cifar": (128, [1, 2, 2, 2], 2, [1], 32),
}
EXPECTED = {"tiny": 1_113_955, "cifar": 35_697_155}


def norm(ch, groups):
    return nn.GroupNorm(groups, ch, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb, groups):
        super().__init__()
        self.norm1, self.conv1 = norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2, self.conv2 = norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.norm, self.qkv, self.proj = norm(ch, groups), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3 * c, h * w).chunk(3, dim=1)
        a = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (B, HW, HW)
        o = (a @ v.transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj(o)


class Unet(nn.Module):
    def __init__(self, preset, channels=3, fourier=16):
        super().__init__()
        base, mults, blocks, attention, groups = PRESETS[preset]
        temb = 4 * base
        self.register_buffer("freqs", torch.randn(1, fourier))
        self.temb1, self.temb2 = nn.Linear(2 * fourier, temb), nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(channels, base, 3, padding=1)
        self.down, skips, ch = nn.ModuleList(), [base], base
        for level, m in enumerate(mults):
            for _ in range(blocks):
                self.down.append(ResBlock(ch, base * m, temb, groups))
                ch = base * m
                if level in attention:
                    self.down.append(Attention(ch, groups))
                skips.append(ch)
            if level + 1 < len(mults):
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, temb, groups), Attention(ch, groups), ResBlock(ch, ch, temb, groups)])
        self.up = nn.ModuleList()
        for level in reversed(range(len(mults))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), base * mults[level], temb, groups))
                ch = base * mults[level]
                if level in attention:
                    self.up.append(Attention(ch, groups))
            if level > 0:
                self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, ch, 3, padding=1)))
        self.norm_out, self.conv_out = norm(ch, groups), nn.Conv2d(ch, channels, 3, padding=1)

    def forward(self, x, u):
        proj = u @ self.freqs * (2 * math.pi)
        emb = F.silu(self.temb2(F.silu(self.temb1(torch.cat([proj.sin(), proj.cos()], 1)))))
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            if isinstance(block, ResBlock):
                h = block(h, emb)
            elif isinstance(block, Attention):
                skips.pop()
                h = block(h)
            else:
                h = block(h)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        for block in self.up:
            if isinstance(block, ResBlock):
                h = block(torch.cat([h, skips.pop()], 1), emb)
            else:
                h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def measure(preset, size, batch, forward_batch):
    net = Unet(preset).to(DEVICE)
    params = sum(p.numel() for p in net.parameters())
    if preset in EXPECTED and params != EXPECTED[preset]:
        raise SystemExit(f"{preset}: {params} parameters, langevin's network has {EXPECTED[preset]}: not the same network")
    ema = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    data = torch.rand(512, 3, size, size, device=DEVICE) * 2 - 1
    sigma_data = 0.5

    def step():
        x = data[torch.randint(0, data.shape[0], (batch,), device=DEVICE)]
        sigma = (torch.randn(batch, 1, 1, 1, device=DEVICE) * 1.2 - 1.2).exp()
        r = (sigma**2 + sigma_data**2).sqrt()
        c_skip, c_out, c_in = sigma_data**2 / r**2, sigma * sigma_data / r, 1 / r
        xh = x + sigma * torch.randn_like(x)
        target = (x - c_skip * xh) / c_out
        out = net(c_in * xh, sigma.log().reshape(batch, 1) / 4)
        loss = 0.5 * ((out - target) ** 2).flatten(1).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.999)
            torch._foreach_add_(ema, [p.detach() for p in net.parameters()], alpha=0.001)

    steps = 1 if QUICK else (10 if preset == "tiny" else 3)
    step()
    sync()
    train = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        train.append((time.perf_counter() - t) / steps)
    x = torch.randn(forward_batch, 3, size, size, device=DEVICE)
    u = torch.full((forward_batch, 1), 0.25, device=DEVICE)
    with torch.no_grad():
        net(x, u)
        sync()
        forward = []
        for _ in range(3):
            t = time.perf_counter()
            net(x, u)
            sync()
            forward.append(time.perf_counter() - t)
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            net(x[:1], u[:1])
        flops = counter.get_total_flops()
    s, f = min(train), min(forward)
    return {
        "peer": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(), "device": DEVICE,
        "workload": "unet-shapes", "preset": preset, "image_size": size, "parameters": params,
        "forward_gflop_per_image": flops / 1e9,
        "train_batch": batch, "train_step_seconds": s, "train_images_per_second": batch / s,
        "train_gflops": 3 * flops * batch / s / 1e9,
        "forward_batch": forward_batch, "forward_seconds": f, "sampling_images_per_second": forward_batch / f,
        "forward_gflops": flops * forward_batch / f / 1e9,
    }


def matmul_gflops():
    """The GPU's f32 matrix-product rate, as `langevin bench --device cuda` measures it."""
    n = 8192
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    a @ b
    sync()
    best = math.inf
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


if GPU:
    cases = [("tiny", 16, 32, 64), ("cifar", 32, 8, 16)] if QUICK else [("tiny", 16, 256, 1024), ("cifar", 32, 128, 512)]
    print(json.dumps({
        "peer": "pytorch", "device": DEVICE, "gpu": torch.cuda.get_device_name(), "matmul_f32_gflops": matmul_gflops(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }), flush=True)
else:
    cases = [("tiny", 16, 16, 32), ("cifar", 32, 2, 2)] if QUICK else [("tiny", 16, 64, 256), ("cifar", 32, 8, 16)]
for preset, size, batch, forward_batch in cases:
    print(json.dumps(measure(preset, size, batch, forward_batch)), flush=True)
