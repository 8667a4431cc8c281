//! What [`TlsStream`](super::TlsStream) does with each rustls state that needs neither the
//! socket nor the caller, and the buffers rustls's encoders fill (sized as they ask).

use rustls::server::ServerConnectionData;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError, WriteTraffic,
};
use tokio::io::ReadBuf;

use super::Step;
use super::buffers::{CIPHER_BUF, Outgoing, Plain};
use crate::error::TlsStreamError;

/// Handles one state that neither needs the socket nor a `WriteTraffic` caller.
pub(super) fn handle(
    state: ConnectionState<'_, '_, ServerConnectionData>,
    outgoing: &mut Outgoing,
    plain: &mut Plain,
    mut out: Option<&mut ReadBuf<'_>>,
    discard: &mut usize,
) -> Result<Step, TlsStreamError> {
    match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            while let Some(record) = traffic.next_record() {
                let record = record?;
                *discard += record.discard;
                deliver(record.payload, out.as_deref_mut(), plain);
            }
            Ok(Step::Data)
        }
        ConnectionState::EncodeTlsData(mut enc) => {
            encode(&mut enc, outgoing)?;
            Ok(Step::Again)
        }
        // The encoded bytes are in `outgoing`, ahead of anything encrypted later.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            Ok(Step::Again)
        }
        ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => Ok(Step::NeedInput),
        ConnectionState::PeerClosed | ConnectionState::Closed => Ok(Step::PeerClosed),
        ConnectionState::ReadEarlyData(_) => Err(TlsStreamError::EarlyData),
        _ => Err(TlsStreamError::UnknownState),
    }
}

/// Copies a record's plaintext to the reader's buffer, the rest (in order) to `plain`.
pub(super) fn deliver(payload: &[u8], out: Option<&mut ReadBuf<'_>>, plain: &mut Plain) {
    let n = match out {
        Some(out) if plain.is_empty() => {
            let n = out.remaining().min(payload.len());
            out.put_slice(&payload[..n]);
            n
        }
        _ => 0,
    };
    if n < payload.len() {
        plain.extend(&payload[n..]);
    }
}

/// What a rustls encoder answered a buffer that was too small, or its refusal.
enum Refused {
    /// It needs this many bytes.
    Needs(usize),
    /// It has nothing (more) to write.
    Nothing,
    Failed(TlsStreamError),
}

/// Appends to `outgoing` what `write` puts in a buffer of the size it asks for.
fn append_sized(
    outgoing: &mut Outgoing,
    mut want: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Refused>,
) -> Result<(), TlsStreamError> {
    loop {
        let (at, room) = outgoing.grow(want);
        let refused = match write(room) {
            Ok(n) => {
                outgoing.truncate_to(at + n);
                return Ok(());
            }
            Err(refused) => refused,
        };
        outgoing.truncate_to(at);
        match refused {
            Refused::Needs(n) if n > want => want = n,
            Refused::Needs(_) => return Err(TlsStreamError::BufferSize),
            Refused::Nothing => return Ok(()),
            Refused::Failed(e) => return Err(e),
        }
    }
}

/// The size an encryption needs, or why it cannot be done.
fn encrypt_refused(e: EncryptError) -> Refused {
    match e {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Refused::Needs(required_size)
        }
        EncryptError::EncryptExhausted => Refused::Failed(TlsStreamError::EncryptExhausted),
    }
}

/// Appends the record rustls hands over to `outgoing`, sized as rustls asks.
pub(super) fn encode(
    enc: &mut EncodeTlsData<'_, ServerConnectionData>,
    outgoing: &mut Outgoing,
) -> Result<(), TlsStreamError> {
    append_sized(outgoing, 0, |room| {
        enc.encode(room).map_err(|e| match e {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Refused::Needs(required_size)
            }
            EncodeError::AlreadyEncoded => Refused::Nothing,
        })
    })
}

/// Encrypts `data` into `cipher` (grown if rustls asks for more); the bytes written.
pub(super) fn encrypt(
    wt: &mut WriteTraffic<'_, ServerConnectionData>,
    data: &[u8],
    cipher: &mut Vec<u8>,
) -> Result<usize, TlsStreamError> {
    if cipher.len() < CIPHER_BUF {
        cipher.resize(CIPHER_BUF, 0);
    }
    loop {
        match wt.encrypt(data, cipher).map_err(encrypt_refused) {
            Ok(n) => return Ok(n),
            Err(Refused::Needs(n)) if n > cipher.len() => cipher.resize(n, 0),
            Err(Refused::Failed(e)) => return Err(e),
            Err(Refused::Needs(_) | Refused::Nothing) => return Err(TlsStreamError::BufferSize),
        }
    }
}

/// Appends our close_notify alert to `outgoing`.
pub(super) fn close_notify(
    wt: &mut WriteTraffic<'_, ServerConnectionData>,
    outgoing: &mut Outgoing,
) -> Result<(), TlsStreamError> {
    append_sized(outgoing, 64, |room| {
        wt.queue_close_notify(room).map_err(encrypt_refused)
    })
}
