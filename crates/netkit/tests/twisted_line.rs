//! Differential test: netkit's `LineReceiver` against Twisted's, on the same chunk
//! sequences (`tests/py/twisted_lines.py` drives Twisted with a `StringTransport`).
//!
//! Both sides run the same test protocol and print the same record — lines, raw data,
//! `lineLengthExceeded` arguments, timers, whether the protocol closed, and every byte
//! written — which must match exactly for every case. Needs Twisted (`pip install
//! twisted`); without it the test fails.

#![cfg(feature = "peers")]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit::protocol::line::{LineProtocol, LineReceiver, LineTransport};
use netkit::protocol::testing::Script;
use netkit::protocol::{TimerId, Transport};

/// One case: how the receiver is set up and the reads it gets.
struct Case {
    delimiter: Vec<u8>,
    max_length: usize,
    keep_open: bool,
    chunks: Vec<Vec<u8>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

impl Case {
    fn new(delimiter: &[u8], max_length: usize, keep_open: bool, chunks: &[&[u8]]) -> Self {
        Case {
            delimiter: delimiter.to_vec(),
            max_length,
            keep_open,
            chunks: chunks.iter().map(|c| c.to_vec()).collect(),
        }
    }

    /// The case as a line for the Python driver.
    fn to_line(&self) -> String {
        let mut s = format!(
            "{} {} {}",
            hex(&self.delimiter),
            self.max_length,
            u8::from(self.keep_open)
        );
        for c in &self.chunks {
            s.push(' ');
            s.push_str(if c.is_empty() { "_" } else { "" });
            s.push_str(&hex(c));
        }
        s
    }
}

/// The test protocol, as in the Python driver.
struct Rec {
    events: Arc<Mutex<Vec<String>>>,
    keep_open: bool,
    raw_left: usize,
}

impl Rec {
    fn log(&self, e: String) {
        self.events.lock().unwrap().push(e);
    }
}

impl LineProtocol for Rec {
    fn line_received(&mut self, line: &[u8], t: &mut LineTransport<'_>) {
        self.log(format!("L:{}", hex(line)));
        if line == b"CLOSE" {
            t.close();
        } else if line == b"PAUSE" {
            t.pause_reading();
            t.call_later(Duration::from_secs(1));
        } else if let Some(n) = line.strip_prefix(b"RAW ") {
            self.raw_left = std::str::from_utf8(n).unwrap().parse().unwrap();
            t.set_raw_mode();
        } else {
            t.send_line(line);
        }
    }

    fn raw_data_received(&mut self, data: &[u8], t: &mut LineTransport<'_>) {
        let n = self.raw_left.min(data.len());
        self.log(format!("R:{}", hex(&data[..n])));
        self.raw_left -= n;
        if self.raw_left == 0 {
            t.set_line_mode_with(&data[n..]);
        }
    }

    fn line_length_exceeded(&mut self, partial: &[u8], t: &mut LineTransport<'_>) {
        self.log(format!("X:{}", hex(partial)));
        if !self.keep_open {
            t.close();
        }
    }

    fn timer_fired(&mut self, _: TimerId, t: &mut LineTransport<'_>) {
        self.log("T".into());
        t.resume_reading();
    }
}

/// netkit's record of a case, in the driver's format.
fn netkit_record(case: &Case) -> String {
    let events = Arc::new(Mutex::new(Vec::new()));
    let rec = Rec {
        events: events.clone(),
        keep_open: case.keep_open,
        raw_left: 0,
    };
    let mut script = Script::new();
    for c in &case.chunks {
        script = script.data(c).fire_timers();
    }
    let receiver = LineReceiver::new(rec)
        .with_delimiter(&case.delimiter)
        .with_max_length(case.max_length);
    let out = script.run(receiver);
    let mut tokens = events.lock().unwrap().clone();
    tokens.push("|".into());
    tokens.push(format!("closed={}", u8::from(out.closed || out.aborted)));
    tokens.push("|".into());
    tokens.push(format!("written={}", hex(&out.written)));
    tokens.join(" ")
}

/// Twisted's records of the cases, one line each.
fn twisted_records(cases: &[Case]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/twisted_lines.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3 (needed, with Twisted, under the `peers` feature)");
    let mut input = String::new();
    for c in cases {
        input.push_str(&c.to_line());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "the Twisted driver failed (is Twisted installed? `pip install twisted`): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), cases.len(), "one record per case");
    lines
}

/// Shortens a long record or case for a failure message.
fn clip(s: &str) -> String {
    if s.len() <= 400 {
        return s.to_owned();
    }
    format!("{}... ({} chars)", &s[..400], s.len())
}

fn compare(cases: &[Case]) {
    let twisted = twisted_records(cases);
    for (case, want) in cases.iter().zip(&twisted) {
        let got = netkit_record(case);
        if &got == want {
            continue;
        }
        let at = got
            .split(' ')
            .zip(want.split(' '))
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "netkit and Twisted differ on case `{}`\n from event {at}:\n netkit:  {}\n Twisted: {}",
            clip(&case.to_line()),
            clip(&got.split(' ').skip(at).collect::<Vec<_>>().join(" ")),
            clip(&want.split(' ').skip(at).collect::<Vec<_>>().join(" ")),
        );
    }
}

/// A small deterministic generator (xorshift64*), so every run tests the same cuts.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    /// Cuts `stream` into chunks of 1 to `max` bytes (sometimes an empty one).
    fn chunking(&mut self, stream: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = stream;
        while !rest.is_empty() {
            let n = if self.below(20) == 0 {
                0
            } else {
                1 + self.below(max)
            };
            let n = n.min(rest.len());
            out.push(rest[..n].to_vec());
            rest = &rest[n..];
        }
        out
    }
}

fn byte_by_byte(delimiter: &[u8], max: usize, keep_open: bool, stream: &[u8]) -> Case {
    Case {
        delimiter: delimiter.to_vec(),
        max_length: max,
        keep_open,
        chunks: stream.chunks(1).map(<[u8]>::to_vec).collect(),
    }
}

#[test]
fn twisted_defaults_exact_max_length_and_one_more() {
    let max = vec![b'a'; 16384];
    let over = vec![b'b'; 16385];
    let mut exact = max.clone();
    exact.extend_from_slice(b"\r\nnext\r\n");
    let mut one_more = over.clone();
    one_more.extend_from_slice(b"\r\nnext\r\n");
    // Buffered without a delimiter: exceeded once max_length + len(delimiter) is reached.
    let mut no_delim = over.clone();
    no_delim.push(b'c');
    compare(&[
        Case::new(b"\r\n", 16384, false, &[&exact]),
        Case::new(b"\r\n", 16384, false, &[&one_more]),
        Case::new(b"\r\n", 16384, true, &[&one_more]),
        Case::new(b"\r\n", 16384, false, &[&over]),
        Case::new(b"\r\n", 16384, false, &[&over, b"c"]),
        Case::new(b"\r\n", 16384, true, &[&no_delim, b"tail\r\nok\r\n"]),
        Case::new(
            b"\r\n",
            16384,
            false,
            &[&max[..8000], &max[8000..], b"\r", b"\n"],
        ),
    ]);
}

#[test]
fn small_max_length_edges() {
    compare(&[
        Case::new(b"\r\n", 4, false, &[b"abcd\r\nabcde\r\nx\r\n"]),
        Case::new(b"\r\n", 4, true, &[b"abcd\r\nabcde\r\nx\r\n", b"y\r\n"]),
        Case::new(b"\r\n", 4, true, &[b"abcde", b"f", b"gh\r\nok\r\n"]),
        Case::new(b"\r\n", 4, true, &[b"abcd\r", b"\n"]),
        Case::new(b"\r\n", 4, true, &[b"abcd\r", b"x"]),
        Case::new(b"\r\n", 0, true, &[b"\r\n\r\nx\r\n", b"\r\n"]),
        Case::new(b"\n", 3, true, &[b"abc\nabcd", b"\n", b"ok\n"]),
    ]);
}

#[test]
fn delimiter_split_final_line_and_close() {
    compare(&[
        Case::new(b"\r\n", 100, false, &[b"abc\r", b"\ndef\r", b"\n"]),
        Case::new(b"\r\n", 100, false, &[b"abc\r", b"x\r\n"]),
        Case::new(b"\r\n", 100, false, &[b"a\r\nb"]),
        Case::new(b"\r\n", 100, false, &[b"a\r\nb", b""]),
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"a\r\nCLOSE\r\nb\r\nc\r\n", b"d\r\n"],
        ),
        Case::new(b"\r\n", 100, false, &[b"CLOSE\r", b"\nb\r\n"]),
        Case::new(
            b"<END>",
            100,
            false,
            &[b"one<E", b"ND><EN", b"D>two<", b"END", b">"],
        ),
    ]);
}

#[test]
fn raw_mode_switches_mid_chunk_and_back() {
    compare(&[
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"x\r\nRAW 5\r\nhello", b"y\r\nRAW 3\r\nab", b"cz\r\n"],
        ),
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"RAW 2\r\nabRAW 1\r\nc\r\n\r\nRAW 0\r\n", b"q\r\n"],
        ),
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"RAW 4\r\n", b"a", b"b\r", b"\nline\r\n"],
        ),
        Case::new(b"\r\n", 4, false, &[b"RAW 3\r\nabcdefgh\r\n"]),
    ]);
}

#[test]
fn pause_until_a_timer_resumes() {
    compare(&[
        Case::new(b"\r\n", 100, false, &[b"a\r\nPAUSE\r\nb\r\nc\r\n"]),
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"PAUSE\r\nPAUSE\r\nb\r", b"\nc\r\n", b"d\r\n"],
        ),
        Case::new(b"\r\n", 100, false, &[b"PAUSE\r\nCLOSE\r\nb\r\n"]),
    ]);
}

/// A stream with every feature in it, cut many ways.
fn mixed_stream() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(b"hello\r\n\r\nworld\rwide\r\n");
    s.extend_from_slice(b"RAW 7\r\nraw\r\nbyPAUSE\r\nafter\r\n");
    s.extend_from_slice(&[b'z'; 40]);
    s.extend_from_slice(b"\r\nshort\r\n");
    s.extend_from_slice(&[b'y'; 25]);
    s.extend_from_slice(b"\r\nRAW 1\r\n\r\r\nend\r\nno newline");
    s
}

#[test]
fn random_chunkings_of_a_fixed_stream() {
    let stream = mixed_stream();
    let mut rng = Rng(0x5eed_1e55_f00d_cafe);
    let mut cases = Vec::new();
    for i in 0..300 {
        let keep_open = i % 3 != 0;
        let max = [16, 20, 30][i % 3];
        cases.push(Case {
            delimiter: b"\r\n".to_vec(),
            max_length: max,
            keep_open,
            chunks: rng.chunking(&stream, 1 + i % 24),
        });
    }
    cases.push(byte_by_byte(b"\r\n", 30, true, &stream));
    cases.push(byte_by_byte(b"\r\n", 16, true, &stream));
    cases.push(byte_by_byte(b"\r\n", 16384, false, &stream));
    compare(&cases);
}

#[test]
fn random_chunkings_with_other_delimiters() {
    let mut rng = Rng(42);
    let mut cases = Vec::new();
    for delim in [&b"\n"[..], b"<END>", b"aab"] {
        let mut stream = Vec::new();
        for (i, part) in [
            &b"one"[..],
            b"",
            b"aaaa",
            b"RAW 3",
            b"xyz",
            b"twotwotwo",
            b"ab",
        ]
        .iter()
        .enumerate()
        {
            stream.extend_from_slice(part);
            if i != 4 {
                stream.extend_from_slice(delim);
            }
        }
        stream.extend_from_slice(b"tail");
        for i in 0..60 {
            cases.push(Case {
                delimiter: delim.to_vec(),
                max_length: 6 + i % 5,
                keep_open: i % 2 == 0,
                chunks: rng.chunking(&stream, 1 + i % 9),
            });
        }
        cases.push(byte_by_byte(delim, 8, true, &stream));
    }
    compare(&cases);
}
