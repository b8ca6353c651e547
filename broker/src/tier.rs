//! The broker's side of tiered storage: the shadow index on the cloud plane.
//!
//! `shadow-index` runs on tokio; the shards run on glommio. [`Tier`] owns the
//! cloud plane (a small multi-threaded tokio runtime, its own threads) and
//! hands it owned work: a sealed segment's path to upload, an offset to read
//! back. Results come back through a oneshot channel that a shard can await
//! without blocking its event loop. The produce path never waits for any of
//! it: uploads run from each shard's periodic tier pass, never from a
//! request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use shadow_index::cache::ChunkCache;
use shadow_index::lease::{LeaseHolder, Renewal, WriterLease};
use shadow_index::manifest::TopicManifest;
use shadow_index::reader::{ReaderConfig, RemoteExtent, RemoteReader, RemoteSlice};
use shadow_index::recovery::{RecoveryOptions, RecoveryProgress, TopicRecovery};
use shadow_index::retention::{RetentionOutcome, RetentionPolicy};
use shadow_index::store::{ObjectStoreConfig, Remote, S3Options};
use shadow_index::uploader::{SealedSegment, UploadOutcome, Uploader, UploaderConfig};

use crate::config::TierSettings;
use crate::error_code;

/// How to open `url` with the broker's S3 settings.
fn store_config(settings: &TierSettings, url: &str) -> ObjectStoreConfig {
    let s3 = &settings.s3;
    ObjectStoreConfig {
        url: url.to_string(),
        s3: S3Options {
            endpoint: s3.endpoint.clone(),
            region: s3.region.clone(),
            access_key_id: s3.access_key_id.clone(),
            secret_access_key: s3.secret_access_key.clone(),
            allow_http: s3.allow_http,
            virtual_hosted_style: s3.virtual_hosted_style,
            ..S3Options::default()
        },
        ..ObjectStoreConfig::default()
    }
}

/// Why tiered storage could not start or a call did not complete.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("cannot start the cloud-plane runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("object store: {0}")]
    Store(#[from] shadow_index::Error),
    #[error("the cloud plane stopped before answering")]
    Stopped,
}

impl TierError {
    /// The Kafka error code for a failed remote read or lookup.
    pub fn kafka_code(&self) -> i16 {
        match self {
            TierError::Store(shadow_index::Error::OffsetOutOfRange { .. }) => {
                error_code::OFFSET_OUT_OF_RANGE
            }
            // Retriable for clients: they back off and fetch again.
            _ => error_code::KAFKA_STORAGE_ERROR,
        }
    }
}

/// The shadow index as the broker uses it. Thread-safe; one per broker.
pub struct Tier {
    remote: Remote,
    uploader: Uploader,
    reader: RemoteReader,
    lease: Option<Arc<WriterLease>>,
    handle: tokio::runtime::Handle,
    pub settings: TierSettings,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tier")
            .field("object_store", &self.settings.object_store)
            .finish()
    }
}

impl Tier {
    /// Starts the cloud plane, opens the object store and checks that it is
    /// reachable and writable (a probe object is put, read and deleted), so
    /// a wrong endpoint or credentials stop the broker at startup with the
    /// store's own error. The runtime must outlive the returned `Tier`'s
    /// users; drop it last, off the shards.
    ///
    /// Then takes the writer lease on the store's prefix for `cluster_id`
    /// (unless `writer-lease-ms` is 0) and renews it in the background: a
    /// prefix another broker writes stops this one here, with a message
    /// naming that broker.
    pub fn start(
        settings: TierSettings,
        cluster_id: &str,
    ) -> Result<(Arc<Tier>, tokio::runtime::Runtime), TierError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("floe-cloud")
            .enable_all()
            .build()
            .map_err(TierError::Runtime)?;
        let config = store_config(&settings, &settings.object_store);
        let remote = shadow_index::store::open_store_with(&config)?;
        runtime.block_on(remote.check())?;
        // The memory tier holds the chunks readers are in (chunks fetched
        // ahead are held by the reader, within its own budget): 8 chunks,
        // 128 MiB at the default 16 MiB, so 8 partitions read at once each
        // keep theirs. Worst case per broker (see `shadow_index::reader`):
        // this + 8 chunks ahead + 128 MiB of cache writes + 2 chunks per
        // remote read in progress.
        let memory = settings.cache_bytes.min(8 * settings.chunk_bytes);
        let cache =
            ChunkCache::open_with_memory(&settings.cache_dir, settings.cache_bytes, memory)?;
        cache.set_direct_io(settings.cache_direct_io);
        cache.set_min_free_bytes(
            2 * crate::disk_guard::reserve_at(&settings.cache_dir, settings.min_free_bytes),
        );
        let reader = RemoteReader::with_config(
            remote.clone(),
            cache,
            ReaderConfig {
                chunk_size: settings.chunk_bytes,
                ..ReaderConfig::default()
            },
        );
        let uploader = Uploader::new(
            remote.clone(),
            UploaderConfig {
                max_concurrency: settings.upload_concurrency.max(1),
                ..UploaderConfig::default()
            },
        );
        // Chunk buffers a burst of cold reads left unused go back to the
        // allocator after a minute.
        let buffers = reader.buffers().clone();
        runtime.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(15));
            loop {
                every.tick().await;
                buffers.trim(Duration::from_secs(60));
            }
        });
        let lease = if settings.writer_lease_ms > 0 {
            let holder = LeaseHolder {
                id: cluster_id.to_owned(),
                host: rustix::system::uname()
                    .nodename()
                    .to_string_lossy()
                    .into_owned(),
                pid: std::process::id(),
                started_ms: crate::shard::now_ms(),
            };
            let duration = Duration::from_millis(settings.writer_lease_ms);
            let lease =
                Arc::new(runtime.block_on(WriterLease::acquire(&remote, holder, duration))?);
            runtime.spawn(renew_lease(lease.clone()));
            Some(lease)
        } else {
            None
        };
        let tier = Tier {
            remote,
            uploader,
            reader,
            lease,
            handle: runtime.handle().clone(),
            settings,
        };
        Ok((Arc::new(tier), runtime))
    }

    /// Gives the writer lease up (clean shutdown, after the last write), so
    /// another data directory can take the prefix over at once. Waits at
    /// most 5 s for the store.
    pub fn release_lease(&self) {
        let Some(lease) = self.lease.clone() else {
            return;
        };
        let released = self.handle.block_on(async move {
            tokio::time::timeout(Duration::from_secs(5), lease.release()).await
        });
        match released {
            Ok(Ok(())) => tracing::info!("writer lease released"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot release the writer lease; it expires by itself")
            }
            Err(_) => tracing::warn!("releasing the writer lease timed out; it expires by itself"),
        }
    }

    /// Adds the shadow index's series (`floe_tier_*`) to the broker's
    /// Prometheus registry.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.remote.register_metrics(registry);
    }

    pub fn url(&self) -> &str {
        self.remote.url()
    }

    /// The object store, the URL it was opened from and the key prefix that
    /// URL maps to, for other users of the same bucket (the Iceberg
    /// warehouse).
    #[cfg(feature = "iceberg")]
    pub fn object_store(&self) -> (Arc<dyn object_store::ObjectStore>, String, String) {
        let prefix = self.remote.path("").to_string();
        (
            self.remote.store().clone(),
            self.remote.url().to_string(),
            prefix,
        )
    }

    /// Opens another object store URL with the same S3 settings (the
    /// Iceberg warehouse when `--iceberg-warehouse` names another place)
    /// and checks that it is reachable and writable, like the tier's own.
    #[cfg(feature = "iceberg")]
    pub fn open_other_store(
        &self,
        url: &str,
    ) -> Result<(Arc<dyn object_store::ObjectStore>, String, String), TierError> {
        let remote = shadow_index::store::open_store_with(&store_config(&self.settings, url))?;
        let check = remote.clone();
        self.handle.block_on(async move { check.check().await })?;
        let prefix = remote.path("").to_string();
        Ok((remote.store().clone(), remote.url().to_string(), prefix))
    }

    /// Why this broker may not write to the object store now (its writer
    /// lease lapsed or another broker took the prefix over), or `None`.
    /// Writers outside the shadow index (the Iceberg projector) check it
    /// before each commit.
    pub fn writes_refused(&self) -> Option<String> {
        self.remote.writes_refused()
    }

    /// Hit ratio of the remote-read cache since start (0 when unused).
    pub fn cache_hit_ratio(&self) -> f64 {
        self.remote.metrics().cache_hit_ratio()
    }

    /// Runs `work` on the cloud plane and awaits its result from any
    /// executor (the shard's event loop keeps running meanwhile).
    pub async fn run<F, T>(&self, work: F) -> Result<T, TierError>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.await.map_err(|_| TierError::Stopped)
    }

    /// Uploads a sealed segment: data, index, then the manifest.
    pub async fn upload(&self, segment: SealedSegment) -> Result<UploadOutcome, TierError> {
        let uploader = self.uploader.clone();
        Ok(self
            .run(async move { uploader.upload_segment(&segment).await })
            .await??)
    }

    /// A partition's remote tier as its manifest lists it (offsets, segment
    /// objects and bytes), `None` when nothing of it is remote.
    pub async fn remote_extent(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<RemoteExtent>, TierError> {
        let reader = self.reader.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move { reader.remote_extent(&topic, partition).await })
            .await??)
    }

    /// Whole, CRC-checked batches from the remote tier starting with the one
    /// holding `offset`.
    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<RemoteSlice, TierError> {
        let reader = self.reader.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move { reader.read(&topic, partition, offset, max_bytes).await })
            .await??)
    }

    /// Base offset of the first remote batch with a record at or after
    /// `timestamp`.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<i64>, TierError> {
        let reader = self.reader.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move {
                reader
                    .offset_for_timestamp(&topic, partition, timestamp)
                    .await
            })
            .await??)
    }

    /// Applies total retention to a partition's remote tier (manifest first,
    /// then objects).
    pub async fn apply_retention(
        &self,
        topic: &str,
        partition: i32,
        policy: RetentionPolicy,
    ) -> Result<RetentionOutcome, TierError> {
        let remote = self.remote.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move {
                shadow_index::retention::apply_retention(&remote, &topic, partition, &policy).await
            })
            .await??)
    }

    /// DeleteRecords on the remote tier: moves its start to `before`.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        before: i64,
    ) -> Result<RetentionOutcome, TierError> {
        let remote = self.remote.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move {
                shadow_index::retention::delete_records(&remote, &topic, partition, before).await
            })
            .await??)
    }

    /// Deletes everything the bucket holds of `topic`; returns the objects
    /// deleted.
    pub async fn delete_topic(&self, topic: &str) -> Result<usize, TierError> {
        let remote = self.remote.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move { shadow_index::retention::delete_topic(&remote, &topic).await })
            .await??)
    }

    /// Deletes a partition's objects that no manifest lists and that are
    /// older than `min_age` (leftovers of crashed uploads).
    pub async fn sweep_orphans(
        &self,
        topic: &str,
        partition: i32,
        min_age: Duration,
    ) -> Result<Vec<String>, TierError> {
        let remote = self.remote.clone();
        let topic = topic.to_string();
        Ok(self
            .run(async move {
                shadow_index::retention::sweep_orphans(&remote, &topic, partition, min_age).await
            })
            .await??)
    }

    /// Writes `topic.json` (configs and partition count, for recovery).
    pub async fn save_topic(&self, manifest: TopicManifest) -> Result<(), TierError> {
        let remote = self.remote.clone();
        Ok(self
            .run(async move { remote.save_topic(&manifest).await })
            .await??)
    }

    /// Reads every topic's `topic.json` and partition manifests (or only
    /// `only`'s), reporting progress lines through `progress`.
    pub async fn recovery_plan(
        &self,
        only: Option<String>,
        progress: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<Vec<TopicRecovery>, TierError> {
        let remote = self.remote.clone();
        Ok(self
            .run(async move {
                let mut report = |p: RecoveryProgress<'_>| progress(describe_progress(p));
                let options = RecoveryOptions {
                    verify_objects: true,
                };
                match only {
                    Some(topic) => {
                        shadow_index::recovery::recover_topic(&remote, &topic, options, &mut report)
                            .await
                            .map(|t| t.into_iter().collect())
                    }
                    None => {
                        shadow_index::recovery::recover_all(&remote, options, &mut report).await
                    }
                }
            })
            .await??)
    }
}

fn describe_progress(p: RecoveryProgress<'_>) -> String {
    match p {
        RecoveryProgress::Topic {
            topic,
            index,
            total,
        } => format!("topic {}/{total}: {topic}", index + 1),
        RecoveryProgress::Partition {
            topic,
            partition,
            done,
            total,
        } => format!("  {topic}/{partition}: manifest read ({done}/{total})"),
    }
}

/// Renews the writer lease every third of its duration (sooner after a
/// failure) until it is lost; writes stop while it is overdue.
async fn renew_lease(lease: Arc<WriterLease>) {
    let every = lease.renew_interval();
    loop {
        // Bounded: a store that hangs must not keep the overdue check away.
        let renewed = tokio::time::timeout(every, lease.renew())
            .await
            .unwrap_or_else(|_| {
                Err(shadow_index::Error::Io {
                    path: shadow_index::lease::LEASE_KEY.into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer from the object store",
                    ),
                })
            });
        let wait = match renewed {
            Ok(Renewal::Renewed) => every,
            Ok(Renewal::Lost(by)) => {
                tracing::error!(taken_by = %by, "another broker took over the object store's writer lease: this broker no longer writes to the store (uploads stop, local segments stay); restart it on its own prefix");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the object store's writer lease; retrying");
                lease.check_overdue();
                (every / 5).max(Duration::from_millis(200))
            }
        };
        tokio::time::sleep(wait).await;
        lease.check_overdue();
    }
}
