//! Hostile input and faults, class by class (see docs/FAULTS.md): every refused command exits
//! non-zero with a message that names the cause, leaves no output or temporary file behind, and
//! leaves every input byte for byte as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{langevin, succeeds as ok, write};

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                files.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// Run, expect a clean failure (non-zero, no panic, `needles` in the message), and check that
/// nothing under `dir` changed: no output, no temporary file, every input intact.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let before = snapshot(dir);
    let out = langevin(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "langevin {args:?} should fail but succeeded:\n{err}");
    assert_ne!(out.status.code(), Some(101), "a panic: {err}");
    assert!(!err.contains("panicked"), "a panic instead of an error: {err}");
    for n in needles {
        assert!(err.contains(n), "langevin {args:?}: message lacks '{n}':\n{err}");
    }
    assert_eq!(snapshot(dir), before, "langevin {args:?} changed files although it failed:\n{err}");
    err
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

/// The arguments of a tiny training run (seconds) of `steps` steps into `out`.
fn tiny_args<'a>(out: &'a str, steps: &'a str) -> Vec<&'a str> {
    let mut args = vec!["train", "--data", "moons", "--rows", "300", "--steps", steps, "--width", "16"];
    args.extend(["--depth", "1", "--fourier", "2", "--warmup", "2", "--batch", "32", "--out", out, "--quiet"]);
    args
}

/// A tiny trained run in `d/name`.
fn tiny_run(d: &Path, name: &str, steps: &str) {
    ok(d, &tiny_args(name, steps));
}

// Class 1: a write never replaces what is not a regular file.
#[cfg(unix)]
#[test]
fn outputs_follow_links_write_into_fifos_and_keep_permissions() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sample = ["sample", "--target", "ncsn-toy", "--particles", "50", "--steps", "5", "--quiet"];
    // A FIFO given as --report: the report goes to its reader, the FIFO stays a FIFO.
    let fifo = d.join("report.fifo");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    ok(d, &[&sample[..], &["--report", "report.fifo"]].concat());
    let text = reader.join().unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["command"], "sample");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    // A link given as --out: the link stays, its target gets the samples.
    std::fs::create_dir(d.join("real")).unwrap();
    write(d, "real/x.npy", "old");
    std::os::unix::fs::symlink("real/x.npy", d.join("link.npy")).unwrap();
    ok(d, &[&sample[..], &["--out", "link.npy"]].concat());
    assert!(std::fs::symlink_metadata(d.join("link.npy")).unwrap().file_type().is_symlink());
    assert!(std::fs::read(d.join("real/x.npy")).unwrap().starts_with(b"\x93NUMPY"));
    // A replaced file keeps its permissions.
    std::fs::set_permissions(d.join("real/x.npy"), std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(d, &[&sample[..], &["--out", "real/x.npy", "--seed", "3"]].concat());
    assert_eq!(std::fs::metadata(d.join("real/x.npy")).unwrap().permissions().mode() & 0o777, 0o640);
    // A socket is refused before any work, and stays.
    let _listener = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
    refused(d, &[&sample[..], &["--report", "sock"]].concat(), &["sock", "is a socket"]);
    assert!(std::fs::symlink_metadata(d.join("sock")).unwrap().file_type().is_socket());
}

// Class 2: an output that is also an input (or another output) is refused before any work.
#[test]
fn outputs_that_are_inputs_are_refused_naming_both_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["sample", "--target", "ncsn-toy", "--particles", "100", "--steps", "5", "--out", "s.npy", "--quiet"]);
    let mut csv = String::from("x1,x2,y\n");
    for i in 0..40 {
        csv += &format!("{},{},{}\n", i as f64 * 0.1, (i % 7) as f64, i % 2);
    }
    write(d, "d.csv", &csv);
    refused(d, &["posterior", "--data", "d.csv", "--label", "y", "--out", "d.csv"], &["--out", "--data"]);
    refused(
        d,
        &["eval", "--samples", "s.npy", "--target", "ncsn-toy", "--report", "./s.npy"],
        &["--report", "--samples"],
    );
    refused(
        d,
        &["sample", "--target", "ncsn-toy", "--steps", "5", "--out", "x.npy", "--report", "x.npy"],
        &["--report", "--out", "another output"],
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("s.npy", d.join("alias.npy")).unwrap();
        refused(d, &["eval", "--samples", "s.npy", "--target", "ncsn-toy", "--report", "alias.npy"], &["--samples"]);
    }
    tiny_run(d, "run", "20");
    refused(
        d,
        &["generate", "--model", "run", "--n", "10", "--out", "run/heldout.npy"],
        &["--out", "--model", "heldout.npy"],
    );
}

// Class 3: requests too large for memory fail with a message that says how much and which flag.
#[test]
fn requests_too_large_for_memory_are_errors_not_aborts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused(d, &["sample", "--target", "gaussian:dim=100000,rotate=1", "--steps", "1"], &["GiB", "--dim"]);
    refused(
        d,
        &["sample", "--target", "ncsn-toy", "--particles", "1000000000", "--steps", "1"],
        &["GiB", "--particles"],
    );
    ok(d, &["sample", "--target", "ncsn-toy", "--particles", "60", "--steps", "2", "--out", "s.npy", "--quiet"]);
    refused(
        d,
        &["eval", "--samples", "s.npy", "--target", "ncsn-toy", "--projections", "1000000000000"],
        &["--projections"],
    );
    refused(d, &["analyze", "--target", "ncsn-toy", "--starts", "1000000000"], &["--starts"]);
    // Sizes that would run for ever or spawn without bound are refused too.
    refused(d, &["--threads", "100000", "sample", "--target", "ncsn-toy"], &["--threads 100000", "between 1 and 1024"]);
    refused(
        d,
        &["sample", "--target", "ncsn-toy", "--sampler", "annealed", "--levels", "100000000"],
        &["--levels", "at most 100000"],
    );
    refused(d, &["plot", "density", "--samples", "s.npy", "--bins", "0", "--out", "p.png"], &["--bins 0"]);
    refused(
        d,
        &["sample", "--target", "ncsn-toy", "--init", "point:1e39,0"],
        &["'1e39' is not a finite number in float32's range"],
    );
    // Large dimensions without a d × d matrix run, and the report leaves the covariance out.
    ok(
        d,
        &[
            "sample",
            "--target",
            "many-well:dim=100000",
            "--particles",
            "4",
            "--steps",
            "1",
            "--out",
            "mw.npy",
            "--report",
            "mw.json",
            "--quiet",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("mw.json")).unwrap()).unwrap();
    assert_eq!(v["mean"].as_array().unwrap().len(), 100000);
    assert_eq!(v["covariance"].as_array().unwrap().len(), 0, "no 80 GB covariance");
    // An .npy header that claims 10⁹ rows in a 50-row file.
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 2), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 400]);
    std::fs::write(d.join("lies.npy"), bytes).unwrap();
    refused(d, &["eval", "--samples", "lies.npy", "--target", "ncsn-toy"], &["1000000000 × 2", "truncated"]);
    tiny_run(d, "run", "20");
    refused(d, &["generate", "--model", "run", "--n", "1000000000", "--out", "g.npy"], &["GiB", "--n"]);
}

// Class 4: ordinary I/O failures end the program cleanly.
#[cfg(unix)]
#[test]
fn closed_pipes_full_disks_and_odd_file_names_end_cleanly() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A reader that closes at once: quiet, status 141 (128 + SIGPIPE), as Unix tools do.
    let mut child = Command::new(env!("CARGO_BIN_EXE_langevin"))
        .args(["targets"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(141) || out.status.success(), "{:?} {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    // A full disk on standard output: a message and status 1.
    if Path::new("/dev/full").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_langevin"))
            .args(["targets"])
            .stdout(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("cannot write to standard output"), "{err}");
    }
    // File names that are not UTF-8 are paths like any other.
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.npy");
    let report = std::ffi::OsStr::from_bytes(b"bad\xff.json");
    let out = Command::new(env!("CARGO_BIN_EXE_langevin"))
        .current_dir(d)
        .args(["sample", "--target", "ncsn-toy", "--particles", "20", "--steps", "2", "--quiet", "--out"])
        .arg(name)
        .arg("--report")
        .arg(report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(d.join(name).is_file() && d.join(report).is_file());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join(report)).unwrap()).unwrap();
    assert!(v["out"].as_str().unwrap().starts_with("bad"));
}

// Class 5: a run directory is valid at every instant.
#[test]
fn run_directories_have_no_dead_ends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A creation that died before its config (kill -9, full disk): the directory is simply
    // started again.
    std::fs::create_dir(d.join("half")).unwrap();
    write(d, "half/train.npy", "partial");
    tiny_run(d, "half", "10");
    assert!(d.join("half/checkpoint.safetensors").is_file() && d.join("half/config.json").is_file());
    // A resume with nothing to do changes no byte of the run.
    tiny_run(d, "run", "20");
    let before = snapshot(&d.join("run"));
    ok(d, &["train", "--out", "run", "--resume", "--quiet"]);
    ok(d, &["train", "--out", "run", "--resume", "--steps", "10", "--quiet"]);
    assert_eq!(snapshot(&d.join("run")), before, "a no-op resume rewrote files");
    // Restating unchanged settings is accepted; changing one is refused, naming the saved value.
    ok(d, &["train", "--out", "run", "--resume", "--data", "moons", "--width", "16", "--steps", "25", "--quiet"]);
    refused(d, &["train", "--out", "run", "--resume", "--width", "64", "--steps", "30"], &["--width 64", "saved 16"]);
}

// Class 6: no wrong answer with exit 0 and no warning.
#[test]
fn ill_posed_inputs_are_errors_or_warnings_that_reach_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "log.toml", "kind = \"potential\"\nvariables = [\"x\"]\nenergy = \"-ln(x) + x\"\n");
    refused(
        d,
        &["sample", "--target", "log.toml", "--init", "uniform:-2,2", "--steps", "10"],
        &["not finite where particle", "--init"],
    );
    write(d, "flat.toml", "kind = \"potential\"\nvariables = [\"x\", \"y\"]\nenergy = \"x^2\"\n");
    refused(
        d,
        &["sample", "--target", "flat.toml", "--steps", "10"],
        &["'y' is declared but the energy does not use it"],
    );
    write(d, "neg.toml", "kind = \"gaussian\"\nmean = [0.0]\nstd = -1.0\n");
    refused(d, &["sample", "--target", "neg.toml", "--steps", "10"], &["std 0 = -1 must be positive"]);
    write(d, "negmix.toml", "kind = \"gmm\"\nweights = [0.5, 0.5]\nmeans = [[0.0], [1.0]]\nstds = [1.0, -0.5]\n");
    refused(d, &["sample", "--target", "negmix.toml", "--steps", "10"], &["std 1 = -0.5"]);
    refused(d, &["sample", "--target", "gaussian:dim=2,dim=3", "--steps", "10"], &["dim is given twice"]);
    write(d, "d.csv", "a,b,y\n1,2,0\n2,1,1\n3,5,0\n4,4,1\n");
    refused(d, &["posterior", "--data", "d.csv", "--label", "y", "--features", "a,a"], &["'a' is listed twice"]);
    write(d, "dup.csv", "a,y,y\n1,0,1\n2,1,0\n3,0,1\n");
    refused(d, &["posterior", "--data", "dup.csv", "--label", "y"], &["two columns are named 'y'"]);
    refused(d, &["bench", "--quick", "--repeats", "0"], &["--repeats"]);
    refused(d, &["bench", "--quick", "--only", "unet,nosuch"], &["--only nosuch", "ula, mala", "unet"]);
    refused(d, &["train", "--data", "moons", "--steps", "100", "--warmup", "200", "--out", "w"], &["--warmup"]);
    // --quiet hides progress, never warnings.
    write(d, "w.toml", "kind = \"gmm\"\nweights = [1.0, 1.0]\nmeans = [[0.0], [3.0]]\nstds = [1.0, 1.0]\n");
    let out = ok(d, &["sample", "--target", "w.toml", "--steps", "5", "--particles", "10", "--quiet"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: "), "warning hidden by --quiet");
}

// Class 7: messages name the real cause.
#[test]
fn messages_blame_the_real_cause() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "over.toml", "kind = \"potential\"\nvariables = [\"x\"]\nenergy = \"exp(1000)*x^2\"\n");
    let e = refused(d, &["sample", "--target", "over.toml", "--steps", "10"], &["not finite where particle"]);
    assert!(!e.contains("step size is probably too large"), "{e}");
    write(d, "const.csv", "a,b\n1,5\n2,5\n3,5\n4,5\n5,5\n6,5\n7,5\n8,5\n9,5\n10,5\n11,5\n12,5\n");
    let e = refused(
        d,
        &["train", "--data", "const.csv", "--steps", "50", "--warmup", "5", "--out", "c"],
        &["zero variance in column 2"],
    );
    assert!(!e.contains("sigma-max"), "{e}");
    refused(
        d,
        &["train", "--data", "moons", "--width", "0", "--steps", "50", "--warmup", "5", "--out", "z"],
        &["--width must be at least 1"],
    );
    write(d, "init.toml", "kind = \"gaussian\"\nmean = [0.0]\nstd = 1.0\ninit = \"uniform:3\"\n");
    let e = refused(d, &["sample", "--target", "init.toml", "--steps", "10"], &["init.toml", "'init' entry"]);
    assert!(!e.contains("--init"), "the file's init is not the flag: {e}");
    // A 3-D array where samples are expected.
    let cube = ndarray::Array3::<f32>::zeros((2, 3, 2));
    ndarray_npy::write_npy(d.join("cube.npy"), &cube).unwrap();
    refused(d, &["eval", "--samples", "cube.npy", "--target", "ncsn-toy"], &["the array has 3 dimensions"]);
    // A hand-edited config is blamed, not the checkpoint.
    tiny_run(d, "run", "10");
    let cfg = std::fs::read_to_string(d.join("run/config.json")).unwrap();
    write(d, "run/config.json", &cfg.replace("\"width\": 16", "\"width\": 17"));
    refused(d, &["generate", "--model", "run", "--n", "10"], &["config.json", "does not match the checkpoint"]);
}

// Class 8: one writer per run; every terminating signal saves; the log is always whole.
#[cfg(unix)]
#[test]
fn runs_have_one_writer_and_signals_save_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = |out: &str| {
        let mut args = tiny_args(out, "1000000");
        args.extend(["--log-every", "5"]);
        Command::new(env!("CARGO_BIN_EXE_langevin")).current_dir(d).args(args).stderr(Stdio::piped()).spawn().unwrap()
    };
    let first = long("run");
    let t0 = std::time::Instant::now();
    while !(d.join("run/config.json").is_file() && d.join("run/metrics.jsonl").is_file()) {
        assert!(t0.elapsed().as_secs() < 60, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second writer, new or resuming, is refused and names the holder. (The first one keeps
    // writing, so the directory is not compared here.)
    let holder = format!("pid {}", first.id());
    for (args, why) in [
        (&["train", "--out", "run", "--resume", "--quiet"][..], "is in use"),
        (&["train", "--data", "moons", "--out", "run"][..], "already holds a training run"),
    ] {
        let out = langevin(d, args);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(why) && (why != "is in use" || e.contains(&holder)), "{e}");
    }
    // SIGTERM (a batch scheduler's stop) saves a checkpoint as Ctrl-C does.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(Command::new("kill").args(["-TERM", &first.id().to_string()]).status().unwrap().success());
    let out = first.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("checkpoint written"), "{err}");
    let at: u64 = err.split("interrupted at step ").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    // Records past the checkpoint (written before a crash) and a broken last line (a full disk,
    // kill -9 mid-write) are cut on resume; every line of the log is then whole and in order.
    let log = d.join("run/metrics.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    let first_line = text.lines().next().unwrap().to_string();
    let step_field = first_line.split(',').next().unwrap().to_string();
    text.push_str(&first_line.replacen(&step_field, &format!("{{\"step\":{}", at + 1000), 1));
    text.push('\n');
    text.push_str("{\"step\": 99999999, \"loss\": 1.0, \"level_lo");
    std::fs::write(&log, text).unwrap();
    let until = (at + 20).to_string();
    ok(d, &["train", "--out", "run", "--resume", "--steps", &until, "--quiet"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let steps: Vec<u64> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "log out of order: {steps:?}");
    assert_eq!(*steps.last().unwrap(), at + 20);
    assert!(!steps.contains(&(at + 1000)), "the record past the checkpoint was kept");
}
