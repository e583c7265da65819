//! Learning scores from data: denoising score matching over a ladder of noise levels
//! (NCSN / SMLD, Song & Ermon 2019, 2020), on candle, and the adapter that turns a trained
//! network into a target of the core samplers.
//!
//! - [`data`]: built-in 2-D data sets, CSV/NPY tables, standardization, held-out split;
//! - [`ladder`]: noise ladders and NCSNv2's rules for choosing them;
//! - [`net`]: the noise-conditional score network (MLP on x and Fourier features of log σ);
//! - [`unet`]: the U-Net for images (residual blocks, attention, skip connections);
//! - [`ops`]: fused CPU kernels (SiLU);
//! - [`mlp`]: the network's forward and backward passes written out for the CPU;
//! - [`train`]: the DSM objective and the training loop (Adam/AdamW, warm-up, clipping, EMA);
//! - [`checkpoint`]: run directories, atomic checkpoints, resuming, loading for generation;
//! - [`fit`]: the training loop with observers (metrics log, checkpoints, stop flag);
//! - [`model`]: [`model::LearnedScore`], the trained score as a `langevin::target::Target`
//!   (and so a `langevin::field::Score` at every σ);
//! - [`generate`]: samples from a trained run, annealed or plain, with a typed report.

pub mod checkpoint;
pub mod classify;
pub mod conv;
pub mod data;
pub mod fit;
pub mod generate;
pub mod images;
pub mod ladder;
pub mod likelihood;
pub mod mlp;
pub mod model;
pub mod net;
pub mod objective;
pub mod ops;
pub mod reflow;
pub mod train;
pub mod unet;
