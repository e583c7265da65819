"""Flow matching (torchcfm-style) and EDM training and sampling in PyTorch (CPU): the peer of
`langevin bench`'s `objectives-moons-mlp256` workload, measured in the same run.

Both sides train the same network and do the same work:
- data: 18,000 points of 2-D moons (two half circles, angle uniform on [0, π], noise 0.1; the
  formula of langevin's built-in set), standardized per column; 2,000 more as the reference;
- network: MLP on [x, sin 2πωu, cos 2πωu] (16 Gaussian Fourier frequencies of the noise input u),
  3 hidden layers of 256 SiLU units;
- flow matching: x_t = (1 − t) x + t z, t ~ U(0, 1), velocity target z − x, u = t (torchcfm's
  ConditionalFlowMatcher with σ = 0 and time reversed to langevin's convention: t = 1 is noise);
  sampled with Heun's method, 20 steps from t = 1 to 0 (39 evaluations; the last step Euler);
- EDM (Karras et al. 2022): log-normal σ (P_mean −1.2, P_std 1.2), σ_data = 1, preconditioning
  c_skip, c_out, c_in, c_noise = ln σ / 4, F regressed on its target with unit weight; sampled
  with the EDM Heun sampler, 18 steps on the ρ = 7 grid from σ = 80 to 0.002 (35 evaluations);
- training: batch 1024, Adam (lr 2e-3, 200 warm-up steps), gradient-norm clipping at 1, EMA
  0.999 of the weights used for sampling; `--quick`: 300 steps, else 3,000;
- quality: MMD (Gaussian kernel, median-distance bandwidth, V-statistic, as langevin's metric)
  of 2,000 random generated points against 2,000 of a fresh reference set, beside the floor of
  2,000 of another fresh set (that pair's bandwidth for both), medians over 8 draws.
Prints one JSON line per objective.
"""
import json
import math
import sys
import time

import numpy as np
import torch

from mlp_torch import ScoreNet

QUICK = "--quick" in sys.argv
torch.manual_seed(0)
rng = np.random.default_rng(0)
D, WIDTH, DEPTH, FOURIER, BATCH = 2, 256, 3, 16, 1024
STEPS = 300 if QUICK else 3000


def moons(n):
    t = math.pi * rng.uniform(size=n)
    i = np.arange(n) % 2
    x = np.where(i == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(i == 0, np.sin(t), 0.5 - np.sin(t))
    return (np.stack([x, y], 1) + 0.1 * rng.normal(size=(n, 2))).astype(np.float32)


def mmd(x, y, h=None):
    if h is None:
        pooled = np.concatenate([x, y])
        step = max(len(pooled) // 2000, 1)
        p = pooled[::step].astype(np.float64)
        d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
        h = np.median(d[np.tril_indices(len(p), -1)])
    g = 1.0 / (2 * h * h)

    def mean_k(a, b):
        a, b = a.astype(np.float64), b.astype(np.float64)
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return np.exp(-g * np.maximum(d2, 0)).mean()

    return math.sqrt(max(mean_k(x, x) + mean_k(y, y) - 2 * mean_k(x, y), 0.0)), h


def judge(samples):
    ours, floor = [], []
    pick_rng = np.random.default_rng(7)
    for _ in range(8):
        pick = lambda a: a[pick_rng.integers(0, len(a), 2000)]
        a, b, c = pick(samples), pick(reference), pick(floor_set)
        f, h = mmd(c, b)
        ours.append(mmd(a, b, h)[0])
        floor.append(f)
    return float(np.median(ours)), float(np.median(floor))


data = moons(18_000)
mean, std = data.mean(0), data.std(0)
train = torch.from_numpy((data - mean) / std)
reference, floor_set = moons(10_000), moons(10_000)


def fm_batch(x):
    z = torch.randn_like(x)
    t = torch.rand(x.shape[0], 1)
    return (1 - t) * x + t * z, t, z - x, None


def edm_batch(x):
    sigma = (torch.randn(x.shape[0], 1) * 1.2 - 1.2).exp()
    z = torch.randn_like(x)
    r = (sigma**2 + 1).sqrt()
    c_skip, c_out, c_in = 1 / r**2, sigma / r, 1 / r
    xh = x + sigma * z
    return c_in * xh, sigma.log() / 4, (x - c_skip * xh) / c_out, None


def sample_fm(net, n):
    x = torch.randn(n, D)
    ts = torch.linspace(1, 0, 21)
    for i in range(20):
        t, t2 = ts[i], ts[i + 1]
        v = net(x, torch.full((n, 1), float(t)))
        if i < 19:
            x2 = x + (t2 - t) * v
            v2 = net(x2, torch.full((n, 1), float(t2)))
            x = x + (t2 - t) * (v + v2) / 2
        else:
            x = x + (t2 - t) * v
    return x


def sample_edm(net, n):
    rho, smin, smax, steps = 7.0, 0.002, 80.0, 18
    i = torch.arange(steps)
    sig = (smax ** (1 / rho) + i / (steps - 1) * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    sig = torch.cat([sig, torch.zeros(1)])

    def denoise(x, s):
        r = math.sqrt(s * s + 1)
        f = net(x / r, torch.full((x.shape[0], 1), math.log(s) / 4))
        return x / r**2 + s / r * f

    x = torch.randn(n, D) * sig[0]
    for k in range(steps):
        s, s2 = float(sig[k]), float(sig[k + 1])
        d = (x - denoise(x, s)) / s
        x2 = x + (s2 - s) * d
        if s2 > 0:
            d2 = (x2 - denoise(x2, s2)) / s2
            x = x + (s2 - s) * (d + d2) / 2
        else:
            x = x2
    return x


for name, make_batch, sample, nfe in [("flow-matching", fm_batch, sample_fm, 39), ("edm", edm_batch, sample_edm, 35)]:
    torch.manual_seed(1)
    net = ScoreNet(D, WIDTH, DEPTH, FOURIER)
    ema = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200))

    def step():
        x = train[torch.randint(0, train.shape[0], (BATCH,))]
        inp, u, target, _ = make_batch(x)
        out = net(inp, u)
        loss = 0.5 * ((out - target) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            torch._foreach_mul_(ema, 0.999)
            torch._foreach_add_(ema, [p.detach() for p in net.parameters()], alpha=0.001)

    times = []
    t0 = time.perf_counter()
    for s in range(STEPS):
        a = time.perf_counter()
        step()
        times.append(time.perf_counter() - a)
    train_seconds = time.perf_counter() - t0
    # Best of three blocks of 50 steps after the first 20 (as langevin's timing).
    blocks = [sum(times[20 + 50 * k : 70 + 50 * k]) / 50 for k in range(3) if 70 + 50 * k <= len(times)]
    with torch.no_grad():
        for p, e in zip(net.parameters(), ema):
            p.copy_(e)
        n = 10_000
        t0 = time.perf_counter()
        x = sample(net, n)
        gen_seconds = time.perf_counter() - t0
    samples = x.numpy() * std + mean
    ours, floor = judge(samples)
    print(json.dumps({
        "peer": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
        "workload": "objectives", "objective": name, "train_steps": STEPS,
        "train_step_seconds": min(blocks), "train_seconds": train_seconds,
        "generation_points": n, "generation_nfe": nfe, "samples_per_second": n / gen_seconds,
        "mmd": ours, "mmd_floor": floor,
    }))
