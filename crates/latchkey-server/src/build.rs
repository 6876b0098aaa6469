//! What this binary is: version, commit and build date (recorded by `build.rs`).

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from (`unknown` outside a git checkout without `LATCHKEY_COMMIT`).
pub const COMMIT: &str = env!("LATCHKEY_BUILD_COMMIT");
/// The date of that commit.
pub const DATE: &str = env!("LATCHKEY_BUILD_DATE");
/// `latchkey --version`'s line after the name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("LATCHKEY_BUILD_COMMIT"),
    ", built ",
    env!("LATCHKEY_BUILD_DATE"),
    ")"
);
