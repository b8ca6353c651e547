//! Uploading sealed segments: data, then index, then the manifest entry.
//!
//! Steps of [`Uploader::upload_segment`] for one sealed (immutable) local
//! segment file:
//!
//! 1. Take the partition's upload lock (uploads of one partition run one at
//!    a time, in the order the broker calls), then a permit of the global
//!    concurrency bound.
//! 2. Compare with the manifest: a segment the manifest already covers is
//!    skipped ([`UploadOutcome::AlreadyCovered`]); one that overlaps its end
//!    is trimmed to the batches at or after the manifest's next offset (the
//!    remote copy of the overlap wins; a batch straddling that offset is an
//!    error).
//! 3. Stream the file in `part_size` pieces: every batch is framing- and
//!    CRC-checked, the index is built and the object CRC computed on the way.
//!    Small files go up in one PUT, large ones as a multipart upload. Memory
//!    stays at about `part_size * 3` per upload.
//! 4. PUT the `.index` object.
//! 5. Append the [`SegmentMeta`] to the manifest and PUT it (atomic). Only
//!    now is the segment part of the remote log: a crash before this step
//!    leaves orphan objects for [`crate::retention::sweep_orphans`], never a
//!    manifest entry without its objects.
//!
//! Retriable failures (network, 5xx, timeouts) are retried per step with
//! exponential backoff and full jitter ([`RetryConfig`]); after
//! `max_attempts` the error is returned and counted. The broker keeps the
//! local segment and calls again later; because of step 2 a repeated call is
//! harmless.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::PutPayload;
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::index::{BATCH_HEADER_LEN, BatchHeader, BatchScanner, BatchSummary, RemoteIndex};
use crate::layout::SegmentName;
use crate::manifest::{SegmentMeta, now_ms};
use crate::retry::{RetryConfig, retry};
use crate::store::Remote;

/// Uploader settings.
#[derive(Debug, Clone)]
pub struct UploaderConfig {
    /// Segment uploads running at once across all partitions.
    pub max_concurrency: usize,
    /// Files at least this large go up as multipart uploads.
    pub multipart_threshold: u64,
    /// Size of each multipart part (S3 needs at least 5 MiB but the last).
    pub part_size: usize,
    /// Parts of one upload in flight at once.
    pub parts_in_flight: usize,
    /// Bytes of batches per remote index entry.
    pub index_interval: u64,
    /// Retries of each step.
    pub retry: RetryConfig,
}

impl Default for UploaderConfig {
    fn default() -> Self {
        UploaderConfig {
            max_concurrency: 4,
            multipart_threshold: 32 << 20,
            part_size: 8 << 20,
            parts_in_flight: 2,
            index_interval: crate::index::DEFAULT_INDEX_INTERVAL,
            retry: RetryConfig {
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(30),
                max_attempts: 10,
            },
        }
    }
}

/// A sealed local segment handed to the uploader. The file must not change
/// while it is uploaded (sealed segments are immutable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSegment {
    pub topic: String,
    pub partition: i32,
    /// Base offset of the first batch in the file.
    pub base_offset: i64,
    /// Last offset of the last batch in the file.
    pub last_offset: i64,
    /// Leader epoch of the segment.
    pub epoch: i64,
    /// The sealed `.log` file.
    pub path: PathBuf,
}

/// What [`Uploader::upload_segment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The segment (or its part past the manifest's end) is now listed.
    Uploaded(SegmentMeta),
    /// The manifest already covered every offset of the segment; nothing was
    /// written. `next_offset` is the manifest's end.
    AlreadyCovered { next_offset: i64 },
}

impl UploadOutcome {
    /// The remote tier's end after the call: every offset below it is
    /// durable in the object store, so local segments wholly below it may be
    /// deleted.
    pub fn next_offset(&self) -> i64 {
        match self {
            UploadOutcome::Uploaded(meta) => meta.last_offset + 1,
            UploadOutcome::AlreadyCovered { next_offset } => *next_offset,
        }
    }
}

/// Uploads sealed segments to the remote tier (see the module docs).
#[derive(Debug, Clone)]
pub struct Uploader {
    remote: Remote,
    config: UploaderConfig,
    permits: Arc<Semaphore>,
}

impl Uploader {
    /// An uploader over `remote`.
    pub fn new(remote: Remote, config: UploaderConfig) -> Uploader {
        let permits = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        Uploader {
            remote,
            config,
            permits,
        }
    }

    /// The remote this uploader writes to.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// Uploads one sealed segment and lists it in the partition manifest.
    pub async fn upload_segment(&self, segment: &SealedSegment) -> Result<UploadOutcome> {
        let started = Instant::now();
        let lock = self
            .remote
            .lock_for(&format!("upload:{}/{}", segment.topic, segment.partition));
        let _partition = lock.lock().await;
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let result = self.upload_locked(segment).await;
        let metrics = self.remote.metrics();
        match &result {
            Ok(UploadOutcome::Uploaded(meta)) => {
                metrics.uploads_ok.inc();
                metrics
                    .upload_seconds
                    .observe(started.elapsed().as_secs_f64());
                tracing::debug!(
                    topic = %segment.topic,
                    partition = segment.partition,
                    base = meta.base_offset,
                    last = meta.last_offset,
                    bytes = meta.size_bytes,
                    "segment uploaded"
                );
            }
            Ok(UploadOutcome::AlreadyCovered { .. }) => {}
            Err(error) => {
                metrics.uploads_failed.inc();
                // The caller reports failures (the broker once per change
                // of error, not once per retry).
                tracing::debug!(
                    topic = %segment.topic,
                    partition = segment.partition,
                    base = segment.base_offset,
                    %error,
                    "segment upload failed"
                );
            }
        }
        result
    }

    async fn upload_locked(&self, segment: &SealedSegment) -> Result<UploadOutcome> {
        let invalid = |reason: String| Error::InvalidSegment {
            path: segment.path.clone(),
            reason,
        };
        if segment.base_offset < 0 || segment.last_offset < segment.base_offset {
            return Err(invalid(format!(
                "offset range {}..={}",
                segment.base_offset, segment.last_offset
            )));
        }
        let next_offset = match self
            .remote
            .manifest(&segment.topic, segment.partition)
            .await?
        {
            Some(m) => m.next_offset(),
            None => 0,
        };
        if segment.last_offset < next_offset {
            return Ok(UploadOutcome::AlreadyCovered { next_offset });
        }

        let file = Arc::new(open(&segment.path)?);
        let file_len = file
            .metadata()
            .map_err(|source| Error::Io {
                path: segment.path.clone(),
                source,
            })?
            .len();
        let (start, base_offset) = if segment.base_offset >= next_offset {
            (0, segment.base_offset)
        } else {
            find_batch_at(&file, &segment.path, file_len, next_offset).await?
        };
        let name = SegmentName {
            base_offset,
            last_offset: segment.last_offset,
            epoch: segment.epoch,
        };
        let log_key = name.log_key(&segment.topic, segment.partition);
        let size = file_len - start;
        if size == 0 {
            return Err(invalid("no batches at or after the remote end".into()));
        }

        let (index, summary, crc) = retry(&self.config.retry, "upload segment", || {
            self.put_data(&file, &segment.path, start, size, &log_key)
        })
        .await?;
        let Some(summary) = summary else {
            return Err(invalid("no batches".into()));
        };
        if summary.base_offset != base_offset || summary.last_offset != segment.last_offset {
            return Err(invalid(format!(
                "holds offsets {}..={}, expected {}..={}",
                summary.base_offset, summary.last_offset, base_offset, segment.last_offset
            )));
        }

        let index_key = name.index_key(&segment.topic, segment.partition);
        let index_bytes = index.encode();
        let index_size = index_bytes.len() as u64;
        retry(&self.config.retry, "upload index", || {
            self.remote.put(&index_key, index_bytes.clone())
        })
        .await?;
        self.remote.metrics().upload_bytes.inc_by(index_size);

        let meta = SegmentMeta {
            base_offset,
            last_offset: segment.last_offset,
            base_timestamp: summary.base_timestamp,
            max_timestamp: summary.max_timestamp,
            size_bytes: size,
            crc32c: crc,
            epoch: segment.epoch,
            index_size,
            batch_count: summary.batch_count,
            uploaded_at_ms: now_ms(),
        };
        let listed = meta.clone();
        let (_, outcome) = self
            .remote
            .update_manifest(&segment.topic, segment.partition, move |m| {
                if let Some(last) = m.segments.last() {
                    if last.base_offset == listed.base_offset
                        && last.last_offset == listed.last_offset
                    {
                        return Ok((false, UploadOutcome::Uploaded(last.clone())));
                    }
                    if listed.base_offset <= last.last_offset {
                        return Err(Error::ManifestConflict {
                            topic: m.topic.clone(),
                            partition: m.partition,
                            base_offset: listed.base_offset,
                            last_offset: listed.last_offset,
                            reason: format!("manifest already ends at {}", last.last_offset),
                        });
                    }
                }
                if m.live_segments().is_empty() {
                    m.remote_start_offset = m.remote_start_offset.max(listed.base_offset);
                }
                m.segments.push(listed.clone());
                Ok((true, UploadOutcome::Uploaded(listed)))
            })
            .await?;
        Ok(outcome)
    }

    /// One attempt at writing the data object; returns its index, batch
    /// summary and CRC32C.
    async fn put_data(
        &self,
        file: &Arc<std::fs::File>,
        path: &Path,
        start: u64,
        size: u64,
        key: &str,
    ) -> Result<(RemoteIndex, Option<BatchSummary>, u32)> {
        let mut scanner = BatchScanner::new(self.config.index_interval);
        let scan_error = |e: Error| Error::InvalidSegment {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        if size < self.config.multipart_threshold {
            let data = read_at(file, path, start, size as usize).await?;
            scanner.push(&data).map_err(scan_error)?;
            let (index, summary) = scanner.finish().map_err(scan_error)?;
            let crc = crc32c::crc32c(&data);
            self.remote.put(key, data).await?;
            self.remote.metrics().upload_bytes.inc_by(size);
            return Ok((index, summary, crc));
        }

        let mut upload = self.remote.put_multipart(key).await?;
        let mut in_flight = VecDeque::new();
        let mut crc = 0u32;
        let mut done = 0u64;
        let result: Result<()> = async {
            while done < size {
                let len = (size - done).min(self.config.part_size.max(1) as u64) as usize;
                let part = read_at(file, path, start + done, len).await?;
                scanner.push(&part).map_err(scan_error)?;
                crc = crc32c::crc32c_append(crc, &part);
                done += len as u64;
                in_flight.push_back(upload.put_part(PutPayload::from_bytes(part)));
                while in_flight.len() > self.config.parts_in_flight.max(1) {
                    let part = in_flight.pop_front().expect("non-empty");
                    part.await
                        .map_err(|e| self.remote.multipart_error(key, e))?;
                }
            }
            while let Some(part) = in_flight.pop_front() {
                part.await
                    .map_err(|e| self.remote.multipart_error(key, e))?;
            }
            Ok(())
        }
        .await;
        let finished = result.and_then(|()| scanner.finish().map_err(scan_error));
        let (index, summary) = match finished {
            Ok(v) => v,
            Err(e) => {
                drop(in_flight);
                if let Err(abort) = upload.abort().await {
                    tracing::debug!(%abort, key, "multipart abort failed; the sweeper or bucket lifecycle reclaims it");
                }
                return Err(e);
            }
        };
        upload
            .complete()
            .await
            .map_err(|e| self.remote.multipart_error(key, e))?;
        self.remote.persist(key).await?;
        self.remote.metrics().upload_bytes.inc_by(size);
        Ok((index, summary, crc))
    }
}

fn open(path: &Path) -> Result<std::fs::File> {
    std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads `len` bytes at `offset` on a blocking thread.
async fn read_at(file: &Arc<std::fs::File>, path: &Path, offset: u64, len: usize) -> Result<Bytes> {
    let file = file.clone();
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)
            .map_err(|source| Error::Io { path, source })?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(Error::Task)?
}

/// Walks batch headers from the start of the file to the first batch whose
/// base offset is at or after `offset`; returns its position and base offset.
async fn find_batch_at(
    file: &Arc<std::fs::File>,
    path: &Path,
    file_len: u64,
    offset: i64,
) -> Result<(u64, i64)> {
    let mut position = 0u64;
    while position < file_len {
        if file_len - position < BATCH_HEADER_LEN as u64 {
            break;
        }
        let header_bytes = read_at(file, path, position, BATCH_HEADER_LEN).await?;
        let header =
            BatchHeader::parse(&header_bytes, position).map_err(|e| Error::InvalidSegment {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        if header.base_offset >= offset {
            return Ok((position, header.base_offset));
        }
        if header.last_offset() >= offset {
            return Err(Error::InvalidSegment {
                path: path.to_owned(),
                reason: format!(
                    "batch {}..={} straddles the remote end {offset}",
                    header.base_offset,
                    header.last_offset()
                ),
            });
        }
        position += header.size();
    }
    Err(Error::InvalidSegment {
        path: path.to_owned(),
        reason: format!("no batch at or after offset {offset}"),
    })
}
