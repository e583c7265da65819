//! The project's seeded random number generator.
//!
//! Langevin sampling spends much of its time drawing Gaussian noise: ULA on a 2-D mixture
//! needs two normals per particle-step, and a scalar ziggurat (≈3.5 ns a draw) alone would cap
//! the sampler far below the speed of the score computation. [`LaneRng`] therefore runs
//! [`LANES`] independent xoshiro128+ generators side by side (one per SIMD lane; shifts, xors
//! and adds only, so the loop vectorizes) and turns their output into normals with a
//! branch-free Box–Muller transform built on [`crate::vmath`].
//!
//! Determinism: a generator is a pure function of `(seed, stream)`. The sampling driver gives
//! every block of particles its own stream (the block index), so results never depend on how
//! blocks are scheduled onto threads. No external crate offers batched SIMD normals on stable
//! Rust, which is why this one is written here; its statistics are tested below (moments,
//! Kolmogorov–Smirnov against Φ, independence between streams).
//!
//! Properties of the normals: every `f32` normal is `r·cos θ` or `r·sin θ` with
//! `r = √(−2 ln u)`, `u` on a grid of 2⁻²⁴ in (0, 1], so |z| ≤ 5.77: the probability of a
//! standard normal beyond that is 8·10⁻⁹, far below any Monte Carlo error this toolkit reports.

use crate::vmath::{self, LANES};
use multiversion::multiversion;

/// SplitMix64 finalizer: a bijective 64-bit mixer (Steele, Lea & Flood 2014).
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Per-lane state of [`LANES`] xoshiro128+ generators, stored lane-minor for vectorization.
type LaneState = [[u32; LANES]; 4];

/// [`LANES`] xoshiro128+ generators advanced together, with uniform and normal output.
#[derive(Clone, Debug)]
pub struct LaneRng {
    s: LaneState,
    /// Buffered scalar output for the convenience methods ([`LaneRng::uniform`], ...).
    uniforms: [f32; LANES],
    next_uniform: usize,
    normals: [f32; 2 * LANES],
    next_normal: usize,
}

impl LaneRng {
    /// The generator for stream `stream` of seed `seed`. Different `(seed, stream)` pairs give
    /// statistically independent generators (each lane is seeded from a SplitMix64 sequence
    /// started at a hash of both numbers).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut z = mix64(seed ^ mix64(stream.wrapping_add(GOLDEN)).wrapping_mul(GOLDEN));
        let mut s = [[0u32; LANES]; 4];
        for lane in 0..LANES {
            for word in s.iter_mut() {
                z = z.wrapping_add(GOLDEN);
                word[lane] = (mix64(z) >> 32) as u32;
            }
            if s.iter().all(|w| w[lane] == 0) {
                s[0][lane] = 1; // the all-zero state is the one fixed point of xoshiro
            }
        }
        LaneRng { s, uniforms: [0.0; LANES], next_uniform: LANES, normals: [0.0; 2 * LANES], next_normal: 2 * LANES }
    }

    /// Fill `out` with independent standard normal draws.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        let full = out.len() / (2 * LANES) * (2 * LANES);
        let (head, tail) = out.split_at_mut(full);
        fill_normal_kernel(&mut self.s, head);
        if !tail.is_empty() {
            let mut buf = [0.0f32; 2 * LANES];
            fill_normal_kernel(&mut self.s, &mut buf);
            tail.copy_from_slice(&buf[..tail.len()]);
        }
    }

    /// Fill `out` with independent uniform draws on the open interval (0, 1)
    /// (a grid of 2⁻²³, offset by half a step so neither end is reached: the largest value,
    /// 1 − 2⁻²⁴, is still below 1 in `f32`).
    pub fn fill_uniform(&mut self, out: &mut [f32]) {
        let full = out.len() / LANES * LANES;
        let (head, tail) = out.split_at_mut(full);
        fill_uniform_kernel(&mut self.s, head);
        if !tail.is_empty() {
            let mut buf = [0.0f32; LANES];
            fill_uniform_kernel(&mut self.s, &mut buf);
            tail.copy_from_slice(&buf[..tail.len()]);
        }
    }

    /// Fill `out` with raw 32-bit draws.
    pub fn fill_u32(&mut self, out: &mut [u32]) {
        let mut buf = [0u32; LANES];
        for chunk in out.chunks_mut(LANES) {
            next_u32s(&mut self.s, &mut buf);
            chunk.copy_from_slice(&buf[..chunk.len()]);
        }
    }

    /// Fill `out` with uniform integers in `0..n` (`n > 0`): 64 random bits per draw mapped by
    /// multiply-and-shift, so the deviation from uniform is below n/2⁶⁴.
    pub fn fill_below(&mut self, n: u64, out: &mut [u64]) {
        assert!(n > 0, "LaneRng::fill_below needs n > 0");
        let mut bits = vec![0u32; 2 * out.len()];
        self.fill_u32(&mut bits);
        for (o, pair) in out.iter_mut().zip(bits.chunks_exact(2)) {
            let r = ((pair[0] as u64) << 32) | pair[1] as u64;
            *o = ((r as u128 * n as u128) >> 64) as u64;
        }
    }

    /// One uniform draw on (0, 1) with 23 bits of resolution.
    pub fn uniform(&mut self) -> f64 {
        if self.next_uniform == LANES {
            let mut buf = [0.0f32; LANES];
            fill_uniform_kernel(&mut self.s, &mut buf);
            self.uniforms = buf;
            self.next_uniform = 0;
        }
        let u = self.uniforms[self.next_uniform];
        self.next_uniform += 1;
        u as f64
    }

    /// One uniform draw on (0, 1) with 48 bits of resolution (for inverse-CDF sampling).
    pub fn uniform_f64(&mut self) -> f64 {
        let hi = (self.next_u32() >> 8) as u64; // 24 bits
        let lo = (self.next_u32() >> 8) as u64; // 24 bits
        (((hi << 24) | lo) as f64 + 0.5) * (1.0 / (1u64 << 48) as f64)
    }

    /// One standard normal draw.
    pub fn normal(&mut self) -> f64 {
        if self.next_normal == 2 * LANES {
            let mut buf = [0.0f32; 2 * LANES];
            fill_normal_kernel(&mut self.s, &mut buf);
            self.normals = buf;
            self.next_normal = 0;
        }
        let z = self.normals[self.next_normal];
        self.next_normal += 1;
        z as f64
    }

    /// One raw 32-bit output (lane 0 of a fresh step; used rarely, so simplicity wins).
    pub fn next_u32(&mut self) -> u32 {
        let mut out = [0u32; LANES];
        next_u32s(&mut self.s, &mut out);
        out[0]
    }

    /// A uniform integer in `0..n` (`n > 0`), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "LaneRng::below needs n > 0");
        let bound = u64::MAX - u64::MAX % n;
        loop {
            let v = ((self.next_u32() as u64) << 32) | self.next_u32() as u64;
            if v < bound {
                return v % n;
            }
        }
    }
}

/// One xoshiro128+ step in every lane.
#[inline(always)]
fn next_u32s(s: &mut LaneState, out: &mut [u32; LANES]) {
    for j in 0..LANES {
        let r = s[0][j].wrapping_add(s[3][j]);
        let t = s[1][j] << 9;
        s[2][j] ^= s[0][j];
        s[3][j] ^= s[1][j];
        s[1][j] ^= s[2][j];
        s[0][j] ^= s[3][j];
        s[2][j] ^= t;
        s[3][j] = s[3][j].rotate_left(11);
        out[j] = r;
    }
}

/// The top 23 bits of `bits` as a uniform on (0, 1): (k + ½)·2⁻²³.
#[inline(always)]
fn to_open_unit(bits: u32) -> f32 {
    ((bits >> 9) as i32 as f32).mul_add(1.0 / 8_388_608.0, 0.5 / 8_388_608.0)
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn fill_uniform_kernel(s: &mut LaneState, out: &mut [f32]) {
    let mut a = [0u32; LANES];
    for chunk in out.chunks_exact_mut(LANES) {
        next_u32s(s, &mut a);
        for j in 0..LANES {
            chunk[j] = to_open_unit(a[j]);
        }
    }
}

/// Box–Muller for one pair of 32-bit draws: `(r cos θ, r sin θ)`.
#[inline(always)]
fn box_muller(a: u32, b: u32) -> (f32, f32) {
    // Radius from u in (0, 1]: (k + 1)·2⁻²⁴.
    let u = (((a >> 8) + 1) as i32 as f32) * (1.0 / 16_777_216.0);
    let r = (-2.0 * vmath::ln(u)).sqrt();
    // Angle θ = q·π/2 + φ: the top two bits choose the quadrant q, the next 24 bits
    // a uniform φ in [-π/4, π/4). θ is uniform on a full turn.
    let q = b >> 30;
    let f = (((b >> 6) & 0x00ff_ffff) as i32 as f32).mul_add(1.0 / 16_777_216.0, -0.5);
    let (sn, cs) = vmath::sincos_small(f * std::f32::consts::FRAC_PI_2);
    // Rotate (cos φ, sin φ) by q quarter turns.
    let odd = q & 1 == 1;
    let (x, y) = if odd { (-sn, cs) } else { (cs, sn) };
    let flip = if q & 2 == 2 { -1.0f32 } else { 1.0 };
    (r * x * flip, r * y * flip)
}

/// Box–Muller on whole chunks of `2 * LANES` outputs: the first half of each chunk gets
/// `r cos θ`, the second half `r sin θ`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn fill_normal_kernel(s: &mut LaneState, out: &mut [f32]) {
    let mut a = [0u32; LANES];
    let mut b = [0u32; LANES];
    for chunk in out.chunks_exact_mut(2 * LANES) {
        next_u32s(s, &mut a);
        next_u32s(s, &mut b);
        let (cos_half, sin_half) = chunk.split_at_mut(LANES);
        for j in 0..LANES {
            let (c, s) = box_muller(a[j], b[j]);
            cos_half[j] = c;
            sin_half[j] = s;
        }
    }
}

/// One generator per particle: particle `i` of a run with seed `seed` owns the xoshiro128+
/// generator seeded from `(seed, i)`, and every random number it ever uses (its start, its
/// noise, its accept/reject draws) comes from that generator, consumed in the same order
/// whatever else runs. A particle's path is therefore a function of (seed, particle index,
/// step) only: any prefix of a run is the smaller run bit for bit, whatever the block size,
/// the number of particles, the thread count or (later) the machine count. This is what
/// JAX users get by splitting keys per chain, and what diffusers and k-diffusion users miss
/// when their samples change with the batch size.
///
/// States are stored lane-minor (four `u32` arrays, one entry per particle of a block), so a
/// block's [`LANES`] particles advance their generators together in SIMD registers.
#[derive(Clone, Debug)]
pub struct ParticleRng {
    s: [Vec<u32>; 4],
}

impl ParticleRng {
    /// Generators of particles `first .. first + len`, padded to `stride` (a multiple of
    /// [`LANES`]; padding entries are the generators of the particles that follow, which no
    /// output ever reads).
    pub fn new(seed: u64, first: usize, stride: usize) -> Self {
        let mut s = [vec![0u32; stride], vec![0u32; stride], vec![0u32; stride], vec![0u32; stride]];
        let base = mix64(seed ^ 0x5041_5254_4943_4c45); // "PARTICLE"
        for j in 0..stride {
            let mut z = mix64(base ^ mix64((first + j) as u64).wrapping_mul(GOLDEN));
            for w in s.iter_mut() {
                z = z.wrapping_add(GOLDEN);
                w[j] = (mix64(z) >> 32) as u32;
            }
            if s.iter().all(|w| w[j] == 0) {
                s[0][j] = 1;
            }
        }
        ParticleRng { s }
    }

    /// Number of generators (the block's stride).
    pub fn len(&self) -> usize {
        self.s[0].len()
    }

    /// True when there is no generator.
    pub fn is_empty(&self) -> bool {
        self.s[0].is_empty()
    }

    /// Fill `rows` rows of `stride` values (coordinate-major, row c = coordinate c of every
    /// particle) with standard normals: particle j's generator gives the values of column j,
    /// two coordinates per Box–Muller pair (an odd last coordinate uses the cosine only).
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        let stride = self.len();
        assert_eq!(out.len() % stride.max(1), 0, "ParticleRng::fill_normal: rows of the block's stride");
        let [s0, s1, s2, s3] = &mut self.s;
        fill_normal_particles(s0, s1, s2, s3, out);
    }

    /// One uniform on (0, 1) per particle (same grid as [`LaneRng::fill_uniform`]).
    pub fn fill_uniform(&mut self, out: &mut [f32]) {
        assert_eq!(out.len(), self.len(), "ParticleRng::fill_uniform: one value per particle");
        let [s0, s1, s2, s3] = &mut self.s;
        fill_uniform_particles(s0, s1, s2, s3, out);
    }

    /// One raw 32-bit draw of particle `j`'s generator.
    #[inline]
    pub fn next_u32(&mut self, j: usize) -> u32 {
        let [s0, s1, s2, s3] = &mut self.s;
        xoshiro(&mut s0[j], &mut s1[j], &mut s2[j], &mut s3[j])
    }

    /// One standard normal from particle `j`'s generator (the cosine of a Box–Muller pair).
    pub fn normal(&mut self, j: usize) -> f64 {
        let (a, b) = (self.next_u32(j), self.next_u32(j));
        box_muller(a, b).0 as f64
    }

    /// Uniform integers in `0..n` (`n > 0`) from particle `j`'s generator: 64 random bits per
    /// draw mapped by multiply-and-shift (deviation from uniform below n/2⁶⁴).
    pub fn fill_below(&mut self, j: usize, n: u64, out: &mut [u64]) {
        assert!(n > 0, "ParticleRng::fill_below needs n > 0");
        for o in out.iter_mut() {
            let r = ((self.next_u32(j) as u64) << 32) | self.next_u32(j) as u64;
            *o = ((r as u128 * n as u128) >> 64) as u64;
        }
    }
}

/// One xoshiro128+ step of one generator.
#[inline(always)]
fn xoshiro(s0: &mut u32, s1: &mut u32, s2: &mut u32, s3: &mut u32) -> u32 {
    let r = s0.wrapping_add(*s3);
    let t = *s1 << 9;
    *s2 ^= *s0;
    *s3 ^= *s1;
    *s1 ^= *s2;
    *s0 ^= *s3;
    *s2 ^= t;
    *s3 = s3.rotate_left(11);
    r
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn fill_normal_particles(s0: &mut [u32], s1: &mut [u32], s2: &mut [u32], s3: &mut [u32], out: &mut [f32]) {
    let stride = s0.len();
    if stride == 0 {
        return;
    }
    // Two coordinate rows per Box–Muller pair: row 2k gets r cos θ, row 2k + 1 gets r sin θ (an
    // odd last row takes the cosines only). Each chunk's generators are loaded, stepped twice
    // and stored back.
    let step = |st: &mut [&mut [u32]; 4]| -> ([u32; LANES], [u32; LANES]) {
        let mut l: LaneState = [[0; LANES]; 4];
        for w in 0..4 {
            l[w].copy_from_slice(st[w]);
        }
        let (mut a, mut b) = ([0u32; LANES], [0u32; LANES]);
        next_u32s(&mut l, &mut a);
        next_u32s(&mut l, &mut b);
        for w in 0..4 {
            st[w].copy_from_slice(&l[w]);
        }
        (a, b)
    };
    for pair in out.chunks_mut(2 * stride) {
        let (cos_row, sin_row) = pair.split_at_mut(stride);
        let states = s0
            .chunks_exact_mut(LANES)
            .zip(s1.chunks_exact_mut(LANES))
            .zip(s2.chunks_exact_mut(LANES))
            .zip(s3.chunks_exact_mut(LANES));
        if sin_row.len() == stride {
            for ((cs, sn), (((a0, a1), a2), a3)) in
                cos_row.chunks_exact_mut(LANES).zip(sin_row.chunks_exact_mut(LANES)).zip(states)
            {
                let (a, b) = step(&mut [a0, a1, a2, a3]);
                for j in 0..LANES {
                    (cs[j], sn[j]) = box_muller(a[j], b[j]);
                }
            }
        } else {
            for (cs, (((a0, a1), a2), a3)) in cos_row.chunks_exact_mut(LANES).zip(states) {
                let (a, b) = step(&mut [a0, a1, a2, a3]);
                for j in 0..LANES {
                    cs[j] = box_muller(a[j], b[j]).0;
                }
            }
        }
    }
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma", "x86_64+avx2+fma", "aarch64+neon"))]
fn fill_uniform_particles(s0: &mut [u32], s1: &mut [u32], s2: &mut [u32], s3: &mut [u32], out: &mut [f32]) {
    for j in 0..out.len() {
        let r = xoshiro(&mut s0[j], &mut s1[j], &mut s2[j], &mut s3[j]);
        out[j] = to_open_unit(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{ContinuousCDF, Normal};

    fn moments(v: &[f32]) -> (f64, f64, f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / n;
        let m3 = v.iter().map(|&x| (x as f64 - m).powi(3)).sum::<f64>() / n;
        let m4 = v.iter().map(|&x| (x as f64 - m).powi(4)).sum::<f64>() / n;
        (m, var, m3, m4)
    }

    /// Kolmogorov–Smirnov statistic of `v` against the CDF `f`.
    fn ks(v: &mut [f32], f: impl Fn(f64) -> f64) -> f64 {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len() as f64;
        let mut d = 0.0f64;
        for (i, &x) in v.iter().enumerate() {
            let c = f(x as f64);
            d = d.max((i as f64 + 1.0) / n - c).max(c - i as f64 / n);
        }
        d
    }

    #[test]
    fn normals_have_standard_moments_and_shape() {
        let n = 1 << 22;
        let mut z = vec![0.0f32; n];
        LaneRng::new(7, 0).fill_normal(&mut z);
        let (m, var, m3, m4) = moments(&z);
        let nf = n as f64;
        // Standard errors of the sample mean, variance, third and fourth moments of N(0,1).
        assert!(m.abs() < 5.0 * (1.0 / nf).sqrt(), "mean {m}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
        assert!(m3.abs() < 5.0 * (15.0 / nf).sqrt(), "third moment {m3}");
        assert!((m4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "fourth moment {m4}");
        // KS against Φ; the 1% critical value is 1.63/√n.
        let normal = Normal::new(0.0, 1.0).unwrap();
        let d = ks(&mut z[..200_000], |x| normal.cdf(x));
        assert!(d < 1.63 / (200_000f64).sqrt(), "KS statistic {d}");
    }

    #[test]
    fn uniforms_are_uniform_on_open_interval() {
        let n = 1 << 20;
        let mut u = vec![0.0f32; n];
        LaneRng::new(3, 9).fill_uniform(&mut u);
        assert!(u.iter().all(|&x| x > 0.0 && x < 1.0));
        let (m, var, _, _) = moments(&u);
        let nf = n as f64;
        assert!((m - 0.5).abs() < 5.0 * (1.0 / 12.0 / nf).sqrt());
        assert!((var - 1.0 / 12.0).abs() < 5.0 * (1.0 / 180.0 / nf).sqrt());
        let d = ks(&mut u[..200_000], |x| x.clamp(0.0, 1.0));
        assert!(d < 1.63 / (200_000f64).sqrt(), "KS statistic {d}");
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, stream| {
            let mut z = vec![0.0f32; 1000];
            LaneRng::new(seed, stream).fill_normal(&mut z);
            z
        };
        assert_eq!(draw(1, 2), draw(1, 2));
        assert_ne!(draw(1, 2), draw(1, 3));
        assert_ne!(draw(1, 2), draw(2, 2));
        // Streams are uncorrelated: the correlation of 1e5 pairs is within 5 standard errors.
        let n = 100_000;
        let mut a = vec![0.0f32; n];
        let mut b = vec![0.0f32; n];
        LaneRng::new(11, 0).fill_normal(&mut a);
        LaneRng::new(11, 1).fill_normal(&mut b);
        let c = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>() / n as f64;
        assert!(c.abs() < 5.0 / (n as f64).sqrt(), "cross-correlation {c}");
    }

    #[test]
    fn odd_lengths_and_scalar_draws_work() {
        let mut rng = LaneRng::new(5, 5);
        let mut z = vec![0.0f32; 37];
        rng.fill_normal(&mut z);
        assert!(z.iter().all(|x| x.is_finite()));
        let mut u = vec![0.0f32; 5];
        rng.fill_uniform(&mut u);
        assert!(u.iter().all(|&x| x > 0.0 && x < 1.0));
        let k: Vec<u64> = (0..10_000).map(|_| rng.below(7)).collect();
        assert!(k.iter().all(|&v| v < 7));
        for v in 0..7 {
            let c = k.iter().filter(|&&x| x == v).count() as f64 / 10_000.0;
            assert!((c - 1.0 / 7.0).abs() < 5.0 * (1.0 / 7.0 * 6.0 / 7.0 / 10_000.0f64).sqrt());
        }
        let x = rng.uniform_f64();
        assert!(x > 0.0 && x < 1.0);
        let mut idx = vec![0u64; 70_000];
        rng.fill_below(7, &mut idx);
        for v in 0..7 {
            let c = idx.iter().filter(|&&x| x == v).count() as f64 / 70_000.0;
            assert!((c - 1.0 / 7.0).abs() < 5.0 * (1.0 / 7.0 * 6.0 / 7.0 / 70_000.0f64).sqrt());
        }
        let s: f64 = (0..20_000).map(|_| rng.normal()).sum::<f64>() / 20_000.0;
        assert!(s.abs() < 5.0 / (20_000f64).sqrt());
    }

    #[test]
    fn particle_streams_do_not_depend_on_the_block_layout() {
        // Particles 0..96 drawn as one block, or as blocks of 32 and 64 starting at 0 and 32:
        // every particle's normals are the same bits.
        let d = 3;
        let mut whole = vec![0.0f32; d * 96];
        let mut rng = ParticleRng::new(9, 0, 96);
        rng.fill_normal(&mut whole);
        rng.fill_normal(&mut whole); // the second draw, as a second step would
        for (first, len) in [(0usize, 32usize), (32, 64)] {
            let mut part = vec![0.0f32; d * len];
            let mut r = ParticleRng::new(9, first, len);
            r.fill_normal(&mut part);
            r.fill_normal(&mut part);
            for c in 0..d {
                assert_eq!(&part[c * len..(c + 1) * len], &whole[c * 96 + first..c * 96 + first + len]);
            }
        }
        assert_ne!(ParticleRng::new(10, 0, 16).s, ParticleRng::new(9, 0, 16).s);
    }

    #[test]
    fn particle_normals_are_standard_and_independent_across_particles_and_coordinates() {
        let (d, n) = (2, 1 << 17);
        let mut z = vec![0.0f32; d * n];
        ParticleRng::new(3, 0, n).fill_normal(&mut z);
        let nf = (d * n) as f64;
        let (m, var, m3, m4) = moments(&z);
        assert!(m.abs() < 5.0 * (1.0 / nf).sqrt(), "mean {m}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
        assert!(m3.abs() < 5.0 * (15.0 / nf).sqrt(), "third moment {m3}");
        assert!((m4 - 3.0).abs() < 5.0 * (96.0 / nf).sqrt(), "fourth moment {m4}");
        // The two coordinates of a particle (cos and sin of one pair) and neighbouring particles
        // are uncorrelated; so are the first draws of consecutive particle indices.
        let corr =
            |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum::<f64>() / a.len() as f64;
        let se = 5.0 / (n as f64).sqrt();
        assert!(corr(&z[..n], &z[n..]).abs() < se);
        assert!(corr(&z[..n - 1], &z[1..n]).abs() < se);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let d_ks = ks(&mut z[..100_000], |x| normal.cdf(x));
        assert!(d_ks < 1.63 / (100_000f64).sqrt(), "KS statistic {d_ks}");
        let mut u = vec![0.0f32; n];
        ParticleRng::new(4, 0, n).fill_uniform(&mut u);
        assert!(u.iter().all(|&x| x > 0.0 && x < 1.0));
        let d_ks = ks(&mut u[..100_000], |x| x.clamp(0.0, 1.0));
        assert!(d_ks < 1.63 / (100_000f64).sqrt(), "uniform KS statistic {d_ks}");
    }
}
