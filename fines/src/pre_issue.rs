//! The checks before issuing, run against the store: the owner-lookup stage asks
//! [`check_case`] about each approved case before it asks the bus. The rules are
//! [`crate::checks`]; this module gathers what they look at and acts on the verdict.
//!
//! - The exemption list and the hot list are read once per batch ([`CheckLists`]).
//! - The plate's other cases are its sightings captured within [`SIGHTING_SPAN`] (or
//!   the duplicate window, if that is longer) either side of the capture. A sighting
//!   whose event names no site cannot be compared by place and is left out; a case
//!   whose own event names none is checked against the lists only.
//! - **Clone clearing**: when a supervisor approves a case that the checks sent to
//!   `supervisor_review` for a possible cloned plate, the sightings the store held at
//!   that moment (recorded at or before the approval) are taken as weighed, and do not
//!   send the case back. The rule is read from the audit, not from the set-aside's
//!   reason text: the latest `case.reviewed` row from `supervisor_review` to `approved`
//!   that follows a `case.set_aside` from `approved` to `supervisor_review` (the checks
//!   are the only stage that sets an approved case aside; see
//!   [`clone_review_cleared_at`]). A sighting recorded after the approval — a camera that
//!   delivered late, a new capture — was not weighed, and conflicts again.
//! - A hot-list hit raises an alert (once per case) and logs a warning whatever the
//!   verdict; the fine is not stopped by it.
//! - A verdict that moves the case (exempt, duplicate, supervisor review) sets it aside
//!   with the verdict's reason, under the stage's lease, and the bus is not asked.
//! - **The mark**: a case that proceeds is marked as past the checks
//!   ([`kozomol_store::PreIssueChecks::pass_checks`]) before the bus is asked. Without
//!   it, a later case let through while the earlier one was still in review, and still
//!   `approved` during its owner lookup, looks to the earlier one's checks like a case
//!   waiting for its own, and both are fined. The store reads the plate's sightings
//!   again under a per-plate lock and sets the mark only if the duplicate check still
//!   finds nothing; otherwise the case is set aside as a duplicate, as the verdict
//!   would have done.

use std::sync::OnceLock;

use chrono::{DateTime, TimeDelta, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction};
use kozomol_store::audit::{CASE_REVIEWED, CASE_SET_ASIDE};
use kozomol_store::{
    AlertKind, AlertRaised, AuditEntry, CaseRecord, ChecksPassed, CompleteResult, ExemptionRecord,
    HotListRecord, NewAlert, PlateSighting, SightingsQuery, Store, StoreError,
};
use tracing::{info, warn};

use crate::checks::{
    duplicate_of, duplicate_reason, hot_list_note, pre_issue_checks, CaseFacts, CheckInput,
    CheckOutcome, ChecksConfig, ChecksError, Coordinates, Exemption, ExemptionCategory,
    HotListEntry, HotListReason, PlatePattern, Verdict,
};

/// How far either side of a capture the plate's other sightings are read.
pub const SIGHTING_SPAN: TimeDelta = TimeDelta::hours(2);

/// The lists the checks read, once per batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckLists {
    pub exemptions: Vec<Exemption>,
    pub hot_list: Vec<HotListEntry>,
}

impl CheckLists {
    /// The entries in force. An entry that no longer parses stops the pass (as
    /// `StoreError::Corrupt`): skipping an exemption could fine an exempt vehicle.
    pub async fn load(store: &dyn Store) -> Result<CheckLists, StoreError> {
        let corrupt = |e: ChecksError| StoreError::Corrupt(e.to_string());
        let exemptions = store
            .exemptions()
            .await?
            .iter()
            .map(exemption_of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let hot_list = store
            .hot_list()
            .await?
            .iter()
            .map(hot_list_entry_of)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        Ok(CheckLists {
            exemptions,
            hot_list,
        })
    }
}

/// An exemption category by its stored name.
pub fn exemption_category(name: &str) -> Option<ExemptionCategory> {
    use ExemptionCategory::*;
    [Emergency, Diplomatic, Government, Other]
        .into_iter()
        .find(|c| c.as_str() == name)
}

/// A hot-list reason by its stored name.
pub fn hot_list_reason(name: &str) -> Option<HotListReason> {
    use HotListReason::*;
    [Stolen, Wanted, Other]
        .into_iter()
        .find(|r| r.as_str() == name)
}

/// A stored exemption as the checks read it.
pub fn exemption_of(record: &ExemptionRecord) -> Result<Exemption, ChecksError> {
    let category =
        exemption_category(&record.category).ok_or_else(|| ChecksError::UnknownName {
            what: "exemption category",
            name: record.category.clone(),
        })?;
    Ok(Exemption {
        plate: PlatePattern::parse(&record.pattern)?,
        category,
        note: record.note.clone(),
        valid_from: record.valid_from,
        valid_until: record.valid_until,
    })
}

/// A stored hot-list entry as the checks read it.
pub fn hot_list_entry_of(record: &HotListRecord) -> Result<HotListEntry, ChecksError> {
    let reason = hot_list_reason(&record.reason).ok_or_else(|| ChecksError::UnknownName {
        what: "hot-list reason",
        name: record.reason.clone(),
    })?;
    Ok(HotListEntry {
        plate: record.plate.clone(),
        reason,
        note: record.note.clone(),
        listed_at: record.listed_at,
    })
}

/// A sighting as the checks compare it; none without a site.
pub fn facts_of(sighting: &PlateSighting) -> Option<CaseFacts> {
    let site = sighting.site.as_ref()?;
    Some(CaseFacts {
        case_id: sighting.case_id,
        plate: sighting.plate.clone(),
        kind: sighting.kind,
        site_id: site.id.clone(),
        position: Coordinates {
            lat_e6: site.lat_e6,
            lon_e6: site.lon_e6,
        },
        captured_at: sighting.captured_at,
        state: sighting.state,
        checks_passed: sighting.checks_passed,
    })
}

/// When a supervisor last approved the case after the checks had sent it to
/// `supervisor_review` (a clone review): the `case.reviewed` row from
/// `supervisor_review` to `approved` that follows a `case.set_aside` from `approved` to
/// `supervisor_review`, the latest such one, unless the case was sent back from
/// `owner_unknown` since. `audit` is the case's, oldest first.
pub fn clone_review_cleared_at(audit: &[AuditEntry]) -> Option<DateTime<Utc>> {
    let mut in_clone_review = false;
    let mut cleared = None;
    for row in audit {
        let moved = (row.from_state, row.to_state);
        if row.action == CASE_SET_ASIDE
            && moved == (Some(CaseState::Approved), Some(CaseState::SupervisorReview))
        {
            in_clone_review = true;
        } else if row.action == CASE_REVIEWED && row.from_state == Some(CaseState::OwnerUnknown) {
            // Sent back from `owner_unknown`, perhaps under another plate: the checks
            // start afresh, and what a supervisor cleared before clears nothing now.
            cleared = None;
            in_clone_review = false;
        } else if row.action == CASE_REVIEWED && row.from_state == Some(CaseState::SupervisorReview)
        {
            if in_clone_review && row.to_state == Some(CaseState::Approved) {
                cleared = Some(row.at);
            }
            in_clone_review = false;
        }
    }
    cleared
}

/// The sightings a supervisor weighed: those recorded at or before `cleared_at`.
pub fn cleared_sightings(sightings: &[PlateSighting], cleared_at: DateTime<Utc>) -> Vec<CaseId> {
    sightings
        .iter()
        .filter(|s| s.received_at <= cleared_at)
        .map(|s| s.case_id)
        .collect()
}

/// How the checks run inside a stage.
#[derive(Clone, Copy, Debug)]
pub struct CheckRun<'a> {
    /// The worker holding the case's stage lease.
    pub worker: &'a str,
    pub config: &'a ChecksConfig,
    pub jurisdiction: Jurisdiction,
    pub lists: &'a CheckLists,
}

/// What the checks did with a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Nothing stands in the way: on to the owner lookup.
    Proceed(Box<CheckOutcome>),
    /// Set aside to `exempt`, `duplicate` or `supervisor_review`, with the reason.
    SetAside(Box<CheckOutcome>),
    /// Another worker took the case over meanwhile; nothing was moved.
    LeaseLost,
}

/// Runs the checks on an approved case that `run.worker` holds, whose plate (decided,
/// else the camera's) is `plate`.
pub async fn check_case(
    run: &CheckRun<'_>,
    store: &dyn Store,
    record: &CaseRecord,
    plate: &str,
) -> Result<Checked, StoreError> {
    let (case_id, captured_at) = (record.id, record.captured_at);
    let window = TimeDelta::seconds(i64::from(run.config.duplicate_window_s));
    let span = SIGHTING_SPAN.max(window);
    // Under every spelling (a camera writes `01KG123ABC`, the recognizer `01123ABC`),
    // and as this case holds it.
    let mut spellings = kozomol_tunduk::plate_spellings(plate);
    if !spellings.iter().any(|s| s == plate) {
        spellings.push(plate.to_owned());
    }
    let sightings_query = SightingsQuery {
        spellings: &spellings,
        from: captured_at - span,
        until: captured_at + span,
    };
    let sightings = store.plate_sightings(&sightings_query).await?;
    let own = sightings
        .iter()
        .find(|s| s.case_id == case_id)
        .and_then(facts_of);
    let placed = own.is_some();
    if !placed {
        warn!(case_id = %case_id, "the case's event names no site: checked against the lists only");
    }
    let case = own.unwrap_or_else(|| CaseFacts {
        case_id,
        plate: plate.to_owned(),
        kind: record.kind,
        site_id: String::new(),
        position: Coordinates {
            lat_e6: 0,
            lon_e6: 0,
        },
        captured_at,
        state: CaseState::Approved,
        checks_passed: false,
    });
    let others_in = |sightings: &[PlateSighting]| -> Vec<CaseFacts> {
        if placed {
            sightings
                .iter()
                .filter(|s| s.case_id != case_id)
                .filter_map(facts_of)
                .collect()
        } else {
            Vec::new()
        }
    };
    let others = others_in(&sightings);
    let input = |clone_cleared| CheckInput {
        jurisdiction: run.jurisdiction,
        case: &case,
        exemptions: &run.lists.exemptions,
        hot_list: &run.lists.hot_list,
        others: &others,
        clone_cleared,
    };
    let mut outcome = pre_issue_checks(run.config, &input(&[]));
    if matches!(outcome.verdict, Verdict::SupervisorReview { .. }) {
        // Only now is the audit worth reading: did a supervisor weigh these already?
        let audit = store.case_audit(case_id).await?;
        if let Some(cleared_at) = clone_review_cleared_at(&audit) {
            let cleared = cleared_sightings(&sightings, cleared_at);
            outcome = pre_issue_checks(run.config, &input(&cleared));
        }
    }
    if let Some(hit) = &outcome.hot_list {
        let alert = NewAlert {
            case_id,
            kind: AlertKind::HotList,
            detail: serde_json::json!({
                "plate": case.plate,
                "reason": hit.reason,
                "note": hit.note,
                "listed_at": hit.listed_at,
                "site_id": (!case.site_id.is_empty()).then_some(&case.site_id),
                "captured_at": case.captured_at,
                "checks": outcome.reason,
            }),
            raised_by: format!("fines:{}", run.worker),
        };
        let raised = store.raise_alert(&alert).await?;
        if let AlertRaised::Raised(alert_id) = raised {
            warn!(case_id = %case_id, alert_id, plate = %case.plate, reason = hit.reason.as_str(), "plate on the hot list: alert raised");
        }
    }
    let to = match outcome.to {
        Some(to) => to,
        None => {
            // Another case of the act may have passed since the sightings were read:
            // the mark is set only if the duplicate check still finds none under the
            // plate's lock.
            // The store hands back only the reason; the verdict also names the case.
            let duplicate = OnceLock::new();
            let still_clear = |fresh: &[PlateSighting]| {
                let others = others_in(fresh);
                let first = duplicate_of(run.config, &case, &others)?;
                let _ = duplicate.set(first.case_id);
                let mut reason = duplicate_reason(run.config, &case, first);
                if let Some(hit) = &outcome.hot_list {
                    reason.push_str(&hot_list_note(hit));
                }
                Some(reason)
            };
            let passed = store
                .pass_checks(run.worker, case_id, plate, &sightings_query, &still_clear)
                .await?;
            match passed {
                ChecksPassed::Passed => return Ok(Checked::Proceed(Box::new(outcome))),
                ChecksPassed::LeaseLost => return Ok(Checked::LeaseLost),
                ChecksPassed::Conflict(reason) => {
                    let of = duplicate.get().copied().ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "case {case_id}: the store found a conflict the checks did not name"
                        ))
                    })?;
                    outcome = CheckOutcome {
                        verdict: Verdict::Duplicate { of },
                        to: Some(CaseState::Duplicate),
                        reason,
                        hot_list: outcome.hot_list,
                    };
                    CaseState::Duplicate
                }
            }
        }
    };
    match store
        .set_aside(
            run.worker,
            case_id,
            CaseState::Approved,
            to,
            &outcome.reason,
        )
        .await?
    {
        CompleteResult::Completed => {
            info!(case_id = %case_id, to = %to, reason = %outcome.reason, "case set aside by the checks before issuing");
            Ok(Checked::SetAside(Box::new(outcome)))
        }
        CompleteResult::LeaseLost => Ok(Checked::LeaseLost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, from: CaseState, to: CaseState, minute: i64) -> AuditEntry {
        AuditEntry {
            id: minute,
            case_id: Some(CaseId(1)),
            at: DateTime::from_timestamp(1_773_000_000 + minute * 60, 0).expect("instant"),
            actor: "x".into(),
            action: action.into(),
            from_state: Some(from),
            to_state: Some(to),
            detail: None,
            hash: String::new(),
            batch_id: uuid::Uuid::nil(),
            prev_hash: String::new(),
        }
    }

    #[test]
    fn only_an_approval_after_a_clone_review_clears() {
        use CaseState::*;
        let at = |minute: i64| DateTime::from_timestamp(1_773_000_000 + minute * 60, 0);
        let reviewed = |from, to, m| row(CASE_REVIEWED, from, to, m);
        let set_aside = |from, to, m| row(CASE_SET_ASIDE, from, to, m);
        // (description, audit, cleared at)
        type Row = (&'static str, Vec<AuditEntry>, Option<DateTime<Utc>>);
        let table: Vec<Row> = vec![
            ("nothing", vec![], None),
            (
                "approved by review only",
                vec![
                    reviewed(NeedsReview, SupervisorReview, 1),
                    reviewed(SupervisorReview, Approved, 2),
                ],
                None,
            ),
            (
                "approved after a clone review",
                vec![
                    reviewed(Received, Approved, 1),
                    set_aside(Approved, SupervisorReview, 2),
                    reviewed(SupervisorReview, Approved, 3),
                ],
                at(3),
            ),
            (
                "rejected after a clone review",
                vec![
                    set_aside(Approved, SupervisorReview, 2),
                    reviewed(SupervisorReview, Rejected, 3),
                ],
                None,
            ),
            (
                "issuing's set-aside is no clone review",
                vec![
                    set_aside(OwnerFound, SupervisorReview, 2),
                    reviewed(SupervisorReview, Approved, 3),
                ],
                None,
            ),
            (
                "the latest of two clone reviews",
                vec![
                    set_aside(Approved, SupervisorReview, 2),
                    reviewed(SupervisorReview, Approved, 3),
                    set_aside(Approved, SupervisorReview, 4),
                    reviewed(SupervisorReview, Approved, 5),
                ],
                at(5),
            ),
            (
                "a clone review still open keeps the earlier clearing",
                vec![
                    set_aside(Approved, SupervisorReview, 2),
                    reviewed(SupervisorReview, Approved, 3),
                    set_aside(Approved, SupervisorReview, 4),
                ],
                at(3),
            ),
            (
                "sent back from owner_unknown, perhaps under another plate",
                vec![
                    set_aside(Approved, SupervisorReview, 2),
                    reviewed(SupervisorReview, Approved, 3),
                    reviewed(OwnerUnknown, Approved, 4),
                ],
                None,
            ),
            (
                "a clone review after it clears again",
                vec![
                    reviewed(OwnerUnknown, Approved, 4),
                    set_aside(Approved, SupervisorReview, 5),
                    reviewed(SupervisorReview, Approved, 6),
                ],
                at(6),
            ),
        ];
        for (what, audit, want) in table {
            assert_eq!(clone_review_cleared_at(&audit), want, "{what}");
        }
    }

    #[test]
    fn stored_names_are_the_checks_names() {
        for name in kozomol_store::checks::EXEMPTION_CATEGORIES {
            let category = exemption_category(name).expect("known category");
            assert_eq!(category.as_str(), name);
        }
        for name in kozomol_store::checks::HOT_LIST_REASONS {
            let reason = hot_list_reason(name).expect("known reason");
            assert_eq!(reason.as_str(), name);
        }
        assert_eq!(exemption_category("friends"), None);
        assert_eq!(hot_list_reason("lost"), None);
    }
}
