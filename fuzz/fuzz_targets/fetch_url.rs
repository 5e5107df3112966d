//! Arbitrary text through the client's URL checks (`check_url`, the `url` crate
//! underneath) and the local name a URL suggests: nothing may panic, a checked
//! URL checks again to itself, and a suggested name never leaves its directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::http::fetch::{check_url, name_from_url};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(clean) = check_url(text) {
        assert_eq!(check_url(&clean).ok().as_deref(), Some(clean.as_str()), "{text:?}");
    }
    let name = name_from_url(text);
    assert!(!name.is_empty(), "{text:?}");
    assert!(!name.contains('/') && !name.contains('\\'), "{text:?} -> {name:?}");
    assert!(!name.starts_with('.'), "{text:?} -> {name:?}");
    assert!(!name.chars().any(char::is_control), "{text:?} -> {name:?}");
});
