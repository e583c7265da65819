//! `--target SPEC | --model DIR` with `--sigma`: the score field that `analyze` and `plot field`
//! look at. A model's field is shown in the data's units (see `DataUnitsScore`).

use anyhow::{Result, bail};
use clap::Args;
use langevin::target::{Target, load_target};
use langevin_learn::checkpoint::TrainedModel;
use langevin_learn::model::DataUnitsScore;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug, Clone)]
pub struct FieldArgs {
    /// A target: built-in name, name:key=value,..., or a TOML file.
    #[arg(long, value_name = "SPEC")]
    pub target: Option<String>,
    /// A trained model's run directory (from `langevin train`).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Noise level σ: a target's exactly perturbed score s(x, σ) (Gaussians and mixtures), or
    /// a model's s(x, σ) (in its standardized units; default its smallest σ). 0 = the target itself.
    #[arg(long, value_name = "SIGMA")]
    pub sigma: Option<f64>,
    /// Device for a model: cpu (cuda[:N] needs a build with CUDA support).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The field and where it came from.
pub struct FieldSource {
    pub target: Arc<dyn Target>,
    pub model: Option<Arc<TrainedModel>>,
    pub sigma: f64,
    pub warnings: Vec<String>,
}

pub fn load(a: &FieldArgs) -> Result<FieldSource> {
    if let Some(s) = a.sigma
        && !(s.is_finite() && s >= 0.0)
    {
        bail!("--sigma = {s} must be zero or positive and finite");
    }
    match (&a.target, &a.model) {
        (Some(_), Some(_)) => bail!("give either --target or --model, not both"),
        (None, None) => bail!("give the field to look at: --target SPEC (e.g. muller-brown) or --model RUN_DIR"),
        (Some(spec), None) => {
            let (t, warnings) = load_target(spec)?;
            let sigma = a.sigma.unwrap_or(0.0);
            let target = if sigma > 0.0 {
                let m = t.mixture().ok_or_else(|| {
                    anyhow::anyhow!(
                        "--sigma {sigma}: '{}' has no exactly known perturbed score (only Gaussians and mixtures do); drop --sigma or use a mixture target",
                        t.name()
                    )
                })?;
                std::sync::Arc::new(m.perturbed(sigma)?) as std::sync::Arc<dyn langevin::target::Target>
            } else {
                t
            };
            Ok(FieldSource { target, model: None, sigma, warnings })
        }
        (None, Some(dir)) => {
            let device = crate::train::device(&a.device)?;
            let model = Arc::new(TrainedModel::load(dir, &device)?);
            model.check_unconditional("this analysis")?;
            let sigma = a.sigma.unwrap_or_else(|| model.config.ladder.sigma_min());
            if sigma <= 0.0 {
                bail!(
                    "--sigma must be positive for a model (it was trained on σ from {} down to {})",
                    model.config.ladder.sigma_max(),
                    model.config.ladder.sigma_min()
                );
            }
            let mut warnings = Vec::new();
            let (lo, hi) = (model.config.ladder.sigma_min(), model.config.ladder.sigma_max());
            if sigma < 0.999 * lo || sigma > 1.001 * hi {
                warnings.push(format!(
                    "--sigma {sigma} lies outside the trained range [{lo:.4}, {hi:.4}]: the network extrapolates there"
                ));
            }
            let target: Arc<dyn Target> = Arc::new(DataUnitsScore::new(model.clone(), sigma));
            Ok(FieldSource { target, model: Some(model), sigma, warnings })
        }
    }
}
