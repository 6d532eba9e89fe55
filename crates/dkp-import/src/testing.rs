//! What the readers' tests share.

use dkp_core::Points;

use crate::Import;

/// An amount written in a test.
pub fn points(text: &str) -> Points {
    Points::parse(text).unwrap()
}

/// Checks that the import warned of each of `expected` (as part of a warning).
pub fn assert_warns(import: &Import, expected: &[&str]) {
    let warnings = import.warnings.join("\n");
    for expected in expected {
        assert!(warnings.contains(expected), "{expected:?} not in:\n{warnings}");
    }
}
