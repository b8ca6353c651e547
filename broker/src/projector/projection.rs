//! One projected topic: its read positions, the rows waiting for the next
//! commit, and the read -> convert -> commit loop (see the module above for
//! the steps).

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use arrow_array::RecordBatch;
use iceberg::TableIdent;
use iceberg::spec::{DataFile, Schema};
use iceberg_sink::compact::CompactionPolicy;
use iceberg_sink::convert::{
    ConvertError, Decoder, Framing, RowBuilder, evolve, key_value_schema, value_schema,
};
use iceberg_sink::offsets::CommittedOffsets;
use iceberg_sink::partition_spec::parse_partition_spec;
use iceberg_sink::table::TableWriter;
use iceberg_sink::{SinkHeader, SinkRecord};
use schemas::ParsedSchema;
use schemas::wire::{Framed, SchemaId, parse_message_indexes};

use super::{
    COMPACT_MAX_INPUT_BYTES, PartitionStatus, ProjectError, ProjectionStatus, READ_BYTES,
    StatusMap, TaskKey, WRITE_BYTES, Warehouses, error_chain, fresh_incarnation, kafka_only_schema,
    latest_value_schema, log_bounds, open_dlq,
};
use crate::config::{IcebergMode, IcebergTopicConfig};
use crate::error_code;
use crate::log::LogConfig;
use crate::log::batch::{self, BatchIter, TimestampType};
use crate::shard::{Cluster, PartitionOp, PartitionReply, now_ms};
use crate::topics::TopicPartition;

/// One partition's read position.
#[derive(Debug, Clone)]
struct Cursor {
    partition: i32,
    /// Next offset to read.
    next: i64,
    high_watermark: i64,
    /// Next offset of each table as committed (records below are in it).
    main_committed: Option<i64>,
    /// Where this run started reading: what the status reports as
    /// projected until the first commit.
    started_at: i64,
    dlq_committed: Option<i64>,
    /// When the oldest buffered (read, not committed) record was read.
    pending_since_ms: Option<i64>,
}

/// The rows of one table waiting for the next commit.
pub(super) struct Pending {
    writer: TableWriter,
    rows: RowBuilder,
    /// Files written from earlier rows, committed with the next commit.
    files: Vec<DataFile>,
    /// The schema the next commit makes current, when it changed.
    new_schema: Option<Schema>,
}

impl Pending {
    pub(super) fn new(writer: TableWriter) -> Result<Pending, ProjectError> {
        let rows = RowBuilder::new(writer.schema())?;
        Ok(Pending {
            writer,
            rows,
            files: Vec::new(),
            new_schema: None,
        })
    }

    fn table_error(&self, source: iceberg_sink::table::TableError) -> ProjectError {
        ProjectError::Table {
            table: self.writer.ident().to_string(),
            source,
        }
    }

    /// Writes the buffered rows to Parquet files (kept for the commit).
    async fn write_rows(&mut self) -> Result<(), ProjectError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let batch: RecordBatch = self.rows.finish()?;
        let files = self
            .writer
            .write(&[batch])
            .await
            .map_err(|e| self.table_error(e))?;
        self.files.extend(files);
        Ok(())
    }

    /// Switches to an evolved schema: rows so far go to files under the old
    /// one, new rows use the new one, and the next commit makes it current.
    async fn evolve_to(&mut self, schema: Schema) -> Result<(), ProjectError> {
        self.write_rows().await?;
        self.writer
            .set_schema(schema.clone())
            .map_err(|e| self.table_error(e))?;
        self.rows = RowBuilder::new(self.writer.schema())?;
        self.new_schema = Some(schema);
        Ok(())
    }

    /// Commits the written files and `offsets`.
    async fn commit(&mut self, offsets: &CommittedOffsets) -> Result<(), ProjectError> {
        self.write_rows().await?;
        iceberg_sink::failpoint::hit("iceberg-after-data-files");
        let files = std::mem::take(&mut self.files);
        let schema = self.new_schema.take();
        self.writer
            .commit(files, offsets, schema)
            .await
            .map_err(|e| self.table_error(e))?;
        Ok(())
    }
}

/// A decoder per (schema id, Protobuf message path) in
/// `value_schema_id_prefix`, or the one decoder of `value_schema_latest`.
type DecoderKey = (u32, Vec<i64>);

pub(super) struct Projection {
    cluster: Weak<Cluster>,
    warehouses: Warehouses,
    topic: String,
    /// The topic incarnation, stored with the offsets.
    topic_id: String,
    config: IcebergTopicConfig,
    cursors: Vec<Cursor>,
    main: Pending,
    dlq: Option<Pending>,
    decoders: HashMap<DecoderKey, Decoder>,
    /// `value_schema_latest`: the schema id in use.
    latest_id: Option<u32>,
    status: StatusMap,
    commits: u64,
    dlq_rows: u64,
    dropped: u64,
    last_commit_ms: Option<i64>,
    /// Offsets moved since the last commit (rows, or records skipped).
    dirty: bool,
    /// Rows (main, DLQ) and dropped records since the last commit, for the
    /// metrics once committed.
    uncommitted: (u64, u64, u64),
    /// When snapshot expiry last ran.
    expired_ms: i64,
    /// When compaction last ran (the first run waits one interval).
    compacted_ms: i64,
}

impl Projection {
    pub(super) async fn open(
        cluster: &Weak<Cluster>,
        warehouses: &Warehouses,
        topic: &str,
        key: &TaskKey,
        status: &StatusMap,
    ) -> Result<Projection, ProjectError> {
        let c = cluster.upgrade().ok_or(ProjectError::Stopped)?;
        let config = key.config.clone();
        let ident = TableIdent::new(warehouses.namespace.clone(), topic.to_string());
        let location = warehouses.catalog.describe_location(&ident);
        {
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            let entry = s
                .entry(topic.to_string())
                .or_insert_with(|| ProjectionStatus {
                    topic: topic.to_string(),
                    mode: config.mode.as_str(),
                    table: ident.to_string(),
                    catalog: warehouses.catalog.describe(),
                    location: location.clone(),
                    state: "starting",
                    last_error: None,
                    last_commit_ms: None,
                    commits: 0,
                    rows: 0,
                    data_files: 0,
                    dlq_rows: 0,
                    dropped_records: 0,
                    partitions: Vec::new(),
                });
            entry.mode = config.mode.as_str();
        }
        // The schema a new table starts with.
        let (schema, latest_id) = match config.mode {
            IcebergMode::KeyValue | IcebergMode::Disabled => (key_value_schema(), None),
            IcebergMode::ValueSchemaLatest => {
                let (id, parsed) = latest_value_schema(&c, topic)?;
                (value_schema(&parsed, &[])?, Some(id))
            }
            IcebergMode::ValueSchemaIdPrefix => match latest_value_schema(&c, topic) {
                Ok((_, parsed)) => (value_schema(&parsed, &[])?, None),
                // No subject named after the topic: the table starts with
                // the kafka column only and evolves with the first ids.
                Err(_) => (kafka_only_schema()?, None),
            },
        };
        let spec = parse_partition_spec(&config.partition_spec, &schema).map_err(|e| {
            ProjectError::PartitionSpec {
                spec: config.partition_spec.clone(),
                reason: e.to_string(),
            }
        })?;
        let writer = TableWriter::open_or_create(
            warehouses.catalog.clone(),
            ident.clone(),
            schema.clone(),
            spec,
        )
        .await
        .map_err(|source| ProjectError::Table {
            table: ident.to_string(),
            source,
        })?
        .with_target_file_size(config.target_file_size.min(usize::MAX as u64) as usize);
        {
            // Where the table really is (a REST catalog chooses it).
            let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = s.get_mut(topic) {
                entry.location = writer.table().metadata().location().to_string();
            }
        }
        let main_offsets = writer
            .committed_offsets()
            .map_err(|source| ProjectError::Table {
                table: ident.to_string(),
                source,
            })?;
        // A topic deleted and created again under the same name: the
        // table's offsets are the old incarnation's. The new one is
        // projected from its start into the same table (rows of both stay;
        // `kafka.offset` restarts).
        let main_offsets = fresh_incarnation(main_offsets, &key.topic_id, &ident);
        let mut main = Pending::new(writer)?;
        // A table created before the topic had a schema (or with an older
        // one) evolves to the latest right away.
        if let Some(evolved) = evolve(main.writer.schema(), &schema)
            .map_err(|e| ProjectError::Registry(e.to_string()))?
        {
            main.evolve_to(evolved).await?;
        }
        let dlq = open_dlq(warehouses, topic, false).await?;
        let dlq_offsets = match &dlq {
            Some(p) => Some(fresh_incarnation(
                p.writer.committed_offsets().map_err(|e| p.table_error(e))?,
                &key.topic_id,
                p.writer.ident(),
            )),
            None => None,
        };
        let mut cursors = Vec::new();
        for partition in 0..key.partitions {
            let tp = TopicPartition::new(topic, partition);
            let main_committed = main_offsets.next_offset(partition);
            let dlq_committed = dlq_offsets.as_ref().and_then(|o| o.next_offset(partition));
            let (start, high_watermark) = log_bounds(&c, &tp).await?;
            // Each table holds everything below its own next offset (the log
            // start when it has none). Without a DLQ table no record below
            // the main table's offset went to one (a bad record creates and
            // commits it before the main table's commit).
            let main_next = main_committed.unwrap_or(start);
            let dlq_next = match &dlq_offsets {
                Some(_) => dlq_committed.unwrap_or(start),
                None => main_next,
            };
            let from = main_next.min(dlq_next);
            if let Some(m) = main_committed {
                c.fences.advance(&tp, m);
            }
            cursors.push(Cursor {
                partition,
                next: from.max(start),
                high_watermark,
                main_committed,
                started_at: from.max(start),
                dlq_committed,
                pending_since_ms: None,
            });
            if from < start {
                tracing::warn!(partition = %tp, from, start, "records below the log start were deleted before they were projected");
            }
        }
        drop(c);
        let projection = Projection {
            cluster: cluster.clone(),
            warehouses: warehouses.clone(),
            topic: topic.to_string(),
            topic_id: key.topic_id.clone(),
            config,
            cursors,
            main,
            dlq,
            decoders: HashMap::new(),
            latest_id,
            status: status.clone(),
            commits: 0,
            dlq_rows: 0,
            dropped: 0,
            last_commit_ms: None,
            dirty: false,
            uncommitted: (0, 0, 0),
            expired_ms: 0,
            compacted_ms: now_ms(),
        };
        projection.publish_status("running", None);
        tracing::info!(topic, table = %ident, offsets = ?projection.cursors.iter().map(|c| c.next).collect::<Vec<_>>(), "iceberg projection running");
        Ok(projection)
    }

    pub(super) async fn run(&mut self) -> ProjectError {
        loop {
            let read = match self.read_all().await {
                Ok(n) => n,
                Err(e) => return e,
            };
            let now = now_ms();
            let due = self
                .cursors
                .iter()
                .filter_map(|c| c.pending_since_ms)
                .min()
                .is_some_and(|since| now - since >= self.config.target_lag_ms);
            if (due || (self.dirty && self.main.rows.is_empty() && !self.has_pending()))
                && let Err(e) = self.commit().await
            {
                return e;
            }
            // Rows beyond WRITE_BYTES go to Parquet files now (committed
            // later), so memory stays bounded whatever the target lag.
            for pending in std::iter::once(&mut self.main).chain(self.dlq.as_mut()) {
                if pending.rows.byte_size() >= WRITE_BYTES
                    && let Err(e) = pending.write_rows().await
                {
                    return e;
                }
            }
            self.publish_status("running", None);
            if read == 0 {
                if !self.dirty && !self.has_pending() {
                    // Idle and fully committed: maintenance is due on time
                    // even when no commit comes (it also runs after commits).
                    self.maintain(now).await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    fn has_pending(&self) -> bool {
        self.cursors.iter().any(|c| c.pending_since_ms.is_some())
    }

    /// Reads one chunk from every partition with records to read; returns
    /// the records read.
    async fn read_all(&mut self) -> Result<usize, ProjectError> {
        let mut total = 0;
        for i in 0..self.cursors.len() {
            total += self.read_partition(i).await?;
        }
        Ok(total)
    }

    async fn read_partition(&mut self, index: usize) -> Result<usize, ProjectError> {
        let c = self.cluster.upgrade().ok_or(ProjectError::Stopped)?;
        if c.is_shutting_down() {
            return Err(ProjectError::Stopped);
        }
        let tp = TopicPartition::new(self.topic.clone(), self.cursors[index].partition);
        let offset = self.cursors[index].next;
        let op = PartitionOp::Read {
            offset,
            max_bytes: READ_BYTES,
        };
        let Some(PartitionReply::Read(read)) = c.send_partition_op(tp.clone(), op).await else {
            return Err(ProjectError::Stopped);
        };
        drop(c);
        self.cursors[index].high_watermark = read.high_watermark;
        if read.error_code == error_code::OFFSET_OUT_OF_RANGE && offset < read.log_start_offset {
            tracing::warn!(partition = %tp, offset, start = read.log_start_offset, "offsets deleted before they were projected (DeleteRecords or retention before the projection started); skipping to the log start");
            self.cursors[index].next = read.log_start_offset;
            self.dirty = true;
            return Ok(0);
        }
        if read.error_code == error_code::UNKNOWN_TOPIC_OR_PARTITION
            && self
                .cluster
                .upgrade()
                .is_none_or(|c| c.topics.get(&self.topic).is_none())
        {
            // Deleted: the supervisor stops this task on its next scan.
            return Err(ProjectError::Stopped);
        }
        if read.error_code != error_code::NONE {
            return Err(ProjectError::Read {
                tp,
                code: read.error_code,
            });
        }
        let Some(bytes) = read.records.filter(|b| !b.is_empty()) else {
            return Ok(0);
        };
        self.project_batches(index, &bytes).await
    }

    /// Decodes the records of whole batches at or after the cursor.
    async fn project_batches(&mut self, index: usize, bytes: &[u8]) -> Result<usize, ProjectError> {
        let partition = self.cursors[index].partition;
        let cap = LogConfig::default().max_batch_decompressed_bytes;
        let mut position = 0usize;
        let mut count = 0usize;
        let mut next = self.cursors[index].next;
        for header in BatchIter::new(bytes) {
            let Ok(header) = header else { break };
            let batch_bytes = &bytes[position..position + header.size()];
            position += header.size();
            if header.last_offset() < next {
                continue;
            }
            if header.is_control() {
                next = header.last_offset() + 1;
                self.dirty = true;
                continue;
            }
            let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
            let mut records: Vec<OwnedRecord> =
                Vec::with_capacity(header.records_count.max(0) as usize);
            let walked = batch::for_each_full_record(batch_bytes, &header, cap, |r| {
                let offset = header.base_offset + i64::from(r.offset_delta);
                if offset >= next {
                    records.push(OwnedRecord {
                        offset,
                        timestamp_ms: if log_append {
                            header.max_timestamp
                        } else {
                            header.base_timestamp + r.timestamp_delta
                        },
                        key: r.key.map(<[u8]>::to_vec),
                        value: r.value.map(<[u8]>::to_vec),
                        headers: r
                            .headers
                            .iter()
                            .map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec)))
                            .collect(),
                    });
                }
                std::ops::ControlFlow::Continue(())
            });
            if let Err(e) = walked {
                // Batches were CRC-checked on produce and on read: a batch
                // that does not walk is damaged on disk. Its records cannot
                // be projected; skip it loudly rather than stop the table.
                tracing::error!(topic = %self.topic, partition, base_offset = header.base_offset, error = %e, "skipping an unreadable batch");
                next = header.last_offset() + 1;
                self.dirty = true;
                continue;
            }
            for record in &records {
                let headers: Vec<SinkHeader<'_>> = record
                    .headers
                    .iter()
                    .map(|(k, v)| SinkHeader {
                        key: k,
                        value: v.as_deref(),
                    })
                    .collect();
                let sink = SinkRecord {
                    partition,
                    offset: record.offset,
                    timestamp_ms: record.timestamp_ms,
                    timestamp_type: i32::from(log_append),
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                    headers: &headers,
                };
                self.project_record(index, &sink).await?;
                count += 1;
            }
            next = header.last_offset() + 1;
            self.dirty = true;
        }
        let cursor = &mut self.cursors[index];
        if next > cursor.next {
            cursor.next = next;
            cursor.pending_since_ms.get_or_insert_with(now_ms);
        }
        Ok(count)
    }

    /// Adds one record to the main table, or the DLQ table when it does not
    /// decode. Records a table already holds are skipped.
    async fn project_record(
        &mut self,
        index: usize,
        record: &SinkRecord<'_>,
    ) -> Result<(), ProjectError> {
        let cursor = &self.cursors[index];
        let in_main = cursor.main_committed.is_some_and(|n| record.offset < n);
        let in_dlq = cursor.dlq_committed.is_some_and(|n| record.offset < n);
        if in_main {
            return Ok(());
        }
        let outcome = match self.config.mode {
            IcebergMode::KeyValue | IcebergMode::Disabled => self.main.rows.push_key_value(record),
            IcebergMode::ValueSchemaIdPrefix | IcebergMode::ValueSchemaLatest => {
                match self.decoder_for(record).await {
                    Ok(Some(key)) => {
                        let decoder = &self.decoders[&key];
                        self.main.rows.push_value(record, decoder)
                    }
                    // A tombstone: the kafka column and null values.
                    Ok(None) => self.main.rows.push_null_value(record),
                    Err(reason) => Err(ConvertError::BadRecord {
                        partition: record.partition,
                        offset: record.offset,
                        reason,
                    }),
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.uncommitted.0 += 1;
                Ok(())
            }
            Err(ConvertError::BadRecord { reason, .. }) => {
                if self.config.drop_invalid {
                    self.dropped += 1;
                    self.uncommitted.2 += 1;
                    tracing::debug!(topic = %self.topic, partition = record.partition, offset = record.offset, reason, "dropping an undecodable record");
                    return Ok(());
                }
                if in_dlq {
                    return Ok(());
                }
                if self.dlq.is_none() {
                    self.dlq = open_dlq(&self.warehouses, &self.topic, true).await?;
                }
                let dlq = self.dlq.as_mut().expect("opened above");
                dlq.rows.push_dlq(record, &reason)?;
                self.dlq_rows += 1;
                self.uncommitted.1 += 1;
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }

    /// The decoder for a record's value, evolving the table when its
    /// schema brings new columns. `Ok(None)` for a null value. `Err` is the
    /// reason the record goes to the DLQ.
    async fn decoder_for(&mut self, record: &SinkRecord<'_>) -> Result<Option<DecoderKey>, String> {
        let Some(value) = record.value else {
            return Ok(None);
        };
        let c = self.cluster.upgrade().ok_or("the broker is stopping")?;
        let registry = c.schemas.registry().clone();
        drop(c);
        let (id, message, framing) = match self.config.mode {
            IcebergMode::ValueSchemaIdPrefix => {
                let framed = Framed::parse(value).map_err(|e| e.to_string())?;
                let id = framed.schema_id.0;
                let parsed = registry.compiled(id).map_err(|e| e.to_string())?;
                let message = if matches!(*parsed, ParsedSchema::Protobuf(_)) {
                    parse_message_indexes(framed.payload)
                        .map_err(|e| e.to_string())?
                        .0
                } else {
                    Vec::new()
                };
                (id, message, Framing::SchemaIdPrefix(SchemaId(id)))
            }
            _ => {
                let id = self
                    .latest_id
                    .ok_or("no schema registered for the topic's value subject")?;
                (id, Vec::new(), Framing::Plain)
            }
        };
        let key = (id, message.clone());
        if self.decoders.contains_key(&key) {
            return Ok(Some(key));
        }
        let parsed = registry.compiled(id).map_err(|e| e.to_string())?;
        let wanted = value_schema(&parsed, &message).map_err(|e| e.to_string())?;
        match evolve(self.main.writer.schema(), &wanted) {
            Ok(Some(evolved)) => {
                tracing::info!(topic = %self.topic, schema_id = id, "evolving the table schema");
                self.main
                    .evolve_to(evolved)
                    .await
                    .map_err(|e| e.to_string())?;
                // Decoders were compiled for the old columns.
                self.decoders.clear();
            }
            Ok(None) => {}
            Err(e) => return Err(format!("schema id {id} does not fit the table: {e}")),
        }
        let decoder = self
            .main
            .rows
            .decoder(&parsed, &message, framing)
            .map_err(|e| e.to_string())?;
        self.decoders.insert(key.clone(), decoder);
        Ok(Some(key))
    }

    /// Commits what was read: the DLQ table first, then the main table,
    /// each with the next offsets; then publishes the fences.
    async fn commit(&mut self) -> Result<(), ProjectError> {
        self.check_writes()?;
        let mut offsets = CommittedOffsets::default().with_topic_id(self.topic_id.clone());
        for c in &self.cursors {
            offsets.advance(c.partition, c.next);
        }
        if let Some(dlq) = self.dlq.as_mut() {
            dlq.commit(&offsets).await?;
            iceberg_sink::failpoint::hit("iceberg-between-dlq-and-main");
        }
        self.main.commit(&offsets).await?;
        iceberg_sink::failpoint::hit("iceberg-after-commit");
        self.commits += 1;
        let now = now_ms();
        self.last_commit_ms = Some(now);
        self.dirty = false;
        let c = self.cluster.upgrade().ok_or(ProjectError::Stopped)?;
        let labels = crate::metrics::TopicLabels {
            topic: self.topic.clone(),
        };
        let (rows, dlq_rows, dropped) = std::mem::take(&mut self.uncommitted);
        let metrics = &c.metrics;
        metrics.iceberg_commits.get_or_create(&labels).inc();
        metrics.iceberg_rows.get_or_create(&labels).inc_by(rows);
        metrics
            .iceberg_dlq_rows
            .get_or_create(&labels)
            .inc_by(dlq_rows);
        metrics
            .iceberg_dropped
            .get_or_create(&labels)
            .inc_by(dropped);
        for cursor in &mut self.cursors {
            cursor.main_committed = Some(cursor.next);
            if self.dlq.is_some() {
                cursor.dlq_committed = Some(cursor.next);
            }
            cursor.pending_since_ms = None;
            c.fences.advance(
                &TopicPartition::new(self.topic.clone(), cursor.partition),
                cursor.next,
            );
        }
        drop(c);
        self.maintain(now).await;
        let c = self.cluster.upgrade().ok_or(ProjectError::Stopped)?;
        // value_schema_latest: a newer latest version applies from here on.
        if self.config.mode == IcebergMode::ValueSchemaLatest
            && let Ok((id, _)) = latest_value_schema(&c, &self.topic)
            && Some(id) != self.latest_id
        {
            tracing::info!(topic = %self.topic, schema_id = id, "new latest value schema");
            self.latest_id = Some(id);
        }
        Ok(())
    }

    /// A broker whose writer lease on the object store lapsed (the store
    /// unreachable, or this process paused) or was taken over by another
    /// broker commits nothing and runs no maintenance: the other broker may
    /// be projecting the same topic into the same tables. The task starts
    /// over (from the tables' offsets) once the lease is held again.
    fn check_writes(&self) -> Result<(), ProjectError> {
        let c = self.cluster.upgrade().ok_or(ProjectError::Stopped)?;
        match c.tier.as_ref().and_then(|t| t.writes_refused()) {
            Some(reason) => Err(ProjectError::WritesRefused(reason)),
            None => Ok(()),
        }
    }

    /// Snapshot expiry and compaction, each when its interval is due. Called
    /// only with nothing staged in the writers (right after a commit, or
    /// idle with everything committed).
    async fn maintain(&mut self, now: i64) {
        if self.check_writes().is_err() {
            return;
        }
        self.expire_snapshots(now).await;
        self.compact(now).await;
    }

    /// Table maintenance after a commit, at most every
    /// `iceberg.snapshot.expire.interval.ms`: snapshots older than `iceberg.snapshot.max.age.ms`
    /// beyond the newest `iceberg.snapshot.min.keep` are expired, and the
    /// files only they reference deleted. The snapshot carrying the
    /// committed offsets is always kept. A failure is logged and retried
    /// next time; it never fails the projection.
    async fn expire_snapshots(&mut self, now: i64) {
        let Some(max_age) = self.config.snapshot_max_age_ms else {
            return;
        };
        if now - self.expired_ms < self.config.snapshot_expire_interval_ms {
            return;
        }
        self.expired_ms = now;
        let keep = self.config.snapshot_min_keep;
        let tables = std::iter::once(&mut self.main).chain(self.dlq.as_mut());
        for table in tables {
            match table.writer.expire_snapshots(keep, now - max_age).await {
                Ok(done) if done.snapshots > 0 => {
                    tracing::info!(table = %table.writer.ident(), snapshots = done.snapshots, files = done.files_deleted, "expired iceberg snapshots")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(table = %table.writer.ident(), error = %error_chain(&e), "snapshot expiry failed; retrying later")
                }
            }
        }
    }

    /// Background compaction, at most every
    /// `iceberg.compaction.interval.ms`: in each partition with at least
    /// `iceberg.compaction.min.input.files` files below 75% of
    /// `iceberg.target.file.size.bytes`, those files are rewritten into
    /// target-size files in one `replace` snapshot that keeps the rows and
    /// the committed offsets (see `iceberg_sink::compact`). It runs between
    /// commits of this task, so it never races its own projector; a commit
    /// by another writer makes it give up until the next interval. A
    /// failure is logged and retried; it never fails the projection.
    async fn compact(&mut self, now: i64) {
        let Some(every) = self.config.compaction_interval_ms else {
            return;
        };
        if now - self.compacted_ms < every {
            return;
        }
        self.compacted_ms = now;
        let policy = CompactionPolicy {
            min_input_files: self.config.compaction_min_input_files,
            max_input_bytes: COMPACT_MAX_INPUT_BYTES,
            ..CompactionPolicy::for_target_file_size(self.config.target_file_size)
        };
        let labels = crate::metrics::TopicLabels {
            topic: self.topic.clone(),
        };
        let tables = std::iter::once(&mut self.main).chain(self.dlq.as_mut());
        for table in tables {
            let started = std::time::Instant::now();
            match table.writer.compact(&policy).await {
                Ok(done) if done.conflict => {
                    tracing::info!(table = %table.writer.ident(), "compaction lost to a concurrent commit; planned again next interval")
                }
                Ok(done) if done.groups > 0 => {
                    tracing::info!(
                        table = %table.writer.ident(),
                        partitions = done.groups,
                        files_removed = done.files_removed,
                        files_added = done.files_added,
                        bytes_removed = done.bytes_removed,
                        bytes_added = done.bytes_added,
                        rows = done.rows,
                        ms = started.elapsed().as_millis() as u64,
                        "compacted small iceberg data files"
                    );
                    if let Some(c) = self.cluster.upgrade() {
                        c.metrics.iceberg_compactions.get_or_create(&labels).inc();
                        c.metrics
                            .iceberg_compacted_files
                            .get_or_create(&labels)
                            .inc_by(done.files_removed as u64);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(table = %table.writer.ident(), error = %error_chain(&e), "compaction failed; retrying next interval")
                }
            }
        }
    }

    fn publish_status(&self, state: &'static str, error: Option<String>) {
        let now = now_ms();
        let summary = self
            .main
            .writer
            .table()
            .metadata()
            .current_snapshot()
            .map(|s| s.summary().additional_properties.clone())
            .unwrap_or_default();
        let number = |key: &str| summary.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        let partitions = self
            .cursors
            .iter()
            .map(|c| {
                let projected = c.main_committed.unwrap_or(c.started_at).min(c.next);
                let lag = (c.high_watermark - projected).max(0);
                PartitionStatus {
                    partition: c.partition,
                    projected_offset: projected,
                    high_watermark: c.high_watermark,
                    lag_records: lag,
                    lag_ms: if lag > 0 {
                        c.pending_since_ms
                            .or(self.last_commit_ms)
                            .map_or(0, |since| now - since)
                    } else {
                        0
                    },
                }
            })
            .collect::<Vec<PartitionStatus>>();
        if let Some(c) = self.cluster.upgrade() {
            for p in &partitions {
                let labels = crate::metrics::PartitionLabels {
                    topic: self.topic.clone(),
                    partition: p.partition,
                };
                c.metrics
                    .iceberg_lag
                    .get_or_create(&labels)
                    .set(p.lag_records);
            }
        }
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = s.get_mut(&self.topic) {
            entry.state = state;
            entry.last_error = error;
            entry.last_commit_ms = self.last_commit_ms.or(entry.last_commit_ms);
            entry.commits = self.commits;
            entry.rows = number("total-records");
            entry.data_files = number("total-data-files");
            entry.dlq_rows = self.dlq_total_rows();
            entry.dropped_records = self.dropped;
            entry.partitions = partitions;
        }
    }

    fn dlq_total_rows(&self) -> u64 {
        self.dlq
            .as_ref()
            .and_then(|d| d.writer.table().metadata().current_snapshot())
            .and_then(|s| {
                s.summary()
                    .additional_properties
                    .get("total-records")
                    .cloned()
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A record copied out of its batch (the batch buffer is decompressed per
/// batch).
struct OwnedRecord {
    offset: i64,
    timestamp_ms: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}
