//! The log start offset checkpoint: `log-start-offset`, holding
//! `"floe-log-start-offset v1 <offset> <crc32c of the offset>\n"`, replaced
//! atomically (temp file, fdatasync, rename, directory fsync).

use std::path::Path;

use super::error::LogError;
use super::file::{self, Disk};

pub const CHECKPOINT_FILE: &str = "log-start-offset";
const PREFIX: &str = "floe-log-start-offset v1";

/// Durably records the log start offset.
pub async fn write(disk: &Disk, dir: &Path, log_start: i64) -> Result<(), LogError> {
    let crc = crc32c::crc32c(&log_start.to_be_bytes());
    let text = format!("{PREFIX} {log_start} {crc}\n");
    file::write_atomically(disk, &dir.join(CHECKPOINT_FILE), text.into_bytes()).await
}

/// The recorded log start offset, `None` when there is none. A checkpoint
/// that does not parse is ignored with a warning: the log then starts at its
/// first segment, which is never after the true start.
pub async fn read(disk: &Disk, dir: &Path) -> Result<Option<i64>, LogError> {
    let Some(bytes) = file::read_small_file(disk, dir, CHECKPOINT_FILE, 256).await? else {
        return Ok(None);
    };
    let parsed = std::str::from_utf8(&bytes).ok().and_then(parse);
    if parsed.is_none() {
        tracing::warn!(
            dir = %dir.display(),
            "ignoring unreadable log start offset checkpoint"
        );
    }
    Ok(parsed)
}

fn parse(text: &str) -> Option<i64> {
    let rest = text.strip_prefix(PREFIX)?.strip_suffix('\n')?;
    let mut fields = rest.split_ascii_whitespace();
    let offset: i64 = fields.next()?.parse().ok()?;
    let crc: u32 = fields.next()?.parse().ok()?;
    if fields.next().is_some() || crc != crc32c::crc32c(&offset.to_be_bytes()) || offset < 0 {
        return None;
    }
    Some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_checkpoints_parse() {
        let crc = crc32c::crc32c(&77i64.to_be_bytes());
        assert_eq!(parse(&format!("{PREFIX} 77 {crc}\n")), Some(77));
        assert_eq!(parse(&format!("{PREFIX} 78 {crc}\n")), None);
        assert_eq!(parse(&format!("{PREFIX} 77 {crc}")), None);
        assert_eq!(parse("garbage"), None);
    }
}
