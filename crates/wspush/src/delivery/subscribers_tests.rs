#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use ws_server::test_util::{close_requested, detached, detached_stream, drain};
use ws_server::{Message, OverflowPolicy, Writers};

use super::*;

const LIMIT: usize = 64 << 20;

fn outlet(id: u64, format: Format) -> Outlet {
    match format {
        Format::Sse => Outlet {
            id,
            conn: detached_stream(id, LIMIT, OverflowPolicy::Close),
            format,
            ids: Some(Arc::default()),
            wake: None,
        },
        _ => Outlet {
            id,
            conn: detached(id, LIMIT, OverflowPolicy::Close),
            format,
            ids: None,
            wake: None,
        },
    }
}

fn text(s: &str) -> Payload {
    Payload::Text(Bytes::copy_from_slice(s.as_bytes()))
}

fn pos(seq: u64) -> Position {
    Position::new("e", seq)
}

/// The text of every message queued to `o`.
fn received(o: &Outlet) -> Vec<String> {
    drain(&o.conn)
        .into_iter()
        .map(|m| match m {
            Message::Text(b) => String::from_utf8(b.to_vec()).unwrap(),
            Message::Binary(b) => format!("binary {b:?}"),
        })
        .collect()
}

fn push(subs: &Subs, seq: u64, check_order: bool) -> Tally {
    let writers = Writers::default();
    let mut out = writers.burst();
    let payload = text(&seq.to_string());
    subs.fan_out(
        Some("c"),
        || Some(pos(seq)),
        &payload,
        check_order,
        &mut out,
    )
}

#[test]
fn each_format_in_use_is_encoded_once_per_push() {
    let subs = Subs::default();
    assert_eq!(push(&subs, 1, false).encodes, 0);
    let raw: Vec<Outlet> = (1..=3).map(|id| outlet(id, Format::Raw)).collect();
    for o in &raw {
        subs.insert(o.clone(), false);
    }
    let t = push(&subs, 2, false);
    assert_eq!((t.encodes, t.queued), (1, 3));
    let positioned = outlet(9, Format::Positioned);
    subs.insert(positioned.clone(), false);
    let t = push(&subs, 3, false);
    assert_eq!((t.encodes, t.queued), (2, 4));
    assert_eq!(received(&raw[0]), ["2", "3"]);
    assert_eq!(
        received(&positioned),
        ["{\"c\":\"c\",\"e\":\"e\",\"q\":3}\n3"]
    );
}

#[test]
fn a_member_changed_inside_a_fan_out_sees_the_next_push() {
    let subs = Arc::new(Subs::default());
    let early = outlet(1, Format::Raw);
    subs.insert(early.clone(), false);
    let late = outlet(2, Format::Raw);
    let writers = Writers::default();
    let mut out = writers.burst();
    // Numbering runs inside the fan-out, under its order lock: a subscribe meanwhile must
    // not wait for the fan-out (no deadlock here) and takes effect from the next push.
    let s = Arc::clone(&subs);
    let l = late.clone();
    let number = move || {
        s.insert(l, false);
        assert!(s.remove(1));
        Some(pos(1))
    };
    subs.fan_out(None, number, &text("1"), false, &mut out);
    subs.fan_out(None, || Some(pos(2)), &text("2"), false, &mut out);
    drop(out);
    assert_eq!(received(&early), ["1"]);
    assert_eq!(received(&late), ["2"]);
}

/// Subscribers come and go on another thread while one stream fans out: each gets one
/// unbroken run of the pushes (a suffix, a prefix, or a middle), nothing twice.
#[test]
fn members_changing_during_fan_outs_get_unbroken_runs() {
    const PUSHES: u64 = 400;
    let subs = Arc::new(Subs::default());
    for id in 100..300 {
        subs.insert(outlet(id, Format::Raw), false);
    }
    let leaving: Vec<Outlet> = (1..=20).map(|id| outlet(id, Format::Raw)).collect();
    for o in &leaving {
        subs.insert(o.clone(), false);
    }
    let joining: Vec<Outlet> = (21..=40).map(|id| outlet(id, Format::Raw)).collect();
    let done = Arc::new(AtomicU64::new(0));
    let churn = {
        let (subs, done) = (Arc::clone(&subs), Arc::clone(&done));
        let (leaving, joining) = (leaving.clone(), joining.clone());
        std::thread::spawn(move || {
            for (l, j) in leaving.iter().zip(&joining) {
                let target = done.load(Ordering::Acquire) + 10;
                while done.load(Ordering::Acquire) < target.min(PUSHES - 1) {
                    std::hint::spin_loop();
                }
                subs.insert(j.clone(), false);
                subs.remove(l.id);
            }
        })
    };
    for seq in 1..=PUSHES {
        push(&subs, seq, false);
        done.store(seq, Ordering::Release);
    }
    churn.join().unwrap();
    for o in leaving.iter().chain(&joining) {
        let got: Vec<u64> = received(o).iter().map(|s| s.parse().unwrap()).collect();
        assert!(
            !got.is_empty() || joining.iter().any(|j| j.id == o.id),
            "{}",
            o.id
        );
        for pair in got.windows(2) {
            assert_eq!(pair[0] + 1, pair[1], "subscriber {} got {got:?}", o.id);
        }
        if leaving.iter().any(|l| l.id == o.id) {
            assert_eq!(got.first(), Some(&1));
        } else {
            assert!(got.last().is_none_or(|&last| last == PUSHES));
        }
    }
}

#[test]
fn a_resume_gets_the_replay_then_the_buffered_pushes_it_lacks() {
    let subs = Subs::default();
    let r = outlet(5, Format::Positioned);
    subs.insert(r.clone(), true);
    assert_eq!(subs.count(), 1);
    // Live pushes 3 and 4 arrive while its history is read; the replay covers 2..=3.
    push(&subs, 3, false);
    push(&subs, 4, false);
    assert!(received(&r).is_empty(), "buffered, not queued");
    let replay = Replay {
        gap: None,
        entries: vec![(2, text("2")), (3, text("3"))],
        last: pos(3),
    };
    let t = subs.finish_resume(5, &r.conn, Some("c"), replay);
    assert_eq!((t.queued, t.gaps), (3, 0));
    push(&subs, 5, false);
    let seqs: Vec<String> = received(&r)
        .iter()
        .map(|m| m.rsplit('\n').next().unwrap().to_owned())
        .collect();
    assert_eq!(seqs, ["2", "3", "4", "5"]);
}

#[test]
fn a_buffered_push_after_a_hole_comes_behind_a_gap_notice() {
    let subs = Subs::default();
    let r = outlet(5, Format::Positioned);
    subs.insert(r.clone(), true);
    push(&subs, 9, false);
    let replay = Replay {
        gap: Some(pos(1)),
        entries: vec![(2, text("2"))],
        last: pos(2),
    };
    let t = subs.finish_resume(5, &r.conn, Some("c"), replay);
    assert_eq!((t.queued, t.gaps), (4, 2));
    let got = received(&r);
    assert!(got[0].contains("\"q\":1,\"gap\":true"), "{got:?}");
    assert!(got[1].ends_with("\n2"));
    assert!(got[2].contains("\"q\":8,\"gap\":true"), "{got:?}");
    assert!(got[3].ends_with("\n9"));
}

#[test]
fn a_resume_backlog_beyond_its_limit_closes_at_once() {
    let subs = Subs::default();
    let r = outlet(5, Format::Positioned);
    subs.insert(r.clone(), true);
    let big = text(&"x".repeat(1 << 20));
    let writers = Writers::default();
    let mut seq = 0;
    while close_requested(&r.conn).is_none() {
        seq += 1;
        assert!(seq <= 17, "still open after {seq} MiB buffered");
        let mut out = writers.burst();
        subs.fan_out(None, || Some(pos(seq)), &big, false, &mut out);
    }
    assert_eq!(
        seq, 16,
        "16 MiB of frames exceed the 16 MiB limit on the 16th"
    );
    assert_eq!(subs.count(), 0, "no longer buffered for");
    let replay = Replay {
        gap: None,
        entries: vec![],
        last: pos(0),
    };
    assert_eq!(subs.finish_resume(5, &r.conn, None, replay).queued, 0);
    assert!(received(&r).is_empty(), "nothing half-delivered");
}

#[test]
fn a_missed_broker_message_is_a_gap_for_positioned_members_only() {
    let subs = Subs::default();
    let (raw, positioned) = (outlet(1, Format::Raw), outlet(2, Format::Positioned));
    subs.insert(raw.clone(), false);
    subs.insert(positioned.clone(), false);
    push(&subs, 1, true);
    let t = push(&subs, 3, true);
    assert_eq!((t.gaps, t.queued), (1, 3));
    // A duplicate the node already delivered reaches no positioned member twice.
    assert_eq!(push(&subs, 3, true).queued, 1);
    assert_eq!(received(&raw), ["1", "3", "3"]);
    let got = received(&positioned);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[1].contains("\"q\":2,\"gap\":true"));
}

#[test]
fn a_resumed_member_ahead_of_the_live_stream_skips_what_it_has() {
    let subs = Subs::default();
    let r = outlet(5, Format::Positioned);
    subs.insert(r.clone(), true);
    let replay = Replay {
        gap: None,
        entries: vec![(1, text("1")), (2, text("2"))],
        last: pos(2),
    };
    subs.finish_resume(5, &r.conn, None, replay);
    // This node's live stream lags: 2 arrives after the resume already gave it.
    push(&subs, 2, true);
    push(&subs, 3, true);
    let got = received(&r);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[2].ends_with("\n3"));
}

#[test]
fn sse_subscribers_share_the_event_and_get_their_own_ids() {
    let subs = Subs::default();
    let (a, b) = (outlet(1, Format::Sse), outlet(2, Format::Sse));
    subs.insert(a.clone(), false);
    subs.insert(b.clone(), false);
    // b also joined the broadcast stream at 4: its id lists both.
    b.ids
        .as_ref()
        .unwrap()
        .advance(None, &Position::new("b0", 4), drop);
    let t = push(&subs, 7, false);
    assert_eq!((t.encodes, t.queued), (1, 2));
    assert_eq!(received(&a), ["id: since=e:7:c\nevent: c\ndata: 7\n\n"]);
    assert_eq!(
        received(&b),
        ["id: since=b0:4&since=e:7:c\nevent: c\ndata: 7\n\n"]
    );
}

#[test]
fn an_sse_resume_replays_with_ids_and_gaps_as_events() {
    let subs = Subs::default();
    let r = outlet(5, Format::Sse);
    subs.insert(r.clone(), true);
    push(&subs, 4, false);
    let replay = Replay {
        gap: Some(pos(1)),
        entries: vec![(2, text("2"))],
        last: pos(2),
    };
    subs.finish_resume(5, &r.conn, Some("c"), replay);
    let got = received(&r);
    assert_eq!(
        got,
        [
            "id: since=e:1:c\nevent: gap\ndata: {\"channel\":\"c\",\"epoch\":\"e\",\"seq\":1}\n\n",
            "id: since=e:2:c\nevent: c\ndata: 2\n\n",
            "id: since=e:3:c\nevent: gap\ndata: {\"channel\":\"c\",\"epoch\":\"e\",\"seq\":3}\n\n",
            "id: since=e:4:c\nevent: c\ndata: 4\n\n",
        ]
    );
}

/// `fan_out_all` of several payloads: numbered in order, and every member of every format
/// gets them in that order, with each push's tally of its own.
fn push_all(subs: &Subs, seqs: &[u64]) -> Vec<(Tally, Option<Position>)> {
    let writers = Writers::default();
    let mut out = writers.burst();
    let payloads: Vec<Payload> = seqs.iter().map(|s| text(&s.to_string())).collect();
    let mut next = seqs.iter();
    subs.fan_out_all(
        Some("c"),
        &payloads,
        |_| next.next().map(|s| pos(*s)),
        &mut out,
    )
}

#[test]
fn pushes_that_met_go_out_together_in_order_to_every_format() {
    let subs = Subs::default();
    let (raw, positioned, sse) = (
        outlet(1, Format::Raw),
        outlet(2, Format::Positioned),
        outlet(3, Format::Sse),
    );
    for o in [&raw, &positioned, &sse] {
        subs.insert(o.clone(), false);
    }
    let done = push_all(&subs, &[4, 5, 6]);
    let positions: Vec<u64> = done.iter().map(|(_, p)| p.as_ref().unwrap().seq).collect();
    assert_eq!(positions, [4, 5, 6]);
    for (tally, _) in &done {
        assert_eq!((tally.queued, tally.encodes, tally.full), (3, 3, 0));
    }
    assert_eq!(received(&raw), ["4", "5", "6"]);
    let tails: Vec<String> = received(&positioned)
        .iter()
        .map(|m| m.rsplit('\n').next().unwrap().to_owned())
        .collect();
    assert_eq!(tails, ["4", "5", "6"]);
    assert_eq!(
        received(&sse),
        [
            "id: since=e:4:c\nevent: c\ndata: 4\n\n",
            "id: since=e:5:c\nevent: c\ndata: 5\n\n",
            "id: since=e:6:c\nevent: c\ndata: 6\n\n",
        ]
    );
}

#[test]
fn pushes_that_met_count_a_full_queue_against_the_push_it_refused() {
    let subs = Subs::default();
    // Room for one 64 KiB frame: the second of the batch overflows and closes it (1008).
    let small = Outlet {
        conn: detached(1, 64 << 10, OverflowPolicy::Close),
        ..outlet(1, Format::Raw)
    };
    let roomy = outlet(2, Format::Raw);
    subs.insert(small.clone(), false);
    subs.insert(roomy.clone(), false);
    let writers = Writers::default();
    let mut out = writers.burst();
    let big = text(&"x".repeat(64 << 10));
    let payloads = [big.clone(), big.clone(), big];
    let mut seq = 0;
    let done = subs.fan_out_all(
        None,
        &payloads,
        |_| {
            seq += 1;
            Some(pos(seq))
        },
        &mut out,
    );
    let counts: Vec<(u64, u64, u64)> = done
        .iter()
        .map(|(t, _)| (t.queued, t.full, t.closed))
        .collect();
    assert_eq!(counts, [(2, 0, 0), (1, 1, 0), (1, 0, 1)]);
    assert!(close_requested(&small.conn).is_some());
    assert_eq!(received(&roomy).len(), 3);
}

#[test]
fn pushes_that_met_reach_a_resuming_member_after_its_replay_and_a_resumed_one_once() {
    let subs = Subs::default();
    let resuming = outlet(5, Format::Positioned);
    subs.insert(resuming.clone(), true);
    push_all(&subs, &[3, 4]);
    assert!(received(&resuming).is_empty(), "buffered, not queued");
    let replay = Replay {
        gap: None,
        entries: vec![(2, text("2")), (3, text("3"))],
        last: pos(3),
    };
    subs.finish_resume(5, &resuming.conn, Some("c"), replay);
    let tails = |o: &Outlet| -> Vec<String> {
        received(o)
            .iter()
            .map(|m| m.rsplit('\n').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(tails(&resuming), ["2", "3", "4"]);
    // Resumed up to 6, ahead of the live stream: of 5..=7 it gets only 7.
    let ahead = outlet(6, Format::Positioned);
    subs.insert(ahead.clone(), true);
    let replay = Replay {
        gap: None,
        entries: vec![(5, text("5")), (6, text("6"))],
        last: pos(6),
    };
    subs.finish_resume(6, &ahead.conn, Some("c"), replay);
    assert_eq!(tails(&ahead), ["5", "6"]);
    push_all(&subs, &[5, 6, 7]);
    assert_eq!(tails(&ahead), ["7"]);
    assert_eq!(tails(&resuming), ["5", "6", "7"]);
}
