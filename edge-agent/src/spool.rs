//! The spool folder that camera firmware fills: one capture is `NAME.json` (the sidecar,
//! written last or renamed into place from `NAME.json.tmp`) plus the JPEG files it
//! names. A capture is first *claimed* — renamed to `NAME.<event-id>.claim` — so that a
//! crash after submitting it re-submits the same event id, which ingest dedupes. Once
//! `submit` returned (the outbox is fsync'd) the claim becomes `NAME.<event-id>.done`,
//! and only then are its files removed, the marker last: a crash part-way is finished
//! on the next pass, and a claim whose frames are missing is a fault (a frame another
//! capture named too, or one deleted by hand), never taken for submitted. A sidecar
//! that cannot be used moves to `bad/` with a `.error` text file beside it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kozomol_core::envelope::MAX_ENVELOPE_BYTES;
use kozomol_core::{ClockSource, EventId, FrameRole, Measurement, PlateRead, ViolationKind};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::outbox::sync_dir;
use crate::{Agent, Capture, EdgeError};

const SIDECAR_SUFFIX: &str = ".json";
const CLAIM_SUFFIX: &str = ".claim";
/// A capture submitted (or discarded) whose files are being removed.
const DONE_SUFFIX: &str = ".done";
const MAX_SIDECAR_BYTES: u64 = 64 * 1024;
/// How long an unreadable sidecar written in place is given to be finished before it is
/// set aside as bad.
const SIDECAR_SETTLE: Duration = Duration::from_secs(5);
/// A capture that could not be submitted for a passing reason is tried again after this.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A capture's sidecar, as the firmware writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// RFC 3339.
    pub captured_at: DateTime<Utc>,
    pub clock_source: ClockSource,
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    pub kind: ViolationKind,
    #[serde(default)]
    pub measurement: Measurement,
    #[serde(default)]
    pub lane: Option<u8>,
    #[serde(default)]
    pub plate_read: Option<PlateRead>,
    pub frames: Vec<SidecarFrame>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarFrame {
    /// A file name in the spool folder (no directories).
    pub file: String,
    pub role: FrameRole,
}

impl Sidecar {
    /// Parses and checks a sidecar's JSON.
    pub fn parse(json: &[u8]) -> Result<Sidecar, EdgeError> {
        let sidecar: Sidecar =
            serde_json::from_slice(json).map_err(|e| EdgeError::Sidecar(e.to_string()))?;
        if sidecar.frames.is_empty() {
            return Err(EdgeError::Sidecar("frames is empty".into()));
        }
        for frame in &sidecar.frames {
            if !is_plain_file_name(&frame.file) {
                return Err(EdgeError::Sidecar(format!(
                    "frame file `{}` must be a plain file name in the spool folder",
                    frame.file
                )));
            }
        }
        Ok(sidecar)
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && !name.ends_with(SIDECAR_SUFFIX)
        && !name.ends_with(CLAIM_SUFFIX)
        && !name.ends_with(DONE_SUFFIX)
}

/// What one pass over the spool did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpoolReport {
    pub submitted: u64,
    /// Speeding captures not above the limit in force.
    pub discarded: u64,
    /// Sidecars moved to `bad/`.
    pub bad: u64,
    /// Captures left for a later pass (no speed limit yet, disk trouble).
    pub deferred: u64,
}

/// A spool folder and the captures in it that wait for a retry.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    bad_dir: PathBuf,
    /// What `bad/` keeps at most, its oldest files deleted first.
    bad_limit_bytes: u64,
    retry_at: HashMap<String, Instant>,
}

/// One capture found in the spool.
#[derive(Debug)]
enum Found {
    New { name: String },
    Claimed { name: String, id: EventId },
}

/// A capture's sidecar and its frames' bytes.
type Loaded = (Sidecar, Vec<Vec<u8>>);

impl Spool {
    /// Opens the spool folder, creating it and `bad/` if needed; `bad/` keeps at most
    /// `bad_limit_bytes`.
    pub fn open(dir: impl Into<PathBuf>, bad_limit_bytes: u64) -> Result<Spool, EdgeError> {
        let dir = dir.into();
        let bad_dir = dir.join("bad");
        fs::create_dir_all(&bad_dir)
            .map_err(EdgeError::io(format!("creating {}", bad_dir.display())))?;
        Ok(Spool {
            dir,
            bad_dir,
            bad_limit_bytes,
            retry_at: HashMap::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Watches the folder until `cancel`, scanning every `poll`.
    pub async fn run(mut self, agent: &Agent, poll: Duration, cancel: CancellationToken) {
        loop {
            match self.scan(agent, Some(&cancel)).await {
                Ok(report) if report != SpoolReport::default() => {
                    debug!(
                        submitted = report.submitted,
                        discarded = report.discarded,
                        bad = report.bad,
                        deferred = report.deferred,
                        "spool pass"
                    );
                }
                Ok(_) => {}
                Err(EdgeError::ShuttingDown) => break,
                Err(e) => error!(spool = %self.dir.display(), error = %e, "spool pass failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Submits every complete capture in the folder once.
    pub async fn scan_once(&mut self, agent: &Agent) -> Result<SpoolReport, EdgeError> {
        self.scan(agent, None).await
    }

    /// One pass; stops between captures once `cancel` fires.
    async fn scan(
        &mut self,
        agent: &Agent,
        cancel: Option<&CancellationToken>,
    ) -> Result<SpoolReport, EdgeError> {
        let dir = self.dir.clone();
        let found = tokio::task::spawn_blocking(move || {
            finish_done(&dir)?;
            list(&dir)
        })
        .await??;
        let mut report = SpoolReport::default();
        let now = Instant::now();
        self.retry_at.retain(|_, at| *at > now);
        for capture in found {
            if cancel.is_some_and(|c| c.is_cancelled()) {
                break;
            }
            let key = match &capture {
                Found::New { name } | Found::Claimed { name, .. } => name.clone(),
            };
            if self.retry_at.contains_key(&key) {
                report.deferred += 1;
                continue;
            }
            match self.process(agent, capture).await {
                Ok(outcome) => match outcome {
                    Outcome::Submitted => report.submitted += 1,
                    Outcome::Discarded => report.discarded += 1,
                    Outcome::Bad => report.bad += 1,
                    Outcome::Deferred => {
                        report.deferred += 1;
                        self.retry_at.insert(key, now + RETRY_AFTER);
                    }
                    Outcome::Gone => {}
                },
                Err(EdgeError::ShuttingDown) => return Err(EdgeError::ShuttingDown),
                Err(e) => {
                    warn!(capture = %key, error = %e, "spool capture left for a later pass");
                    report.deferred += 1;
                    self.retry_at.insert(key, now + RETRY_AFTER);
                }
            }
        }
        Ok(report)
    }

    async fn process(&self, agent: &Agent, found: Found) -> Result<Outcome, EdgeError> {
        let dir = self.dir.clone();
        let (name, claim) = match found {
            Found::Claimed { name, id } => {
                let claim = dir.join(format!("{name}.{id}{CLAIM_SUFFIX}"));
                (name, Some((id, claim)))
            }
            Found::New { name } => (name, None),
        };
        let source = match &claim {
            Some((_, path)) => path.clone(),
            None => dir.join(format!("{name}{SIDECAR_SUFFIX}")),
        };
        let claimed = claim.is_some();
        let read_from = source.clone();
        let read_dir = dir.clone();
        let loaded =
            tokio::task::spawn_blocking(move || load(&read_dir, &read_from, claimed)).await?;
        let (sidecar, frames) = match loaded {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Ok(Outcome::Gone), // taken away meanwhile
            Err(e) if e.is_capture_fault() => {
                self.move_to_bad(&name, &source, &[], &e).await?;
                return Ok(Outcome::Bad);
            }
            Err(e) => return Err(e),
        };
        let frame_files: Vec<PathBuf> = sidecar.frames.iter().map(|f| dir.join(&f.file)).collect();
        let (id, claim_path) = match claim {
            Some(claim) => claim,
            None => {
                let id = EventId::new_v7();
                let claim = dir.join(format!("{name}.{id}{CLAIM_SUFFIX}"));
                let (from, to, spool) = (source.clone(), claim.clone(), dir.clone());
                tokio::task::spawn_blocking(move || {
                    fs::rename(&from, &to)?;
                    sync_dir(&spool)
                })
                .await?
                .map_err(EdgeError::io(format!("claiming capture {name}")))?;
                (id, claim)
            }
        };
        let capture = Capture {
            captured_at: sidecar.captured_at,
            clock_source: sidecar.clock_source,
            clock_offset_ms: sidecar.clock_offset_ms,
            kind: sidecar.kind,
            measurement: sidecar.measurement,
            lane: sidecar.lane,
            plate_read: sidecar.plate_read,
            frames: sidecar.frames.iter().map(|f| f.role).zip(frames).collect(),
        };
        let outcome = match agent.submit_as(id, capture).await {
            Ok(_) => Outcome::Submitted,
            Err(EdgeError::BelowLimit { .. }) => Outcome::Discarded,
            Err(e) if e.is_capture_fault() => {
                self.move_to_bad(&name, &claim_path, &frame_files, &e)
                    .await?;
                return Ok(Outcome::Bad);
            }
            Err(e @ EdgeError::NoSpeedLimit { .. }) => {
                warn!(capture = %name, error = %e, "capture waits for a speed limit from the server config");
                return Ok(Outcome::Deferred);
            }
            Err(e) => return Err(e),
        };
        // Marked done first, then the frames, the marker last.
        let (spool, done) = (
            self.dir.clone(),
            self.dir.join(format!("{name}.{id}{DONE_SUFFIX}")),
        );
        tokio::task::spawn_blocking(move || {
            match fs::rename(&claim_path, &done) {
                // The claim taken away meanwhile: the event is in the outbox all the
                // same, and its frames go.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                other => {
                    other?;
                    // Dated now: a frame of the same name written after this (the
                    // firmware reusing it) is newer, and a restart leaves it alone.
                    crate::outbox::set_aside_now(&done)?;
                    sync_dir(&spool)?;
                }
            }
            for file in frame_files.iter().chain([&done]) {
                remove_if_exists(file)?;
            }
            Ok::<_, io::Error>(())
        })
        .await?
        .map_err(EdgeError::io(format!("removing submitted capture {name}")))?;
        Ok(outcome)
    }

    async fn move_to_bad(
        &self,
        name: &str,
        sidecar: &Path,
        frames: &[PathBuf],
        why: &EdgeError,
    ) -> Result<(), EdgeError> {
        warn!(capture = %name, error = %why, "capture moved to spool/bad");
        let bad = self.bad_dir.clone();
        let name = name.to_owned();
        let sidecar = sidecar.to_owned();
        let frames = frames.to_vec();
        let message = format!("{why}\n");
        let spool = self.dir.clone();
        let limit = self.bad_limit_bytes;
        tokio::task::spawn_blocking(move || {
            fs::write(bad.join(format!("{name}{SIDECAR_SUFFIX}.error")), message)?;
            let frames = if frames.is_empty() {
                frame_files_hint(&sidecar)
                    .into_iter()
                    .map(|f| spool.join(f))
                    .collect()
            } else {
                frames
            };
            let mut moved = Vec::with_capacity(frames.len() + 1);
            for file in frames {
                if let Some(file_name) = file.file_name() {
                    moved.push((file.clone(), bad.join(file_name)));
                }
            }
            moved.push((sidecar, bad.join(format!("{name}{SIDECAR_SUFFIX}"))));
            for (from, to) in moved {
                if rename_if_exists(&from, &to)? {
                    crate::outbox::set_aside_now(&to)?;
                }
            }
            crate::outbox::keep_newest(&bad, limit)
        })
        .await?
        .map_err(EdgeError::io("moving a capture to spool/bad"))
    }
}

enum Outcome {
    Submitted,
    Discarded,
    Bad,
    Deferred,
    Gone,
}

/// Lists claimed captures (first: they were interrupted) and new sidecars, by name.
fn list(dir: &Path) -> Result<Vec<Found>, EdgeError> {
    let mut claimed = Vec::new();
    let mut new = Vec::new();
    let listing = fs::read_dir(dir).map_err(EdgeError::io(format!("reading {}", dir.display())))?;
    for item in listing {
        let item = item.map_err(EdgeError::io(format!("reading {}", dir.display())))?;
        let file_name = item.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(stem) = file_name.strip_suffix(CLAIM_SUFFIX) {
            let parsed = stem
                .rsplit_once('.')
                .and_then(|(name, id)| Some((name.to_owned(), id.parse::<EventId>().ok()?)));
            if let Some((name, id)) = parsed {
                claimed.push(Found::Claimed { name, id });
            }
        } else if let Some(name) = file_name.strip_suffix(SIDECAR_SUFFIX) {
            if !name.is_empty() && item.file_type().is_ok_and(|t| t.is_file()) {
                new.push(Found::New {
                    name: name.to_owned(),
                });
            }
        }
    }
    let name = |f: &Found| match f {
        Found::New { name } | Found::Claimed { name, .. } => name.clone(),
    };
    claimed.sort_by_key(name);
    new.sort_by_key(name);
    claimed.extend(new);
    Ok(claimed)
}

/// Reads a sidecar and its frames; `Ok(None)` if the sidecar vanished, or is being
/// written still.
fn load(dir: &Path, sidecar: &Path, claimed: bool) -> Result<Option<Loaded>, EdgeError> {
    let meta = match fs::metadata(sidecar) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EdgeError::io(format!("reading {}", sidecar.display()))(e)),
    };
    if meta.len() > MAX_SIDECAR_BYTES {
        return Err(EdgeError::Sidecar(format!(
            "sidecar is {} bytes, above {MAX_SIDECAR_BYTES}",
            meta.len()
        )));
    }
    let json =
        fs::read(sidecar).map_err(EdgeError::io(format!("reading {}", sidecar.display())))?;
    let sidecar = match Sidecar::parse(&json) {
        Ok(sidecar) => sidecar,
        // Firmware that writes `NAME.json` in place (not through a `.tmp` rename) may
        // still be writing it: JSON cut short is left for a later pass until it has
        // been quiet a while.
        Err(_) if !claimed && cut_short(&json) && still_being_written(&meta) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut frames = Vec::with_capacity(sidecar.frames.len());
    // Sized before they are read: a frame file far larger than an envelope can carry
    // (a video dropped in the spool) must not be read into memory to find that out.
    let mut total: u64 = 0;
    for frame in &sidecar.frames {
        if let Ok(meta) = fs::metadata(dir.join(&frame.file)) {
            total = total.saturating_add(meta.len());
        }
    }
    if total > MAX_ENVELOPE_BYTES as u64 {
        return Err(EdgeError::Sidecar(format!(
            "the frames are {total} bytes: an envelope carries at most {MAX_ENVELOPE_BYTES}"
        )));
    }
    for frame in &sidecar.frames {
        let path = dir.join(&frame.file);
        match fs::read(&path) {
            Ok(bytes) => frames.push(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(EdgeError::Sidecar(format!(
                    "frame file `{}` is missing{}",
                    frame.file,
                    if claimed {
                        " (the capture was claimed, not submitted: another capture named \
                         the same file, or it was deleted)"
                    } else {
                        ""
                    }
                )));
            }
            Err(e) => return Err(EdgeError::io(format!("reading {}", path.display()))(e)),
        }
    }
    Ok(Some((sidecar, frames)))
}

/// Whether `json` ends before its value does (empty, or cut off mid-way).
fn cut_short(json: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(json).is_err_and(|e| e.is_eof())
}

/// Whether a sidecar changed so recently that its writer may not be done with it; one
/// dated ahead of the clock (stepped back since, by NTP at boot) counts as recent
/// within an hour.
fn still_being_written(meta: &fs::Metadata) -> bool {
    meta.modified().is_ok_and(|at| match at.elapsed() {
        Ok(quiet) => quiet < SIDECAR_SETTLE,
        Err(ahead) => ahead.duration() < Duration::from_secs(3600),
    })
}

/// The frame files a sidecar names, read as leniently as possible, so that the JPEGs
/// of a sidecar that fails its checks move to `bad/` with it.
fn frame_files_hint(sidecar: &Path) -> Vec<String> {
    let Ok(json) = fs::read(sidecar) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return Vec::new();
    };
    value
        .get("frames")
        .and_then(|f| f.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("file")?.as_str())
        .filter(|f| is_plain_file_name(f))
        .map(str::to_owned)
        .collect()
}

/// Finishes the removal of captures submitted before a crash: the frames each
/// `NAME.<event-id>.done` marker names that are no newer than it (a name the firmware
/// reused since is another capture's), then the marker. A marker that cannot be
/// finished is logged and left for the next pass; the others go on.
fn finish_done(dir: &Path) -> Result<(), EdgeError> {
    let listing = fs::read_dir(dir).map_err(EdgeError::io(format!("reading {}", dir.display())))?;
    for item in listing {
        let item = item.map_err(EdgeError::io(format!("reading {}", dir.display())))?;
        let is_marker = item.file_name().to_str().is_some_and(|name| {
            name.strip_suffix(DONE_SUFFIX)
                .and_then(|stem| stem.rsplit_once('.'))
                .is_some_and(|(_, id)| id.parse::<EventId>().is_ok())
        }) && item.file_type().is_ok_and(|t| t.is_file());
        if !is_marker {
            continue;
        }
        let marker = item.path();
        if let Err(e) = finish_marker(dir, &marker) {
            warn!(marker = %marker.display(), error = %e, "a submitted capture's files not removed; tried again on the next pass");
        } else {
            info!(marker = %marker.display(), "finished removing a capture submitted before a restart");
        }
    }
    Ok(())
}

fn finish_marker(dir: &Path, marker: &Path) -> io::Result<()> {
    let marked = fs::metadata(marker)?.modified()?;
    for file in frame_files_hint(marker) {
        let frame = dir.join(file);
        match fs::metadata(&frame).and_then(|m| m.modified()) {
            Ok(written) if written <= marked => remove_if_exists(&frame)?,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    remove_if_exists(marker)
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Renames `from` to `to`; whether there was a file to rename.
fn rename_if_exists(from: &Path, to: &Path) -> io::Result<bool> {
    match fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_too_large_for_an_envelope_are_refused_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sidecar = dir.path().join("a.json");
        fs::write(
            &sidecar,
            br#"{"captured_at":"2026-05-01T08:30:00Z","clock_source":"gnss","kind":"speeding",
                "frames":[{"file":"a-overview.jpg","role":"overview"}]}"#,
        )
        .expect("sidecar");
        let video = fs::File::create(dir.path().join("a-overview.jpg")).expect("frame");
        video
            .set_len(MAX_ENVELOPE_BYTES as u64 + 1)
            .expect("a sparse file");
        match load(dir.path(), &sidecar, false) {
            Err(EdgeError::Sidecar(why)) => assert!(why.contains("at most"), "{why}"),
            other => panic!("{:?}", other.map(|l| l.is_some())),
        }
    }

    #[test]
    fn sidecar_parsing() {
        let good = br#"{"captured_at":"2026-05-01T08:30:00.250+06:00","clock_source":"gnss",
            "clock_offset_ms":-3,"kind":"speeding","measurement":{"speed_kmh":97},
            "lane":2,"plate_read":{"text":"01123ABC","confidence_milli":930,"country":"KG"},
            "frames":[{"file":"a-overview.jpg","role":"overview"},{"file":"a-plate.jpg","role":"plate"}]}"#;
        let sidecar = Sidecar::parse(good).expect("good sidecar");
        assert_eq!(sidecar.captured_at.timestamp_millis(), 1_777_602_600_250);
        assert_eq!(sidecar.measurement.speed_kmh, Some(97));
        assert_eq!(sidecar.frames[1].role, FrameRole::Plate);
        let bad: [&[u8]; 5] = [
            b"{",
            br#"{"captured_at":"2026-05-01T08:30:00Z","clock_source":"gnss","kind":"speeding","frames":[]}"#,
            br#"{"captured_at":"2026-05-01T08:30:00Z","clock_source":"gnss","kind":"speeding","frames":[{"file":"../etc/passwd","role":"overview"}]}"#,
            br#"{"captured_at":"2026-05-01T08:30:00Z","clock_source":"sundial","kind":"speeding","frames":[{"file":"a.jpg","role":"overview"}]}"#,
            br#"{"captured_at":"2026-05-01T08:30:00Z","clock_source":"gnss","kind":"speeding","extra":1,"frames":[{"file":"a.jpg","role":"overview"}]}"#,
        ];
        for json in bad {
            assert!(
                Sidecar::parse(json).is_err(),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }
}
