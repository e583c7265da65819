"""langevin: Langevin dynamics and score-based generative modeling, from Rust.

Sample any density with the Langevin family, learn scores from data and generate new samples,
with NumPy arrays in and out. The work runs in the Rust library with Python's GIL released;
results are float32 arrays of shape (n, d) and reports are dicts with the keys of the command
line's JSON reports, so a run written here is usable by the `langevin` command and back.

    import numpy as np, langevin as lv
    t = lv.target("ncsn-toy")
    x, report = lv.sample(t, sampler="annealed", particles=100_000, seed=1)
    m = lv.eval(x, target=t)
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native
from ._native import Target

__all__ = [
    "Target",
    "target",
    "target_from_toml",
    "gmm",
    "potential",
    "sample",
    "eval",
    "analyze",
    "train",
    "generate",
    "posterior",
    "likelihood",
    "SAMPLERS",
    "__version__",
]
__version__ = _native.__version__

#: The samplers `sample` takes (the command line's names).
SAMPLERS = (
    "ula", "mala", "annealed", "baoab", "obabo", "underdamped-em", "exact", "reverse-sde",
    "reverse-diffusion", "pc", "corrector", "ode", "ddpm", "ddim", "edm", "dpmpp-2m",
)

#: Options of the annealed and diffusion samplers, passed by name (the command line's flags).
_SAMPLER_OPTIONS = ("sigma_max", "sigma_min", "levels", "steps_per_level", "eps", "denoise", "schedule", "rho",
                    "t_eps", "solver", "rtol", "atol", "max_steps", "snr", "corrector_steps", "eta", "s_churn",
                    "s_tmin", "s_tmax", "s_noise")
_SAMPLE_KEYS = ("sampler", "particles", "steps", "warmup", "step_size", "init", "seed", "thin",
                "adapt", "noise", "friction", "mass", "threads", "dim", "log_density") + _SAMPLER_OPTIONS


def _check_keys(fn: str, given: dict, allowed: Sequence[str]) -> None:
    bad = sorted(k for k in given if k not in allowed)
    if bad:
        raise TypeError(f"{fn}() got unknown keyword argument(s) {', '.join(bad)}; "
                        f"valid ones: {', '.join(allowed)}")


def target(spec: str) -> Target:
    """A built-in target by spec (``"ncsn-toy"``, ``"gmm40"``, ``"many-well:dim=32"``,
    ``"gaussian:dim=100,cond=10"``) or the path of a TOML target file."""
    return _native.target(os.fspath(spec))


def target_from_toml(path: Union[str, os.PathLike]) -> Target:
    """A target described by a TOML file (``kind = "gmm"`` or ``kind = "potential"``)."""
    return _native.target(os.fspath(path))


def gmm(weights: Sequence[float], means: Any, covs: Any) -> Target:
    """The Gaussian mixture p(x) = Σₖ wₖ N(x; μₖ, Σₖ): weights (k,), means (k, d), covariances
    as k variances (σ²I), k diagonals (k, d) or k full matrices (k, d, d)."""
    covs = np.asarray(covs, dtype=np.float64).tolist()
    return _native.gmm([float(w) for w in weights], np.asarray(means, np.float64).tolist(), covs)


def potential(energy: str, variables: Sequence[str], temperature: float = 1.0) -> Target:
    """The Boltzmann density p(x) ∝ exp(−U(x)/kT) of an energy formula, e.g.
    ``potential("(x^2-1)^2 + 0.5*y^2", ["x", "y"], temperature=0.5)``."""
    return _native.potential(energy, list(variables), float(temperature))


def sample(target: Union[Target, Callable[[np.ndarray], np.ndarray]], **kwargs: Any) -> Tuple[np.ndarray, dict]:
    """Sample ``target`` with a Langevin-family or diffusion sampler.

    ``target``: a :class:`Target`, or a Python function ``f(x) -> score`` mapping a float32
    array (n, d) to the score ∇log p at its rows (give ``dim=d``); it is called once per block
    of particles per step, with the GIL taken only for the call. MALA also needs
    ``log_density=g`` with ``g(x)`` the log-density of each row (n,), up to a constant.

    Keywords (all optional; ``None`` derives the value as the command line does):
    ``sampler`` ("ula"; see :data:`SAMPLERS`), ``particles`` (10,000), ``steps`` (1,000),
    ``warmup`` (1,000 for MALA), ``step_size`` (a number, or "auto" from the stiffness),
    ``init`` (an array (n, d), or a spec such as "uniform:-8,8"), ``seed`` (0), ``thin``,
    ``adapt`` (MALA: True, False or the target acceptance), ``noise`` (False turns ULA into
    gradient ascent), ``friction`` and ``mass`` (underdamped), ``threads``. Annealed Langevin:
    ``sigma_max``, ``sigma_min``, ``levels``, ``steps_per_level``, ``eps``, ``denoise``.
    Diffusion samplers (``steps`` is their step count): ``schedule``, ``sigma_min``,
    ``sigma_max``, ``rho``, ``t_eps``, ``solver``, ``rtol``, ``atol``, ``max_steps``, ``snr``,
    ``corrector_steps``, ``eta``, ``s_churn``, ``s_tmin``, ``s_tmax``, ``s_noise``, ``denoise``.

    ULA: x ← x + τ ∇log p(x) + √(2τ) z.  Returns (samples float32 (n, d), report dict).
    """
    _check_keys("sample", kwargs, _SAMPLE_KEYS)
    dim = kwargs.pop("dim", None)
    log_density = kwargs.pop("log_density", None)
    if not isinstance(target, Target):
        if not callable(target):
            raise TypeError(f"target: a langevin.Target or a score function, got {type(target).__name__}")
        if dim is None:
            raise TypeError("sample(f, ...) with a Python score function needs dim=<dimension>")
        target = _native.score_function(target, int(dim), log_density)
    elif log_density is not None:
        raise TypeError("log_density= goes with a Python score function, not a langevin.Target")
    elif dim is not None and dim != target.dim:
        raise ValueError(f"dim={dim} but the target is {target.dim}-dimensional")
    options = {k: kwargs.pop(k) for k in _SAMPLER_OPTIONS if k in kwargs}
    x, report = _native.sample(target, options=options or None, **kwargs)
    return x, json.loads(report)


def eval(x: np.ndarray, target: Optional[Target] = None, reference: Optional[np.ndarray] = None,
         **kwargs: Any) -> dict:
    """Distances between samples ``x`` (n, d) and a target's exact draws or a ``reference``
    sample set: MMD (Gaussian kernel, median bandwidth), energy distance, sliced Wasserstein,
    mode weights and per-coordinate Kolmogorov–Smirnov tests where the target allows.
    Keywords: ``max_points`` (2,000), ``projections`` (128), ``seed`` (0)."""
    _check_keys("eval", kwargs, ("max_points", "projections", "seed"))
    return json.loads(_native.evaluate(x, target=target, reference=reference, **kwargs))


def analyze(target: Target, **kwargs: Any) -> dict:
    """The score as a flow (seed 002): stagnation points (modes, saddles) with their
    Jacobians, the divergence, the stiffness λ_max and the recommended step. Keywords:
    ``starts`` (64), ``seed`` (0), ``samples`` (typical points; default: the target's)."""
    _check_keys("analyze", kwargs, ("starts", "seed", "samples"))
    return json.loads(_native.analyze(target, **kwargs))


_TRAIN_KEYS = ("objective", "sde", "weighting", "prediction", "path", "minibatch_ot", "steps", "batch", "lr",
               "warmup", "lr_decay", "weight_decay", "clip", "ema", "width", "depth", "fourier", "sigma_max",
               "sigma_min", "levels", "rows", "heldout_fraction", "label", "labels", "conditional", "cond_drop",
               "keep_constant", "drop_nonfinite", "image_size", "skip_bad_images", "model", "preset", "flip", "seed", "reflow", "reflow_steps", "resume",
               "checkpoint_every",
               "progress", "threads")


def _progress_printer() -> Callable[[int, int, float], None]:
    """A progress display: tqdm's (notebook widget or terminal) when tqdm is installed, else one
    line on stderr rewritten in place."""
    try:
        from tqdm.auto import tqdm  # optional
    except Exception:  # noqa: BLE001 - any failure to import means: no tqdm
        tqdm = None
    state: dict = {}

    def show(step: int, total: int, loss: float) -> None:
        if tqdm is not None:
            bar = state.get("bar")
            if bar is None:
                bar = state["bar"] = tqdm(total=total, initial=step, unit="step", desc="train")
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if step >= total:
                bar.close()
        else:
            import sys
            end = "\n" if step >= total else ""
            sys.stderr.write(f"\rtrain: step {step}/{total}, loss {loss:.4f}{end}")
            sys.stderr.flush()

    return show


def train(data: Union[np.ndarray, str, os.PathLike, None], out: Union[str, os.PathLike], **kwargs: Any) -> dict:
    """Train a score model into the run directory ``out``, as ``langevin train`` does (the same
    files, the same defaults: EDM, 40,000 steps of 1,024, cosine decay), so a run trained here is
    usable by the command line and back.

    ``data``: an array of rows (float32 or float64), a built-in data set by name ("moons",
    "digits", ...), the path of a .csv / .npy file (one sample per row), image data ("shapes",
    "mnist:FILE", "cifar10:PATH" or a folder of PNG/JPEG images, with ``image_size``); ``None``
    with ``reflow=``. Keywords (the command line's flags; ``None`` keeps the default):

    - the objective: ``objective`` ("edm", "ncsn", "dsm", "flow-matching"), ``sde``,
      ``weighting``, ``prediction`` (dsm), ``path`` and ``minibatch_ot`` (flow matching);
      ``reflow`` (a trained run: a flow-matching student on its ODE pairs; ``rows`` pairs) and
      ``reflow_steps``;
    - optimization: ``steps``, ``batch``, ``lr``, ``warmup``, ``lr_decay`` ("cosine",
      "constant"), ``weight_decay``, ``clip``, ``ema``, ``seed``; the network: ``width``,
      ``depth``, ``fourier``, or ``model="unet"`` with ``preset`` ("tiny", "small", "cifar")
      for images, ``flip=True`` to mirror training images at random; the NCSN ladder: ``sigma_max``, ``sigma_min``, ``levels``;
    - data: ``rows`` (built-in sets), ``heldout_fraction`` (0.1), ``keep_constant``,
      ``drop_nonfinite`` (files);
    - class-conditional models: ``labels`` (integers, one per row, or a label file's path),
      ``label`` (a column of the data file, by header name or 1-based number),
      ``conditional=True`` (a built-in set's own labels), ``cond_drop`` (0.1);
    - ``resume=True`` continues ``out`` (give only ``steps``, the new total);
      ``checkpoint_every`` (1,000); ``threads``;
    - ``progress``: True (the default: a tqdm bar when tqdm is installed, else a line on
      stderr), False, or a function ``f(step, total, loss)``.

    Ctrl-C stops after the current step, writes a checkpoint and returns (``"interrupted":
    True`` in the summary; continue with ``resume=True``). Returns a summary dict: ``steps``,
    ``seconds``, ``heldout_loss``, ``out``, ``interrupted``."""
    _check_keys("train", kwargs, _TRAIN_KEYS)
    threads = kwargs.pop("threads", None)
    progress = kwargs.pop("progress", True)
    if progress is True:
        progress = _progress_printer()
    elif progress is False or progress is None:
        progress = None
    elif not callable(progress):
        raise TypeError("progress: True, False or a function f(step, total, loss)")
    labels = kwargs.pop("labels", None)
    if labels is not None:
        if isinstance(labels, (str, os.PathLike)):
            labels = os.fspath(labels)
        else:
            lab = np.asarray(labels)
            if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
                raise TypeError("labels: a 1-D array of integers (one per row) or a label file's path")
            labels = [int(v) for v in lab]
    if isinstance(data, os.PathLike):
        data = os.fspath(data)
    if kwargs.get("reflow") is not None:
        reflow = kwargs["reflow"]
        kwargs["reflow"] = os.fspath(reflow["out"] if isinstance(reflow, dict) else reflow)
    options = {k: v for k, v in kwargs.items() if v is not None}
    return json.loads(_native.train(data, os.fspath(out), options, labels=labels, progress=progress,
                                    threads=threads))


def generate(run: Union[str, os.PathLike, dict], **kwargs: Any) -> Tuple[np.ndarray, dict]:
    """Generate from a trained run directory (or the dict :func:`train` returned): ``n``
    (10,000), ``sampler`` (the model's default: annealed for NCSN, dpmpp-2m otherwise),
    ``steps``, ``seed``, ``cls`` and ``guidance`` (class-conditional runs), ``threads``.
    Returns (samples in the data's units, report dict)."""
    _check_keys("generate", kwargs, ("n", "sampler", "steps", "seed", "cls", "guidance", "threads"))
    if isinstance(run, dict):
        run = run["out"]
    if "cls" in kwargs:
        c = kwargs.pop("cls")
        kwargs["class_"] = None if c is None else str(c)
    x, report = _native.generate(os.fspath(run), **kwargs)
    return x, json.loads(report)


def posterior(x: np.ndarray, y: Sequence[float], **kwargs: Any) -> Tuple[np.ndarray, dict]:
    """Bayesian regression on arrays: draws of θ = (θ₀, θ₁, …, θ_p) from p(θ | x, y) with a
    prior N(0, prior_std² I). ``model``: "logistic" (y in {0, 1}, p(y = 1) = σ(θ₀ + θᵀx)) or
    "linear" (y = θ₀ + θᵀx + N(0, noise_std²)); ``sampler``: "sgld" (Welling & Teh 2011,
    minibatches of ``batch`` rows), "psgld", "sgld-cv" (control variates at the MAP), "mala"
    (full batch, exact) or "ula". Keywords: ``chains`` (4), ``steps`` (10,000), ``warmup``,
    ``thin``, ``step_size``, ``batch`` (128), ``decay``, ``prior_std`` (10), ``noise_std`` (1),
    ``standardize`` (False), ``seed``, ``threads``. Returns (draws × chains rows of θ, report)."""
    _check_keys("posterior", kwargs, ("model", "sampler", "chains", "steps", "warmup", "thin", "step_size",
                                      "batch", "decay", "prior_std", "noise_std", "standardize", "seed",
                                      "threads"))
    draws, report = _native.posterior(x, [float(v) for v in np.asarray(y).ravel()], **kwargs)
    return draws, json.loads(report)


def likelihood(of: Union[Target, str, os.PathLike, dict], data: np.ndarray, **kwargs: Any) -> dict:
    """The exact log-likelihood of each row of ``data`` by the probability-flow ODE (Song et al.
    2021b): log p₀(x) = log p_T(x_T) + ∫ ∇·f̃ dt, in nats and bits per dimension, under a target
    that knows its perturbed scores (Gaussians, mixtures) or a trained run (its directory, or the
    dict :func:`train` returned). Keywords: ``schedule``, ``sigma_min``, ``sigma_max``,
    ``t_eps``, ``solver``, ``rtol``, ``atol``, ``max_steps``, ``probes``, ``seed``,
    ``dequantize``, ``threads``."""
    _check_keys("likelihood", kwargs, ("schedule", "sigma_min", "sigma_max", "t_eps", "solver", "rtol", "atol",
                                       "max_steps", "probes", "seed", "dequantize", "threads"))
    if isinstance(of, dict):
        of = of["out"]
    if not isinstance(of, Target):
        of = os.fspath(of)
    return json.loads(_native.likelihood(of, data, **kwargs))
