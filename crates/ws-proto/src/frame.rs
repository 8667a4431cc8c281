//! Frame header codec (RFC 6455 §5.2) and masking (§5.3).
//!
//! The header is at most 14 bytes: 2 fixed, 0/2/8 extended length, 0/4 mask key.
//! Payloads are never touched here except by [`apply_mask`].

use bytes::BufMut;

use crate::error::ProtocolError;

/// The largest header: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// Frame opcodes (RFC 6455 §5.2); reserved values are rejected by [`FrameHeader::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Whether this is a control opcode (high bit of the nibble set, §5.5).
    #[must_use]
    pub fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    fn from_bits(bits: u8) -> Result<Self, ProtocolError> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }
}

/// A decoded or to-be-encoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1: "compressed" under permessage-deflate (RFC 7692 §6).
    pub rsv1: bool,
    /// RSV2 (no extension we support defines it).
    pub rsv2: bool,
    /// RSV3 (no extension we support defines it).
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Decode a header from the start of `buf`. `Ok(None)`: need more bytes.
    /// Checks only what the header alone determines: reserved opcodes, the 64-bit
    /// length MSB, and the control-frame rules of §5.5 (FIN set, ≤ 125 bytes).
    pub fn parse(buf: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, rest @ ..] = buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_bits(b0 & 0x0F)?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (payload_len, ext) = match b1 & 0x7F {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => return Ok(None),
            },
            127 => match rest.get(..8) {
                Some(bytes) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(bytes);
                    let len = u64::from_be_bytes(be);
                    // RFC 6455 §5.2: "the most significant bit MUST be 0".
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (len, 8)
                }
                None => return Ok(None),
            },
            short => (u64::from(short), 0),
        };
        if opcode.is_control() {
            // RFC 6455 §5.5: "All control frames MUST have a payload length of 125
            // bytes or less and MUST NOT be fragmented."
            if payload_len > 125 {
                return Err(ProtocolError::ControlTooLong);
            }
            if !fin {
                return Err(ProtocolError::FragmentedControl);
            }
        }
        let mut len = 2 + ext;
        let mask = if masked {
            let Some(key) = rest.get(ext..ext + 4) else {
                return Ok(None);
            };
            len += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        let header = Self {
            fin,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, len)))
    }

    /// Encode into `out` using the minimal length encoding (§5.2 "MUST be used").
    pub fn encode(&self, out: &mut impl BufMut) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = self.encode_to_array(&mut buf);
        out.put_slice(&buf[..n]);
    }

    /// Encode into a fixed array, returning the number of bytes used.
    pub fn encode_to_array(&self, buf: &mut [u8; MAX_HEADER_LEN]) -> usize {
        buf[0] = u8::from(self.fin) << 7
            | u8::from(self.rsv1) << 6
            | u8::from(self.rsv2) << 5
            | u8::from(self.rsv3) << 4
            | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut n = 2;
        if self.payload_len < 126 {
            // Fits in 7 bits by the branch condition.
            buf[1] = mask_bit | self.payload_len as u8;
        } else if let Ok(len16) = u16::try_from(self.payload_len) {
            buf[1] = mask_bit | 126;
            buf[2..4].copy_from_slice(&len16.to_be_bytes());
            n = 4;
        } else {
            buf[1] = mask_bit | 127;
            buf[2..10].copy_from_slice(&self.payload_len.to_be_bytes());
            n = 10;
        }
        if let Some(key) = self.mask {
            buf[n..n + 4].copy_from_slice(&key);
            n += 4;
        }
        n
    }

    /// The encoded length of this header.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// XOR `buf` with `key`, where `buf[0]` is payload byte number `offset` (mod 4) of the
/// frame, so a payload arriving in pieces is unmasked piece by piece (§5.3).
/// Works a machine word at a time; no `unsafe`.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut key = key;
    key.rotate_left(offset % 4);
    let mut chunks = buf.chunks_exact_mut(8);
    let k32 = u32::from_ne_bytes(key);
    // Both halves hold the same 4 bytes, so the layout is right on either endianness.
    let k64 = u64::from(k32) | (u64::from(k32) << 32);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ k64).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::parse(bytes).unwrap().unwrap()
    }

    #[test]
    fn rfc_5_7_unmasked_hello() {
        let bytes = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = parse(&bytes);
        assert_eq!(
            (h.fin, h.opcode, h.mask, h.payload_len, n),
            (true, OpCode::Text, None, 5, 2)
        );
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, bytes[..2]);
    }

    #[test]
    fn rfc_5_7_masked_hello() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, n) = parse(&bytes);
        assert_eq!(
            (h.mask, h.payload_len, n),
            (Some([0x37, 0xfa, 0x21, 0x3d]), 5, 6)
        );
        let mut payload = bytes[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn rfc_5_7_length_encodings() {
        // 256 bytes binary: 82 7E 01 00; 64 KiB: 82 7F 00..00 01 00 00.
        let (h, n) = parse(&[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!((h.opcode, h.payload_len, n), (OpCode::Binary, 256, 4));
        let big = [0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        let (h, n) = parse(&big);
        assert_eq!((h.payload_len, n), (65536, 10));
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, big);
        assert_eq!(h.encoded_len(), 10);
        // Partial headers ask for more.
        for cut in 0..big.len() {
            assert_eq!(FrameHeader::parse(&big[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn header_rejects() {
        assert_eq!(
            FrameHeader::parse(&[0x83, 0]),
            Err(ProtocolError::ReservedOpcode(3))
        );
        assert_eq!(
            FrameHeader::parse(&[0x8b, 0]),
            Err(ProtocolError::ReservedOpcode(0xb))
        );
        assert_eq!(
            FrameHeader::parse(&[0x09, 0]),
            Err(ProtocolError::FragmentedControl)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126, 0, 126]),
            Err(ProtocolError::ControlTooLong)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::InvalidLength)
        );
    }

    #[test]
    fn mask_any_offset_matches_bytewise() {
        let key = [0x11, 0x22, 0x33, 0x44];
        let data: Vec<u8> = (0..100u8).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let expect: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(whole, expect);
        for split in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(pieces, expect);
        }
    }
}
