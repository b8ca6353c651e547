//! Prometheus metrics, shared by every shard (atomic counters).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: i16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// Every metric the broker exports.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: Family<ApiLabels, Counter>,
    pub request_bytes: Counter,
    pub response_bytes: Counter,
    pub produced_bytes: Counter,
    pub produced_batches: Counter,
    pub produce_errors: Family<CodeLabels, Counter>,
    pub fetched_bytes: Counter,
    pub connections: Gauge,
    pub closed_bad_requests: Counter,
    /// Offsets of a tiered partition not yet in the object store.
    pub tier_upload_lag: Family<PartitionLabels, Gauge>,
    /// Iceberg projection: rows committed to the topic's table.
    pub iceberg_rows: Family<TopicLabels, Counter>,
    /// Records written to `<topic>~dlq` (committed).
    pub iceberg_dlq_rows: Family<TopicLabels, Counter>,
    /// Undecodable records dropped (`iceberg.invalid.record.action=drop`).
    pub iceberg_dropped: Family<TopicLabels, Counter>,
    pub iceberg_commits: Family<TopicLabels, Counter>,
    pub iceberg_commit_errors: Family<TopicLabels, Counter>,
    /// Offsets of a projected partition not yet committed to its table.
    pub iceberg_lag: Family<PartitionLabels, Gauge>,
    /// Compactions committed to a projected topic's tables, and the small
    /// files they replaced.
    pub iceberg_compactions: Family<TopicLabels, Counter>,
    pub iceberg_compacted_files: Family<TopicLabels, Counter>,
}

impl Metrics {
    /// Renders the Prometheus text exposition.
    pub fn render(&self, extra: impl FnOnce(&mut Registry)) -> String {
        let mut registry = Registry::with_prefix("floe");
        registry.register(
            "requests",
            "Kafka requests handled, by API",
            self.requests.clone(),
        );
        registry.register(
            "request_bytes",
            "bytes of Kafka request frames received",
            self.request_bytes.clone(),
        );
        registry.register(
            "response_bytes",
            "bytes of Kafka response frames sent",
            self.response_bytes.clone(),
        );
        registry.register(
            "produced_bytes",
            "record batch bytes appended by produce",
            self.produced_bytes.clone(),
        );
        registry.register(
            "produced_batches",
            "record batches appended by produce",
            self.produced_batches.clone(),
        );
        registry.register(
            "produce_errors",
            "produce partition results with an error, by Kafka error code",
            self.produce_errors.clone(),
        );
        registry.register(
            "tier_upload_lag_offsets",
            "offsets of a tiered partition not yet uploaded to the object store",
            self.tier_upload_lag.clone(),
        );
        registry.register(
            "iceberg_rows",
            "rows committed to a projected topic's Iceberg table",
            self.iceberg_rows.clone(),
        );
        registry.register(
            "iceberg_dlq_rows",
            "undecodable records committed to the <topic>~dlq table",
            self.iceberg_dlq_rows.clone(),
        );
        registry.register(
            "iceberg_dropped_records",
            "undecodable records dropped (iceberg.invalid.record.action=drop)",
            self.iceberg_dropped.clone(),
        );
        registry.register(
            "iceberg_commits",
            "Iceberg commits of a projected topic",
            self.iceberg_commits.clone(),
        );
        registry.register(
            "iceberg_commit_errors",
            "failed projection attempts (commit, write or read errors), retried",
            self.iceberg_commit_errors.clone(),
        );
        registry.register(
            "iceberg_lag_offsets",
            "offsets of a projected partition not yet committed to its table",
            self.iceberg_lag.clone(),
        );
        registry.register(
            "iceberg_compactions",
            "compactions (replace snapshots) committed to a projected topic's tables",
            self.iceberg_compactions.clone(),
        );
        registry.register(
            "iceberg_compacted_files",
            "small data files replaced by compaction",
            self.iceberg_compacted_files.clone(),
        );
        registry.register(
            "fetched_bytes",
            "record bytes returned by fetch",
            self.fetched_bytes.clone(),
        );
        registry.register(
            "connections",
            "open Kafka connections",
            self.connections.clone(),
        );
        registry.register(
            "closed_bad_requests",
            "connections closed because of a malformed or unsupported request",
            self.closed_bad_requests.clone(),
        );
        extra(&mut registry);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
