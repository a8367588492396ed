//! The stages after review, shared by both backends: audit rows and decoding.

use chrono::{DateTime, Utc};
use kozomol_core::{
    CaseId, CaseState, Currency, Jurisdiction, Money, OwnerKind, OwnerOfRecord, OwnerOutcome,
};

use crate::audit::{CASE_SET_ASIDE, OWNER_LOOKED_UP, RESOLUTION_ISSUED};
use crate::batch::ChainedAudit;
use crate::decode;
use crate::error::corrupt;
use crate::recognition::audit_row;
use crate::{FrameLocation, NewResolution, OwnerLookupRecord, ResolutionRecord, StoreError};

/// The state an owner lookup sends its case to.
pub(crate) fn lookup_state(lookup: &OwnerLookupRecord) -> CaseState {
    match lookup.outcome {
        OwnerOutcome::Found => CaseState::OwnerFound,
        _ => CaseState::OwnerUnknown,
    }
}

/// Checks what the columns' constraints cannot say well.
pub(crate) fn check_lookup(lookup: &OwnerLookupRecord) -> Result<(), StoreError> {
    if (lookup.outcome == OwnerOutcome::Found) != lookup.owner.is_some() {
        return Err(StoreError::Invalid(
            "an owner lookup names an owner exactly when it found one".into(),
        ));
    }
    Ok(())
}

/// The lookup's audit detail names the outcome and reason, never the owner: personal
/// data stays in its own table, where every view of it can be logged.
pub(crate) fn lookup_detail(lookup: &OwnerLookupRecord) -> String {
    serde_json::json!({
        "outcome": lookup.outcome,
        "reason": lookup.reason,
        "exchange_id": lookup.exchange_id,
    })
    .to_string()
}

pub(crate) fn lookup_audit<'a>(
    lookup: &OwnerLookupRecord,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        lookup.case_id,
        OWNER_LOOKED_UP,
        Some(CaseState::Approved),
        Some(lookup_state(lookup)),
        actor,
        detail,
        at,
    )
}

pub(crate) fn resolution_detail(resolution: &NewResolution) -> String {
    serde_json::json!({
        "number": resolution.number,
        "payment_code": resolution.payment_code,
        "article": resolution.article,
        "amount_minor": resolution.amount.minor,
        "currency": resolution.amount.currency,
        "pdf_sha256": hex::encode(resolution.pdf.sha256),
        "signer": resolution.signer,
        "repeat_of": resolution.repeat_of,
    })
    .to_string()
}

pub(crate) fn resolution_audit<'a>(
    resolution: &NewResolution,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        resolution.case_id,
        RESOLUTION_ISSUED,
        Some(CaseState::OwnerFound),
        Some(CaseState::Issued),
        actor,
        detail,
        at,
    )
}

pub(crate) fn set_aside_audit<'a>(
    case_id: CaseId,
    from: CaseState,
    to: CaseState,
    actor: &'a str,
    reason: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        case_id,
        CASE_SET_ASIDE,
        Some(from),
        Some(to),
        actor,
        reason,
        at,
    )
}

/// What both stores refuse before they write a resolution.
pub(crate) fn check_resolution(resolution: &NewResolution) -> Result<(), StoreError> {
    if resolution
        .discounted
        .is_some_and(|d| d.currency != resolution.amount.currency)
    {
        return Err(StoreError::Invalid(
            "amount and discount in two currencies".into(),
        ));
    }
    Ok(())
}

pub(crate) fn actor(worker: &str) -> String {
    format!("fines:{worker}")
}

/// An owner lookup's columns (`LookupColumns`) up to its `WHERE`, in both backends. A
/// macro because `query()` takes only `&'static str`.
macro_rules! lookup_select {
    () => {
        "SELECT case_id, outcome, owner_kind, owner_id, owner_name, owner_address, \
         vehicle, registry_owner, reason, exchange_id, looked_up_at FROM owner_lookups "
    };
}
pub(crate) use lookup_select;

/// An owner lookup's columns as read.
pub(crate) struct LookupColumns {
    pub case_id: i64,
    pub outcome: String,
    pub owner_kind: Option<String>,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    pub owner_address: Option<String>,
    pub vehicle: serde_json::Value,
    pub registry_owner: Option<serde_json::Value>,
    pub reason: Option<String>,
    pub exchange_id: Option<String>,
    pub looked_up_at: DateTime<Utc>,
}

impl LookupColumns {
    pub(crate) fn record(self) -> Result<OwnerLookupRecord, StoreError> {
        let outcome = OwnerOutcome::parse(&self.outcome)
            .ok_or_else(|| corrupt(format!("owner lookup outcome `{}`", self.outcome)))?;
        let owner = match (self.owner_kind, self.owner_id) {
            (Some(kind), Some(id)) => Some(OwnerOfRecord {
                kind: OwnerKind::parse(&kind)
                    .ok_or_else(|| corrupt(format!("owner kind `{kind}`")))?,
                id,
                name: self.owner_name.unwrap_or_default(),
                address: self.owner_address,
            }),
            _ => None,
        };
        Ok(OwnerLookupRecord {
            case_id: CaseId(self.case_id),
            outcome,
            owner,
            vehicle: self.vehicle,
            registry_owner: self.registry_owner.unwrap_or(serde_json::Value::Null),
            reason: self.reason,
            exchange_id: self.exchange_id,
            looked_up_at: self.looked_up_at,
        })
    }
}

/// A resolution's columns as read.
pub(crate) struct ResolutionColumns {
    pub number: String,
    pub case_id: i64,
    pub payment_code: String,
    pub jurisdiction: String,
    pub article: String,
    pub units: i64,
    pub amount_minor: i64,
    pub discounted_minor: Option<i64>,
    pub currency: String,
    pub issued_at: DateTime<Utc>,
    pub pdf_sha256: Vec<u8>,
    pub pdf_location: FrameLocation,
    pub signature: Vec<u8>,
    pub signature_key_id: String,
    pub signer: String,
    pub delivered_at: Option<DateTime<Utc>>,
    pub delivered_via: Option<String>,
    pub repeat_of: Option<String>,
}

impl ResolutionColumns {
    pub(crate) fn record(self) -> Result<ResolutionRecord, StoreError> {
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|_| corrupt(format!("currency `{}`", self.currency)))?;
        let jurisdiction: Jurisdiction = self
            .jurisdiction
            .parse()
            .map_err(|_| corrupt(format!("jurisdiction `{}`", self.jurisdiction)))?;
        Ok(ResolutionRecord {
            number: self.number,
            case_id: CaseId(self.case_id),
            payment_code: self.payment_code,
            jurisdiction,
            article: self.article,
            units: u32::try_from(self.units)
                .map_err(|_| corrupt(format!("units {}", self.units)))?,
            amount: Money::new(self.amount_minor, currency),
            discounted: self.discounted_minor.map(|m| Money::new(m, currency)),
            issued_at: self.issued_at,
            pdf_sha256: decode::hash32(&self.pdf_sha256, "resolution pdf hash")?,
            pdf_location: self.pdf_location,
            signature: self.signature,
            signature_key_id: self.signature_key_id,
            signer: self.signer,
            delivered_at: self.delivered_at,
            delivered_via: self
                .delivered_via
                .as_deref()
                .map(crate::delivery::channel)
                .transpose()?,
            repeat_of: self.repeat_of,
        })
    }
}
