//! The delivery outbox, shared by both backends: the rows it reads and writes, the
//! checks made before anything is written, the audit row of a proven delivery, and
//! the decoding of stored rows.
//!
//! A resolution's deliveries are planned when it is recorded (one letter to the
//! owner's address, one message per contact on file). Workers claim the due rows of a
//! channel under a lease, send, and record each attempt; a proof of delivery, from the
//! worker (the SMS gateway's delivery report) or from outside (the state portal, a
//! postal return receipt), marks the row delivered, and the first one the resolution.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState, ContactAddress, DeliveryChannel, DeliveryState};
use serde::Serialize;

use crate::audit::{CONTACT_CONFIRMED, DELIVERY_FAILED, RESOLUTION_DELIVERED};
use crate::batch::ChainedAudit;
use crate::error::corrupt;
use crate::recognition::audit_row;
use crate::{EvidenceRef, FrameLocation, StoreError};

/// How far ahead of the store's clock a reported delivery may lie (the reporter's
/// clock may run a little fast); further is a mistake, not a delivery.
pub(crate) const DELIVERY_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// Longer texts (errors, proofs' notes) are cut: they are for people to read.
const ERROR_LIMIT: usize = 2_000;

/// An outbox row's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A print batch's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PrintBatchId(pub i64);

impl fmt::Display for PrintBatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A contact a citizen gave for notices: the owner id an owner lookup names (PIN or
/// INN) and a checked phone number or e-mail address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContact {
    pub owner_id: String,
    pub address: ContactAddress,
    /// Who took it: an officer's login, `portal:...` for a citizen's own form.
    pub added_by: String,
    /// The one vehicle (its plate key, `kozomol_tunduk::plate_key`) whose resolutions
    /// go to the contact: a citizen on the portal proved that vehicle's certificate,
    /// not who the owner is. `None`: every resolution of the owner (an officer saw the
    /// owner's papers).
    pub plate_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContactRecord {
    pub id: i64,
    pub owner_id: String,
    pub channel: DeliveryChannel,
    pub address: String,
    pub added_at: DateTime<Utc>,
    pub added_by: String,
    /// As [`NewContact::plate_key`].
    pub plate_key: Option<String>,
}

/// A contact a citizen asked for on the portal, waiting for the code sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewContactConfirmation {
    /// The request's random handle, the citizen's to name it by.
    pub handle: String,
    /// The fine whose lookup (by plate and certificate) asked for it.
    pub resolution_number: String,
    /// Its plate key is required: a portal contact serves one vehicle.
    pub contact: NewContact,
    /// SHA-256 (hex) of the handle and the code; the code itself is never stored.
    pub code_sha256: String,
    pub expires_at: DateTime<Utc>,
}

/// What became of a code a citizen typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactConfirmed {
    /// The code matched: the contact was stored (or was known already).
    Confirmed(ContactAdded),
    /// The code did not match; `tries_left` more may be typed.
    WrongCode { tries_left: u32 },
    /// Expired, confirmed already or out of tries: a new code must be asked for.
    Lapsed,
    /// No such request for this fine.
    Unknown,
}

/// How many codes may be typed for one request.
pub const CONFIRMATION_TRIES: u32 = 5;
/// How many codes one address is sent an hour, whoever asks: the portal's grant holders
/// cannot flood a stranger's phone with texts.
pub const CODES_PER_ADDRESS_HOUR: i64 = 3;

/// What became of a request for a contact's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeRequest {
    /// Kept: its code may be sent.
    Kept,
    /// The address was sent [`CODES_PER_ADDRESS_HOUR`] codes in the last hour: nothing
    /// kept, no code to send.
    AddressBusy,
}

/// What became of a new contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactAdded {
    /// Stored; `planned` deliveries were queued to it for the owner's resolutions that
    /// no delivery has proven yet.
    Added { id: i64, planned: u32 },
    /// The owner had this contact already: nothing changed.
    AlreadyKnown { id: i64 },
}

/// A delivery taken from the outbox: where it goes and what it carries (the
/// resolution, read by its number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryJob {
    pub id: DeliveryId,
    pub resolution_number: String,
    pub case_id: CaseId,
    pub channel: DeliveryChannel,
    pub address: String,
    /// Sending claims so far, this one included (status checks do not count).
    pub attempt: u32,
    /// The channel's id of what was sent (for a status check).
    pub external_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    /// When the lease ends (on PostgreSQL, by the database server's clock).
    pub leased_until: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// The result of one attempt to hand a delivery to its channel.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    /// The channel took it: the gateway's message id, the mail server's reply.
    Sent {
        external_id: Option<String>,
        /// What the channel answered, kept as the proof of hand-over.
        proof: serde_json::Value,
        /// When to ask the channel whether it was delivered; `None` where the channel
        /// never says (e-mail, post): the proof then comes from outside, if at all.
        check_after: Option<Duration>,
    },
    /// Not handed over. `retry_after`: when to try again (while attempts remain);
    /// `None` gives up at once (the channel refused the address for good).
    Failed {
        error: String,
        retry_after: Option<Duration>,
    },
    /// The channel itself could not be used (its gateway unreachable, our credentials
    /// refused): nothing was wrong with this delivery, so the attempt is recorded but
    /// not counted, and the delivery is due again after `retry_after`. Without this an
    /// outage longer than the backoff would fail every delivery for good.
    Deferred {
        error: String,
        retry_after: Duration,
    },
}

/// Where an attempt left its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    Sent,
    /// Queued again; due once the retry delay has passed.
    WillRetry {
        attempts: u32,
    },
    /// Failed for good after `attempts` attempts.
    GaveUp {
        attempts: u32,
    },
    /// Queued again without counting the attempt; `attempts` is the count kept.
    Deferred {
        attempts: u32,
    },
    /// The worker does not hold the delivery (its lease was taken over, or the row
    /// moved on); nothing was written.
    LeaseLost,
}

/// Which delivery a proof is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryTarget {
    /// A row of the outbox: an SMS whose delivery the gateway reported, a posted
    /// letter whose return receipt came back.
    Outbox(DeliveryId),
    /// A delivery the outbox did not make, reported by `source` (the state portal's
    /// name, an officer who handed it over); recorded as a row of its own.
    Reported {
        channel: DeliveryChannel,
        source: String,
    },
}

/// A proof that a resolution reached its addressee.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvenDelivery {
    pub resolution_number: String,
    pub target: DeliveryTarget,
    /// When it was delivered, as the proof says (not when the proof arrived).
    pub delivered_at: DateTime<Utc>,
    /// The proof itself: the gateway's report, the portal's message, the receipt.
    pub proof: serde_json::Value,
    /// Who records it (the audit row's actor): `fines:worker`, `portal:egov`, a login.
    pub reported_by: String,
}

/// What recording a proof did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryRecorded {
    /// The resolution's first proven delivery: its clocks start at `delivered_at`
    /// (and an `issued` case moved to `delivered`).
    First {
        delivery_id: DeliveryId,
        delivered_at: DateTime<Utc>,
    },
    /// Recorded for this delivery; the resolution was proven delivered before, at
    /// `resolution_delivered_at`, which stands.
    Additional {
        delivery_id: DeliveryId,
        resolution_delivered_at: DateTime<Utc>,
    },
    /// This delivery was proven before: nothing changed.
    AlreadyRecorded { delivery_id: DeliveryId },
}

/// An outbox row as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub resolution_number: String,
    pub case_id: CaseId,
    pub channel: DeliveryChannel,
    pub address: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    pub batch_id: Option<PrintBatchId>,
    /// The letter's first page in its batch's PDF, from 1.
    pub batch_page: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub proof: Option<serde_json::Value>,
}

/// What one attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptKind {
    Sent,
    Failed,
    Delivered,
    /// No proof came while the worker waited for one.
    Unconfirmed,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Sent => "sent",
            AttemptKind::Failed => "failed",
            AttemptKind::Delivered => "delivered",
            AttemptKind::Unconfirmed => "unconfirmed",
        }
    }

    fn parse(raw: &str) -> Result<Self, StoreError> {
        [
            AttemptKind::Sent,
            AttemptKind::Failed,
            AttemptKind::Delivered,
            AttemptKind::Unconfirmed,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
        .ok_or_else(|| corrupt(format!("delivery attempt outcome `{raw}`")))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub delivery_id: DeliveryId,
    /// The delivery's attempt count when it was written.
    pub attempt: u32,
    pub actor: String,
    pub outcome: AttemptKind,
    pub at: DateTime<Utc>,
    pub external_id: Option<String>,
    pub error: Option<String>,
    pub proof: Option<serde_json::Value>,
}

/// A print batch to record: its merged PDF (already in the evidence store) and the
/// claimed postal deliveries in it, each with its first page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPrintBatch {
    pub pdf: EvidenceRef,
    pub pages: u32,
    pub letters: Vec<(DeliveryId, u32)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrintBatchWrite {
    /// Stored, and every letter in it is `sent`.
    Recorded(PrintBatchId),
    /// The worker no longer holds one of the letters: nothing was written (the PDF
    /// stays in the evidence store unreferenced).
    LeaseLost,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrintBatchRecord {
    pub id: PrintBatchId,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(serialize_with = "hex_hash")]
    pub pdf_sha256: [u8; 32],
    #[serde(skip)]
    pub pdf_location: FrameLocation,
    pub pages: u32,
    /// Its letters, by first page.
    pub letters: Vec<(DeliveryId, u32)>,
    /// The cases its letters serve, each once, by id: whose owners the batch names.
    pub cases: Vec<CaseId>,
    /// Whether one of those cases' files was destroyed (the end of its archive period):
    /// the batch names that owner, so it is no longer served.
    pub case_file_destroyed: bool,
    /// When the print room recorded it printed, and who.
    pub printed_at: Option<DateTime<Utc>>,
    pub printed_by: Option<String>,
}

/// A print batch as the print room lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrintBatchSummary {
    pub id: PrintBatchId,
    pub created_at: DateTime<Utc>,
    pub pages: u32,
    pub letters: u32,
    pub printed_at: Option<DateTime<Utc>>,
    pub printed_by: Option<String>,
}

/// What recording a batch printed did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrintBatchPrinted {
    /// Recorded now, audited (`print_batch.printed`).
    Recorded(DateTime<Utc>),
    /// Recorded before: when and by whom; nothing changed.
    AlreadyRecorded { at: DateTime<Utc>, by: String },
}

fn hex_hash<S: serde::Serializer>(hash: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(hash))
}

// ---- shared by both backends ---------------------------------------------------------

/// A person reads these; a runaway error text must not fill the table.
pub(crate) fn bounded(text: &str) -> String {
    if text.len() <= ERROR_LIMIT {
        return text.to_owned();
    }
    let mut end = ERROR_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

pub(crate) fn check_batch(batch: &NewPrintBatch) -> Result<(), StoreError> {
    if batch.letters.is_empty() {
        return Err(StoreError::Invalid("a print batch holds letters".into()));
    }
    let mut ids: Vec<DeliveryId> = batch.letters.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    if ids.len() != batch.letters.len() {
        return Err(StoreError::Invalid(
            "a print batch holds each letter once".into(),
        ));
    }
    if batch
        .letters
        .iter()
        .any(|(_, page)| *page == 0 || *page > batch.pages)
    {
        return Err(StoreError::Invalid(
            "a letter's first page lies within its batch".into(),
        ));
    }
    Ok(())
}

/// The proof's instant must lie after issuing and not in the future.
pub(crate) fn check_delivered_at(
    number: &str,
    issued_at: DateTime<Utc>,
    delivered_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if delivered_at < issued_at {
        return Err(StoreError::Invalid(format!(
            "resolution {number} cannot be delivered at {delivered_at}, before it was issued at {issued_at}"
        )));
    }
    if delivered_at > now + DELIVERY_CLOCK_SKEW {
        return Err(StoreError::Invalid(format!(
            "a delivery at {delivered_at} lies in the future"
        )));
    }
    Ok(())
}

/// The outbox row a proof names: it must belong to the resolution, and the proof
/// must not come before the row was sent (a return receipt dated before its letter's
/// batch would start the appeal and discount windows early). A day's slack: receipts
/// are dated by the day.
pub(crate) fn check_target_row(
    id: DeliveryId,
    number: &str,
    row_number: &str,
    sent_at: Option<DateTime<Utc>>,
    delivered_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if row_number != number {
        return Err(StoreError::Invalid(format!(
            "delivery {id} belongs to resolution {row_number}, not {number}"
        )));
    }
    if let Some(sent_at) = sent_at.filter(|&sent| delivered_at + chrono::Duration::days(1) < sent) {
        return Err(StoreError::Invalid(format!(
            "delivery {id} was sent at {sent_at}: it cannot have been delivered at {delivered_at}"
        )));
    }
    Ok(())
}

pub(crate) fn check_reported(channel: DeliveryChannel, source: &str) -> Result<(), StoreError> {
    if source.trim().is_empty() {
        return Err(StoreError::Invalid(
            "a reported delivery names its source".into(),
        ));
    }
    if matches!(channel, DeliveryChannel::Sms | DeliveryChannel::Email) {
        // Those are the outbox's own: their proofs name the outbox row.
        return Err(StoreError::Invalid(format!(
            "a {channel} delivery is proven through its outbox row"
        )));
    }
    Ok(())
}

pub(crate) fn delivered_detail(
    proof: &ProvenDelivery,
    delivery_id: DeliveryId,
    channel: DeliveryChannel,
    first: bool,
) -> String {
    serde_json::json!({
        "number": proof.resolution_number,
        "delivery_id": delivery_id,
        "channel": channel,
        "delivered_at": proof.delivered_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "first": first,
    })
    .to_string()
}

/// The detail of a delivery that failed for good. The channel's error goes in without
/// the addresses it may quote (a relay's "550 <ivan@mail.kg> User unknown", a
/// gateway's body naming the number): the audit log is never purged, while the
/// attempt's own row, with the whole text, is.
pub(crate) fn failed_detail(id: DeliveryId, channel: &str, attempts: u32, error: &str) -> String {
    serde_json::json!({
        "delivery_id": id.0,
        "channel": channel,
        "attempts": attempts,
        "error": without_addresses(error),
    })
    .to_string()
}

/// `text` with every e-mail address (a word with `@`) and every phone number (a run of
/// digits, spaces, `+`, `-` and brackets holding 9 digits or more: more than a date or
/// a code has) replaced by `[address]`.
pub(crate) fn without_addresses(text: &str) -> String {
    let words: Vec<String> = text
        .split(' ')
        .map(|word| {
            if word.contains('@') {
                "[address]".to_owned()
            } else {
                word.to_owned()
            }
        })
        .collect();
    let text = words.join(" ");
    let chars: Vec<char> = text.chars().collect();
    let in_number = |c: char| c.is_ascii_digit() || " +-()".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() || chars[i] == '+' || chars[i] == '(' {
            let mut end = i;
            while end < chars.len() && in_number(chars[end]) {
                end += 1;
            }
            // What trails the last digit (a space before the next word) stays.
            let mut last = end;
            while last > i && !chars[last - 1].is_ascii_digit() {
                last -= 1;
            }
            let digits = chars[i..last].iter().filter(|c| c.is_ascii_digit()).count();
            if digits >= 9 {
                out.push_str("[address]");
                out.extend(&chars[last..end]);
                i = end;
                continue;
            }
            out.extend(&chars[i..end.max(i + 1)]);
            i = end.max(i + 1);
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The audit row of a delivery that failed for good.
pub(crate) fn failed_audit<'a>(
    case_id: CaseId,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(case_id, DELIVERY_FAILED, None, None, actor, detail, at)
}

/// The audit row of a recorded proof; it moves the case only when this proof started
/// its clocks and the case was still `issued`.
pub(crate) fn delivered_audit<'a>(
    case_id: CaseId,
    moved: bool,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(
        case_id,
        RESOLUTION_DELIVERED,
        moved.then_some(CaseState::Issued),
        moved.then_some(CaseState::Delivered),
        actor,
        detail,
        at,
    )
}

pub(crate) fn channel(raw: &str) -> Result<DeliveryChannel, StoreError> {
    raw.parse()
        .map_err(|e| corrupt(format!("delivery channel: {e}")))
}

/// A stored contact's scope: `''` is every vehicle of the owner.
pub(crate) fn contact_scope(plate_key: String) -> Option<String> {
    (!plate_key.is_empty()).then_some(plate_key)
}

/// A portal contact serves one vehicle: a request without its plate key is a mistake.
pub(crate) fn confirmation_plate_key(request: &NewContactConfirmation) -> Result<&str, StoreError> {
    match request.contact.plate_key.as_deref() {
        Some(key) if !key.is_empty() => Ok(key),
        _ => Err(StoreError::Invalid(
            "a contact confirmed on the portal names the vehicle it serves".into(),
        )),
    }
}

/// How long a lapsed request is kept, so that its code typed late is told "lapsed",
/// not "unknown".
pub(crate) const LAPSED_KEPT: chrono::Duration = chrono::Duration::days(1);

/// A stored request for a contact's confirmation, as both backends read it.
pub(crate) struct PendingConfirmation {
    /// The case of the resolution it was asked under (for the audit row).
    pub case_id: CaseId,
    pub owner_id: String,
    pub plate_key: String,
    pub channel: String,
    pub address: String,
    pub code_sha256: String,
    pub requested_by: String,
    pub expires_at: DateTime<Utc>,
    pub tries: i64,
    pub confirmed: bool,
}

/// The audit row of a confirmed contact: who typed the code (`portal:{client}`), who
/// asked for it, for which fine and vehicle, by which channel; not the address (the
/// log is never purged).
pub(crate) fn contact_confirmed_audit<'a>(
    case_id: CaseId,
    actor: &'a str,
    detail: &'a str,
    at: DateTime<Utc>,
) -> ChainedAudit<'a> {
    audit_row(case_id, CONTACT_CONFIRMED, None, None, actor, detail, at)
}

pub(crate) fn contact_confirmed_detail(number: &str, contact: &NewContact) -> String {
    serde_json::json!({
        "resolution": number,
        "channel": contact.address.channel().as_str(),
        "plate_key": contact.plate_key,
        "requested_by": contact.added_by,
    })
    .to_string()
}

/// The columns both backends read of a request. A macro because `query()` takes only
/// `&'static str`.
macro_rules! pending_confirmation_select {
    ($where:literal) => {
        concat!(
            "SELECT r.case_id, k.owner_id, k.plate_key, k.channel, k.address, k.code_sha256, \
             k.requested_by, k.expires_at, k.tries, k.confirmed_at \
             FROM contact_confirmations k JOIN resolutions r ON r.number = k.resolution_number ",
            $where
        )
    };
}
pub(crate) use pending_confirmation_select;

/// A typed code judged against its request.
pub(crate) enum Judged {
    Lapsed,
    Wrong { tries_left: u32 },
    Right(NewContact),
}

impl PendingConfirmation {
    /// The rule both backends apply to one try, the try itself counted.
    pub(crate) fn judge(self, code_sha256: &str, now: DateTime<Utc>) -> Result<Judged, StoreError> {
        let tried = u32::try_from(self.tries).unwrap_or(u32::MAX);
        if self.confirmed || now >= self.expires_at || tried >= CONFIRMATION_TRIES {
            return Ok(Judged::Lapsed);
        }
        if code_sha256 != self.code_sha256 {
            return Ok(Judged::Wrong {
                tries_left: CONFIRMATION_TRIES - tried - 1,
            });
        }
        let channel = channel(&self.channel)?;
        let address = ContactAddress::parse(channel, &self.address)
            .map_err(|e| corrupt(format!("contact awaiting confirmation: {e}")))?;
        Ok(Judged::Right(NewContact {
            owner_id: self.owner_id,
            address,
            added_by: self.requested_by,
            plate_key: contact_scope(self.plate_key),
        }))
    }
}

pub(crate) fn state(raw: &str) -> Result<DeliveryState, StoreError> {
    raw.parse()
        .map_err(|e| corrupt(format!("delivery state: {e}")))
}

pub(crate) fn kind(raw: &str) -> Result<AttemptKind, StoreError> {
    AttemptKind::parse(raw)
}

pub(crate) fn count(raw: i64, what: &str) -> Result<u32, StoreError> {
    crate::decode::u32_of(raw, what)
}

/// JSON kept as text (SQLite) read back.
pub(crate) fn json_text(raw: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    raw.map(|text| {
        serde_json::from_str(&text).map_err(|e| corrupt(format!("delivery proof json: {e}")))
    })
    .transpose()
}

/// An outbox row's columns as read, instants already decoded.
pub(crate) struct DeliveryColumns {
    pub id: i64,
    pub resolution_number: String,
    pub case_id: i64,
    pub channel: String,
    pub address: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub external_id: Option<String>,
    pub batch_id: Option<i64>,
    pub batch_page: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub proof: Option<serde_json::Value>,
}

impl DeliveryColumns {
    pub(crate) fn record(self) -> Result<DeliveryRecord, StoreError> {
        Ok(DeliveryRecord {
            id: DeliveryId(self.id),
            resolution_number: self.resolution_number,
            case_id: CaseId(self.case_id),
            channel: channel(&self.channel)?,
            address: self.address,
            state: state(&self.state)?,
            attempts: count(self.attempts, "delivery attempts")?,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            external_id: self.external_id,
            batch_id: self.batch_id.map(PrintBatchId),
            batch_page: self
                .batch_page
                .map(|p| count(p, "batch page"))
                .transpose()?,
            created_at: self.created_at,
            sent_at: self.sent_at,
            delivered_at: self.delivered_at,
            proof: self.proof,
        })
    }
}

/// A claimed row's columns.
pub(crate) struct JobColumns {
    pub id: i64,
    pub resolution_number: String,
    pub case_id: i64,
    pub channel: String,
    pub address: String,
    pub attempts: i64,
    pub external_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub leased_until: DateTime<Utc>,
    pub last_error: Option<String>,
}

impl JobColumns {
    pub(crate) fn job(self) -> Result<DeliveryJob, StoreError> {
        Ok(DeliveryJob {
            id: DeliveryId(self.id),
            resolution_number: self.resolution_number,
            case_id: CaseId(self.case_id),
            channel: channel(&self.channel)?,
            address: self.address,
            attempt: count(self.attempts, "delivery attempts")?,
            external_id: self.external_id,
            sent_at: self.sent_at,
            leased_until: self.leased_until,
            last_error: self.last_error,
        })
    }
}

pub(crate) fn sent_proof_json(outcome: &AttemptOutcome) -> Option<String> {
    match outcome {
        AttemptOutcome::Sent { proof, .. } => Some(proof.to_string()),
        AttemptOutcome::Failed { .. } | AttemptOutcome::Deferred { .. } => None,
    }
}

/// The proof a print batch leaves on each of its letters.
pub(crate) fn batch_proof(batch_id: PrintBatchId, batch: &NewPrintBatch, page: u32) -> String {
    serde_json::json!({
        "print_batch": batch_id,
        "pdf_sha256": hex::encode(batch.pdf.sha256),
        "first_page": page,
        "pages": batch.pages,
    })
    .to_string()
}

/// The external id of a letter: its batch and page, what the post office is told.
pub(crate) fn letter_id(batch_id: PrintBatchId, page: u32) -> String {
    format!("batch-{batch_id}-p{page}")
}

/// A `delivery_attempts` row to write; its attempt number is the delivery's count.
pub(crate) struct AttemptRow<'a> {
    pub id: DeliveryId,
    pub actor: &'a str,
    pub outcome: AttemptKind,
    pub at: DateTime<Utc>,
    pub external_id: Option<&'a str>,
    pub error: Option<&'a str>,
    pub proof: Option<&'a str>,
}

/// The audit detail of a print batch recorded printed.
pub(crate) fn printed_detail(id: PrintBatchId) -> String {
    serde_json::json!({ "print_batch": id.0 }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_audited_names_no_address() {
        for (error, audited) in [
            (
                "smtp: permanent error (550): 5.1.1 <ivan@mail.kg> User unknown",
                "smtp: permanent error (550): 5.1.1 [address] User unknown",
            ),
            (
                "sms gateway answered 422: number +996 555 123456 is not in service",
                "sms gateway answered 422: number [address] is not in service",
            ),
            (
                "sms gateway answered 422: +996555123456 blocked",
                "sms gateway answered 422: [address] blocked",
            ),
            (
                "to \"+996(555)12-34-56\", refused",
                "to \"[address]\", refused",
            ),
            ("0555 123 456 unreachable", "[address] unreachable"),
            (
                "smtp: transient error (421): 4.7.0 try again",
                "smtp: transient error (421): 4.7.0 try again",
            ),
            (
                "timed out after 10s at 2026-12-07T08:00:00Z",
                "timed out after 10s at 2026-12-07T08:00:00Z",
            ),
            ("", ""),
        ] {
            assert_eq!(without_addresses(error), audited, "{error}");
        }
    }
}
