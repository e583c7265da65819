//! Image data through the binary: `train --data shapes | mnist:FILE | cifar10:PATH | FOLDER`,
//! `generate --grid`, and their bad inputs.

mod common;
use common::{fails, succeeds};

#[test]
fn shapes_and_mnist_train_and_generate_image_grids() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    succeeds(
        d,
        &["train", "--data", "shapes", "--image-size", "16", "--rows", "600", "--steps", "40", "--out", "shapes", "-q"],
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("shapes/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["dim"], 768);
    assert_eq!(cfg["data"]["image"]["channels"], 3);
    succeeds(
        d,
        &["generate", "--model", "shapes", "--n", "70", "--steps", "5", "--grid", "g.png", "--report", "r.json", "-q"],
    );
    let g = image::open(d.join("g.png")).unwrap();
    // 8 × 8 images of 16 pixels with 2-pixel gaps, scaled up.
    let side = 8 * (16 + 2) + 2;
    assert_eq!(g.width() % side as u32, 0);
    assert_eq!(g.width(), g.height());
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let v = r["shapes_validity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&v));

    // An MNIST-format file with its labels beside it: a class-conditional image model.
    let mut img = vec![0u8, 0, 8, 3, 0, 0, 0, 40, 0, 0, 0, 6, 0, 0, 0, 6];
    let mut lab = vec![0u8, 0, 8, 1, 0, 0, 0, 40];
    for i in 0..40u32 {
        for p in 0..36u32 {
            img.push(((i * 7 + p * 13) % 256) as u8);
        }
        lab.push((i % 2) as u8);
    }
    std::fs::write(d.join("tiny-images-idx3-ubyte"), &img).unwrap();
    std::fs::write(d.join("tiny-labels-idx1-ubyte"), &lab).unwrap();
    succeeds(
        d,
        &["train", "--data", "mnist:tiny-images-idx3-ubyte", "--conditional", "--steps", "20", "--out", "mn", "-q"],
    );
    succeeds(d, &["generate", "--model", "mn", "--n", "9", "--class", "1", "--steps", "4", "--grid", "m.png", "-q"]);
    assert!(image::open(d.join("m.png")).is_ok());
}

#[test]
fn bad_image_requests_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let e = fails(d, &["train", "--data", "shapes", "--image-size", "20", "--out", "x"]);
    assert!(e.contains("16 or 32"), "{e}");
    let e = fails(d, &["train", "--data", "moons", "--image-size", "16", "--out", "x"]);
    assert!(e.contains("applies to image data"), "{e}");
    let e = fails(d, &["train", "--data", "mnist:nothing-here", "--out", "x"]);
    assert!(e.contains("nothing-here") && e.contains("cannot read"), "{e}");
    std::fs::write(d.join("bad.bin"), vec![1u8; 100]).unwrap();
    let e = fails(d, &["train", "--data", "cifar10:bad.bin", "--out", "x"]);
    assert!(e.contains("whole number of CIFAR-10 records"), "{e}");
    std::fs::create_dir(d.join("empty")).unwrap();
    let e = fails(d, &["train", "--data", "empty", "--out", "x"]);
    assert!(e.contains("no .png"), "{e}");
    let e = fails(d, &["train", "--data", "shapes", "--label", "kind", "--out", "x"]);
    assert!(e.contains("use --conditional"), "{e}");
    assert!(!d.join("x").exists());
    succeeds(d, &["train", "--data", "moons", "--steps", "20", "--out", "m", "-q"]);
    let e = fails(d, &["generate", "--model", "m", "--grid", "g.png"]);
    assert!(e.contains("not images"), "{e}");
    let e = fails(d, &["generate", "--model", "m", "--grid", "g.jpg"]);
    assert!(e.contains(".png"), "{e}");
}

/// The U-Net through the binary: a class-conditional run on the built-in digits (8 × 8 grey
/// images, mapped to [−1, 1] by one affine map for all pixels), generation with a grid, and
/// the requests it cannot serve, each refused with the fix and nothing left behind.
#[test]
fn unet_trains_generates_and_refuses_what_it_cannot_take() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    succeeds(
        d,
        &[
            "train",
            "--data",
            "digits",
            "--model",
            "unet",
            "--conditional",
            "--steps",
            "3",
            "--batch",
            "8",
            "--out",
            "u",
            "-q",
        ],
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("u/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["net"]["unet"]["preset"], "tiny");
    assert_eq!(cfg["net"]["unet"]["channels"], 1);
    assert_eq!(cfg["data"]["image"]["height"], 8);
    assert_eq!(cfg["normalization"]["mean"][0], 8.0);
    assert_eq!(cfg["normalization"]["std"][63], 8.0);
    assert_eq!(cfg["train"]["batch"], 8);
    succeeds(
        d,
        &[
            "generate", "--model", "u", "--n", "4", "--class", "3", "--steps", "3", "--grid", "g.png", "--out",
            "s.npy", "-q",
        ],
    );
    assert!(image::open(d.join("g.png")).is_ok());
    // The reverse process as a GIF (one frame per recorded step, then the samples) and one PNG
    // per sample at the image's own size.
    succeeds(
        d,
        &["generate", "--model", "u", "--n", "5", "--steps", "6", "--gif", "rev.gif", "--png-dir", "each", "-q"],
    );
    use image::AnimationDecoder;
    let gif =
        image::codecs::gif::GifDecoder::new(std::io::BufReader::new(std::fs::File::open(d.join("rev.gif")).unwrap()))
            .unwrap();
    assert!(gif.into_frames().count() >= 3);
    let pngs: Vec<_> = std::fs::read_dir(d.join("each")).unwrap().collect();
    assert_eq!(pngs.len(), 5);
    let one = image::open(d.join("each/sample-00004.png")).unwrap();
    assert_eq!((one.width(), one.height()), (8, 8));
    let e = fails(d, &["generate", "--model", "u", "--gif", "rev.png"]);
    assert!(e.contains(".gif"), "{e}");
    let e = fails(d, &["train", "--resume", "--out", "u", "--preset", "small", "--steps", "5"]);
    assert!(e.contains("--preset small differs") && e.contains("tiny"), "{e}");

    let e = fails(d, &["train", "--data", "moons", "--model", "unet", "--out", "x"]);
    assert!(e.contains("needs images") && e.contains("MLP"), "{e}");
    let e = fails(d, &["train", "--data", "shapes", "--preset", "small", "--out", "x"]);
    assert!(e.contains("add --model unet"), "{e}");
    let e = fails(d, &["train", "--data", "shapes", "--model", "unet", "--width", "64", "--out", "x"]);
    assert!(e.contains("preset"), "{e}");
    // 10 × 10 images: the tiny preset halves twice, so the sides must be multiples of 4.
    std::fs::create_dir(d.join("pngs")).unwrap();
    for i in 0..12u8 {
        image::RgbImage::from_fn(10, 10, |x, y| image::Rgb([i * 20, (x * 25) as u8, (y * 25) as u8]))
            .save(d.join(format!("pngs/{i}.png")))
            .unwrap();
    }
    // A broken file stops the read, named, with the way to leave such files out.
    std::fs::write(d.join("pngs/zz-broken.png"), b"\x89PNG not really").unwrap();
    let e = fails(d, &["train", "--data", "pngs", "--image-size", "8", "--out", "x"]);
    assert!(e.contains("zz-broken.png") && e.contains("--skip-bad-images"), "{e}");
    let out = succeeds(
        d,
        &["train", "--data", "pngs", "--image-size", "8", "--skip-bad-images", "--steps", "2", "--out", "sk", "-q"],
    );
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(warn.contains("skipped 1 image file") && warn.contains("zz-broken.png"), "{warn}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("sk/config.json")).unwrap()).unwrap();
    assert_eq!(cfg["data"]["train_rows"].as_u64().unwrap() + cfg["data"]["heldout_rows"].as_u64().unwrap(), 12);
    std::fs::remove_file(d.join("pngs/zz-broken.png")).unwrap();
    let e = fails(d, &["train", "--data", "moons", "--skip-bad-images", "--out", "x"]);
    assert!(e.contains("applies to a folder of images"), "{e}");
    let e = fails(d, &["train", "--data", "pngs", "--model", "unet", "--out", "x"]);
    assert!(e.contains("multiples of 4") && e.contains("10 × 10") && e.contains("--image-size"), "{e}");
    succeeds(
        d,
        &[
            "train",
            "--data",
            "pngs",
            "--image-size",
            "8",
            "--model",
            "unet",
            "--steps",
            "2",
            "--batch",
            "4",
            "--out",
            "p",
            "-q",
        ],
    );
    let e = fails(d, &["train", "--data", "shapes", "--model", "unet", "--device", "cuda", "--out", "x"]);
    assert!(e.contains("no CUDA support") && e.contains("cuda-build"), "{e}");
    assert!(!d.join("x").exists());
}
