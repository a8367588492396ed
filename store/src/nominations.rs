//! Owner liability, shared by both backends: the owner of record answers for a camera
//! offence unless they name who drove or show that the car was stolen (KZ art. 31),
//! and repeat offences count per offender — the person's PIN or the company's INN the
//! resolution is addressed to — never per plate.
//!
//! A named driver's offence is re-issued in a case of its own: one resolution, one
//! payment code, one set of clocks and refunds per case stays true, and everything
//! after issuing works on the driver's case unchanged. The new case carries the
//! original's event and frames, its owner lookup names the driver (so deliveries,
//! contacts and repeat counting follow the driver), and `reissued_from` leads the
//! issuing stage back to the original's recognition and reviews.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction, OwnerKind};
use serde::Serialize;

use crate::appeals::APPEALABLE;
use crate::StoreError;

/// Action of the audit row written when the owner names the driver: the owner's
/// resolution is annulled.
pub const DRIVER_NAMED: &str = "case.driver_named";
/// Action of the audit row written when the owner shows the car was stolen: the case
/// is annulled.
pub const REPORTED_STOLEN: &str = "case.reported_stolen";
/// Action of the audit row that opens the case re-issued to a named driver.
pub const CASE_REISSUED: &str = "case.reissued";

/// The states an owner's statement is taken in: those an appeal is taken in, since the
/// statement contests the resolution (an open appeal decides first).
pub const NOMINABLE: [CaseState; 6] = APPEALABLE;

/// One of an offender's resolutions, whatever became of its case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffenderResolution {
    pub number: String,
    pub case_id: CaseId,
    pub jurisdiction: Jurisdiction,
    /// The article part it was priced under (a repeat part for a repeat).
    pub article: String,
    pub issued_at: DateTime<Utc>,
    pub state: CaseState,
}

/// The driver an owner names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NominatedDriver {
    pub pin: String,
    pub name: String,
    pub address: Option<String>,
}

/// What the owner states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Claim {
    /// Someone else drove: the offence is re-issued to them.
    Driver { driver: NominatedDriver },
    /// The car had been stolen: the case is closed.
    Stolen {
        police_report: String,
        reported_at: DateTime<Utc>,
    },
}

impl Claim {
    pub fn kind(&self) -> &'static str {
        match self {
            Claim::Driver { .. } => "driver",
            Claim::Stolen { .. } => "stolen",
        }
    }
}

/// An owner's statement to record against a resolution.
#[derive(Clone, Debug)]
pub struct NewNomination {
    pub resolution_number: String,
    pub claim: Claim,
    /// The owner's statement as taken down.
    pub statement: String,
    /// The desk officer who took it.
    pub recorded_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NominationRecord {
    pub id: i64,
    pub case_id: CaseId,
    pub resolution_number: String,
    #[serde(flatten)]
    pub claim: Claim,
    pub statement: String,
    /// The state the statement found the case in.
    pub from_state: CaseState,
    /// The case re-issued to the named driver.
    pub reissued_case_id: Option<CaseId>,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

/// The answer to `record_nomination`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NominationRecorded {
    Recorded {
        nomination: Box<NominationRecord>,
        /// The refund request the annulment of a paid resolution queued.
        refund_request: Option<i64>,
        /// The hot-list entry a theft added (none when the plate was listed already).
        hot_list_entry: Option<i64>,
    },
    /// The case is in a state no statement is taken in (nothing written).
    NotOpen(CaseState),
    /// A statement against this resolution was recorded before (its id).
    AlreadyRecorded(i64),
    NotFound,
    /// The case's personal data were purged (when): it takes no statement, whose
    /// driver no later purge would reach (nothing written).
    Purged(DateTime<Utc>),
}

/// Owner liability: an offender's earlier resolutions, and the owner's statements.
#[async_trait]
pub trait Offenders: Send + Sync {
    /// The resolutions addressed to each offender (`kind` and PIN or INN) issued
    /// before `before`, oldest first, whatever became of their cases: one list per
    /// offender, in the order given (an issuing batch asks for all its offenders at
    /// once).
    async fn offenders_resolutions(
        &self,
        offenders: &[(OwnerKind, &str)],
        before: DateTime<Utc>,
    ) -> Result<Vec<Vec<OffenderResolution>>, StoreError>;

    /// [`Offenders::offenders_resolutions`] for one offender.
    async fn offender_resolutions(
        &self,
        kind: OwnerKind,
        id: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<OffenderResolution>, StoreError> {
        Ok(self
            .offenders_resolutions(&[(kind, id)], before)
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// Records the owner's statement against an open resolution, in one transaction:
    /// the case is annulled (compare-and-set on its state, clocks stopped, a refund
    /// queued when money was taken), audited; a named driver gets a new case in
    /// `owner_found` addressed to them, which the issuing stage picks up; a theft puts
    /// the plate on the hot list.
    async fn record_nomination(
        &self,
        nomination: &NewNomination,
    ) -> Result<NominationRecorded, StoreError>;

    async fn nomination(
        &self,
        resolution_number: &str,
    ) -> Result<Option<NominationRecord>, StoreError>;

    /// The case a re-issued case was re-issued from; its recognition and reviews are
    /// the evidence the new resolution cites.
    async fn reissued_from(&self, case_id: CaseId) -> Result<Option<CaseId>, StoreError>;
}

pub(crate) fn check_nomination(nomination: &NewNomination) -> Result<(), StoreError> {
    let blank = |s: &str| s.trim().is_empty();
    let complete = match &nomination.claim {
        Claim::Driver { driver } => !blank(&driver.pin) && !blank(&driver.name),
        Claim::Stolen { police_report, .. } => !blank(police_report),
    };
    if !complete || blank(&nomination.statement) || blank(&nomination.recorded_by) {
        return Err(StoreError::Invalid(
            "an owner's statement names the driver (PIN and name) or the police report, \
             and who took it"
                .into(),
        ));
    }
    Ok(())
}

/// The audit action of a statement.
pub(crate) fn action(claim: &Claim) -> &'static str {
    match claim {
        Claim::Driver { .. } => DRIVER_NAMED,
        Claim::Stolen { .. } => REPORTED_STOLEN,
    }
}

/// The audit detail names the statement, never the driver: personal data stays in its
/// own table.
pub(crate) fn detail(id: i64, nomination: &NewNomination, reissued: Option<CaseId>) -> String {
    serde_json::json!({
        "nomination_id": id,
        "resolution_number": nomination.resolution_number,
        "kind": nomination.claim.kind(),
        "reissued_case_id": reissued.map(|c| c.0),
    })
    .to_string()
}

/// The reason the re-issued case's owner lookup gives for naming the driver.
pub(crate) fn reissue_reason(id: i64, nomination: &NewNomination) -> String {
    format!(
        "driver named by the owner of record against resolution {} (statement {id})",
        nomination.resolution_number
    )
}

/// A statement's columns as read.
pub(crate) struct NominationColumns {
    pub id: i64,
    pub case_id: i64,
    pub resolution_number: String,
    pub kind: String,
    pub driver_pin: Option<String>,
    pub driver_name: Option<String>,
    pub driver_address: Option<String>,
    pub police_report: Option<String>,
    pub reported_at: Option<DateTime<Utc>>,
    pub statement: String,
    pub from_state: String,
    pub reissued_case_id: Option<i64>,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
}

impl NominationColumns {
    pub(crate) fn record(self) -> Result<NominationRecord, StoreError> {
        let claim = match (
            self.kind.as_str(),
            self.driver_pin,
            self.driver_name,
            self.police_report,
            self.reported_at,
        ) {
            ("driver", Some(pin), Some(name), _, _) => Claim::Driver {
                driver: NominatedDriver {
                    pin,
                    name,
                    address: self.driver_address,
                },
            },
            ("stolen", _, _, Some(police_report), Some(reported_at)) => Claim::Stolen {
                police_report,
                reported_at,
            },
            (kind, ..) => {
                return Err(crate::error::corrupt(format!(
                    "owner's statement {} of kind `{kind}`",
                    self.id
                )))
            }
        };
        Ok(NominationRecord {
            id: self.id,
            case_id: CaseId(self.case_id),
            resolution_number: self.resolution_number,
            claim,
            statement: self.statement,
            from_state: crate::decode::state(&self.from_state)?,
            reissued_case_id: self.reissued_case_id.map(CaseId),
            recorded_by: self.recorded_by,
            recorded_at: self.recorded_at,
        })
    }
}

/// The offenders query after its `WITH asked (kind, id) AS (VALUES ...)`, up to the
/// `issued_at` bound both backends bind: the offenders as a table joined to the
/// lookups, since a chain of ORs as long as a large batch is deeper than SQLite lets an
/// expression be.
pub(crate) const OFFENDERS_SELECT: &str = ") SELECT l.owner_kind, l.owner_id, r.number, \
    r.case_id, r.jurisdiction, r.article, r.issued_at, c.state FROM asked a \
    JOIN owner_lookups l ON l.owner_kind = a.kind AND l.owner_id = a.id \
    JOIN resolutions r ON r.case_id = l.case_id \
    JOIN cases c ON c.id = r.case_id WHERE r.issued_at < ";

/// An offenders query's rows gathered into one list per offender asked for, in the
/// order asked (both backends read the rows, this groups them).
pub(crate) struct OffenderLists<'a> {
    asked: &'a [(OwnerKind, &'a str)],
    /// By the row's owner kind and id.
    found: HashMap<(String, String), Vec<OffenderResolution>>,
}

impl<'a> OffenderLists<'a> {
    pub(crate) fn new(asked: &'a [(OwnerKind, &'a str)]) -> Self {
        OffenderLists {
            asked,
            found: HashMap::new(),
        }
    }

    /// The offenders to query, each once (an offender asked for twice would have each
    /// of their rows twice).
    pub(crate) fn distinct(&self) -> Vec<(OwnerKind, &'a str)> {
        let mut seen = HashSet::with_capacity(self.asked.len());
        self.asked
            .iter()
            .copied()
            .filter(|offender| seen.insert(*offender))
            .collect()
    }

    /// A row's resolution, addressed to the offender its `owner_kind` and `owner_id`
    /// name.
    pub(crate) fn add(&mut self, kind: String, id: String, resolution: OffenderResolution) {
        self.found.entry((kind, id)).or_default().push(resolution);
    }

    pub(crate) fn finish(self) -> Vec<Vec<OffenderResolution>> {
        self.asked
            .iter()
            .map(|(kind, id)| {
                self.found
                    .get(&(kind.as_str().to_owned(), (*id).to_owned()))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}
