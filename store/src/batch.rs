//! What `record_cases` decides in memory, shared by both backends: which rows of a
//! batch are candidates for insertion, how each input row is answered once the
//! database has said which candidates it took, and which frame, blob and audit rows
//! the created cases need.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState};
use uuid::Uuid;

use crate::audit::{self, AuditRow, CASE_RECEIVED};
use crate::error::corrupt;
use crate::{CaseWrite, FrameLocation, NewCase, StoreError};

/// A case's identity for dedupe: (camera, event id).
pub(crate) type CaseKey = (String, Uuid);

pub(crate) fn key_of(case: &NewCase) -> CaseKey {
    (case.camera_id.as_str().to_owned(), case.event_id.0)
}

pub(crate) struct BatchPlan {
    /// Input indices of the first occurrence of each key, sorted by key so that
    /// concurrent writers meet each other's rows in one order (no deadlocks).
    pub(crate) candidates: Vec<usize>,
    /// For every input row, the input index of its key's first occurrence.
    first_of: Vec<usize>,
}

impl BatchPlan {
    pub(crate) fn new(cases: &[NewCase]) -> Self {
        let mut first: HashMap<(&str, Uuid), usize> = HashMap::with_capacity(cases.len());
        let first_of = cases
            .iter()
            .enumerate()
            .map(|(i, case)| {
                *first
                    .entry((case.camera_id.as_str(), case.event_id.0))
                    .or_insert(i)
            })
            .collect();
        let mut candidates: Vec<usize> = first.into_values().collect();
        candidates.sort_by(|&a, &b| {
            (cases[a].camera_id.as_str(), cases[a].event_id.0)
                .cmp(&(cases[b].camera_id.as_str(), cases[b].event_id.0))
        });
        BatchPlan {
            candidates,
            first_of,
        }
    }

    /// Candidates the insert did not take: their keys exist already.
    pub(crate) fn not_created<'a>(
        &'a self,
        cases: &'a [NewCase],
        created: &'a HashMap<CaseKey, CaseId>,
    ) -> impl Iterator<Item = &'a NewCase> + 'a {
        self.candidates
            .iter()
            .map(move |&i| &cases[i])
            .filter(move |case| !created.contains_key(&key_of(case)))
    }

    /// The answer for every input row, in input order. `existing` holds the stored
    /// (id, fingerprint) of every candidate key that was not created.
    pub(crate) fn resolve(
        &self,
        cases: &[NewCase],
        created: &HashMap<CaseKey, CaseId>,
        existing: &HashMap<CaseKey, (CaseId, [u8; 32])>,
    ) -> Result<Vec<CaseWrite>, StoreError> {
        cases
            .iter()
            .enumerate()
            .map(|(i, case)| {
                let first = self.first_of[i];
                let key = key_of(case);
                let stored = match created.get(&key) {
                    Some(&id) if first == i => return Ok(CaseWrite::Created(id)),
                    Some(&id) => (id, cases[first].fingerprint),
                    None => *existing.get(&key).ok_or_else(|| {
                        corrupt(format!(
                            "case {} from {} was neither inserted nor found",
                            case.event_id, case.camera_id
                        ))
                    })?,
                };
                Ok(if stored.1 == case.fingerprint {
                    CaseWrite::Duplicate(stored.0)
                } else {
                    CaseWrite::Conflict(stored.0)
                })
            })
            .collect()
    }
}

/// The rows that go with the cases a batch created.
pub(crate) struct CreatedRows<'a> {
    /// Every frame's hash and location, the same bytes stored twice included (their
    /// second copies are recorded from it).
    pub(crate) stored: Vec<(&'a [u8; 32], &'a FrameLocation)>,
    /// The frames of the events that made no case (duplicates, conflicting ones too):
    /// their bytes, stored again, are recorded as copies where a blob holds them, never
    /// as blobs, and queued for overwriting where none does.
    pub(crate) unkept: Vec<(&'a [u8; 32], &'a FrameLocation)>,
    /// (case, index from 0, role, hash).
    pub(crate) frames: Vec<(CaseId, i32, &'static str, &'a [u8; 32])>,
    pub(crate) audit: Vec<ChainedAudit<'a>>,
}

pub(crate) struct ChainedAudit<'a> {
    pub(crate) row: AuditRow<'a>,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) hash: [u8; 32],
}

impl<'a> CreatedRows<'a> {
    pub(crate) fn new(
        cases: &'a [NewCase],
        created: &HashMap<CaseKey, CaseId>,
        actor: &'a str,
        at: DateTime<Utc>,
    ) -> Self {
        // The first event of each created key made its case; every other event made
        // none (a repeat of a case recorded before, or inside the batch, a conflicting
        // one too).
        let mut made: Vec<(CaseId, &'a NewCase)> = Vec::new();
        let mut unkept = Vec::new();
        let mut firsts = HashSet::with_capacity(created.len());
        for case in cases {
            match created.get(&key_of(case)) {
                Some(&id) if firsts.insert(id) => made.push((id, case)),
                _ => unkept.extend(case.frames.iter().map(|f| (&f.sha256, &f.location))),
            }
        }
        // Cases in id order: the audit chain follows the order the ids were given.
        made.sort_by_key(|(id, _)| *id);

        let stored: Vec<(&'a [u8; 32], &'a FrameLocation)> = made
            .iter()
            .flat_map(|(_, case)| case.frames.iter().map(|f| (&f.sha256, &f.location)))
            .collect();

        let frames = made
            .iter()
            .flat_map(|&(id, case)| {
                case.frames.iter().enumerate().map(move |(idx, f)| {
                    let idx = i32::try_from(idx).expect("an event carries a handful of frames");
                    (id, idx, f.role.as_str(), &f.sha256)
                })
            })
            .collect();

        let batch_id = Uuid::now_v7();
        let rows: Vec<AuditRow<'a>> = made
            .iter()
            .map(|&(id, _)| AuditRow {
                batch_id,
                case_id: Some(id),
                at,
                actor,
                action: CASE_RECEIVED,
                from_state: None,
                to_state: Some(CaseState::Received),
                detail: None,
            })
            .collect();
        let links = audit::chain(batch_id, &rows);
        let audit = rows
            .into_iter()
            .zip(links)
            .map(|(row, (prev_hash, hash))| ChainedAudit {
                row,
                prev_hash,
                hash,
            })
            .collect();

        CreatedRows {
            stored,
            unkept,
            frames,
            audit,
        }
    }
}

/// Distinct camera ids of a batch, sorted.
pub(crate) fn cameras_of(cases: &[NewCase]) -> Vec<&str> {
    let mut ids: Vec<&str> = cases.iter().map(|c| c.camera_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The first of `cameras` (sorted) that is not among `registered`.
pub(crate) fn first_unregistered(cameras: &[&str], registered: &[String]) -> Option<String> {
    let registered: std::collections::HashSet<&str> =
        registered.iter().map(String::as_str).collect();
    cameras
        .iter()
        .find(|id| !registered.contains(**id))
        .map(|id| (*id).to_owned())
}

/// Rows per multi-row statement so that `columns` binds per row stay within `max_binds`.
pub(crate) fn rows_per_statement(columns: usize, max_binds: usize, cap: usize) -> usize {
    (max_binds / columns).clamp(1, cap)
}
