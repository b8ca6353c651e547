//! Producer id allocation for InitProducerId.
//!
//! Ids are handed out from blocks; the end of the current block is persisted
//! (written, fdatasync'ed, renamed, directory fsync'ed) before any id of the
//! block is given out, so an id is never handed out twice across restarts.

use std::path::PathBuf;
use std::sync::Mutex;

const BLOCK: i64 = 1000;

/// Why producer ids could not be allocated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerIdError {
    #[error("cannot persist the producer id block to {path}")]
    Persist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("producer id file {path} is corrupt")]
    Corrupt { path: PathBuf },
}

#[derive(Debug)]
struct State {
    next: i64,
    block_end: i64,
}

/// The broker's producer id allocator.
#[derive(Debug)]
pub struct ProducerIds {
    path: PathBuf,
    state: Mutex<State>,
}

impl ProducerIds {
    /// Opens `<meta_dir>/producer_ids`; ids resume after the last persisted block.
    pub fn open(meta_dir: &std::path::Path) -> Result<ProducerIds, ProducerIdError> {
        let path = meta_dir.join("producer_ids");
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| ProducerIdError::Corrupt { path: path.clone() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(ProducerIdError::Persist { path, source }),
        };
        Ok(ProducerIds {
            path,
            state: Mutex::new(State {
                next,
                block_end: next,
            }),
        })
    }

    /// The next unused producer id.
    pub fn allocate(&self) -> Result<i64, ProducerIdError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.next >= state.block_end {
            let end = state.next + BLOCK;
            self.persist(end)?;
            state.block_end = end;
        }
        let id = state.next;
        state.next += 1;
        Ok(id)
    }

    fn persist(&self, block_end: i64) -> Result<(), ProducerIdError> {
        let err = |source| ProducerIdError::Persist {
            path: self.path.clone(),
            source,
        };
        crate::topics::replace_durably(&self.path, block_end.to_string().as_bytes()).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let a = ids.allocate().unwrap();
        let b = ids.allocate().unwrap();
        assert_ne!(a, b);
        drop(ids);
        let again = ProducerIds::open(dir.path()).unwrap();
        let c = again.allocate().unwrap();
        assert!(c > b, "{c} must be beyond every id handed out before ({b})");
    }
}
