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

/// Check that `path` can be written: its directory exists and accepts a new file. Called before
/// long runs so a typo in an output path fails at once, not after the work is done.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::file(path, "is a directory; give a file name"));
    }
    let dir = parent_dir(path);
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

/// Write `path` atomically: `fill` writes into a temporary file that replaces `path` only when
/// everything succeeded.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    // Temporary files are private (0600) by default; the finished file should get the usual
    // permissions, 0666 minus the umask, like any file the user creates.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(&dir)
        .map_err(|e| Error::file(path, format!("cannot write in '{}': {e}", dir.display())))?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w).map_err(|e| Error::file(path, format!("write failed: {e}")))?;
        w.flush().map_err(|e| Error::file(path, format!("write failed: {e}")))?;
    }
    tmp.as_file().sync_all().map_err(|e| Error::file(path, format!("write failed: {e}")))?;
    tmp.persist(path)
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
}
