//! What this binary is: version, commit and build date (recorded by `build.rs`).

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from (`unknown` outside a git checkout without `BUILD_COMMIT`).
pub const COMMIT: &str = env!("BUILD_GIT_COMMIT");
/// The date of that commit.
pub const DATE: &str = env!("BUILD_GIT_DATE");
/// `latchkey --version`'s line after the name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_GIT_COMMIT"),
    ", built ",
    env!("BUILD_GIT_DATE"),
    ")"
);
