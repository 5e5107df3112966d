//! Regressions in http.
