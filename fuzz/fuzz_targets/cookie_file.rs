//! Arbitrary text through the Netscape cookie-file reader: nothing may panic, and
//! whatever parses writes back to a file that parses to the same cookies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::http::fetch::{format_cookie_file, parse_cookie_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cookies) = parse_cookie_file(text) {
        let written = format_cookie_file(&cookies);
        let again = parse_cookie_file(&written).expect("what we write parses");
        assert_eq!(again, cookies, "{text:?}");
    }
});
