//! What the recognition queue decides in memory, shared by both backends: lease
//! arithmetic, the audit rows of a decision, the JSON kept for confidences and
//! candidates, and turning the columns both backends read into jobs and records.
//!
//! The SQL spells the queue's states as literals (`'received'`, `'needs_review'`) so
//! that PostgreSQL's partial index over `state = 'received'` serves even a generic
//! plan; the tests below keep those literals equal to the states' names.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kozomol_core::{CameraId, CaseId, CaseState, PlateRead};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::audit::{self, AuditRow, RECOGNITION_COMPLETED, RECOGNITION_FAILED};
use crate::batch::ChainedAudit;
use crate::error::corrupt;
use crate::{
    decode, CameraPlateRead, CaseFrame, EvidenceRef, FrameLocation, PlateBox, RecognitionDecision,
    RecognitionJob, RecognitionOutcome, RecognitionRecord, StoreError,
};

/// The longest lease or retry delay honoured. Longer ones are configuration mistakes,
/// and capping them keeps the databases' instant arithmetic far from overflow.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// `delay` in whole milliseconds, capped at `MAX_DELAY`.
pub(crate) fn delay_millis(delay: Duration) -> i64 {
    i64::try_from(delay.min(MAX_DELAY).as_millis()).expect("a year of milliseconds fits in i64")
}

/// The audit actor of a recognizer worker.
pub(crate) fn actor(worker: &str) -> String {
    format!("recognizer:{worker}")
}

/// One audit row, chained on its own: every decision is a batch of one.
pub(crate) fn chained(row: AuditRow<'_>) -> ChainedAudit<'_> {
    let prev_hash = audit::chain_start(row.batch_id);
    let hash = audit::row_hash(&prev_hash, &row);
    ChainedAudit {
        row,
        prev_hash,
        hash,
    }
}

/// One audit row of a case (or of no case), chained on its own.
pub(crate) fn audit_row<'a>(
    case_id: impl Into<Option<CaseId>>,
    action: &'a str,
    from_state: Option<CaseState>,
    to_state: Option<CaseState>,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    chained(AuditRow {
        batch_id: Uuid::now_v7(),
        case_id: case_id.into(),
        at,
        actor,
        action,
        from_state,
        to_state,
        detail: Some(detail),
    })
}

/// The audit row of a completed recognition; `detail` says what was read, so that the
/// log alone tells why the case went where it went.
pub(crate) fn completed_audit<'a>(
    case_id: CaseId,
    actor: &'a str,
    decision: RecognitionDecision,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        case_id,
        RECOGNITION_COMPLETED,
        Some(CaseState::Received),
        Some(decision.state()),
        actor,
        detail,
        at,
    )
}

/// The audit row of a recognition given up on; `detail` is the last error.
pub(crate) fn failed_audit<'a>(
    case_id: CaseId,
    actor: &'a str,
    error: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        case_id,
        RECOGNITION_FAILED,
        Some(CaseState::Received),
        Some(CaseState::NeedsReview),
        actor,
        error,
        at,
    )
}

pub(crate) fn completed_detail(outcome: &RecognitionOutcome) -> String {
    match &outcome.plate {
        Some(read) => format!(
            "plate {} ({}/1000) by {}",
            read.text, read.confidence_milli, outcome.model
        ),
        None => format!("no plate read by {}", outcome.model),
    }
}

/// JSON text of what the store itself builds; plain data always serialises.
pub(crate) fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("numbers and plate reads serialise to JSON")
}

fn from_json<T: DeserializeOwned>(raw: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(format!("{what}: {e}")))
}

/// The outcome's column values that need converting before binding.
pub(crate) struct OutcomeColumns {
    pub(crate) confidence_milli: Option<i64>,
    pub(crate) char_confidences: String,
    pub(crate) candidates: String,
    /// frame index, x, y, w, h.
    pub(crate) plate_box: [Option<i64>; 5],
    pub(crate) detail: String,
}

impl OutcomeColumns {
    pub(crate) fn new(outcome: &RecognitionOutcome) -> Self {
        let b = outcome.plate_box;
        OutcomeColumns {
            confidence_milli: outcome
                .plate
                .as_ref()
                .map(|p| i64::from(p.confidence_milli)),
            char_confidences: json_text(&outcome.char_confidences_milli),
            candidates: json_text(&outcome.candidates),
            plate_box: [
                b.map(|b| i64::from(b.frame_index)),
                b.map(|b| i64::from(b.x)),
                b.map(|b| i64::from(b.y)),
                b.map(|b| i64::from(b.w)),
                b.map(|b| i64::from(b.h)),
            ],
            detail: completed_detail(outcome),
        }
    }
}

/// The columns of the camera's read, as both backends select them.
pub(crate) struct CameraReadColumns {
    pub(crate) text: Option<String>,
    pub(crate) confidence_milli: Option<i64>,
    pub(crate) country: Option<String>,
}

impl CameraReadColumns {
    fn decode(self) -> Result<Option<CameraPlateRead>, StoreError> {
        let Some(text) = self.text else {
            return Ok(None);
        };
        let confidence_milli = self
            .confidence_milli
            .map(|c| {
                u16::try_from(c).map_err(|_| corrupt(format!("camera confidence {c} out of range")))
            })
            .transpose()?;
        Ok(Some(CameraPlateRead {
            text,
            confidence_milli,
            country: self.country,
        }))
    }
}

/// A case row a claim updated.
pub(crate) struct ClaimedRow {
    pub(crate) id: i64,
    pub(crate) camera_id: String,
    pub(crate) camera_read: CameraReadColumns,
    pub(crate) attempts: i64,
    pub(crate) leased_until: DateTime<Utc>,
    pub(crate) last_error: Option<String>,
}

/// The jobs of the claimed rows, by case id, each with its frames (given by case id,
/// in index order).
pub(crate) fn jobs(
    mut rows: Vec<ClaimedRow>,
    frames: Vec<(i64, CaseFrame)>,
) -> Result<Vec<RecognitionJob>, StoreError> {
    // RETURNING gives rows in no promised order; the queue's order is by id.
    rows.sort_by_key(|r| r.id);
    let mut by_case: HashMap<i64, Vec<CaseFrame>> = HashMap::with_capacity(rows.len());
    for (case_id, frame) in frames {
        by_case.entry(case_id).or_default().push(frame);
    }
    rows.into_iter()
        .map(|row| {
            Ok(RecognitionJob {
                case_id: CaseId(row.id),
                camera_id: CameraId::parse(&row.camera_id)
                    .map_err(|e| corrupt(format!("camera id: {e}")))?,
                camera_read: row.camera_read.decode()?,
                frames: by_case.remove(&row.id).unwrap_or_default(),
                attempt: decode::u32_of(row.attempts, "recognition attempts")?,
                leased_until: row.leased_until,
                last_error: row.last_error,
            })
        })
        .collect()
}

/// A `recognitions` row with the crop's location, as both backends read it.
pub(crate) struct RecordRow {
    pub(crate) case_id: i64,
    pub(crate) decision: String,
    pub(crate) worker: String,
    pub(crate) attempts: i64,
    pub(crate) decided_at: DateTime<Utc>,
    pub(crate) plate: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) confidence_milli: Option<i64>,
    pub(crate) char_confidences: String,
    pub(crate) candidates: String,
    pub(crate) plate_box: [Option<i64>; 5],
    pub(crate) crop_sha256: Option<Vec<u8>>,
    /// segment, byte offset, byte length: present when the crop's blob row is.
    pub(crate) crop_location: (Option<String>, Option<i64>, Option<i64>),
    pub(crate) model: Option<String>,
    pub(crate) camera_read: CameraReadColumns,
    pub(crate) agreement: Option<bool>,
    pub(crate) error: Option<String>,
}

fn u16_of(raw: i64, what: &str) -> Result<u16, StoreError> {
    u16::try_from(raw).map_err(|_| corrupt(format!("{what} {raw} out of range")))
}

impl RecordRow {
    pub(crate) fn decode(self) -> Result<RecognitionRecord, StoreError> {
        let decision = match decode::state(&self.decision)? {
            CaseState::Recognized => RecognitionDecision::Recognized,
            CaseState::NeedsReview => RecognitionDecision::NeedsReview,
            other => return Err(corrupt(format!("recognition decision `{other}`"))),
        };
        let plate = match (self.plate, self.confidence_milli) {
            (Some(text), Some(confidence)) => Some(PlateRead {
                text,
                confidence_milli: u16_of(confidence, "plate confidence")?,
                country: self.country,
            }),
            (None, None) => None,
            _ => return Err(corrupt("plate text and confidence stored apart")),
        };
        let plate_box = match self.plate_box {
            [Some(frame_index), Some(x), Some(y), Some(w), Some(h)] => Some(PlateBox {
                frame_index: decode::u32_of(frame_index, "box frame")?,
                x: decode::u32_of(x, "box x")?,
                y: decode::u32_of(y, "box y")?,
                w: decode::u32_of(w, "box width")?,
                h: decode::u32_of(h, "box height")?,
            }),
            [None, None, None, None, None] => None,
            _ => return Err(corrupt("plate box stored in part")),
        };
        let crop = match (self.crop_sha256, self.crop_location) {
            (None, _) => None,
            (Some(sha), (Some(segment), Some(offset), Some(len))) => Some(EvidenceRef {
                sha256: decode::hash32(&sha, "crop hash")?,
                location: FrameLocation {
                    segment,
                    offset: u64::try_from(offset)
                        .map_err(|_| corrupt(format!("offset {offset}")))?,
                    len: decode::u32_of(len, "crop length")?,
                },
            }),
            (Some(sha), _) => {
                return Err(corrupt(format!(
                    "crop {} has no evidence row",
                    hex::encode(sha)
                )))
            }
        };
        let char_confidences_milli: Vec<u16> =
            from_json(&self.char_confidences, "character confidences")?;
        Ok(RecognitionRecord {
            case_id: CaseId(self.case_id),
            decision,
            worker: self.worker,
            attempts: decode::u32_of(self.attempts, "recognition attempts")?,
            decided_at: self.decided_at,
            plate,
            char_confidences_milli,
            candidates: from_json(&self.candidates, "plate candidates")?,
            plate_box,
            crop,
            model: self.model,
            camera_read: self.camera_read.decode()?,
            agreement: self.agreement,
            error: self.error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_literals_match_the_state_names() {
        assert_eq!(CaseState::Received.as_str(), "received");
        assert_eq!(CaseState::NeedsReview.as_str(), "needs_review");
        assert_eq!(
            RecognitionDecision::Recognized.state().as_str(),
            "recognized"
        );
    }

    #[test]
    fn delays_are_capped_at_a_year() {
        assert_eq!(delay_millis(Duration::from_micros(1500)), 1);
        assert_eq!(delay_millis(Duration::MAX), delay_millis(MAX_DELAY));
    }

    #[test]
    fn a_decision_is_a_chain_of_one() {
        let at = DateTime::from_timestamp_millis(1_767_225_600_123).expect("valid instant");
        let audit = failed_audit(CaseId(7), "recognizer:w1", "frame 0 is not a JPEG", at);
        assert_eq!(audit.prev_hash, audit::chain_start(audit.row.batch_id));
        assert_eq!(audit.hash, audit::row_hash(&audit.prev_hash, &audit.row));
        assert_eq!(audit.row.to_state, Some(CaseState::NeedsReview));
    }
}
