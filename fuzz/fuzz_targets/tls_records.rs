//! Arbitrary bytes into the server's own TLS 1.3 record layer (after the handshake, a
//! fixed ChaCha20-Poly1305 key): as ciphertext straight from a peer, and as records a peer
//! sealed with the same key (so the content dispatch behind decryption is reached: alerts,
//! KeyUpdates, unknown types, empty records). Checks: no panic, every record opened lies
//! within the input, no plaintext over 2^14.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ws_server::tls_stream::fuzz_open(data);
});
