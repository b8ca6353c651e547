//! A simulated disk for power-loss tests (TESTING.md D2).
//!
//! Every file keeps its durable bytes (as of the last `fdatasync`) and the
//! writes and truncations issued since. Directory entries (creations,
//! removals, renames) become durable when their directory is synced.
//! [`SimulatedDisk::crash`] is a power cut: every file falls back to its
//! durable bytes, possibly plus a prefix of its unsynced writes with the last
//! kept write torn (cut at a random byte, its data replaced by zeros as when
//! the size reached the disk but the data did not, or its tail replaced by
//! garbage), and every
//! directory entry not yet synced is forgotten.
//!
//! Handles are bound to a power cycle: after a crash (or a
//! [`restart`](SimulatedDisk::restart), a process kill that keeps the page
//! cache), every `Disk` and file handed out before fails with an I/O error,
//! as the process that held them is gone. Take a fresh
//! [`SimulatedDisk::disk`] to "reboot".

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::future::yield_now;

use super::file::Disk;

/// The shared state of a simulated disk, and a handle bound to one power
/// cycle. Clones share the disk.
#[derive(Clone)]
pub struct SimulatedDisk {
    state: Rc<RefCell<SimState>>,
    generation: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Entry {
    File(u64),
    Dir,
}

struct SimState {
    generation: u64,
    fsync_enabled: bool,
    failing_syncs: u32,
    fdatasyncs: u64,
    sync_turns: u32,
    rng: u64,
    next_id: u64,
    entries: BTreeMap<PathBuf, Entry>,
    durable_entries: BTreeMap<PathBuf, Entry>,
    /// Top-level directories (their parent is outside the simulation): always
    /// durable, like a mount point.
    roots: BTreeSet<PathBuf>,
    files: HashMap<u64, FileData>,
}

#[derive(Default)]
struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Operations since the last completed sync, oldest first.
    unsynced: Vec<Op>,
    /// Operations ever issued, and how many of them a sync made durable.
    issued: u64,
    synced: u64,
    modified_ms: i64,
}

#[derive(Clone)]
enum Op {
    Write { pos: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

impl Op {
    fn apply(&self, bytes: &mut Vec<u8>) {
        match self {
            Op::Write { pos, data } => write_into(bytes, *pos, data),
            Op::Truncate { len } => bytes.resize(*len as usize, 0),
        }
    }
}

fn write_into(bytes: &mut Vec<u8>, pos: u64, data: &[u8]) {
    let pos = pos as usize;
    if bytes.len() < pos + data.len() {
        bytes.resize(pos + data.len(), 0);
    }
    bytes[pos..pos + data.len()].copy_from_slice(data);
}

fn wall_clock_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn powered_off() -> io::Error {
    io::Error::other("simulated power loss: handle from before the crash")
}

impl SimulatedDisk {
    /// An empty disk whose crashes draw from `seed`.
    pub fn new(seed: u64) -> SimulatedDisk {
        SimulatedDisk {
            state: Rc::new(RefCell::new(SimState {
                generation: 0,
                fsync_enabled: true,
                failing_syncs: 0,
                fdatasyncs: 0,
                sync_turns: 4,
                rng: seed | 1,
                next_id: 0,
                entries: BTreeMap::new(),
                durable_entries: BTreeMap::new(),
                roots: BTreeSet::new(),
                files: HashMap::new(),
            })),
            generation: 0,
        }
    }

    /// A disk on which `fdatasync` and directory syncs do nothing: the
    /// control run, whose crashes must lose data.
    pub fn without_fsync(seed: u64) -> SimulatedDisk {
        let disk = SimulatedDisk::new(seed);
        disk.state.borrow_mut().fsync_enabled = false;
        disk
    }

    /// A [`Disk`] for the current power cycle.
    pub fn disk(&self) -> Disk {
        Disk::Simulated(SimulatedDisk {
            state: Rc::clone(&self.state),
            generation: self.state.borrow().generation,
        })
    }

    /// How many scheduler turns an `fdatasync` takes (4 by default; a write
    /// takes one). Slower syncs let more appends share one (group commit).
    pub fn set_sync_turns(&self, turns: u32) {
        self.state.borrow_mut().sync_turns = turns.max(1);
    }

    /// Makes the next `count` file or directory syncs fail with EIO.
    pub fn fail_next_syncs(&self, count: u32) {
        self.state.borrow_mut().failing_syncs = count;
    }

    /// How many file `fdatasync` calls completed (group commit tests).
    pub fn fdatasync_count(&self) -> u64 {
        self.state.borrow().fdatasyncs
    }

    /// Kills the process but not the machine: every handle dies, the page
    /// cache survives (unsynced bytes and directory entries stay, still
    /// unsynced, for a later [`crash`](Self::crash) to lose).
    pub fn restart(&self) {
        self.state.borrow_mut().generation += 1;
    }

    /// Cuts the power: see the module docs.
    pub fn crash(&self) {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        state.generation += 1;
        let mut kept: BTreeMap<PathBuf, Entry> = BTreeMap::new();
        for (path, entry) in &state.durable_entries {
            let parent_kept = path
                .parent()
                .is_some_and(|p| kept.get(p) == Some(&Entry::Dir));
            if state.roots.contains(path) || parent_kept {
                kept.insert(path.clone(), *entry);
            }
        }
        let live: BTreeSet<u64> = kept
            .values()
            .filter_map(|e| match e {
                Entry::File(id) => Some(*id),
                Entry::Dir => None,
            })
            .collect();
        state.files.retain(|id, _| live.contains(id));
        let mut ids: Vec<u64> = state.files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let roll = next_random(&mut state.rng);
            let file = state.files.get_mut(&id).expect("listed above");
            let mut bytes = file.durable.clone();
            if !file.unsynced.is_empty() {
                // Some writeback may have happened: keep a prefix of the
                // unsynced operations, the last of them possibly torn.
                let keep = (roll % (file.unsynced.len() as u64 + 1)) as usize;
                for (i, op) in file.unsynced.iter().take(keep).enumerate() {
                    match op {
                        Op::Write { pos, data } if i + 1 == keep => {
                            let tear = next_random(&mut state.rng);
                            let cut = (tear % (data.len() as u64 + 1)) as usize;
                            let torn = match (tear >> 40) % 3 {
                                // Written up to a byte.
                                0 => data[..cut].to_vec(),
                                // The size reached the disk, the data did not.
                                1 => vec![0; cut],
                                // Stale garbage after the written part.
                                _ => {
                                    let mut torn = data.clone();
                                    for byte in &mut torn[cut..] {
                                        *byte = next_random(&mut state.rng) as u8;
                                    }
                                    torn
                                }
                            };
                            write_into(&mut bytes, *pos, &torn);
                        }
                        op => op.apply(&mut bytes),
                    }
                }
            }
            file.current = bytes.clone();
            file.durable = bytes;
            file.unsynced.clear();
            file.synced = file.issued;
        }
        state.entries = kept.clone();
        state.durable_entries = kept;
    }

    /// The current (not necessarily durable) bytes of a file, for tests.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.borrow();
        match state.entries.get(path)? {
            Entry::File(id) => Some(state.files[id].current.clone()),
            Entry::Dir => None,
        }
    }

    fn check(&self) -> io::Result<()> {
        if self.state.borrow().generation == self.generation {
            Ok(())
        } else {
            Err(powered_off())
        }
    }

    pub(crate) fn open_file(&self, path: &Path) -> io::Result<SimulatedFile> {
        self.check()?;
        let mut state = self.state.borrow_mut();
        let parent = path.parent().unwrap_or(Path::new(""));
        if state.entries.get(parent) != Some(&Entry::Dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        let id = match state.entries.get(path) {
            Some(Entry::File(id)) => *id,
            Some(Entry::Dir) => return Err(io::Error::other("is a directory")),
            None => {
                let id = state.next_id;
                state.next_id += 1;
                state.files.insert(
                    id,
                    FileData {
                        modified_ms: wall_clock_ms(),
                        ..FileData::default()
                    },
                );
                state.entries.insert(path.to_path_buf(), Entry::File(id));
                id
            }
        };
        Ok(SimulatedFile {
            disk: self.clone(),
            id,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn create_dir_all(&self, dir: &Path) -> io::Result<bool> {
        self.check()?;
        let mut state = self.state.borrow_mut();
        let mut created = false;
        for ancestor in dir.ancestors().collect::<Vec<_>>().into_iter().rev() {
            if ancestor.as_os_str().is_empty() || ancestor.parent().is_none() {
                continue;
            }
            match state.entries.get(ancestor) {
                Some(Entry::Dir) => {}
                Some(Entry::File(_)) => return Err(io::Error::other("not a directory")),
                None => {
                    let parent = ancestor.parent().unwrap_or(Path::new(""));
                    if !state.entries.contains_key(parent) {
                        state.roots.insert(ancestor.to_path_buf());
                        state
                            .durable_entries
                            .insert(ancestor.to_path_buf(), Entry::Dir);
                    }
                    state.entries.insert(ancestor.to_path_buf(), Entry::Dir);
                    created = ancestor == dir;
                }
            }
        }
        Ok(created)
    }

    pub(crate) fn list_files(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.check()?;
        let state = self.state.borrow();
        if state.entries.get(dir) != Some(&Entry::Dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(state
            .entries
            .iter()
            .filter(|(path, entry)| path.parent() == Some(dir) && matches!(entry, Entry::File(_)))
            .filter_map(|(path, _)| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    pub(crate) fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check()?;
        let mut state = self.state.borrow_mut();
        match state.entries.get(path) {
            Some(Entry::File(_)) => {
                state.entries.remove(path);
                Ok(())
            }
            Some(Entry::Dir) => Err(io::Error::other("is a directory")),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check()?;
        let mut state = self.state.borrow_mut();
        match state.entries.get(from).copied() {
            Some(entry @ Entry::File(_)) => {
                state.entries.remove(from);
                state.entries.insert(to.to_path_buf(), entry);
                Ok(())
            }
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }

    pub(crate) fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.check()?;
        let mut state = self.state.borrow_mut();
        if !state.entries.contains_key(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        state.entries.retain(|path, _| !path.starts_with(dir));
        Ok(())
    }

    pub(crate) async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check()?;
        yield_now().await;
        self.check()?;
        let mut state = self.state.borrow_mut();
        if state.failing_syncs > 0 {
            state.failing_syncs -= 1;
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        if !state.fsync_enabled {
            return Ok(());
        }
        let state = &mut *state;
        state
            .durable_entries
            .retain(|path, _| path.parent() != Some(dir));
        for (path, entry) in &state.entries {
            if path.parent() == Some(dir) {
                state.durable_entries.insert(path.clone(), *entry);
            }
        }
        Ok(())
    }

    pub(crate) fn modified_ms(&self, path: &Path) -> io::Result<i64> {
        self.check()?;
        let state = self.state.borrow();
        match state.entries.get(path) {
            Some(Entry::File(id)) => Ok(state.files[id].modified_ms),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
        }
    }
}

fn next_random(rng: &mut u64) -> u64 {
    // xorshift64*
    *rng ^= *rng >> 12;
    *rng ^= *rng << 25;
    *rng ^= *rng >> 27;
    rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// An open file on a [`SimulatedDisk`]. It stays usable after its name is
/// removed, like an open file descriptor.
#[derive(Clone)]
pub struct SimulatedFile {
    disk: SimulatedDisk,
    id: u64,
    path: PathBuf,
}

impl SimulatedFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn with_file<T>(&self, f: impl FnOnce(&mut FileData, bool) -> T) -> io::Result<T> {
        self.disk.check()?;
        let mut state = self.disk.state.borrow_mut();
        let fsync_enabled = state.fsync_enabled;
        let file = state.files.get_mut(&self.id).ok_or_else(powered_off)?;
        Ok(f(file, fsync_enabled))
    }

    pub(crate) async fn write_at(&self, data: Vec<u8>, pos: u64) -> io::Result<()> {
        yield_now().await;
        self.with_file(|file, _| {
            write_into(&mut file.current, pos, &data);
            file.unsynced.push(Op::Write { pos, data });
            file.issued += 1;
            file.modified_ms = wall_clock_ms();
        })
    }

    pub(crate) async fn read_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        self.with_file(|file, _| {
            let start = (pos as usize).min(file.current.len());
            let end = start.saturating_add(len).min(file.current.len());
            file.current[start..end].to_vec()
        })
    }

    pub(crate) fn truncate(&self, len: u64) -> io::Result<()> {
        self.with_file(|file, _| {
            let op = Op::Truncate { len };
            op.apply(&mut file.current);
            file.unsynced.push(op);
            file.issued += 1;
        })
    }

    pub(crate) fn size(&self) -> io::Result<u64> {
        self.with_file(|file, _| file.current.len() as u64)
    }

    /// Durable are the bytes written before the call; the sync completes
    /// after some scheduler turns, so a crash can interrupt it and writes can
    /// be issued meanwhile.
    pub(crate) async fn fdatasync(&self) -> io::Result<()> {
        let (snapshot, through) = self.with_file(|file, _| (file.current.clone(), file.issued))?;
        let turns = self.disk.state.borrow().sync_turns;
        for _ in 0..turns {
            yield_now().await;
        }
        self.disk.check()?;
        {
            let mut state = self.disk.state.borrow_mut();
            if state.failing_syncs > 0 {
                state.failing_syncs -= 1;
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            state.fdatasyncs += 1;
        }
        self.with_file(|file, fsync_enabled| {
            // A concurrent sync that started later may have finished first.
            if fsync_enabled && through > file.synced {
                let newly_synced = (through - file.synced) as usize;
                file.durable = snapshot;
                // Operations issued while this sync ran stay unsynced.
                file.unsynced.drain(..newly_synced);
                file.synced = through;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn synced_bytes_survive_and_unsynced_ones_may_not() {
        run(|| async {
            let disk = SimulatedDisk::new(7);
            let dir = Path::new("/sim/p");
            let Disk::Simulated(handle) = disk.disk() else {
                unreachable!()
            };
            handle.create_dir_all(dir).unwrap();
            handle.sync_dir(Path::new("/sim")).await.unwrap();
            let file = handle.open_file(&dir.join("a")).unwrap();
            handle.sync_dir(dir).await.unwrap();
            file.write_at(b"durable".to_vec(), 0).await.unwrap();
            file.fdatasync().await.unwrap();
            file.write_at(b"-lost-in-the-crash".to_vec(), 7)
                .await
                .unwrap();
            let orphan = handle.open_file(&dir.join("b")).unwrap();
            orphan.write_at(b"x".to_vec(), 0).await.unwrap();
            orphan.fdatasync().await.unwrap();
            disk.crash();
            assert!(file.read_at(0, 1).await.is_err(), "old handles are dead");
            let after = disk.contents(&dir.join("a")).unwrap();
            assert!(after.starts_with(b"durable"));
            assert!(after.len() <= 25);
            assert_eq!(
                disk.contents(&dir.join("b")),
                None,
                "entry never synced in its dir"
            );
        });
    }

    #[test]
    fn without_fsync_everything_unsynced_is_lost() {
        run(|| async {
            let disk = SimulatedDisk::without_fsync(3);
            let dir = Path::new("/sim/p");
            let Disk::Simulated(handle) = disk.disk() else {
                unreachable!()
            };
            handle.create_dir_all(dir).unwrap();
            handle.sync_dir(Path::new("/sim")).await.unwrap();
            let file = handle.open_file(&dir.join("a")).unwrap();
            handle.sync_dir(dir).await.unwrap();
            file.write_at(vec![1; 100], 0).await.unwrap();
            file.fdatasync().await.unwrap();
            disk.crash();
            assert_eq!(disk.contents(&dir.join("a")), None);
        });
    }

    #[test]
    fn writes_during_a_sync_stay_unsynced() {
        run(|| async {
            let disk = SimulatedDisk::new(11);
            let dir = Path::new("/sim");
            let Disk::Simulated(handle) = disk.disk() else {
                unreachable!()
            };
            handle.create_dir_all(dir).unwrap();
            let file = handle.open_file(&dir.join("a")).unwrap();
            handle.sync_dir(dir).await.unwrap();
            file.write_at(vec![1; 10], 0).await.unwrap();
            let sync = glommio::spawn_local({
                let file = file.clone();
                async move { file.fdatasync().await }
            });
            file.write_at(vec![2; 10], 10).await.unwrap();
            sync.await.unwrap();
            let state = disk.state.borrow();
            let data = &state.files[&0];
            assert!(data.durable.len() <= 20);
            assert!(data.durable.starts_with(&[1; 10]));
        });
    }
}
