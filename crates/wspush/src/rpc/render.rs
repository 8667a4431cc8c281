//! The MessagePack form of `connections()`.

use msgpack_rpc::Value;

use crate::delivery::events::info_value;
use crate::delivery::hub::ConnSnapshot;
use crate::shared::Shared;

fn snapshot_value(s: &ConnSnapshot) -> Value {
    let mut map = info_value(&s.info, &s.channels);
    map.push((Value::from("queued_bytes"), Value::from(s.queued_bytes)));
    Value::Map(map)
}

/// `connections()`: one map per open connection.
pub fn connections_value(shared: &Shared) -> Value {
    Value::Array(
        shared
            .hub
            .connections()
            .iter()
            .map(snapshot_value)
            .collect(),
    )
}
