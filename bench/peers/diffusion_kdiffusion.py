"""The `diffusion-exact-scores` workload of `langevin bench` with PyTorch (CPU) and k-diffusion's
sampler functions: EDM Heun (sample_heun), DPM-Solver++(2M) (sample_dpmpp_2m), Euler
(sample_euler, = DDIM with eta 0) and Euler ancestral (eta 1), on the exact denoiser of the same
Gaussian mixtures (ncsn-toy and gmm40; means, weights and variance read from langevin's
results.json), on the same Karras sigma grids (rho = 7, sigma_min/sigma_max from langevin's run).

k-diffusion's package __init__ imports its training stack (kornia, clip, wandb, ...); only
`k_diffusion/sampling.py` is needed, so it is loaded on its own with a stand-in for the one
helper it takes from `k_diffusion.utils` (append_dims). Prints one JSON line per
(target, sampler).

Usage: diffusion_kdiffusion.py RESULTS_JSON [--quick]
"""
import importlib.util
import json
import math
import os
import sys
import time
import types

import torch

torch.manual_seed(0)
results = json.load(open(sys.argv[1]))
work = next(w for w in results["workloads"] if w["name"] == "diffusion-exact-scores")
n = work["samples"]

# Load k_diffusion/sampling.py without the package's __init__.
spec_pkg = importlib.util.find_spec("k_diffusion")
pkg_dir = os.path.dirname(spec_pkg.origin)
pkg = types.ModuleType("k_diffusion")
pkg.__path__ = [pkg_dir]
utils = types.ModuleType("k_diffusion.utils")


def append_dims(x, target_dims):
    return x[(...,) + (None,) * (target_dims - x.ndim)]


utils.append_dims = append_dims
pkg.utils = utils
sys.modules["k_diffusion"] = pkg
sys.modules["k_diffusion.utils"] = utils
spec = importlib.util.spec_from_file_location("k_diffusion.sampling", os.path.join(pkg_dir, "sampling.py"))
K = importlib.util.module_from_spec(spec)
sys.modules["k_diffusion.sampling"] = K
spec.loader.exec_module(K)
import importlib.metadata as md

version = md.version("k-diffusion")


class MixtureDenoiser(torch.nn.Module):
    """E[x0 | x] for x = x0 + sigma z, x0 ~ sum_k w_k N(mu_k, v I)."""

    def __init__(self, weights, means, var):
        super().__init__()
        self.logw = torch.log(torch.tensor(weights, dtype=torch.float32))
        self.mu = torch.tensor(means, dtype=torch.float32)  # K x d
        self.v = float(var)

    def forward(self, x, sigma):
        s2 = sigma.reshape(-1, 1) ** 2  # n x 1
        tot = self.v + s2
        d2 = torch.cdist(x, self.mu) ** 2  # n x K
        logits = self.logw - 0.5 * d2 / tot
        r = torch.softmax(logits, dim=1)  # n x K
        post = r @ self.mu  # n x d: sum_k r_k mu_k
        return post + (self.v / tot) * (x - post)


def mmd(x, y, h):
    g = 1.0 / (2 * h * h)
    k = lambda a, b: torch.exp(-g * torch.cdist(a.double(), b.double()) ** 2).mean()
    return float(max(k(x, x) + k(y, y) - 2 * k(x, y), 0.0)) ** 0.5


def exact_draws(weights, means, var, m):
    comp = torch.multinomial(torch.tensor(weights, dtype=torch.float64), m, replacement=True)
    return torch.tensor(means, dtype=torch.float32)[comp] + math.sqrt(var) * torch.randn(m, len(means[0]))


def mode_weights(x, mu):
    return torch.bincount(torch.cdist(x, mu).argmin(dim=1), minlength=mu.shape[0]).double() / x.shape[0]


for t in work["targets"]:
    model = MixtureDenoiser(t["weights"], t["means"], t["variance"])
    w = torch.tensor(t["weights"], dtype=torch.float64)
    # MMD as langevin computes it: 4000 samples against 4000 exact draws, bandwidth the median
    # distance between exact draws.
    ref = exact_draws(t["weights"], t["means"], t["variance"], 4000)
    dist = torch.cdist(ref, ref)
    h = float(dist[~torch.eye(4000, dtype=torch.bool)].median())
    for run in t["runs"]:
        steps, smin, smax = run["steps"], run["sigma_min"], run["sigma_max"]
        sigmas = K.get_sigmas_karras(steps, smin, smax, rho=7.0)
        fn = {
            "edm": lambda x: K.sample_heun(model, x, sigmas, disable=True),
            "dpmpp-2m": lambda x: K.sample_dpmpp_2m(model, x, sigmas, disable=True),
            "euler": lambda x: K.sample_euler(model, x, sigmas, disable=True),
            "euler-ancestral": lambda x: K.sample_euler_ancestral(model, x, sigmas, eta=1.0, disable=True),
        }[run["sampler"]]
        mean = (torch.tensor(t["weights"]) @ torch.tensor(t["means"])).float()
        spread = max(t["variance"], float(((torch.tensor(t["means"]) - mean) ** 2).sum(1) @ torch.tensor(t["weights"])) / len(t["means"][0]))
        best = 0.0
        for rep in range(2):
            x0 = mean + torch.randn(n, len(t["means"][0])) * math.sqrt(smax ** 2 + spread)
            start = time.perf_counter()
            with torch.no_grad():
                x = fn(x0)
            sec = time.perf_counter() - start
            best = max(best, n / sec)
        tv = 0.5 * float((mode_weights(x, model.mu) - w).abs().sum())
        print(json.dumps({
            "peer": "k-diffusion", "version": f"{version} (torch {torch.__version__}, {torch.get_num_threads()} threads)",
            "workload": "diffusion-exact-scores", "target": t["target"], "sampler": run["sampler"],
            "steps": steps, "samples_per_second": best, "mode_weight_tv": tv, "mmd": mmd(x[:4000], ref, h),
        }), flush=True)
        np_path = os.environ.get("KDIFF_SAMPLES_DIR")
        if np_path:
            import numpy as np
            np.save(os.path.join(np_path, f"kdiff_{t['target']}_{run['sampler']}.npy"), x.numpy().astype(np.float32))
