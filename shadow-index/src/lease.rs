//! The writer lease: one broker writes an object-store prefix.
//!
//! A broker caches the partition manifests it writes and rewrites them
//! whole, so two brokers pointed at the same prefix would overwrite each
//! other's manifests and lose the segments listed only in the overwritten
//! one. The lease keeps that from happening by mistake:
//!
//! - `_floe/writer.json` names the broker that writes the prefix (its
//!   cluster id, which lives in its data directory, plus host and pid for
//!   the message). A broker starting on a prefix whose lease another id
//!   renewed less than the lease duration ago (by the store's clock: the
//!   object's last-modified time against that of a probe written just
//!   before) refuses to start ([`Error::LeaseHeld`]). The same data
//!   directory restarting is the same holder and starts at once.
//! - The holder renews it every third of the duration. A renewal that finds
//!   another holder's lease means this broker was taken over (it was cut off
//!   or paused past the duration): every write of the [`Remote`] is refused
//!   from then on ([`Error::WritesRefused`]), uploads stop and local segments
//!   stay on disk (nothing is lost; the log says why).
//! - A holder that has not renewed for two thirds of the duration stops
//!   writing until a renewal succeeds, so it never writes after another
//!   broker could have taken the prefix over. Every write checks that
//!   deadline itself, so a process paused past it (SIGSTOP, a VM freeze)
//!   finds its writes refused the moment it wakes, before its renewal runs.
//! - A clean shutdown deletes the lease, so another data directory can take
//!   the prefix over at once (`floe topic recover` on a new disk).
//!
//! This is a guard against misconfiguration, not a consensus protocol: two
//! brokers starting within the same moment can both pass the check, and
//! the later writer wins the object; the other notices at its next renewal
//! (within a third of the duration) and stops writing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Remote;

/// Key of the lease object, relative to the store's prefix.
pub const LEASE_KEY: &str = "_floe/writer.json";

/// Who holds the lease, as stored in [`LEASE_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The broker's cluster id (stable across restarts of one data dir).
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// When this holder first took the lease (ms since the Unix epoch).
    pub started_ms: i64,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cluster id {} on host {} (pid {})",
            self.id, self.host, self.pid
        )
    }
}

/// A lease this broker holds on its store's prefix.
#[derive(Debug)]
pub struct WriterLease {
    remote: Remote,
    holder: LeaseHolder,
    duration: Duration,
    state: Mutex<LeaseState>,
}

#[derive(Debug)]
struct LeaseState {
    last_renewed: Instant,
    /// Another holder took the prefix over: final.
    lost_to: Option<LeaseHolder>,
    /// Writes stopped because renewals failed for too long.
    suspended: bool,
}

/// What a renewal found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// Renewed; writes go on (or resume after a suspension).
    Renewed,
    /// Another broker holds the lease now; writes stay refused.
    Lost(LeaseHolder),
}

impl WriterLease {
    /// Takes the lease on `remote`'s prefix for `holder`, or fails with
    /// [`Error::LeaseHeld`] when another holder renewed it less than
    /// `duration` ago.
    pub async fn acquire(
        remote: &Remote,
        holder: LeaseHolder,
        duration: Duration,
    ) -> Result<WriterLease> {
        if let Some((current, modified_ms)) = read_lease(remote).await?
            && current.id != holder.id
        {
            let now_ms = server_now_ms(remote).await?;
            let age_ms = now_ms.saturating_sub(modified_ms).max(0);
            let duration_ms = duration.as_millis() as i64;
            if age_ms < duration_ms {
                return Err(Error::LeaseHeld {
                    url: remote.url().to_owned(),
                    holder: current.to_string(),
                    age_ms,
                    expires_in_ms: duration_ms - age_ms,
                });
            }
            tracing::warn!(previous = %current, age_ms, "taking over the object store's writer lease from a broker that stopped renewing it");
        }
        let asked = Instant::now();
        write_lease(remote, &holder).await?;
        remote.allow_writes_until(Some(asked + duration * 2 / 3));
        Ok(WriterLease {
            remote: remote.clone(),
            holder,
            duration,
            state: Mutex::new(LeaseState {
                last_renewed: asked,
                lost_to: None,
                suspended: false,
            }),
        })
    }

    /// How often to call [`WriterLease::renew`].
    pub fn renew_interval(&self) -> Duration {
        self.duration / 3
    }

    /// Renews the lease: reads it back and rewrites it when it is still
    /// this broker's. Finding another holder refuses every write of the
    /// store from now on. A store error is returned as is (call
    /// [`WriterLease::check_overdue`] between attempts).
    pub async fn renew(&self) -> Result<Renewal> {
        if let Some(other) = self.state().lost_to.clone() {
            return Ok(Renewal::Lost(other));
        }
        let asked = Instant::now();
        match read_lease(&self.remote).await? {
            Some((current, _)) if current.id != self.holder.id => {
                self.remote.refuse_writes(Some(format!(
                    "another Floe broker ({current}) took over this object store's writer lease; \
                     this broker stopped writing to it (restart it on its own prefix)"
                )));
                self.state().lost_to = Some(current.clone());
                return Ok(Renewal::Lost(current));
            }
            _ => {}
        }
        write_lease(&self.remote, &self.holder).await?;
        let mut state = self.state();
        // From when the renewal began: the lease object may have been
        // written at any moment since.
        state.last_renewed = asked;
        self.remote
            .allow_writes_until(Some(asked + self.duration * 2 / 3));
        if state.suspended {
            state.suspended = false;
            self.remote.refuse_writes(None);
            tracing::info!("writer lease renewed: writes to the object store resume");
        }
        Ok(Renewal::Renewed)
    }

    /// Stops writes when the lease has not been renewed for two thirds of
    /// its duration (another broker may take it over once it runs out).
    /// Returns whether writes are suspended.
    pub fn check_overdue(&self) -> bool {
        let mut state = self.state();
        let overdue = state.last_renewed.elapsed() >= self.duration * 2 / 3;
        if overdue && !state.suspended && state.lost_to.is_none() {
            state.suspended = true;
            self.remote.refuse_writes(Some(format!(
                "the writer lease could not be renewed for {} s (the object store is unreachable?); \
                 writes wait until it is",
                state.last_renewed.elapsed().as_secs()
            )));
            tracing::error!(
                "cannot renew the object store's writer lease: writes to the store stop until it is renewed"
            );
        }
        state.suspended
    }

    /// Deletes the lease if this broker still holds it (clean shutdown).
    pub async fn release(&self) -> Result<()> {
        if self.state().lost_to.is_some() {
            return Ok(());
        }
        match read_lease(&self.remote).await? {
            Some((current, _)) if current.id == self.holder.id => {
                self.remote.delete_unchecked(LEASE_KEY).await
            }
            _ => Ok(()),
        }
    }

    pub fn holder(&self) -> &LeaseHolder {
        &self.holder
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The lease object and its last-modified time (ms), if there is one. A
/// lease that does not parse counts as expired long ago (it is replaced).
async fn read_lease(remote: &Remote) -> Result<Option<(LeaseHolder, i64)>> {
    match remote.get_with_modified(LEASE_KEY).await {
        Ok((bytes, modified_ms)) => match serde_json::from_slice::<LeaseHolder>(&bytes) {
            Ok(holder) => Ok(Some((holder, modified_ms))),
            Err(e) => {
                tracing::warn!(key = LEASE_KEY, error = %e, "unreadable writer lease; replacing it");
                Ok(None)
            }
        },
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

async fn write_lease(remote: &Remote, holder: &LeaseHolder) -> Result<()> {
    let body = serde_json::to_vec(holder).expect("a lease serializes");
    remote.put_unchecked(LEASE_KEY, Bytes::from(body)).await
}

/// The store's clock: the last-modified time of a probe object written now
/// (so brokers on hosts with different clocks agree on a lease's age).
async fn server_now_ms(remote: &Remote) -> Result<i64> {
    let key = format!("_floe/clock-{}", std::process::id());
    remote
        .put_unchecked(&key, Bytes::from_static(b"clock"))
        .await?;
    let now = remote.head_modified(&key).await;
    let _ = remote.delete_unchecked(&key).await;
    now
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_store;

    fn holder(id: &str) -> LeaseHolder {
        LeaseHolder {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            started_ms: 0,
        }
    }

    /// Two `Remote`s (two brokers' views) of one `file://` prefix.
    fn two_brokers_on_one_prefix() -> (tempfile::TempDir, Remote, Remote) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().display());
        let a = open_store(&url).unwrap();
        let b = open_store(&url).unwrap();
        (dir, a, b)
    }

    #[tokio::test]
    async fn a_fresh_lease_of_another_holder_refuses_a_second_broker() {
        let (_dir, a, b) = two_brokers_on_one_prefix();
        let lease = WriterLease::acquire(&a, holder("a"), Duration::from_secs(30))
            .await
            .unwrap();
        let err = WriterLease::acquire(&b, holder("b"), Duration::from_secs(30))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::LeaseHeld { .. }), "{text}");
        assert!(
            text.contains("cluster id a") && text.contains("expires in"),
            "{text}"
        );
        // The same holder (a restart of the same data dir) gets it at once.
        let again = WriterLease::acquire(&b, holder("a"), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(again.renew().await.unwrap(), Renewal::Renewed);
        // Released: another holder takes it at once.
        lease.release().await.unwrap();
        WriterLease::acquire(&b, holder("b"), Duration::from_secs(30))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_and_the_old_holder_stops_writing() {
        let (_dir, a, b) = two_brokers_on_one_prefix();
        let short = Duration::from_millis(1500);
        let old = WriterLease::acquire(&a, holder("a"), short).await.unwrap();
        a.put("topics/t/0/manifest.json", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        // File mtimes may have a coarse granularity: wait well past it.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        let new = WriterLease::acquire(&b, holder("b"), short).await.unwrap();
        match old.renew().await.unwrap() {
            Renewal::Lost(by) => assert_eq!(by.id, "b"),
            other => panic!("the old holder renewed: {other:?}"),
        }
        let err = a
            .put("topics/t/0/manifest.json", Bytes::from_static(b"{}"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::WritesRefused { .. }), "{err}");
        assert!(a.delete("topics/t/0/manifest.json").await.is_err());
        assert!(a.put_multipart("topics/t/0/x.log").await.is_err());
        // Reads go on; the new holder writes; the old one's release leaves
        // the new lease alone.
        assert_eq!(a.get("topics/t/0/manifest.json").await.unwrap(), "{}");
        b.put("topics/t/0/manifest.json", Bytes::from_static(b"{\"b\":1}"))
            .await
            .unwrap();
        old.release().await.unwrap();
        assert_eq!(new.renew().await.unwrap(), Renewal::Renewed);
    }

    #[tokio::test]
    async fn an_overdue_lease_suspends_writes_until_renewed() {
        let remote = open_store("memory://").unwrap();
        let lease = WriterLease::acquire(&remote, holder("a"), Duration::from_millis(300))
            .await
            .unwrap();
        assert!(!lease.check_overdue());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(lease.check_overdue());
        let err = remote.put("k", Bytes::from_static(b"v")).await.unwrap_err();
        assert!(err.to_string().contains("could not be renewed"), "{err}");
        assert_eq!(lease.renew().await.unwrap(), Renewal::Renewed);
        assert!(!lease.check_overdue());
        remote.put("k", Bytes::from_static(b"v")).await.unwrap();
    }
}
