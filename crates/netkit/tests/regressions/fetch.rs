//! Regressions in fetch.
