//! The Redis bus's parsers on arbitrary bytes: every pub/sub payload kind, the cluster
//! control kinds (by-user commands, surveys and their answers, live messages) and the
//! header-only readers the subscription reader uses. Never panics; what parses and has
//! an encoder round-trips through it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wspush::broker::bus::{self, BusMessage};
use wspush::broker::control;

fuzz_target!(|bytes: &[u8]| {
    let _ = bus::receipt_of(bytes);
    let _ = bus::stream_of(bytes);
    let _ = bus::is_control(bytes);
    let Ok(msg) = BusMessage::parse(bytes) else {
        return;
    };
    let again = match &msg {
        BusMessage::Node(cmd) => cmd.encode(""),
        BusMessage::User(user, payload) => bus::encode_user(user, payload, ""),
        BusMessage::ByUser(cmd) => control::encode_user_command(cmd, ""),
        BusMessage::Query { asker, id, query } => control::encode_query(*asker, *id, query),
        BusMessage::Answer { id, node, report } => control::encode_report(*id, *node, report),
        BusMessage::Live(channel, payload) => control::encode_live(channel, payload, ""),
        // Stream messages are encoded by the Lua script in Redis.
        _ => return,
    };
    assert_eq!(BusMessage::parse(&again).as_ref(), Ok(&msg));
});
