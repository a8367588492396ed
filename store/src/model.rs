//! The rows the store reads and writes.

use chrono::{DateTime, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, DeadLetterReason, EventId, FrameRole,
    PlateRead, Role, Site, ViolationKind,
};
use serde::Serialize;

use crate::FrameLocation;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraRegistration {
    pub camera_id: CameraId,
    /// Ed25519 public key.
    pub public_key: [u8; 32],
    pub device_serial: String,
    pub certificate: CalibrationCertificate,
    pub site: Site,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CameraRecord {
    pub camera_id: CameraId,
    #[serde(serialize_with = "hex_key")]
    pub public_key: [u8; 32],
    pub device_serial: String,
    /// Every certificate known for the device, oldest first.
    pub certificates: Vec<CalibrationCertificate>,
    pub site: Site,
    pub registered_at: DateTime<Utc>,
    /// When ingest last committed an event from it.
    pub last_seen: Option<DateTime<Utc>>,
    pub online: bool,
    pub outbox_depth: Option<i64>,
    pub clock_offset_ms: Option<i64>,
    /// The camera's own time of its newest status (or, for one without, its arrival).
    pub status_at: Option<DateTime<Utc>>,
    /// When its last online status arrived, by this server's clock (`heard_at`).
    #[serde(skip)]
    pub online_heard_at: Option<DateTime<Utc>>,
}

impl CameraRecord {
    /// When the camera was last heard from, by this server's clock: its newest event,
    /// or the arrival of its last status saying it is online (an offline status is
    /// the broker's word, not the camera's; the camera's own times may run off).
    pub fn heard_at(&self) -> Option<DateTime<Utc>> {
        let status = self.online_heard_at.filter(|_| self.online);
        self.last_seen.max(status)
    }

    /// Whether the camera is online at `now`: its last status said so and it was heard
    /// from within [`kozomol_core::messages::CAMERA_SILENT_AFTER_SECS`].
    pub fn online_at(&self, now: DateTime<Utc>) -> bool {
        let silent_after =
            chrono::Duration::seconds(kozomol_core::messages::CAMERA_SILENT_AFTER_SECS);
        self.online && self.heard_at().is_some_and(|at| now - at <= silent_after)
    }
}

pub(crate) fn hex_key<S: serde::Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(key))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraStatusUpdate {
    pub online: bool,
    pub outbox_depth: Option<i64>,
    pub clock_offset_ms: Option<i64>,
    /// When the camera was in this state by its own clock: the newest such status
    /// wins, whatever order they arrive in. `None` for a status with no time (the last
    /// will the broker publishes when the camera drops off): the broker's word that
    /// it is so now, which always applies, dated `received_at` or just after the
    /// status it replaces, whichever is later, so that none of the camera's statuses
    /// before it (the last one, handled late by a second ingest process) undoes it;
    /// one that changes nothing (a retained will delivered again when ingest
    /// reconnects) keeps the date of the state, so "offline since" stays true.
    pub at: Option<DateTime<Utc>>,
    /// When the status arrived, by this server's clock.
    pub received_at: DateTime<Utc>,
}

/// A case as ingest hands it over, its frames already durable in evidence segments.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCase {
    pub event_id: EventId,
    pub camera_id: CameraId,
    pub captured_at: DateTime<Utc>,
    pub kind: ViolationKind,
    /// SHA-256 of the signed payload (see `DecodedEnvelope::fingerprint`).
    pub fingerprint: [u8; 32],
    /// The signed event, as JSON, for readers.
    pub event: serde_json::Value,
    /// The camera's plate read, if any (upper case, no spaces).
    pub camera_plate: Option<String>,
    /// False where the device's calibration did not cover the capture date.
    pub enforceable: bool,
    pub enforceability_note: Option<String>,
    pub frames: Vec<NewFrame>,
    /// Ingest's span for the event, which the later stages' spans follow.
    pub trace_parent: Option<kozomol_core::TraceParent>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFrame {
    pub role: FrameRole,
    pub sha256: [u8; 32],
    /// Where the bytes are; ignored when the hash is already known.
    pub location: FrameLocation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseWrite {
    Created(CaseId),
    Duplicate(CaseId),
    Conflict(CaseId),
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseRecord {
    pub id: CaseId,
    pub event_id: EventId,
    /// None for a case an officer filed (see `OfficerReport`): no camera saw it.
    pub camera_id: Option<CameraId>,
    pub captured_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub kind: ViolationKind,
    pub state: CaseState,
    pub plate: Option<String>,
    pub enforceable: bool,
    pub enforceability_note: Option<String>,
    #[serde(serialize_with = "hex_key")]
    pub fingerprint: [u8; 32],
    pub event: serde_json::Value,
    pub frames: Vec<CaseFrame>,
    /// When the retention purge took the personal data out of this case.
    pub personal_data_purged_at: Option<DateTime<Utc>>,
    /// When its file (photos, signed PDF, appeal files) was destroyed at the end of
    /// the archive period (`destruction`).
    pub evidence_destroyed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseFrame {
    pub index: u32,
    pub role: FrameRole,
    #[serde(serialize_with = "hex_key")]
    pub sha256: [u8; 32],
    #[serde(skip)]
    pub location: FrameLocation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CaseSummary {
    pub id: CaseId,
    pub event_id: EventId,
    /// None for a case an officer filed (see `OfficerReport`): no camera saw it.
    pub camera_id: Option<CameraId>,
    pub captured_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub kind: ViolationKind,
    pub state: CaseState,
    pub plate: Option<String>,
    pub enforceable: bool,
}

/// [`CaseQuery::undeliverable`] in SQL both backends read alike. A notice to a system
/// subscribed to the owner's violations (`subscription:{id}`) reaches no one in person,
/// so it is not a delivery under way.
pub(crate) const UNDELIVERABLE: &str = " AND state = 'issued' AND EXISTS (SELECT 1 FROM resolutions r \
     WHERE r.case_id = cases.id AND r.delivered_at IS NULL AND NOT EXISTS (SELECT 1 FROM deliveries d \
     WHERE d.resolution_number = r.number AND d.state IN ('queued', 'sending', 'sent') \
     AND d.address NOT LIKE 'subscription:%'))";

/// Cases not re-issued to a driver the vehicle's owner named: their owner is the one
/// the registry gave.
pub(crate) const OWNER_FROM_REGISTRY: &str =
    " AND NOT EXISTS (SELECT 1 FROM nominations n WHERE n.reissued_case_id = cases.id)";

/// A filter over cases; every field narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseQuery {
    pub state: Option<CaseState>,
    pub camera: Option<CameraId>,
    /// Exact plate text (upper case, no spaces) as the camera read it.
    pub plate: Option<String>,
    /// Plate texts, as a review decided it, else as the camera read it: the plate a
    /// fine names, under any of its spellings (`kozomol_tunduk::plate_spellings`; the
    /// sightings index serves it with a capture-time range). Empty: any plate.
    pub sighted_plates: Vec<String>,
    /// Capture time, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Capture time, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Page size; callers bound it.
    pub limit: u32,
    /// Cursor: only ids above this.
    pub after: Option<CaseId>,
    /// Only cases whose resolution waits for a person: issued, not proven delivered,
    /// and no delivery of it still under way (every one failed for good, or there is
    /// none).
    pub undeliverable: bool,
    /// Only cases whose owner is the registry's: a case re-issued to a driver the
    /// owner named is the driver's, not the vehicle owner's.
    pub owner_from_registry: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub case_id: Option<CaseId>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<CaseState>,
    pub to_state: Option<CaseState>,
    pub detail: Option<String>,
    /// Hex SHA-256 chaining this row to the one before it in its batch.
    pub hash: String,
    /// The batch whose chain this row belongs to (see `audit`).
    pub batch_id: uuid::Uuid,
    /// Hex hash of the previous row in the batch, or of the batch id for its first row.
    pub prev_hash: String,
}

/// Cases of one UTC hour, site and kind (see `CaseStore::hourly_counts`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HourlyCount {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// The site the cases' signed events name, where they were seen (a camera that
    /// moved since counts its earlier cases at its earlier site); none for cases
    /// officers filed.
    pub site: Option<CountedSite>,
    pub kind: ViolationKind,
    pub recorded: i64,
    /// Those that became fines (a resolution was issued).
    pub fined: i64,
}

/// Where an offence was seen, as the case's signed event (or the officer's report)
/// says: the camera may have moved since. An officer's report may give no coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasePlace {
    pub address: String,
    pub lat_e6: Option<i32>,
    pub lon_e6: Option<i32>,
}

/// The columns `site_address`, `site_lat_e6`, `site_lon_e6` of a [`CasePlace`], read
/// from the event of the case aliased `s`: a camera's `site`, or an officer's `place`.
/// Macros because `query()` takes only `&'static str`.
macro_rules! sqlite_place_columns {
    () => {
        "COALESCE(json_extract(s.event, '$.site.address'), \
         json_extract(s.event, '$.place.address')) AS site_address, \
         COALESCE(json_extract(s.event, '$.site.lat_e6'), \
         json_extract(s.event, '$.place.lat_e6')) AS site_lat_e6, \
         COALESCE(json_extract(s.event, '$.site.lon_e6'), \
         json_extract(s.event, '$.place.lon_e6')) AS site_lon_e6"
    };
}
pub(crate) use sqlite_place_columns;

/// [`sqlite_place_columns`] on PostgreSQL.
macro_rules! postgres_place_columns {
    () => {
        "COALESCE(s.event #>> '{site,address}', s.event #>> '{place,address}') AS site_address, \
         COALESCE(s.event #>> '{site,lat_e6}', s.event #>> '{place,lat_e6}')::int AS site_lat_e6, \
         COALESCE(s.event #>> '{site,lon_e6}', s.event #>> '{place,lon_e6}')::int AS site_lon_e6"
    };
}
pub(crate) use postgres_place_columns;

/// A camera site as the events counted name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CountedSite {
    pub id: String,
    pub address: String,
    pub lat_e6: i32,
    pub lon_e6: i32,
}

/// Cases waiting in one state (see `CaseStore::backlog`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Backlog {
    pub state: CaseState,
    pub cases: u64,
    /// When the longest-waiting case of the state was received; `None` when empty.
    pub oldest_received_at: Option<DateTime<Utc>>,
}

/// Every waiting state in `CaseState::WAITING` order, empty ones with zero cases.
pub(crate) fn backlog_of(
    mut found: std::collections::HashMap<CaseState, (i64, Option<DateTime<Utc>>)>,
) -> Vec<Backlog> {
    CaseState::WAITING
        .into_iter()
        .map(|state| {
            let (n, oldest) = found.remove(&state).unwrap_or((0, None));
            Backlog {
                state,
                cases: u64::try_from(n).unwrap_or(0),
                oldest_received_at: oldest,
            }
        })
        .collect()
}

/// How work went over a range of time, for the console's dashboard (see
/// `CaseStore::work_summary`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkSummary {
    /// Review decisions made in the range, by tier (`auto`, `first`, `supervisor`).
    pub decisions_by_tier: Vec<(String, i64)>,
    /// Mean seconds from a case's arrival to each decision made in the range.
    pub mean_seconds_to_decision: Option<f64>,
    /// Resolutions issued in the range, and their amounts (minor units).
    pub issued: i64,
    pub issued_minor: i64,
    /// Money taken in the range and kept (less excess, reversals left out).
    pub paid_minor: i64,
}

impl WorkSummary {
    /// From each tier's decisions and their mean seconds to decision: the mean over
    /// all of them is weighted by each tier's count.
    pub fn of_tiers(tiers: Vec<(String, i64, Option<f64>)>) -> WorkSummary {
        let (mut weighted, mut decisions) = (0.0, 0i64);
        for (_, n, mean) in &tiers {
            if let Some(mean) = mean {
                weighted += mean * *n as f64;
                decisions += n;
            }
        }
        WorkSummary {
            decisions_by_tier: tiers.into_iter().map(|(tier, n, _)| (tier, n)).collect(),
            mean_seconds_to_decision: (decisions > 0).then(|| weighted / decisions as f64),
            ..WorkSummary::default()
        }
    }
}

/// A seal over the audit log (see `audit`): every row after the previous seal up to
/// `up_to_id`, chained to the seal before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditSeal {
    pub id: i64,
    pub up_to_id: i64,
    pub rows: i64,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
    pub sealed_at: DateTime<Utc>,
}

/// One audit row written on its own (a batch of one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    pub case_id: Option<CaseId>,
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub received_at: DateTime<Utc>,
    pub topic: String,
    pub camera_id: Option<String>,
    pub event_id: Option<String>,
    pub reason: DeadLetterReason,
    pub detail: String,
    /// The raw message; the store keeps what [`NewDeadLetter::kept_raw`] says.
    pub raw: Vec<u8>,
    /// At most this many bytes kept, where fewer than the reason's rule: a flood's
    /// letters beyond the first few keep only enough to see what they were.
    pub keep_bytes: Option<usize>,
}

impl NewDeadLetter {
    /// The bytes kept: the first `DEAD_LETTER_RAW_LIMIT` of a message refused for what
    /// its sender wrote (enough to see what it was), all of a verified event the store
    /// refused (up to the envelope's 2 MiB), which is kozomol's to store once it can;
    /// no more than `keep_bytes` either way.
    pub fn kept_raw(&self) -> &[u8] {
        let rule = if self.reason == DeadLetterReason::Unstorable {
            self.raw.len()
        } else {
            DEAD_LETTER_RAW_LIMIT
        };
        let kept = self.keep_bytes.map_or(rule, |at_most| at_most.min(rule));
        &self.raw[..self.raw.len().min(kept)]
    }
}

/// How much of a message refused for what its sender wrote is kept.
pub const DEAD_LETTER_RAW_LIMIT: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub topic: String,
    pub camera_id: Option<String>,
    pub event_id: Option<String>,
    pub reason: DeadLetterReason,
    pub detail: String,
    /// Length of the message as received.
    pub raw_len: i64,
    /// Bytes kept of it (`NewDeadLetter::kept_raw`), 0 once the retention purge
    /// dropped them; read with `DeadLetterStore::dead_letter_raw`.
    pub raw_kept: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

/// An officer's entry in the officers' register: what a resolution names him by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OfficerIdentity {
    /// As the resolution prints it, e.g. "Асанов Бакыт Орозбекович".
    pub full_name: String,
    /// The badge (service ID) number; one officer's.
    pub badge: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub login: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The register's entry, for an account of an officer.
    pub officer: Option<OfficerIdentity>,
    /// Who made the account (the audit's actor).
    pub created_by: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub login: String,
    pub role: Role,
    pub password_hash: String,
    /// `None` for an account that is not in the officers' register.
    pub officer: Option<OfficerIdentity>,
    /// Disabled by an admin: it logs in no more, and its tokens and sessions ended.
    pub disabled: bool,
}

// ---- recognition -------------------------------------------------------------------

/// A case taken from the recognition queue: what a recognizer needs to read its plate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecognitionJob {
    pub case_id: CaseId,
    pub camera_id: CameraId,
    /// What the camera read itself, if anything.
    pub camera_read: Option<CameraPlateRead>,
    /// The case's frames, by index; their bytes are read through `EvidenceStore`.
    pub frames: Vec<CaseFrame>,
    /// 1 on the first claim, counting every claim since (expired leases included).
    pub attempt: u32,
    /// When the lease ends and another worker may take the case. On PostgreSQL this
    /// is the database server's clock, which every worker's lease is measured against.
    pub leased_until: DateTime<Utc>,
    /// The error a previous attempt reported, if any.
    pub last_error: Option<String>,
}

/// The camera's plate read as the store holds it: the text ingest stored with the
/// case, the confidence and country from the signed event (absent when the event
/// carried none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CameraPlateRead {
    pub text: String,
    pub confidence_milli: Option<u16>,
    pub country: Option<String>,
}

/// Where a recognition sends its case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecognitionDecision {
    Recognized,
    NeedsReview,
}

impl RecognitionDecision {
    pub fn state(self) -> CaseState {
        match self {
            RecognitionDecision::Recognized => CaseState::Recognized,
            RecognitionDecision::NeedsReview => CaseState::NeedsReview,
        }
    }
}

/// The plate's bounding box in pixels of one of the case's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PlateBox {
    /// Index of the frame (as in `CaseFrame::index`) the box lies in.
    pub frame_index: u32,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// Evidence bytes that belong to no frame list, such as a plate crop: its hash and
/// where `EvidenceStore::append_batch` put it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceRef {
    #[serde(serialize_with = "hex_key")]
    pub sha256: [u8; 32],
    #[serde(skip)]
    pub location: FrameLocation,
}

/// What a recognizer concluded about one case it holds the lease of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecognitionOutcome {
    pub case_id: CaseId,
    pub decision: RecognitionDecision,
    /// The plate read (text, confidence in thousandths, country); `None` when no
    /// plate was read.
    pub plate: Option<PlateRead>,
    /// Confidence of each character of `plate`, in thousandths.
    pub char_confidences_milli: Vec<u16>,
    /// Alternative reads, best first.
    pub candidates: Vec<PlateRead>,
    pub plate_box: Option<PlateBox>,
    /// The plate crop, already durable in an evidence segment.
    pub crop: Option<EvidenceRef>,
    /// Name and version of the model that read the plate.
    pub model: String,
    /// Whether the read agrees with the camera's; `None` when there is nothing to compare.
    pub agreement: Option<bool>,
}

/// The stored result of recognising a case: a read written by `complete_recognition`,
/// or the error that made `fail_recognition` give up (then `model` and `plate` are
/// `None` and `error` says why).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecognitionRecord {
    pub case_id: CaseId,
    pub decision: RecognitionDecision,
    /// The worker that decided.
    pub worker: String,
    /// Claims the case took, the deciding one included.
    pub attempts: u32,
    pub decided_at: DateTime<Utc>,
    pub plate: Option<PlateRead>,
    pub char_confidences_milli: Vec<u16>,
    pub candidates: Vec<PlateRead>,
    pub plate_box: Option<PlateBox>,
    pub crop: Option<EvidenceRef>,
    pub model: Option<String>,
    /// The camera's read when the decision was made.
    pub camera_read: Option<CameraPlateRead>,
    pub agreement: Option<bool>,
    pub error: Option<String>,
}

/// The answer to `complete_recognition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompleteResult {
    /// The recognition is stored and the case moved on.
    Completed,
    /// The case is no longer `received` under this worker's lease (another worker
    /// took it after the lease expired, or it was decided already); nothing changed.
    LeaseLost,
}

/// The answer to `fail_recognition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailResult {
    /// The case goes back to the queue once `retry_after` has passed.
    WillRetry { attempts: u32 },
    /// Attempts are used up: the case is in `needs_review` with the error recorded.
    SentToReview { attempts: u32 },
    /// As in `CompleteResult::LeaseLost`: nothing changed.
    LeaseLost,
}

/// A review decision to record, with the state move it makes. The caller has applied
/// the review rules; the store checks only that the case is still in `from_state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReview {
    pub case_id: CaseId,
    pub tier: kozomol_core::ReviewTier,
    /// The account's login, or the machine's name for auto-approval.
    pub reviewer: String,
    pub decision: kozomol_core::ReviewDecision,
    pub reason: Option<kozomol_core::RejectReason>,
    /// The plate the decision proposes or approves; becomes the case's decided plate.
    pub plate: Option<String>,
    pub note: Option<String>,
    pub from_state: CaseState,
    pub to_state: CaseState,
    /// The case's latest move (the id of its latest audit row with a `to_state`) as
    /// the decider saw it, where the decision was made on what was shown: a case that
    /// moved since, even back to `from_state`, is not decided ([`ReviewWrite::MovedSince`]).
    pub seen_move: Option<i64>,
}

/// What became of a review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewWrite {
    Recorded,
    /// The case had moved on (another reviewer, a worker) or does not exist (`None`);
    /// nothing was written.
    StateChanged(Option<CaseState>),
    /// The case is in `from_state` but moved after the move the decider saw: its latest
    /// move now (`None`: none); nothing was written.
    MovedSince(Option<i64>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReviewRecord {
    pub id: i64,
    pub case_id: CaseId,
    pub tier: kozomol_core::ReviewTier,
    pub reviewer: String,
    pub decision: kozomol_core::ReviewDecision,
    pub reason: Option<kozomol_core::RejectReason>,
    pub plate: Option<String>,
    pub note: Option<String>,
    pub from_state: CaseState,
    pub to_state: CaseState,
    pub decided_at: DateTime<Utc>,
}

// ---- the stages after review -------------------------------------------------------

/// An owner lookup's result as stored; `owner` is set exactly when `outcome` is found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OwnerLookupRecord {
    pub case_id: CaseId,
    pub outcome: kozomol_core::OwnerOutcome,
    pub owner: Option<kozomol_core::OwnerOfRecord>,
    /// The registry's vehicle data (make, model, colour, VIN, ...), as JSON.
    pub vehicle: serde_json::Value,
    /// The registry's owner (birth date, address by parts), as JSON; null where the
    /// registry was not the source (a nominated driver).
    pub registry_owner: serde_json::Value,
    /// Why no one can be fined yet (outcome other than found).
    pub reason: Option<String>,
    /// The X-Road message id of the exchange, for the bus's own logs.
    pub exchange_id: Option<String>,
    pub looked_up_at: DateTime<Utc>,
}

/// A resolution to record as issued; its number was reserved for the case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewResolution {
    pub number: String,
    pub case_id: CaseId,
    pub payment_code: String,
    pub jurisdiction: kozomol_core::Jurisdiction,
    pub article: String,
    pub units: u32,
    pub amount: kozomol_core::Money,
    pub discounted: Option<kozomol_core::Money>,
    pub issued_at: DateTime<Utc>,
    /// The PDF, already written to the evidence store.
    pub pdf: EvidenceRef,
    pub signature: Vec<u8>,
    pub signature_key_id: String,
    /// Whose key signed (e.g. `officer:1234` or `issuer:KG-BSK`).
    pub signer: String,
    /// The offender's earlier resolution that made this offence a repeat.
    pub repeat_of: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolutionRecord {
    pub number: String,
    pub case_id: CaseId,
    pub payment_code: String,
    pub jurisdiction: kozomol_core::Jurisdiction,
    pub article: String,
    pub units: u32,
    pub amount: kozomol_core::Money,
    pub discounted: Option<kozomol_core::Money>,
    pub issued_at: DateTime<Utc>,
    #[serde(serialize_with = "hex_key")]
    pub pdf_sha256: [u8; 32],
    #[serde(skip)]
    pub pdf_location: FrameLocation,
    #[serde(serialize_with = "hex_bytes")]
    pub signature: Vec<u8>,
    pub signature_key_id: String,
    pub signer: String,
    /// The first proven delivery: the discount and appeal clocks run from it. `None`
    /// until a delivery is proven, whatever was sent.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The channel of that delivery.
    pub delivered_via: Option<kozomol_core::DeliveryChannel>,
    /// The offender's earlier resolution that made this offence a repeat.
    pub repeat_of: Option<String>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

/// What the issuing stage reads of one claimed case, read for a whole batch at once
/// ([`crate::FineStages::issuing_reads`]).
#[derive(Clone, Debug)]
pub struct IssuingRead {
    pub case: CaseRecord,
    /// Claims of the case by the issuing stage, this one included.
    pub attempts: u32,
    pub decided_plate: Option<String>,
    pub lookup: Option<OwnerLookupRecord>,
    /// The case a re-issued case came from, whose recognition and reviews it keeps.
    pub reissued_from: Option<CaseId>,
    /// The recognizer's plate crop of the evidence case (`reissued_from`, else this).
    pub crop: Option<EvidenceRef>,
    /// The evidence case's reviews, oldest first.
    pub reviews: Vec<ReviewRecord>,
}
