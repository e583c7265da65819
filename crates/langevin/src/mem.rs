//! Memory checked before it is allocated. A request too large for the machine (a million
//! dimensions with a d × d covariance, 10⁹ particles, an `.npy` header that claims more rows than
//! its file holds) fails with a message that says how much it needs, how much there is, and
//! which setting lowers it, instead of aborting in the allocator.

use crate::error::{Error, Result};

/// Bytes that this process may still allocate: the smaller of the system's available memory
/// (`MemAvailable` in `/proc/meminfo`) and the room left under a cgroup limit, when there is
/// one. Machines that tell nothing are assumed to have 64 GiB.
pub fn available() -> u64 {
    let mut avail = meminfo_available().unwrap_or(64 << 30);
    if let Some(room) = cgroup_room() {
        avail = avail.min(room);
    }
    avail
}

fn meminfo_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn cgroup_room() -> Option<u64> {
    let read = |p: &str| std::fs::read_to_string(p).ok().and_then(|s| s.trim().parse::<u64>().ok());
    let max = read("/sys/fs/cgroup/memory.max")?;
    let current = read("/sys/fs/cgroup/memory.current").unwrap_or(0);
    Some(max.saturating_sub(current))
}

/// A byte count for people: "1.5 GiB", "80.0 GiB", "12.0 MiB".
pub fn human(bytes: u128) -> String {
    let b = bytes as f64;
    if b >= (1u64 << 30) as f64 {
        format!("{:.1} GiB", b / (1u64 << 30) as f64)
    } else if b >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// Fail unless `bytes` fit in the memory available, leaving a tenth of it free. `what` says
/// what needs the memory ("10000 particles × 100000 dimensions"), `field` which setting lowers
/// it; the message names both.
pub fn check(bytes: u128, what: impl std::fmt::Display, field: &'static str) -> Result<()> {
    let avail = available();
    if bytes > (avail as u128) / 10 * 9 {
        return Err(Error::Invalid {
            field: Some(field),
            message: format!(
                "{what} needs about {} of memory, more than the {} available; lower `{field}`",
                human(bytes),
                human(avail as u128)
            ),
        });
    }
    Ok(())
}

/// `a × b × c …` without overflow, as the `u128` byte counts of [`check`] take them.
pub fn product(factors: &[usize]) -> u128 {
    factors.iter().fold(1u128, |acc, &f| acc.saturating_mul(f as u128))
}

/// A zeroed `Vec` of `n` values, or an error naming `what` if the allocation fails.
pub fn try_zeroed<T: Clone + Default>(n: usize, what: &str, field: &'static str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::Invalid {
        field: Some(field),
        message: format!(
            "{what} needs {} of memory, which could not be allocated; lower `{field}`",
            human(product(&[n, std::mem::size_of::<T>()]))
        ),
    })?;
    v.resize(n, T::default());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_beyond_the_machine_are_errors_that_name_the_setting() {
        assert!(available() > 1 << 20, "a machine that runs the tests has more than a MiB");
        check(1 << 20, "a small array", "particles").unwrap();
        let e = check(product(&[100_000, 100_000, 8, 1_000]), "a d × d covariance", "dim").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("a d × d covariance needs about") && s.contains("lower `dim`"), "{s}");
        assert_eq!(e.field(), Some("dim"));
        assert_eq!(product(&[usize::MAX, usize::MAX, 4]), u128::MAX, "saturates, never wraps");
        assert!(try_zeroed::<f32>(usize::MAX / 2, "an absurd buffer", "n").is_err());
        assert_eq!(try_zeroed::<f32>(3, "x", "n").unwrap(), vec![0.0; 3]);
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
