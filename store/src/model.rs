//! The rows the store reads and writes.

use chrono::{DateTime, Utc};
use kozomol_core::{
    CalibrationCertificate, CameraId, CaseId, CaseState, DeadLetterReason, EventId, FrameRole,
    Role, Site, ViolationKind,
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
    pub status_at: Option<DateTime<Utc>>,
}

fn hex_key<S: serde::Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(key))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraStatusUpdate {
    pub online: bool,
    pub outbox_depth: Option<i64>,
    pub clock_offset_ms: Option<i64>,
    pub at: DateTime<Utc>,
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
    pub camera_id: CameraId,
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
    pub camera_id: CameraId,
    pub captured_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub kind: ViolationKind,
    pub state: CaseState,
    pub plate: Option<String>,
    pub enforceable: bool,
}

/// A filter over cases; every field narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseQuery {
    pub state: Option<CaseState>,
    pub camera: Option<CameraId>,
    /// Exact plate text (upper case, no spaces).
    pub plate: Option<String>,
    /// Capture time, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Capture time, exclusive.
    pub to: Option<DateTime<Utc>>,
    /// Page size; callers bound it.
    pub limit: u32,
    /// Cursor: only ids above this.
    pub after: Option<CaseId>,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub received_at: DateTime<Utc>,
    pub topic: String,
    pub camera_id: Option<String>,
    pub event_id: Option<String>,
    pub reason: DeadLetterReason,
    pub detail: String,
    /// The raw message; the store keeps at most `DEAD_LETTER_RAW_LIMIT` bytes of it.
    pub raw: Vec<u8>,
}

/// How much of a refused message is kept.
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
    #[serde(skip)]
    pub raw: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub login: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub login: String,
    pub role: Role,
    pub password_hash: String,
}
