//! The diffusion samplers, likelihoods and comparisons as a user runs them, bad input included.

use std::path::Path;

mod common;
use common::{fails, succeeds, write};

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The issue's commands: PC with an snr, the adaptive ODE with its step statistics, EDM's 35
/// evaluations, DDIM; every report says what it did and the samples have the right weights.
#[test]
fn the_issues_sample_commands_work_and_report_their_cost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "gmm.toml",
        "kind = \"gmm\"\nweights = [0.3, 0.7]\nmeans = [[0.0, 0.0], [4.0, 1.0]]\ncovariances = [[[1.0, 0.5], [0.5, 2.0]], [[0.5, 0.0], [0.0, 0.5]]]\n",
    );
    succeeds(
        d,
        &[
            "sample",
            "--target",
            "ncsn-toy",
            "--sampler",
            "pc",
            "--steps",
            "500",
            "--snr",
            "0.16",
            "--out",
            "a.npy",
            "--report",
            "r.json",
            "-q",
        ],
    );
    let r = json(&d.join("r.json"));
    assert_eq!(r["diffusion"]["nfe"], 1000);
    assert_eq!(r["diffusion"]["snr"], 0.16);
    assert!((r["mode_weights"][0].as_f64().unwrap() - 0.8).abs() < 0.02, "{}", r["mode_weights"]);
    succeeds(
        d,
        &[
            "sample",
            "--target",
            "gmm.toml",
            "--sampler",
            "ode",
            "--solver",
            "dopri5",
            "--rtol",
            "1e-5",
            "--atol",
            "1e-5",
            "--out",
            "b.npy",
            "--report",
            "rb.json",
            "-q",
        ],
    );
    let r = json(&d.join("rb.json"));
    let acc = r["diffusion"]["accepted_steps"].as_u64().unwrap();
    assert!(acc > 5 && r["diffusion"]["rejected_steps"].is_u64(), "{}", r["diffusion"]);
    let by_sigma: u64 =
        r["diffusion"]["steps_by_sigma"].as_array().unwrap().iter().map(|b| b["steps"].as_u64().unwrap()).sum();
    assert_eq!(by_sigma, acc);
    assert!((r["mode_weights"][0].as_f64().unwrap() - 0.3).abs() < 0.02, "{}", r["mode_weights"]);
    let out = succeeds(d, &["sample", "--target", "ncsn-toy", "--sampler", "edm", "--steps", "18", "--out", "c.npy"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("35 score evaluations"), "{text}");
    succeeds(
        d,
        &[
            "sample",
            "--target",
            "ncsn-toy",
            "--sampler",
            "ddim",
            "--steps",
            "50",
            "--eta",
            "0",
            "--out",
            "d.npy",
            "--report",
            "rd.json",
            "-q",
        ],
    );
    assert_eq!(json(&d.join("rd.json"))["diffusion"]["nfe"], 50);
    // The same seed gives the same bytes with 1 and 2 threads.
    for s in ["pc", "ddpm", "edm"] {
        let one = d.join(format!("{s}1.npy"));
        let two = d.join(format!("{s}2.npy"));
        for (t, p) in [("1", &one), ("2", &two)] {
            succeeds(
                d,
                &[
                    "--threads",
                    t,
                    "sample",
                    "--target",
                    "ncsn-toy",
                    "--sampler",
                    s,
                    "--steps",
                    "40",
                    "--particles",
                    "3000",
                    "--seed",
                    "9",
                    "--out",
                    p.to_str().unwrap(),
                    "-q",
                ],
            );
        }
        assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap(), "{s}");
    }
}

/// A trained NCSN model is sampled by the new samplers (DPM-Solver++ with 20 evaluations) and
/// its held-out likelihood is computed; a target's likelihood is printed beside its closed form.
#[test]
fn generate_and_likelihood_on_a_trained_model_and_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(d, &["train", "--data", "moons", "--steps", "300", "--out", "runs/moons", "-q"]);
    succeeds(
        d,
        &[
            "generate",
            "--model",
            "runs/moons",
            "--sampler",
            "dpmpp-2m",
            "--steps",
            "20",
            "--n",
            "500",
            "--out",
            "e.npy",
            "--report",
            "g.json",
            "-q",
        ],
    );
    let g = json(&d.join("g.json"));
    assert_eq!((g["sampler"].as_str(), g["nfe"].as_u64()), (Some("dpmpp-2m"), Some(20)));
    assert_eq!(g["diffusion"]["schedule"], "edm");
    let e: ndarray::Array2<f32> = ndarray_npy::read_npy(d.join("e.npy")).unwrap();
    assert_eq!(e.dim(), (500, 2));
    assert!(e.iter().all(|v| v.is_finite()));
    succeeds(
        d,
        &["likelihood", "--model", "runs/moons", "--data", "runs/moons/heldout.npy", "--report", "ll.json", "-q"],
    );
    let ll = json(&d.join("ll.json"));
    let n = ll["log_likelihood"].as_array().unwrap().len();
    let held: ndarray::Array2<f32> = ndarray_npy::read_npy(d.join("runs/moons/heldout.npy")).unwrap();
    assert_eq!(n, held.nrows());
    assert!(ll["mean_log_likelihood"].as_f64().unwrap().is_finite() && ll["nfe"].as_u64().unwrap() > 0);
    assert_eq!(ll["solver"], "dopri5");
    // A Gaussian target: the ODE's answer and the closed form agree.
    write(d, "g.toml", "kind = \"gaussian\"\nmean = [1.0, -1.0]\ncovariance = [[1.0, 0.8], [0.8, 1.0]]\n");
    succeeds(
        d,
        &["sample", "--target", "g.toml", "--sampler", "exact", "--particles", "500", "--out", "test.npy", "-q"],
    );
    let out = succeeds(d, &["likelihood", "--target", "g.toml", "--data", "test.npy", "--report", "lt.json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("closed form"));
    let lt = json(&d.join("lt.json"));
    assert!(lt["closed_form"]["relative_error"].as_f64().unwrap() < 1e-3, "{}", lt["closed_form"]);
}

/// compare-samplers writes its table and plot.
#[test]
fn compare_samplers_writes_a_table_and_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(
        d,
        &[
            "compare-samplers",
            "--target",
            "gmm40",
            "--nfe",
            "10,50",
            "--samplers",
            "edm,dpmpp-2m,annealed",
            "--particles",
            "2000",
            "--report",
            "q.json",
            "--plot",
            "q.png",
            "-q",
        ],
    );
    let q = json(&d.join("q.json"));
    let pts = q["points"].as_array().unwrap();
    assert_eq!(pts.len(), 6);
    assert!(pts.iter().all(|p| p["nfe"].as_u64().unwrap() <= p["nfe_budget"].as_u64().unwrap()));
    assert!(q["mmd_floor"].as_f64().unwrap() > 0.0);
    assert!(std::fs::metadata(d.join("q.png")).unwrap().len() > 10_000);
}

/// Every bad input of the issue: a clear message naming the problem, a non-zero exit.
#[test]
fn bad_diffusion_input_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&[&str], &[&str])] = &[
        (&["sample", "--target", "ncsn-toy", "--sampler", "ddim2"], &["dpmpp-2m", "pc"]),
        (&["sample", "--target", "ncsn-toy", "--sampler", "pc", "--schedule", "vq"], &["sub-vp", "cosine"]),
        (&["sample", "--target", "double-well", "--sampler", "pc"], &["only at σ = 0", "mala"]),
        (&["sample", "--target", "ncsn-toy", "--sampler", "ode", "--rtol", "0"], &["--rtol", "positive"]),
        (&["sample", "--target", "ncsn-toy", "--sampler", "ode", "--atol", "-1"], &["--atol"]),
        (&["sample", "--target", "ncsn-toy", "--sampler", "pc", "--t-eps", "1.5"], &["--t-eps", "(0, 1)"]),
        (&["sample", "--target", "ncsn-toy", "--sampler", "pc", "--steps", "0"], &["--steps", "at least 1"]),
        (
            &["sample", "--target", "ncsn-toy", "--sampler", "edm", "--sigma-min", "5", "--sigma-max", "1"],
            &["--sigma-max", "larger than --sigma-min"],
        ),
        (&["sample", "--target", "ncsn-toy", "--sampler", "ode", "--max-steps", "3"], &["reached only t =", "--rtol"]),
        (
            &["sample", "--target", "ncsn-toy", "--sampler", "ula", "--snr", "0.1"],
            &["--snr applies to the diffusion samplers"],
        ),
        (&["sample", "--target", "ncsn-toy", "--sampler", "ddim", "--snr", "0.1"], &["--snr applies to"]),
        (
            &["sample", "--target", "ncsn-toy", "--sampler", "edm", "--no-denoise"],
            &["--no-denoise applies to the ode and reverse-sde"],
        ),
        (&["sample", "--target", "ncsn-toy", "--sampler", "pc", "--step-size", "0.1"], &["--step-size does not apply"]),
    ];
    for (args, needles) in cases {
        let e = fails(d, args);
        for n in *needles {
            assert!(e.contains(n), "{args:?}: {e}");
        }
    }
    // Likelihood: wrong dimension, NaN row (named), a density without perturbed scores.
    write(d, "three.csv", "a,b,c\n1,2,3\n4,5,6\n");
    write(d, "nan.csv", "a,b\n1,2\n3,nan\n");
    let e = fails(d, &["likelihood", "--target", "ncsn-toy", "--data", "three.csv"]);
    assert!(e.contains("3 columns") && e.contains("dimension 2"), "{e}");
    let e = fails(d, &["likelihood", "--target", "ncsn-toy", "--data", "nan.csv"]);
    assert!(e.contains("row 2"), "{e}");
    write(d, "two.csv", "a\n1\n2\n");
    let e = fails(d, &["likelihood", "--target", "double-well", "--data", "two.csv"]);
    assert!(e.contains("only at σ = 0"), "{e}");
    let e = fails(d, &["likelihood", "--data", "two.csv"]);
    assert!(e.contains("--target") && e.contains("--model"), "{e}");
    let e = fails(d, &["compare-samplers", "--target", "ncsn-toy", "--nfe", "0,10"]);
    assert!(e.contains("--nfe"), "{e}");
    let e = fails(d, &["compare-samplers", "--target", "double-well"]);
    assert!(e.contains("only at σ = 0") || e.contains("exact draws"), "{e}");
    // Nothing was written by any failed run.
    let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

/// `train --objective` makes continuous-time models that `generate` samples with a diffusion
/// sampler by default; a resume cannot change the objective; bad names list the valid ones.
#[test]
fn objectives_train_generate_and_refuse_a_changed_objective() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(d, &["train", "--data", "moons", "--steps", "200", "--objective", "flow-matching", "--out", "fm", "-q"]);
    let cfg = json(&d.join("fm/config.json"));
    assert_eq!(cfg["train"]["objective"]["kind"], "flow-matching");
    succeeds(d, &["generate", "--model", "fm", "--n", "300", "--out", "g.npy", "--report", "g.json", "-q"]);
    assert_eq!(json(&d.join("g.json"))["sampler"], "dpmpp-2m");
    let e = fails(d, &["train", "--out", "fm", "--resume", "--steps", "300", "--objective", "edm"]);
    assert!(e.contains("saved objective") && e.contains("flow-matching"), "{e}");
    succeeds(d, &["train", "--out", "fm", "--resume", "--steps", "300", "--objective", "flow-matching", "-q"]);
    let e = fails(d, &["train", "--data", "moons", "--objective", "gan", "--out", "x"]);
    assert!(e.contains("edm") && e.contains("flow-matching"), "{e}");
    let e = fails(d, &["train", "--data", "moons", "--objective", "edm", "--sde", "vp", "--out", "x"]);
    assert!(e.contains("--sde") && e.contains("dsm"), "{e}");
    succeeds(
        d,
        &[
            "train",
            "--data",
            "moons",
            "--steps",
            "200",
            "--objective",
            "dsm",
            "--sde",
            "vp",
            "--weighting",
            "likelihood",
            "--out",
            "vp",
            "-q",
        ],
    );
    assert_eq!(json(&d.join("vp/config.json"))["train"]["objective"]["sde"], "vp");
    succeeds(d, &["likelihood", "--model", "vp", "--data", "vp/heldout.npy", "--report", "ll.json", "-q"]);
    let e =
        fails(d, &["train", "--data", "moons", "--objective", "dsm", "--sde", "ve", "--prediction", "v", "--out", "x"]);
    assert!(e.contains("try --sde vp"), "{e}");
    succeeds(
        d,
        &[
            "train",
            "--data",
            "moons",
            "--steps",
            "100",
            "--objective",
            "dsm",
            "--sde",
            "vp",
            "--prediction",
            "v",
            "--out",
            "vv",
            "-q",
        ],
    );
    assert_eq!(json(&d.join("vv/config.json"))["train"]["objective"]["prediction"], "v");
    assert!(json(&d.join("ll.json"))["mean_log_likelihood"].as_f64().unwrap().is_finite());
}

/// Minibatch OT and reflow from the command line: the runs record their coupling, a reflow
/// student generates in one Euler step on its straight path, stochastic samplers are refused on
/// it, and the flags that do not fit are refused with the reason.
#[test]
fn minibatch_ot_and_reflow_runs_and_their_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = ["--steps", "200", "--warmup", "10", "--batch", "64", "--rows", "1000", "-q"];
    let mut a = vec!["train", "--data", "moons", "--objective", "flow-matching", "--path", "ot", "--minibatch-ot"];
    a.extend_from_slice(&["--out", "ot"]);
    a.extend_from_slice(&small);
    succeeds(d, &a);
    assert_eq!(json(&d.join("ot/config.json"))["train"]["coupling"], "minibatch-ot");
    let mut a = vec!["train", "--reflow", "ot", "--reflow-steps", "10", "--out", "rf"];
    a.extend_from_slice(&small);
    succeeds(d, &a);
    let c = json(&d.join("rf/config.json"));
    assert_eq!(c["train"]["coupling"], "pairs");
    assert_eq!(c["train"]["objective"]["kind"], "flow-matching");
    assert!(d.join("rf/train-noise.npy").exists());
    succeeds(d, &["train", "--out", "rf", "--resume", "--steps", "250", "-q"]);
    succeeds(
        d,
        &[
            "generate",
            "--model",
            "rf",
            "--sampler",
            "ode",
            "--solver",
            "euler",
            "--steps",
            "1",
            "--no-denoise",
            "--n",
            "50",
            "--report",
            "g.json",
            "-q",
        ],
    );
    let g = json(&d.join("g.json"));
    assert_eq!(g["diffusion"]["schedule"], "linear");
    assert_eq!(g["nfe"], 1);
    let e = fails(d, &["generate", "--model", "rf", "--sampler", "ddpm", "--n", "5"]);
    assert!(e.contains("only its ODE"), "{e}");
    let e = fails(d, &["generate", "--model", "ot", "--sampler", "annealed", "--n", "5"]);
    assert!(e.contains("minibatch-ot coupling"), "{e}");
    for (args, want) in [
        (
            vec!["train", "--data", "moons", "--objective", "edm", "--minibatch-ot", "--out", "x"],
            "apply to --objective flow-matching",
        ),
        (vec!["train", "--data", "moons", "--path", "ot", "--out", "x"], "apply to --objective flow-matching"),
        (vec!["train", "--reflow", "ot", "--data", "moons", "--out", "x"], "--data does not apply with --reflow"),
        (vec!["train", "--reflow", "ot", "--objective", "edm", "--out", "x"], "flow-matching student"),
        (vec!["train", "--reflow", "nowhere", "--out", "x"], "no such run directory"),
        (vec!["train", "--data", "moons", "--reflow-steps", "5", "--out", "x"], "--reflow-steps applies with --reflow"),
        (vec!["train", "--out", "ot", "--resume", "--reflow", "ot"], "drop --reflow"),
    ] {
        let e = fails(d, &args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    assert!(!d.join("x").exists());
}
