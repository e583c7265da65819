"""The Python package's cost: the ULA workload of `langevin bench` called from Python (and, when
JAX is importable in the same environment, JAX's ULA in the same process), and the binding's
overhead per small call. Run with the environment python/build.sh made:

    python/.venv/bin/python bench/peers/python_binding.py [--quick]

Prints one JSON line.
"""
import json
import sys
import time

import numpy as np

import langevin as lv

QUICK = "--quick" in sys.argv
N, STEPS = (10_000, 200) if QUICK else (100_000, 1000)
t = lv.target("ncsn-toy")
best = float("inf")
for _ in range(3):
    a = time.perf_counter()
    lv.sample(t, sampler="ula", particles=N, steps=STEPS, step_size=0.1, init="uniform:-8,8", seed=1)
    best = min(best, time.perf_counter() - a)
rate = N * STEPS / best

# Overhead: a call that does almost nothing (16 particles, 1 step), and the same through a
# Python score function (one call of f per step).
def per_call(fn, n=2000):
    fn()
    a = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - a) / n * 1e6

small = per_call(lambda: lv.sample(t, sampler="ula", particles=16, steps=1, step_size=0.1, seed=1))
pyscore = per_call(lambda: lv.sample(lambda x: -x, dim=2, sampler="ula", particles=16, steps=1, step_size=0.1, seed=1))
out = {"peer": "langevin-python", "version": lv.__version__, "workload": "ula-ncsn-toy-from-python",
       "particles": N, "steps": STEPS, "particle_steps_per_second": rate,
       "microseconds_per_small_call": small, "microseconds_per_small_call_python_score": pyscore}
try:
    import os

    import jax

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ula_jax  # the JAX peer of `bench/run.sh`, run here in the same process

    seconds, _ = ula_jax.run(N, STEPS)
    out["jax_version"] = jax.__version__
    out["jax_particle_steps_per_second"] = N * STEPS / seconds
except ImportError:
    out["jax"] = "not installed in this environment"
print(json.dumps(out))
