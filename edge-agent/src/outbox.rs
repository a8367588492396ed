//! The durable outbox: one file per signed envelope under `outbox/`, kept until
//! ingest's receipt for it arrives, plus the in-memory index that says what to send
//! next. File operations here block; callers run them on `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kozomol_core::envelope::DecodedEnvelope;
use kozomol_core::messages::{Receipt, ReceiptStatus};
use kozomol_core::{DeadLetterReason, EventId};
use tracing::{debug, warn};

use crate::EdgeError;

/// File name suffix of an envelope in the outbox and in `rejected/`.
const ENVELOPE_SUFFIX: &str = ".env";
const TMP_SUFFIX: &str = ".tmp";
/// Fresh envelopes are kept in memory up to this many bytes so their first publish
/// does not read them back; beyond it they are read from disk when sent.
const FRESH_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// The longest wait for a receipt before the next re-send (unless `resend_after` is
/// longer): while ingest is away, each re-send of an entry waits twice as long as the
/// one before, so a camera does not pile a copy of its whole outbox into the broker's
/// queue every `resend_after` (a reconnect still re-sends everything at once).
const MAX_RESEND_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// How long an entry sent for the `sends`-th time waits for its receipt: `resend_after`,
/// doubling with each send, up to [`MAX_RESEND_INTERVAL`] (or `resend_after` itself
/// where that is longer).
pub(crate) fn resend_interval(resend_after: Duration, sends: u32) -> Duration {
    let doublings = sends.saturating_sub(1).min(31);
    resend_after
        .saturating_mul(1 << doublings)
        .min(resend_after.max(MAX_RESEND_INTERVAL))
}

#[derive(Debug)]
struct Entry {
    len: u64,
    /// When the receipt of its latest send is overdue; none while not sent (or reset).
    due_at: Option<Instant>,
    sends: u32,
    fresh: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Index {
    /// UUIDv7 ids sort by creation time, so the first entry is the oldest.
    entries: BTreeMap<EventId, Entry>,
    /// Bytes of all entries on the card.
    bytes: u64,
    /// Bytes reserved by writes in progress: counted once written (`insert`), never
    /// made room for before then.
    reserved: u64,
    fresh_bytes: u64,
    /// Entries to send now (never sent, or reset by a reconnect), oldest first.
    ready: VecDeque<EventId>,
    /// Sent entries by when their receipt is overdue.
    sent: BTreeSet<(Instant, EventId)>,
}

/// One envelope the publisher should send now.
#[derive(Debug)]
pub(crate) struct Due {
    pub id: EventId,
    /// The bytes if still cached; otherwise they are read from disk.
    pub bytes: Option<Vec<u8>>,
    /// Whether this is a re-send.
    pub resend: bool,
}

/// What a receipt settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    pub sends: u32,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    rejected_dir: PathBuf,
    /// What `rejected/` keeps at most, newest first: ingest dead-letters each
    /// rejection too, and a camera's card is small.
    rejected_limit_bytes: u64,
    index: Mutex<Index>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox under `data_dir` and indexes what it holds;
    /// leftovers of interrupted writes are removed; `rejected/` keeps at most
    /// `rejected_limit_bytes`. Blocking.
    pub fn open(data_dir: &Path, rejected_limit_bytes: u64) -> Result<Outbox, EdgeError> {
        let dir = data_dir.join("outbox");
        let rejected_dir = data_dir.join("rejected");
        for d in [&dir, &rejected_dir] {
            fs::create_dir_all(d).map_err(EdgeError::io(format!("creating {}", d.display())))?;
        }
        let mut index = Index::default();
        let listing =
            fs::read_dir(&dir).map_err(EdgeError::io(format!("reading {}", dir.display())))?;
        for item in listing {
            let item = item.map_err(EdgeError::io(format!("reading {}", dir.display())))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TMP_SUFFIX) {
                // A write that never reached its rename: its submit never returned.
                fs::remove_file(item.path())
                    .map_err(EdgeError::io(format!("removing {}", item.path().display())))?;
                continue;
            }
            let id = name
                .strip_suffix(ENVELOPE_SUFFIX)
                .and_then(|stem| stem.parse::<EventId>().ok());
            let Some(id) = id else {
                warn!(file = %item.path().display(), "ignoring a foreign file in the outbox");
                continue;
            };
            let len = item
                .metadata()
                .map_err(EdgeError::io(format!("reading {}", item.path().display())))?
                .len();
            index.bytes += len;
            index.entries.insert(
                id,
                Entry {
                    len,
                    due_at: None,
                    // Loaded entries may have been sent before the restart.
                    sends: 1,
                    fresh: None,
                },
            );
        }
        index.ready = index.entries.keys().copied().collect();
        Ok(Outbox {
            dir,
            rejected_dir,
            rejected_limit_bytes,
            index: Mutex::new(index),
        })
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // A panic elsewhere never leaves the index half-updated in a way that matters
        // more than losing the agent, so keep going with what is there.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn path_of(&self, id: EventId) -> PathBuf {
        self.dir.join(format!("{id}{ENVELOPE_SUFFIX}"))
    }

    pub fn contains(&self, id: EventId) -> bool {
        self.index().entries.contains_key(&id)
    }

    /// Number of entries and their bytes.
    pub fn depth(&self) -> (u64, u64) {
        let index = self.index();
        (index.entries.len() as u64, index.bytes)
    }

    /// Reserves `len` more bytes for an envelope about to be written. Nothing is evicted
    /// yet: an entry is given up only once the new one is on the card
    /// ([`Outbox::evict_over`]), or where the card is full ([`Outbox::write_reserved`]),
    /// never for a write that fails for another cause, nor for another writer's
    /// write still in progress. While writes are in progress the card holds up to
    /// their envelopes beyond the bound.
    pub fn reserve(&self, len: u64, limit: u64) -> Result<(), EdgeError> {
        if len > limit {
            return Err(EdgeError::TooLargeForOutbox { len, limit });
        }
        self.index().reserved += len;
        Ok(())
    }

    /// Evicts the oldest entries but `keep` while the entries on the card and `room`
    /// more bytes exceed `limit`. Returns the evicted ids; their files must be deleted.
    pub fn evict_over(&self, limit: u64, keep: EventId, room: u64) -> Vec<EventId> {
        let mut index = self.index();
        let mut evicted = Vec::new();
        while index.bytes + room > limit {
            let Some(id) = index.entries.keys().copied().find(|id| *id != keep) else {
                break;
            };
            let Some(entry) = index.entries.remove(&id) else {
                break;
            };
            index.bytes -= entry.len;
            if entry.fresh.is_some() {
                index.fresh_bytes -= entry.len;
            }
            evicted.push(id);
        }
        evicted
    }

    /// Writes the envelope `id`, whose bytes are reserved, durably. Where the card is
    /// full, the oldest entries are evicted until it and the entries fit `limit`
    /// (their files deleted here) and the write is tried once more: on a card sized
    /// for the outbox that eviction is what makes room. Returns the ids evicted, and
    /// how the write went. Blocking.
    pub fn write_reserved(
        &self,
        id: EventId,
        bytes: &[u8],
        limit: u64,
    ) -> (Vec<EventId>, io::Result<()>) {
        let len = bytes.len() as u64;
        self.write_making_room(id, len, limit, || self.write_durable(id, bytes))
    }

    fn write_making_room(
        &self,
        id: EventId,
        len: u64,
        limit: u64,
        mut write: impl FnMut() -> io::Result<()>,
    ) -> (Vec<EventId>, io::Result<()>) {
        match write() {
            Err(e) if out_of_space(&e) => {
                let evicted = self.evict_over(limit, id, len);
                if evicted.is_empty() {
                    return (evicted, Err(e));
                }
                // Every file is tried: one left would come back at the next start.
                let deleted = evicted
                    .iter()
                    .map(|gone| self.delete(*gone))
                    .fold(Ok(()), Result::and);
                let written = deleted.and_then(|()| write());
                (evicted, written)
            }
            written => (Vec::new(), written),
        }
    }

    /// Gives back a reservation whose write failed.
    pub fn unreserve(&self, len: u64) {
        let mut index = self.index();
        index.reserved = index.reserved.saturating_sub(len);
    }

    /// Indexes an envelope that is durably on disk (its bytes were reserved).
    pub fn insert(&self, id: EventId, bytes: Vec<u8>) {
        let mut index = self.index();
        let len = bytes.len() as u64;
        index.reserved = index.reserved.saturating_sub(len);
        index.bytes += len;
        let fresh = if index.fresh_bytes + len <= FRESH_CACHE_BYTES {
            index.fresh_bytes += len;
            Some(bytes)
        } else {
            None
        };
        let previous = index.entries.insert(
            id,
            Entry {
                len,
                due_at: None,
                sends: 0,
                fresh,
            },
        );
        if let Some(previous) = previous {
            // Written twice (a re-submitted spool capture): count it once.
            index.bytes -= previous.len;
            if previous.fresh.is_some() {
                index.fresh_bytes -= previous.len;
            }
        }
        index.ready.push_back(id);
    }

    /// Takes up to `max` envelopes to send now: first those never sent (or reset by a
    /// reconnect), then those whose receipt is overdue. Marks them sent at `now`.
    pub fn take_due(&self, now: Instant, resend_after: Duration, max: usize) -> Vec<Due> {
        let mut index = self.index();
        let index = &mut *index;
        let mut due = Vec::new();
        while due.len() < max {
            let id = if let Some(id) = index.ready.pop_front() {
                id
            } else {
                match index.sent.first() {
                    Some(&(at, id)) if at <= now => {
                        index.sent.remove(&(at, id));
                        // A later send of the same entry makes this record stale.
                        let current = index.entries.get(&id).and_then(|e| e.due_at);
                        if current != Some(at) {
                            continue;
                        }
                        id
                    }
                    _ => break,
                }
            };
            let Some(entry) = index.entries.get_mut(&id) else {
                continue; // settled meanwhile
            };
            if entry.due_at.is_some_and(|at| at > now) {
                continue; // queued twice; the recent send stands
            }
            let bytes = entry.fresh.take();
            if bytes.is_some() {
                index.fresh_bytes -= entry.len;
            }
            let resend = entry.sends > 0;
            entry.sends = entry.sends.saturating_add(1);
            let at = now
                .checked_add(resend_interval(resend_after, entry.sends))
                .unwrap_or(now);
            entry.due_at = Some(at);
            index.sent.insert((at, id));
            due.push(Due { id, bytes, resend });
        }
        due
    }

    /// Puts entries taken to be sent but not published back at the front of the queue,
    /// as if never taken (the connection changed between taking and sending them).
    pub fn put_back(&self, ids: &[EventId]) {
        let mut index = self.index();
        let index = &mut *index;
        for id in ids.iter().rev() {
            let Some(entry) = index.entries.get_mut(id) else {
                continue; // settled meanwhile
            };
            if let Some(at) = entry.due_at.take() {
                index.sent.remove(&(at, *id));
            }
            entry.sends = entry.sends.saturating_sub(1);
            if !index.ready.contains(id) {
                index.ready.push_front(*id);
            }
        }
    }

    /// When the first outstanding send becomes overdue, if any is outstanding.
    pub fn next_resend_at(&self) -> Option<Instant> {
        let index = self.index();
        if !index.ready.is_empty() {
            return Some(Instant::now());
        }
        index.sent.first().map(|(at, _)| *at)
    }

    /// Marks every entry to be sent again at once (after a reconnect: what was in
    /// flight may be lost).
    pub fn reset_for_resend(&self) {
        let mut index = self.index();
        let index = &mut *index;
        index.sent.clear();
        for entry in index.entries.values_mut() {
            entry.due_at = None;
        }
        index.ready = index.entries.keys().copied().collect();
    }

    /// Removes an entry from the index once its receipt arrived; its file must then be
    /// deleted or moved aside.
    pub fn settle(&self, id: EventId) -> Option<Settled> {
        let mut index = self.index();
        let entry = index.entries.remove(&id)?;
        index.bytes -= entry.len;
        if entry.fresh.is_some() {
            index.fresh_bytes -= entry.len;
        }
        Some(Settled { sends: entry.sends })
    }

    /// Forgets an entry whose file vanished. Blocking-free.
    pub fn forget(&self, id: EventId) {
        self.settle(id);
    }

    /// Writes an envelope durably: temp file, fsync, rename, directory fsync. Blocking.
    pub fn write_durable(&self, id: EventId, bytes: &[u8]) -> io::Result<()> {
        let path = self.path_of(id);
        let tmp = self.dir.join(format!("{id}{ENVELOPE_SUFFIX}{TMP_SUFFIX}"));
        let written = File::create(&tmp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, &path)) {
            // A part written to a full card would keep its room taken.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.dir)
    }

    /// Reads an entry's bytes to send again; `None` if its file is gone, or no longer
    /// decodes as the envelope it is named for (damaged on its card). Ingest cannot
    /// name such a message in a receipt, so it would be sent, and dead-lettered, for
    /// ever: it is moved to `rejected/` with a receipt written here, and forgotten.
    /// Blocking.
    pub fn read(&self, id: EventId) -> io::Result<Option<Vec<u8>>> {
        let bytes = match fs::read(self.path_of(id)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let damage = match DecodedEnvelope::decode(&bytes) {
            Ok(envelope) if envelope.event.event_id == id => None,
            Ok(envelope) => Some(format!("the file holds event {}", envelope.event.event_id)),
            Err(e) => Some(e.to_string()),
        };
        let Some(detail) = damage else {
            return Ok(Some(bytes));
        };
        warn!(event_id = %id, %detail, "outbox entry is damaged; moved to rejected/");
        let receipt = Receipt {
            event_id: Some(id.to_string()),
            status: ReceiptStatus::Rejected,
            reason: Some(DeadLetterReason::Malformed),
            detail: Some(format!("damaged in the outbox: {detail}")),
            case_id: None,
        };
        let json = serde_json::to_vec(&receipt).map_err(io::Error::other)?;
        self.reject(id, &json)?;
        self.forget(id);
        Ok(None)
    }

    /// Deletes settled or evicted entries' files. Blocking. A deletion lost in a crash
    /// only causes a harmless re-send, so the directory is not fsync'd.
    pub fn delete(&self, id: EventId) -> io::Result<()> {
        match fs::remove_file(self.path_of(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Moves a rejected entry to `rejected/` with its receipt beside it. Blocking.
    pub fn reject(&self, id: EventId, receipt_json: &[u8]) -> io::Result<()> {
        let target = self.rejected_dir.join(format!("{id}{ENVELOPE_SUFFIX}"));
        match fs::rename(self.path_of(id), &target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                debug!(event_id = %id, "rejected entry had no file left");
            }
            other => {
                other?;
                set_aside_now(&target)?;
            }
        }
        fs::write(
            self.rejected_dir.join(format!("{id}.receipt.json")),
            receipt_json,
        )?;
        sync_dir(&self.rejected_dir)?;
        keep_newest(&self.rejected_dir, self.rejected_limit_bytes)
    }
}

/// Whether a write failed because the card (or the agent's quota on it) is full.
fn out_of_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// Moves the envelopes ingest rejected back into the outbox under `data_dir` — those
/// whose receipt gave `reason`, or all — so that they are sent again: refusals that
/// were the server's to mend (a register updated after the camera, an event the store
/// refused) and that `rejected/` may hold the only whole copy of. Their receipts go.
/// For a stopped agent (a running one indexes its outbox at start). Blocking; returns
/// how many were moved.
pub fn requeue_rejected(data_dir: &Path, reason: Option<&str>) -> Result<usize, EdgeError> {
    let (outbox, rejected) = (data_dir.join("outbox"), data_dir.join("rejected"));
    let io = |what: &str, path: &Path| EdgeError::io(format!("{what} {}", path.display()));
    fs::create_dir_all(&outbox).map_err(io("creating", &outbox))?;
    let mut moved = 0;
    for item in fs::read_dir(&rejected).map_err(io("reading", &rejected))? {
        let item = item.map_err(io("reading", &rejected))?;
        let name = item.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(ENVELOPE_SUFFIX))
            .and_then(|stem| stem.parse::<EventId>().ok())
        else {
            continue;
        };
        let receipt = rejected.join(format!("{id}.receipt.json"));
        if let Some(wanted) = reason {
            let given = fs::read(&receipt)
                .ok()
                .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
                .and_then(|v| v.get("reason")?.as_str().map(str::to_owned));
            if given.as_deref() != Some(wanted) {
                continue;
            }
        }
        let target = outbox.join(format!("{id}{ENVELOPE_SUFFIX}"));
        if target.exists() {
            continue;
        }
        fs::rename(item.path(), &target).map_err(io("moving", &item.path()))?;
        match fs::remove_file(&receipt) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io("removing", &receipt)(e));
            }
            _ => {}
        }
        moved += 1;
    }
    sync_dir(&outbox).map_err(io("syncing", &outbox))?;
    sync_dir(&rejected).map_err(io("syncing", &rejected))?;
    Ok(moved)
}

/// Dates a file moved aside as moved now (a rename keeps its old time), so that the
/// files of one entry are the same age and [`keep_newest`] deletes them together.
pub(crate) fn set_aside_now(path: &Path) -> io::Result<()> {
    File::options()
        .write(true)
        .open(path)?
        .set_modified(std::time::SystemTime::now())
}

/// Deletes the oldest files of `dir` (by modification time) until what it holds is at
/// most `limit_bytes`: what a camera sets aside for people to look at must not fill
/// its card. Blocking.
pub(crate) fn keep_newest(dir: &Path, limit_bytes: u64) -> io::Result<()> {
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for item in fs::read_dir(dir)? {
        // A file gone meanwhile (an operator moving it back) is no longer counted.
        let meta = match item.and_then(|item| Ok((item.path(), item.metadata()?))) {
            Ok((path, meta)) if meta.is_file() => (path, meta),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let (path, meta) = meta;
        total = total.saturating_add(meta.len());
        files.push((meta.modified()?, path, meta.len()));
    }
    if total <= limit_bytes {
        return Ok(());
    }
    files.sort();
    let mut removed = 0usize;
    for (_, path, len) in files {
        if total <= limit_bytes {
            break;
        }
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => total = total.saturating_sub(len),
        }
        removed += 1;
    }
    warn!(dir = %dir.display(), removed, limit_bytes, "oldest set-aside files deleted to stay within the limit");
    Ok(())
}

/// fsyncs a directory so a rename or a new file in it survives power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> EventId {
        EventId::new_v7()
    }

    #[test]
    fn rejected_envelopes_go_back_to_the_outbox_by_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let (mended, malformed) = (id(), id());
        for (id, reason) in [(mended, "register_mismatch"), (malformed, "malformed")] {
            fs::write(outbox.path_of(id), b"envelope").expect("write");
            let receipt = format!(r#"{{"status":"rejected","reason":"{reason}"}}"#);
            outbox.reject(id, receipt.as_bytes()).expect("reject");
        }
        drop(outbox);
        assert_eq!(
            requeue_rejected(dir.path(), Some("register_mismatch")).expect("requeue"),
            1
        );
        let reopened = Outbox::open(dir.path(), u64::MAX).expect("open");
        assert!(reopened.contains(mended) && !reopened.contains(malformed));
        assert!(!dir
            .path()
            .join(format!("rejected/{mended}.receipt.json"))
            .exists());
        drop(reopened);
        assert_eq!(requeue_rejected(dir.path(), None).expect("requeue"), 1);
        assert!(Outbox::open(dir.path(), u64::MAX)
            .expect("open")
            .contains(malformed));
    }

    #[test]
    fn entries_taken_but_not_sent_go_back_at_the_front() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let (a, b, c) = (id(), id(), id());
        for id in [a, b, c] {
            outbox.reserve(1, u64::MAX).expect("reserve");
            outbox.insert(id, vec![1]);
        }
        let now = Instant::now();
        let taken: Vec<EventId> = outbox
            .take_due(now, Duration::from_secs(30), 2)
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(taken, vec![a, b]);
        outbox.put_back(&taken);
        let again = outbox.take_due(now, Duration::from_secs(30), 3);
        assert_eq!(
            again.iter().map(|d| d.id).collect::<Vec<_>>(),
            vec![a, b, c]
        );
        assert!(again.iter().all(|d| !d.resend), "never sent: not a resend");
    }

    #[test]
    fn due_order_resend_and_settle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let (a, b) = (id(), id());
        for x in [a, b] {
            outbox.reserve(10, 100).expect("reserve");
            outbox.write_durable(x, &[7; 10]).expect("write");
            outbox.insert(x, vec![7; 10]);
        }
        let t0 = Instant::now();
        let wait = Duration::from_secs(30);
        let first = outbox.take_due(t0, wait, 10);
        assert_eq!(first.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a, b]);
        assert!(first.iter().all(|d| !d.resend && d.bytes.is_some()));
        assert!(outbox
            .take_due(t0 + Duration::from_secs(1), wait, 10)
            .is_empty());
        assert_eq!(outbox.settle(a), Some(Settled { sends: 1 }));
        let again = outbox.take_due(t0 + wait, wait, 10);
        assert_eq!(again.len(), 1);
        assert!(again[0].resend && again[0].bytes.is_none() && again[0].id == b);
        assert_eq!(outbox.depth(), (1, 10));
    }

    #[test]
    fn each_resend_waits_twice_as_long_up_to_a_cap() {
        let s = Duration::from_secs;
        for (resend_after, sends, wait) in [
            (s(30), 1, s(30)),
            (s(30), 2, s(60)),
            (s(30), 3, s(120)),
            (s(30), 5, s(480)),
            (s(30), 6, s(900)),
            (s(30), 40, s(900)),
            (s(30), u32::MAX, s(900)),
            // A longer setting is its own cap.
            (s(3600), 1, s(3600)),
            (s(3600), 4, s(3600)),
        ] {
            assert_eq!(
                resend_interval(resend_after, sends),
                wait,
                "{resend_after:?} {sends}"
            );
        }

        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let a = id();
        outbox.reserve(10, 100).expect("reserve");
        outbox.write_durable(a, &[7; 10]).expect("write");
        outbox.insert(a, vec![7; 10]);
        let t0 = Instant::now();
        let wait = s(30);
        let sent_at = |at: Duration| outbox.take_due(t0 + at, wait, 10).len();
        assert_eq!(sent_at(s(0)), 1);
        assert_eq!(outbox.next_resend_at(), Some(t0 + s(30)));
        assert_eq!(sent_at(s(30)), 1);
        // The second re-send waits a minute, not another 30 s.
        assert_eq!(sent_at(s(60)), 0);
        assert_eq!(outbox.next_resend_at(), Some(t0 + s(90)));
        assert_eq!(sent_at(s(90)), 1);
        assert_eq!(sent_at(s(200)), 0);
        assert_eq!(sent_at(s(210)), 1);
        // A reconnect sends it at once, and its backoff goes on from there.
        outbox.reset_for_resend();
        assert_eq!(sent_at(s(211)), 1);
        assert_eq!(outbox.next_resend_at(), Some(t0 + s(211 + 480)));
    }

    #[test]
    fn set_aside_files_beyond_the_limit_go_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let path = dir.path().join(name);
            fs::write(&path, [0u8; 10]).expect("write");
            File::options()
                .write(true)
                .open(&path)
                .expect("open")
                .set_modified(old + Duration::from_secs(i as u64))
                .expect("mtime");
        }
        keep_newest(dir.path(), 40).expect("within the limit");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 4);
        keep_newest(dir.path(), 25).expect("prune");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["c", "d"]);
    }

    #[test]
    fn a_damaged_entry_is_moved_aside_not_sent_for_ever() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = id();
        fs::create_dir_all(dir.path().join("outbox")).expect("outbox");
        fs::write(
            dir.path().join(format!("outbox/{a}.env")),
            [0x84, 0x01, 0xff],
        )
        .expect("junk");
        // Written a day ago: moved aside, it is dated now, as its receipt is.
        let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
        File::options()
            .write(true)
            .open(dir.path().join(format!("outbox/{a}.env")))
            .expect("open")
            .set_modified(day_ago)
            .expect("mtime");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        assert_eq!(outbox.depth(), (1, 3));
        assert_eq!(outbox.read(a).expect("read"), None);
        assert_eq!(outbox.depth(), (0, 0), "forgotten");
        assert!(!dir.path().join(format!("outbox/{a}.env")).exists());
        let moved = fs::metadata(dir.path().join(format!("rejected/{a}.env")))
            .expect("moved aside")
            .modified()
            .expect("mtime");
        assert!(moved > day_ago + Duration::from_secs(3_600), "{moved:?}");
        let receipt: Receipt = serde_json::from_slice(
            &fs::read(dir.path().join(format!("rejected/{a}.receipt.json"))).expect("receipt"),
        )
        .expect("a receipt");
        assert_eq!(
            (receipt.status, receipt.reason),
            (ReceiptStatus::Rejected, Some(DeadLetterReason::Malformed))
        );
        assert!(receipt
            .detail
            .is_some_and(|d| d.starts_with("damaged in the outbox")));
        assert!(outbox
            .take_due(Instant::now(), Duration::from_secs(1), 10)
            .is_empty());
    }

    #[test]
    fn the_oldest_are_evicted_once_the_new_one_is_written_and_reopen_indexes_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let ids: Vec<EventId> = (0..3).map(|_| id()).collect();
        for x in &ids {
            outbox.reserve(40, 100).expect("reserve");
            outbox.write_durable(*x, &[1; 40]).expect("write");
            outbox.insert(*x, vec![1; 40]);
            for e in outbox.evict_over(100, *x, 0) {
                outbox.delete(e).expect("delete");
            }
        }
        assert_eq!(outbox.depth(), (2, 80));
        assert!(matches!(
            outbox.reserve(101, 100),
            Err(EdgeError::TooLargeForOutbox { .. })
        ));
        fs::write(dir.path().join("outbox/leftover.env.tmp"), b"x").expect("tmp");
        let reopened = Outbox::open(dir.path(), u64::MAX).expect("reopen");
        assert_eq!(reopened.depth(), (2, 80));
        assert!(!reopened.contains(ids[0]) && reopened.contains(ids[2]));
        assert!(!dir.path().join("outbox/leftover.env.tmp").exists());
        let due = reopened.take_due(Instant::now(), Duration::from_secs(1), 10);
        assert!(due.iter().all(|d| d.resend));
    }

    #[test]
    fn no_entry_is_evicted_for_a_write_still_in_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
        let (old, written, failing) = (id(), id(), id());
        outbox.reserve(60, 100).expect("reserve");
        outbox.insert(old, vec![1; 60]);
        // Two writers at once: one fails later, the other is on the card first.
        outbox.reserve(60, 100).expect("reserve");
        outbox.reserve(30, 100).expect("reserve");
        outbox.insert(written, vec![2; 30]);
        assert!(outbox.evict_over(100, written, 0).is_empty());
        outbox.unreserve(60);
        assert_eq!(outbox.depth(), (2, 90));
        assert!(outbox.contains(old) && !outbox.contains(failing));
    }

    #[test]
    fn a_full_card_evicts_and_writes_again_and_other_failures_evict_nothing() {
        use io::ErrorKind::{PermissionDenied, StorageFull};
        // (the failures of the first and second attempts, entries evicted, written in
        // the end, attempts)
        type Row = (
            Option<io::ErrorKind>,
            Option<io::ErrorKind>,
            usize,
            bool,
            usize,
        );
        let table: [Row; 4] = [
            // Written at once: nothing evicted here (evict_over does it after).
            (None, None, 0, true, 1),
            // The card full: the oldest give way and the write is tried once more.
            (Some(StorageFull), None, 1, true, 2),
            (Some(StorageFull), Some(StorageFull), 1, false, 2),
            // Another failure: the entries stay.
            (Some(PermissionDenied), None, 0, false, 1),
        ];
        for (i, (first, second, want_evicted, want_written, want_attempts)) in
            table.into_iter().enumerate()
        {
            let dir = tempfile::tempdir().expect("tempdir");
            let outbox = Outbox::open(dir.path(), u64::MAX).expect("open");
            let (old, new) = (id(), id());
            outbox.reserve(60, 100).expect("reserve");
            outbox.write_durable(old, &[1; 60]).expect("write");
            outbox.insert(old, vec![1; 60]);
            outbox.reserve(60, 100).expect("reserve");
            let mut attempts = 0;
            let (evicted, written) = outbox.write_making_room(new, 60, 100, || {
                attempts += 1;
                match [first, second][attempts - 1] {
                    Some(kind) => Err(io::Error::from(kind)),
                    None => outbox.write_durable(new, &[2; 60]),
                }
            });
            assert_eq!(
                (evicted.len(), written.is_ok(), attempts),
                (want_evicted, want_written, want_attempts),
                "row {i}"
            );
            assert_eq!(outbox.contains(old), want_evicted == 0, "row {i}");
            assert_eq!(outbox.path_of(old).exists(), want_evicted == 0, "row {i}");
        }
    }
}
