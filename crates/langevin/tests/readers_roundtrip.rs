//! Property tests of the readers: whatever `write_matrix` writes, `read_matrix` reads back bit
//! for bit, in both formats; and arbitrary bytes given to the parsers end in `Ok` or `Err`,
//! never a panic.

use langevin::io::{csv_table, npy_matrix, read_matrix, write_matrix};
use ndarray::Array2;
use proptest::prelude::*;
use std::path::Path;

fn matrices() -> impl Strategy<Value = Array2<f32>> {
    (1usize..40, 1usize..6).prop_flat_map(|(n, d)| {
        proptest::collection::vec(
            prop_oneof![
                any::<f32>().prop_filter("finite", |v| v.is_finite()),
                Just(0.0f32),
                Just(-0.0f32),
                Just(f32::MIN_POSITIVE),
                Just(f32::MAX),
            ],
            n * d,
        )
        .prop_map(move |v| Array2::from_shape_vec((n, d), v).unwrap())
    })
}

proptest! {
    // A fixed seed: the same 200 cases on every run, so the test never flakes; no regression
    // files are written.
    #![proptest_config(ProptestConfig {
        cases: 200,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_f00d),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn written_matrices_read_back_bit_for_bit(a in matrices()) {
        let dir = tempfile::tempdir().unwrap();
        let header: Vec<String> = (0..a.ncols()).map(|c| format!("x{c}")).collect();
        for name in ["m.npy", "m.csv"] {
            let p = dir.path().join(name);
            write_matrix(&p, a.view(), &header).unwrap();
            let b = read_matrix(&p).unwrap();
            prop_assert_eq!(b.dim(), a.dim());
            for (x, y) in a.iter().zip(b.iter()) {
                prop_assert_eq!(x.to_bits(), y.to_bits(), "{} read back as {} from {}", x, y, name);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = npy_matrix(&bytes, Path::new("x.npy"));
        let _ = csv_table(&bytes[..], Path::new("x.csv"));
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&bytes);
        let _ = npy_matrix(&npy, Path::new("x.npy"));
    }
}
