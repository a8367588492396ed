//! Officers' own filings, shared by both backends: a violation an officer saw (a case
//! that enters the fine flow at `approved`, with no camera behind it), and a road
//! accident report with its vehicles, participants, photos and scheme, whose
//! investigation moves `registered → under_investigation → closed`.

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, OfficerReport, ReportedPlace};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{AttachmentRecord, NewAttachment, NewFrame, StoreError};

/// Action of the audit row written when an officer files a violation.
pub const OFFICER_FILED: &str = "case.officer_filed";
/// Action of the audit row written when an accident is registered (no case).
pub const ACCIDENT_REGISTERED: &str = "accident.registered";
/// Action of the audit row written for every move of an accident (no case).
pub const ACCIDENT_MOVED: &str = "accident.moved";

macro_rules! named {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named!(
    /// Where an accident's investigation stands.
    AccidentState {
        Registered => "registered",
        UnderInvestigation => "under_investigation",
        Closed => "closed",
    }
);

named!(
    /// How a closed investigation ended.
    AccidentOutcome {
        ViolationsFiled => "violations_filed",
        NoViolation => "no_violation",
        ReferredToCourt => "referred_to_court",
    }
);

named!(
    ParticipantRole {
        Driver => "driver",
        Passenger => "passenger",
        Pedestrian => "pedestrian",
        Witness => "witness",
    }
);

named!(
    /// Harm to a person, least first (so the worst is the maximum).
    Injury {
        None => "none",
        Light => "light",
        Serious => "serious",
        Fatal => "fatal",
    }
);

named!(
    AccidentFileRole {
        Photo => "photo",
        Scheme => "scheme",
    }
);

/// A violation an officer files: the report (the case's stored event) and its
/// photos, already in the evidence store, which become the case's frames.
#[derive(Clone, Debug)]
pub struct NewOfficerViolation {
    pub report: OfficerReport,
    pub photos: Vec<NewFrame>,
}

/// The answer to `file_officer_violation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfficerFiled {
    /// A new case, in `approved`.
    Filed(CaseId),
    /// The same report was filed before: its case; nothing changed.
    Duplicate(CaseId),
    /// The report id was used for another report: that case; nothing changed.
    Conflict(CaseId),
    AccidentNotFound,
    /// The accident's investigation is closed; nothing more is filed under it.
    AccidentClosed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccidentVehicle {
    pub plate: String,
    pub make: Option<String>,
    pub model: Option<String>,
    pub damage: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccidentParticipant {
    pub name: String,
    pub role: ParticipantRole,
    /// Index into the accident's vehicles.
    pub vehicle: Option<u32>,
    /// Personal identification number, where it was taken.
    pub pin: Option<String>,
    pub injury: Injury,
}

#[derive(Clone, Debug)]
pub struct NewAccidentFile {
    pub role: AccidentFileRole,
    pub file: NewAttachment,
}

#[derive(Clone, Debug)]
pub struct NewAccident {
    /// The client's id of the filing; a repeat with the same id is the same report.
    pub report_id: uuid::Uuid,
    pub occurred_at: DateTime<Utc>,
    pub place: ReportedPlace,
    pub description: String,
    pub vehicles: Vec<AccidentVehicle>,
    pub participants: Vec<AccidentParticipant>,
    pub files: Vec<NewAccidentFile>,
    pub registered_by: String,
}

/// A photo or the scheme: a file like an appeal's attachment, with its role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccidentFileRecord {
    pub role: AccidentFileRole,
    #[serde(flatten)]
    pub file: AttachmentRecord,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccidentMoveRecord {
    pub id: i64,
    /// None for the registration.
    pub from_state: Option<AccidentState>,
    pub to_state: AccidentState,
    pub outcome: Option<AccidentOutcome>,
    pub actor: String,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccidentRecord {
    pub id: i64,
    pub report_id: uuid::Uuid,
    pub occurred_at: DateTime<Utc>,
    pub place: ReportedPlace,
    pub description: String,
    pub state: AccidentState,
    pub outcome: Option<AccidentOutcome>,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
    pub vehicles: Vec<AccidentVehicle>,
    pub participants: Vec<AccidentParticipant>,
    pub files: Vec<AccidentFileRecord>,
    /// The violations officers filed under it, by id.
    pub cases: Vec<CaseId>,
    /// Its moves, the registration first.
    pub moves: Vec<AccidentMoveRecord>,
    /// When its photos and scheme were destroyed at the end of the archive period.
    pub evidence_destroyed_at: Option<DateTime<Utc>>,
}

impl AccidentRecord {
    /// The worst harm any participant came to.
    pub fn worst_injury(&self) -> Injury {
        self.participants
            .iter()
            .map(|p| p.injury)
            .max()
            .unwrap_or(Injury::None)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccidentSummary {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub address: String,
    pub state: AccidentState,
    pub outcome: Option<AccidentOutcome>,
    pub registered_by: String,
    pub registered_at: DateTime<Utc>,
}

/// A filter over accidents, by ascending id after `after`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccidentQuery {
    pub state: Option<AccidentState>,
    pub after: Option<i64>,
    /// Page size; callers bound it.
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccidentRegistered {
    Registered(Box<AccidentRecord>),
    /// The report id was registered before (that accident); nothing changed.
    Duplicate(i64),
}

/// One move of an investigation, applied only while the accident is in `from`. The
/// caller has applied the flow's rules (`kozomol_fines::accidents`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccidentMove {
    pub accident_id: i64,
    pub from: AccidentState,
    pub to: AccidentState,
    pub outcome: Option<AccidentOutcome>,
    pub actor: String,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccidentMoved {
    Moved(Box<AccidentRecord>),
    /// The accident had moved on (its state now); nothing written.
    StateChanged(AccidentState),
    NotFound,
}

/// The report as the case stores it, and the fingerprint a repeat is compared by.
pub(crate) fn report_event(report: &OfficerReport) -> Result<(String, [u8; 32]), StoreError> {
    let text = serde_json::to_string(report)
        .map_err(|e| StoreError::Invalid(format!("officer report: {e}")))?;
    let fingerprint = Sha256::digest(text.as_bytes()).into();
    Ok((text, fingerprint))
}

pub(crate) fn check_officer_violation(filing: &NewOfficerViolation) -> Result<(), StoreError> {
    let r = &filing.report;
    if r.source != kozomol_core::OFFICER_SOURCE {
        return Err(StoreError::Invalid(
            "an officer's report has source `officer`".into(),
        ));
    }
    if r.officer.trim().is_empty() || r.place.address.trim().is_empty() || r.plate.is_empty() {
        return Err(StoreError::Invalid(
            "an officer's report names the officer, the place and the plate".into(),
        ));
    }
    if filing.photos.is_empty() {
        return Err(StoreError::Invalid(
            "an officer's report has a photo".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_accident(accident: &NewAccident) -> Result<(), StoreError> {
    if accident.description.trim().is_empty() || accident.place.address.trim().is_empty() {
        return Err(StoreError::Invalid(
            "an accident report has a place and a description".into(),
        ));
    }
    let vehicles = accident.vehicles.len();
    if accident
        .participants
        .iter()
        .any(|p| p.vehicle.is_some_and(|v| v as usize >= vehicles))
    {
        return Err(StoreError::Invalid(
            "a participant names a vehicle the report does not list".into(),
        ));
    }
    Ok(())
}

/// The audit detail of an accident's move (the audit row has no case to name it).
pub(crate) fn move_detail(
    accident_id: i64,
    from: Option<AccidentState>,
    to: AccidentState,
    outcome: Option<AccidentOutcome>,
    note: Option<&str>,
) -> String {
    serde_json::json!({
        "accident_id": accident_id,
        "from": from.map(AccidentState::as_str),
        "to": to.as_str(),
        "outcome": outcome.map(AccidentOutcome::as_str),
        "note": note,
    })
    .to_string()
}

pub(crate) fn decode_named<T>(
    parse: fn(&str) -> Option<T>,
    raw: &str,
    what: &str,
) -> Result<T, StoreError> {
    parse(raw).ok_or_else(|| crate::error::corrupt(format!("{what} `{raw}`")))
}

/// The audit detail of an officer's filing.
pub(crate) fn filing_detail(report: &OfficerReport) -> String {
    serde_json::json!({
        "report_id": report.report_id,
        "officer": report.officer,
        "accident_id": report.accident_id,
    })
    .to_string()
}
