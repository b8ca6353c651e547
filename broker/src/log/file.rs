//! The I/O layer under the log: files and directories on the real disk
//! (glommio buffered files: page cache through io_uring, made durable by an
//! explicit `fdatasync`) or on a [`SimulatedDisk`] that loses unsynced bytes
//! on a simulated power cut.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use glommio::io::{BufferedFile, Directory, OpenOptions};

use super::error::LogError;
use super::simulated::{SimulatedDisk, SimulatedFile};

/// Where a log keeps its files. Cheap to clone.
#[derive(Clone)]
pub enum Disk {
    /// The real file system, through glommio buffered files.
    Real,
    /// An in-memory disk for power-loss tests.
    Simulated(SimulatedDisk),
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disk::Real => f.write_str("Disk::Real"),
            Disk::Simulated(_) => f.write_str("Disk::Simulated"),
        }
    }
}

impl Disk {
    /// Opens `path` for reading and writing, creating it when missing. A new
    /// file's directory entry is durable only after [`sync_dir`](Self::sync_dir).
    pub async fn open_file(&self, path: &Path) -> Result<DiskFile, LogError> {
        match self {
            Disk::Real => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .buffered_open(path)
                    .await
                    .map_err(|e| LogError::io("open", path, e.into()))?;
                Ok(DiskFile::Real(Rc::new(RealFile {
                    file,
                    path: path.to_path_buf(),
                })))
            }
            Disk::Simulated(disk) => disk
                .open_file(path)
                .map(DiskFile::Simulated)
                .map_err(|e| LogError::io("open", path, e)),
        }
    }

    /// Creates `dir` and its missing parents. Returns whether `dir` was
    /// created (then its parent must be synced for the entry to be durable).
    pub fn create_dir_all(&self, dir: &Path) -> Result<bool, LogError> {
        match self {
            Disk::Real => {
                if dir.is_dir() {
                    return Ok(false);
                }
                std::fs::create_dir_all(dir).map_err(|e| LogError::io("create dir", dir, e))?;
                Ok(true)
            }
            Disk::Simulated(disk) => disk
                .create_dir_all(dir)
                .map_err(|e| LogError::io("create dir", dir, e)),
        }
    }

    /// Names of the files directly in `dir`.
    pub fn list_files(&self, dir: &Path) -> Result<Vec<String>, LogError> {
        match self {
            Disk::Real => {
                let fail = |e| LogError::io("list dir", dir, e);
                let mut names = Vec::new();
                for entry in std::fs::read_dir(dir).map_err(fail)? {
                    let entry = entry.map_err(fail)?;
                    if entry.file_type().map_err(fail)?.is_file()
                        && let Some(name) = entry.file_name().to_str()
                    {
                        names.push(name.to_string());
                    }
                }
                names.sort();
                Ok(names)
            }
            Disk::Simulated(disk) => disk
                .list_files(dir)
                .map_err(|e| LogError::io("list dir", dir, e)),
        }
    }

    /// Removes a file; a file already gone is not an error. The removal is
    /// durable after [`sync_dir`](Self::sync_dir).
    pub async fn remove_file(&self, path: &Path) -> Result<(), LogError> {
        let result = match self {
            Disk::Real => glommio::io::remove(path).await.map_err(io::Error::from),
            Disk::Simulated(disk) => disk.remove_file(path),
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LogError::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// Renames a file over any existing `to`; durable after syncing the
    /// directory.
    pub async fn rename(&self, from: &Path, to: &Path) -> Result<(), LogError> {
        match self {
            Disk::Real => glommio::io::rename(from, to)
                .await
                .map_err(|e| LogError::io("rename", from, e.into())),
            Disk::Simulated(disk) => disk
                .rename(from, to)
                .map_err(|e| LogError::io("rename", from, e)),
        }
    }

    /// fsyncs a directory, making the creations, removals and renames of its
    /// entries durable.
    pub async fn sync_dir(&self, dir: &Path) -> Result<(), LogError> {
        match self {
            Disk::Real => {
                let fail = |e: glommio::GlommioError<()>| LogError::io("fsync dir", dir, e.into());
                let handle = Directory::open(dir).await.map_err(fail)?;
                handle.sync().await.map_err(fail)?;
                handle.close().await.map_err(fail)
            }
            Disk::Simulated(disk) => disk
                .sync_dir(dir)
                .await
                .map_err(|e| LogError::io("fsync dir", dir, e)),
        }
    }

    /// Removes `dir` and everything in it; durable after syncing its parent.
    pub fn remove_dir_all(&self, dir: &Path) -> Result<(), LogError> {
        let result = match self {
            Disk::Real => std::fs::remove_dir_all(dir),
            Disk::Simulated(disk) => disk.remove_dir_all(dir),
        };
        match result {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(LogError::io("remove dir", dir, e))
            }
            _ => Ok(()),
        }
    }

    /// Last modification time of a file, in ms since the epoch.
    pub fn modified_ms(&self, path: &Path) -> Result<i64, LogError> {
        match self {
            Disk::Real => {
                let fail = |e| LogError::io("stat", path, e);
                let modified = std::fs::metadata(path)
                    .map_err(fail)?
                    .modified()
                    .map_err(fail)?;
                let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
                Ok(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
            }
            Disk::Simulated(disk) => disk
                .modified_ms(path)
                .map_err(|e| LogError::io("stat", path, e)),
        }
    }
}

/// An open file of the log. Cheap to clone; clones share the handle.
#[derive(Clone)]
pub enum DiskFile {
    Real(Rc<RealFile>),
    Simulated(SimulatedFile),
}

/// A glommio buffered file and its path (for error context).
pub struct RealFile {
    file: BufferedFile,
    path: PathBuf,
}

impl DiskFile {
    pub fn path(&self) -> &Path {
        match self {
            DiskFile::Real(real) => &real.path,
            DiskFile::Simulated(sim) => sim.path(),
        }
    }

    /// Writes all of `buf` at `pos` (into the page cache: not durable until
    /// [`fdatasync`](Self::fdatasync)).
    pub async fn write_all_at(&self, buf: Vec<u8>, pos: u64) -> Result<(), LogError> {
        match self {
            DiskFile::Real(real) => {
                let len = buf.len();
                let written = real
                    .file
                    .write_at(buf, pos)
                    .await
                    .map_err(|e| LogError::io("write", &real.path, e.into()))?;
                // A buffered write to a regular file is short only when the
                // disk is full or the file too large. `write_at` consumed the
                // buffer, so the rest cannot be retried: report it, the log
                // poisons itself rather than leave a hole.
                if written != len {
                    let e = io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("short write of {written} of {len} bytes"),
                    );
                    return Err(LogError::io("write", &real.path, e));
                }
                Ok(())
            }
            DiskFile::Simulated(sim) => sim
                .write_at(buf, pos)
                .await
                .map_err(|e| LogError::io("write", sim.path(), e)),
        }
    }

    /// Reads up to `len` bytes at `pos`; fewer only at the end of the file.
    pub async fn read_at(&self, pos: u64, len: usize) -> Result<Vec<u8>, LogError> {
        match self {
            DiskFile::Real(real) => {
                let mut out = Vec::with_capacity(len);
                while out.len() < len {
                    let at = pos + out.len() as u64;
                    let chunk = real
                        .file
                        .read_at(at, len - out.len())
                        .await
                        .map_err(|e| LogError::io("read", &real.path, e.into()))?;
                    if chunk.is_empty() {
                        break;
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok(out)
            }
            DiskFile::Simulated(sim) => sim
                .read_at(pos, len)
                .await
                .map_err(|e| LogError::io("read", sim.path(), e)),
        }
    }

    /// `fdatasync(2)`: once it returns, everything written before the call is
    /// durable.
    pub async fn fdatasync(&self) -> Result<(), LogError> {
        match self {
            DiskFile::Real(real) => real
                .file
                .fdatasync()
                .await
                .map_err(|e| LogError::io("fdatasync", &real.path, e.into())),
            DiskFile::Simulated(sim) => sim
                .fdatasync()
                .await
                .map_err(|e| LogError::io("fdatasync", sim.path(), e)),
        }
    }

    /// Cuts the file to `len` bytes (durable after `fdatasync`).
    pub async fn truncate(&self, len: u64) -> Result<(), LogError> {
        match self {
            DiskFile::Real(real) => real
                .file
                .truncate(len)
                .await
                .map_err(|e| LogError::io("truncate", &real.path, e.into())),
            DiskFile::Simulated(sim) => sim
                .truncate(len)
                .map_err(|e| LogError::io("truncate", sim.path(), e)),
        }
    }

    /// Current size in bytes.
    pub async fn size(&self) -> Result<u64, LogError> {
        match self {
            DiskFile::Real(real) => real
                .file
                .file_size()
                .await
                .map_err(|e| LogError::io("stat", &real.path, e.into())),
            DiskFile::Simulated(sim) => sim.size().map_err(|e| LogError::io("stat", sim.path(), e)),
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file is written and
/// fdatasynced, renamed over `path`, and the directory is fsynced.
pub async fn write_atomically(disk: &Disk, path: &Path, bytes: Vec<u8>) -> Result<(), LogError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let file = disk.open_file(&tmp).await?;
    file.truncate(0).await?;
    file.write_all_at(bytes, 0).await?;
    file.fdatasync().await?;
    drop(file);
    disk.rename(&tmp, path).await?;
    if let Some(dir) = path.parent() {
        disk.sync_dir(dir).await?;
    }
    Ok(())
}

/// Reads a whole small file, `None` when it does not exist.
pub async fn read_small_file(
    disk: &Disk,
    dir: &Path,
    name: &str,
    max_len: u64,
) -> Result<Option<Vec<u8>>, LogError> {
    if !disk.list_files(dir)?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let path = dir.join(name);
    let file = disk.open_file(&path).await?;
    let size = file.size().await?.min(max_len);
    let len = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(Some(file.read_at(0, len).await?))
}
