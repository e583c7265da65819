//! Empty: the crate has a build script only so that its `[build-dependencies]` (feature
//! unification across the repository's builds, see Cargo.toml) take part in the build.
fn main() {}
