"""BlackJAX peer of `langevin bench`'s few-chain MALA workload: MALA on N(0, I_100) (the
`gaussian:dim=100` target), 4 chains, a fixed step size (the one langevin's warm-up adapted to,
passed as an argument), 2,000 warm-up steps then 10,000 kept steps, vmap over chains inside one
jitted lax.scan. The timed figure is the kept steps only, after compilation (a first call with
another key compiles). ESS from BlackJAX's own diagnostics (blackjax.diagnostics.effective_sample_size),
the minimum over coordinates. Optionally also the same estimator on langevin's draws (an .npy
written by `langevin sample --thin 1 --out`, rows draw-major), so both ESS come from one estimator.
Prints one JSON line. Usage: mala_blackjax.py STEP_SIZE [CHAINS STEPS WARMUP [OURS.npy]]"""
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import blackjax

step_size = float(sys.argv[1])
chains, steps, warmup = (int(a) for a in sys.argv[2:5]) if len(sys.argv) >= 5 else (4, 10_000, 2_000)
dim = 100


def logdensity(x):
    return -0.5 * jnp.sum(x * x)


mala = blackjax.mala(logdensity, step_size)


def run(key, n):
    keys = jax.random.split(key, chains + 1)
    x0 = jax.random.normal(keys[0], (chains, dim))
    state = jax.vmap(mala.init)(x0)

    def one(state, k):
        ks = jax.random.split(k, chains)
        state, info = jax.vmap(mala.step)(ks, state)
        return state, (state.position, info.acceptance_rate)

    state, _ = jax.lax.scan(one, state, jax.random.split(keys[1], warmup))
    state, (pos, acc) = jax.lax.scan(one, state, jax.random.split(keys[2], n))
    return pos, acc


run_jit = jax.jit(run, static_argnums=1)
pos, acc = run_jit(jax.random.PRNGKey(0), steps)  # compile
pos.block_until_ready()


def timed(key):
    t = time.perf_counter()
    pos, acc = run_jit(key, steps)
    pos.block_until_ready()
    return time.perf_counter() - t, pos, acc


# Time warm-up + sampling, and warm-up alone, so the kept steps' time is their difference.
def run_warm(key):
    keys = jax.random.split(key, chains + 1)
    x0 = jax.random.normal(keys[0], (chains, dim))
    state = jax.vmap(mala.init)(x0)

    def one(state, k):
        ks = jax.random.split(k, chains)
        state, _ = jax.vmap(mala.step)(ks, state)
        return state, None

    state, _ = jax.lax.scan(one, state, jax.random.split(keys[1], warmup))
    return state.position


warm_jit = jax.jit(run_warm)
warm_jit(jax.random.PRNGKey(0)).block_until_ready()
best = None
for r in range(3):
    total, pos, acc = timed(jax.random.PRNGKey(r + 1))
    t = time.perf_counter()
    warm_jit(jax.random.PRNGKey(r + 1)).block_until_ready()
    w = time.perf_counter() - t
    seconds = total - w
    draws = np.asarray(pos).transpose(1, 0, 2)  # (chains, draws, dim)
    ess = float(np.min(np.asarray(blackjax.diagnostics.effective_sample_size(draws))))
    rec = (ess / seconds, ess, seconds, float(np.mean(np.asarray(acc))))
    if best is None or rec[0] > best[0]:
        best = rec
out = {
    "peer": "blackjax",
    "version": blackjax.__version__,
    "jax": jax.__version__,
    "workload": "mala-gaussian-100-4chains",
    "chains": chains,
    "steps": steps,
    "warmup": warmup,
    "step_size": step_size,
    "min_ess_per_second": best[0],
    "min_ess": best[1],
    "seconds": best[2],
    "acceptance_rate": best[3],
}
if len(sys.argv) >= 6:
    ours = np.load(sys.argv[5])  # (draws * chains, dim), row k*chains + i
    d = ours.reshape(-1, chains, dim).transpose(1, 0, 2)
    out["blackjax_ess_of_langevin_draws"] = float(np.min(np.asarray(blackjax.diagnostics.effective_sample_size(d))))
print(json.dumps(out))
