//! Arbitrary request bytes into the request parser and validator, the deflate
//! negotiation, and the client's response parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_proto::handshake::{
    DeflateConfig, RequestHead, negotiate_deflate, parse_deflate_response, parse_response,
    validate_request,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((len, head))) = RequestHead::parse(data) {
        assert!(len <= data.len());
        if let Ok(accept) = validate_request(&head) {
            assert_eq!(accept.accept.len(), 28);
            let offers = accept.extension_offers();
            for cfg in [
                DeflateConfig::default(),
                DeflateConfig {
                    server_max_window_bits: 10,
                    client_max_window_bits: 9,
                    ..DeflateConfig::default()
                },
            ] {
                if let Some((params, response)) = negotiate_deflate(&offers, &cfg) {
                    // Our answer must be acceptable to a client, and mean the same.
                    assert_eq!(parse_deflate_response(&[&response]), Ok(Some(params)));
                }
            }
            let _ = accept.response(accept.protocols.first().map(String::as_str), None);
        }
    }
    let _ = parse_response(data, "dGhlIHNhbXBsZSBub25jZQ==");
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = negotiate_deflate(&[s], &DeflateConfig::default());
        let _ = parse_deflate_response(&[s]);
    }
});
