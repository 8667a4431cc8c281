//! The MessagePack type headers, shared by the skip-scanner and the value
//! decoder so both read the format the same way.

use crate::error::DecodeError;

/// One MessagePack header: the type and, for variable-size types, the length
/// of the body that follows (in bytes for str/bin/ext, in elements for
/// array, in pairs for map).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Header {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    /// Every str width and the pre-2013 "raw" type (fixraw a0-bf, `da`, `db`).
    Str(u32),
    Bin(u32),
    Array(u32),
    Map(u32),
    Ext(i8, u32),
}

impl Header {
    /// Bytes of body that follow the header (str, bin and ext payloads).
    pub(crate) fn body_len(self) -> usize {
        match self {
            Header::Str(n) | Header::Bin(n) | Header::Ext(_, n) => n as usize,
            _ => 0,
        }
    }
}

/// Reads `n` big-endian bytes after the marker, `None` if not all arrived.
fn be(buf: &[u8], n: usize) -> Option<u64> {
    let bytes = buf.get(1..=n)?;
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Parses the header at the start of `buf`.
///
/// `Ok(None)` means the header itself is incomplete; otherwise returns the
/// header and its length in bytes (including a fixext/ext type byte).
pub(crate) fn read_header(buf: &[u8]) -> Result<Option<(Header, usize)>, DecodeError> {
    let Some(&marker) = buf.first() else {
        return Ok(None);
    };
    // Lengths wider than 32 bits do not exist in the format, so `as u32`
    // on a value read from at most 4 bytes never truncates.
    let sized = |n: usize, f: fn(u32) -> Header| be(buf, n).map(|v| (f(v as u32), 1 + n));
    let ext = |n: usize| {
        let len = be(buf, n)?;
        let ty = *buf.get(1 + n)?;
        Some((Header::Ext(ty as i8, len as u32), 2 + n))
    };
    let fixext = |len: u32| buf.get(1).map(|&ty| (Header::Ext(ty as i8, len), 2));
    let parsed = match marker {
        0x00..=0x7f => Some((Header::Uint(u64::from(marker)), 1)),
        0x80..=0x8f => Some((Header::Map(u32::from(marker & 0x0f)), 1)),
        0x90..=0x9f => Some((Header::Array(u32::from(marker & 0x0f)), 1)),
        0xa0..=0xbf => Some((Header::Str(u32::from(marker & 0x1f)), 1)),
        0xc0 => Some((Header::Nil, 1)),
        // The format reserves 0xc1 ("never used"); no encoder emits it.
        0xc1 => return Err(DecodeError::ReservedByte),
        0xc2 => Some((Header::Bool(false), 1)),
        0xc3 => Some((Header::Bool(true), 1)),
        0xc4 => sized(1, Header::Bin),
        0xc5 => sized(2, Header::Bin),
        0xc6 => sized(4, Header::Bin),
        0xc7 => ext(1),
        0xc8 => ext(2),
        0xc9 => ext(4),
        0xca => be(buf, 4).map(|v| (Header::F32(f32::from_bits(v as u32)), 5)),
        0xcb => be(buf, 8).map(|v| (Header::F64(f64::from_bits(v)), 9)),
        0xcc => be(buf, 1).map(|v| (Header::Uint(v), 2)),
        0xcd => be(buf, 2).map(|v| (Header::Uint(v), 3)),
        0xce => be(buf, 4).map(|v| (Header::Uint(v), 5)),
        0xcf => be(buf, 8).map(|v| (Header::Uint(v), 9)),
        0xd0 => be(buf, 1).map(|v| (Header::Int(i64::from(v as u8 as i8)), 2)),
        0xd1 => be(buf, 2).map(|v| (Header::Int(i64::from(v as u16 as i16)), 3)),
        0xd2 => be(buf, 4).map(|v| (Header::Int(i64::from(v as u32 as i32)), 5)),
        0xd3 => be(buf, 8).map(|v| (Header::Int(v as i64), 9)),
        0xd4 => fixext(1),
        0xd5 => fixext(2),
        0xd6 => fixext(4),
        0xd7 => fixext(8),
        0xd8 => fixext(16),
        0xd9 => sized(1, Header::Str),
        0xda => sized(2, Header::Str),
        0xdb => sized(4, Header::Str),
        0xdc => sized(2, Header::Array),
        0xdd => sized(4, Header::Array),
        0xde => sized(2, Header::Map),
        0xdf => sized(4, Header::Map),
        0xe0..=0xff => Some((Header::Int(i64::from(marker as i8)), 1)),
    };
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_every_width() {
        let cases: &[(&[u8], Header, usize)] = &[
            (&[0x7f], Header::Uint(127), 1),
            (&[0xff], Header::Int(-1), 1),
            (&[0xa3], Header::Str(3), 1),
            (&[0xd9, 0x20], Header::Str(32), 2),
            (&[0xda, 0x01, 0x00], Header::Str(256), 3),
            (&[0xdb, 0, 1, 0, 0], Header::Str(65536), 5),
            (&[0xc4, 0x05], Header::Bin(5), 2),
            (&[0xc5, 0x01, 0x00], Header::Bin(256), 3),
            (&[0xc6, 0, 0, 1, 0], Header::Bin(256), 5),
            (&[0xd0, 0x80], Header::Int(-128), 2),
            (
                &[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
                Header::Int(-2),
                9,
            ),
            (&[0xcf, 0, 0, 0, 1, 0, 0, 0, 0], Header::Uint(1 << 32), 9),
            (&[0xd4, 0x07], Header::Ext(7, 1), 2),
            (&[0xc7, 0x03, 0xfe], Header::Ext(-2, 3), 3),
            (&[0xdd, 0, 0, 0, 2], Header::Array(2), 5),
            (&[0xdf, 0, 0, 0, 2], Header::Map(2), 5),
        ];
        for (bytes, header, len) in cases {
            assert_eq!(
                read_header(bytes),
                Ok(Some((*header, *len))),
                "{bytes:02x?}"
            );
            assert_eq!(read_header(&bytes[..len - 1]), Ok(None), "{bytes:02x?}");
        }
        assert_eq!(read_header(&[0xc1]), Err(DecodeError::ReservedByte));
    }
}
