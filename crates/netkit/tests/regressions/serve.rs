//! Regressions in serve.
