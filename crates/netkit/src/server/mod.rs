//! The socketserver framework: blocking handlers and Protocols under sequential,
//! threads, pool and fork modes.
