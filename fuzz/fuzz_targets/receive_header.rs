//! The `receive` wire format: a header's fixed part and path, and a reply,
//! decoded from arbitrary bytes. Never panics; whatever decodes re-encodes to
//! the same bytes; a path `check_path` accepts is relative and has only normal
//! components (nothing that could leave the receiver's root).
#![no_main]

use std::path::Component;

use libfuzzer_sys::fuzz_target;
use netkit::services::transfer::{check_path, Header, Reply, HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    if data.len() >= HEADER_SIZE {
        let (fixed, rest) = data.split_at(HEADER_SIZE);
        if let Ok(f) = Header::decode_fixed(fixed) {
            if let Some(path) = rest.get(..f.path_len) {
                let h = f.with_path(path.to_vec());
                let wire = h.encode().expect("a decoded header re-encodes");
                assert_eq!(&wire[..HEADER_SIZE], fixed);
                assert_eq!(&wire[HEADER_SIZE..], path);
                // Shown in logs: never a raw control character.
                assert!(!h.display_path().chars().any(char::is_control));
            }
        }
    }
    if let Ok(p) = check_path(data) {
        assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
        assert!(!data.contains(&0));
    }
    if let Ok(Some((r, used))) = Reply::decode(data) {
        assert!(used <= data.len());
        let again = r.encode().expect("a decoded reply re-encodes");
        assert_eq!(Reply::decode(&again).unwrap().unwrap().0, r);
    }
});
