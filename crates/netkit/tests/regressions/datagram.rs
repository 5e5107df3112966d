//! Regressions in datagram.
