//! Reading and writing sample sets and tables: `.npy` (float32 or float64) and `.csv`.
//!
//! Every write goes to a temporary file in the destination directory that is renamed into place
//! when complete, so an interrupted or failed run never leaves a half-written file behind.

use crate::error::{Error, Result};
use ndarray::{Array2, ArrayView2, ArrayView3, Ix1, Ix2};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A numeric table, with the column names when the file has a header.
#[derive(Clone, Debug)]
pub struct Table {
    /// Column names from the CSV header, if there is one.
    pub header: Option<Vec<String>>,
    /// The values, one row per record.
    pub data: Array2<f64>,
}

fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase()
}

/// Read a table from `.npy` (1-D or 2-D, float32 or float64) or `.csv` (an optional header row
/// of names, then numbers). Errors name the row and column of a malformed cell.
pub fn read_table(path: &Path) -> Result<Table> {
    match extension(path).as_str() {
        "npy" => read_npy(path).map(|data| Table { header: None, data }),
        "csv" => read_csv(path),
        other => {
            Err(Error::file(path, format!("unsupported file type '.{other}'; use .npy or .csv (one sample per row)")))
        }
    }
}

/// Read an N × d matrix of `f32` (see [`read_table`]).
pub fn read_matrix(path: &Path) -> Result<Array2<f32>> {
    Ok(read_table(path)?.data.mapv(|v| v as f32))
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|e| {
        Error::file(
            path,
            match e.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_string(),
                _ => format!("cannot open: {e}"),
            },
        )
    })
}

fn read_npy(path: &Path) -> Result<Array2<f64>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::file(
            path,
            if e.kind() == std::io::ErrorKind::NotFound { "file not found".into() } else { e.to_string() },
        )
    })?;
    if let Ok(a) = ndarray::Array::<f32, Ix2>::read_npy(&bytes[..]) {
        return Ok(a.mapv(|v| v as f64));
    }
    if let Ok(a) = ndarray::Array::<f64, Ix2>::read_npy(&bytes[..]) {
        return Ok(a);
    }
    if let Ok(a) = ndarray::Array::<f32, Ix1>::read_npy(&bytes[..]) {
        let n = a.len();
        return Ok(a.mapv(|v| v as f64).into_shape_with_order((n, 1)).expect("1-D to column"));
    }
    match ndarray::Array::<f64, Ix1>::read_npy(&bytes[..]) {
        Ok(a) => {
            let n = a.len();
            Ok(a.into_shape_with_order((n, 1)).expect("1-D to column"))
        }
        Err(e) => {
            Err(Error::file(path, format!("not a readable .npy array of float32/float64 with 1 or 2 dimensions ({e})")))
        }
    }
}

fn read_csv(path: &Path) -> Result<Table> {
    let file = open(path)?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(file);
    let mut header: Option<Vec<String>> = None;
    let mut values: Vec<f64> = Vec::new();
    let mut width: Option<usize> = None;
    let mut rows = 0usize;
    for (line, rec) in rdr.records().enumerate() {
        let line = line + 1;
        let rec = rec.map_err(|e| Error::file(path, format!("line {line}: not valid CSV ({e})")))?;
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        // A first row of names only is a header; a first row mixing names and numbers is an
        // error reported below, at the first cell that is not a number.
        if line == 1 && rec.iter().all(|f| f.parse::<f64>().is_err()) {
            header = Some(rec.iter().map(String::from).collect());
            width = Some(rec.len());
            continue;
        }
        let w = *width.get_or_insert(rec.len());
        if rec.len() != w {
            return Err(Error::file(
                path,
                format!(
                    "line {line} has {} fields but the first row has {w}; every row needs the same number of columns",
                    rec.len()
                ),
            ));
        }
        for (c, field) in rec.iter().enumerate() {
            let v = field.parse::<f64>().map_err(|_| {
                let col = match &header {
                    Some(h) => format!("column {} ('{}')", c + 1, h[c]),
                    None => format!("column {}", c + 1),
                };
                let what = if field.is_empty() { "is empty".to_string() } else { format!("'{field}' is not a number") };
                Error::file(path, format!("line {line}, {col}: {what}"))
            })?;
            values.push(v);
        }
        rows += 1;
    }
    let Some(w) = width else {
        return Err(Error::file(path, "the file is empty; expected one sample per row"));
    };
    if rows == 0 {
        return Err(Error::file(path, "the file has a header but no data rows"));
    }
    let data = Array2::from_shape_vec((rows, w), values).expect("rows × width values");
    Ok(Table { header, data })
}

/// The first non-finite entry (row, column) of `a`, if any.
pub fn first_non_finite<T: Copy + Into<f64>>(a: ArrayView2<T>) -> Option<(usize, usize)> {
    for (i, row) in a.outer_iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            if !(*v).into().is_finite() {
                return Some((i, j));
            }
        }
    }
    None
}

/// What is at an output path, after following symbolic links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// Nothing yet: a new file is created (atomically).
    New,
    /// A regular file: it is replaced atomically, keeping its permissions.
    File,
    /// A character device or a FIFO (a pipe): written straight into, never replaced.
    Stream,
}

/// Follow symbolic links from `path` to the path that a write really lands on (which need not
/// exist yet: a dangling link names the file it will create). Loops are errors.
pub fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|e| Error::file(path, format!("cannot read the link: {e}")))?;
                p = if to.is_absolute() { to } else { parent_dir(&p).join(to) };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::file(path, "too many levels of symbolic links (a loop?); give a plain file name"))
}

/// Classify the output `path` (after links): a new file, a regular file, or a stream (character
/// device, FIFO). Directories, block devices and sockets are refused, naming what they are.
pub fn output_kind(path: &Path) -> Result<(PathBuf, OutputKind)> {
    let real = resolve_links(path)?;
    let meta = match std::fs::metadata(&real) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((real, OutputKind::New)),
        Err(e) => return Err(Error::file(path, format!("cannot inspect the output path: {e}"))),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok((real, OutputKind::File));
    }
    if ft.is_dir() {
        return Err(Error::file(path, "is a directory; give a file name"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_char_device() || ft.is_fifo() {
            return Ok((real, OutputKind::Stream));
        }
        let what = if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(Error::file(path, format!("is {what}; refusing to write over it; give a file name")));
    }
    #[allow(unreachable_code)]
    Err(Error::file(path, "is not a regular file; give a file name"))
}

/// Check that `path` can be written: its directory exists and accepts a new file (or the path
/// is a writable stream such as a pipe). Called before long runs so a typo in an output path
/// fails at once, not after the work is done.
pub fn check_writable(path: &Path) -> Result<()> {
    let (real, kind) = output_kind(path)?;
    if kind == OutputKind::Stream {
        // Opening a FIFO would wait for a reader; a failing device (a full disk) reports
        // itself when written.
        return Ok(());
    }
    let dir = parent_dir(&real);
    if !dir.is_dir() {
        return Err(Error::file(path, format!("cannot write: directory '{}' does not exist", dir.display())));
    }
    tempfile::NamedTempFile::new_in(&dir)
        .map(drop)
        .map_err(|e| Error::file(path, format!("cannot write in '{}': {e}", dir.display())))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `path` atomically: `fill` writes into a temporary file beside the destination that
/// replaces it only when everything succeeded. A symbolic link is followed (its target is
/// replaced, the link stays); a replaced file keeps its permissions; a character device or FIFO
/// is written straight into, never replaced; anything else that is not a regular file is
/// refused.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let (real, kind) = output_kind(path)?;
    if kind == OutputKind::Stream {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&real)
            .map_err(|e| Error::file(path, format!("cannot open for writing: {e}")))?;
        let mut w = BufWriter::new(file);
        fill(&mut w).map_err(|e| Error::file(path, format!("write failed: {e}")))?;
        return w.flush().map_err(|e| Error::file(path, format!("write failed: {e}")));
    }
    let dir = parent_dir(&real);
    let mut builder = tempfile::Builder::new();
    // Temporary files are private (0600) by default; the finished file gets the permissions of
    // the file it replaces, or the usual 0666 minus the umask for a new one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match kind {
            OutputKind::File => std::fs::metadata(&real).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o666),
            _ => 0o666,
        };
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let tmp = builder
        .prefix(".langevin-")
        .tempfile_in(&dir)
        .map_err(|e| Error::file(path, format!("cannot write in '{}': {e}", dir.display())))?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w).map_err(|e| Error::file(path, format!("write failed: {e}")))?;
        w.flush().map_err(|e| Error::file(path, format!("write failed: {e}")))?;
    }
    #[cfg(unix)]
    if kind == OutputKind::File {
        // `tempfile` applies the mode through the umask; set it exactly as the old file had it.
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&real) {
            let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(m.permissions().mode() & 0o7777));
        }
    }
    tmp.as_file().sync_all().map_err(|e| Error::file(path, format!("write failed: {e}")))?;
    tmp.persist(&real)
        .map_err(|e| Error::file(path, format!("cannot move the finished file into place: {}", e.error)))?;
    Ok(())
}

/// Write an N × d matrix as `.npy` (float32) or `.csv` (with `header` as the first row),
/// chosen by the extension.
pub fn write_matrix(path: &Path, a: ArrayView2<f32>, header: &[String]) -> Result<()> {
    match extension(path).as_str() {
        "npy" => write_atomic(path, |w| a.as_standard_layout().write_npy(w).map_err(std::io::Error::other)),
        "csv" => write_atomic(path, |w| {
            writeln!(w, "{}", header.join(","))?;
            for row in a.outer_iter() {
                let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
                writeln!(w, "{}", line.join(","))?;
            }
            Ok(())
        }),
        other => Err(Error::file(path, format!("unsupported output type '.{other}'; use .npy or .csv"))),
    }
}

/// Read a frames × particles × d trajectory (`.npy`, float32 or float64), as written by
/// `sample --trajectory`.
pub fn read_trajectory(path: &Path) -> Result<ndarray::Array3<f32>> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::file(
            path,
            if e.kind() == std::io::ErrorKind::NotFound { "file not found".into() } else { e.to_string() },
        )
    })?;
    if let Ok(a) = ndarray::Array::<f32, ndarray::Ix3>::read_npy(&bytes[..]) {
        return Ok(a);
    }
    match ndarray::Array::<f64, ndarray::Ix3>::read_npy(&bytes[..]) {
        Ok(a) => Ok(a.mapv(|v| v as f32)),
        Err(_) => Err(Error::file(
            path,
            "not a 3-D .npy array (frames × particles × d); write one with `langevin sample --trajectory FILE.npy`",
        )),
    }
}

/// Write a T × N × d trajectory as `.npy` (float32).
pub fn write_trajectory(path: &Path, a: ArrayView3<f32>) -> Result<()> {
    if extension(path) != "npy" {
        return Err(Error::file(path, "trajectories are 3-D arrays (frames × particles × d); give a .npy path"));
    }
    write_atomic(path, |w| a.as_standard_layout().write_npy(w).map_err(std::io::Error::other))
}

/// Write a JSON value (pretty-printed) atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, value).map_err(std::io::Error::other)?;
        writeln!(w)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn npy_and_csv_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let a = array![[1.5f32, -2.0], [3.25, 4.0e-3], [5.0, 6.0]];
        for name in ["a.npy", "a.csv"] {
            let p = dir.path().join(name);
            write_matrix(&p, a.view(), &["x".into(), "y".into()]).unwrap();
            assert_eq!(read_matrix(&p).unwrap(), a);
        }
        let t = read_table(&dir.path().join("a.csv")).unwrap();
        assert_eq!(t.header, Some(vec!["x".to_string(), "y".to_string()]));
        // float64 and 1-D .npy files are accepted too.
        let p = dir.path().join("b.npy");
        ndarray_npy::write_npy(&p, &array![1.0f64, 2.0, 3.0]).unwrap();
        assert_eq!(read_matrix(&p).unwrap(), array![[1.0f32], [2.0], [3.0]]);
    }

    #[test]
    fn malformed_files_name_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let e = read_matrix(&write("r.csv", "a,b\n1,2\n3\n")).unwrap_err().to_string();
        assert!(e.contains("line 3 has 1 fields"), "{e}");
        let e = read_matrix(&write("n.csv", "a,b\n1,2\n3,x\n")).unwrap_err().to_string();
        assert!(e.contains("line 3, column 2 ('b'): 'x' is not a number"), "{e}");
        let e = read_matrix(&write("e.csv", "")).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = read_matrix(&write("h.csv", "a,b\n")).unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
        let e = read_matrix(&write("bad.npy", "not an npy file")).unwrap_err().to_string();
        assert!(e.contains("not a readable .npy"), "{e}");
        let e = read_matrix(&write("x.txt", "1")).unwrap_err().to_string();
        assert!(e.contains("use .npy or .csv"), "{e}");
        let e = read_matrix(&dir.path().join("missing.csv")).unwrap_err().to_string();
        assert!(e.contains("file not found"), "{e}");
        let nan = read_matrix(&write("nan.csv", "1,2\n3,nan\n")).unwrap();
        assert_eq!(first_non_finite(nan.view()), Some((1, 1)));
    }

    #[cfg(unix)]
    #[test]
    fn written_files_get_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        write_matrix(&p, array![[1.0f32]].view(), &["a".into()]).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_ne!(mode, 0o600, "not left private like a temporary file");
        assert_eq!(mode & 0o600, 0o600);
    }

    #[test]
    fn failed_writes_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.npy");
        let r = write_atomic(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("simulated failure"))
        });
        assert!(r.is_err());
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary file left");
        let e = check_writable(&dir.path().join("no/such/dir/x.npy")).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(check_writable(dir.path()).unwrap_err().to_string().contains("is a directory"));
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed_streams_written_into_and_permissions_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ok = |w: &mut dyn Write| w.write_all(b"new");
        // A replaced file keeps its (unusual) permissions.
        let f = d.join("f.txt");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&f, ok).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777, 0o640);
        // A link stays a link; its target gets the content. A dangling link creates its target.
        let target = d.join("target.txt");
        std::fs::write(&target, "old").unwrap();
        let link = d.join("link.txt");
        std::os::unix::fs::symlink("target.txt", &link).unwrap();
        write_atomic(&link, ok).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let dangling = d.join("dangling.txt");
        std::os::unix::fs::symlink(d.join("created.txt"), &dangling).unwrap();
        write_atomic(&dangling, ok).unwrap();
        assert_eq!(std::fs::read(d.join("created.txt")).unwrap(), b"new");
        // A link loop is an error, not a hang.
        std::os::unix::fs::symlink("loop2", d.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", d.join("loop2")).unwrap();
        let e = write_atomic(&d.join("loop1"), ok).unwrap_err().to_string();
        assert!(e.contains("symbolic links"), "{e}");
        // A FIFO is written into (a reader gets the bytes) and stays a FIFO.
        let fifo = d.join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        check_writable(&fifo).unwrap();
        write_atomic(&fifo, ok).unwrap();
        assert_eq!(reader.join().unwrap(), b"new");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        // A socket and a directory are refused and left alone.
        let sock = d.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = write_atomic(&sock, ok).unwrap_err().to_string();
        assert!(e.contains("is a socket"), "{e}");
        assert!(std::fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
        let e = write_atomic(d, ok).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        // No temporary file is left anywhere.
        let names: Vec<String> =
            std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.starts_with(".langevin-") && !n.starts_with(".tmp")), "{names:?}");
    }
}
