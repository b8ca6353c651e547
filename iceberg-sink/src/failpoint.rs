//! Crash injection for the exactly-once tests (TESTING.md target I1).
//!
//! `FLOE_FAILPOINT=<name>` in the broker's environment makes the process
//! abort (as a power cut or kill -9 would stop it) the first time it reaches
//! the named step of a commit. Unset, a failpoint is one relaxed load of a
//! cached flag.
//!
//! Steps: `iceberg-after-data-files` (Parquet files written, nothing
//! committed), `iceberg-after-metadata` (`v<N+1>.metadata.json` written,
//! `version-hint.text` not yet), `iceberg-between-dlq-and-main` (the DLQ
//! table committed, the main table not), `iceberg-after-commit` (both
//! committed, retention fences not yet moved).

use std::sync::OnceLock;

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Aborts the process when `FLOE_FAILPOINT` names `step`.
pub fn hit(step: &str) {
    let armed = ARMED.get_or_init(|| std::env::var("FLOE_FAILPOINT").ok());
    if armed.as_deref() == Some(step) {
        eprintln!("FLOE_FAILPOINT={step}: aborting here");
        std::process::abort();
    }
}
