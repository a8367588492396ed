//! The audit log's hash chain. Each batch of audit rows is one chain: the first row's
//! `prev_hash` is SHA-256 of the batch id (its hyphenated lower-case text), and every
//! row's `hash` is SHA-256(`prev_hash` || the row's canonical text). The canonical text
//! is a JSON array, so no field value can be mistaken for a separator.

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Action of the audit row written for every case ingest creates.
pub const CASE_RECEIVED: &str = "case.received";
/// Action of the audit row written when a recognizer stores its result for a case.
pub const RECOGNITION_COMPLETED: &str = "case.recognition_completed";
/// Action of the audit row written when recognition gives up on a case.
pub const RECOGNITION_FAILED: &str = "case.recognition_failed";
/// Action of the audit row written with every review decision (auto-approval too).
pub const CASE_REVIEWED: &str = "case.reviewed";
/// Action of the audit row written when an owner lookup moves a case on.
pub const OWNER_LOOKED_UP: &str = "case.owner_looked_up";
/// Action of the audit row written when a resolution is issued for a case.
pub const RESOLUTION_ISSUED: &str = "case.resolution_issued";
/// Action of the audit row written when a proof of delivery of a case's resolution is
/// recorded (the first one starts the clocks and moves an `issued` case to `delivered`).
pub const RESOLUTION_DELIVERED: &str = "case.resolution_delivered";
/// Action of the audit row written when a stage hands a case to a person.
pub const CASE_SET_ASIDE: &str = "case.set_aside";

/// An audit row's content, before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow<'a> {
    pub batch_id: Uuid,
    pub case_id: Option<CaseId>,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub from_state: Option<CaseState>,
    pub to_state: Option<CaseState>,
    pub detail: Option<&'a str>,
}

impl AuditRow<'_> {
    /// The text that is hashed: version tag first, instants in unix milliseconds.
    pub fn canonical_text(&self) -> String {
        serde_json::json!([
            "kozomol-audit-v1",
            self.batch_id.to_string(),
            self.case_id.map(|id| id.0),
            self.at.timestamp_millis(),
            self.actor,
            self.action,
            self.from_state.map(CaseState::as_str),
            self.to_state.map(CaseState::as_str),
            self.detail,
        ])
        .to_string()
    }
}

/// `prev_hash` of a batch's first row.
pub fn chain_start(batch_id: Uuid) -> [u8; 32] {
    Sha256::digest(batch_id.to_string().as_bytes()).into()
}

/// The hash of `row` following `prev_hash`.
pub fn row_hash(prev_hash: &[u8; 32], row: &AuditRow<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(row.canonical_text().as_bytes());
    hasher.finalize().into()
}

/// Chains `rows` (one batch, in order): returns each row's (prev_hash, hash).
pub fn chain(batch_id: Uuid, rows: &[AuditRow<'_>]) -> Vec<([u8; 32], [u8; 32])> {
    let mut prev = chain_start(batch_id);
    rows.iter()
        .map(|row| {
            let hash = row_hash(&prev, row);
            let link = (prev, hash);
            prev = hash;
            link
        })
        .collect()
}

/// The current instant at the precision both backends keep (milliseconds), so that a
/// row's hash can be recomputed from what was stored.
pub(crate) fn now_millis() -> DateTime<Utc> {
    whole_millis(Utc::now())
}

/// `at` at the precision both backends keep.
pub(crate) fn whole_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(batch_id: Uuid, case: i64, detail: Option<&str>) -> AuditRow<'_> {
        AuditRow {
            batch_id,
            case_id: Some(CaseId(case)),
            at: DateTime::from_timestamp_millis(1_767_225_600_123).expect("valid instant"),
            actor: "ingest",
            action: CASE_RECEIVED,
            from_state: None,
            to_state: Some(CaseState::Received),
            detail,
        }
    }

    #[test]
    fn chain_links_rows_in_order() {
        let batch = Uuid::now_v7();
        let rows = [row(batch, 1, None), row(batch, 2, None)];
        let links = chain(batch, &rows);
        assert_eq!(links[0].0, chain_start(batch));
        assert_eq!(links[1].0, links[0].1);
        assert_eq!(links[1].1, row_hash(&links[0].1, &rows[1]));
        // Swapping the rows breaks the chain.
        let swapped = chain(batch, &[rows[1].clone(), rows[0].clone()]);
        assert_ne!(swapped[1].1, links[1].1);
    }

    #[test]
    fn canonical_text_separates_fields() {
        let batch = Uuid::now_v7();
        let a = row(batch, 1, Some("a\",\"b"));
        let mut b = row(batch, 1, Some("a"));
        b.actor = "ingest\",\"b";
        assert_ne!(a.canonical_text(), b.canonical_text());
    }
}
