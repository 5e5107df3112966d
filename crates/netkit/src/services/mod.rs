//! The built-in services, each a Protocol.
