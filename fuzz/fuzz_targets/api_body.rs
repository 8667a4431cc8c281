//! The HTTP API's body parsers on arbitrary bytes: the legacy `POST /api` stream, a
//! batch, and a publish's `data` / `b64data`. Never panics; `data` comes back as the
//! exact bytes it was in the body.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use wspush::api::wire::{self, Batch, Data};
use wspush::delivery::payload::Payload;

#[derive(serde::Deserialize)]
struct Publish<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    b64data: String,
}

fuzz_target!(|bytes: &[u8]| {
    let body = Bytes::copy_from_slice(bytes);
    if let Ok(commands) = wire::split_legacy(&body) {
        for c in &commands {
            let _ = c.method_name();
            let _ = serde_json::from_slice::<serde_json::Value>(c.params());
        }
    }
    if let Ok(batch) = wire::decode::<Batch<'_>>(&body) {
        for command in &batch.commands {
            for params in command.values() {
                let _ = wire::decode::<Publish<'_>>(params.get().as_bytes());
            }
        }
    }
    if let Ok(p) = wire::decode::<Publish<'_>>(&body) {
        match wire::payload_of(&Data::new(p.data, &p.b64data), &body) {
            Ok(Payload::Text(text)) => {
                let raw = p.data.map(|d| d.get().as_bytes());
                assert_eq!(Some(&text[..]), raw);
            }
            Ok(Payload::Binary(_)) => assert!(!p.b64data.is_empty()),
            Err(_) => {}
        }
    }
});
