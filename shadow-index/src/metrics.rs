//! Prometheus metrics of the remote tier.
//!
//! One [`Metrics`] lives in each [`Remote`](crate::store::Remote) and is shared
//! by the uploader, the reader, the cache and retention, so every component
//! counts into the same series. [`Metrics::register`] adds them to the
//! broker's registry under the prefix `floe_tier`.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// Counters, gauges and histograms of the remote tier.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Segments uploaded and listed in a manifest.
    pub uploads_ok: Counter,
    /// Segment uploads that returned an error (after retries).
    pub uploads_failed: Counter,
    /// Bytes of segment and index objects written.
    pub upload_bytes: Counter,
    /// Seconds from the start of a segment upload to its manifest entry.
    pub upload_seconds: Histogram,
    /// Failed object-store calls, by operation and error kind.
    pub store_errors: Family<Labels, Counter>,
    /// Bytes returned by remote reads.
    pub read_bytes: Counter,
    /// Bytes fetched from the object store by ranged GETs.
    pub fetched_bytes: Counter,
    /// Seconds per remote read.
    pub read_seconds: Histogram,
    /// Seconds remote reads spent waiting for chunk GETs (their own or a
    /// prefetch's in flight): what prefetch did not hide.
    pub read_wait_seconds: Counter<f64, AtomicU64>,
    /// Chunk lookups answered by the cache.
    pub cache_hits: Counter,
    /// Chunk lookups that went to the object store.
    pub cache_misses: Counter,
    /// Bytes currently held by the on-disk chunk cache.
    pub cache_bytes: Gauge,
    /// Segments removed by retention or delete-records.
    pub retention_deleted_segments: Counter,
    /// Orphan objects removed by the sweeper.
    pub orphans_deleted: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            uploads_ok: Counter::default(),
            uploads_failed: Counter::default(),
            upload_bytes: Counter::default(),
            upload_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            store_errors: Family::default(),
            read_bytes: Counter::default(),
            fetched_bytes: Counter::default(),
            read_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            read_wait_seconds: Counter::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_bytes: Gauge::default(),
            retention_deleted_segments: Counter::default(),
            orphans_deleted: Counter::default(),
        }
    }
}

impl Metrics {
    /// Registers every series under `floe_tier_*` in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("tier");
        r.register(
            "uploads_ok",
            "Segments uploaded and listed in a manifest",
            self.uploads_ok.clone(),
        );
        r.register(
            "uploads_failed",
            "Segment uploads that failed after retries",
            self.uploads_failed.clone(),
        );
        r.register(
            "upload_bytes",
            "Bytes of segment and index objects uploaded",
            self.upload_bytes.clone(),
        );
        r.register(
            "upload_seconds",
            "Time from upload start to manifest entry",
            self.upload_seconds.clone(),
        );
        r.register(
            "object_store_errors",
            "Failed object-store calls by operation and kind",
            self.store_errors.clone(),
        );
        r.register(
            "remote_read_bytes",
            "Bytes returned by remote reads",
            self.read_bytes.clone(),
        );
        r.register(
            "remote_fetched_bytes",
            "Bytes fetched from the object store by ranged GETs",
            self.fetched_bytes.clone(),
        );
        r.register(
            "remote_read_seconds",
            "Latency of remote reads",
            self.read_seconds.clone(),
        );
        r.register(
            "remote_read_wait_seconds",
            "Seconds remote reads waited for chunk GETs",
            self.read_wait_seconds.clone(),
        );
        r.register(
            "cache_hits",
            "Chunk lookups served by the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "cache_misses",
            "Chunk lookups that went to the object store",
            self.cache_misses.clone(),
        );
        r.register(
            "cache_bytes",
            "Bytes held by the on-disk chunk cache",
            self.cache_bytes.clone(),
        );
        r.register(
            "retention_deleted_segments",
            "Remote segments deleted by retention or delete-records",
            self.retention_deleted_segments.clone(),
        );
        r.register(
            "orphans_deleted",
            "Orphan objects removed by the sweeper",
            self.orphans_deleted.clone(),
        );
    }

    /// The fraction of chunk lookups served by the cache since start
    /// (0 when nothing was looked up).
    pub fn cache_hit_ratio(&self) -> f64 {
        let hits = self.cache_hits.get() as f64;
        let total = hits + self.cache_misses.get() as f64;
        if total == 0.0 { 0.0 } else { hits / total }
    }

    pub(crate) fn store_error(&self, op: &'static str, error: &object_store::Error) {
        self.store_errors
            .get_or_create(&vec![
                ("op", op),
                ("kind", crate::error::store_error_kind(error)),
            ])
            .inc();
    }
}
