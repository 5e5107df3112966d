//! The layering rule, checked on the sources: a module may name only the layers below
//! it (`pack` → `net` → `frame` → `protocol` → `services` → `server` | `reactor` →
//! `http`), and `server` and `reactor` never name each other.

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

/// The modules a line names through `crate::NAME` or `netkit::NAME`.
fn named_modules(line: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for prefix in ["crate::", "netkit::"] {
        let mut rest = line;
        while let Some(i) = rest.find(prefix) {
            let before = &rest[..i];
            rest = &rest[i + prefix.len()..];
            // `foo_crate::x` or `my_netkit::x` are other paths.
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(&rest[..end]);
        }
    }
    names
}

/// Lists every line of `src` where a module names a layer above (or beside) it.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let Some(first) = rel.components().next() else {
            continue;
        };
        let own = first.as_os_str().to_string_lossy();
        let own = own.trim_end_matches(".rs");
        let Some(own_layer) = layer(own) else {
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for named in named_modules(code) {
                let Some(l) = layer(named) else { continue };
                if named != own && l >= own_layer {
                    found.push(format!(
                        "{}:{}: `{own}` names `{named}`, which is not below it: {}",
                        rel.display(),
                        n + 1,
                        line.trim()
                    ));
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

#[test]
fn the_check_catches_a_violation() {
    let dir = std::env::temp_dir().join(format!("netkit-layering-{}", std::process::id()));
    fs::create_dir_all(dir.join("frame")).unwrap();
    fs::write(
        dir.join("frame/mod.rs"),
        "//! x\nuse crate::pack::Struct;\nuse crate::server::Server;\n",
    )
    .unwrap();
    fs::write(dir.join("server.rs"), "use crate::reactor::Reactor;\n").unwrap();
    let found = violations(&dir);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("`frame` names `server`") || found[1].contains("`frame` names `server`")
    );
    assert!(found.iter().any(|f| f.contains("`server` names `reactor`")));
}
