//! Review decisions, shared by both backends: the audit row each one writes and the
//! decoding of stored rows.

use chrono::{DateTime, Utc};

use crate::audit::CASE_REVIEWED;
use crate::batch::ChainedAudit;
use crate::decode;
use crate::error::corrupt;
use crate::recognition::audit_row;
use crate::{NewReview, ReviewRecord, StoreError};

/// The audit row's detail: what was decided, so that the log alone tells the story.
pub(crate) fn detail(review: &NewReview) -> String {
    serde_json::json!({
        "tier": review.tier,
        "decision": review.decision,
        "reason": review.reason,
        "plate": review.plate,
        "note": review.note,
    })
    .to_string()
}

pub(crate) fn audit<'a>(
    review: &'a NewReview,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        review.case_id,
        CASE_REVIEWED,
        Some(review.from_state),
        Some(review.to_state),
        &review.reviewer,
        detail,
        at,
    )
}

/// A stored review's columns, decoded.
pub(crate) struct ReviewColumns {
    pub id: i64,
    pub case_id: i64,
    pub tier: String,
    pub reviewer: String,
    pub decision: String,
    pub reason: Option<String>,
    pub plate: Option<String>,
    pub note: Option<String>,
    pub from_state: String,
    pub to_state: String,
    pub decided_at: DateTime<Utc>,
}

/// A review's tier, decision or reason code, as stored.
fn parse<T: std::str::FromStr<Err = kozomol_core::CoreError>>(text: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|e: kozomol_core::CoreError| corrupt(e.to_string()))
}

impl ReviewColumns {
    pub(crate) fn record(self) -> Result<ReviewRecord, StoreError> {
        Ok(ReviewRecord {
            id: self.id,
            case_id: kozomol_core::CaseId(self.case_id),
            tier: parse(&self.tier)?,
            reviewer: self.reviewer,
            decision: parse(&self.decision)?,
            reason: self.reason.as_deref().map(parse).transpose()?,
            plate: self.plate,
            note: self.note,
            from_state: decode::state(&self.from_state)?,
            to_state: decode::state(&self.to_state)?,
            decided_at: self.decided_at,
        })
    }
}
