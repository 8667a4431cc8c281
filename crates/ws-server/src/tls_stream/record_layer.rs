//! Our own TLS 1.3 record layer (RFC 8446 §5), used once rustls has finished a TLS 1.3
//! handshake (see the [module docs](super)). Sans-IO: functions over byte slices.
//!
//! Only the framing is ours: the 5-byte header, the size limits, sequence numbers, record
//! boundaries, what each decrypted content type means after the handshake, key updates
//! (§4.6.3) and the confidentiality limit. The AEAD is rustls's own (the suite's
//! `Tls13AeadAlgorithm`): its encrypter and decrypter form the nonce from the IV and the
//! sequence number, add and remove the inner content type and padding, and refuse an inner
//! plaintext over 2^14, an all-zero one, or a protected change_cipher_spec. New traffic
//! secrets come from rustls too (its `KernelConnection`, behind [`TrafficKeys`]).

use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, Iv, MessageDecrypter, MessageEncrypter, OutboundChunks,
    OutboundPlainMessage, Tls13AeadAlgorithm,
};
use rustls::kernel::KernelConnection;
use rustls::server::ServerConnectionData;
use rustls::{
    AlertDescription, ConnectionTrafficSecrets, ContentType, PeerMisbehaved, ProtocolVersion,
    Tls13CipherSuite,
};

use crate::error::{TlsRecordError, TlsStreamError};

/// Bytes of a record header: content type, legacy version, length.
pub(super) const HEADER: usize = 5;

/// The most plaintext one record carries (RFC 8446 §5.1).
pub(super) const MAX_PLAIN: usize = 1 << 14;

/// The most ciphertext one record may carry (RFC 8446 §5.2): larger is record_overflow.
pub(super) const MAX_CIPHER: usize = MAX_PLAIN + 256;

/// Records sealed under one key before we rotate it, below the suite's confidentiality
/// limit: room for the KeyUpdate itself and an alert or close_notify after it.
const LIMIT_MARGIN: u64 = 16;

/// rustls's own ceiling on sequence numbers (its `SEQ_SOFT_LIMIT`), for suites whose
/// confidentiality limit is `u64::MAX`.
const SEQ_SOFT_LIMIT: u64 = 0xffff_ffff_ffff_0000;

/// In tests, every suite rotates its sending key this often, so that the tests against a
/// real rustls client go through our key updates (see `tests.rs`).
#[cfg(test)]
pub(super) const TEST_ROTATE_AT: u64 = 24;

const HANDSHAKE_KEY_UPDATE: u8 = 24;
const ALERT_WARNING: u8 = 1;
const ALERT_FATAL: u8 = 2;

/// Where new traffic secrets come from after a key update: rustls's `KernelConnection`
/// (or a fixed key, for the fuzz target).
pub(super) trait TrafficKeys {
    fn next_tx(&mut self) -> Result<ConnectionTrafficSecrets, rustls::Error>;
    fn next_rx(&mut self) -> Result<ConnectionTrafficSecrets, rustls::Error>;
}

impl TrafficKeys for KernelConnection<ServerConnectionData> {
    fn next_tx(&mut self) -> Result<ConnectionTrafficSecrets, rustls::Error> {
        self.update_tx_secret().map(|(_, secrets)| secrets)
    }

    fn next_rx(&mut self) -> Result<ConnectionTrafficSecrets, rustls::Error> {
        self.update_rx_secret().map(|(_, secrets)| secrets)
    }
}

/// What one record held, once opened.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Content<'a> {
    /// Application data (possibly empty), in place in the caller's buffer.
    Data(&'a [u8]),
    /// The peer's close_notify: end of its data.
    CloseNotify,
    /// Nothing for the reader: a key update (handled; an answer may be in `out`), or a
    /// user_canceled warning.
    Nothing,
}

/// One connection's TLS 1.3 record protection, both directions.
pub(super) struct RecordLayer<K> {
    keys: K,
    aead: &'static dyn Tls13AeadAlgorithm,
    tx: Box<dyn MessageEncrypter>,
    rx: Box<dyn MessageDecrypter>,
    /// Sequence number of the next record sealed (records sealed under the current key).
    tx_seq: u64,
    /// Sequence number of the next record opened.
    rx_seq: u64,
    /// `tx_seq` at which we send a KeyUpdate and rotate the sending key.
    rotate_at: u64,
    /// Our close_notify is sealed: nothing may follow it, not even a KeyUpdate answer.
    closed: bool,
    /// Key updates we sent (answers and our own rotations), for tests.
    #[cfg(test)]
    pub(super) tx_updates: u32,
}

impl<K> std::fmt::Debug for RecordLayer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordLayer")
            .field("tx_seq", &self.tx_seq)
            .field("rx_seq", &self.rx_seq)
            .finish_non_exhaustive()
    }
}

/// The key and IV of `secrets`, for the suite's AEAD.
fn key_iv(secrets: ConnectionTrafficSecrets) -> Result<(AeadKey, Iv), TlsStreamError> {
    match secrets {
        ConnectionTrafficSecrets::Aes128Gcm { key, iv }
        | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
        | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => Ok((key, iv)),
        _ => Err(TlsStreamError::UnknownState),
    }
}

impl<K: TrafficKeys> RecordLayer<K> {
    /// Protection for `suite` from the secrets and sequence numbers rustls hands over.
    pub(super) fn new(
        keys: K,
        suite: &'static Tls13CipherSuite,
        (tx_seq, tx): (u64, ConnectionTrafficSecrets),
        (rx_seq, rx): (u64, ConnectionTrafficSecrets),
    ) -> Result<Self, TlsStreamError> {
        let aead = suite.aead_alg;
        let (tx_key, tx_iv) = key_iv(tx)?;
        let (rx_key, rx_iv) = key_iv(rx)?;
        let limit = suite.common.confidentiality_limit.min(SEQ_SOFT_LIMIT);
        let rotate_at = limit.saturating_sub(LIMIT_MARGIN);
        #[cfg(test)]
        let rotate_at = rotate_at.min(TEST_ROTATE_AT);
        Ok(Self {
            keys,
            aead,
            tx: aead.encrypter(tx_key, tx_iv),
            rx: aead.decrypter(rx_key, rx_iv),
            tx_seq,
            rx_seq,
            rotate_at,
            closed: false,
            #[cfg(test)]
            tx_updates: 0,
        })
    }

    /// Opens the first record of `buf` (decrypting it in place). `None`: not a whole record
    /// yet. Otherwise the bytes it took and what it held; a KeyUpdate asking for ours puts
    /// it in `out`. An error is fatal: send [`RecordLayer::alert_for`] and stop.
    pub(super) fn open<'a>(
        &mut self,
        buf: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<(usize, Content<'a>)>, TlsStreamError> {
        let Some(len) = parse_header(buf)? else {
            return Ok(None);
        };
        let used = HEADER + len;
        let Some(body) = buf.get_mut(HEADER..used) else {
            return Ok(None);
        };
        let seq = self.rx_seq;
        self.rx_seq = seq.checked_add(1).ok_or(TlsStreamError::EncryptExhausted)?;
        let msg =
            InboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, body);
        let plain = self.rx.decrypt(msg, seq).map_err(|e| match e {
            rustls::Error::PeerSentOversizedRecord => TlsRecordError::Overflow(len),
            rustls::Error::PeerMisbehaved(PeerMisbehaved::IllegalTlsInnerPlaintext) => {
                TlsRecordError::ContentType(0)
            }
            rustls::Error::PeerMisbehaved(PeerMisbehaved::IllegalMiddleboxChangeCipherSpec) => {
                TlsRecordError::ContentType(ContentType::ChangeCipherSpec.into())
            }
            _ => TlsRecordError::BadMac,
        })?;
        let content = match plain.typ {
            ContentType::ApplicationData => Content::Data(plain.payload),
            ContentType::Alert => alert(plain.payload)?,
            ContentType::Handshake => {
                let update_requested = key_update(plain.payload)?;
                self.peer_updated(update_requested, out)?;
                Content::Nothing
            }
            other => return Err(TlsRecordError::ContentType(other.into()).into()),
        };
        Ok(Some((used, content)))
    }

    /// The peer's KeyUpdate: its next records use its next key; if it asked, ours (sent
    /// under our current key, after everything `out` holds) says we move to our next key.
    fn peer_updated(
        &mut self,
        update_requested: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), TlsStreamError> {
        let (key, iv) = key_iv(self.keys.next_rx()?)?;
        self.rx = self.aead.decrypter(key, iv);
        self.rx_seq = 0;
        if update_requested && !self.closed {
            self.update_tx(out)?;
        }
        Ok(())
    }

    /// Sends KeyUpdate(update_not_requested) under the current key, then switches to the next.
    fn update_tx(&mut self, out: &mut Vec<u8>) -> Result<(), TlsStreamError> {
        self.seal_one(
            ContentType::Handshake,
            &[HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0],
            out,
        )?;
        let (key, iv) = key_iv(self.keys.next_tx()?)?;
        self.tx = self.aead.encrypter(key, iv);
        self.tx_seq = 0;
        #[cfg(test)]
        {
            self.tx_updates += 1;
        }
        Ok(())
    }

    /// Seals `data` as application data records (at most 2^14 bytes each), appended to
    /// `out`; the sending key is rotated first whenever it nears its limit.
    pub(super) fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), TlsStreamError> {
        if self.closed {
            return Err(TlsStreamError::Closed);
        }
        for chunk in data.chunks(MAX_PLAIN) {
            if self.tx_seq >= self.rotate_at {
                self.update_tx(out)?;
            }
            self.seal_one(ContentType::ApplicationData, chunk, out)?;
        }
        Ok(())
    }

    /// Seals our close_notify; nothing is sealed after it.
    pub(super) fn close_notify(&mut self, out: &mut Vec<u8>) -> Result<(), TlsStreamError> {
        if self.closed {
            return Ok(());
        }
        self.seal_one(
            ContentType::Alert,
            &[ALERT_WARNING, AlertDescription::CloseNotify.into()],
            out,
        )?;
        self.closed = true;
        Ok(())
    }

    /// Seals the fatal alert `e` calls for, if any (and if we may still send).
    pub(super) fn alert_for(&mut self, e: &TlsStreamError, out: &mut Vec<u8>) {
        let TlsStreamError::Record(e) = e else {
            return;
        };
        if let (Some(desc), false) = (e.alert(), self.closed) {
            // Best effort: the connection fails whether or not the alert can be sealed.
            let _ = self.seal_one(ContentType::Alert, &[ALERT_FATAL, desc.into()], out);
            self.closed = true;
        }
    }

    /// Seals one record of `typ` (at most [`MAX_PLAIN`] bytes) onto `out`.
    fn seal_one(
        &mut self,
        typ: ContentType,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TlsStreamError> {
        let seq = self.tx_seq;
        // rustls refuses past its hard limit; key rotation keeps us far below.
        self.tx_seq = seq.checked_add(1).ok_or(TlsStreamError::EncryptExhausted)?;
        let msg = OutboundPlainMessage {
            typ,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(data),
        };
        let record = self.tx.encrypt(msg, seq)?;
        out.extend_from_slice(&record.encode());
        Ok(())
    }
}

/// The ciphertext length of the record at the front of `buf`, once its header is whole
/// (`None` before); the header's content type, version and length checked.
pub(super) fn parse_header(buf: &[u8]) -> Result<Option<usize>, TlsRecordError> {
    let Some([typ, major, minor, hi, lo]) = buf
        .get(..HEADER)
        .and_then(|h| <[u8; HEADER]>::try_from(h).ok())
    else {
        // The type can be refused before the rest of the header is in.
        return match buf.first() {
            Some(&typ) if typ != u8::from(ContentType::ApplicationData) => {
                Err(TlsRecordError::OuterType(typ))
            }
            _ => Ok(None),
        };
    };
    // After the handshake every record is protected: outer type application_data. A
    // change_cipher_spec is only tolerated during the handshake (RFC 8446 §5).
    if typ != u8::from(ContentType::ApplicationData) {
        return Err(TlsRecordError::OuterType(typ));
    }
    // The legacy version is otherwise ignored (RFC 8446 §5.1); rustls's deframer, too, only
    // refuses what is not 3.x.
    if major != 3 {
        return Err(TlsRecordError::Version(u16::from_be_bytes([major, minor])));
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if len > MAX_CIPHER {
        return Err(TlsRecordError::Overflow(len));
    }
    Ok(Some(len))
}

/// An alert's meaning after the handshake (RFC 8446 §6): close_notify ends the peer's
/// data, user_canceled is ignored (a close_notify follows it), anything else is fatal.
fn alert(payload: &[u8]) -> Result<Content<'static>, TlsRecordError> {
    let &[level, desc] = payload else {
        return Err(TlsRecordError::Alert);
    };
    match (level, AlertDescription::from(desc)) {
        (ALERT_WARNING | ALERT_FATAL, AlertDescription::CloseNotify) => Ok(Content::CloseNotify),
        (ALERT_WARNING, AlertDescription::UserCanceled) => Ok(Content::Nothing),
        // TLS 1.3 has no other warnings.
        (ALERT_WARNING, _) => Err(TlsRecordError::Alert),
        (ALERT_FATAL, _) => Err(TlsRecordError::PeerAlert(desc)),
        _ => Err(TlsRecordError::AlertLevel(level)),
    }
}

/// The one handshake message a client may send after the handshake: KeyUpdate (RFC 8446
/// §4.6.3), whether it requests ours. It must end at the record boundary (§5.1: a key
/// change), so a record holds it alone; a message split across records is refused as
/// unexpected (no client sends one: the message is 5 bytes).
fn key_update(payload: &[u8]) -> Result<bool, TlsRecordError> {
    match payload {
        [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0] => Ok(false),
        [HANDSHAKE_KEY_UPDATE, 0, 0, 1, 1] => Ok(true),
        [HANDSHAKE_KEY_UPDATE, 0, 0, 1, _] => Err(TlsRecordError::KeyUpdateValue),
        [HANDSHAKE_KEY_UPDATE, ..] => Err(TlsRecordError::KeyUpdateLength),
        [typ, ..] => Err(TlsRecordError::Handshake(*typ)),
        [] => Err(TlsRecordError::Handshake(0)),
    }
}

/// A fixed key for the fuzz target: every "new" secret is the same one.
#[cfg(any(test, feature = "fuzzing"))]
pub(super) struct FixedKeys;

#[cfg(any(test, feature = "fuzzing"))]
impl FixedKeys {
    fn secrets() -> ConnectionTrafficSecrets {
        ConnectionTrafficSecrets::Chacha20Poly1305 {
            key: AeadKey::from([7u8; 32]),
            iv: Iv::new([9u8; 12]),
        }
    }

    /// A record layer over the fixed key (ChaCha20-Poly1305), both directions at `seq` 0.
    pub(super) fn layer() -> Result<RecordLayer<Self>, TlsStreamError> {
        let suite = rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256
            .tls13()
            .ok_or(TlsStreamError::UnknownState)?;
        RecordLayer::new(Self, suite, (0, Self::secrets()), (0, Self::secrets()))
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl TrafficKeys for FixedKeys {
    fn next_tx(&mut self) -> Result<ConnectionTrafficSecrets, rustls::Error> {
        Ok(Self::secrets())
    }

    fn next_rx(&mut self) -> Result<ConnectionTrafficSecrets, rustls::Error> {
        Ok(Self::secrets())
    }
}

/// Fuzzing entry: `data` as ciphertext from a peer, and (so that decryption succeeds and the
/// content dispatch is reached) as plaintext records sealed by a peer with the same key.
/// Must never panic; every record opened must be within bounds.
#[cfg(feature = "fuzzing")]
pub fn fuzz_open(data: &[u8]) {
    let Ok(mut ours) = FixedKeys::layer() else {
        return;
    };
    let mut out = Vec::new();
    let mut raw = data.to_vec();
    open_all(&mut ours, &mut raw, &mut out);

    // The peer: records of (inner type from the first byte, payload from the rest), split
    // by 0xff bytes, sealed with rustls's encrypter, then opened one at a time.
    let (Ok(mut ours), Ok(mut peer)) = (FixedKeys::layer(), FixedKeys::layer()) else {
        return;
    };
    let mut wire = Vec::new();
    for part in data.split(|&b| b == 0xff) {
        let (typ, payload) = match part.split_first() {
            Some((&t, rest)) => (ContentType::from(t % 25), rest),
            None => (ContentType::ApplicationData, part),
        };
        let payload = &payload[..payload.len().min(MAX_PLAIN)];
        if peer.seal_one(typ, payload, &mut wire).is_err() {
            return;
        }
    }
    open_all(&mut ours, &mut wire, &mut out);
}

#[cfg(feature = "fuzzing")]
fn open_all(layer: &mut RecordLayer<FixedKeys>, mut buf: &mut [u8], out: &mut Vec<u8>) {
    loop {
        let len = buf.len();
        match layer.open(buf, out) {
            Ok(Some((used, content))) => {
                assert!(used <= len && used >= HEADER);
                if let Content::Data(d) = content {
                    assert!(d.len() <= MAX_PLAIN);
                }
                buf = &mut buf[used..];
            }
            Ok(None) => return,
            Err(e) => {
                layer.alert_for(&e, out);
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sealed(layer: &mut RecordLayer<FixedKeys>, typ: ContentType, payload: &[u8]) -> Vec<u8> {
        let mut wire = Vec::new();
        layer.seal_one(typ, payload, &mut wire).unwrap();
        wire
    }

    #[test]
    fn header_is_checked_as_soon_as_it_is_whole() {
        assert_eq!(parse_header(&[]), Ok(None));
        assert_eq!(parse_header(&[23]), Ok(None));
        assert_eq!(parse_header(&[23, 3, 3, 0]), Ok(None));
        assert_eq!(parse_header(&[23, 3, 3, 0, 0]), Ok(Some(0)));
        assert_eq!(
            parse_header(&[23, 3, 3, 0x41, 0x00, 1]),
            Ok(Some(MAX_CIPHER))
        );
        assert_eq!(
            parse_header(&[23, 3, 3, 0x41, 0x01]),
            Err(TlsRecordError::Overflow(MAX_CIPHER + 1))
        );
        assert_eq!(
            parse_header(&[23, 3, 3, 0xff, 0xff]),
            Err(TlsRecordError::Overflow(0xffff))
        );
        // Any 3.x is taken, as rustls does; not other majors.
        assert_eq!(parse_header(&[23, 3, 1, 0, 1]), Ok(Some(1)));
        assert_eq!(
            parse_header(&[23, 2, 0, 0, 1]),
            Err(TlsRecordError::Version(0x0200))
        );
        // Plaintext records after the handshake, refused from their first byte.
        for typ in [20u8, 21, 22, 24, 0, 255] {
            assert_eq!(parse_header(&[typ]), Err(TlsRecordError::OuterType(typ)));
            assert_eq!(
                parse_header(&[typ, 3, 3, 0, 2, 1, 0]),
                Err(TlsRecordError::OuterType(typ))
            );
        }
    }

    #[test]
    fn records_round_trip_split_anywhere() {
        let (mut peer, mut ours) = (FixedKeys::layer().unwrap(), FixedKeys::layer().unwrap());
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        peer.seal(&data, &mut wire).unwrap();
        peer.seal(b"", &mut wire).unwrap();
        // 40,000 bytes: three records of at most 2^14; the empty write seals nothing.
        assert_eq!(peer.tx_seq, 3);
        let mut out = Vec::new();
        // Fed one byte more each time: only whole records are opened.
        let (mut got, mut have, mut at) = (Vec::new(), 0, 0);
        while at < wire.len() {
            have = (have + 1).min(wire.len());
            let mut buf = wire[at..have].to_vec();
            match ours.open(&mut buf, &mut out).unwrap() {
                None => {}
                Some((used, Content::Data(d))) => {
                    assert!(d.len() <= MAX_PLAIN);
                    assert_eq!(used, have - at, "opened as soon as it is whole");
                    got.extend_from_slice(d);
                    at += used;
                }
                Some(other) => panic!("{other:?}"),
            }
        }
        assert!(got == data);
        assert!(out.is_empty());
    }

    #[test]
    fn empty_application_data_and_close_notify() {
        let (mut peer, mut ours) = (FixedKeys::layer().unwrap(), FixedKeys::layer().unwrap());
        let mut out = Vec::new();
        let mut rec = sealed(&mut peer, ContentType::ApplicationData, b"");
        let len = rec.len();
        assert_eq!(
            ours.open(&mut rec, &mut out).unwrap(),
            Some((len, Content::Data(&[])))
        );
        let mut rec = sealed(&mut peer, ContentType::Alert, &[1, 90]);
        let len = rec.len();
        assert_eq!(
            ours.open(&mut rec, &mut out).unwrap(),
            Some((len, Content::Nothing))
        );
        let mut rec = Vec::new();
        peer.close_notify(&mut rec).unwrap();
        let len = rec.len();
        assert_eq!(
            ours.open(&mut rec, &mut out).unwrap(),
            Some((len, Content::CloseNotify))
        );
        assert!(peer.seal(b"late", &mut Vec::new()).is_err());
    }

    fn record_error(e: TlsStreamError) -> TlsRecordError {
        match e {
            TlsStreamError::Record(e) => e,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn refused_contents_and_their_alerts() {
        let cases: [(ContentType, &[u8], TlsRecordError, Option<AlertDescription>); 10] = [
            (
                ContentType::ChangeCipherSpec,
                &[1],
                TlsRecordError::ContentType(20),
                Some(AlertDescription::UnexpectedMessage),
            ),
            (
                ContentType::Unknown(99),
                b"x",
                TlsRecordError::ContentType(99),
                Some(AlertDescription::UnexpectedMessage),
            ),
            (
                ContentType::Alert,
                &[2, 40],
                TlsRecordError::PeerAlert(40),
                None,
            ),
            (
                ContentType::Alert,
                &[1, 40],
                TlsRecordError::Alert,
                Some(AlertDescription::DecodeError),
            ),
            (
                ContentType::Alert,
                &[1],
                TlsRecordError::Alert,
                Some(AlertDescription::DecodeError),
            ),
            (
                ContentType::Alert,
                &[3, 0],
                TlsRecordError::AlertLevel(3),
                Some(AlertDescription::IllegalParameter),
            ),
            (
                ContentType::Handshake,
                &[4, 0, 0, 0],
                TlsRecordError::Handshake(4),
                Some(AlertDescription::UnexpectedMessage),
            ),
            // The first part of a KeyUpdate split across records.
            (
                ContentType::Handshake,
                &[24, 0],
                TlsRecordError::KeyUpdateLength,
                Some(AlertDescription::DecodeError),
            ),
            (
                ContentType::Handshake,
                &[24, 0, 0, 1, 2],
                TlsRecordError::KeyUpdateValue,
                Some(AlertDescription::IllegalParameter),
            ),
            // Two KeyUpdates in one record: the first is not at the record boundary.
            (
                ContentType::Handshake,
                &[24, 0, 0, 1, 0, 24, 0, 0, 1, 0],
                TlsRecordError::KeyUpdateLength,
                Some(AlertDescription::DecodeError),
            ),
        ];
        for (typ, payload, want, alert) in cases {
            let (mut peer, mut ours) = (FixedKeys::layer().unwrap(), FixedKeys::layer().unwrap());
            let mut rec = sealed(&mut peer, typ, payload);
            let e = record_error(ours.open(&mut rec, &mut Vec::new()).unwrap_err());
            assert_eq!(e, want, "{typ:?} {payload:?}");
            assert_eq!(e.alert(), alert, "{typ:?} {payload:?}");
            // What we send for it: one sealed alert record, or nothing.
            let mut out = Vec::new();
            ours.alert_for(&TlsStreamError::Record(e), &mut out);
            match alert {
                Some(desc) => {
                    let mut theirs = FixedKeys::layer().unwrap();
                    let e = record_error(theirs.open(&mut out, &mut Vec::new()).unwrap_err());
                    assert_eq!(e, TlsRecordError::PeerAlert(desc.into()));
                }
                None => assert!(out.is_empty()),
            }
        }
    }

    #[test]
    fn bad_mac_short_and_zero_records() {
        let (mut peer, mut ours) = (FixedKeys::layer().unwrap(), FixedKeys::layer().unwrap());
        let mut rec = sealed(&mut peer, ContentType::ApplicationData, b"hello");
        let last = rec.len() - 1;
        rec[last] ^= 1;
        let e = record_error(ours.open(&mut rec, &mut Vec::new()).unwrap_err());
        assert_eq!(
            (e, e.alert()),
            (TlsRecordError::BadMac, Some(AlertDescription::BadRecordMac))
        );
        // Shorter than a tag, and empty.
        for mut rec in [vec![23, 3, 3, 0, 3, 1, 2, 3], vec![23, 3, 3, 0, 0]] {
            let mut ours = FixedKeys::layer().unwrap();
            let e = record_error(ours.open(&mut rec, &mut Vec::new()).unwrap_err());
            assert_eq!(e, TlsRecordError::BadMac);
        }
        // A record out of order (sequence 1 where 0 is due) does not open either.
        let mut peer = FixedKeys::layer().unwrap();
        let _ = sealed(&mut peer, ContentType::ApplicationData, b"first");
        let mut second = sealed(&mut peer, ContentType::ApplicationData, b"second");
        let mut ours = FixedKeys::layer().unwrap();
        let e = record_error(ours.open(&mut second, &mut Vec::new()).unwrap_err());
        assert_eq!(e, TlsRecordError::BadMac);
        // All padding, no content type.
        let mut peer = FixedKeys::layer().unwrap();
        let mut rec = sealed(&mut peer, ContentType::Unknown(0), b"");
        let mut ours = FixedKeys::layer().unwrap();
        let e = record_error(ours.open(&mut rec, &mut Vec::new()).unwrap_err());
        assert_eq!(e, TlsRecordError::ContentType(0));
    }

    #[test]
    fn key_update_requested_is_answered_under_the_old_key() {
        let (mut peer, mut ours) = (FixedKeys::layer().unwrap(), FixedKeys::layer().unwrap());
        // Two records ahead of it: the answer is sealed as our third.
        let mut out = Vec::new();
        ours.seal(b"a", &mut out).unwrap();
        ours.seal(b"b", &mut out).unwrap();
        let mut rec = sealed(&mut peer, ContentType::Handshake, &[24, 0, 0, 1, 1]);
        // The peer moves to its next key (the same fixed key, from sequence 0).
        peer.tx_seq = 0;
        let len = rec.len();
        assert_eq!(
            ours.open(&mut rec, &mut out).unwrap(),
            Some((len, Content::Nothing))
        );
        assert_eq!((ours.rx_seq, ours.tx_seq, ours.tx_updates), (0, 0, 1));
        // The peer reads a, b, then our KeyUpdate (not requesting one).
        let mut theirs = FixedKeys::layer().unwrap();
        let mut buf = &mut out[..];
        for want in [Content::Data(b"a"), Content::Data(b"b"), Content::Nothing] {
            let (used, got) = theirs.open(buf, &mut Vec::new()).unwrap().unwrap();
            assert_eq!(got, want);
            buf = &mut buf[used..];
        }
        assert!(buf.is_empty());
        assert_eq!(theirs.tx_updates, 0, "update_not_requested is not answered");
        // Not requested: nothing to send.
        let mut rec = Vec::new();
        peer.update_tx(&mut rec).unwrap();
        let mut out = Vec::new();
        assert!(ours.open(&mut rec, &mut out).unwrap().is_some());
        assert!(out.is_empty());
        assert_eq!(ours.tx_updates, 1);
        let mut rec = sealed(&mut peer, ContentType::ApplicationData, b"new key");
        let got = ours.open(&mut rec, &mut out).unwrap().map(|(_, c)| c);
        assert_eq!(got, Some(Content::Data(b"new key")));
    }

    #[test]
    fn sending_key_rotates_before_its_limit() {
        let mut ours = FixedKeys::layer().unwrap();
        let mut wire = Vec::new();
        for _ in 0..TEST_ROTATE_AT * 3 {
            ours.seal(b"x", &mut wire).unwrap();
        }
        assert_eq!(ours.tx_updates, 2);
        assert!(ours.tx_seq <= TEST_ROTATE_AT);
        let mut theirs = FixedKeys::layer().unwrap();
        let (mut buf, mut data) = (&mut wire[..], 0);
        while !buf.is_empty() {
            let (used, got) = theirs.open(buf, &mut Vec::new()).unwrap().unwrap();
            if got == Content::Data(b"x") {
                data += 1;
            }
            buf = &mut buf[used..];
        }
        assert_eq!(data, TEST_ROTATE_AT * 3);
    }
}
