//! Seed 003 (`urllib_examples.py`), ported: urlopen a page and find its "about"
//! link with a regex; urlretrieve it to a named file and to a temporary file;
//! then urlcleanup.
//!
//! usage: cargo run --example urllib_examples -- URL_OF_PAGE OUT_FILE

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use netkit::http::fetch::{urlcleanup, urlopen, urlretrieve, FetchError};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, out_file] = args.as_slice() else {
        eprintln!("usage: urllib_examples URL_OF_PAGE OUT_FILE");
        return ExitCode::from(2);
    };
    match run(url, Path::new(out_file)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("urllib_examples: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(url: &str, out_file: &Path) -> Result<(), FetchError> {
    let mut page = urlopen(url)?;
    let mut bytes = Vec::new();
    page.read_to_end(&mut bytes).map_err(FetchError::from_io)?;
    let text = String::from_utf8_lossy(&bytes);
    let about = regex::Regex::new(r#"(?is)<a href="([^"]+)".*?>about</a>"#)
        .ok()
        .and_then(|re| re.captures(&text))
        .and_then(|c| c.get(1))
        .map_or("None".to_string(), |m| m.as_str().to_string());
    println!("about link: {about}");

    let (filename, headers) = urlretrieve(url, Some(out_file), |_| {})?;
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or("None", |(_, v)| v.as_str());
    println!("saved {} {length}", filename.display());

    let (tmpname, _) = urlretrieve(url, None, |_| {})?;
    println!("temporary copy {}", tmpname.display());
    urlcleanup();
    Ok(())
}
