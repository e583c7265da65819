//! `train` and `generate` with no options on a table the defaults were not chosen on: a 2-D
//! mixture of four components of unequal weight and width (one anisotropic), written as a CSV by
//! the test. The generated components must have the generator's weights within 0.025 and its
//! widths per coordinate within 6% (docs/GENERALIZATION.md; the earlier default, NCSN with
//! annealed Langevin, missed widths by up to 26% on such data). Measured: weights ±0.0064,
//! widths 0.983–1.050, the worst the smallest component along x: the 5% goal is met
//! only just here, so the bound is 6% (6 standard errors), not a margin we have.

use std::path::Path;

mod common;
use common::{langevin, succeeds};

const W: [f64; 4] = [0.45, 0.25, 0.2, 0.1];
const MU: [[f64; 2]; 4] = [[-2.0, 1.0], [2.5, 2.0], [1.0, -2.5], [-2.5, -2.0]];
const SD: [[f64; 2]; 4] = [[0.2, 0.2], [0.6, 0.12], [0.3, 0.3], [0.15, 0.15]];

fn draw(n: usize, seed: u64) -> Vec<[f64; 2]> {
    let mut r = langevin::rng::LaneRng::new(seed, 77);
    (0..n)
        .map(|_| {
            let u = r.uniform_f64();
            let k = if u < 0.45 {
                0
            } else if u < 0.7 {
                1
            } else if u < 0.9 {
                2
            } else {
                3
            };
            [MU[k][0] + SD[k][0] * r.normal(), MU[k][1] + SD[k][1] * r.normal()]
        })
        .collect()
}

/// (largest weight error, width ratios per component and coordinate).
fn judge(x: &ndarray::Array2<f32>) -> (f64, Vec<f64>) {
    let mut idx = vec![Vec::new(); 4];
    for (i, r) in x.outer_iter().enumerate() {
        let k = (0..4)
            .map(|k| {
                let l: f64 =
                    (0..2).map(|j| -0.5 * ((r[j] as f64 - MU[k][j]) / SD[k][j]).powi(2) - SD[k][j].ln()).sum::<f64>()
                        + W[k].ln();
                (k, l)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap()
            .0;
        idx[k].push(i);
    }
    let n = x.nrows() as f64;
    let wdev = (0..4).map(|k| (idx[k].len() as f64 / n - W[k]).abs()).fold(0.0, f64::max);
    let mut widths = Vec::new();
    for k in 0..4 {
        for j in 0..2 {
            let v: Vec<f64> = idx[k].iter().map(|&i| x[[i, j]] as f64).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            widths.push(s / SD[k][j]);
        }
    }
    (wdev, widths)
}

fn write_csv(path: &Path, rows: &[[f64; 2]]) {
    let mut s = String::from("a,b\n");
    for r in rows {
        s.push_str(&format!("{},{}\n", r[0], r[1]));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn train_and_generate_with_no_options_match_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_csv(&d.join("t.csv"), &draw(20_000, 1));
    // The judge itself: exact draws pass with margin. With 50,000 points the smallest component
    // has 5,000, so a width has a standard error of 1% (1/√(2n)).
    let exact = draw(50_000, 2);
    let ex = ndarray::Array2::from_shape_fn((exact.len(), 2), |(i, j)| exact[i][j] as f32);
    let (ew, ewidths) = judge(&ex);
    assert!(ew < 0.01 && ewidths.iter().all(|w| (w - 1.0).abs() < 0.035), "exact: {ew} {ewidths:?}");
    succeeds(d, &["train", "--data", "t.csv", "--out", "run", "-q"]);
    succeeds(d, &["generate", "--model", "run", "--n", "50000", "--out", "g.npy", "-q"]);
    let g = langevin::io::read_matrix(&d.join("g.npy")).unwrap();
    let (wdev, widths) = judge(&g);
    eprintln!("weights ±{wdev:.4}; widths {widths:.3?}");
    assert!(wdev < 0.025, "weights off by {wdev}");
    assert!(widths.iter().all(|w| (w - 1.0).abs() < 0.06), "widths {widths:?}");
    let out = langevin(d, &["eval", "--samples", "g.npy", "--reference", "run/heldout.npy", "--report", "-", "-q"]);
    assert!(out.status.success());
}
