//! The PROXY protocol header parser: never panics, a header never claims more
//! bytes than it was given or than the bounds allow, a header's own bytes parse
//! to the same header while every shorter prefix is "need more", and the
//! addresses it carries survive re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netkit::frame::proxy::{self, ProxyAddrs, ProxyHeader, ProxyVersion, V1_MAX, V2_MAX};

fuzz_target!(|data: &[u8]| {
    let parsed = proxy::parse(data);
    let Ok(Some(h)) = parsed else {
        // An error or "need more" must not turn into a header when more bytes
        // are the ones given: "need more" means every given byte is a prefix.
        if let Ok(None) = parsed {
            assert!(data.len() < V2_MAX);
        }
        return;
    };
    assert!(h.len <= data.len());
    match h.version {
        ProxyVersion::V1 => assert!(h.len <= V1_MAX),
        ProxyVersion::V2 => assert!(h.len <= V2_MAX),
    }
    assert_eq!(proxy::parse(&data[..h.len]), Ok(Some(h)));
    for cut in [0, 1, h.len / 2, h.len.saturating_sub(1)] {
        if cut < h.len {
            assert_eq!(proxy::parse(&data[..cut]), Ok(None), "prefix {cut}");
        }
    }
    if let ProxyAddrs::Proxied {
        source,
        destination,
    } = h.addrs
    {
        let v2 = ProxyHeader::encode_v2(&h.addrs);
        let back = proxy::parse(&v2).unwrap().unwrap();
        assert_eq!(back.len, v2.len());
        if source.is_ipv4() == destination.is_ipv4() {
            assert_eq!(back.addrs, h.addrs);
            let v1 = ProxyHeader::encode_v1(&h.addrs);
            assert_eq!(proxy::parse(&v1).unwrap().unwrap().addrs, h.addrs);
        }
    }
});
