"""ULA on the NCSN toy with NumPy: the same workload as `langevin bench` (ula-ncsn-toy).

0.8·N((5,5), I) + 0.2·N((-5,-5), I), x ← x + τ s(x) + √(2τ) z, τ = 0.1, float32,
100,000 particles × 1,000 steps, start U[-8, 8]². Coordinates are stored as two rows of N
values (coordinate-major, like langevin's blocks), the fastest layout we found for NumPy too.
Best of three runs. Prints one JSON line.
"""
import json
import sys
import time

import numpy as np

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
TAU = np.float32(0.1)
LOG_W0, LOG_W1 = np.float32(np.log(0.8)), np.float32(np.log(0.2))


def score(a, b):
    a0, b0, a1, b1 = a - 5, b - 5, a + 5, b + 5
    l0 = LOG_W0 - 0.5 * (a0 * a0 + b0 * b0)
    l1 = LOG_W1 - 0.5 * (a1 * a1 + b1 * b1)
    m = np.maximum(l0, l1)
    e0, e1 = np.exp(l0 - m), np.exp(l1 - m)
    s = e0 + e1
    return -(e0 * a0 + e1 * a1) / s, -(e0 * b0 + e1 * b1) / s


def run(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-8.0, 8.0, size=(2, N)).astype(np.float32)
    noise = np.sqrt(np.float32(2.0) * TAU)
    start = time.perf_counter()
    for _ in range(STEPS):
        sa, sb = score(a, b)
        z = rng.standard_normal((2, N), dtype=np.float32)
        a = a + TAU * sa + noise * z[0]
        b = b + TAU * sb + noise * z[1]
    return time.perf_counter() - start, a, b


best = None
for seed in range(3):
    seconds, a, b = run(seed)
    best = seconds if best is None else min(best, seconds)
w = float(np.mean(a + b > -0.139))
print(json.dumps({
    "peer": "numpy", "version": np.__version__, "workload": "ula-ncsn-toy",
    "particles": N, "steps": STEPS, "seconds": best,
    "particle_steps_per_second": N * STEPS / best, "mode_weight_of_(5,5)": w,
}))
