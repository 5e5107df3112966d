//! CPython-compatible `struct`: pack and unpack binary records described by format strings.
