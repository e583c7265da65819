//! The `.npy` and `.csv` readers: the first byte chooses the format, the rest is the file.
//! Reading may fail with a message; it must never panic or allocate what the file does not hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else { return };
    if kind % 2 == 0 {
        if let Ok(a) = langevin::io::npy_matrix(bytes, Path::new("fuzz.npy")) {
            assert!(a.nrows() > 0 && a.ncols() > 0);
        }
    } else if let Ok(t) = langevin::io::csv_table(bytes, Path::new("fuzz.csv")) {
        assert!(t.data.nrows() > 0);
        if let Some(h) = &t.header {
            assert_eq!(h.len(), t.data.ncols());
        }
    }
});
