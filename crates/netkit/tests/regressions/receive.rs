//! Regressions in receive.
