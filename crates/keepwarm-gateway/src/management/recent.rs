//! The last five minutes per provider, for the dashboard's charts: requests
//! finished and latency p50/p99 in 10-second slots.
//!
//! Each slot holds a count and a log-scale latency histogram (buckets 10%
//! apart from 0.1 ms, the last open-ended), so a percentile is known to
//! within 5%. Recording takes a short lock and never awaits; a slot is
//! cleared when the ring wraps around to it. Times come from tokio's clock
//! (paused in tests), measured from when the recorder was made.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

/// Seconds per slot.
pub const SLOT_SECONDS: u64 = 10;
/// Slots kept: 30 × 10 s = the last five minutes.
pub const SLOTS: usize = 30;
/// Histogram buckets: `0.1 ms × 1.1^i`, up to ~10 minutes; the last is open-ended.
const BUCKETS: usize = 170;
const BASE_MS: f64 = 0.1;
const GROWTH: f64 = 1.1;

#[derive(Clone)]
struct Slot {
    /// `now / SLOT_SECONDS` of the slot's start; `u64::MAX` when unused.
    index: u64,
    count: u64,
    buckets: Box<[u32; BUCKETS]>,
}

impl Slot {
    fn empty() -> Slot {
        Slot {
            index: u64::MAX,
            count: 0,
            buckets: Box::new([0; BUCKETS]),
        }
    }

    /// The latency (ms) at quantile `q` (0..=1), the geometric middle of its
    /// bucket; `None` when the slot is empty.
    fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return Some(bucket_middle(i));
            }
        }
        Some(bucket_middle(BUCKETS - 1))
    }
}

fn bucket_of(d: Duration) -> usize {
    let ms = d.as_secs_f64() * 1000.0;
    if ms <= BASE_MS {
        return 0;
    }
    let i = ((ms / BASE_MS).ln() / GROWTH.ln()).floor();
    (i as usize).min(BUCKETS - 1)
}

fn bucket_middle(i: usize) -> f64 {
    let lo = BASE_MS * GROWTH.powi(i as i32);
    let mid = lo * GROWTH.sqrt();
    (mid * 100.0).round() / 100.0
}

/// One provider's ring of slots.
pub(crate) struct Series {
    epoch: Instant,
    slots: Vec<Slot>,
}

impl Series {
    fn new(epoch: Instant) -> Series {
        Series {
            epoch,
            slots: vec![Slot::empty(); SLOTS],
        }
    }

    fn index_at(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / SLOT_SECONDS
    }

    fn record(&mut self, now: Instant, took: Duration) {
        let index = self.index_at(now);
        let slot = &mut self.slots[(index % SLOTS as u64) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::empty()
            };
        }
        slot.count += 1;
        let b = &mut slot.buckets[bucket_of(took)];
        *b = b.saturating_add(1);
    }

    /// The last [`SLOTS`] slots, oldest first; the last one is the current,
    /// still filling slot.
    fn points(&self, now: Instant) -> Vec<Value> {
        let current = self.index_at(now);
        (0..SLOTS as u64)
            .rev()
            .map(|back| {
                let slot = current
                    .checked_sub(back)
                    .map(|i| &self.slots[(i % SLOTS as u64) as usize])
                    .filter(|s| s.index == current - back);
                let (count, p50, p99) = slot.map_or((0, None, None), |s| {
                    (s.count, s.quantile(0.5), s.quantile(0.99))
                });
                json!({
                    "secondsAgo": back * SLOT_SECONDS,
                    "requests": count,
                    "requestsPerSecond": count as f64 / SLOT_SECONDS as f64,
                    "p50Ms": p50,
                    "p99Ms": p99,
                })
            })
            .collect()
    }
}

/// Every provider's series, by provider name.
#[derive(Default)]
pub(crate) struct Recent {
    series: Mutex<HashMap<String, Arc<Mutex<Series>>>>,
}

impl Recent {
    /// The series of `provider`, made on first use.
    pub(crate) fn series(&self, provider: &str) -> RecentSeries {
        let mut map = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = map
            .entry(provider.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Series::new(Instant::now()))))
            .clone();
        RecentSeries(s)
    }

    /// `{"slotSeconds": 10, "points": [...]}` for `provider`: 30 points,
    /// oldest first, each with `secondsAgo` (when the slot started, relative
    /// to the current slot), `requests`, `requestsPerSecond`, `p50Ms` and
    /// `p99Ms` (null when the slot had no request).
    pub(crate) fn json(&self, provider: &str) -> Value {
        let s = self.series(provider);
        let points =
            s.0.lock()
                .unwrap_or_else(|e| e.into_inner())
                .points(Instant::now());
        json!({ "slotSeconds": SLOT_SECONDS, "points": points })
    }
}

/// A handle on one provider's series.
#[derive(Clone)]
pub(crate) struct RecentSeries(Arc<Mutex<Series>>);

impl RecentSeries {
    /// Records a request that took `took`, finishing now.
    pub(crate) fn record(&self, took: Duration) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(Instant::now(), took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::advance;

    fn point(v: &Value, i: usize) -> (u64, u64, Option<f64>, Option<f64>) {
        let p = &v["points"][i];
        (
            p["secondsAgo"].as_u64().unwrap(),
            p["requests"].as_u64().unwrap(),
            p["p50Ms"].as_f64(),
            p["p99Ms"].as_f64(),
        )
    }

    #[test]
    fn buckets_are_ten_percent_apart() {
        for ms in [0.5, 1.0, 7.0, 20.0, 250.0, 4_000.0] {
            let got = bucket_middle(bucket_of(Duration::from_secs_f64(ms / 1000.0)));
            assert!((got - ms).abs() / ms <= 0.06, "{ms} ms → {got}");
        }
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_secs(100_000)), BUCKETS - 1);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_count_requests_and_percentiles_then_age_out() {
        let recent = Recent::default();
        let s = recent.series("p");
        // 100 requests: 98 at 10 ms, 2 at 500 ms → p50 ≈ 10, p99 ≈ 500.
        for i in 0..100 {
            let ms = if i < 98 { 10 } else { 500 };
            s.record(Duration::from_millis(ms));
        }
        let v = recent.json("p");
        assert_eq!(v["points"].as_array().unwrap().len(), SLOTS);
        let (ago, n, p50, p99) = point(&v, SLOTS - 1);
        assert_eq!((ago, n), (0, 100));
        assert!((p50.unwrap() - 10.0).abs() < 0.6, "{p50:?}");
        assert!((p99.unwrap() - 500.0).abs() < 26.0, "{p99:?}");
        assert_eq!(v["points"][SLOTS - 1]["requestsPerSecond"], 10.0);
        assert_eq!(point(&v, SLOTS - 2), (10, 0, None, None));

        // 25 s later the slot is 20 s back; a new request fills the current.
        advance(Duration::from_secs(25)).await;
        s.record(Duration::from_millis(3));
        let v = recent.json("p");
        assert_eq!(point(&v, SLOTS - 3).1, 100);
        assert_eq!(point(&v, SLOTS - 3).0, 20);
        assert_eq!(point(&v, SLOTS - 1).1, 1);

        // Five minutes on, both have left the window and the ring reuses slots.
        advance(Duration::from_secs(SLOT_SECONDS * SLOTS as u64)).await;
        s.record(Duration::from_millis(1));
        let v = recent.json("p");
        let total: u64 = (0..SLOTS).map(|i| point(&v, i).1).sum();
        assert_eq!(total, 1);
        // Another provider's series is separate.
        assert_eq!(recent.json("q")["points"][SLOTS - 1]["requests"], 0);
    }
}
