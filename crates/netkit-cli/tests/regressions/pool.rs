//! Regressions in pool.
