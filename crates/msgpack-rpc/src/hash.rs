//! Cheap hashers for the two hot maps: method names (short, chosen by the
//! server's author) and msgids (chosen by our own client). Neither key is
//! picked by an attacker against this map, so SipHash's flood resistance
//! buys nothing there and costs a measurable share of a small call.

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a over the bytes, finished with a multiplicative mix.
#[derive(Default)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        // Spread entropy into the top bits, which hashbrown uses as tags.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(26)
    }
}

/// `HashMap<K, V, FastMap>`.
pub(crate) type FastMap = BuildHasherDefault<FastHasher>;
