//! The data of the checks before issuing, shared by both backends: the exemption list
//! and the hot list (managed by operators; every change is audited and a removal keeps
//! the row, so the audit can always say which entries were in force), the alerts a
//! hot-list hit raises, and the sightings of a plate that the duplicate and
//! cloned-plate checks compare.
//!
//! The rules themselves are `kozomol_fines::checks`; this crate keeps categories and
//! reasons as their names ([`EXEMPTION_CATEGORIES`], [`HOT_LIST_REASONS`]), refuses
//! any other name, and never interprets a pattern.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{CaseId, CaseState, ViolationKind};
use serde::Serialize;

use crate::batch::ChainedAudit;
use crate::error::corrupt;
use crate::recognition::audit_row;
use crate::StoreError;

/// Action of the audit row written when an exemption is added (no case).
pub const EXEMPTION_ADDED: &str = "checks.exemption_added";
/// Action of the audit row written when an exemption is removed (no case).
pub const EXEMPTION_REMOVED: &str = "checks.exemption_removed";
/// Action of the audit row written when a plate is put on the hot list (no case).
pub const HOT_LIST_ADDED: &str = "checks.hot_list_added";
/// Action of the audit row written when a plate is taken off the hot list (no case).
pub const HOT_LIST_REMOVED: &str = "checks.hot_list_removed";
/// Action of the audit row written when the checks raise an alert on a case.
pub const ALERT_RAISED: &str = "case.alert_raised";
/// Action of the audit row written when a supervisor acknowledges a case's alert.
pub const ALERT_ACKNOWLEDGED: &str = "case.alert_acknowledged";
/// Action of the audit row written when an approved case passes the checks and gets
/// its mark ([`PreIssueChecks::pass_checks`]).
pub const CHECKS_PASSED: &str = "case.checks_passed";

/// The names an exemption's category may take (`kozomol_fines::checks::ExemptionCategory`).
pub const EXEMPTION_CATEGORIES: [&str; 4] = ["emergency", "diplomatic", "government", "other"];
/// The names a hot-list reason may take (`kozomol_fines::checks::HotListReason`).
pub const HOT_LIST_REASONS: [&str; 3] = ["stolen", "wanted", "other"];

/// An entry for the exemption list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewExemption {
    /// An exact plate or a series as a glob, already normalised by the checks'
    /// `PlatePattern` (upper case, no spaces or hyphens).
    pub pattern: String,
    /// One of [`EXEMPTION_CATEGORIES`].
    pub category: String,
    /// What the entry rests on (a decree, a registry letter).
    pub note: String,
    /// Both included; an absent bound is open.
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub added_by: String,
}

/// An entry of the exemption list as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExemptionRecord {
    pub id: i64,
    pub pattern: String,
    pub category: String,
    pub note: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removed_by: Option<String>,
}

/// A plate for the hot list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewHotListEntry {
    /// Normalised: upper case, letters and digits.
    pub plate: String,
    /// One of [`HOT_LIST_REASONS`].
    pub reason: String,
    pub note: String,
    pub listed_by: String,
}

/// An entry of the hot list as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HotListRecord {
    pub id: i64,
    pub plate: String,
    pub reason: String,
    pub note: String,
    pub listed_at: DateTime<Utc>,
    pub listed_by: String,
    pub removed_at: Option<DateTime<Utc>>,
    pub removed_by: Option<String>,
}

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The case's plate is on the hot list (stolen, wanted).
    HotList,
}

impl AlertKind {
    pub const ALL: [AlertKind; 1] = [AlertKind::HotList];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::HotList => "hot_list",
        }
    }

    pub fn parse(raw: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl std::fmt::Display for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert to raise on a case.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    pub case_id: CaseId,
    pub kind: AlertKind,
    /// What the person acting on it needs (the list entry, where and when).
    pub detail: serde_json::Value,
    /// The audit actor (the checking worker).
    pub raised_by: String,
}

/// What raising an alert did: alerts are one per case and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertRaised {
    Raised(i64),
    /// The case already had an alert of this kind (its id); nothing was written.
    AlreadyRaised(i64),
}

/// An alert as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertRecord {
    pub id: i64,
    pub case_id: CaseId,
    pub kind: AlertKind,
    pub detail: serde_json::Value,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// A filter over alerts, by ascending id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only alerts nobody has acknowledged yet.
    pub open_only: bool,
    pub case_id: Option<CaseId>,
    /// Cursor: only ids above this.
    pub after: Option<i64>,
    /// Page size; callers bound it.
    pub limit: u32,
}

/// What acknowledging an alert did.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertAcknowledged {
    Acknowledged(AlertRecord),
    /// Someone acknowledged it before; nothing was written.
    Already(AlertRecord),
    NotFound,
}

/// Where a case was captured, from its signed event (`site.id`, `site.lat_e6`,
/// `site.lon_e6`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SightingSite {
    pub id: String,
    pub lat_e6: i32,
    pub lon_e6: i32,
}

/// A case of a plate, with what the duplicate and cloned-plate checks compare.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlateSighting {
    pub case_id: CaseId,
    /// The plate the review decided where there is one, else the camera's read.
    pub plate: String,
    pub kind: ViolationKind,
    /// None when the stored event names no complete site.
    pub site: Option<SightingSite>,
    pub captured_at: DateTime<Utc>,
    /// When ingest recorded the case.
    pub received_at: DateTime<Utc>,
    pub state: CaseState,
    /// The case passed the checks before issuing ([`PreIssueChecks::pass_checks`]): an
    /// `approved` case with the mark is already on its way to a fine.
    pub checks_passed: bool,
}

/// What [`PreIssueChecks::pass_checks`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChecksPassed {
    /// The mark is set (audited `case.checks_passed`).
    Passed,
    /// The sightings read under the plate's lock no longer let the case through; the
    /// reason is `still_clear`'s. Nothing was written.
    Conflict(String),
    /// The case is not `approved` under the worker's lease; nothing was written.
    LeaseLost,
}

/// The lists and alerts of the checks before issuing, and the sightings they compare.
#[async_trait]
pub trait PreIssueChecks: Send + Sync {
    /// Adds an entry to the exemption list, audited (`checks.exemption_added`), in one
    /// transaction.
    async fn add_exemption(&self, entry: &NewExemption) -> Result<ExemptionRecord, StoreError>;
    /// Ends an entry's force: the row stays, with who removed it and when, audited.
    /// `None` when no entry in force has this id.
    async fn remove_exemption(
        &self,
        id: i64,
        removed_by: &str,
    ) -> Result<Option<ExemptionRecord>, StoreError>;
    /// The entries in force (not removed), in the order they were added; whether an
    /// entry's dates cover a case is the checks' question.
    async fn exemptions(&self) -> Result<Vec<ExemptionRecord>, StoreError>;

    /// Lists a plate, audited (`checks.hot_list_added`); `Conflict` when the plate is
    /// listed already.
    async fn add_hot_list_entry(
        &self,
        entry: &NewHotListEntry,
    ) -> Result<HotListRecord, StoreError>;
    /// Takes a plate off the hot list (the row stays), audited; `None` when the plate
    /// is not listed.
    async fn remove_hot_list_entry(
        &self,
        plate: &str,
        removed_by: &str,
    ) -> Result<Option<HotListRecord>, StoreError>;
    /// The listed plates (not removed), in the order they were listed.
    async fn hot_list(&self) -> Result<Vec<HotListRecord>, StoreError>;

    /// Raises an alert on a case, audited (`case.alert_raised`), once per case and
    /// kind: raising it again writes nothing and names the first.
    async fn raise_alert(&self, alert: &NewAlert) -> Result<AlertRaised, StoreError>;
    /// Alerts matching `query`, by ascending id.
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError>;
    async fn alert(&self, id: i64) -> Result<Option<AlertRecord>, StoreError>;
    /// Records who acknowledged an open alert, audited (`case.alert_acknowledged`); the
    /// first acknowledgement stands.
    async fn acknowledge_alert(
        &self,
        id: i64,
        acknowledged_by: &str,
    ) -> Result<AlertAcknowledged, StoreError>;

    /// The cases whose plate (the review's where it decided one, else the camera's)
    /// is one of `query.spellings` and whose capture lies in `query.from..=until`, by
    /// capture time then id.
    async fn plate_sightings(
        &self,
        query: &SightingsQuery<'_>,
    ) -> Result<Vec<PlateSighting>, StoreError>;

    /// Marks an approved case that `worker` holds, whose plate is `plate`, as past the
    /// checks, unless the plate's sightings say otherwise now. In one transaction,
    /// serialized per plate under all its spellings (so no two checks of one plate read
    /// before either marks): reads the sightings as [`Self::plate_sightings`] does,
    /// asks `still_clear`, and on `None` sets the mark, audited (`case.checks_passed`).
    /// (`for<'s>` is spelled out: `async_trait` would otherwise tie the slice to the
    /// call's lifetime.)
    async fn pass_checks(
        &self,
        worker: &str,
        case_id: CaseId,
        plate: &str,
        query: &SightingsQuery<'_>,
        still_clear: &(dyn for<'s> Fn(&'s [PlateSighting]) -> Option<String> + Send + Sync),
    ) -> Result<ChecksPassed, StoreError>;
}

/// The sightings of one plate a check reads: the cases stored under any of its
/// `spellings` (`kozomol_tunduk::plate_spellings`: a 2016-format plate with and without
/// its `KG`, as cameras and the recognizer write it) captured in `from..=until`.
#[derive(Clone, Copy, Debug)]
pub struct SightingsQuery<'a> {
    pub spellings: &'a [String],
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// A check is serialised on its plate's spellings: it names at least one.
pub(crate) fn check_spellings(query: &SightingsQuery<'_>) -> Result<(), StoreError> {
    if query.spellings.is_empty() {
        return Err(StoreError::Invalid(
            "a check names its plate in at least one spelling".into(),
        ));
    }
    Ok(())
}

/// Checks what the columns' constraints cannot say well.
pub(crate) fn check_exemption(entry: &NewExemption) -> Result<(), StoreError> {
    if entry.pattern.trim().is_empty() || entry.added_by.trim().is_empty() {
        return Err(StoreError::Invalid(
            "an exemption names its pattern and who added it".into(),
        ));
    }
    if !EXEMPTION_CATEGORIES.contains(&entry.category.as_str()) {
        return Err(StoreError::Invalid(format!(
            "exemption category `{}` is not one of {}",
            entry.category,
            EXEMPTION_CATEGORIES.join(", ")
        )));
    }
    if let (Some(from), Some(until)) = (entry.valid_from, entry.valid_until) {
        if from > until {
            return Err(StoreError::Invalid(
                "an exemption's validity ends before it starts".into(),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_hot_list_entry(entry: &NewHotListEntry) -> Result<(), StoreError> {
    if entry.plate.trim().is_empty() || entry.listed_by.trim().is_empty() {
        return Err(StoreError::Invalid(
            "a hot-list entry names its plate and who listed it".into(),
        ));
    }
    if !HOT_LIST_REASONS.contains(&entry.reason.as_str()) {
        return Err(StoreError::Invalid(format!(
            "hot-list reason `{}` is not one of {}",
            entry.reason,
            HOT_LIST_REASONS.join(", ")
        )));
    }
    Ok(())
}

pub(crate) fn exemption_detail(entry: &ExemptionRecord) -> String {
    serde_json::json!({
        "exemption_id": entry.id,
        "pattern": entry.pattern,
        "category": entry.category,
        "note": entry.note,
        "valid_from": entry.valid_from,
        "valid_until": entry.valid_until,
    })
    .to_string()
}

pub(crate) fn hot_list_detail(entry: &HotListRecord) -> String {
    serde_json::json!({
        "hot_list_id": entry.id,
        "plate": entry.plate,
        "reason": entry.reason,
        "note": entry.note,
    })
    .to_string()
}

pub(crate) fn alert_detail(id: i64, kind: AlertKind, detail: &serde_json::Value) -> String {
    serde_json::json!({ "alert_id": id, "kind": kind, "detail": detail }).to_string()
}

/// An audit row that moves no case: a list or account change (no case), an alert (its
/// case).
pub(crate) fn audit<'a>(
    case_id: Option<CaseId>,
    action: &'a str,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(case_id, action, None, None, actor, detail, at)
}

/// The detail of a `case.checks_passed` row: the plate whose sightings were read.
pub(crate) fn checks_passed_detail(plate: &str) -> String {
    serde_json::json!({ "plate": plate }).to_string()
}

pub(crate) fn alert_kind(raw: &str) -> Result<AlertKind, StoreError> {
    AlertKind::parse(raw).ok_or_else(|| corrupt(format!("alert kind `{raw}`")))
}

/// A sighting's site, when the event names all of it (coordinates that do not fit in
/// `i32` are no position).
pub(crate) fn sighting_site(
    id: Option<String>,
    lat_e6: Option<i64>,
    lon_e6: Option<i64>,
) -> Option<SightingSite> {
    Some(SightingSite {
        id: id.filter(|id| !id.is_empty())?,
        lat_e6: i32::try_from(lat_e6?).ok()?,
        lon_e6: i32::try_from(lon_e6?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_match_the_migrations() {
        for (file, sql) in [
            (
                "sqlite",
                include_str!("../migrations/sqlite/0007_checks.sql"),
            ),
            (
                "postgres",
                include_str!("../migrations/postgres/0007_checks.sql"),
            ),
        ] {
            let quoted = |names: &[&str]| {
                names
                    .iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            assert!(sql.contains(&quoted(&EXEMPTION_CATEGORIES)), "{file}");
            assert!(sql.contains(&quoted(&HOT_LIST_REASONS)), "{file}");
            let kinds: Vec<&str> = AlertKind::ALL.iter().map(|k| k.as_str()).collect();
            assert!(sql.contains(&quoted(&kinds)), "{file}");
        }
    }

    #[test]
    fn a_site_needs_every_part() {
        let site = sighting_site(Some("S1".into()), Some(42_000_000), Some(74_000_000));
        assert_eq!(
            site,
            Some(SightingSite {
                id: "S1".into(),
                lat_e6: 42_000_000,
                lon_e6: 74_000_000
            })
        );
        assert_eq!(sighting_site(None, Some(1), Some(1)), None);
        assert_eq!(sighting_site(Some(String::new()), Some(1), Some(1)), None);
        assert_eq!(sighting_site(Some("S1".into()), None, Some(1)), None);
        assert_eq!(
            sighting_site(Some("S1".into()), Some(i64::MAX), Some(1)),
            None
        );
    }

    #[test]
    fn entries_are_checked_before_writing() {
        let entry = NewExemption {
            pattern: "D*".into(),
            category: "diplomatic".into(),
            note: "note".into(),
            valid_from: "2026-03-01".parse().ok(),
            valid_until: "2026-03-01".parse().ok(),
            added_by: "admin".into(),
        };
        assert!(check_exemption(&entry).is_ok());
        for bad in [
            NewExemption {
                category: "friends".into(),
                ..entry.clone()
            },
            NewExemption {
                valid_until: "2026-02-28".parse().ok(),
                ..entry.clone()
            },
            NewExemption {
                pattern: " ".into(),
                ..entry.clone()
            },
        ] {
            assert!(matches!(check_exemption(&bad), Err(StoreError::Invalid(_))));
        }
        let hot = NewHotListEntry {
            plate: "01KG123ABC".into(),
            reason: "stolen".into(),
            note: String::new(),
            listed_by: "supervisor".into(),
        };
        assert!(check_hot_list_entry(&hot).is_ok());
        assert!(check_hot_list_entry(&NewHotListEntry {
            reason: "lost".into(),
            ..hot
        })
        .is_err());
    }
}
