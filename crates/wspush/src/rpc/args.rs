//! Reading the positional arguments of a MessagePack-RPC call, with the error texts
//! every method shares.

use msgpack_rpc::{RpcError, Value};

/// `disconnect(conn_id[, code, reason])` arguments.
pub fn disconnect_args(p: &[Value]) -> Result<(u64, u16, String), RpcError> {
    let id = conn_id_arg(p, 0)?;
    let code = close_code_arg(p, 1)?;
    let reason = match p.get(2) {
        Some(Value::Nil) | None => String::new(),
        Some(_) => string_arg(p, 2, "reason")?,
    };
    // RFC 6455 §5.5: a control frame payload is at most 125 bytes, 2 of them the code.
    if reason.len() > 123 {
        return Err(RpcError::message("reason is longer than 123 bytes"));
    }
    Ok((id, code, reason))
}

/// Takes argument `i` out of `params` (nil if absent).
pub fn take(params: &mut [Value], i: usize) -> Value {
    params
        .get_mut(i)
        .map_or(Value::Nil, |v| std::mem::replace(v, Value::Nil))
}

/// Argument `i` as a UTF-8 string (msgpack str or bin).
pub fn string_arg(params: &[Value], i: usize, name: &str) -> Result<String, RpcError> {
    match params.get(i) {
        Some(Value::String(s)) => s
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| RpcError::message(format!("{name} must be valid UTF-8"))),
        Some(Value::Binary(b)) => String::from_utf8(b.clone())
            .map_err(|_| RpcError::message(format!("{name} must be valid UTF-8"))),
        _ => Err(RpcError::message(format!("{name} must be a string"))),
    }
}

/// Argument `i` as a connection id.
pub fn conn_id_arg(params: &[Value], i: usize) -> Result<u64, RpcError> {
    params
        .get(i)
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::message("conn_id must be a non-negative integer"))
}

fn close_code_arg(params: &[Value], i: usize) -> Result<u16, RpcError> {
    match params.get(i) {
        None | Some(Value::Nil) => Ok(ws_proto::close::NORMAL),
        Some(v) => v
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| ws_proto::close::is_valid_wire_code(*c))
            .ok_or_else(|| {
                RpcError::message(format!(
                    "invalid close code {v}: use 1000-1003, 1007-1014 or 3000-4999"
                ))
            }),
    }
}
