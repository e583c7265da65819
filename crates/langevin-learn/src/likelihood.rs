//! Log-likelihoods of data under a trained model, through the core's probability-flow ODE
//! ([`langevin::diffusion::likelihood`]): the data are standardized as in training, the ODE
//! runs in the model's units over its ladder's σ range, and the standardization's Jacobian
//! (−Σ ln std) brings log p back to the data's units.

use crate::checkpoint::TrainedModel;
use crate::model::LearnedScore;
use langevin::diffusion::likelihood::{self, LikelihoodOptions, LikelihoodReport, Prior};
use langevin::{Error, Result};
use ndarray::{Array2, ArrayView2};
use std::sync::Arc;

/// log p(x) of every row of `data` (data units) under `model`.
pub fn likelihood(model: Arc<TrainedModel>, data: ArrayView2<f32>, o: &LikelihoodOptions) -> Result<LikelihoodReport> {
    let cfg = &model.config;
    if data.ncols() != cfg.dim {
        return Err(Error::invalid(
            "data",
            format!("the data have {} columns but the model was trained on {}-dimensional data", data.ncols(), cfg.dim),
        ));
    }
    if let Some((row, _)) = data.outer_iter().enumerate().find(|(_, r)| r.iter().any(|v| !v.is_finite())) {
        return Err(Error::invalid(
            "data",
            format!("row {} of the data holds NaN or an infinite value; remove it", row + 1),
        ));
    }
    let (raw, bins) = if o.dequantize { dequantize_for(cfg, data, o.seed)? } else { (data.to_owned(), 0.0) };
    let x: Array2<f32> = cfg.normalization.apply(&raw);
    model.check_unconditional("a likelihood")?;
    let score = LearnedScore::at_smallest(model.clone());
    let d = cfg.dim;
    // Standardized training data: mean 0, unit variances.
    let prior = Prior { mean: vec![0.0; d], cov: Array2::eye(d) };
    let range = crate::generate::sigma_range(&model.config);
    let offset = bins - cfg.normalization.std.iter().map(|s| s.ln()).sum::<f64>();
    let inner = LikelihoodOptions { dequantize: false, ..o.clone() };
    likelihood::likelihood(&score, x.view(), &prior, range, &inner, offset)
}

/// Dequantize `data` for a likelihood in bits per dimension of 8-bit values: the data with
/// uniform noise of one 8-bit level, and the log-Jacobian to add to log p (per point) so that it
/// is the density of the levels k + u, k in 0..=255.
///
/// Runs on 8-bit images from the loaders (PNG folders, MNIST, CIFAR-10) hold k/127.5 − 1: the
/// noise is u/127.5 and the Jacobian d·ln(1/127.5). Other data (and the digits, integers 0..16)
/// must be integers in 0..=255 already, as `likelihood::dequantize` checks.
pub fn dequantize_for(
    cfg: &crate::checkpoint::RunConfig,
    data: ArrayView2<f32>,
    seed: u64,
) -> Result<(Array2<f32>, f64)> {
    let range = crate::images::pixel_range(&cfg.data.source);
    let eight_bit = cfg.data.image.is_some() && range != (0.0, 16.0);
    dequantize_in(data, seed, eight_bit.then_some(range))
}

/// [`dequantize_for`] with the pixel range (values of levels 0 and 255) of 8-bit images, or
/// None for data that are the levels themselves.
fn dequantize_in(data: ArrayView2<f32>, seed: u64, range: Option<(f64, f64)>) -> Result<(Array2<f32>, f64)> {
    let Some((lo, hi)) = range else {
        return Ok((likelihood::dequantize(data, seed)?, 0.0));
    };
    let step = (hi - lo) / 255.0;
    let mut levels = Array2::<f32>::zeros(data.raw_dim());
    for (i, (k, v)) in levels.iter_mut().zip(data.iter()).enumerate() {
        let q = (*v as f64 - lo) / step;
        if (q - q.round()).abs() > 1e-3 || !(0.0..=255.0).contains(&q.round()) {
            return Err(Error::invalid(
                "dequantize",
                format!(
                    "`dequantize` on a run of 8-bit images needs its pixel values k/127.5 − 1 (k = 0..255, as the \
                     image loaders make them), but row {} holds {v}; `shapes` images are drawn with soft edges and \
                     are not 8-bit: leave out `dequantize` for them",
                    i / data.ncols().max(1) + 1
                ),
            ));
        }
        *k = q.round() as f32;
    }
    let noisy = likelihood::dequantize(levels.view(), seed)?;
    let x = noisy.mapv(|k| (lo + k as f64 * step) as f32);
    Ok((x, data.ncols() as f64 * step.ln()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_levels_are_dequantized_within_their_bin_with_the_bins_jacobian() {
        // Three pixels at levels 0, 128 and 255 of a [−1, 1] image, as the loaders store them.
        let levels = [0.0f32, 128.0, 255.0];
        let data = Array2::from_shape_fn((50, 3), |(_, j)| levels[j] / 127.5 - 1.0);
        let (x, jac) = dequantize_in(data.view(), 7, Some((-1.0, 1.0))).unwrap();
        let step = 2.0f32 / 255.0;
        assert!((jac - 3.0 * (2.0f64 / 255.0).ln()).abs() < 1e-12, "{jac}");
        let mut spread = [f32::INFINITY, f32::NEG_INFINITY];
        for ((i, j), v) in x.indexed_iter() {
            let within = (v - data[[i, j]]) / step;
            assert!((-1e-4..1.0 + 1e-4).contains(&within), "{v} leaves its level's bin");
            spread = [spread[0].min(within), spread[1].max(within)];
        }
        assert!(spread[0] < 0.1 && spread[1] > 0.9, "the noise spans the bin: {spread:?}");
        // The same draws as dequantizing the levels themselves.
        let raw = Array2::from_shape_fn((50, 3), |(_, j)| levels[j]);
        let (y, none) = dequantize_in(raw.view(), 7, None).unwrap();
        assert_eq!(none, 0.0);
        for (a, b) in x.iter().zip(y.iter()) {
            assert!((a - (-1.0 + b * step)).abs() < 1e-5);
        }
        // Values between levels (soft-edged shapes) are refused, naming the row.
        let soft = Array2::from_shape_fn((2, 3), |(i, j)| if i == 1 && j == 2 { 0.3 } else { -1.0 });
        let e = dequantize_in(soft.view(), 7, Some((-1.0, 1.0))).unwrap_err().to_string();
        assert!(e.contains("row 2") && e.contains("0.3") && e.contains("8-bit"), "{e}");
    }
}
