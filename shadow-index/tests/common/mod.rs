//! Shared helpers of the integration tests: segment files, the stores under
//! test (local directory, in-memory, s3s-fs started in-process, moto via
//! `FLOE_TEST_S3_ENDPOINT`) and a fault-injecting store decorator.

#![allow(dead_code)]

pub mod faulty;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use shadow_index::index::test_batch;
use shadow_index::retry::RetryConfig;
use shadow_index::store::{ObjectStoreConfig, Remote, S3Options, open_store_with};
use shadow_index::uploader::SealedSegment;

/// One batch of a generated log: where it is and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct BatchInfo {
    pub base: i64,
    pub last: i64,
    pub position: usize,
    pub size: usize,
    pub max_timestamp: i64,
}

/// A generated log segment: its bytes and batch table.
#[derive(Debug, Clone)]
pub struct Log {
    pub bytes: Vec<u8>,
    pub batches: Vec<BatchInfo>,
}

impl Log {
    /// `batch_count` batches from `base`, each of `records` records with a
    /// payload whose size varies with the batch number (up to `max_payload`).
    pub fn generate(
        base: i64,
        batch_count: usize,
        records: i32,
        max_payload: usize,
        ts0: i64,
    ) -> Log {
        let mut bytes = Vec::new();
        let mut batches = Vec::new();
        let mut offset = base;
        for i in 0..batch_count {
            let len = 1 + (i * 7919 + 13) % max_payload.max(1);
            let payload: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            let ts = ts0 + i as i64 * 1000;
            let batch = test_batch(offset, records, ts, &payload);
            batches.push(BatchInfo {
                base: offset,
                last: offset + records as i64 - 1,
                position: bytes.len(),
                size: batch.len(),
                max_timestamp: ts + records as i64 - 1,
            });
            bytes.extend_from_slice(&batch);
            offset += records as i64;
        }
        Log { bytes, batches }
    }

    pub fn base(&self) -> i64 {
        self.batches[0].base
    }

    pub fn last(&self) -> i64 {
        self.batches.last().unwrap().last
    }

    /// Writes the log as a sealed segment file under `dir`.
    pub fn seal(&self, dir: &Path, topic: &str, partition: i32) -> SealedSegment {
        let path = dir.join(format!("{topic}-{partition}-{:020}.log", self.base()));
        std::fs::write(&path, &self.bytes).unwrap();
        SealedSegment {
            topic: topic.to_owned(),
            partition,
            base_offset: self.base(),
            last_offset: self.last(),
            epoch: 1,
            path,
        }
    }

    /// Bytes of the batches from the one holding `offset` to the end.
    pub fn bytes_from(&self, offset: i64) -> &[u8] {
        let b = self.batches.iter().find(|b| b.last >= offset).unwrap();
        &self.bytes[b.position..]
    }
}

/// Fast retries for tests.
pub fn fast_retry(attempts: u32) -> RetryConfig {
    RetryConfig {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        max_attempts: attempts,
    }
}

/// A store under test plus whatever keeps it alive.
pub struct Backend {
    pub remote: Remote,
    pub _guard: Box<dyn std::any::Any + Send>,
}

pub fn local_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("bucket").display());
    let remote = open_store_with(&ObjectStoreConfig {
        url,
        retry: fast_retry(5),
        ..ObjectStoreConfig::default()
    })
    .unwrap();
    Backend {
        remote,
        _guard: Box::new(dir),
    }
}

pub fn memory_backend() -> Backend {
    let remote = open_store_with(&ObjectStoreConfig {
        url: "memory://".into(),
        retry: fast_retry(5),
        ..ObjectStoreConfig::default()
    })
    .unwrap();
    Backend {
        remote,
        _guard: Box::new(()),
    }
}

fn s3_remote(endpoint: &str, bucket: &str, prefix: &str, key: &str, secret: &str) -> Remote {
    open_store_with(&ObjectStoreConfig {
        url: format!("s3://{bucket}/{prefix}"),
        s3: S3Options {
            endpoint: Some(endpoint.to_owned()),
            region: Some("us-east-1".into()),
            access_key_id: Some(key.into()),
            secret_access_key: Some(secret.into()),
            allow_http: Some(true),
            virtual_hosted_style: Some(false),
            client_max_retries: Some(2),
            client_retry_timeout: Some(Duration::from_secs(10)),
        },
        retry: fast_retry(5),
    })
    .unwrap()
}

/// An s3s-fs server (SigV4-checking S3 over a directory) on a free loopback
/// port, in this runtime, with bucket `floe-test`.
pub async fn s3s_backend() -> Backend {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use s3s::auth::SimpleAuth;
    use s3s::service::S3ServiceBuilder;

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("floe-test")).unwrap();
    let fs = s3s_fs::FileSystem::new(dir.path()).unwrap();
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single("test-access", "test-secret"));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    let remote = s3_remote(
        &format!("http://{addr}"),
        "floe-test",
        "cluster-a",
        "test-access",
        "test-secret",
    );
    struct Stop(tokio::task::JoinHandle<()>, tempfile::TempDir);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    Backend {
        remote,
        _guard: Box::new(Stop(server, dir)),
    }
}

/// An external S3-compatible server (moto in CI) when
/// `FLOE_TEST_S3_ENDPOINT` is set; the bucket (`FLOE_TEST_S3_BUCKET`, default
/// `floe-test`) must exist. Each call uses a fresh prefix.
pub fn external_s3_backend() -> Option<Backend> {
    let endpoint = std::env::var("FLOE_TEST_S3_ENDPOINT").ok()?;
    let bucket = std::env::var("FLOE_TEST_S3_BUCKET").unwrap_or_else(|_| "floe-test".into());
    let prefix = format!(
        "run-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    Some(Backend {
        remote: s3_remote(&endpoint, &bucket, &prefix, &key, &secret),
        _guard: Box::new(()),
    })
}

/// Wraps a remote's store in a [`faulty::FaultyStore`].
pub fn with_faults(remote: &Remote, retry: RetryConfig) -> (Remote, faulty::Faults) {
    let faults = faulty::Faults::default();
    let store = faulty::FaultyStore::new(remote.store().clone(), faults.clone());
    (
        Remote::new(Arc::new(store), "", "faulty://").with_retry(retry),
        faults,
    )
}
