//! Evidence frames in append-only segment files, one fsync per batch.
//!
//! A segment is named `seg-{writer_id}-{sequence}.kzs`, so several processes sharing
//! one folder never write the same file, and holds records back to back:
//!
//! ```text
//! record = magic "KZF1" | length: u32 little-endian | sha256: 32 bytes | frame bytes
//! ```
//!
//! so a segment can be scanned and checked without the database ([`scan_segment`]).
//! A writer never appends to a segment it did not create in this process: after a
//! crash, a torn record can only sit at the end of a segment nobody writes to again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::StoreError;

/// Where a frame's bytes lie.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameLocation {
    /// Segment file name, relative to the evidence folder.
    pub segment: String,
    /// Byte offset of the frame's first byte.
    pub offset: u64,
    pub len: u32,
}

const MAGIC: [u8; 4] = *b"KZF1";
/// Bytes of a record before its frame: magic, length, SHA-256.
pub const RECORD_HEADER_LEN: u64 = 4 + 4 + 32;
/// A segment is closed once the next batch would take it past this size.
pub const DEFAULT_SEGMENT_LIMIT: u64 = 256 * 1024 * 1024;
const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".kzs";

/// Append-only frame storage in a folder. `append_batch` and `read` block: call
/// them from `spawn_blocking`.
pub struct EvidenceStore {
    dir: PathBuf,
    writer_id: String,
    segment_limit: u64,
    writer: Mutex<Writer>,
}

struct Writer {
    /// The segment being appended to; `None` until the first batch, after a
    /// rotation, and after a failed write (whose tail is left behind, not reused).
    current: Option<OpenSegment>,
    next_sequence: u64,
}

struct OpenSegment {
    file: File,
    name: String,
    len: u64,
}

impl EvidenceStore {
    /// Opens `dir` (created if missing) for the writer `writer_id`, which must be
    /// unique among the processes sharing the folder (letters, digits, `-`, `_`).
    pub fn open(dir: &Path, writer_id: &str) -> Result<Self, StoreError> {
        let valid = !writer_id.is_empty()
            && writer_id.len() <= 64
            && writer_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "evidence writer id `{writer_id}` must be 1-64 letters, digits, `-` or `_`"
                ),
            )));
        }
        fs::create_dir_all(dir)?;
        let own_prefix = format!("{SEGMENT_PREFIX}{writer_id}-");
        let mut last = None;
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            let sequence = name
                .strip_prefix(&own_prefix)
                .and_then(|rest| rest.strip_suffix(SEGMENT_SUFFIX))
                .and_then(|seq| seq.parse::<u64>().ok());
            last = last.max(sequence);
        }
        Ok(EvidenceStore {
            dir: dir.to_owned(),
            writer_id: writer_id.to_owned(),
            segment_limit: DEFAULT_SEGMENT_LIMIT,
            writer: Mutex::new(Writer {
                current: None,
                next_sequence: last.map_or(1, |seq| seq + 1),
            }),
        })
    }

    /// Sets the size at which segments rotate (tests use small ones).
    pub fn with_segment_limit(mut self, bytes: u64) -> Self {
        self.segment_limit = bytes.max(1);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends every frame, then makes them durable with one `fdatasync`. Returns
    /// each frame's location, in input order. Nothing is durable before it returns.
    pub fn append_batch(&self, frames: &[&[u8]]) -> Result<Vec<FrameLocation>, StoreError> {
        let hashed: Vec<(&[u8], [u8; 32])> = frames
            .iter()
            .map(|frame| (*frame, Sha256::digest(frame).into()))
            .collect();
        self.append_hashed(&hashed)
    }

    /// [`EvidenceStore::append_batch`] for frames whose SHA-256 the caller has already
    /// (a signed document, hashed for its signature): a hash that is not its frame's
    /// makes the frame unreadable ([`StoreError::EvidenceCorrupt`]), never wrong.
    pub fn append_hashed(
        &self,
        frames: &[(&[u8], [u8; 32])],
    ) -> Result<Vec<FrameLocation>, StoreError> {
        if frames.is_empty() {
            return Ok(Vec::new());
        }
        let lens = frames
            .iter()
            .map(|(frame, _)| {
                u32::try_from(frame.len()).map_err(|_| {
                    StoreError::Io(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("frame of {} bytes is too large", frame.len()),
                    ))
                })
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let batch_len: u64 = lens
            .iter()
            .map(|&len| RECORD_HEADER_LEN + u64::from(len))
            .sum();

        // The lock only guards our own state, which stays consistent: a panic while
        // holding it leaves at worst a torn tail, which the next append skips.
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer
            .current
            .as_ref()
            .is_some_and(|seg| seg.len > 0 && seg.len + batch_len > self.segment_limit)
        {
            writer.current = None;
        }
        if writer.current.is_none() {
            let segment = self.create_segment(&mut writer.next_sequence)?;
            writer.current = Some(segment);
        }
        let segment = writer
            .current
            .as_mut()
            .expect("a segment was opened just above");
        match write_records(segment, frames, &lens) {
            Ok(locations) => Ok(locations),
            Err(err) => {
                warn!(segment = %segment.name, error = %err, "evidence write failed; the segment is closed");
                writer.current = None;
                Err(StoreError::Io(err))
            }
        }
    }

    fn create_segment(&self, next_sequence: &mut u64) -> Result<OpenSegment, StoreError> {
        loop {
            let sequence = *next_sequence;
            *next_sequence += 1;
            let name = format!(
                "{SEGMENT_PREFIX}{}-{sequence:010}{SEGMENT_SUFFIX}",
                self.writer_id
            );
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.dir.join(&name))
            {
                Ok(file) => {
                    // The new name must survive a crash as well as the bytes in it.
                    File::open(&self.dir)?.sync_all()?;
                    info!(segment = %name, "evidence segment started");
                    return Ok(OpenSegment { file, name, len: 0 });
                }
                // Left by a process that shared our writer id; never append to it.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Reads a frame and checks that its bytes hash to `sha256`.
    pub fn read(&self, loc: &FrameLocation, sha256: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        let corrupt = || StoreError::EvidenceCorrupt {
            sha256: hex::encode(sha256),
        };
        if !is_segment_name(&loc.segment) {
            return Err(StoreError::Corrupt(format!(
                "evidence segment name `{}`",
                loc.segment
            )));
        }
        let Some(record_start) = loc.offset.checked_sub(RECORD_HEADER_LEN) else {
            return Err(corrupt());
        };
        let file = File::open(self.dir.join(&loc.segment))?;
        let mut header = [0u8; RECORD_HEADER_LEN as usize];
        let mut bytes = vec![0u8; loc.len as usize];
        let read = file
            .read_exact_at(&mut header, record_start)
            .and_then(|()| file.read_exact_at(&mut bytes, loc.offset));
        match read {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Err(corrupt()),
            Err(err) => return Err(err.into()),
        }
        let header = Header::parse(&header);
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        match header {
            Some(h) if h.len == loc.len && h.sha256 == *sha256 && digest == *sha256 => Ok(bytes),
            _ => Err(corrupt()),
        }
    }
}

fn write_records(
    segment: &mut OpenSegment,
    frames: &[(&[u8], [u8; 32])],
    lens: &[u32],
) -> io::Result<Vec<FrameLocation>> {
    let mut locations = Vec::with_capacity(frames.len());
    let mut position = segment.len;
    for ((frame, sha256), &len) in frames.iter().zip(lens) {
        let mut header = [0u8; RECORD_HEADER_LEN as usize];
        header[..4].copy_from_slice(&MAGIC);
        header[4..8].copy_from_slice(&len.to_le_bytes());
        header[8..].copy_from_slice(sha256);
        segment.file.write_all(&header)?;
        segment.file.write_all(frame)?;
        locations.push(FrameLocation {
            segment: segment.name.clone(),
            offset: position + RECORD_HEADER_LEN,
            len,
        });
        position += RECORD_HEADER_LEN + u64::from(len);
    }
    segment.file.sync_data()?;
    segment.len = position;
    Ok(locations)
}

struct Header {
    len: u32,
    sha256: [u8; 32],
}

impl Header {
    fn parse(raw: &[u8; RECORD_HEADER_LEN as usize]) -> Option<Header> {
        if raw[..4] != MAGIC {
            return None;
        }
        let len = u32::from_le_bytes(raw[4..8].try_into().expect("four bytes"));
        let sha256 = raw[8..].try_into().expect("thirty-two bytes");
        Some(Header { len, sha256 })
    }
}

fn is_segment_name(name: &str) -> bool {
    name.starts_with(SEGMENT_PREFIX)
        && name.ends_with(SEGMENT_SUFFIX)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.contains("..")
}

/// What an offline check of one segment found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SegmentScan {
    /// Records whose bytes match their hash: (location, sha256).
    pub frames: Vec<(FrameLocation, [u8; 32])>,
    /// Complete records whose bytes do not match their hash.
    pub corrupt: Vec<FrameLocation>,
    /// Where an incomplete or unreadable record starts (a crash mid-batch); the
    /// scan stops there.
    pub torn_at: Option<u64>,
}

/// Walks every record of `dir/segment`, re-hashing each frame.
pub fn scan_segment(dir: &Path, segment: &str) -> Result<SegmentScan, StoreError> {
    if !is_segment_name(segment) {
        return Err(StoreError::Corrupt(format!(
            "evidence segment name `{segment}`"
        )));
    }
    let file = File::open(dir.join(segment))?;
    let size = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut scan = SegmentScan::default();
    let mut position = 0u64;
    while position < size {
        let mut raw = [0u8; RECORD_HEADER_LEN as usize];
        let header = match reader.read_exact(&mut raw) {
            Ok(()) => Header::parse(&raw),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(err) => return Err(err.into()),
        };
        let Some(header) =
            header.filter(|h| position + RECORD_HEADER_LEN + u64::from(h.len) <= size)
        else {
            scan.torn_at = Some(position);
            break;
        };
        let mut bytes = vec![0u8; header.len as usize];
        reader.read_exact(&mut bytes)?;
        let location = FrameLocation {
            segment: segment.to_owned(),
            offset: position + RECORD_HEADER_LEN,
            len: header.len,
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if digest == header.sha256 {
            scan.frames.push((location, digest));
        } else {
            scan.corrupt.push(location);
        }
        position += RECORD_HEADER_LEN + u64::from(header.len);
    }
    Ok(scan)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    fn frame(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| seed.wrapping_add((i % 251) as u8))
            .collect()
    }

    #[test]
    fn frames_round_trip_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::open(dir.path(), "ingest-a").unwrap();
        let first = [frame(1, 300_000), frame(2, 10)];
        let second = [frame(3, 0), frame(4, 70_000), frame(5, 1)];
        let mut written = Vec::new();
        for batch in [&first[..], &second[..]] {
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            let locations = store.append_batch(&refs).unwrap();
            assert_eq!(locations.len(), batch.len());
            written.extend(batch.iter().cloned().zip(locations));
        }
        for (bytes, loc) in &written {
            assert_eq!(&store.read(loc, &sha(bytes)).unwrap(), bytes);
            assert_eq!(loc.len as usize, bytes.len());
        }
        // Both batches went to one segment, back to back.
        assert!(written
            .iter()
            .all(|(_, loc)| loc.segment == written[0].1.segment));
        let scan = scan_segment(dir.path(), &written[0].1.segment).unwrap();
        assert_eq!(scan.frames.len(), 5);
        assert!(scan.corrupt.is_empty());
        assert_eq!(scan.torn_at, None);
        assert!(store.append_batch(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_flipped_byte_or_a_wrong_hash_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::open(dir.path(), "w1").unwrap();
        let bytes = frame(9, 4096);
        let loc = store.append_batch(&[&bytes]).unwrap().remove(0);

        let other = sha(b"another frame");
        assert!(matches!(
            store.read(&loc, &other),
            Err(StoreError::EvidenceCorrupt { .. })
        ));

        let path = dir.path().join(&loc.segment);
        let mut raw = fs::read(&path).unwrap();
        raw[loc.offset as usize + 100] ^= 0x01;
        fs::write(&path, &raw).unwrap();
        assert!(matches!(
            store.read(&loc, &sha(&bytes)),
            Err(StoreError::EvidenceCorrupt { .. })
        ));
        let scan = scan_segment(dir.path(), &loc.segment).unwrap();
        assert_eq!(scan.corrupt, vec![loc.clone()]);

        // A location past the end of the file is corrupt, not a crash.
        let beyond = FrameLocation {
            offset: loc.offset + 1_000_000,
            ..loc.clone()
        };
        assert!(matches!(
            store.read(&beyond, &sha(&bytes)),
            Err(StoreError::EvidenceCorrupt { .. })
        ));
        let escape = FrameLocation {
            segment: "../etc/passwd".into(),
            ..loc
        };
        assert!(matches!(
            store.read(&escape, &sha(&bytes)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn reopening_after_a_torn_tail_starts_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = frame(7, 5000);
        let loc = {
            let store = EvidenceStore::open(dir.path(), "w1").unwrap();
            store.append_batch(&[&bytes]).unwrap().remove(0)
        };
        // A crash mid-batch: half a record at the end.
        let path = dir.path().join(&loc.segment);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&MAGIC).unwrap();
        file.write_all(&100u32.to_le_bytes()).unwrap();
        file.write_all(&[0u8; 20]).unwrap();
        drop(file);

        let store = EvidenceStore::open(dir.path(), "w1").unwrap();
        let next = frame(8, 6000);
        let new_loc = store.append_batch(&[&next]).unwrap().remove(0);
        assert_ne!(new_loc.segment, loc.segment);
        assert_eq!(store.read(&new_loc, &sha(&next)).unwrap(), next);
        assert_eq!(store.read(&loc, &sha(&bytes)).unwrap(), bytes);

        let scan = scan_segment(dir.path(), &loc.segment).unwrap();
        assert_eq!(scan.frames.len(), 1);
        assert_eq!(scan.torn_at, Some(RECORD_HEADER_LEN + 5000));
    }

    #[test]
    fn writers_sharing_a_folder_never_share_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let a = EvidenceStore::open(dir.path(), "a").unwrap();
        let b = EvidenceStore::open(dir.path(), "b").unwrap();
        let la = a.append_batch(&[b"from a"]).unwrap().remove(0);
        let lb = b.append_batch(&[b"from b"]).unwrap().remove(0);
        assert_ne!(la.segment, lb.segment);
        assert_eq!(a.read(&lb, &sha(b"from b")).unwrap(), b"from b");
    }

    #[test]
    fn segments_rotate_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::open(dir.path(), "w")
            .unwrap()
            .with_segment_limit(10_000);
        let big = frame(1, 6_000);
        let l1 = store.append_batch(&[&big]).unwrap().remove(0);
        let l2 = store.append_batch(&[&big]).unwrap().remove(0);
        // A batch larger than the limit still goes into one (fresh) segment.
        let l3 = store.append_batch(&[&big, &big]).unwrap();
        assert_ne!(l1.segment, l2.segment);
        assert_ne!(l2.segment, l3[0].segment);
        assert_eq!(l3[0].segment, l3[1].segment);
        for loc in [&l1, &l2, &l3[0], &l3[1]] {
            assert_eq!(store.read(loc, &sha(&big)).unwrap(), big);
        }
    }

    #[test]
    fn bad_writer_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for id in ["", "a/b", "..", "x y"] {
            assert!(EvidenceStore::open(dir.path(), id).is_err(), "{id}");
        }
    }

    /// `cargo test -p kozomol-store --release -- --ignored --nocapture evidence_bandwidth`
    #[test]
    #[ignore = "measures the disk; run by hand"]
    fn evidence_bandwidth_against_plain_fsynced_writes() {
        let dir = tempfile::tempdir_in(".").unwrap();
        let frames: Vec<Vec<u8>> = (0..8).map(|i| frame(i, 300_000)).collect();
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let batch_bytes: usize = frames.iter().map(Vec::len).sum();
        let rounds = 40;

        let store = EvidenceStore::open(dir.path(), "bench").unwrap();
        let mut plain = File::create(dir.path().join("plain")).unwrap();
        let (mut plain_time, mut store_time) = (0.0, 0.0);
        // Interleaved, so both see the same background writeback.
        for _ in 0..rounds {
            let started = std::time::Instant::now();
            for f in &refs {
                plain.write_all(f).unwrap();
            }
            plain.sync_data().unwrap();
            plain_time += started.elapsed().as_secs_f64();

            let started = std::time::Instant::now();
            store.append_batch(&refs).unwrap();
            store_time += started.elapsed().as_secs_f64();
        }
        let plain_rate = (batch_bytes * rounds) as f64 / plain_time;
        let store_rate = (batch_bytes * rounds) as f64 / store_time;
        println!(
            "plain {:.0} MB/s, evidence store {:.0} MB/s, ratio {:.2}",
            plain_rate / 1e6,
            store_rate / 1e6,
            store_rate / plain_rate
        );
    }

    #[test]
    fn the_store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EvidenceStore>();
    }
}
