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

/// The most bytes an input file may have: a tenth of the memory available (a parsed CSV takes
/// up to eight times its text, an `.npy` file its own size once more).
fn input_limit() -> u64 {
    crate::mem::available() / 10
}

/// A reader that fails once it has given more than `limit` bytes: a file that never ends (a
/// FIFO, `/dev/zero`) or one far larger than memory ends with a message, not an abort.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a file of exactly `limit` bytes from a longer one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(TooLarge(self.limit))),
            };
        }
        let cap = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..cap])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the file is larger than {}, a tenth of the memory available (or never ends); use a smaller file",
            crate::mem::human(self.0 as u128)
        )
    }
}

impl std::error::Error for TooLarge {}

fn bounded(path: &Path) -> Result<Bounded<std::fs::File>> {
    let limit = input_limit();
    let file = open(path)?;
    if let Ok(m) = file.metadata() {
        if m.is_dir() {
            return Err(Error::file(path, "is a directory; give a file"));
        }
        if m.is_file() && m.len() > limit {
            return Err(Error::file(path, TooLarge(limit).to_string()));
        }
    }
    Ok(Bounded { inner: file, left: limit, limit })
}

/// The whole of an input file, bounded by [`input_limit`].
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    bounded(path)?.read_to_end(&mut bytes).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    Ok(bytes)
}

/// The header of an `.npy` file: element type, layout and shape.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    descr: String,
    shape: Vec<usize>,
}

/// Parse and check an `.npy` header against the bytes that follow it: the element type must be
/// float32 or float64, the shape must have one of `ndims` dimensions, and the data must be
/// exactly as long as the shape says (a header that claims 10⁹ rows in a 50-row file is caught
/// here, before anything is allocated).
fn npy_header(bytes: &[u8], ndims: &[usize], expected: &str) -> std::result::Result<NpyHeader, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (it does not start with the NPY magic string)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let end =
        start.checked_add(len).filter(|&e| e <= bytes.len()).ok_or("the .npy header is cut off (truncated file)")?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| "the .npy header is not text")?;
    let value_of = |key: &str| -> std::result::Result<&str, String> {
        let at = text.find(&format!("'{key}'")).ok_or(format!("the .npy header has no '{key}'"))?;
        let rest = text[at + key.len() + 2..].trim_start();
        Ok(rest.strip_prefix(':').ok_or(format!("the .npy header's '{key}' has no value"))?.trim_start())
    };
    let descr_field = value_of("descr")?;
    let descr = descr_field
        .strip_prefix('\'')
        .and_then(|r| r.split('\'').next())
        .ok_or("the .npy header's 'descr' is not a string")?
        .to_string();
    value_of("fortran_order")?;
    let shape_field = value_of("shape")?;
    let inner = shape_field
        .strip_prefix('(')
        .and_then(|r| r.split(')').next())
        .ok_or("the .npy header's 'shape' is not a tuple")?;
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse::<usize>().map_err(|_| format!("the .npy shape has a bad size '{p}'")))
        .collect::<std::result::Result<_, _>>()?;
    let item = match descr.as_str() {
        "<f4" | ">f4" | "=f4" => 4,
        "<f8" | ">f8" | "=f8" => 8,
        other => return Err(format!("the array holds '{other}' values; float32 ('<f4') or float64 ('<f8') expected")),
    };
    if !ndims.contains(&shape.len()) {
        return Err(format!("the array has {} dimensions, {expected} expected", shape.len()));
    }
    let want = crate::mem::product(&shape).saturating_mul(item);
    let have = (bytes.len() - end) as u128;
    if want != have {
        let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
        return Err(format!(
            "the header describes {} values of {item} bytes ({}) but the file holds {have} bytes after its header: \
             the file is truncated or its header is wrong",
            dims.join(" × "),
            crate::mem::human(want)
        ));
    }
    Ok(NpyHeader { descr, shape })
}

fn read_npy(path: &Path) -> Result<Array2<f64>> {
    let bytes = read_bounded(path)?;
    npy_matrix(&bytes, path)
}

/// An N × d matrix from the bytes of an `.npy` file (float32 or float64, 1-D or 2-D); `path`
/// names it in messages. The header is checked against the data before anything is allocated.
pub fn npy_matrix(bytes: &[u8], path: &Path) -> Result<Array2<f64>> {
    let h = npy_header(bytes, &[1, 2], "1 or 2 (one sample per row)").map_err(|m| Error::file(path, m))?;
    let f32s = h.descr.ends_with('4');
    let parsed = match (h.shape.len(), f32s) {
        (2, true) => ndarray::Array::<f32, Ix2>::read_npy(bytes).map(|a| a.mapv(|v| v as f64)),
        (2, false) => ndarray::Array::<f64, Ix2>::read_npy(bytes),
        (_, true) => ndarray::Array::<f32, Ix1>::read_npy(bytes).map(|a| {
            let n = a.len();
            a.mapv(|v| v as f64).into_shape_with_order((n, 1)).expect("1-D to column")
        }),
        (_, false) => ndarray::Array::<f64, Ix1>::read_npy(bytes).map(|a| {
            let n = a.len();
            a.into_shape_with_order((n, 1)).expect("1-D to column")
        }),
    };
    let a = parsed.map_err(|e| Error::file(path, format!("not a readable .npy array ({e})")))?;
    if a.is_empty() {
        return Err(Error::file(
            path,
            format!("the array is empty ({} × {}); expected one sample per row", a.nrows(), a.ncols()),
        ));
    }
    Ok(a)
}

fn read_csv(path: &Path) -> Result<Table> {
    csv_table(bounded(path)?, path)
}

/// A table from CSV text (an optional header row of names, then numbers); `path` names it in
/// messages.
pub fn csv_table(file: impl std::io::Read, path: &Path) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(file);
    let mut header: Option<Vec<String>> = None;
    let mut values: Vec<f64> = Vec::new();
    let mut width: Option<usize> = None;
    let mut rows = 0usize;
    for (line, rec) in rdr.records().enumerate() {
        let line = line + 1;
        let rec = rec.map_err(|e| match e.kind() {
            csv::ErrorKind::Io(io) => Error::file(path, format!("cannot read: {io}")),
            _ => Error::file(path, format!("line {line}: not valid CSV ({e})")),
        })?;
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

/// What a path is, for telling whether two paths are one file: device and inode for a file that
/// exists (after links), the resolved location for one that a write will create.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identity {
    #[cfg_attr(not(unix), allow(dead_code))]
    Inode(u64, u64),
    Planned(PathBuf),
}

fn identity(path: &Path) -> Option<Identity> {
    if path.as_os_str() == "-" {
        return None;
    }
    let real = resolve_links(path).ok()?;
    match std::fs::metadata(&real) {
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::{FileTypeExt, MetadataExt};
            let ft = m.file_type();
            // Streams (a terminal, a pipe, /dev/null) may be named by several outputs.
            if ft.is_char_device() || ft.is_fifo() {
                return None;
            }
            Some(Identity::Inode(m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        Ok(_) => std::fs::canonicalize(&real).ok().map(Identity::Planned),
        Err(_) => {
            let dir = std::fs::canonicalize(parent_dir(&real)).ok()?;
            Some(Identity::Planned(dir.join(real.file_name()?)))
        }
    }
}

/// Refuse, before any work, outputs that would destroy an input or each other: any output that
/// is the same file as an input (an input directory counts with every file in it, as a trained
/// run does), or as another output. Paths are compared by device and inode after links, never
/// by spelling. Each pair is `(field, path)`; the message names both fields.
pub fn check_distinct(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<()> {
    let mut known: Vec<(String, Identity)> = Vec::new();
    for (field, path) in inputs {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| Error::file(*path, format!("cannot list: {e}")))?;
            for entry in entries.flatten() {
                if let Some(id) = identity(&entry.path()) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    known.push((format!("`{field}` (its file {name})"), id));
                }
            }
        } else if let Some(id) = identity(path) {
            known.push((format!("`{field}`"), id));
        }
    }
    let n_inputs = known.len();
    for (field, path) in outputs {
        let Some(id) = identity(path) else { continue };
        if let Some(i) = known.iter().position(|(_, k)| *k == id) {
            let (other, _) = &known[i];
            let what = if i < n_inputs { "an input" } else { "another output" };
            return Err(Error::file(
                *path,
                format!(
                    "`{field}` is the same file as {other}, {what}; writing it would destroy that file; \
                     give `{field}` a different path"
                ),
            ));
        }
        known.push((format!("`{field}`"), id));
    }
    Ok(())
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
    let kept_mode = {
        use std::os::unix::fs::PermissionsExt;
        let kept = match kind {
            OutputKind::File => std::fs::metadata(&real).ok().map(|m| m.permissions().mode() & 0o7777),
            _ => None,
        };
        builder.permissions(std::fs::Permissions::from_mode(kept.unwrap_or(0o666)));
        kept
    };
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
    if let Some(mode) = kept_mode {
        // `tempfile` applies the mode through the umask; set it exactly as the old file had it.
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode));
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
    let bytes = read_bounded(path)?;
    let h = npy_header(&bytes, &[3], "3 (frames × particles × d; write one with `trajectory` of a sampling run)")
        .map_err(|m| Error::file(path, m))?;
    let parsed = if h.descr.ends_with('4') {
        ndarray::Array::<f32, ndarray::Ix3>::read_npy(&bytes[..])
    } else {
        ndarray::Array::<f64, ndarray::Ix3>::read_npy(&bytes[..]).map(|a| a.mapv(|v| v as f32))
    };
    parsed.map_err(|e| Error::file(path, format!("not a readable .npy array ({e})")))
}

/// Write a T × N × d trajectory as `.npy` (float32).
pub fn write_trajectory(path: &Path, a: ArrayView3<f32>) -> Result<()> {
    if extension(path) != "npy" {
        return Err(Error::file(path, "trajectories are 3-D arrays (frames × particles × d); give a .npy path"));
    }
    write_atomic(path, |w| a.as_standard_layout().write_npy(w).map_err(std::io::Error::other))
}

/// Write a JSON value (pretty-printed) atomically.
/// FNV-1a (64-bit) of a byte stream: a cheap fingerprint, not a cryptographic hash.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// FNV-1a over the little-endian bytes of `x`'s values, as 16 hex digits: names a sample
/// file's contents (shard reports) or a set of positions (the playground's tests).
pub fn checksum(x: ndarray::ArrayView2<f32>) -> String {
    format!("{:016x}", fnv1a(x.iter().flat_map(|v| v.to_bits().to_le_bytes())))
}

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
        assert!(e.contains("not an .npy file"), "{e}");
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

    #[cfg(unix)]
    #[test]
    fn outputs_that_are_inputs_or_each_other_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let data = d.join("d.csv");
        std::fs::write(&data, "1,2\n").unwrap();
        let run = d.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("heldout.npy"), "x").unwrap();
        let link = d.join("alias.csv");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        let hard = d.join("hard.csv");
        std::fs::hard_link(&data, &hard).unwrap();
        let ok = |i: &[(&str, &Path)], o: &[(&str, &Path)]| check_distinct(i, o);
        let err = |i: &[(&str, &Path)], o: &[(&str, &Path)]| check_distinct(i, o).unwrap_err().to_string();
        // The same spelling, a link, a hard link and a different spelling of the directory.
        let e = err(&[("data", &data)], &[("out", &data)]);
        assert!(e.contains("`out` is the same file as `data`, an input"), "{e}");
        let e = err(&[("data", &data)], &[("out", &link)]);
        assert!(e.contains("`data`"), "{e}");
        let e = err(&[("data", &data)], &[("report", &hard)]);
        assert!(e.contains("`report` is the same file as `data`"), "{e}");
        let dotted = d.join("run/../d.csv");
        assert!(check_distinct(&[("data", &data)], &[("out", &dotted)]).is_err());
        // A file inside an input directory.
        let e = err(&[("model", &run)], &[("out", &run.join("heldout.npy"))]);
        assert!(e.contains("`model` (its file heldout.npy)"), "{e}");
        // Two outputs with one (new) path.
        let e = err(&[], &[("out", &d.join("x.npy")), ("report", &d.join("./x.npy"))]);
        assert!(e.contains("`report` is the same file as `out`, another output"), "{e}");
        // Distinct paths, stdout and streams are fine.
        ok(&[("data", &data)], &[("out", &d.join("x.npy")), ("report", Path::new("-"))]).unwrap();
        let fifo = d.join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        ok(&[], &[("out", &fifo), ("report", &fifo)]).unwrap();
    }

    /// An `.npy` file with a hand-written header `dict` followed by `data`.
    fn npy_bytes(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(header.len() as u16).to_le_bytes());
        b.extend_from_slice(header.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn npy_headers_are_checked_against_the_file_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let data = vec![0u8; 50 * 2 * 4];
        // A well-formed file by hand reads (so the checks below fail for their own reasons).
        let ok = write("ok.npy", &npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (50, 2), }", &data));
        assert_eq!(read_matrix(&ok).unwrap().dim(), (50, 2));
        // A header that claims 10⁹ rows in a 50-row file.
        let huge = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 2), }", &data);
        let e = read_matrix(&write("huge.npy", &huge)).unwrap_err().to_string();
        assert!(e.contains("1000000000 × 2 values") && e.contains("truncated"), "{e}");
        // Truncated data, three dimensions, integers, garbage.
        let short = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (50, 2), }", &data[..101]);
        let e = read_matrix(&write("short.npy", &short)).unwrap_err().to_string();
        assert!(e.contains("holds 101 bytes after its header"), "{e}");
        let cube = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (5, 5, 4), }", &data);
        let e = read_matrix(&write("cube.npy", &cube)).unwrap_err().to_string();
        assert!(e.contains("the array has 3 dimensions, 1 or 2"), "{e}");
        assert_eq!(read_trajectory(&dir.path().join("cube.npy")).unwrap().dim(), (5, 5, 4));
        let e = read_trajectory(&ok).unwrap_err().to_string();
        assert!(e.contains("the array has 2 dimensions, 3 (frames"), "{e}");
        let ints = npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (50,), }", &data[..400]);
        let e = read_matrix(&write("ints.npy", &ints)).unwrap_err().to_string();
        assert!(e.contains("holds '<i8' values"), "{e}");
        let e = read_matrix(&write("cut.npy", &ok_bytes_prefix())).unwrap_err().to_string();
        assert!(e.contains("cut off"), "{e}");
    }

    fn ok_bytes_prefix() -> Vec<u8> {
        npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", &[0; 4])[..20].to_vec()
    }

    #[test]
    fn inputs_are_read_with_a_bound() {
        use std::io::Read;
        let read = |text: &'static [u8], limit: u64| {
            let mut out = Vec::new();
            Bounded { inner: text, left: limit, limit }.read_to_end(&mut out).map(|_| out)
        };
        assert_eq!(read(b"12345", 5).unwrap(), b"12345", "exactly the limit is fine");
        let e = read(b"123456", 5).unwrap_err().to_string();
        assert!(e.contains("larger than 5 bytes"), "{e}");
    }
}
