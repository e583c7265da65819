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
    let raw = if o.dequantize { likelihood::dequantize(data, o.seed)? } else { data.to_owned() };
    let x: Array2<f32> = cfg.normalization.apply(&raw);
    model.check_unconditional("a likelihood")?;
    let score = LearnedScore::at_smallest(model.clone());
    let d = cfg.dim;
    // Standardized training data: mean 0, unit variances.
    let prior = Prior { mean: vec![0.0; d], cov: Array2::eye(d) };
    let range = crate::generate::sigma_range(&model.config);
    let offset = -cfg.normalization.std.iter().map(|s| s.ln()).sum::<f64>();
    let inner = LikelihoodOptions { dequantize: false, ..o.clone() };
    likelihood::likelihood(&score, x.view(), &prior, range, &inner, offset)
}
