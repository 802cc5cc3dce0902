//! Helpers the unit tests share (compiled for tests only): a fresh temporary directory per
//! test. Not for integration tests, which have `tests/common`.

use std::path::PathBuf;

/// A fresh, empty directory under the system temp dir, unique to `area`, `name` and this
/// process.
pub(crate) fn tempdir(area: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hostwatch-{area}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}
