//! A store decorator that injects the faults of TESTING.md T1/T3/T4 into a
//! real store underneath: outages (503), deterministic flakiness, truncated
//! GET bodies, latency, and failing PUTs of chosen keys.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Switches shared between a test and its [`FaultyStore`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    outage: AtomicBool,
    /// Every n-th call fails with a 503 (0 = never).
    fail_every: AtomicUsize,
    /// Every n-th GET returns a truncated body (0 = never).
    truncate_every: AtomicUsize,
    /// Every n-th GET body fails halfway through (0 = never).
    break_every: AtomicUsize,
    /// Every n-th GET body runs past the range it claims (0 = never).
    overrun_every: AtomicUsize,
    latency_ms: AtomicU64,
    /// PUTs of keys containing one of these fail.
    failing_puts: Mutex<Vec<String>>,
    calls: AtomicUsize,
    gets: AtomicUsize,
    injected: AtomicUsize,
}

impl Faults {
    pub fn set_outage(&self, on: bool) {
        self.inner.outage.store(on, Ordering::SeqCst);
    }
    pub fn fail_every(&self, n: usize) {
        self.inner.fail_every.store(n, Ordering::SeqCst);
    }
    pub fn truncate_every(&self, n: usize) {
        self.inner.truncate_every.store(n, Ordering::SeqCst);
    }
    pub fn break_every(&self, n: usize) {
        self.inner.break_every.store(n, Ordering::SeqCst);
    }
    pub fn overrun_every(&self, n: usize) {
        self.inner.overrun_every.store(n, Ordering::SeqCst);
    }
    pub fn set_latency(&self, latency: Duration) {
        self.inner
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }
    pub fn fail_puts_containing(&self, part: &str) {
        self.inner
            .failing_puts
            .lock()
            .unwrap()
            .push(part.to_owned());
    }
    pub fn clear(&self) {
        self.set_outage(false);
        self.fail_every(0);
        self.truncate_every(0);
        self.break_every(0);
        self.overrun_every(0);
        self.set_latency(Duration::ZERO);
        self.inner.failing_puts.lock().unwrap().clear();
    }
    /// Faults injected so far.
    pub fn injected(&self) -> usize {
        self.inner.injected.load(Ordering::SeqCst)
    }

    fn unavailable(&self, what: &str) -> object_store::Error {
        self.inner.injected.fetch_add(1, Ordering::SeqCst);
        object_store::Error::Generic {
            store: "faulty",
            source: format!("injected 503 Service Unavailable on {what}").into(),
        }
    }

    /// Latency, then an outage or flaky failure if one is due.
    async fn before(&self, what: &str) -> Result<()> {
        let latency = self.inner.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_millis(latency)).await;
        }
        if self.inner.outage.load(Ordering::SeqCst) {
            return Err(self.unavailable(what));
        }
        let n = self.inner.fail_every.load(Ordering::SeqCst);
        let call = self.inner.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n > 0 && call.is_multiple_of(n) {
            return Err(self.unavailable(what));
        }
        Ok(())
    }
}

/// What happens to a GET body.
enum Fault {
    Truncate,
    Break,
    Overrun,
}

/// The decorator: a real store underneath, faults on top.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Faults,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Faults) -> FaultyStore {
        FaultyStore { inner, faults }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.faults.before("put").await?;
        let failing = self
            .faults
            .inner
            .failing_puts
            .lock()
            .unwrap()
            .iter()
            .any(|part| location.as_ref().contains(part.as_str()));
        if failing {
            return Err(self.faults.unavailable("put"));
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.faults.before("put_multipart").await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.faults.before("get").await?;
        let result = self.inner.get_opts(location, options).await?;
        let get = self.faults.inner.gets.fetch_add(1, Ordering::SeqCst) + 1;
        let due = |every: &AtomicUsize| {
            let n = every.load(Ordering::SeqCst);
            n > 0 && get.is_multiple_of(n)
        };
        let fault = if due(&self.faults.inner.truncate_every) {
            Fault::Truncate
        } else if due(&self.faults.inner.break_every) {
            Fault::Break
        } else if due(&self.faults.inner.overrun_every) {
            Fault::Overrun
        } else {
            return Ok(result);
        };
        // The headers promise the full range; the body does not keep it.
        self.faults.inner.injected.fetch_add(1, Ordering::SeqCst);
        let GetResult {
            meta,
            range,
            attributes,
            extensions,
            payload,
        } = result;
        let full = GetResult {
            payload,
            meta: meta.clone(),
            range: range.clone(),
            attributes: attributes.clone(),
            extensions: extensions.clone(),
        }
        .bytes()
        .await?;
        let half = full.slice(..full.len() / 2);
        let body = match fault {
            Fault::Truncate => futures_util::stream::once(async move { Ok(half) }).boxed(),
            Fault::Break => {
                let reset = object_store::Error::Generic {
                    store: "faulty",
                    source: "injected connection reset in the body".into(),
                };
                futures_util::stream::iter([Ok(half), Err(reset)]).boxed()
            }
            Fault::Overrun => {
                let extra = Bytes::from_static(b"trailing bytes past the range");
                futures_util::stream::iter([Ok(full), Ok(extra)]).boxed()
            }
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(body),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.faults.before("get_ranges").await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.faults.inner.outage.load(Ordering::SeqCst) {
            let error = self.faults.unavailable("delete");
            return futures_util::stream::once(async move { Err(error) }).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.faults.inner.outage.load(Ordering::SeqCst) {
            let error = self.faults.unavailable("list");
            return futures_util::stream::once(async move { Err(error) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.faults.before("list").await?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.faults.before("copy").await?;
        self.inner.copy_opts(from, to, options).await
    }
}
