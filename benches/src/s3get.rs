//! `s3-get`: an object store's own ranged-GET throughput, measured with the
//! broker's HTTP client (`shadow_index::store`, i.e. object_store's S3
//! client) on a tokio runtime of the broker's cloud-plane size, so that the
//! broker's cold remote reads can be set beside what the server itself
//! delivers for the same objects, chunk size and parallelism.
//!
//! Lists the `.log` objects under a prefix, cuts each into `chunk_bytes`
//! ranges (the last one shorter, as the broker's reader does) and runs
//! `parallel` workers that each take the next range and GET it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context as _, bail};
use shadow_index::store::{ObjectStoreConfig, S3Options, open_store_with};

use crate::stats::Latencies;

#[derive(Debug, Clone)]
pub struct S3GetOptions {
    /// `http(s)://host:port`; `None` keeps `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Key prefix (a directory) under which `.log` objects are listed.
    pub prefix: String,
    pub parallel: usize,
    pub chunk_bytes: u64,
    /// Tokio worker threads (the broker's cloud plane has 2).
    pub threads: usize,
}

pub fn run(opts: &S3GetOptions) -> anyhow::Result<()> {
    if opts.parallel == 0 || opts.chunk_bytes == 0 || opts.threads == 0 {
        bail!("--parallel, --chunk-bytes and --threads must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let config = ObjectStoreConfig {
        url: format!("s3://{}", opts.bucket),
        s3: S3Options {
            allow_http: opts.endpoint.as_deref().map(|e| e.starts_with("http://")),
            endpoint: opts.endpoint.clone(),
            ..S3Options::default()
        },
        ..ObjectStoreConfig::default()
    };
    let remote = open_store_with(&config).context("opening the object store")?;
    runtime.block_on(async move {
        let prefix = opts.prefix.trim_matches('/');
        let mut objects: Vec<_> = remote
            .list(prefix)
            .await
            .with_context(|| format!("listing {prefix}"))?
            .into_iter()
            .filter(|o| o.key.ends_with(".log"))
            .collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        if objects.is_empty() {
            bail!("no .log objects under s3://{}/{prefix}", opts.bucket);
        }
        let mut ranges = VecDeque::new();
        for o in &objects {
            let mut start = 0;
            while start < o.size {
                let end = (start + opts.chunk_bytes).min(o.size);
                ranges.push_back((o.key.clone(), start..end));
                start = end;
            }
        }
        let total: u64 = objects.iter().map(|o| o.size).sum();
        println!(
            "s3-get: {} .log objects, {:.1} MB, {} ranged GETs of up to {} bytes, parallel {}, \
             {} runtime threads",
            objects.len(),
            total as f64 / 1e6,
            ranges.len(),
            opts.chunk_bytes,
            opts.parallel,
            opts.threads,
        );
        let queue = Arc::new(Mutex::new(ranges));
        let began = Instant::now();
        let workers: Vec<_> = (0..opts.parallel)
            .map(|_| {
                let queue = queue.clone();
                let remote = remote.clone();
                tokio::spawn(async move {
                    let mut latencies = Latencies::default();
                    let mut bytes = 0u64;
                    loop {
                        let next = queue.lock().expect("queue poisoned").pop_front();
                        let Some((key, range)) = next else { break };
                        let sent = Instant::now();
                        let got = remote
                            .get_range(&key, range.clone())
                            .await
                            .with_context(|| format!("GET {key} {range:?}"))?;
                        latencies.record(sent.elapsed().as_micros() as u64);
                        bytes += got.len() as u64;
                    }
                    anyhow::Ok((bytes, latencies))
                })
            })
            .collect();
        let mut bytes = 0;
        let mut latencies = Latencies::default();
        for w in workers {
            let (b, l) = w.await.context("GET worker panicked")??;
            bytes += b;
            latencies.merge(l);
        }
        let secs = began.elapsed().as_secs_f64();
        println!(
            "  {:.1} MB in {secs:.2} s\n  throughput {:.1} MB/s ({:.1} MiB/s)",
            bytes as f64 / 1e6,
            bytes as f64 / secs / 1e6,
            bytes as f64 / secs / (1 << 20) as f64,
        );
        println!("  GET latency: {}", latencies.summary());
        Ok(())
    })
}
