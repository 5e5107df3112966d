//! Regressions in cli.
