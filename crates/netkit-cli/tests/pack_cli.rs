//! `netkit pack`, `netkit unpack` and `netkit calcsize`: output, CPython agreement, and
//! every error path (exit status and message).

use std::io::Write;
use std::process::{Command, Stdio};

use assert_cmd::Command as Cmd;

fn netkit() -> Cmd {
    Cmd::cargo_bin("netkit").unwrap()
}

/// Runs netkit with `args`; returns (status code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = netkit().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{args:?}: stderr {err}");
    assert!(err.is_empty(), "{args:?}: stderr {err}");
    out.trim_end_matches('\n').to_string()
}

/// Asserts a failure with `code` and a stderr naming the problem (and no backtrace).
fn fails(args: &[&str], code: i32, needle: &str) {
    let (got, out, err) = run(args);
    assert_eq!(got, code, "{args:?}: stdout {out:?} stderr {err:?}");
    assert!(out.is_empty(), "{args:?}: stdout {out:?}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "{args:?}: stderr {err:?} lacks {needle:?}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    if code == 1 {
        assert!(err.starts_with("netkit: "), "{err}");
    }
}

#[test]
fn pack_prints_lowercase_hex() {
    assert_eq!(ok(&["pack", "!I", "20"]), "00000014");
    assert_eq!(ok(&["pack", "<h", "-1"]), "ffff");
    assert_eq!(ok(&["pack", "--", "<h", "-1"]), "ffff");
    assert_eq!(ok(&["pack", "<hI", "-2", "0xDEADBEEF"]), "feffefbeadde");
    assert_eq!(
        ok(&["pack", ">HHH", "0o17", "0b101", "1_000"]),
        "000f000503e8"
    );
    assert_eq!(ok(&["pack", "<d", "-0.0"]), "0000000000000080");
    assert_eq!(ok(&["pack", ">e", "1e3"]), "63d0");
    assert_eq!(
        ok(&["pack", ">3f", "inf", "-inf", "nan"]),
        "7f800000ff8000007fc00000"
    );
    assert_eq!(ok(&["pack", "??", "True", "False"]), "0100");
    assert_eq!(
        ok(&["pack", "c3s3p", "b'a'", r"b'x\x00'", r#"b"\n""#]),
        "61780000010a00"
    );
    assert_eq!(ok(&["pack", "<3x"]), "000000");
    assert_eq!(ok(&["pack", "<"]), "");
    assert_eq!(
        ok(&["pack", "<q", "-9223372036854775808"]),
        "0000000000000080"
    );
}

#[test]
fn unpack_prints_a_python_tuple() {
    assert_eq!(ok(&["unpack", "!I", "00000014"]), "(20,)");
    assert_eq!(
        ok(&["unpack", "<b2sd?", "01 6162 0000000000000440 01"]),
        "(1, b'ab', 2.5, True)"
    );
    assert_eq!(ok(&["unpack", "<I", "0A", "00", "00", "00"]), "(10,)");
    assert_eq!(ok(&["unpack", "<I", "0a00\n00\t00"]), "(10,)");
    assert_eq!(ok(&["unpack", "<", ""]), "()");
    assert_eq!(
        ok(&[
            "unpack",
            ">3d",
            "7ff0000000000000 fff0000000000000 7ff8000000000000"
        ]),
        "(inf, -inf, nan)"
    );
    assert_eq!(ok(&["unpack", "<f", "00000080"]), "(-0.0,)");
    assert_eq!(ok(&["unpack", "c", "27"]), "(b\"'\",)");
}

#[test]
fn unpack_json() {
    assert_eq!(
        ok(&["unpack", "--json", "<b2sd?", "01616200000000000004 4001"]),
        r#"[1, "6162", 2.5, true]"#
    );
    let line = ok(&[
        "unpack",
        ">3dq",
        "7ff0000000000000fff00000000000007ff80000000000008000000000000000",
        "--json",
    ]);
    assert_eq!(line, r#"["inf", "-inf", "nan", -9223372036854775808]"#);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v[3].as_i64(), Some(i64::MIN));
    assert_eq!(
        ok(&["unpack", "--json", "<d", "0000000000000080"]),
        "[-0.0]"
    );
    assert_eq!(ok(&["unpack", "--json", "<", ""]), "[]");
}

#[test]
fn calcsize_prints_the_size() {
    assert_eq!(ok(&["calcsize", "<IIIHH"]), "16");
    assert_eq!(ok(&["calcsize", "@bi"]), "8");
    assert_eq!(ok(&["calcsize", "!I"]), "4");
    assert_eq!(ok(&["calcsize", ""]), "0");
}

#[test]
fn data_errors_exit_1() {
    fails(&["pack", "<h", "40000"], 1, "range");
    fails(&["pack", "<B", "-1"], 1, "range");
    fails(&["pack", "z", "1"], 1, "bad format");
    fails(&["pack", "<n", "1"], 1, "bad format");
    fails(&["pack", "<h"], 1, "pack");
    fails(&["pack", "<h", "1", "2"], 1, "pack");
    fails(&["pack", "<h", "abc"], 1, "not a Python literal");
    fails(&["pack", "<h", "1.5"], 1, "pack");
    fails(&["pack", "<e", "1e6"], 1, "pack");
    fails(&["pack", "<s", "'abc'"], 1, "b'abc'");
    fails(&["pack", "<s", r"b'\x4'"], 1, "\\x");
    fails(
        &["pack", "<q", "0x1_0000_0000_0000_0000_0000_0000_0000_0000"],
        1,
        "out of range",
    );
    fails(&["pack", "<q", "017"], 1, "leading zeros");
    fails(&["unpack", "<I", "abc"], 1, "odd number of hex digits");
    fails(&["unpack", "<I", "0g000000"], 1, "invalid hex digit 'g'");
    fails(&["unpack", "<I", "00:00:00:00"], 1, "invalid hex digit ':'");
    fails(&["unpack", "<I", "000000"], 1, "3 bytes");
    fails(&["unpack", "<I", "0000000000"], 1, "5 bytes");
    fails(&["unpack", "3", "00"], 1, "bad format");
    fails(&["calcsize", "<<i"], 1, "bad format");
    fails(&["calcsize", "99999999999999999999i"], 1, "bad format");
}

#[test]
fn usage_errors_exit_2() {
    fails(&["pack"], 2, "FMT");
    fails(&["unpack", "<I"], 2, "HEX");
    fails(&["unpack"], 2, "FMT");
    fails(&["calcsize"], 2, "FMT");
    fails(&["calcsize", "<I", "extra"], 2, "unexpected argument");
    fails(&["unpack", "--bogus", "<I", "00000000"], 2, "--bogus");
}

/// `netkit pack` and `netkit unpack` agree with CPython's struct on a spread of cases:
/// the same hex, the same tuple repr, and failure exactly where CPython raises.
#[test]
fn agrees_with_cpython() {
    let cases: &[(&str, &[&str])] = &[
        ("!I", &["20"]),
        ("<IIIHH", &["0xdeadbeef", "10", "20", "8", "0"]),
        ("@bi", &["-1", "7"]),
        (
            "=hHlLqQ",
            &[
                "-32768",
                "65535",
                "-1",
                "4294967295",
                "-2",
                "18446744073709551615",
            ],
        ),
        (">e", &["65504.0"]),
        (">e", &["65520.0"]),
        ("<f", &["3.4028235e38"]),
        ("<f", &["1e39"]),
        ("<d", &["1e-320"]),
        ("<d", &["0.1"]),
        ("<d", &["1e16"]),
        ("<d", &["1.5e-7"]),
        ("<f", &["0.1"]),
        ("<e", &["6e-8"]),
        ("<3d", &["inf", "-inf", "nan"]),
        ("<d", &["3"]),
        ("<i", &["True"]),
        ("<i", &["2.0"]),
        ("<?", &["2"]),
        ("<?", &["0.0"]),
        ("<?", &["b''"]),
        ("c", &["b'ab'"]),
        ("5s", &[r"b'\x00\xff\t\n\r\\\''"]),
        ("5p", &["b'abcdefgh'"]),
        ("300p", &["b'xyz'"]),
        ("2c", &["b'\"'", "b\"'\""]),
        ("<q", &["9223372036854775808"]),
        ("<Q", &["-1"]),
        ("<b", &["128"]),
        ("<b", &["-129"]),
        ("!H", &["0x_ff_ff"]),
        ("< 2h x i", &["1", "-2", "3"]),
        ("<0s", &["b''"]),
        ("@P", &["0"]),
        ("@n", &["-5"]),
        ("s", &[]),
    ];
    let mut py = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/pack_oracle.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = py.stdin.take().unwrap();
        for (fmt, vals) in cases {
            writeln!(stdin, "{}", serde_json::json!([fmt, vals])).unwrap();
        }
    }
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    let answers: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), cases.len());
    for ((fmt, vals), want) in cases.iter().zip(&answers) {
        let mut args = vec!["pack", fmt];
        args.extend_from_slice(vals);
        let (code, out, err) = run(&args);
        if let Some(why) = want.get("error") {
            assert_eq!(
                code, 1,
                "{args:?}: CPython raises {why}, netkit printed {out:?}"
            );
            assert!(err.starts_with("netkit: "), "{err}");
            continue;
        }
        assert_eq!(code, 0, "{args:?}: {err}");
        let hex = want["hex"].as_str().unwrap();
        assert_eq!(out.trim_end(), hex, "{args:?}");
        assert_eq!(
            ok(&["unpack", fmt, hex]),
            want["tuple"].as_str().unwrap(),
            "unpack {fmt} {hex}"
        );
    }
}
