//! Regressions in what services write to their logs (`receive`, `logger`).

use netkit::protocol::testing::Script;
use netkit::services::logger::{LogSink, Logger};

/// A line with a carriage return or an escape sequence used to reach the
/// logger's output raw, so a client could overwrite or forge lines on the
/// operator's terminal.
#[test]
fn logger_escapes_control_characters_in_logged_lines() {
    let (sink, captured) = LogSink::capture();
    let out = Script::new()
        .data(b"plain line\r\n")
        .data(b"fake\rGot connection from ('10.0.0.1', 1)\x1b[2J\n")
        .eof()
        .run(Logger::receiver(sink, 1024));
    assert!(out.closed);
    let text = captured.text();
    assert!(text.contains("\nplain line\n"), "{text:?}");
    assert!(
        text.contains("\nfake\\x0dGot connection from ('10.0.0.1', 1)\\x1b[2J\n"),
        "{text:?}"
    );
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
}
