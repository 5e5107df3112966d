//! LineReceiver-style helper on `frame` lines.
