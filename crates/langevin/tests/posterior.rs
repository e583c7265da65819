//! Bayesian posteriors: exact answers where they exist, SGLD against the full-batch MALA
//! reference, and bad data.

use langevin::diagnostics::{chains_of, ess_bulk, mean_cov};
use langevin::io::Table;
use langevin::posterior::{Dataset, Model, Posterior, Schedule, Sgld};
use langevin::rng::LaneRng;
use langevin::sampler::{Mala, MarkovKernel, RunConfig, RunResult, run};
use langevin::target::Target;
use ndarray::Array2;
use std::path::Path;
use std::sync::Arc;

/// Synthetic data: features N(0, 1), labels from the model with the given coefficients.
fn synthetic(n: usize, coef: &[f64], logistic: bool, seed: u64) -> Dataset {
    let p = coef.len() - 1;
    let mut rng = LaneRng::new(seed, 0);
    let mut x = Vec::with_capacity(n * p);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f64> = (0..p).map(|_| rng.normal()).collect();
        let z = coef[0] + row.iter().zip(&coef[1..]).map(|(a, b)| a * b).sum::<f64>();
        y.push(if logistic {
            f64::from(u8::from(rng.uniform_f64() < 1.0 / (1.0 + (-z).exp())))
        } else {
            z + 0.5 * rng.normal()
        });
        x.extend(row);
    }
    let names = (0..p).map(|i| format!("f{i}")).collect();
    Dataset::new(x, p, y, names, "y".into()).unwrap()
}

fn per_coordinate(out: &RunResult, chains: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (m, c) = mean_cov(out.samples.view());
    let d = m.len();
    let std = (0..d).map(|i| c[[i, i]].sqrt()).collect();
    let ess = (0..d).map(|i| ess_bulk(&chains_of(out.samples.view(), chains, i))).collect();
    (m, std, ess)
}

/// The linear model's posterior is exactly Gaussian (mean and covariance in closed form, which
/// Newton's method reaches in one step): full-batch MALA matches its mean within 5 standard
/// errors (SE = std/√ESS) and its standard deviations within 5 SE (≈ std/√(2 ESS)).
#[test]
fn mala_matches_the_exact_linear_regression_posterior() {
    let data = synthetic(2000, &[0.3, 1.0, -0.5], false, 1);
    let post = Posterior::new(Arc::new(data), Model::Linear { noise_std: 0.5 }, 10.0).unwrap();
    let (mean, cov) = post.moments().unwrap();
    let chains = 8;
    let out = run(
        &Mala::new(&post),
        &post.default_init(),
        &RunConfig {
            particles: chains,
            warmup: 1000,
            steps: 4000,
            thin: Some(4),
            adapt: Some(0.574),
            step_size: 1e-3,
            seed: 2,
            block_size: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let (m, s, ess) = per_coordinate(&out, chains);
    for i in 0..3 {
        let sd = cov[[i, i]].sqrt();
        assert!(
            (m[i] - mean[i]).abs() < 5.0 * sd / ess[i].sqrt(),
            "mean {i}: {} vs {} (ESS {})",
            m[i],
            mean[i],
            ess[i]
        );
        assert!((s[i] - sd).abs() < 5.0 * sd / (2.0 * ess[i]).sqrt(), "std {i}: {} vs {sd}", s[i]);
    }
}

/// SGLD on minibatches of 128 rows of a 10,000-row logistic regression matches the full-batch
/// MALA reference: every posterior mean within 0.25 posterior standard deviations, every
/// marginal standard deviation within 20%. (With its default step, chosen so the minibatch noise
/// stays below a tenth of the injected noise; pSGLD and SGLD-CV likewise.)
#[test]
fn sgld_matches_full_batch_mala_on_logistic_regression() {
    let data = synthetic(10_000, &[-0.5, 1.0, -2.0, 0.5], true, 3);
    let post = Posterior::new(Arc::new(data), Model::Logistic, 10.0).unwrap();
    let chains = 8;
    let mala = run(
        &Mala::new(&post),
        &post.default_init(),
        &RunConfig {
            particles: chains,
            warmup: 500,
            steps: 3000,
            thin: Some(3),
            adapt: Some(0.574),
            step_size: 1e-3,
            seed: 4,
            block_size: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let (m_ref, s_ref, ess_ref) = per_coordinate(&mala, chains);
    assert!(ess_ref.iter().all(|&e| e > 300.0), "reference ESS {ess_ref:?}");
    for (precondition, cv) in [(false, false), (true, false), (false, true)] {
        let mut k = Sgld::new(&post, 128, Schedule::Constant(1.0), precondition).unwrap();
        if cv {
            k = k.with_control_variate(post.map().to_vec());
        }
        let eps = k.default_step(post.map(), &post.laplace_std(), 5);
        let k = k.with_schedule(Schedule::Constant(eps));
        let out = run(
            &k,
            &post.default_init(),
            &RunConfig {
                particles: chains,
                steps: 100_000,
                thin: Some(100),
                seed: 6,
                step_size: eps,
                block_size: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        let (m, s, ess) = per_coordinate(&out, chains);
        assert!(ess.iter().all(|&e| e > 100.0), "SGLD ESS {ess:?}");
        for i in 0..4 {
            let name = k.name();
            assert!((m[i] - m_ref[i]).abs() < 0.25 * s_ref[i], "{name} mean {i}: {} vs {}", m[i], m_ref[i]);
            assert!((s[i] / s_ref[i] - 1.0).abs() < 0.2, "{name} std {i}: {} vs {}", s[i], s_ref[i]);
        }
    }
}

/// The decreasing schedule of Welling & Teh: ε_t = a(b + t)^(−γ) falls by the asked factor.
#[test]
fn decreasing_schedule() {
    let s = Schedule::decaying(1e-3, 10.0, 0, 1000, 0.55).unwrap();
    assert!((s.at(0) - 1e-3).abs() < 1e-12);
    assert!((s.at(1000) - 1e-4).abs() < 1e-9);
    let held = Schedule::decaying(1e-3, 10.0, 500, 1000, 0.55).unwrap();
    assert!((held.at(499) - 1e-3).abs() < 1e-12 && (held.at(1500) - 1e-4).abs() < 1e-9);
    assert!(Schedule::decaying(1e-3, 10.0, 0, 1000, 0.4).unwrap_err().to_string().contains("(0.5, 1]"));
    assert_eq!(Schedule::decaying(1e-3, 1.0, 0, 1000, 0.55).unwrap(), Schedule::Constant(1e-3));
}

fn table(header: &[&str], rows: &[&[f64]]) -> Table {
    let data = Array2::from_shape_fn((rows.len(), header.len()), |(i, j)| rows[i][j]);
    Table { header: Some(header.iter().map(|s| s.to_string()).collect()), data }
}

#[test]
fn bad_data_is_explained() {
    let p = Path::new("loans.csv");
    let t = table(&["income", "default"], &[&[1.0, 0.0], &[2.0, 1.0], &[3.0, f64::NAN]]);
    let s = Schedule::decaying(1e-3, 10.0, 0, 10, 0.55).unwrap();
    assert!(s.at(5) < 1e-3);
    let e = Dataset::from_table(&t, p, "default", None, false).unwrap_err().to_string();
    assert!(
        e.contains("data row 3")
            && e.contains("column 'default'")
            && e.contains("NaN")
            && e.contains("`drop_nonfinite`"),
        "{e}"
    );
    let d = Dataset::from_table(&t, p, "default", None, true).unwrap();
    assert_eq!((d.rows(), d.dropped), (2, 1));
    let e = Dataset::from_table(&t, p, "label", None, false).unwrap_err().to_string();
    assert!(e.contains("no column named 'label'") && e.contains("income, default"), "{e}");
    let t2 = table(&["income", "default"], &[&[1.0, 0.0], &[2.0, 2.0]]);
    let d2 = Dataset::from_table(&t2, p, "default", None, false).unwrap();
    let e = Posterior::new(Arc::new(d2.clone()), Model::Logistic, 1.0).err().unwrap().to_string();
    assert!(e.contains("labels 0 or 1") && e.contains("is 2") && e.contains("data row 2"), "{e}");
    let post = Posterior::new(Arc::new(d2), Model::Linear { noise_std: 1.0 }, 1.0).unwrap();
    let e = Sgld::new(&post, 5, Schedule::Constant(1e-3), false).err().unwrap().to_string();
    assert!(e.contains("`batch` 5") && e.contains("(2)"), "{e}");
    let t3 = table(&["c", "y"], &[&[1.0, 0.0], &[1.0, 1.0]]);
    let e = Dataset::from_table(&t3, p, "y", None, false).unwrap().standardize().unwrap_err().to_string();
    assert!(e.contains("'c' is constant"), "{e}");
    let no_header = Table { header: None, data: Array2::zeros((2, 2)) };
    let e = Dataset::from_table(&no_header, p, "y", None, false).unwrap_err().to_string();
    assert!(e.contains("header"), "{e}");
}

/// The one-call posterior run: a typed report whose mean matches the exact Gaussian posterior of
/// a linear regression, and inconsistent options refused with the field named.
#[test]
fn sample_posterior_reports_and_refuses_bad_options() {
    use langevin::posterior::{PosteriorOptions, PosteriorSampler, sample_posterior};
    let rows: Vec<Vec<f64>> =
        (0..200).map(|i| vec![(i as f64 / 20.0).sin(), 0.5 + 2.0 * (i as f64 / 20.0).sin()]).collect();
    let refs: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
    let t = table(&["x", "y"], &refs);
    let d = Dataset::from_table(&t, Path::new("lin.csv"), "y", None, false).unwrap();
    let post = Posterior::new(Arc::new(d), Model::Linear { noise_std: 0.5 }, 10.0).unwrap();
    let o = PosteriorOptions {
        sampler: PosteriorSampler::Mala,
        chains: 8,
        steps: 4000,
        warmup: None,
        thin: Some(4),
        step_size: None,
        batch: 32,
        decay: None,
        schedule_gamma: None,
        init: None,
        seed: 5,
        progress: None,
    };
    let (run, rep) = sample_posterior(&post, &o).unwrap();
    assert_eq!(run.samples.nrows(), 8 * 1000);
    assert_eq!((rep.warmup, rep.draws_per_chain), (1000, 1000));
    // The posterior is Gaussian around the MAP with the Laplace std exactly; 8,000 draws with
    // an ESS of at least a few hundred per coordinate: the mean within 0.25 posterior std.
    for c in 0..2 {
        assert!((rep.posterior_mean[c] - rep.map[c]).abs() < 0.25 * rep.laplace_std[c], "{rep:?}");
        assert!((rep.posterior_std[c] / rep.laplace_std[c] - 1.0).abs() < 0.2, "{rep:?}");
    }
    assert!(rep.diagnostics.as_ref().unwrap().ess_bulk_min > 300.0);
    let v = serde_json::to_value(&rep).unwrap();
    assert_eq!(v["sampler"], "mala");
    for (bad, field) in [
        (PosteriorOptions { chains: 0, ..o.clone() }, "chains"),
        (PosteriorOptions { decay: Some(10.0), ..o.clone() }, "decay"),
        (PosteriorOptions { step_size: Some(-1.0), ..o.clone() }, "step_size"),
        (PosteriorOptions { sampler: PosteriorSampler::Sgld, batch: 0, ..o.clone() }, "batch"),
    ] {
        assert_eq!(sample_posterior(&post, &bad).unwrap_err().field(), Some(field));
    }
}
