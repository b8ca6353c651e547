//! Exponential backoff with full jitter for retriable errors.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// How often and how patiently a failed operation is tried again.
///
/// Attempt `n` (counting from 0) that fails with a retriable error sleeps a
/// uniformly random time in `0..=min(max_delay, base_delay * 2^n)` ("full
/// jitter") before the next attempt. After `max_attempts` attempts the last
/// error is returned: nothing gives up silently, and the caller (the broker)
/// decides when to try the whole operation again. Non-retriable errors are
/// returned at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// First backoff ceiling.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Attempts in total, including the first (at least 1).
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    /// 100 ms doubling up to 10 s, 8 attempts (about 40 s of backoff at most).
    fn default() -> Self {
        RetryConfig {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: 8,
        }
    }
}

impl RetryConfig {
    /// The sleep before retry number `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(next_random() % (nanos + 1))
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or
    /// `max_attempts` attempts have failed.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let attempts = self.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retriable() && attempt + 1 < attempts => {
                    let delay = self.backoff(attempt);
                    tracing::warn!(%error, what, attempt, ?delay, "retriable object-store error; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Retries `op` with `config`; a shorthand for [`RetryConfig::run`].
pub(crate) async fn retry<T, F, Fut>(config: &RetryConfig, what: &str, op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    config.run(what, op).await
}

/// A xorshift64* generator shared by the process, seeded from the clock.
/// Jitter needs spread, not cryptographic quality.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_ceiling() {
        let config = RetryConfig {
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
            max_attempts: 3,
        };
        for attempt in 0..40 {
            let ceiling =
                Duration::from_millis(10 * (1u64 << attempt.min(10))).min(config.max_delay);
            for _ in 0..50 {
                assert!(config.backoff(attempt) <= ceiling);
            }
        }
        // Full jitter actually spreads the delays.
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| config.backoff(5)).collect();
        assert!(distinct.len() > 10);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_not_on_permanent_errors() {
        let config = RetryConfig {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_attempts: 4,
        };
        let mut calls = 0;
        let result: Result<()> = config
            .run("t", || {
                calls += 1;
                async {
                    Err(Error::ShortRead {
                        key: "k".into(),
                        start: 0,
                        end: 1,
                        got: 0,
                    })
                }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 4);

        let mut calls = 0;
        let result: Result<()> = config
            .run("t", || {
                calls += 1;
                async {
                    Err(Error::NoRemoteData {
                        topic: "t".into(),
                        partition: 0,
                    })
                }
            })
            .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);

        let mut calls = 0;
        let result = config
            .run("t", || {
                calls += 1;
                let fail = calls < 3;
                async move {
                    if fail {
                        Err(Error::ShortRead {
                            key: "k".into(),
                            start: 0,
                            end: 1,
                            got: 0,
                        })
                    } else {
                        Ok(7)
                    }
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
    }
}
