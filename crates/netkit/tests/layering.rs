//! The layering rule, checked on the sources: a module may name only the layers below
//! it (`pack` → `net` → `frame` → `protocol` → `services` → `server` | `reactor` →
//! `http` | `relay`), and siblings (`server` and `reactor`, `http` and `relay`)
//! never name each other.
//!
//! Each file is lexed (comments, strings, raw strings and character literals
//! removed), and every path is resolved the way the compiler would: `crate::`
//! and `netkit::` from the root, `super::` and `self::` from the file's module
//! (inline `mod x { ... }` blocks included), and use-trees with groups
//! (`crate::{pack::Struct, server::{Server, Mode}}`), on one line or many.

use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer; equal layers are siblings that must not meet.
const LAYERS: &[(&str, u32)] = &[
    ("pack", 0),
    ("net", 1),
    ("frame", 2),
    ("protocol", 3),
    ("services", 4),
    ("server", 5),
    ("reactor", 5),
    ("http", 6),
    ("relay", 6),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments, string and character literals blanked out
/// (newlines kept, so line numbers still hold).
fn code_only(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Line comment.
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        // Block comment, nested.
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            continue;
        }
        let ident_before = i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        // Raw strings: r"..", r#".."#, br#".."#.
        if !ident_before && (c == 'r' || (c == 'b' && next == Some('r'))) {
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let mut j = start;
            while b.get(j) == Some(&'#') {
                j += 1;
            }
            if b.get(j) == Some(&'"') {
                let hashes = j - start;
                let mut k = j + 1;
                loop {
                    match b.get(k) {
                        None => break,
                        Some('"') if (1..=hashes).all(|h| b.get(k + h) == Some(&'#')) => {
                            k += 1 + hashes;
                            break;
                        }
                        _ => k += 1,
                    }
                }
                for &ch in &b[i..k.min(b.len())] {
                    out.push(blank(ch));
                }
                i = k;
                continue;
            }
        }
        // Strings and byte strings.
        if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
            continue;
        }
        // Character literals ('x', '\n', '\u{1F600}', '"'), not lifetimes ('a).
        if c == '\'' {
            let lit_end = if next == Some('\\') {
                (i + 2..b.len()).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = lit_end {
                for _ in i..=end {
                    out.push(' ');
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Open,
    Close,
    Comma,
    Other,
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(b[start..i].iter().collect()), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            let t = match c {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                _ => Tok::Other,
            };
            out.push((t, line));
            i += 1;
        }
    }
    out
}

/// The module path of a file under `src`: `server/runner.rs` is `server::runner`,
/// `server/mod.rs` and `server.rs` are `server`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut m: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    if m.last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        m.pop();
    }
    m
}

/// Resolves the rest of a path (after its first segment resolved to `base`),
/// recording the absolute module path each leaf reaches, with its line.
fn resolve(
    toks: &[(Tok, usize)],
    i: &mut usize,
    base: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut path = base;
    let line = toks.get(*i).map_or(0, |t| t.1);
    while toks.get(*i).map(|t| &t.0) == Some(&Tok::Path) {
        *i += 1;
        match toks.get(*i).map(|t| &t.0) {
            Some(Tok::Ident(s)) if s == "super" => {
                path.pop();
                *i += 1;
            }
            Some(Tok::Ident(s)) if s == "self" => *i += 1,
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                *i += 1;
            }
            Some(Tok::Open) => {
                *i += 1;
                loop {
                    match toks.get(*i).map(|t| &t.0) {
                        None => return,
                        Some(Tok::Close) => {
                            *i += 1;
                            return;
                        }
                        Some(Tok::Comma) => *i += 1,
                        Some(Tok::Ident(s)) => {
                            let mut sub = path.clone();
                            match s.as_str() {
                                "self" => {}
                                "super" => {
                                    sub.pop();
                                }
                                _ => sub.push(s.clone()),
                            }
                            let l = toks[*i].1;
                            *i += 1;
                            out.push((sub.clone(), l));
                            resolve(toks, i, sub, out);
                        }
                        Some(_) => *i += 1,
                    }
                }
            }
            _ => break,
        }
    }
    out.push((path, line));
}

/// Every absolute module path the file at `rel` (under `src`) names, with lines.
fn named_paths(rel: &Path, src: &str) -> Vec<(Vec<String>, usize)> {
    let toks = tokens(&code_only(src));
    let file_mod = module_of(rel);
    // Inline `mod name {` blocks: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let here = |inline: &[(String, usize)]| {
            let mut m = file_mod.clone();
            m.extend(inline.iter().map(|(n, _)| n.clone()));
            m
        };
        let after_path = i > 0 && toks[i - 1].0 == Tok::Path;
        match &toks[i].0 {
            Tok::Open => {
                depth += 1;
                i += 1;
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(k) if k == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
                i += 1;
            }
            Tok::Ident(s) if !after_path && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path) => {
                let base = match s.as_str() {
                    "crate" | "netkit" => Some(Vec::new()),
                    "super" => {
                        let mut m = here(&inline);
                        m.pop();
                        Some(m)
                    }
                    "self" => Some(here(&inline)),
                    _ => None,
                };
                i += 1;
                if let Some(base) = base {
                    resolve(&toks, &mut i, base, &mut out);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Lists every place in `src` where a module names a layer above (or beside) it.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let module = module_of(rel);
        let Some(own) = module.first() else {
            continue;
        };
        let Some(own_layer) = layer(own) else {
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (path, line) in named_paths(rel, &text) {
            let Some(named) = path.first() else { continue };
            let Some(l) = layer(named) else { continue };
            if named != own && l >= own_layer {
                let shown = lines.get(line.saturating_sub(1)).map_or("", |l| l.trim());
                let entry = format!(
                    "{}:{line}: `{own}` names `{named}`, which is not below it: {shown}",
                    rel.display()
                );
                if !found.contains(&entry) {
                    found.push(entry);
                }
            }
        }
    }
    found
}

#[test]
fn no_module_names_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

/// Each form a path can take is seen, and none in a comment or a literal is.
#[test]
fn the_check_catches_every_form_of_a_violation() {
    let dir = std::env::temp_dir().join(format!("netkit-layering-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("frame")).unwrap();
    fs::create_dir_all(dir.join("protocol")).unwrap();
    let cases: &[(&str, &str, bool)] = &[
        ("frame/plain.rs", "use crate::server::Server;\n", true),
        ("frame/grouped.rs", "use crate::{pack::Struct, server::Server};\n", true),
        (
            "frame/multiline.rs",
            "use crate::{\n    pack::Struct,\n    net::{\n        Address,\n    },\n    reactor::Reactor,\n};\n",
            true,
        ),
        ("frame/nested_group.rs", "use crate::{pack::{Struct, Value}, {http::X}};\n", true),
        ("frame/super_super.rs", "use super::super::reactor::Reactor;\n", true),
        ("frame/super_group.rs", "use super::super::{pack::Struct, services::Echo};\n", true),
        ("frame/expr.rs", "fn f() { let _ = crate::http::serve(); }\n", true),
        ("frame/netkit_path.rs", "fn f() -> netkit::server::Mode { todo() }\n", true),
        (
            "frame/after_string.rs",
            "fn f() { let u = \"http://x\"; crate::server::go(u); }\n",
            true,
        ),
        ("frame/inline_mod.rs", "mod tests {\n    use super::super::super::reactor::X;\n}\n", true),
        ("frame/below.rs", "use crate::{pack::Struct, net::Address};\nuse super::line;\n", false),
        ("frame/comment.rs", "// use crate::server::Server;\n/* crate::reactor::X /* nested */ crate::http::Y */\n", false),
        ("frame/doc.rs", "//! ```\n//! use netkit::server::Server;\n//! ```\n", false),
        ("frame/string.rs", "const S: &str = \"crate::server::Server\";\n", false),
        ("frame/raw.rs", "const S: &str = r#\"crate::server::\"Server\"\"#;\n", false),
        ("frame/chars.rs", "fn f<'a>(x: &'a str) -> char { let _q = '\"'; 'c' }\nuse crate::pack::Struct;\n", false),
        ("frame/other_crate.rs", "use my_crate::server::Server;\nuse foo::crate_x::server;\n", false),
        ("frame/self_path.rs", "use self::server::X;\n", false),
        ("protocol/mod.rs", "use super::services::Echo;\n", true),
    ];
    for (file, text, _) in cases {
        fs::write(dir.join(file), text).unwrap();
    }
    let found = violations(&dir);
    fs::remove_dir_all(&dir).unwrap();
    for (file, text, bad) in cases {
        let hit = found.iter().any(|f| f.starts_with(&format!("{file}:")));
        assert_eq!(hit, *bad, "{file} ({text:?}): {found:#?}");
    }
    let multiline = found
        .iter()
        .find(|f| f.starts_with("frame/multiline.rs"))
        .unwrap();
    assert!(
        multiline.starts_with("frame/multiline.rs:6:"),
        "{multiline}"
    );
}
