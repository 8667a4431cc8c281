#![allow(clippy::unwrap_used)]
use super::*;
use crate::delivery::history::plan;
use crate::delivery::query::Since;
use bytes::Bytes;
use std::time::Duration;

fn text(s: &'static str) -> Payload {
    Payload::Text(Bytes::from_static(s.as_bytes()))
}

fn sized(n: usize) -> Payload {
    Payload::Binary(Bytes::from(vec![7u8; n]))
}

fn keep(len: usize, max_age: Option<u64>, stream_bytes: usize, total_bytes: usize) -> Retention {
    Retention {
        len,
        max_age: max_age.map(Duration::from_secs),
        stream_bytes,
        total_bytes,
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// Appends to channel `name` at `at`, as the hub does.
fn publish(h: &MemoryHistory, name: &str, p: &Payload, at: Instant) -> Position {
    lock(&h.channel(name)).append(p, h.retention(), at)
}

fn seqs(h: &MemoryHistory, name: &str, at: Instant) -> Vec<u64> {
    let ring = h.channel(name);
    let read = lock(&ring).read(at);
    read.entries.iter().map(|(s, _)| *s).collect()
}

/// Sweeps at `at` until nothing more is due, in steps of `budget`.
fn sweep_all(h: &MemoryHistory, at: Instant, budget: usize) -> usize {
    let mut steps = 1;
    while h.sweep(at, budget) {
        steps += 1;
    }
    steps
}

#[test]
fn ring_keeps_the_last_n_and_numbers_from_one() {
    let h = MemoryHistory::new(keep(2, None, 0, 0));
    let now = Instant::now();
    for (i, s) in ["a", "b", "c"].into_iter().enumerate() {
        assert_eq!(publish(&h, "c", &text(s), now).seq, i as u64 + 1);
    }
    let r = lock(&h.channel("c")).read(now);
    assert_eq!(r.last_seq, 3);
    assert_eq!(r.entries, vec![(2, text("b")), (3, text("c"))]);
    // The count limit is the configured length, not a trim.
    assert_eq!(h.usage().trimmed_stream, 0);
}

#[test]
fn ring_forgets_old_messages() {
    let h = MemoryHistory::new(keep(10, Some(5), 0, 0));
    let t0 = Instant::now();
    h.broadcast().append(&text("old"), h.retention(), t0);
    h.broadcast()
        .append(&text("new"), h.retention(), t0 + 4 * SECOND);
    let r = h.broadcast().read(t0 + 6 * SECOND);
    assert_eq!(r.entries, vec![(2, text("new"))]);
}

#[test]
fn memory_history_gives_channels_their_own_epochs() {
    let h = MemoryHistory::new(keep(4, None, 0, 0));
    let now = Instant::now();
    let a = publish(&h, "a", &text("1"), now);
    let b = publish(&h, "b", &text("1"), now);
    assert_ne!(a.epoch, b.epoch);
    assert_eq!(h.read(Some("a")).entries, vec![(1, text("1"))]);
    assert_eq!(h.read(Some("zzz")), HistoryRead::default());
    assert_eq!(h.broadcast().append(&text("x"), h.retention(), now).seq, 1);
}

#[test]
fn the_per_stream_byte_limit_trims_the_oldest_and_counts() {
    let one = cost(&sized(100));
    let h = MemoryHistory::new(keep(100, None, 3 * one, 0));
    let now = Instant::now();
    for _ in 0..5 {
        publish(&h, "c", &sized(100), now);
    }
    assert_eq!(seqs(&h, "c", now), [3, 4, 5]);
    let u = h.usage();
    assert_eq!((u.trimmed_stream, u.bytes), (2, 3 * one as u64));
    // A resume from before the trim gets a gap notice, then what is kept.
    let resume = |seq: u64| {
        let read = lock(&h.channel("c")).read(now);
        let since = Since {
            stream: Some("c".into()),
            epoch: read.epoch.to_string(),
            seq,
        };
        plan(&since, read)
    };
    let r = resume(1);
    assert_eq!((r.gap.map(|g| g.seq), r.entries.len()), (Some(2), 3));
    // Larger than the whole limit: numbered, never kept, and what came before
    // goes with it (all counted), so that no hole is replayed over.
    let big = publish(&h, "c", &sized(3 * one), now);
    assert_eq!(big.seq, 6);
    assert_eq!(seqs(&h, "c", now), [] as [u64; 0]);
    let u = h.usage();
    assert_eq!((u.trimmed_stream, u.bytes), (6, 0));
    // A resume from just before the big one: a gap notice, never silence.
    let r = resume(5);
    assert_eq!((r.gap.map(|g| g.seq), r.last.seq), (Some(6), 6));
    assert!(r.entries.is_empty());
    // After it: the gap covers it, the rest is replayed.
    publish(&h, "c", &sized(100), now);
    let r = resume(4);
    assert_eq!((r.gap.map(|g| g.seq), r.entries.len()), (Some(6), 1));
    assert_eq!(resume(6).gap, None);
}

#[test]
fn the_total_limit_drops_the_oldest_message_of_any_stream() {
    let one = cost(&sized(10));
    let h = MemoryHistory::new(keep(2, None, 0, 4 * one));
    let t0 = Instant::now();
    let at = |s: u32| t0 + s * SECOND;
    publish(&h, "a", &sized(10), at(1));
    publish(&h, "a", &sized(10), at(2));
    publish(&h, "b", &sized(10), at(3));
    // a's first message leaves by the count limit: its place in the heap is stale.
    publish(&h, "a", &sized(10), at(4));
    publish(&h, "c", &sized(10), at(5));
    assert_eq!(h.usage().trimmed_total, 0);
    // Five would be kept: the oldest of all (a's 2, after the stale 1) goes.
    publish(&h, "b", &sized(10), at(6));
    assert_eq!(seqs(&h, "a", at(6)), [3]);
    assert_eq!(seqs(&h, "b", at(6)), [1, 2]);
    publish(&h, "c", &sized(10), at(7));
    assert_eq!(seqs(&h, "b", at(7)), [2]);
    // c's own count limit makes room: nothing more from the others.
    publish(&h, "c", &sized(10), at(8));
    assert_eq!(seqs(&h, "a", at(8)), [3]);
    publish(&h, "b", &sized(10), at(9));
    assert_eq!(seqs(&h, "a", at(9)), [] as [u64; 0]);
    let u = h.usage();
    assert_eq!((u.trimmed_total, u.bytes), (3, 4 * one as u64));
    // The stream emptied by the total keeps its numbering.
    assert_eq!(publish(&h, "a", &sized(10), at(10)).seq, 4);
}

#[test]
fn idle_channels_are_forgotten_in_bounded_steps_and_the_map_shrinks() {
    let h = MemoryHistory::new(keep(10, Some(2), 0, 0));
    let t0 = Instant::now();
    for i in 0..5000 {
        publish(&h, &format!("c{i}"), &text("x"), t0);
    }
    // A channel published to since is kept, and so is the broadcast numbering.
    publish(&h, "live", &text("x"), t0 + 2 * SECOND);
    h.broadcast().append(&text("b"), h.retention(), t0);
    let grown = h.read_map().capacity();
    assert!(!h.sweep(t0 + SECOND, 64), "nothing is due yet");
    assert_eq!(h.usage().channels, 5001);
    assert!(sweep_all(&h, t0 + 3 * SECOND, 64) > 10, "bounded steps");
    let u = h.usage();
    assert_eq!((u.channels, u.expired_channels), (1, 5000));
    assert_eq!(u.bytes, cost(&text("x")) as u64);
    assert!(
        h.read_map().capacity() < grown / 4,
        "the map gave its room back"
    );
    assert!(lock(&h.ledger.oldest).capacity() <= 1024 * 4);
    // The broadcast stream lost its messages, not its numbering.
    let b = h.broadcast().read(t0 + 3 * SECOND);
    assert_eq!((b.last_seq, b.entries.len()), (1, 0));
    // A forgotten channel starts again in a new epoch: resumes get a gap notice.
    let again = publish(&h, "c1", &text("y"), t0 + 3 * SECOND);
    assert_eq!(again.seq, 1);
}

#[test]
fn channels_that_keep_no_messages_are_forgotten_too() {
    // history_len 0 (positions only) and messages over the per-stream limit.
    for k in [keep(0, Some(2), 0, 0), keep(10, Some(2), 8, 0)] {
        let h = MemoryHistory::new(k);
        let t0 = Instant::now();
        for i in 0..100 {
            publish(&h, &format!("c{i}"), &sized(64), t0);
        }
        assert_eq!(h.usage().bytes, 0);
        sweep_all(&h, t0 + 3 * SECOND, 1000);
        assert_eq!(h.usage().channels, 0, "{k:?}");
    }
}

#[test]
fn a_channel_a_publisher_holds_is_not_forgotten_under_it() {
    let h = MemoryHistory::new(keep(10, Some(2), 0, 0));
    let t0 = Instant::now();
    publish(&h, "c", &text("x"), t0);
    let held = h.channel("c");
    sweep_all(&h, t0 + 3 * SECOND, 10);
    assert_eq!(h.usage().channels, 1);
    // The publisher appends and lets go: the numbering went on in the same ring.
    assert_eq!(
        lock(&held)
            .append(&text("y"), h.retention(), t0 + 3 * SECOND)
            .seq,
        2
    );
    drop(held);
    sweep_all(&h, t0 + 4 * SECOND, 10);
    assert_eq!(h.usage().channels, 1);
    sweep_all(&h, t0 + 6 * SECOND, 10);
    assert_eq!(h.usage().channels, 0);
    assert_eq!(h.usage().expired_channels, 1);
}

#[test]
fn concurrent_publishers_and_a_sweeper_stay_within_the_total() {
    let one = cost(&sized(50));
    let total = 40 * one;
    let h = Arc::new(MemoryHistory::new(keep(5, Some(1), 3 * one, total)));
    let t0 = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let h = Arc::clone(&h);
            scope.spawn(move || {
                for i in 0..2000u64 {
                    let at = t0 + Duration::from_micros(i * 1000 + t);
                    publish(&h, &format!("c{}", (i * 7 + t) % 97), &sized(50), at);
                }
            });
        }
        let h = Arc::clone(&h);
        scope.spawn(move || {
            for i in 0..200u64 {
                h.sweep(t0 + Duration::from_millis(i * 10), 16);
            }
        });
    });
    let u = h.usage();
    assert!(u.bytes <= total as u64, "{u:?}");
    assert!(u.trimmed_total > 0 && u.trimmed_stream > 0, "{u:?}");
    // What the streams hold adds up to the total counted.
    let held: usize = (0..97)
        .map(|c| {
            let ring = h.channel(&format!("c{c}"));
            lock(&ring).kept.lock().bytes
        })
        .sum();
    assert_eq!(held as u64, h.usage().bytes);
    sweep_all(&h, t0 + 10 * SECOND, 1000);
    assert_eq!(h.usage().bytes, 0);
}
