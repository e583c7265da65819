//! [`Block`]: a group of particles in coordinate-major layout, the unit every sampler and
//! target works on.
//!
//! The public face of a particle set is an N × d array (one particle per row). Inside a step it
//! is better turned around: coordinate `c` of all particles of a block is one contiguous run of
//! `f32`, so a score or update is a loop over particles that the compiler vectorizes
//! [`LANES`] at a time. A block holds a few hundred particles, small enough to stay in the
//! L1/L2 cache for all the steps a thread runs on it (the block-major schedule of DESIGN.md).

use crate::vmath::LANES;
use ndarray::{ArrayView2, ArrayViewMut2};

/// Particles of one block: `dim` rows of `stride` values; row `c` holds coordinate `c` of every
/// particle. Only the first `len` columns are real particles; the rest (fewer than
/// [`LANES`]) are padding that the kernels compute on and everything else ignores.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    dim: usize,
    len: usize,
    stride: usize,
    data: Vec<f32>,
}

impl Block {
    /// A block of `len` particles in `dim` dimensions, all coordinates zero.
    pub fn zeros(dim: usize, len: usize) -> Self {
        let stride = len.div_ceil(LANES).max(1) * LANES;
        Block { dim, len, stride, data: vec![0.0; dim * stride] }
    }

    /// Copy the rows of an `len × dim` array into a new block. Padding columns repeat the last
    /// particle, so they behave like real particles in every kernel.
    pub fn from_rows(rows: ArrayView2<f32>) -> Self {
        let (len, dim) = rows.dim();
        let mut b = Block::zeros(dim, len);
        for (i, row) in rows.outer_iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                b.data[c * b.stride + i] = v;
            }
        }
        b.fill_padding();
        b
    }

    /// Copy the real particles into the rows of an `len × dim` array.
    pub fn write_rows(&self, mut out: ArrayViewMut2<f32>) {
        assert_eq!(out.dim(), (self.len, self.dim), "Block::write_rows: shape mismatch");
        for (i, mut row) in out.outer_iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = self.data[c * self.stride + i];
            }
        }
    }

    /// Append the real particles, row by row (particle-major), to `out`.
    pub fn append_rows(&self, out: &mut Vec<f32>) {
        out.reserve(self.len * self.dim);
        for i in 0..self.len {
            for c in 0..self.dim {
                out.push(self.data[c * self.stride + i]);
            }
        }
    }

    /// Set the padding columns to copies of the last real particle.
    pub fn fill_padding(&mut self) {
        if self.len == 0 {
            return;
        }
        for c in 0..self.dim {
            let row = &mut self.data[c * self.stride..(c + 1) * self.stride];
            let last = row[self.len - 1];
            row[self.len..].fill(last);
        }
    }

    /// Number of coordinates per particle.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// Number of real particles.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when the block holds no real particle.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Length of each coordinate row (a multiple of [`LANES`], at least `len`).
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Coordinate `c` of every particle (padding included).
    pub fn row(&self, c: usize) -> &[f32] {
        &self.data[c * self.stride..(c + 1) * self.stride]
    }
    /// Mutable coordinate row `c`.
    pub fn row_mut(&mut self, c: usize) -> &mut [f32] {
        &mut self.data[c * self.stride..(c + 1) * self.stride]
    }
    /// All coordinates, row after row (`dim * stride` values).
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Mutable access to all coordinates.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// Coordinates of particle `i` (a copy, in `f64`).
    pub fn particle(&self, i: usize) -> Vec<f64> {
        (0..self.dim).map(|c| self.data[c * self.stride + i] as f64).collect()
    }
    /// Index of the first real particle with a non-finite coordinate, if any.
    pub fn first_non_finite(&self) -> Option<usize> {
        let mut first: Option<usize> = None;
        for c in 0..self.dim {
            let row = &self.row(c)[..self.len];
            // A vectorizable scan first; the exact index only when something is wrong.
            if !all_finite(row)
                && let Some(i) = row.iter().position(|v| !v.is_finite())
            {
                first = Some(first.map_or(i, |f: usize| f.min(i)));
            }
        }
        first
    }
}

/// True when every value is finite. `v * 0` is 0 for finite `v` and NaN otherwise; the
/// per-lane sums keep the loop free of a serial dependency so it vectorizes.
fn all_finite(v: &[f32]) -> bool {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for ch in chunks {
        for j in 0..LANES {
            acc[j] += ch[j] * 0.0;
        }
    }
    acc.iter().all(|a| *a == 0.0) && rest.iter().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn rows_round_trip_with_padding() {
        let a = Array2::from_shape_fn((21, 3), |(i, c)| (i * 10 + c) as f32);
        let b = Block::from_rows(a.view());
        assert_eq!(b.len(), 21);
        assert_eq!(b.stride(), 32);
        assert_eq!(b.row(2)[20], 202.0);
        assert_eq!(b.row(2)[31], 202.0, "padding repeats the last particle");
        let mut out = Array2::zeros((21, 3));
        b.write_rows(out.view_mut());
        assert_eq!(out, a);
        let mut flat = Vec::new();
        b.append_rows(&mut flat);
        assert_eq!(flat, a.iter().copied().collect::<Vec<_>>());
        assert_eq!(b.particle(4), vec![40.0, 41.0, 42.0]);
    }

    #[test]
    fn non_finite_detection_ignores_padding() {
        let a = Array2::from_shape_fn((5, 2), |(i, c)| (i + c) as f32);
        let mut b = Block::from_rows(a.view());
        assert_eq!(b.first_non_finite(), None);
        b.row_mut(1)[10] = f32::NAN; // padding
        assert_eq!(b.first_non_finite(), None);
        b.row_mut(1)[3] = f32::INFINITY;
        b.row_mut(0)[4] = f32::NAN;
        assert_eq!(b.first_non_finite(), Some(3));
    }
}
