//! Evidence frames in append-only segments, one durable write per batch.
//!
//! A segment is named `seg-{writer_id}-{sequence}.kzs`, so several processes sharing
//! one store never write the same segment, and holds records back to back:
//!
//! ```text
//! record = magic "KZF1" | length: u32 little-endian | sha256: 32 bytes | frame bytes
//! ```
//!
//! so a segment can be scanned and checked without the database ([`scan_segment`]).
//! A record destroyed at the end of its case file's archive period
//! ([`EvidenceStore::erase`]) keeps its place and length, so every other location
//! stays valid: magic "KZX0", its length, and zeros where its hash and bytes were.
//! Where segments lie is a [`SegmentStorage`]: files in a folder ([`LocalSegments`],
//! the default), or objects in an S3-compatible bucket ([`S3Segments`]). A writer
//! never appends to a segment it did not create in this process: after a crash, a
//! torn record can only sit at the end of a segment nobody writes to again.

mod local;
mod s3;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::StoreError;

pub use local::LocalSegments;
pub use s3::{S3Bucket, S3Segments};

/// Where a frame's bytes lie.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FrameLocation {
    /// Segment name: a file in the evidence folder, or an object under the bucket's
    /// prefix.
    pub segment: String,
    /// Byte offset of the frame's first byte.
    pub offset: u64,
    pub len: u32,
}

const MAGIC: [u8; 4] = *b"KZF1";
const ERASED_MAGIC: [u8; 4] = *b"KZX0";
/// Bytes of a record before its frame: magic, length, SHA-256.
pub const RECORD_HEADER_LEN: u64 = 4 + 4 + 32;
/// A segment is closed once the next batch would take it past this size.
pub const DEFAULT_SEGMENT_LIMIT: u64 = 256 * 1024 * 1024;
const SEGMENT_PREFIX: &str = "seg-";
const SEGMENT_SUFFIX: &str = ".kzs";

/// Where evidence segments are kept. Both calls block: the store is used from
/// `spawn_blocking`.
pub trait SegmentStorage: Send + Sync {
    /// Makes `records` (whole records, back to back) durable at the end of a segment
    /// this writer created, and returns that segment's name and the offset the
    /// records start at. Nothing is durable before it returns.
    fn append(&self, records: &[u8]) -> Result<(String, u64), StoreError>;

    /// The `len` bytes of `segment` from `start`, or `None` where the segment is
    /// shorter: a location that points past what was written.
    fn read_at(&self, segment: &str, start: u64, len: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Replaces, for each `(start, bytes)` of `writes`, the bytes of `segment` from
    /// `start` by `bytes`, durably, leaving every other byte as it was; an error where
    /// the segment ends before them.
    fn overwrite(&self, segment: &str, writes: &[(u64, Vec<u8>)]) -> Result<(), StoreError>;

    /// Every segment here, whoever wrote it, with when it was last written.
    fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError>;

    /// Reads the whole of `segment`, re-hashing every record ([`SegmentScan`]).
    fn scan(&self, segment: &str) -> Result<SegmentScan, StoreError>;

    /// When `segment` was last written, to the second.
    fn written_at(&self, segment: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError>;
}

/// A segment and its last write (an append or an overwrite), to the second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub name: String,
    pub written_at: chrono::DateTime<chrono::Utc>,
}

/// Append-only frame storage. `append_batch` and `read` block: call them from
/// `spawn_blocking`.
pub struct EvidenceStore {
    segments: Box<dyn SegmentStorage>,
}

impl EvidenceStore {
    /// Evidence in the folder `dir` (created if missing), for the writer `writer_id`,
    /// which must be unique among the processes sharing the folder (letters, digits,
    /// `-`, `_`).
    pub fn open(dir: &Path, writer_id: &str) -> Result<Self, StoreError> {
        Ok(Self::on(LocalSegments::open(dir, writer_id)?))
    }

    /// Evidence kept in `segments`.
    pub fn on(segments: impl SegmentStorage + 'static) -> Self {
        EvidenceStore {
            segments: Box::new(segments),
        }
    }

    /// Appends every frame, then makes them durable with one write to the storage.
    /// Returns each frame's location, in input order.
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
        let mut records = Vec::with_capacity(usize::try_from(batch_len).unwrap_or(0));
        let mut offsets = Vec::with_capacity(frames.len());
        for ((frame, sha256), &len) in frames.iter().zip(&lens) {
            records.extend_from_slice(&MAGIC);
            records.extend_from_slice(&len.to_le_bytes());
            records.extend_from_slice(sha256);
            offsets.push(records.len() as u64);
            records.extend_from_slice(frame);
        }
        let (segment, start) = self.segments.append(&records)?;
        Ok(offsets
            .into_iter()
            .zip(lens)
            .map(|(offset, len)| FrameLocation {
                segment: segment.clone(),
                offset: start + offset,
                len,
            })
            .collect())
    }

    /// Reads a frame and checks that its bytes hash to `sha256`.
    pub fn read(&self, loc: &FrameLocation, sha256: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        let corrupt = || StoreError::EvidenceCorrupt {
            sha256: hex::encode(sha256),
        };
        check_segment_name(&loc.segment)?;
        let Some(record_start) = loc.offset.checked_sub(RECORD_HEADER_LEN) else {
            return Err(corrupt());
        };
        let Some(mut record) = self.segments.read_at(
            &loc.segment,
            record_start,
            RECORD_HEADER_LEN + u64::from(loc.len),
        )?
        else {
            return Err(corrupt());
        };
        let bytes = record.split_off(RECORD_HEADER_LEN as usize);
        let header: [u8; RECORD_HEADER_LEN as usize] =
            record.as_slice().try_into().map_err(|_| corrupt())?;
        if header[..4] == ERASED_MAGIC {
            return Err(StoreError::EvidenceErased {
                sha256: hex::encode(sha256),
            });
        }
        let header = Header::parse(&header);
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        match header {
            Some(h) if h.len == loc.len && h.sha256 == *sha256 && digest == *sha256 => Ok(bytes),
            _ => Err(corrupt()),
        }
    }

    /// Every segment, with its last write ([`SegmentStorage::segments`]).
    pub fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        self.segments.segments()
    }

    /// Reads the whole of `segment`, re-hashing every record ([`SegmentStorage::scan`]).
    pub fn scan(&self, segment: &str) -> Result<SegmentScan, StoreError> {
        check_segment_name(segment)?;
        self.segments.scan(segment)
    }

    /// When `segment` was last written ([`SegmentStorage::written_at`]).
    pub fn written_at(&self, segment: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        check_segment_name(segment)?;
        self.segments.written_at(segment)
    }

    /// Destroys the frames at `records` (location and SHA-256), all in `segment`: each
    /// record becomes an erased one of the same length (zeros), durably, in one rewrite
    /// of the segment. A record erased already is written again (a crash may have left
    /// only its header written); a location past the segment's end has nothing to
    /// erase (a torn batch the database never kept). A record that is not the frame
    /// named (the database and the segment disagree, which an operator must see) is
    /// left as it is and answered, by its index in `records`; the others are erased
    /// all the same, so that one bad record holds no one else's bytes past their term.
    pub fn erase(
        &self,
        segment: &str,
        records: &[(FrameLocation, [u8; 32])],
    ) -> Result<Vec<usize>, StoreError> {
        check_segment_name(segment)?;
        let mut writes = Vec::with_capacity(records.len());
        let mut refused = Vec::new();
        for (index, (loc, sha256)) in records.iter().enumerate() {
            let Some(record_start) = loc.offset.checked_sub(RECORD_HEADER_LEN) else {
                refused.push(index);
                continue;
            };
            if loc.segment != segment {
                refused.push(index);
                continue;
            }
            let Some(header) = self
                .segments
                .read_at(segment, record_start, RECORD_HEADER_LEN)?
            else {
                continue;
            };
            let Ok(raw) = <[u8; RECORD_HEADER_LEN as usize]>::try_from(header.as_slice()) else {
                refused.push(index);
                continue;
            };
            let len = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let ours = match Header::parse(&raw) {
                Some(h) => h.len == loc.len && h.sha256 == *sha256,
                None => raw[..4] == ERASED_MAGIC && len == loc.len,
            };
            if !ours {
                refused.push(index);
                continue;
            }
            let mut record = vec![0u8; (RECORD_HEADER_LEN + u64::from(loc.len)) as usize];
            record[..4].copy_from_slice(&ERASED_MAGIC);
            record[4..8].copy_from_slice(&loc.len.to_le_bytes());
            writes.push((record_start, record));
        }
        if !writes.is_empty() {
            self.segments.overwrite(segment, &writes)?;
        }
        Ok(refused)
    }
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

/// A writer id goes into segment names: letters, digits, `-`, `_`, at most 64.
fn check_writer_id(writer_id: &str) -> Result<(), StoreError> {
    let valid = !writer_id.is_empty()
        && writer_id.len() <= 64
        && writer_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("evidence writer id `{writer_id}` must be 1-64 letters, digits, `-` or `_`"),
        )))
    }
}

/// A segment name is a file or object name this code made, never a path.
fn check_segment_name(name: &str) -> Result<(), StoreError> {
    if is_segment_name(name) {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "evidence segment name `{name}`"
        )))
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
    /// Records destroyed at the end of their case file's archive period.
    pub erased: Vec<FrameLocation>,
    /// Where an incomplete or unreadable record starts (a crash mid-batch); the
    /// scan stops there.
    pub torn_at: Option<u64>,
}

/// Walks every record of the segment file `dir/segment`, re-hashing each frame.
pub fn scan_segment(dir: &Path, segment: &str) -> Result<SegmentScan, StoreError> {
    check_segment_name(segment)?;
    let file = File::open(dir.join(segment))?;
    let size = file.metadata()?.len();
    scan_records(BufReader::with_capacity(1 << 20, file), size, segment)
}

/// Walks every record of the segment `segment` read from `reader` (its `size` bytes),
/// re-hashing each frame.
fn scan_records(
    mut reader: impl Read,
    size: u64,
    segment: &str,
) -> Result<SegmentScan, StoreError> {
    let mut scan = SegmentScan::default();
    let mut position = 0u64;
    while position < size {
        let mut raw = [0u8; RECORD_HEADER_LEN as usize];
        let header = match reader.read_exact(&mut raw) {
            Ok(()) if raw[..4] == ERASED_MAGIC => Some(Header {
                len: u32::from_le_bytes(raw[4..8].try_into().expect("four bytes")),
                sha256: [0; 32],
            }),
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
        if raw[..4] == ERASED_MAGIC {
            scan.erased.push(location);
        } else if digest == header.sha256 {
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
    use std::fs::{self, OpenOptions};
    use std::io::Write;

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
    fn segments_are_listed_and_scanned_through_their_storage() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::open(dir.path(), "w1").unwrap();
        let (a, b, c) = (frame(1, 3000), frame(2, 4000), frame(3, 10));
        let locs = store.append_batch(&[&a, &b, &c]).unwrap();
        store
            .erase(&locs[1].segment, &[(locs[1].clone(), sha(&b))])
            .unwrap();
        // A torn tail: a record whose bytes never all arrived.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(&locs[0].segment))
            .unwrap();
        file.write_all(&MAGIC).unwrap();
        file.write_all(&100u32.to_le_bytes()).unwrap();
        file.write_all(&[0u8; 50]).unwrap();
        drop(file);
        // Not a segment: never listed.
        fs::write(dir.path().join("notes.txt"), b"x").unwrap();

        let segments = store.segments().unwrap();
        assert_eq!(
            segments.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            [locs[0].segment.as_str()]
        );
        let age = chrono::Utc::now() - segments[0].written_at;
        assert!((0..5).contains(&age.num_seconds()), "{segments:?}");
        assert_eq!(
            store.written_at(&locs[0].segment).unwrap(),
            segments[0].written_at
        );
        let scan = store.scan(&locs[0].segment).unwrap();
        assert_eq!(
            scan.frames,
            [(locs[0].clone(), sha(&a)), (locs[2].clone(), sha(&c))]
        );
        assert_eq!(scan.erased, [locs[1].clone()]);
        assert!(scan.torn_at.is_some());
        assert!(store.scan("../etc/passwd").is_err());
    }

    #[test]
    fn erased_frames_keep_their_place_and_every_other_frame() {
        let dir = tempfile::tempdir().unwrap();
        let store = EvidenceStore::open(dir.path(), "w1").unwrap();
        let frames = [frame(1, 3000), frame(2, 500), frame(3, 7000), frame(4, 90)];
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let locs = store.append_batch(&refs).unwrap();
        let segment = locs[0].segment.clone();
        let path = dir.path().join(&segment);
        let size = fs::metadata(&path).unwrap().len();
        let record = |i: usize| (locs[i].clone(), sha(&frames[i]));

        // One record not the frame named: it is answered and left, the others erased.
        assert_eq!(
            store
                .erase(
                    &segment,
                    &[(locs[3].clone(), sha(b"another frame")), record(1)]
                )
                .unwrap(),
            [0]
        );
        assert_eq!(store.read(&locs[3], &sha(&frames[3])).unwrap(), frames[3]);
        assert!(matches!(
            store.read(&locs[1], &sha(&frames[1])),
            Err(StoreError::EvidenceErased { .. })
        ));

        assert!(store
            .erase(&segment, &[record(1), record(3)])
            .unwrap()
            .is_empty());
        // Again: an erased record is written again, nothing else changes.
        store.erase(&segment, &[record(1)]).unwrap();
        for i in [1, 3] {
            assert!(matches!(
                store.read(&locs[i], &sha(&frames[i])),
                Err(StoreError::EvidenceErased { .. })
            ));
        }
        for i in [0, 2] {
            assert_eq!(store.read(&locs[i], &sha(&frames[i])).unwrap(), frames[i]);
        }
        assert_eq!(fs::metadata(&path).unwrap().len(), size, "nothing moved");
        let raw = fs::read(&path).unwrap();
        let start = (locs[1].offset - RECORD_HEADER_LEN) as usize;
        let end = locs[1].offset as usize + frames[1].len();
        assert_eq!(&raw[start..start + 4], b"KZX0");
        assert!(
            raw[start + 8..end].iter().all(|&b| b == 0),
            "hash and bytes are gone"
        );

        // A crash that left the erased header written but not the bytes behind it:
        // erasing again finishes it.
        let mut torn = raw.clone();
        torn[start + 100] = 0x5a;
        fs::write(&path, &torn).unwrap();
        store.erase(&segment, &[record(1)]).unwrap();
        assert_eq!(fs::read(&path).unwrap(), raw);

        let scan = scan_segment(dir.path(), &segment).unwrap();
        assert_eq!(scan.erased, vec![locs[1].clone(), locs[3].clone()]);
        assert_eq!(scan.frames.len(), 2);
        assert!(scan.corrupt.is_empty() && scan.torn_at.is_none());

        // A location past the segment's end has nothing to erase; one in another
        // segment is refused.
        let beyond = FrameLocation {
            offset: size + 1_000,
            ..locs[2].clone()
        };
        store.erase(&segment, &[(beyond, sha(&frames[2]))]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        assert_eq!(
            store
                .erase("seg-other-0000000001.kzs", &[record(2)])
                .unwrap(),
            [0]
        );
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
        let store = EvidenceStore::on(
            LocalSegments::open(dir.path(), "w")
                .unwrap()
                .with_segment_limit(10_000),
        );
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
