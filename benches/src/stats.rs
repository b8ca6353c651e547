//! Counting and reporting: throughput, exact latency percentiles from every
//! sample (sorted), and a once-a-second progress line.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (the clock stamped into records).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Latency samples in microseconds; percentiles are exact.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u64>,
}

impl Latencies {
    pub fn record(&mut self, micros: u64) {
        self.samples.push(micros);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// `"p50 .. p99 .. p99.9 .. max .. (n=..)"` in milliseconds.
    pub fn summary(&mut self) -> String {
        if self.samples.is_empty() {
            return "no samples".to_string();
        }
        self.samples.sort_unstable();
        let ms = |q: f64| self.quantile(q) as f64 / 1000.0;
        format!(
            "p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms (n={})",
            ms(0.50),
            ms(0.99),
            ms(0.999),
            ms(1.0),
            self.samples.len()
        )
    }

    /// The nearest-rank quantile of sorted samples.
    fn quantile(&self, q: f64) -> u64 {
        let n = self.samples.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.samples[rank - 1]
    }
}

/// Totals shared by the worker threads and the progress printer.
#[derive(Debug, Default)]
pub struct Counters {
    pub records: AtomicU64,
    /// Record value bytes (records x record size when produced by us).
    pub payload_bytes: AtomicU64,
    /// Record batch bytes as sent or received.
    pub batch_bytes: AtomicU64,
}

impl Counters {
    pub fn add(&self, records: u64, payload_bytes: u64, batch_bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.payload_bytes
            .fetch_add(payload_bytes, Ordering::Relaxed);
        self.batch_bytes.fetch_add(batch_bytes, Ordering::Relaxed);
    }
}

/// Prints `label: N MB/s, N records/s` every second until dropped.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Progress {
    pub fn start(label: &'static str, counters: Arc<Counters>) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let mut last = (Instant::now(), 0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_secs(1));
                let now = Instant::now();
                let bytes = counters.payload_bytes.load(Ordering::Relaxed);
                let records = counters.records.load(Ordering::Relaxed);
                let secs = (now - last.0).as_secs_f64();
                eprintln!(
                    "  {label}: {:8.1} MB/s {:10.0} records/s",
                    (bytes - last.1) as f64 / secs / 1e6,
                    (records - last.2) as f64 / secs
                );
                last = (now, bytes, records);
            }
        });
        Progress {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The throughput lines of a report.
pub fn throughput(counters: &Counters, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let records = counters.records.load(Ordering::Relaxed);
    let payload = counters.payload_bytes.load(Ordering::Relaxed) as f64;
    let batch = counters.batch_bytes.load(Ordering::Relaxed) as f64;
    format!(
        "  {records} records, {:.1} MB of values, {:.1} MB of batches in {secs:.2} s\n  \
         throughput {:.1} MB/s ({:.1} MiB/s) of values, {:.1} MB/s of batches, {:.0} records/s",
        payload / 1e6,
        batch / 1e6,
        payload / secs / 1e6,
        payload / secs / (1 << 20) as f64,
        batch / secs / 1e6,
        records as f64 / secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut l = Latencies::default();
        for v in 1..=1000 {
            l.record(v);
        }
        l.samples.sort_unstable();
        assert_eq!(l.quantile(0.5), 500);
        assert_eq!(l.quantile(0.99), 990);
        assert_eq!(l.quantile(0.999), 999);
        assert_eq!(l.quantile(1.0), 1000);
    }
}
