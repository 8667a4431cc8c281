//! A log-linear latency histogram that many tasks record into at once.
//!
//! Why not the `hdrhistogram` crate: its `Histogram` needs `&mut self` to
//! record, so 10,000 subscriber tasks on several threads would need a lock or
//! per-thread copies plus a merge channel. Here a value is one relaxed
//! `fetch_add` on a bucket of the calling thread's shard (no contention in
//! practice), and a snapshot sums the shards. Buckets have 32 linear steps per
//! power of two, so a reported percentile is within ~3% of the true value,
//! which is finer than the run-to-run noise of a shared 2-core machine.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Linear sub-buckets per power of two (2^5): ~3% relative precision.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for any `u64`.
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;
/// Shards: one per recording thread in practice (threads beyond wrap around).
const SHARDS: usize = 8;

/// Keeps each shard's hot words on their own cache lines.
#[repr(align(64))]
struct Shard {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

/// The shared, thread-safe histogram (nanosecond values by convention).
pub struct Histogram {
    shards: Vec<Shard>,
}

/// A plain copy of the counts, for percentiles.
#[derive(Debug, Clone)]
pub struct Snapshot {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// The calling thread's shard index, assigned on first use.
pub(crate) fn thread_shard(n: usize) -> usize {
    SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed));
        }
        s.get() % n
    })
}

fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    ((shift as usize + 1) << SUB_BITS) + sub
}

/// The highest value that falls in bucket `i` (percentiles err upwards).
fn bucket_high(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = (i >> SUB_BITS) as u32 - 1;
    let sub = (i & (SUB - 1)) as u128;
    // u128: the top bucket's bound is 2^64 - 1.
    u64::try_from(((SUB as u128 + sub + 1) << shift) - 1).unwrap_or(u64::MAX)
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            shards: (0..SHARDS)
                .map(|_| Shard {
                    buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
                    max: AtomicU64::new(0),
                })
                .collect(),
        }
    }
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, v: u64) {
        let shard = &self.shards[thread_shard(SHARDS)];
        shard.buckets[bucket_of(v)].fetch_add(1, Ordering::Relaxed);
        shard.max.fetch_max(v, Ordering::Relaxed);
    }

    /// Sums the shards.
    pub fn snapshot(&self) -> Snapshot {
        let mut buckets = vec![0u64; BUCKETS];
        let mut max = 0;
        for shard in &self.shards {
            for (sum, b) in buckets.iter_mut().zip(&shard.buckets) {
                *sum += b.load(Ordering::Relaxed);
            }
            max = max.max(shard.max.load(Ordering::Relaxed));
        }
        let count = buckets.iter().sum();
        Snapshot {
            buckets,
            count,
            max,
        }
    }
}

impl Snapshot {
    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0..=1.0), never above the max; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went backwards");
            assert!(
                bucket_high(b) >= v,
                "bucket {b} high {} < {v}",
                bucket_high(b)
            );
            if b > 0 {
                assert!(bucket_high(b - 1) < v);
            }
            last = b;
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_within_three_percent() {
        let h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10_000);
        assert_eq!(s.max(), 10_000_000);
        for (q, want) in [
            (0.5, 5_000_000f64),
            (0.99, 9_900_000.0),
            (0.999, 9_990_000.0),
        ] {
            let got = s.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.035, "q{q}: {got} vs {want}");
        }
        assert_eq!(s.quantile(1.0), 10_000_000);
        assert_eq!(Histogram::default().snapshot().quantile(0.5), 0);
    }
}
