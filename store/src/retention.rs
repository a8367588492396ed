//! Retention of personal data: once a case is settled and nothing has happened to it
//! for the retention period, the names, identity numbers and addresses it holds are
//! purged from the database. What stays is what the fine itself was (the case, its
//! plate and photos, the resolution, the payments, the audit trail): enough to answer
//! for the decision, nothing that says who the person was.
//!
//! Purged text columns that must hold something keep [`PURGED`]; the rest become NULL.
//! The signed PDF and appeal attachments are evidence (content-addressed, immutable)
//! and stay in the evidence store with the case file (docs/operations.md).

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState};
use serde::Serialize;

use crate::appeals::CLOSED;
use crate::batch::ChainedAudit;
use crate::checks::audit;

/// A settled case's personal data were purged (detail: rows changed per table).
pub const CASE_PURGED: &str = "case.personal_data_purged";
/// A closed accident's participants were purged (detail: the accident, the rows).
pub const ACCIDENT_PURGED: &str = "accident.personal_data_purged";
/// Contacts of owners the database no longer holds a case of were deleted.
pub const CONTACTS_PURGED: &str = "owner_contacts.purged";
/// Refused messages lost the bytes kept of them (detail: how many).
pub const DEAD_LETTERS_PURGED: &str = "dead_letters.purged";

/// What a purged text column that cannot be empty holds instead.
pub const PURGED: &str = "[purged]";

/// States in which nothing more is owed by or to anyone: the closed ones and the paid
/// ones (an appeal or an owner's statement on a purged paid case is refused).
pub fn settled() -> impl Iterator<Item = CaseState> {
    CLOSED
        .into_iter()
        .chain([CaseState::Paid, CaseState::PaidDiscounted])
}

/// `settled()` as an SQL list of literals (queries spell states as literals, see 0002).
pub(crate) fn settled_states_sql() -> String {
    settled()
        .map(|state| format!("'{}'", state.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one pass of the purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub cases: Vec<CaseId>,
    pub accidents: Vec<i64>,
    pub contacts: u64,
    /// Dead letters whose kept bytes (a refused message: photos, plate, camera read)
    /// were dropped.
    pub dead_letters: u64,
}

impl PurgeReport {
    /// How many things the pass purged: cases, accidents, contacts and dead letters.
    pub fn purged(&self) -> usize {
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        (self.cases.len() + self.accidents.len())
            .saturating_add(count(self.contacts))
            .saturating_add(count(self.dead_letters))
    }
}

/// Rows changed in each table of one case, in the order the purge changes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct CasePurge {
    pub owner_lookups: u64,
    pub deliveries: u64,
    pub delivery_attempts: u64,
    pub appeals: u64,
    pub appeal_attachments: u64,
    pub nominations: u64,
}

impl CasePurge {
    /// From the rows each of `CASE_PURGES` changed, in its order.
    pub(crate) fn from_counts(counts: [u64; 6]) -> Self {
        let [owner_lookups, deliveries, delivery_attempts, appeals, appeal_attachments, nominations] =
            counts;
        CasePurge {
            owner_lookups,
            deliveries,
            delivery_attempts,
            appeals,
            appeal_attachments,
            nominations,
        }
    }
}

/// The statements that purge one case, its id bound as parameter `param` (`$1` on
/// PostgreSQL, `?1` on SQLite). Identity numbers that a row's checks require keep
/// `PURGED`; a delivery's address keeps its id, as (resolution, channel, address) is
/// unique.
pub(crate) fn case_purges(param: &str) -> [String; 6] {
    let p = param;
    [
        format!(
            "UPDATE owner_lookups SET owner_id = CASE WHEN owner_id IS NULL THEN NULL \
             ELSE '{PURGED}' END, owner_name = NULL, owner_address = NULL, \
             registry_owner = NULL WHERE case_id = {p}"
        ),
        format!(
            "UPDATE deliveries SET address = '[purged ' || CAST(id AS TEXT) || ']', proof = NULL, \
             last_error = NULL WHERE case_id = {p}"
        ),
        format!(
            "UPDATE delivery_attempts SET proof = NULL, error = NULL \
             WHERE delivery_id IN (SELECT id FROM deliveries WHERE case_id = {p})"
        ),
        format!(
            "UPDATE appeals SET appellant = '{PURGED}', contact = NULL, grounds = '{PURGED}', \
             decision_note = NULL, \
             filed_by = CASE WHEN filed_by LIKE 'portal:%' THEN 'portal' ELSE filed_by END \
             WHERE case_id = {p}"
        ),
        format!(
            "UPDATE appeal_attachments SET name = '{PURGED}' \
             WHERE appeal_id IN (SELECT id FROM appeals WHERE case_id = {p})"
        ),
        format!(
            "UPDATE nominations SET \
             driver_pin = CASE WHEN driver_pin IS NULL THEN NULL ELSE '{PURGED}' END, \
             driver_name = CASE WHEN driver_name IS NULL THEN NULL ELSE '{PURGED}' END, \
             driver_address = NULL, statement = '{PURGED}' WHERE case_id = {p}"
        ),
    ]
}

/// `FOR UPDATE OF alias SKIP LOCKED` on PostgreSQL, where processes purging at once
/// must never take the same row; nothing on SQLite, whose one writer runs a pass alone.
pub(crate) fn skip_locked(alias: &str, skip_locked: bool) -> String {
    if skip_locked {
        format!(" FOR UPDATE OF {alias} SKIP LOCKED")
    } else {
        String::new()
    }
}

/// Cases to purge: settled, captured and quiet since parameter `p1`, nothing owed back,
/// no notice on its way, no re-issued fine still holding personal data; oldest first,
/// at most parameter `p2`.
pub(crate) fn cases_due(p1: &str, p2: &str, locked: bool) -> String {
    format!(
        "SELECT c.id FROM cases c \
         WHERE c.personal_data_purged_at IS NULL AND c.captured_at < {p1} \
           AND c.state IN ({}) \
           AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.case_id = c.id \
                           AND a.action LIKE 'case.%' AND a.at >= {p1}) \
           AND NOT EXISTS (SELECT 1 FROM refund_requests r WHERE r.case_id = c.id \
                           AND r.state = 'queued') \
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.case_id = c.id \
                           AND (d.state IN ('queued', 'sending') \
                                OR (d.state = 'sent' AND d.next_attempt_at IS NOT NULL))) \
           AND NOT EXISTS (SELECT 1 FROM nominations n \
                           JOIN cases r ON r.id = n.reissued_case_id \
                           WHERE n.case_id = c.id AND r.personal_data_purged_at IS NULL) \
         ORDER BY c.captured_at, c.id LIMIT {p2}{}",
        settled_states_sql(),
        skip_locked("c", locked)
    )
}

/// Accidents to purge: closed, no move since parameter `p1`, no officer case of theirs
/// still holding personal data; at most parameter `p2`.
pub(crate) fn accidents_due(p1: &str, p2: &str, locked: bool) -> String {
    format!(
        "SELECT a.id FROM accidents a \
         WHERE a.personal_data_purged_at IS NULL AND a.state = 'closed' \
           AND NOT EXISTS (SELECT 1 FROM accident_moves m WHERE m.accident_id = a.id \
                           AND m.at >= {p1}) \
           AND NOT EXISTS (SELECT 1 FROM officer_filings f JOIN cases c ON c.id = f.case_id \
                           WHERE f.accident_id = a.id AND c.personal_data_purged_at IS NULL) \
         ORDER BY a.id LIMIT {p2}{}",
        skip_locked("a", locked)
    )
}

/// Deletes at most parameter `p2` contacts added before parameter `p1` of owners no
/// case still holding personal data names.
pub(crate) fn contacts_purge(p1: &str, p2: &str, locked: bool) -> String {
    format!(
        "DELETE FROM owner_contacts WHERE id IN (\
           SELECT o.id FROM owner_contacts o WHERE o.added_at < {p1} \
           AND NOT EXISTS (SELECT 1 FROM owner_lookups l JOIN cases c ON c.id = l.case_id \
                           WHERE l.owner_kind IN ('person', 'company') \
                           AND l.owner_id = o.owner_id \
                           AND c.personal_data_purged_at IS NULL) \
           ORDER BY o.id LIMIT {p2}{})",
        skip_locked("o", locked)
    )
}

/// A purge of rows tied to no case: its statement (the cut-off bound first, the limit
/// second) and how what it changed is audited.
pub(crate) struct UntiedPurge {
    pub(crate) sql: String,
    pub(crate) action: &'static str,
    pub(crate) detail: fn(u64, DateTime<Utc>) -> String,
}

/// The purges of rows tied to no case, owners' contacts and dead letters' bytes, with
/// their cut-off parameter `p1` and limit `p2`.
pub(crate) fn untied_purges(p1: &str, p2: &str, locked: bool) -> [UntiedPurge; 2] {
    [
        UntiedPurge {
            sql: contacts_purge(p1, p2, locked),
            action: CONTACTS_PURGED,
            detail: contacts_detail,
        },
        UntiedPurge {
            sql: dead_letters_purge(p1, p2, locked),
            action: DEAD_LETTERS_PURGED,
            detail: dead_letters_detail,
        },
    ]
}

/// Drops the kept bytes of at most parameter `p2` dead letters received before
/// parameter `p1`; the rest of each row (what was refused, when, why) stays.
pub(crate) fn dead_letters_purge(p1: &str, p2: &str, locked: bool) -> String {
    // `substr(raw, 1, 0)`: the empty byte string, spelled alike on both backends.
    format!(
        "UPDATE dead_letters SET raw = substr(raw, 1, 0) WHERE id IN (\
           SELECT d.id FROM dead_letters d WHERE d.received_at < {p1} AND length(d.raw) > 0 \
           ORDER BY d.id LIMIT {p2}{})",
        skip_locked("d", locked)
    )
}

/// The statement that purges a closed accident's participants.
pub(crate) fn participants_purge(param: &str) -> String {
    format!("UPDATE accident_participants SET name = '{PURGED}', pin = NULL WHERE accident_id = {param}")
}

pub(crate) fn case_audit<'a>(
    case: CaseId,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit(Some(case), CASE_PURGED, actor, detail, at)
}

pub(crate) fn case_detail(purge: &CasePurge, quiet_since: DateTime<Utc>) -> String {
    serde_json::json!({ "rows": purge, "quiet_since": quiet_since }).to_string()
}

pub(crate) fn accident_detail(
    accident: i64,
    participants: u64,
    quiet_since: DateTime<Utc>,
) -> String {
    serde_json::json!({
        "accident_id": accident,
        "participants": participants,
        "quiet_since": quiet_since,
    })
    .to_string()
}

pub(crate) fn contacts_detail(contacts: u64, quiet_since: DateTime<Utc>) -> String {
    serde_json::json!({ "contacts": contacts, "quiet_since": quiet_since }).to_string()
}

pub(crate) fn dead_letters_detail(dead_letters: u64, quiet_since: DateTime<Utc>) -> String {
    serde_json::json!({ "dead_letters": dead_letters, "quiet_since": quiet_since }).to_string()
}

pub(crate) fn untied_audit<'a>(
    action: &'a str,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit(None, action, actor, detail, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_states_are_listed_once_each() {
        let sql = settled_states_sql();
        for state in settled() {
            assert_eq!(sql.matches(&format!("'{}'", state.as_str())).count(), 1);
        }
        assert!(!sql.contains("'issued'"));
        assert!(!sql.contains("'enforcement'"));
    }

    #[test]
    fn every_purge_statement_is_bound_to_its_case() {
        for sql in case_purges("?1") {
            assert!(
                sql.ends_with("case_id = ?1") || sql.ends_with("case_id = ?1)"),
                "{sql}"
            );
        }
    }
}
