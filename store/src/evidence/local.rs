//! Segments as files in a folder, one `fdatasync` per batch.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tracing::{info, warn};

use chrono::{DateTime, Utc};

use super::{
    SegmentInfo, SegmentScan, SegmentStorage, DEFAULT_SEGMENT_LIMIT, SEGMENT_PREFIX, SEGMENT_SUFFIX,
};
use crate::StoreError;

/// Segment files in one folder, which several writers may share.
pub struct LocalSegments {
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

impl LocalSegments {
    /// Opens `dir` (created if missing) for the writer `writer_id`, which must be
    /// unique among the processes sharing the folder.
    pub fn open(dir: &Path, writer_id: &str) -> Result<Self, StoreError> {
        super::check_writer_id(writer_id)?;
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
        Ok(LocalSegments {
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
}

impl SegmentStorage for LocalSegments {
    fn append(&self, records: &[u8]) -> Result<(String, u64), StoreError> {
        let batch_len = records.len() as u64;
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
        let start = segment.len;
        match segment
            .file
            .write_all(records)
            .and_then(|()| segment.file.sync_data())
        {
            Ok(()) => {
                segment.len += batch_len;
                Ok((segment.name.clone(), start))
            }
            Err(err) => {
                warn!(segment = %segment.name, error = %err, "evidence write failed; the segment is closed");
                writer.current = None;
                Err(StoreError::Io(err))
            }
        }
    }

    fn read_at(&self, segment: &str, start: u64, len: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let file = File::open(self.dir.join(segment))?;
        let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| io::Error::other("length"))?];
        match file.read_exact_at(&mut bytes, start) {
            Ok(()) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// In place: a writer appending to the same segment writes past its end through
    /// its own handle, never over these bytes. One `fdatasync` for all of them.
    fn overwrite(&self, segment: &str, writes: &[(u64, Vec<u8>)]) -> Result<(), StoreError> {
        let file = OpenOptions::new()
            .write(true)
            .open(self.dir.join(segment))?;
        let size = file.metadata()?.len();
        if let Some(end) = writes
            .iter()
            .map(|(start, bytes)| start + bytes.len() as u64)
            .find(|&end| end > size)
        {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("segment {segment} ends before byte {end}"),
            )));
        }
        for (start, bytes) in writes {
            file.write_all_at(bytes, *start)?;
        }
        file.sync_data()?;
        Ok(())
    }

    fn segments(&self) -> Result<Vec<SegmentInfo>, StoreError> {
        let mut segments = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !super::is_segment_name(&name) {
                continue;
            }
            let written_at = modified(&name, &entry.metadata()?)?;
            segments.push(SegmentInfo { name, written_at });
        }
        segments.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(segments)
    }

    fn scan(&self, segment: &str) -> Result<SegmentScan, StoreError> {
        super::scan_segment(&self.dir, segment)
    }

    fn written_at(&self, segment: &str) -> Result<DateTime<Utc>, StoreError> {
        modified(segment, &fs::metadata(self.dir.join(segment))?)
    }
}

/// A segment file's modification time, to the second.
fn modified(name: &str, metadata: &fs::Metadata) -> Result<DateTime<Utc>, StoreError> {
    let seconds = metadata
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(seconds)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| {
            StoreError::Io(io::Error::other(format!(
                "segment {name}: modification time"
            )))
        })
}
