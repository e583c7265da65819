//! Image data: folders of PNG/JPEG files, MNIST IDX files (raw or gzip), CIFAR-10 binary
//! batches, and the procedural `shapes` set. Every loader returns an [`ImageSet`]: one row per
//! image, channels first (C × H × W, flattened), values scaled from 0..255 to [−1, 1], with the
//! labels the format carries. Nothing is downloaded: the user points at local files.

use crate::data::Labels;
use langevin::rng::LaneRng;
use langevin::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Channels, height, width of every image of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Values per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// Whether an image has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `CxHxW`, as `plot images --shape` takes it.
    pub fn spec(&self) -> String {
        format!("{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// Images as rows, with their labels.
pub struct ImageSet {
    /// One row per image: C × H × W values in [−1, 1].
    pub x: Array2<f32>,
    /// Class labels, when the format has them.
    pub labels: Option<Labels>,
    /// The images' shape.
    pub shape: ImageShape,
    /// Files of a folder left out because they could not be read (`skip_bad`).
    pub skipped: Vec<PathBuf>,
}

fn scale(v: u8) -> f32 {
    v as f32 / 127.5 - 1.0
}

fn file_err(p: &Path, what: impl std::fmt::Display) -> Error {
    Error::msg(format!("{}: {what}", p.display()))
}

/// The pixel values that map to black and white in pictures of a run's samples (data units):
/// 0..16 for the built-in digits, [−1, 1] for every image loader's output.
pub fn pixel_range(source: &str) -> (f64, f64) {
    if source == "digits" { (0.0, 16.0) } else { (-1.0, 1.0) }
}

/// Whether `source` names image data: `shapes`, `mnist:PATH`, `cifar10:PATH`, or a folder.
pub fn is_image_source(source: &str) -> bool {
    source == "shapes" || source.starts_with("mnist:") || source.starts_with("cifar10:") || Path::new(source).is_dir()
}

/// Load the image data set `source` (see [`is_image_source`]); `size` is the side of `shapes`
/// (16 or 32, default 16) and the side folder images are resized and center-cropped to
/// (default: the first image's smaller side); `rows` the number of `shapes` images;
/// `skip_bad`: leave out the files of a folder that cannot be read (listed in
/// [`ImageSet::skipped`]) instead of stopping at the first.
pub fn load(source: &str, size: Option<usize>, rows: usize, seed: u64, skip_bad: bool) -> Result<ImageSet> {
    if skip_bad && !Path::new(source).is_dir() {
        return Err(Error::invalid(
            "skip_bad_images",
            "`skip_bad_images` applies to a folder of images; MNIST and CIFAR-10 files are read whole",
        ));
    }
    if source == "shapes" {
        let s = size.unwrap_or(16);
        if s != 16 && s != 32 {
            return Err(Error::invalid("image_size", format!("shapes are drawn at 16 or 32 pixels, not {s}")));
        }
        return Ok(shapes(rows, s, seed));
    }
    if size.is_some() && (source.starts_with("mnist:") || source.starts_with("cifar10:")) {
        return Err(Error::invalid(
            "image_size",
            "MNIST (28 × 28) and CIFAR-10 (32 × 32) are used at their own size; drop --image-size",
        ));
    }
    if let Some(p) = source.strip_prefix("mnist:") {
        return read_mnist(Path::new(p));
    }
    if let Some(p) = source.strip_prefix("cifar10:") {
        return read_cifar10(Path::new(p));
    }
    read_folder_skipping(Path::new(source), size, skip_bad)
}

/// MNIST's IDX files: the images file (magic 0x00000803, raw or .gz) and, beside it, the labels
/// file of the same name with `labels-idx1` for `images-idx3` (read when present).
pub fn read_mnist(path: &Path) -> Result<ImageSet> {
    let bytes = read_maybe_gz(path)?;
    let be = |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize;
    if bytes.len() < 16 || be(0) != 0x0803 {
        return Err(file_err(
            path,
            "not an MNIST images file (IDX magic 0x00000803 expected, e.g. train-images-idx3-ubyte or its .gz)",
        ));
    }
    let (n, h, w) = (be(4), be(8), be(12));
    if n == 0 || h == 0 || w == 0 || bytes.len() != 16 + n * h * w {
        return Err(file_err(
            path,
            format!(
                "the header says {n} images of {h} × {w} ({} bytes) but the file holds {} bytes after it: truncated or damaged",
                n * h * w,
                bytes.len().saturating_sub(16)
            ),
        ));
    }
    let x = Array2::from_shape_fn((n, h * w), |(i, j)| scale(bytes[16 + i * h * w + j]));
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("");
    let labels = if name.contains("images-idx3") {
        let lp = path.with_file_name(name.replace("images-idx3", "labels-idx1"));
        if lp.exists() {
            let lb = read_maybe_gz(&lp)?;
            let be = |o: usize| u32::from_be_bytes([lb[o], lb[o + 1], lb[o + 2], lb[o + 3]]) as usize;
            if lb.len() < 8 || be(0) != 0x0801 || be(4) != n || lb.len() != 8 + n {
                return Err(file_err(
                    &lp,
                    format!("not the MNIST labels of {n} images (IDX magic 0x00000801 and {n} labels expected)"),
                ));
            }
            let v: Vec<i64> = lb[8..].iter().map(|b| *b as i64).collect();
            Some(Labels::from_values(&v, lp.display().to_string())?)
        } else {
            None
        }
    } else {
        None
    };
    Ok(ImageSet { x, labels, shape: ImageShape { channels: 1, height: h, width: w }, skipped: Vec::new() })
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| file_err(path, format!("a damaged gzip file ({e})")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// CIFAR-10's binary batches: a `data_batch_*.bin`/`test_batch.bin` file, or a folder of them
/// (all `data_batch_*.bin`, in name order). Records of 1 label byte + 3,072 pixel bytes.
pub fn read_cifar10(path: &Path) -> Result<ImageSet> {
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| file_err(path, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.starts_with("data_batch_") && s.ends_with(".bin"))
            })
            .collect();
        f.sort();
        if f.is_empty() {
            return Err(file_err(path, "holds no data_batch_*.bin files (CIFAR-10's binary version)"));
        }
        f
    } else {
        vec![path.to_path_buf()]
    };
    const REC: usize = 1 + 3072;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let b = std::fs::read(f).map_err(|e| file_err(f, format!("cannot read: {e}")))?;
        if b.is_empty() || b.len() % REC != 0 {
            return Err(file_err(
                f,
                format!(
                    "{} bytes is not a whole number of CIFAR-10 records (1 label + 3,072 pixels each): truncated or not CIFAR-10",
                    b.len()
                ),
            ));
        }
        for r in b.chunks(REC) {
            if r[0] > 9 {
                return Err(file_err(f, format!("a label byte {} (CIFAR-10 has classes 0-9): not CIFAR-10", r[0])));
            }
            labels.push(r[0] as i64);
            x.extend(r[1..].iter().map(|v| scale(*v)));
        }
    }
    let n = labels.len();
    Ok(ImageSet {
        x: Array2::from_shape_vec((n, 3072), x).map_err(|e| Error::msg(e.to_string()))?,
        labels: Some(Labels::from_values(&labels, "the CIFAR-10 labels")?),
        shape: ImageShape { channels: 3, height: 32, width: 32 },
        skipped: Vec::new(),
    })
}

/// A folder of PNG or JPEG images (grey if every image is grey, else RGB), resized so the
/// smaller side is `size` and center-cropped to size × size. Images in subfolders take the
/// subfolder's name as their class (the ImageFolder convention); other files are skipped.
pub fn read_folder(dir: &Path, size: Option<usize>) -> Result<ImageSet> {
    read_folder_skipping(dir, size, false)
}

/// [`read_folder`], leaving out the files that cannot be read when `skip_bad` (they are listed
/// in [`ImageSet::skipped`]); without it the first such file stops the read, named.
pub fn read_folder_skipping(dir: &Path, size: Option<usize>, skip_bad: bool) -> Result<ImageSet> {
    fn is_image(p: &Path) -> bool {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
    }
    fn entries(d: &Path) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| file_err(d, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        Ok(v)
    }
    let mut files: Vec<(PathBuf, Option<String>)> = Vec::new();
    for p in entries(dir)? {
        if p.is_dir() {
            let class = p.file_name().and_then(|s| s.to_str()).map(str::to_string);
            for q in entries(&p)? {
                if is_image(&q) {
                    files.push((q, class.clone()));
                }
            }
        } else if is_image(&p) {
            files.push((p, None));
        }
    }
    if files.is_empty() {
        return Err(file_err(dir, "holds no .png, .jpg or .jpeg images (directly or one subfolder deep)"));
    }
    let mut decoded: Vec<image::DynamicImage> = Vec::with_capacity(files.len());
    let mut kept: Vec<(PathBuf, Option<String>)> = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (p, class) in files {
        match image::open(&p) {
            Ok(d) => {
                decoded.push(d);
                kept.push((p, class));
            }
            Err(_) if skip_bad => skipped.push(p),
            Err(e) => {
                return Err(file_err(
                    &p,
                    format!(
                        "not a readable image ({e}); remove it, or leave such files out with `skip_bad_images` \
                         (their count is reported)"
                    ),
                ));
            }
        }
    }
    if decoded.is_empty() {
        return Err(file_err(dir, format!("none of its {} image files could be read", skipped.len())));
    }
    let files = kept;
    let side = match size {
        Some(0) => return Err(Error::invalid("image_size", "--image-size must be at least 1")),
        Some(s) => s,
        None => decoded[0].width().min(decoded[0].height()) as usize,
    };
    let grey = decoded.iter().all(|d| {
        matches!(
            d.color(),
            image::ColorType::L8 | image::ColorType::L16 | image::ColorType::La8 | image::ColorType::La16
        )
    });
    let c = if grey { 1 } else { 3 };
    let mut x = Array2::zeros((files.len(), c * side * side));
    for (i, d) in decoded.iter().enumerate() {
        // Resize so the smaller side is `side`, then crop the center.
        let (w, h) = (d.width() as f64, d.height() as f64);
        let k = side as f64 / w.min(h);
        let (rw, rh) = (((w * k).round() as u32).max(side as u32), ((h * k).round() as u32).max(side as u32));
        let r = d.resize_exact(rw, rh, image::imageops::FilterType::Triangle);
        let (x0, y0) = ((rw - side as u32) / 2, (rh - side as u32) / 2);
        let crop = r.crop_imm(x0, y0, side as u32, side as u32);
        if grey {
            let g = crop.to_luma8();
            for (j, p) in g.pixels().enumerate() {
                x[[i, j]] = scale(p.0[0]);
            }
        } else {
            let rgb = crop.to_rgb8();
            let plane = side * side;
            for (j, p) in rgb.pixels().enumerate() {
                for ch in 0..3 {
                    x[[i, ch * plane + j]] = scale(p.0[ch]);
                }
            }
        }
    }
    let labels = if files.iter().all(|f| f.1.is_some()) {
        let mut names: Vec<String> = files.iter().filter_map(|f| f.1.clone()).collect();
        names.sort();
        names.dedup();
        let per_row: Vec<u32> =
            files.iter().map(|f| names.iter().position(|n| Some(n) == f.1.as_ref()).unwrap_or(0) as u32).collect();
        Some(Labels { per_row, classes: names, source: format!("the subfolders of {}", dir.display()) })
    } else {
        None
    };
    Ok(ImageSet { x, labels, shape: ImageShape { channels: c, height: side, width: side }, skipped })
}

/// The kinds of `shapes`, in label order.
pub const SHAPE_KINDS: [&str; 3] = ["disc", "square", "triangle"];

/// `n` procedural RGB images of `size` × `size`: one disc, square or triangle (the label) of a
/// random position, size and saturated colour on a black background, drawn with 4 × 4
/// supersampling (soft edges). The same seed gives the same images.
pub fn shapes(n: usize, size: usize, seed: u64) -> ImageSet {
    let mut rng = LaneRng::new(seed, 0x5A9E);
    let plane = size * size;
    let mut x = Array2::from_elem((n, 3 * plane), -1.0f32);
    let mut kinds = Vec::with_capacity(n);
    let s = size as f64;
    for i in 0..n {
        let kind = (rng.uniform_f64() * 3.0) as usize % 3;
        let r = s * (0.18 + 0.14 * rng.uniform_f64()); // half-size
        let cx = r + (s - 2.0 * r) * rng.uniform_f64();
        let cy = r + (s - 2.0 * r) * rng.uniform_f64();
        // A saturated colour: one of six hues, full value.
        let hue = (rng.uniform_f64() * 6.0) as usize % 6;
        let colour =
            [[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0], [1.0, 1.0, 0.2], [1.0, 0.2, 1.0], [0.2, 1.0, 1.0]][hue];
        let inside = |px: f64, py: f64| -> bool {
            let (dx, dy) = (px - cx, py - cy);
            match kind {
                0 => dx * dx + dy * dy <= r * r,
                1 => dx.abs() <= r * 0.85 && dy.abs() <= r * 0.85,
                _ => {
                    // Upward triangle with apex at (cx, cy − r), base at cy + r·0.8.
                    let t = (dy + r) / (1.8 * r);
                    (0.0..=1.0).contains(&t) && dx.abs() <= t * r
                }
            }
        };
        for yy in 0..size {
            for xx in 0..size {
                let mut cover = 0.0;
                for sy in 0..4 {
                    for sx in 0..4 {
                        if inside(xx as f64 + (sx as f64 + 0.5) / 4.0, yy as f64 + (sy as f64 + 0.5) / 4.0) {
                            cover += 1.0 / 16.0;
                        }
                    }
                }
                for c in 0..3 {
                    x[[i, c * plane + yy * size + xx]] = (2.0 * cover * colour[c] - 1.0) as f32;
                }
            }
        }
        kinds.push(kind as u32);
    }
    ImageSet {
        x,
        labels: Some(Labels::components(kinds, 3, "the kind of shape (0 disc, 1 square, 2 triangle)")),
        shape: ImageShape { channels: 3, height: size, width: size },
        skipped: Vec::new(),
    }
}

/// Geometric validity of generated `shapes` images: the fraction that are one clean shape of
/// one colour on the background — pixels are near-black or near one colour (allowing soft
/// edges), the coloured pixels form one connected blob, and it covers a plausible area.
pub fn shapes_validity(x: &Array2<f32>, size: usize) -> f64 {
    let plane = size * size;
    let mut valid = 0usize;
    for row in x.outer_iter() {
        let px = |j: usize| [row[j], row[plane + j], row[2 * plane + j]].map(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0));
        // The colour: the mean of the brightest pixels.
        let bright: Vec<[f32; 3]> =
            (0..plane).map(px).filter(|p| p.iter().cloned().fold(0.0, f32::max) > 0.7).collect();
        if bright.len() < plane / 40 || bright.len() > plane / 2 {
            continue;
        }
        let mut colour = [0f32; 3];
        for p in &bright {
            for c in 0..3 {
                colour[c] += p[c] / bright.len() as f32;
            }
        }
        // Every pixel: background, or a blend t·colour (soft edges).
        let clean = (0..plane).all(|j| {
            let p = px(j);
            let t = (p[0] * colour[0] + p[1] * colour[1] + p[2] * colour[2])
                / (colour[0] * colour[0] + colour[1] * colour[1] + colour[2] * colour[2]).max(1e-6);
            let t = t.clamp(0.0, 1.0);
            (0..3).all(|c| (p[c] - t * colour[c]).abs() < 0.25)
        });
        // One connected blob of coloured pixels.
        let on: Vec<bool> = (0..plane).map(|j| px(j).iter().cloned().fold(0.0, f32::max) > 0.5).collect();
        let first = on.iter().position(|b| *b);
        let blob = first.is_some_and(|f| {
            let mut seen = vec![false; plane];
            let mut stack = vec![f];
            seen[f] = true;
            let mut count = 0;
            while let Some(j) = stack.pop() {
                count += 1;
                let (y, x) = (j / size, j % size);
                let mut visit = |k: usize| {
                    if on[k] && !seen[k] {
                        seen[k] = true;
                        stack.push(k);
                    }
                };
                if x > 0 {
                    visit(j - 1)
                }
                if x + 1 < size {
                    visit(j + 1)
                }
                if y > 0 {
                    visit(j - size)
                }
                if y + 1 < size {
                    visit(j + size)
                }
            }
            count == on.iter().filter(|b| **b).count()
        });
        // Mostly solid: most of the coloured pixels are at full colour (a blend or a blur of
        // shapes is coloured at half strength over most of its area).
        let coloured = (0..plane).filter(|&j| px(j).iter().cloned().fold(0.0, f32::max) > 0.3).count();
        let solid = bright.len() as f64 >= 0.5 * coloured as f64;
        if clean && blob && solid {
            valid += 1;
        }
    }
    valid as f64 / x.nrows().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The validity score, calibrated: real `shapes` pass it (≥ 97%), pure noise and the
    /// average of two shapes (two blobs, mixed colours: what a blurry model makes) fail it.
    #[test]
    fn shapes_validity_passes_real_shapes_and_fails_noise_and_blends() {
        for size in [16, 32] {
            let s = shapes(400, size, 1);
            let v = shapes_validity(&s.x, size);
            assert!(v >= 0.97, "real shapes at {size}: {v}");
            let mut rng = LaneRng::new(2, 0);
            let noise = Array2::from_shape_fn(s.x.dim(), |_| (2.0 * rng.uniform_f64() - 1.0) as f32);
            assert!(shapes_validity(&noise, size) < 0.02);
            let t = shapes(400, size, 3);
            let blend = Array2::from_shape_fn(s.x.dim(), |(i, j)| 0.5 * (s.x[[i, j]] + t.x[[i, j]]));
            let b = shapes_validity(&blend, size);
            println!("validity at {size}: shapes {v}, noise {}, blends {b}", shapes_validity(&noise, size));
            assert!(b < 0.3, "blends of two shapes at {size}: {b}");
        }
        // Labels are the kind, all three kinds appear, the same seed gives the same images.
        let s = shapes(300, 16, 5);
        let l = s.labels.unwrap();
        for k in 0..3 {
            assert!(l.per_row.iter().filter(|c| **c == k).count() > 60);
        }
        assert_eq!(shapes(10, 16, 5).x, shapes(10, 16, 5).x);
        assert_ne!(shapes(10, 16, 5).x, shapes(10, 16, 6).x);
    }

    fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(body);
        v
    }

    #[test]
    fn mnist_idx_files_raw_and_gzip_with_their_labels() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| (i * 4) as u8).collect();
        std::fs::write(dir.path().join("t-images-idx3-ubyte"), idx(0x803, &[3, 4, 5], &pixels)).unwrap();
        std::fs::write(dir.path().join("t-labels-idx1-ubyte"), idx(0x801, &[3], &[7, 1, 7])).unwrap();
        let s = read_mnist(&dir.path().join("t-images-idx3-ubyte")).unwrap();
        assert_eq!(s.shape, ImageShape { channels: 1, height: 4, width: 5 });
        assert_eq!(s.x.dim(), (3, 20));
        assert_eq!(s.x[[0, 0]], -1.0);
        assert!((s.x[[1, 3]] - scale(92)).abs() < 1e-7); // row 1, value index 23 → 92
        let l = s.labels.unwrap();
        assert_eq!(l.classes, vec!["1", "7"]);
        assert_eq!(l.per_row, vec![1, 0, 1]);
        // gzip: the same values
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&idx(0x803, &[3, 4, 5], &pixels)).unwrap();
        std::fs::write(dir.path().join("g-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
        assert_eq!(read_mnist(&dir.path().join("g-images-idx3-ubyte.gz")).unwrap().x, s.x);
        // bad files, named
        std::fs::write(dir.path().join("cut-images-idx3-ubyte"), idx(0x803, &[3, 4, 5], &pixels[..50])).unwrap();
        let e = read_mnist(&dir.path().join("cut-images-idx3-ubyte")).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{e}");
        std::fs::write(dir.path().join("x"), idx(0x801, &[3], &[1, 2, 3])).unwrap();
        assert!(read_mnist(&dir.path().join("x")).err().unwrap().to_string().contains("magic"));
        std::fs::write(dir.path().join("b-images-idx3-ubyte"), idx(0x803, &[3, 4, 5], &pixels)).unwrap();
        std::fs::write(dir.path().join("b-labels-idx1-ubyte"), idx(0x801, &[2], &[1, 2])).unwrap();
        assert!(read_mnist(&dir.path().join("b-images-idx3-ubyte")).err().unwrap().to_string().contains("labels of 3"));
    }

    #[test]
    fn cifar10_batches_from_a_file_or_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |label: u8, v: u8| {
            let mut r = vec![label];
            r.extend(std::iter::repeat_n(v, 3072));
            r
        };
        std::fs::write(dir.path().join("data_batch_1.bin"), [rec(3, 0), rec(9, 255)].concat()).unwrap();
        std::fs::write(dir.path().join("data_batch_2.bin"), rec(3, 51)).unwrap();
        let s = read_cifar10(dir.path()).unwrap();
        assert_eq!(s.x.dim(), (3, 3072));
        assert_eq!(s.shape, ImageShape { channels: 3, height: 32, width: 32 });
        assert_eq!((s.x[[0, 0]], s.x[[1, 3071]]), (-1.0, 1.0));
        assert_eq!(s.labels.unwrap().per_row, vec![0, 1, 0]);
        assert_eq!(read_cifar10(&dir.path().join("data_batch_2.bin")).unwrap().x.nrows(), 1);
        std::fs::write(dir.path().join("cut.bin"), &rec(1, 1)[..2000]).unwrap();
        assert!(read_cifar10(&dir.path().join("cut.bin")).err().unwrap().to_string().contains("whole number"));
        std::fs::write(dir.path().join("label.bin"), rec(12, 1)).unwrap();
        assert!(read_cifar10(&dir.path().join("label.bin")).err().unwrap().to_string().contains("label byte 12"));
        let empty = tempfile::tempdir().unwrap();
        assert!(read_cifar10(empty.path()).err().unwrap().to_string().contains("data_batch"));
    }

    #[test]
    fn png_folders_resize_crop_and_take_classes_from_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        for (class, colour) in [("cats", [255u8, 0, 0]), ("dogs", [0, 0, 255])] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for k in 0..2 {
                // 12 × 8 images: a coloured left half, black right half.
                let img =
                    image::RgbImage::from_fn(
                        12,
                        8,
                        |x, _| if x < 6 { image::Rgb(colour) } else { image::Rgb([0, 0, 0]) },
                    );
                img.save(dir.path().join(class).join(format!("{k}.png"))).unwrap();
            }
        }
        std::fs::write(dir.path().join("cats/notes.txt"), "not an image").unwrap();
        let s = read_folder(dir.path(), Some(4)).unwrap();
        assert_eq!(s.shape, ImageShape { channels: 3, height: 4, width: 4 });
        assert_eq!(s.x.nrows(), 4);
        let l = s.labels.unwrap();
        assert_eq!(l.classes, vec!["cats", "dogs"]);
        assert_eq!(l.per_row, vec![0, 0, 1, 1]);
        // Resized to 6 × 4 and center-cropped to 4 × 4: column 0 red, column 3 black (cats).
        assert!(s.x[[0, 0]] > 0.9 && s.x[[0, 3]] < -0.9, "{:?}", s.x.row(0));
        assert!(s.x[[2, 2 * 16]] > 0.9, "dogs are blue");
        // grey images stay one channel; the default size is the first image's smaller side
        let g = tempfile::tempdir().unwrap();
        image::GrayImage::from_pixel(5, 7, image::Luma([128])).save(g.path().join("a.png")).unwrap();
        let s = read_folder(g.path(), None).unwrap();
        assert_eq!(s.shape, ImageShape { channels: 1, height: 5, width: 5 });
        assert!(s.labels.is_none());
        // nothing readable: named
        let e = tempfile::tempdir().unwrap();
        std::fs::write(e.path().join("a.txt"), "x").unwrap();
        assert!(read_folder(e.path(), None).err().unwrap().to_string().contains("no .png"));
        std::fs::write(e.path().join("b.png"), "not a png").unwrap();
        let err = read_folder(e.path(), None).err().unwrap().to_string();
        assert!(
            err.contains("b.png") && err.contains("not a readable image") && err.contains("skip_bad_images"),
            "{err}"
        );
        let err = read_folder_skipping(e.path(), None, true).err().unwrap().to_string();
        assert!(err.contains("none of its 1 image files"), "{err}");
        // Skipping: the readable images load, the bad one is listed.
        std::fs::write(dir.path().join("dogs/broken.png"), [0x89u8, b'P', b'N', b'G', 0, 1]).unwrap();
        assert!(read_folder(dir.path(), Some(4)).is_err());
        let s = read_folder_skipping(dir.path(), Some(4), true).unwrap();
        assert_eq!(s.x.nrows(), 4);
        assert_eq!(s.skipped, vec![dir.path().join("dogs/broken.png")]);
        assert_eq!(s.labels.unwrap().per_row, vec![0, 0, 1, 1]);
    }
}
