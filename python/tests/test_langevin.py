"""Tests of the Python package: every call a user makes, its results against the library's
(and the command line's, where the binary is built), and every bad input's message."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import langevin as lv

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "langevin"


def test_builtin_target_and_exact_sampler_agree_with_the_target():
    t = lv.target("ncsn-toy")
    assert t.dim == 2 and "ncsn" in t.name
    x, report = lv.sample(t, sampler="annealed", particles=20_000, seed=1)
    assert x.dtype == np.float32 and x.shape == (20_000, 2)
    # The NCSN toy: weights 0.8 at (5, 5) and 0.2 at (-5, -5); annealed Langevin recovers them.
    w = report["mode_weights"]
    assert abs(w[0] - 0.8) < 0.02 and abs(w[1] - 0.2) < 0.02, w
    m = lv.eval(x, target=t)
    print(json.dumps(m)[:400])
    assert 0 < m["mmd"] < 0.05, m


def test_plain_ula_collapses_onto_modes_without_noise():
    # Seed 001: without noise the dynamics is gradient ascent and every particle sits on a mode.
    t = lv.target("ncsn-toy")
    x, _ = lv.sample(t, sampler="ula", noise=False, particles=2000, steps=2000, seed=3)
    d = np.minimum(np.linalg.norm(x - 5, axis=1), np.linalg.norm(x + 5, axis=1))
    assert np.max(d) < 1e-2
    y, _ = lv.sample(t, sampler="ula", particles=2000, steps=2000, seed=3)
    assert np.std(y[:, 0]) > 1.0


def test_same_seed_same_bits_whatever_the_threads():
    t = lv.target("gmm40")
    a, _ = lv.sample(t, sampler="mala", particles=3000, steps=200, seed=5, threads=1)
    b, _ = lv.sample(t, sampler="mala", particles=3000, steps=200, seed=5, threads=2)
    assert a.tobytes() == b.tobytes()
    c, _ = lv.sample(t, sampler="mala", particles=3000, steps=200, seed=6, threads=2)
    assert a.tobytes() != c.tobytes()


@pytest.mark.skipif(not CLI.exists(), reason="the langevin binary is not built (cargo build --release)")
@pytest.mark.parametrize("flags,kwargs", [
    (["--sampler", "mala", "--steps", "100"], dict(sampler="mala", steps=100)),
    (["--sampler", "annealed", "--steps-per-level", "7", "--levels", "12"], dict(sampler="annealed", steps_per_level=7, levels=12)),
    (["--sampler", "edm", "--steps", "12", "--s-churn", "20"], dict(sampler="edm", steps=12, s_churn=20.0)),
    (["--sampler", "ode", "--solver", "heun", "--steps", "15"], dict(sampler="ode", solver="heun", steps=15)),
    (["--sampler", "baoab", "--steps", "50", "--friction", "2"], dict(sampler="baoab", steps=50, friction=2.0)),
])
def test_same_arrays_as_the_command_line(tmp_path, flags, kwargs):
    out = tmp_path / "cli.npy"
    subprocess.run([str(CLI), "sample", "--target", "ncsn-toy", "--particles", "500", "--seed", "9", *flags,
                    "--out", str(out), "-q"], check=True)
    x, _ = lv.sample(lv.target("ncsn-toy"), particles=500, seed=9, **kwargs)
    assert np.load(out).tobytes() == x.tobytes()


def test_sampler_options_are_checked():
    t = lv.target("ncsn-toy")
    with pytest.raises(TypeError, match="not an option of the mala sampler"):
        lv.sample(t, sampler="mala", s_churn=3.0)
    with pytest.raises(ValueError, match="unknown"):
        lv.sample(t, sampler="ode", solver="nope")
    # The step count of a diffusion sampler is its own: 5 EDM steps differ from 40.
    a, ra = lv.sample(t, sampler="edm", steps=5, particles=200, seed=1)
    b, rb = lv.sample(t, sampler="edm", steps=40, particles=200, seed=1)
    assert a.tobytes() != b.tobytes()


def test_gaussian_mixture_from_arrays_and_a_formula_potential():
    # Modes 8 standard deviations apart: annealed Langevin (through the mixture's exact
    # perturbed scores) gets the weights right where MALA would keep its start's split.
    t = lv.gmm([0.3, 0.7], [[-2.0, 0.0], [2.0, 0.0]], [0.25, 0.25])
    x, report = lv.sample(t, sampler="annealed", particles=4000, seed=2)
    assert abs(np.mean(x[:, 0] > 0) - 0.7) < 0.03
    assert abs(report["mode_weights"][1] - 0.7) < 0.03
    # A double well in x, Gaussian in y: p ∝ exp(−U/kT) with kT = 0.5, so y has variance kT = 0.5.
    p = lv.potential("(x^2-1)^2 + 0.5*y^2", ["x", "y"], temperature=0.5)
    y, _ = lv.sample(p, sampler="mala", particles=8000, steps=500, seed=4)
    assert abs(np.var(y[:, 1]) - 0.5) < 0.03
    assert abs(np.mean(y[:, 0] > 0) - 0.5) < 0.03


def test_python_score_function_runs_inside_the_sampler():
    # Score of N(1, 0.5² I): -(x - 1)/0.25.
    calls = []

    def score(x):
        calls.append(x.shape)
        return -(x - 1.0) / 0.25

    x, _ = lv.sample(score, dim=3, sampler="ula", particles=4000, steps=400, step_size=0.01, seed=1)
    assert x.shape == (4000, 3) and calls and calls[0][1] == 3
    assert np.all(np.abs(x.mean(0) - 1.0) < 0.03)
    assert np.all(np.abs(x.std(0) - 0.5) < 0.03)


def test_errors_from_the_score_function_propagate_as_themselves():
    def bad(x):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom") as e:
        lv.sample(bad, dim=2, sampler="ula", particles=10, steps=5)
    assert any("call 1" in n for n in getattr(e.value, "__notes__", []))

    with pytest.raises(ValueError, match="shape"):
        lv.sample(lambda x: x[:, :1], dim=2, sampler="ula", particles=10, steps=5)
    with pytest.raises(ValueError, match="NaN at row 0"):
        lv.sample(lambda x: x * np.nan, dim=2, sampler="ula", particles=10, steps=5)
    with pytest.raises(ValueError, match="log_density="):
        lv.sample(lambda x: -x, dim=2, sampler="mala", particles=10, steps=5)
    with pytest.raises(ValueError, match="one per row"):
        lv.sample(lambda x: -x, dim=2, log_density=lambda x: np.zeros(3), sampler="mala", particles=10, steps=5)


def test_mala_on_a_python_score_with_its_log_density():
    # N(1, 0.5² I) in 2-D: MALA with the log-density accepts and rejects, and lands on the
    # right moments; a log-density that disagrees with the score (a wrong normalization of the
    # quadratic) drives the acceptance down.
    f = lambda x: -(x - 1.0) / 0.25
    g = lambda x: -0.5 * np.sum((x - 1.0) ** 2, axis=1) / 0.25
    x, rep = lv.sample(f, dim=2, log_density=g, sampler="mala", particles=4000, steps=300, seed=3)
    assert 0.4 < rep["acceptance_rate"] < 0.75, rep["acceptance_rate"]
    assert np.all(np.abs(x.mean(0) - 1.0) < 0.03) and np.all(np.abs(x.std(0) - 0.5) < 0.03)
    bad = lambda x: -2.0 * np.sum((x - 1.0) ** 2, axis=1) / 0.25
    _, rep2 = lv.sample(f, dim=2, log_density=bad, sampler="mala", particles=4000, steps=300, seed=3, adapt=False,
                        step_size=rep["step_size"])
    assert rep2["acceptance_rate"] < rep["acceptance_rate"] - 0.1, (rep2["acceptance_rate"], rep["acceptance_rate"])


def test_bad_input_is_refused_with_the_fix():
    t = lv.target("ncsn-toy")
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        lv.sample(t, sampler="nope")
    with pytest.raises(TypeError, match="valid ones"):
        lv.sample(t, sampler="ula", partcles=10)
    with pytest.raises(TypeError, match="float32 or float64"):
        lv.sample(t, init=np.zeros((4, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        lv.sample(t, init=np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError, match="columns"):
        lv.sample(t, init=np.zeros((4, 3), dtype=np.float32))
    x = np.zeros((4, 2), dtype=np.float32)
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match="row 2 column 1"):
        lv.sample(t, init=x)
    with pytest.raises(ValueError, match="unknown"):
        lv.target("no-such-target")
    with pytest.raises(ValueError):
        lv.potential("x^^2", ["x"])
    with pytest.raises(ValueError, match="no such run directory"):
        lv.generate("/nonexistent/run")
    with pytest.raises(TypeError, match="valid ones"):
        lv.eval(x, targt=t)


def test_init_arrays_of_both_float_types_and_any_order():
    t = lv.target("ncsn-toy")
    base = np.random.default_rng(0).normal(size=(64, 2))
    a, _ = lv.sample(t, sampler="ula", init=base.astype(np.float32), steps=10, seed=1)
    b, _ = lv.sample(t, sampler="ula", init=np.asfortranarray(base.astype(np.float32)), steps=10, seed=1)
    c, _ = lv.sample(t, sampler="ula", init=base.astype(np.float64), steps=10, seed=1)
    assert a.shape == (64, 2) and a.tobytes() == b.tobytes() == c.tobytes()


def test_analyze_finds_the_modes_and_the_saddle():
    r = lv.analyze(lv.potential("(x^2-1)^2 + y^2", ["x", "y"]))
    kinds = sorted(p["type"] for p in r["stagnation_points"])
    assert kinds.count("sink") == 2 and kinds.count("saddle") == 1, kinds


def test_train_and_generate_share_runs_with_the_command_line(tmp_path):
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(-2, 0.3, size=(1500, 2)), rng.normal(2, 0.3, size=(500, 2))]).astype(np.float32)
    s = lv.train(data, tmp_path / "run", objective="edm", steps=1500, seed=1)
    assert s["steps"] == 1500 and (tmp_path / "run" / "config.json").exists()
    x, report = lv.generate(s, n=4000, seed=2)
    assert x.shape == (4000, 2)
    right = np.mean(x[:, 0] > 0)
    assert abs(right - 0.25) < 0.04, right
    # resume continues the same run
    s2 = lv.train(None, tmp_path / "run", resume=True, steps=1600)
    assert s2["steps"] == 1600
    if CLI.exists():
        out = tmp_path / "cli.npy"
        subprocess.run([str(CLI), "generate", "--model", str(tmp_path / "run"), "--n", "4000", "--seed", "2",
                        "--out", str(out), "-q"], check=True)
        y, _ = lv.generate(tmp_path / "run", n=4000, seed=2)
        assert np.load(out).tobytes() == y.tobytes()


def test_posterior_of_a_logistic_regression_on_arrays():
    # 5,000 rows from θ = (-0.5, 1.5, -1.0): MALA's posterior mean is within a few posterior
    # standard deviations of the truth, and SGLD-CV agrees with MALA within 0.25 of them.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 2))
    p = 1 / (1 + np.exp(-(-0.5 + 1.5 * x[:, 0] - 1.0 * x[:, 1])))
    y = (rng.uniform(size=5000) < p).astype(float)
    d, rep = lv.posterior(x, y, sampler="mala", chains=4, steps=2000, seed=1)
    assert d.shape[1] == 3 and rep["parameters"][0]
    mean, sd = d.mean(0), d.std(0)
    assert np.all(np.abs(mean - [-0.5, 1.5, -1.0]) < 4 * sd + 0.02), (mean, sd)
    e, _ = lv.posterior(x, y, sampler="sgld-cv", chains=4, steps=4000, seed=2)
    assert np.all(np.abs(e.mean(0) - mean) < 0.25 * sd + 0.01), (e.mean(0), mean, sd)
    with pytest.raises(ValueError, match="one label per row"):
        lv.posterior(x, y[:10])
    with pytest.raises(ValueError, match="unknown posterior sampler"):
        lv.posterior(x, y, sampler="hmc")


def test_likelihood_of_a_gaussian_is_its_exact_log_density():
    # N(0, I) in 2-D: log p(x) = -log(2π) - |x|²/2 exactly; the probability-flow ODE recovers it.
    t = lv.gmm([1.0], [[0.0, 0.0]], [1.0])
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    r = lv.likelihood(t, x)
    exact = -np.log(2 * np.pi) - 0.5 * (x.astype(np.float64) ** 2).sum(1)
    assert np.max(np.abs(np.array(r["log_likelihood"]) - exact)) < 1e-2, r["log_likelihood"][:3]
    assert "bits_per_dim" in r
    with pytest.raises(ValueError, match="only at σ = 0"):
        lv.likelihood(lv.potential("x^2 + y^2", ["x", "y"]), x)


def test_class_conditional_training_and_guidance(tmp_path):
    # Two blobs labelled 0 and 1 (weights 3:1): generating class 1 puts (nearly) everything in
    # blob 1, guidance w = 2 no less; the unconditional score (trained on the 30% of examples
    # whose label is dropped) keeps the 3:1 split (0.22-0.26 over seeds; with 10% dropped and
    # this budget it came out 0.11, with 6,000 steps 0.22).
    rng = np.random.default_rng(0)
    a, b = rng.normal(-2, 0.3, size=(1500, 2)), rng.normal(2, 0.3, size=(500, 2))
    data = np.concatenate([a, b]).astype(np.float32)
    labels = np.array([0] * 1500 + [1] * 500)
    run = lv.train(data, tmp_path / "c", labels=labels, objective="edm", steps=3000, seed=1, cond_drop=0.3)
    one, rep = lv.generate(run, n=2000, cls=1, seed=3)
    guided, _ = lv.generate(run, n=2000, cls=1, guidance=2.0, seed=3)
    zero, _ = lv.generate(run, n=2000, cls=0, seed=3)
    free, _ = lv.generate(run, n=2000, seed=3)
    f1, fg, f0, ff = (np.mean(v[:, 0] > 0) for v in (one, guided, zero, free))
    assert f1 > 0.95 and fg >= f1 and f0 < 0.05 and abs(ff - 0.25) < 0.06, (f1, fg, f0, ff)
    with pytest.raises(ValueError, match="one label per row"):
        lv.train(data, tmp_path / "d", labels=labels[:10], steps=10)
    with pytest.raises(TypeError, match="integers"):
        lv.train(data, tmp_path / "e", labels=labels.astype(float), steps=10)
    with pytest.raises(ValueError, match="unknown class|class"):
        lv.generate(run, n=10, cls=7)
