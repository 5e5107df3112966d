//! Sans-IO frame decoders and encoders: lines, length-prefixed frames and netstrings.
