//! `sample --shard K/N` and `merge`, as a job array uses them: the merged files equal the
//! single-machine run's, bit for bit, and every bad input is refused by name.

mod common;
use common::{fails, succeeds};
use serde_json::Value;
use std::path::Path;

fn report(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

/// A report without what differs between two runs of the same thing.
fn comparable(mut v: Value) -> Value {
    let m = v.as_object_mut().unwrap();
    for k in ["seconds", "particle_steps_per_second", "threads", "out", "merged_shards", "kinetic_temperature"] {
        m.remove(k);
    }
    v
}

/// 1,001 particles (no shard count divides them) in 3 shards, run on different thread
/// counts, for a sampler of every family; merged in reverse order.
#[test]
fn merged_shards_are_the_single_run_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let cases: &[(&str, &[&str])] = &[
        ("ula", &["--target", "ncsn-toy", "--sampler", "ula", "--steps", "100"]),
        ("mala", &["--target", "gmm40", "--sampler", "mala", "--warmup", "100", "--steps", "100", "--thin", "10"]),
        ("annealed", &["--target", "ncsn-toy", "--sampler", "annealed", "--steps-per-level", "10"]),
        ("baoab", &["--target", "muller-brown", "--sampler", "baoab", "--temperature", "20", "--steps", "200"]),
        ("exact", &["--target", "ncsn-toy", "--sampler", "exact"]),
        ("pc", &["--target", "ncsn-toy", "--sampler", "pc", "--steps", "50"]),
        ("ode", &["--target", "ncsn-toy", "--sampler", "ode"]),
    ];
    for (name, flags) in cases {
        let mut base: Vec<&str> = vec!["sample"];
        base.extend_from_slice(flags);
        base.extend_from_slice(&["--particles", "1001", "--seed", "5", "-q"]);
        let whole = format!("{name}-all.npy");
        let whole_rep = format!("{name}-all.json");
        let mut a = base.clone();
        a.extend_from_slice(&["--out", &whole, "--report", &whole_rep]);
        succeeds(d, &a);
        let mut files = Vec::new();
        let mut reps = Vec::new();
        for k in 0..3 {
            let (f, r, s, th) =
                (format!("{name}-{k}.npy"), format!("{name}-{k}.json"), format!("{k}/3"), format!("{}", 1 + k % 2));
            let mut a = vec!["--threads", th.as_str()];
            a.extend(base.iter().cloned());
            a.extend_from_slice(&["--shard", &s, "--out", &f, "--report", &r]);
            succeeds(d, &a);
            files.push(f);
            reps.push(r);
        }
        let mut m = vec!["merge"];
        m.extend(files.iter().rev().map(|s| s.as_str()));
        m.push("--reports");
        m.extend(reps.iter().rev().map(|s| s.as_str()));
        let merged = format!("{name}-merged.npy");
        let merged_rep = format!("{name}-merged.json");
        m.extend_from_slice(&["--out", &merged, "--report", &merged_rep, "-q"]);
        succeeds(d, &m);
        let one = std::fs::read(d.join(&whole)).unwrap();
        assert_eq!(one, std::fs::read(d.join(&merged)).unwrap(), "{name}: merged samples differ from the single run");
        let (a, b) = (report(d, &whole_rep), report(d, &merged_rep));
        assert_eq!(b["merged_shards"], 3);
        assert_eq!(comparable(a.clone()), comparable(b.clone()), "{name}: merged report differs");
        if let (Some(x), Some(y)) = (a["kinetic_temperature"].as_f64(), b["kinetic_temperature"].as_f64()) {
            assert!((x - y).abs() <= 1e-12 * x.abs(), "{name}: kinetic temperature {x} vs {y}");
        }
        if name != &"mala" {
            // One draw per particle: the shards' files, concatenated, are the whole file's rows.
            let rows: usize = reps.iter().map(|r| report(d, r)["particles"].as_u64().unwrap() as usize).sum();
            assert_eq!(rows, 1001, "{name}");
        }
    }
}

#[test]
fn bad_shards_and_merges_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run = |seed: &str, k: usize, tag: &str| {
        let s = format!("{k}/3");
        succeeds(
            d,
            &[
                "sample",
                "--target",
                "ncsn-toy",
                "--particles",
                "1000",
                "--steps",
                "20",
                "--seed",
                seed,
                "--shard",
                &s,
                "--out",
                &format!("{tag}{k}.npy"),
                "--report",
                &format!("{tag}{k}.json"),
                "-q",
            ],
        );
    };
    for k in 0..3 {
        run("1", k, "s");
    }
    run("2", 1, "o");
    let merge = |files: &[&str], reps: &[&str]| {
        let mut a = vec!["merge"];
        a.extend_from_slice(files);
        a.push("--reports");
        a.extend_from_slice(reps);
        a.extend_from_slice(&["--out", "m.npy"]);
        fails(d, &a)
    };
    assert!(merge(&["s0.npy", "s2.npy"], &["s0.json", "s2.json"]).contains("shard 1 of 3 missing"));
    assert!(merge(&["s0.npy", "o1.npy", "s2.npy"], &["s0.json", "o1.json", "s2.json"]).contains("different runs"));
    assert!(merge(&["s0.npy", "s1.npy"], &["s0.json", "s0.json"]).contains("named by two reports"));
    assert!(merge(&["s0.npy", "s1.npy", "s2.npy"], &["s0.json", "s1.json"]).contains("3 sample files but 2 reports"));
    assert!(
        merge(&["s0.npy", "s1.npy", "o1.npy"], &["s0.json", "s1.json", "s2.json"])
            .contains("not among the files given")
    );
    // A shard file overwritten by another run's, and one cut short.
    std::fs::copy(d.join("o1.npy"), d.join("s1.npy")).unwrap();
    assert!(merge(&["s0.npy", "s1.npy", "s2.npy"], &["s0.json", "s1.json", "s2.json"]).contains("checksum differs"));
    let bytes = std::fs::read(d.join("s2.npy")).unwrap();
    std::fs::write(d.join("s2.npy"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(merge(&["s0.npy", "s2.npy"], &["s0.json", "s2.json"]).contains("truncated"));
    // A report that is not a shard's.
    succeeds(
        d,
        &[
            "sample",
            "--target",
            "ncsn-toy",
            "--particles",
            "100",
            "--steps",
            "5",
            "--out",
            "w.npy",
            "--report",
            "w.json",
            "-q",
        ],
    );
    assert!(merge(&["w.npy"], &["w.json"]).contains("not the report of a shard"));
    assert!(!d.join("m.npy").exists(), "a refused merge wrote its output");
    for (s, msg) in
        [("3/3", "K must be below N"), ("0/0", "K must be below N"), ("x/3", "is not K/N"), ("2", "is not K/N")]
    {
        let e = fails(d, &["sample", "--target", "ncsn-toy", "--shard", s]);
        assert!(e.contains(msg), "--shard {s}: {e}");
    }
    let e = fails(d, &["sample", "--target", "ncsn-toy", "--particles", "100", "--shard", "3/20"]);
    assert!(e.contains("use at most 7 shards"), "{e}");
    let e = fails(d, &["sample", "--target", "ncsn-toy", "--shard", "0/2", "--trajectory", "t.npy"]);
    assert!(e.contains("not recorded in shards"), "{e}");
}
