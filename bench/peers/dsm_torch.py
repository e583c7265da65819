"""The DSM workloads of `langevin bench` in PyTorch (CPU), as the peer measured in the same run.

1. One training step of the NCSN score network: MLP on [x, Fourier features of log σ] with 3
   hidden layers of 256 SiLU units, output divided by σ; batch 1024 of 2-D data with one noise
   level per example; loss ½‖f(x̃, σ) + z‖²; Adam; global gradient-norm clipping at 1; EMA of
   the weights (0.999). The same work as langevin's step.
2. Annealed Langevin generation with that network: 100,000 points, forward passes of at most
   8,192 rows, reported as score evaluations (points) and forward passes per second.
Prints one JSON line.
"""
import json
import math
import sys
import time

import torch

from mlp_torch import ScoreNet

torch.manual_seed(0)
QUICK = "--quick" in sys.argv
D, WIDTH, DEPTH, FOURIER, BATCH = 2, 256, 3, 16, 1024


net = ScoreNet(D, WIDTH, DEPTH, FOURIER)
ema = [p.detach().clone() for p in net.parameters()]
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
sigmas = torch.tensor([4.3 * (0.01 / 4.3) ** (i / 28) for i in range(29)])
data = torch.randn(18000, D)


def step():
    idx = torch.randint(0, data.shape[0], (BATCH,))
    lv = torch.randint(0, len(sigmas), (BATCH,))
    s = sigmas[lv].unsqueeze(1)
    z = torch.randn(BATCH, D)
    out = net(data[idx] + s * z, s.log())
    loss = 0.5 * ((out + z) ** 2).sum(1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        torch._foreach_mul_(ema, 0.999)
        torch._foreach_add_(ema, [p.detach() for p in net.parameters()], alpha=0.001)


for _ in range(20):
    step()
n = 50 if QUICK else 300
best = math.inf
for _ in range(3):
    t = time.perf_counter()
    for _ in range(n):
        step()
    best = min(best, (time.perf_counter() - t) / n)

# Annealed Langevin generation: T steps per level over the ladder, chunks of 8192 rows.
N = 10_000 if QUICK else 100_000
T = 2
eps = 0.187 * 0.01 ** 2
x = torch.randn(N, D) * sigmas[0]
evals = passes = 0
t = time.perf_counter()
with torch.no_grad():
    for s in sigmas:
        alpha = eps * (s / sigmas[-1]) ** 2
        ls = torch.full((8192, 1), float(s.log()))
        for _ in range(T):
            score = torch.empty_like(x)
            for a in range(0, N, 8192):
                b = min(a + 8192, N)
                score[a:b] = net(x[a:b], ls[: b - a]) / s
                passes += 1
            x = x + alpha * score + torch.sqrt(2 * alpha) * torch.randn_like(x)
            evals += N
gen = time.perf_counter() - t
print(json.dumps({
    "peer": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
    "workload": "dsm", "train_step_seconds": best,
    "generation_points": N, "generation_seconds": gen,
    "score_evaluations_per_second": evals / gen, "forward_passes_per_second": passes / gen,
}))
