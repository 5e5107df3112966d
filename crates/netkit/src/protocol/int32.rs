//! Int32StringReceiver-style helper on length-prefixed frames.
