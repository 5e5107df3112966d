//! Differential test: netkit's `LineReceiver` (and `Int32Receiver`) against Twisted's,
//! on the same chunk sequences (`tests/py/twisted_lines.py` and `twisted_int32.py`
//! drive Twisted with a `StringTransport`).
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

use netkit::protocol::int32::{Int32Receiver, Int32Transport, StringProtocol};
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
        } else if let Some(h) = line.strip_prefix(b"PUSH ") {
            let h = std::str::from_utf8(h).unwrap();
            let bytes: Vec<u8> = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            t.set_line_mode_with(&bytes);
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

/// Runs the Python driver `script` on `cases` (one line each) and returns its records.
fn run_driver(script: &str, cases: &[String]) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let mut child = Command::new("python3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3 (needed, with Twisted, under the `peers` feature)");
    let mut input = String::new();
    for c in cases {
        input.push_str(c);
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "the Twisted driver {script} failed (is Twisted installed? `pip install twisted`): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), cases.len(), "one record per case");
    lines
}

/// Twisted's records of the line cases.
fn twisted_records(cases: &[Case]) -> Vec<String> {
    let lines: Vec<String> = cases.iter().map(Case::to_line).collect();
    run_driver("twisted_lines.py", &lines)
}

/// Shortens a long record or case for a failure message.
fn clip(s: &str) -> String {
    if s.len() <= 400 {
        return s.to_owned();
    }
    format!("{}... ({} chars)", &s[..400], s.len())
}

/// Panics with the first difference between two records, if any.
fn same_record(case: &str, got: &str, want: &str) {
    if got == want {
        return;
    }
    let at = got
        .split(' ')
        .zip(want.split(' '))
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    panic!(
        "netkit and Twisted differ on case `{}`\n from event {at}:\n netkit:  {}\n Twisted: {}",
        clip(case),
        clip(&got.split(' ').skip(at).collect::<Vec<_>>().join(" ")),
        clip(&want.split(' ').skip(at).collect::<Vec<_>>().join(" ")),
    );
}

fn compare(cases: &[Case]) {
    let twisted = twisted_records(cases);
    for (case, want) in cases.iter().zip(&twisted) {
        same_record(&case.to_line(), &netkit_record(case), want);
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
fn extra_handed_back_from_line_received_goes_after_the_read() {
    compare(&[
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"x\r\nPUSH 610d0a62\r\nc\r\n", b"d\r\n"],
        ),
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"part", b"ial\r\nPUSH 0d0a\r\nc", b"\r\n"],
        ),
        Case::new(
            b"\r\n",
            100,
            false,
            &[b"PUSH 5241572032\r\n", b"\r\nxyz\r\n"],
        ),
        Case::new(b"\r\n", 100, true, &[b"PUSH 6162\r\n", b"c\r\n"]),
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

/// The Int32StringReceiver test protocol, as in `twisted_int32.py`.
struct Strings(Arc<Mutex<Vec<String>>>);

impl StringProtocol for Strings {
    fn string_received(&mut self, s: &[u8], t: &mut Int32Transport<'_>) {
        self.0.lock().unwrap().push(format!("S:{}", hex(s)));
        if s == b"PAUSE" {
            t.pause_reading();
            t.call_later(Duration::from_secs(1));
        } else {
            t.send_string(s).unwrap();
        }
    }

    fn length_limit_exceeded(&mut self, length: u64, t: &mut Int32Transport<'_>) {
        self.0.lock().unwrap().push(format!("X:{length}"));
        t.close();
    }

    fn timer_fired(&mut self, _: TimerId, t: &mut Int32Transport<'_>) {
        self.0.lock().unwrap().push("T".into());
        t.resume_reading();
    }
}

fn int32_record(max_length: usize, chunks: &[Vec<u8>]) -> String {
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut script = Script::new();
    for c in chunks {
        script = script.data(c).fire_timers();
    }
    let out = script.run(Int32Receiver::new(Strings(events.clone())).with_max_length(max_length));
    let mut tokens = events.lock().unwrap().clone();
    tokens.push("|".into());
    tokens.push(format!("closed={}", u8::from(out.closed || out.aborted)));
    tokens.push("|".into());
    tokens.push(format!("written={}", hex(&out.written)));
    tokens.join(" ")
}

fn int32_compare(cases: &[(usize, Vec<Vec<u8>>)]) {
    let lines: Vec<String> = cases
        .iter()
        .map(|(max, chunks)| {
            let mut s = max.to_string();
            for c in chunks {
                s.push(' ');
                s.push_str(if c.is_empty() { "_" } else { "" });
                s.push_str(&hex(c));
            }
            s
        })
        .collect();
    let twisted = run_driver("twisted_int32.py", &lines);
    for ((case, want), (max, chunks)) in lines.iter().zip(&twisted).zip(cases) {
        same_record(case, &int32_record(*max, chunks), want);
    }
}

fn int32_stream(items: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for i in items {
        v.extend_from_slice(&(i.len() as u32).to_be_bytes());
        v.extend_from_slice(i);
    }
    v
}

#[test]
fn int32_strings_limits_and_pause() {
    let exact = vec![b'm'; 99999];
    let over = vec![b'o'; 100000];
    let mut rng = Rng(7);
    let stream = int32_stream(&[
        b"hello", b"", b"PAUSE", b"x", b"PAUSE", b"PAUSE", b"y", b"12345",
    ]);
    let mut over_stream = stream.clone();
    over_stream.extend_from_slice(&int32_stream(&[b"123456", b"never"]));
    let mut cases = vec![
        (99999, vec![int32_stream(&[&exact, b"next"])]),
        (99999, vec![int32_stream(&[b"first", &over, b"never"])]),
        (
            99999,
            vec![b"\x00".to_vec(), b"\x01\x86".to_vec(), b"\xa0".to_vec()],
        ),
        (4, vec![b"\x00\x00\x00\x05".to_vec()]),
        (4, vec![b"\xff\xff\xff\xff".to_vec()]),
    ];
    for i in 0..100 {
        cases.push((5, rng.chunking(&stream, 1 + i % 12)));
        cases.push((5, rng.chunking(&over_stream, 1 + i % 12)));
    }
    cases.push((5, over_stream.chunks(1).map(<[u8]>::to_vec).collect()));
    int32_compare(&cases);
}
