//! Class-conditional training and classifier-free guidance as a user runs them, bad input
//! included.

use std::path::Path;

mod common;
use common::{langevin, succeeds, write};

fn fails(dir: &Path, args: &[&str], wanted: &[&str]) -> String {
    let out = langevin(dir, args);
    assert!(!out.status.success(), "langevin {args:?} should fail but succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic instead of an error: {err}");
    assert!(err.starts_with("error"), "{err}");
    for w in wanted {
        assert!(err.contains(w), "langevin {args:?}: the message should contain {w:?}:\n{err}");
    }
    err
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The mean posterior probability of component `k` of `8-gaussians` (std 0.35 on a circle of
/// radius 4/√2) over the rows of `x`: the exact responsibilities, not a nearest-mean guess.
fn class_fraction(x: &ndarray::Array2<f32>, k: usize) -> f64 {
    let r = 4.0 / 2f64.sqrt();
    let mu: Vec<(f64, f64)> = (0..8)
        .map(|j| (r * (j as f64 * std::f64::consts::PI / 4.0).cos(), r * (j as f64 * std::f64::consts::PI / 4.0).sin()))
        .collect();
    let mut total = 0.0;
    for row in x.outer_iter() {
        let (a, b) = (row[0] as f64, row[1] as f64);
        let l: Vec<f64> =
            mu.iter().map(|(m0, m1)| -((a - m0).powi(2) + (b - m1).powi(2)) / (2.0 * 0.35 * 0.35)).collect();
        let top = l.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = l.iter().map(|v| (v - top).exp()).sum();
        total += (l[k] - top).exp() / z;
    }
    total / x.nrows() as f64
}

/// `8-gaussians` with its component labels: the conditional model puts most samples of a class
/// in that class's Gaussian, guidance puts more there, and the unconditional ("no label") model
/// keeps all eight with equal weights. A model that ignored its labels would give 1/8 for the
/// class; guidance with the wrong sign would lower the fraction.
#[test]
fn guidance_raises_the_fraction_in_the_requested_class() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    succeeds(
        d,
        &[
            "train",
            "--data",
            "8-gaussians",
            "--conditional",
            "--objective",
            "edm",
            "--steps",
            "3000",
            "--out",
            "r",
            "-q",
        ],
    );
    let c = json(&d.join("r/config.json"));
    assert_eq!(c["labels"]["classes"].as_array().unwrap().len(), 8);
    assert_eq!(c["net"]["classes"], 8);
    assert_eq!(c["train"]["cond_drop"], 0.1);
    let mut frac = Vec::new();
    for w in ["0", "2"] {
        let out = format!("g{w}.npy");
        succeeds(
            d,
            &[
                "generate",
                "--model",
                "r",
                "--class",
                "3",
                "--guidance",
                w,
                "--n",
                "4000",
                "--out",
                &out,
                "--report",
                "g.json",
                "-q",
            ],
        );
        let r = json(&d.join("g.json"));
        assert_eq!(r["class"], "3");
        assert_eq!(r["guidance"].as_f64(), Some(w.parse().unwrap()));
        frac.push(class_fraction(&langevin::io::read_matrix(&d.join(out)).unwrap(), 3));
    }
    // Measured: 0.97 without guidance, 1.00 with w = 2 (4,000 samples: Monte Carlo error 0.003).
    assert!(frac[0] > 0.9, "conditional: fraction {} in class 3", frac[0]);
    assert!(frac[1] > frac[0] && frac[1] > 0.99, "guided: {} (unguided {})", frac[1], frac[0]);
    succeeds(d, &["generate", "--model", "r", "--n", "4000", "--out", "u.npy", "-q"]);
    let u = langevin::io::read_matrix(&d.join("u.npy")).unwrap();
    for k in 0..8 {
        // Each weight 1/8 ± 0.035 (6 Monte Carlo standard errors; measured within 0.012).
        let f = class_fraction(&u, k);
        assert!((f - 0.125).abs() < 0.035, "unconditional weight of class {k}: {f}");
    }
}

/// Labels from a CSV column: taken out of the data, recorded in the run, resumable; the
/// classifier judge of `eval` reports its held-out accuracy beside the fractions.
#[test]
fn labels_from_a_csv_column_train_resume_and_judge() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::from("x,class,y\n");
    let mut r = langevin::rng::LaneRng::new(3, 0);
    for i in 0..1200 {
        let (k, cx) = if i % 3 == 0 { (7, 3.0) } else { (2, -3.0) };
        text.push_str(&format!("{},{k},{}\n", cx + 0.5 * r.normal(), 0.5 * r.normal()));
    }
    write(d, "t.csv", &text);
    succeeds(
        d,
        &[
            "train",
            "--data",
            "t.csv",
            "--label",
            "class",
            "--objective",
            "edm",
            "--steps",
            "1500",
            "--batch",
            "256",
            "--out",
            "r",
            "-q",
        ],
    );
    let c = json(&d.join("r/config.json"));
    assert_eq!(c["dim"], 2);
    assert_eq!(c["labels"]["classes"], serde_json::json!(["2", "7"]));
    assert!(d.join("r/train-labels.npy").exists() && d.join("r/heldout-labels.npy").exists());
    succeeds(d, &["train", "--out", "r", "--resume", "--steps", "3000", "-q"]);
    succeeds(d, &["generate", "--model", "r", "--class", "7", "--n", "500", "--out", "s.npy", "-q"]);
    let s = langevin::io::read_matrix(&d.join("s.npy")).unwrap();
    let right = s.column(0).iter().filter(|&&v| v > 0.0).count() as f64 / 500.0;
    assert!(right > 0.9, "class 7 lies at x = 3: {right} of the samples on that side");
    succeeds(d, &["eval", "--samples", "s.npy", "--classifier", "r", "--class", "7", "--report", "e.json", "-q"]);
    let e = json(&d.join("e.json"));
    assert!(e["classifier"]["heldout_accuracy"].as_f64().unwrap() > 0.95, "{}", e["classifier"]);
    assert!(e["classifier"]["accuracy"].as_f64().unwrap() > 0.9, "{}", e["classifier"]);
    // The Fréchet distance in the classifier's features: samples of class 7 alone are far from
    // the held-out rows of both classes; the training rows (both classes) are as close as real
    // data are.
    let (fd, real) = (
        e["classifier"]["frechet_distance"].as_f64().unwrap(),
        e["classifier"]["frechet_distance_real"].as_f64().unwrap(),
    );
    assert!(fd > 10.0 * real, "one class: {fd} vs real {real}");
    succeeds(d, &["eval", "--samples", "r/train.npy", "--classifier", "r", "--report", "t.json", "-q"]);
    let t = json(&d.join("t.json"));
    assert!(t["classifier"]["frechet_distance"].as_f64().unwrap() < 2.0 * real.max(1e-3), "{}", t["classifier"]);
}

/// Every refusal names the problem and the fix, and exits non-zero.
#[test]
fn bad_conditioning_input_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "t.csv",
        "a,b,class\n1,2,0\n2,1,1\n3,0,0\n0,3,1\n1,1,0\n2,2,1\n0,0,0\n3,3,1\n1,3,0\n3,1,1\n2,0,0\n0,2,1\n",
    );
    write(
        d,
        "frac.csv",
        "a,b,class\n1,2,0.5\n2,1,1\n3,0,0\n0,3,1\n1,1,0\n2,2,1\n0,0,0\n3,3,1\n1,3,0\n3,1,1\n2,0,0\n0,2,1\n",
    );
    let train = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["train"];
        v.extend_from_slice(extra);
        v.extend_from_slice(&["--steps", "30", "--warmup", "3", "--batch", "4", "-q"]);
        v
    };
    let t = train(&["--data", "t.csv", "--label", "klass", "--out", "x"]);
    fails(d, &t, &["no label column 'klass'", "'class'"]);
    let t = train(&["--data", "frac.csv", "--label", "class", "--out", "x"]);
    fails(d, &t, &["0.5", "data row 1", "integers"]);
    let t = train(&["--data", "swiss-roll", "--conditional", "--out", "x"]);
    fails(d, &t, &["swiss-roll has no component labels"]);
    let t = train(&["--data", "t.csv", "--conditional", "--out", "x"]);
    fails(d, &t, &["--label COLUMN"]);
    let t = train(&["--data", "moons", "--cond-drop", "0.2", "--out", "x"]);
    fails(d, &t, &["--cond-drop applies to class-conditional"]);
    let t = train(&["--data", "t.csv", "--label", "class", "--cond-drop", "1", "--out", "x"]);
    fails(d, &t, &["--cond-drop 1", "[0, 1)"]);
    assert!(!d.join("x").exists(), "a refused run left a directory");

    // A conditional run and an unconditional one to generate from.
    let t = train(&["--data", "t.csv", "--label", "class", "--out", "c"]);
    succeeds(d, &t);
    let t = train(&["--data", "t.csv", "--label", "class", "--cond-drop", "0", "--out", "c0"]);
    succeeds(d, &t);
    let t = train(&["--data", "moons", "--rows", "100", "--out", "u"]);
    succeeds(d, &t);
    fails(d, &["generate", "--model", "u", "--class", "1", "--n", "5"], &["unconditional", "drop --class"]);
    fails(d, &["generate", "--model", "c", "--class", "9", "--n", "5"], &["class '9' was not seen", "0, 1"]);
    fails(d, &["generate", "--model", "c", "--class", "1", "--guidance", "-1", "--n", "5"], &["guidance", "≥ 0"]);
    fails(d, &["generate", "--model", "c", "--guidance", "2", "--n", "5"], &["--guidance needs --class"]);
    fails(d, &["generate", "--model", "c0", "--n", "5"], &["cond_drop 0", "--cond-drop 0.1"]);
    fails(d, &["generate", "--model", "c0", "--class", "1", "--guidance", "1", "--n", "5"], &["cond_drop 0"]);
    succeeds(d, &["generate", "--model", "c0", "--class", "1", "--n", "5", "-q"]);
    fails(d, &["train", "--out", "c", "--resume", "--label", "class", "--steps", "40"], &["keeps its labels"]);
    fails(d, &["train", "--out", "c", "--resume", "--cond-drop", "0.3", "--steps", "40"], &["--cond-drop 0.3 differs"]);
    fails(d, &["eval", "--samples", "t.csv", "--classifier", "u"], &["no labels"]);
    fails(d, &["analyze", "--model", "c0"], &["cond_drop 0", "no unconditional score"]);
    write(d, "pts.csv", "a,b\n1,2\n2,1\n");
    fails(d, &["likelihood", "--model", "c0", "--data", "pts.csv"], &["cond_drop 0"]);
}
