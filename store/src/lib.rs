//! kozomol-store: persistence behind one trait per aggregate.
//!
//! It owns the schema and its migrations (one folder per backend), the SQLite
//! implementation (the embedded default, WAL) and the PostgreSQL one (production),
//! the evidence segment files that hold frames content-addressed, and the audit log.
//! One behavioural suite (`tests/conformance.rs`) runs against both backends.
//!
//! Cases also form the recognition queue ([`RecognitionQueue`]): every case in state
//! `received` waits for a recognizer, which claims a few under a time-limited lease,
//! reads their plates and completes or fails each one. A lease that runs out (its
//! worker crashed or hung) puts the case back in the queue, so a case is never lost,
//! and repeated failures end in `needs_review`, so no case blocks the queue forever.
//! Review decisions ([`ReviewLog`]) move cases on from there, each with its audit row.
//! Before an approved case's owner is looked up, the checks before issuing read the
//! exemption list, the hot list and the plate's other sightings ([`PreIssueChecks`]).
//! Issued resolutions go out through the delivery outbox ([`DeliveryOutbox`]); once
//! delivered, a case's clocks run ([`CaseClocks`]) until it is paid, lapses, or an
//! appeal or a bulk void ends it ([`Appeals`]). Officers file violations they saw and
//! road accidents themselves ([`OfficerFilings`]).
//! An owner may name the driver or report the car stolen, and repeat offences count
//! per offender ([`Offenders`]). Payments reported for a resolution's payment code are
//! recorded once each and applied to the fine ([`PaymentLedger`]). Settled cases lose
//! their personal data after the retention period ([`PersonalDataRetention`]).

pub mod accidents;
mod accounts;
pub mod appeals;
pub mod audit;
mod batch;
pub mod checks;
mod decode;
mod delivery;
pub mod destruction;
mod error;
pub mod evidence;
mod migrate;
mod model;
pub mod nominations;
pub mod payment_intents;
pub mod payments;
mod postgres;
mod postgres_accidents;
mod postgres_appeals;
mod postgres_checks;
mod postgres_delivery;
mod postgres_nominations;
mod postgres_payment_intents;
mod postgres_payments;
mod postgres_recognition;
mod postgres_reconciliation;
mod postgres_retention;
mod postgres_review;
mod postgres_stages;
mod postgres_subscriptions;
mod recognition;
pub mod reconciliation;
pub mod retention;
mod review;
mod sqlite;
mod sqlite_accidents;
mod sqlite_appeals;
mod sqlite_checks;
mod sqlite_delivery;
mod sqlite_nominations;
mod sqlite_payment_intents;
mod sqlite_payments;
mod sqlite_recognition;
mod sqlite_reconciliation;
mod sqlite_retention;
mod sqlite_review;
mod sqlite_stages;
mod sqlite_subscriptions;
mod stages;
pub mod subscriptions;

pub use accidents::{
    AccidentFileRecord, AccidentFileRole, AccidentMove, AccidentMoveRecord, AccidentMoved,
    AccidentOutcome, AccidentParticipant, AccidentQuery, AccidentRecord, AccidentRegistered,
    AccidentState, AccidentSummary, AccidentVehicle, Injury, NewAccident, NewAccidentFile,
    NewOfficerViolation, OfficerFiled, ParticipantRole,
};
pub use accounts::{
    AccountChange, AccountChanged, Allowance, CheckedAccount, CredentialStored, ACCOUNT_CHANGED,
    ACCOUNT_CREATED, OFFICER_REGISTERED,
};
pub use appeals::{
    AppealDecided, AppealFiled, AppealRecord, AppealState, AttachmentRecord, BulkVoidRequest,
    BulkVoidResult, DeadlineWrite, DueClock, NewAppeal, NewAttachment, RefundOutcome,
    RefundRequestRecord, RefundSettled, RefundSettlement, StoredClock,
};
pub use checks::{
    AlertAcknowledged, AlertKind, AlertQuery, AlertRaised, AlertRecord, ChecksPassed,
    ExemptionRecord, HotListRecord, NewAlert, NewExemption, NewHotListEntry, PlateSighting,
    PreIssueChecks, SightingSite, SightingsQuery,
};
pub use delivery::{
    AttemptKind, AttemptOutcome, AttemptRecord, AttemptResult, CodeRequest, ContactAdded,
    ContactConfirmed, ContactRecord, DeliveryId, DeliveryJob, DeliveryRecord, DeliveryRecorded,
    DeliveryTarget, NewContact, NewContactConfirmation, NewPrintBatch, PrintBatchId,
    PrintBatchPrinted, PrintBatchRecord, PrintBatchSummary, PrintBatchWrite, ProvenDelivery,
    CODES_PER_ADDRESS_HOUR, CONFIRMATION_TRIES,
};
pub use destruction::{DestructionReport, Erasure};
pub use error::StoreError;
pub use evidence::{scan_segment, EvidenceStore, FrameLocation, SegmentInfo, SegmentScan};
pub use model::*;
pub use nominations::{
    Claim, NewNomination, NominatedDriver, NominationRecord, NominationRecorded,
    OffenderResolution, Offenders,
};
pub use payment_intents::{
    CallbackOutcome, CallbackRecord, IdempotencyClaim, IdempotentStart, IntentCancelled,
    IntentRefusal, IntentStatus, NewCallback, NewPaymentIntent, PaymentIntent, StoredResponse,
};
pub use payments::{
    AppealGist, ClockRestart, NewPayment, PayerView, PaymentChannel, PaymentPosted, PaymentQuote,
    PaymentRecord, PaymentRefusal, PaymentReversal, PaymentReversed, PAYMENT_POSTED,
    PAYMENT_REVERSED,
};
pub use reconciliation::{
    daily_totals, DayTotals, LineReconciled, LineResolution, LineResolved, LineStatus,
    NewStatementLine, StatementLineRecord,
};
pub use retention::PurgeReport;
pub use subscriptions::{
    notice_address, noticed_subscription, NewSubscription, Subscribed, SubscriptionRecord,
    Unsubscribed,
};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kozomol_core::{CameraId, CaseId};

/// The device register: cameras with their keys, measuring devices, certificates and
/// sites, and what the cameras last said about themselves.
#[async_trait]
pub trait CameraRegister: Send + Sync {
    /// Adds or updates a camera; its certificate is added to the device's list.
    async fn register_camera(&self, camera: &CameraRegistration) -> Result<(), StoreError>;
    async fn camera(&self, id: &CameraId) -> Result<Option<CameraRecord>, StoreError>;
    async fn cameras(&self) -> Result<Vec<CameraRecord>, StoreError>;
    /// Records a status message (retained `.../status` topic).
    async fn record_camera_status(
        &self,
        id: &CameraId,
        status: &CameraStatusUpdate,
    ) -> Result<(), StoreError>;
}

/// Cases: written by ingest in batches, read by the API.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Writes a batch of cases, their frames' index rows and one audit row each, in
    /// one transaction. Dedupe is by (camera, event id): the same fingerprint again
    /// gives `Duplicate`, another fingerprint `Conflict`; both leave the store as it was.
    /// Repeats inside `cases` are treated the same way. Updates the cameras' last-seen.
    async fn record_cases(
        &self,
        cases: &[NewCase],
        actor: &str,
    ) -> Result<Vec<CaseWrite>, StoreError>;
    async fn case(&self, id: CaseId) -> Result<Option<CaseRecord>, StoreError>;
    /// Cases matching `query`, by ascending id, after `query.after`.
    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseSummary>, StoreError>;
    /// How many cases match the filters of `query`; its `after` and `limit` are ignored.
    async fn count_cases(&self, query: &CaseQuery) -> Result<u64, StoreError>;
    /// Review decisions, time to decision, resolutions issued and money kept over
    /// `[from, to)`.
    async fn work_summary(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<WorkSummary, StoreError>;
    /// Cases captured in `[from, to)` counted per UTC hour, site (as each case's event
    /// names it) and kind, with how many of them became fines: open data, no plate or
    /// person in it.
    async fn hourly_counts(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<HourlyCount>, StoreError>;
    /// How many cases wait in each of `CaseState::WAITING`, and since when the
    /// oldest was received: the queue depths and ages on `/metrics`.
    async fn backlog(&self) -> Result<Vec<Backlog>, StoreError>;
    /// Which of these frame hashes already have evidence stored.
    async fn known_frames(&self, sha256s: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>, StoreError>;
    /// The audit rows of one case, oldest first.
    async fn case_audit(&self, id: CaseId) -> Result<Vec<AuditEntry>, StoreError>;
    /// The traces these cases belong to (those that have one), for the spans of the
    /// stage that claimed them.
    async fn trace_parents(
        &self,
        cases: &[CaseId],
    ) -> Result<HashMap<CaseId, kozomol_core::TraceParent>, StoreError>;
    /// Where each of `cases` was seen, as its event (or officer's report) says; a case
    /// whose record names no place is left out.
    async fn case_places(&self, cases: &[CaseId])
        -> Result<HashMap<CaseId, CasePlace>, StoreError>;
}

/// Messages that were refused, with the reason and (bounded) raw bytes.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    async fn record_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError>;
    /// By ascending id, after `after`; without their bytes, which a page of letters
    /// kept whole (`unstorable`, up to 2 MiB each) would make large.
    async fn dead_letters(
        &self,
        limit: u32,
        after: Option<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError>;
    /// Letter `id`'s length as received and the bytes kept of it (none once purged);
    /// `None` where there is no such letter.
    async fn dead_letter_raw(&self, id: i64) -> Result<Option<(i64, Vec<u8>)>, StoreError>;
}

/// The audit log as a whole: rows written on their own (views of personal data), read
/// in id order, and sealed (see `audit`).
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Writes one audit row as a batch of its own.
    async fn record_audit(&self, entry: &NewAuditEntry) -> Result<(), StoreError>;
    /// At most `limit` audit rows with ids above `after`, in id order.
    async fn audit_rows(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// At most `limit` seals with ids above `after`, in id order.
    async fn audit_seals(&self, after: i64, limit: u32) -> Result<Vec<AuditSeal>, StoreError>;
    /// The log as one moment sees it, for a check that reads it in pages: on
    /// PostgreSQL ids are handed out before their transactions commit, so pages read
    /// one by one could meet a batch's later row without its earlier one.
    async fn audit_snapshot(&self) -> Result<Box<dyn AuditSnapshot>, StoreError>;
    /// Seals the rows after the last seal, in id order, up to (not including) the
    /// first written at or after `settled` and at most `limit` of them; `None` when
    /// there is none, or another process sealed first. `settled` lags now by more than
    /// any transaction lasts, so no row commits later under an id already sealed.
    async fn seal_audit(
        &self,
        settled: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> Result<Option<AuditSeal>, StoreError>;
}

/// The audit log read in one snapshot (`AuditTrail::audit_snapshot`).
#[async_trait]
pub trait AuditSnapshot: Send + Sync {
    /// At most `limit` audit rows with ids above `after`, in id order.
    async fn rows(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, StoreError>;
    /// At most `limit` seals with ids above `after`, in id order.
    async fn seals(&self, after: i64, limit: u32) -> Result<Vec<AuditSeal>, StoreError>;
}

/// Accounts, roles and API tokens (only token hashes are stored).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Takes one attempt from `key`'s budget, which every process on this database
    /// shares; `Ok(Err(wait))` when none is left (nothing is taken then). Keys are kept
    /// hashed; budgets full again are dropped as others are taken.
    async fn take_allowance(
        &self,
        key: &str,
        allowance: Allowance,
    ) -> Result<Result<(), Duration>, StoreError>;
    /// Gives `key` its whole budget back (a login that succeeded).
    async fn reset_allowance(&self, key: &str) -> Result<(), StoreError>;
    /// Makes an account, audited (`account.created`, with its register entry if any);
    /// `Conflict` when the login or the badge is taken.
    async fn create_account(&self, account: &NewAccount) -> Result<AccountId, StoreError>;
    /// Sets an account's entry in the officers' register, audited
    /// (`account.officer_registered`); `None` when no account has the login, `Conflict`
    /// when the badge is another account's.
    async fn register_officer(
        &self,
        login: &str,
        officer: &OfficerIdentity,
        by: &str,
    ) -> Result<Option<Account>, StoreError>;
    /// The register's entries of those of `logins` that have one, by login.
    async fn officers(
        &self,
        logins: &[&str],
    ) -> Result<HashMap<String, OfficerIdentity>, StoreError>;
    async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError>;
    /// Keeps an API token (its SHA-256) of `account` while it stands as checked.
    async fn store_token(
        &self,
        account: CheckedAccount<'_>,
        token_sha256: &[u8; 32],
        label: &str,
    ) -> Result<CredentialStored, StoreError>;
    async fn account_by_token(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<Account>, StoreError>;
    /// Every account, by login (for the admin's account list).
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// Changes `login`'s role, password or standing, audited (`account.changed`, by
    /// `by`); a new password or disabling ends the account's tokens and sessions. Refused
    /// (`LastAdmin`) where no admin in use would be left.
    async fn change_account(
        &self,
        login: &str,
        change: &AccountChange,
        by: &str,
    ) -> Result<AccountChanged, StoreError>;
    /// Keeps a browser session (its id's SHA-256) of `account`, while it stands as
    /// checked, until `expires_at`; sessions expired by now are dropped on the way.
    async fn open_web_session(
        &self,
        account: CheckedAccount<'_>,
        session_sha256: &[u8; 32],
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<CredentialStored, StoreError>;
    /// The account of a session that has not expired at `now`.
    async fn account_by_web_session(
        &self,
        session_sha256: &[u8; 32],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Account>, StoreError>;
    /// Ends a session (logging out); nothing when it is unknown.
    async fn close_web_session(&self, session_sha256: &[u8; 32]) -> Result<(), StoreError>;
}

/// The plate-recognition queue over cases in state `received`.
///
/// A worker name identifies one recognizer process (say `host:pid`) and must not be
/// shared by two live processes: the lease is checked by name. A lease guards a case
/// until it expires; once expired the case can be claimed again (the attempt counter
/// says how often it was), and only then is the first worker's lease lost. A worker
/// whose lease expired but was not taken over can still complete or fail the case.
#[async_trait]
pub trait RecognitionQueue: Send + Sync {
    /// Takes up to `limit` cases in state `received` that hold no live lease, in the
    /// order they were received (by id), and leases them to `worker` for `lease`.
    /// Concurrent claims, from this process or others, never take the same case.
    /// Durations above a year count as a year.
    async fn claim_recognition(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<RecognitionJob>, StoreError>;

    /// Stores `outcome` (and its crop's location), moves the case to the state the
    /// outcome names and audits the change, in one transaction; or, when the case is
    /// not `received` under `worker`'s lease, changes nothing and says `LeaseLost`.
    async fn complete_recognition(
        &self,
        worker: &str,
        outcome: &RecognitionOutcome,
    ) -> Result<CompleteResult, StoreError>;

    /// Records that `worker` could not recognise the case. Once the case has been
    /// claimed `max_attempts` times it goes to `needs_review` with `error` stored as
    /// its recognition (and audited); before that it returns to the queue when
    /// `retry_after` has passed. `None`: an outage, not the case's fault — the claim
    /// is not counted and the case always returns. `LeaseLost` as for
    /// `complete_recognition`.
    async fn fail_recognition(
        &self,
        worker: &str,
        case_id: CaseId,
        error: &str,
        retry_after: Duration,
        max_attempts: Option<u32>,
    ) -> Result<FailResult, StoreError>;

    /// The stored recognition of a case, if it has one.
    async fn recognition(&self, case_id: CaseId) -> Result<Option<RecognitionRecord>, StoreError>;
}

/// Review decisions: every decision moves its case and is kept with its audit row.
#[async_trait]
pub trait ReviewLog: Send + Sync {
    /// Moves the case from `review.from_state` to `review.to_state`, sets its decided
    /// plate when the review names one, and stores the review and its audit row, in one
    /// transaction; or, when the case is no longer in `from_state`, writes nothing and
    /// says where it is. Two reviewers deciding at once: one is recorded, the other
    /// told the state changed. A decision ends any stage lease held on the case.
    async fn record_review(&self, review: &NewReview) -> Result<ReviewWrite, StoreError>;
    /// A case's reviews, oldest first.
    async fn reviews(&self, case_id: CaseId) -> Result<Vec<ReviewRecord>, StoreError>;
    /// The plate the fine will name, once a review proposed or approved one.
    async fn decided_plate(&self, case_id: CaseId) -> Result<Option<String>, StoreError>;
}

/// The stages that take an approved case to an issued resolution. Each stage's queue
/// is the cases in its state (`approved`: owner lookup; `owner_found`: issuing), claimed
/// under a lease exactly as recognition jobs are: concurrent claims never take the
/// same case, and an expired lease makes the case claimable again.
#[async_trait]
pub trait FineStages: Send + Sync {
    /// Takes up to `limit` cases in `state` (`approved` or `owner_found`) that hold no
    /// live stage lease, oldest first, and leases them to `worker`.
    async fn claim_stage(
        &self,
        state: kozomol_core::CaseState,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<CaseId>, StoreError>;

    /// Stores the lookup and moves the case from `approved` to `owner_found` (found)
    /// or `owner_unknown` (anything else, with the reason), audited, in one
    /// transaction; `LeaseLost` when `worker` does not hold the case in `approved`.
    async fn record_owner_lookup(
        &self,
        worker: &str,
        lookup: &OwnerLookupRecord,
    ) -> Result<CompleteResult, StoreError>;

    async fn owner_lookup(&self, case_id: CaseId) -> Result<Option<OwnerLookupRecord>, StoreError>;

    /// The owner lookups of those of `cases` that have one, in no order: a page of
    /// cases in one query, not one per case.
    async fn owner_lookups(&self, cases: &[CaseId]) -> Result<Vec<OwnerLookupRecord>, StoreError>;

    /// What issuing reads of each case, in the order of `cases` (`None` for a case
    /// that does not exist): a claimed batch's reads in a few queries, not several per
    /// case.
    async fn issuing_reads(&self, cases: &[CaseId])
        -> Result<Vec<Option<IssuingRead>>, StoreError>;

    /// The sequence numbers of the cases' resolutions for `issuer` and `year`, in the
    /// order of `cases`: for each, the one reserved for it before, or the next free
    /// one, reserved now, all in one transaction (an issuing batch pays for one commit).
    /// Numbers never repeat; a retry of the same case gets the same one.
    async fn reserve_resolution_numbers(
        &self,
        cases: &[CaseId],
        issuer: &str,
        year: i32,
    ) -> Result<Vec<u64>, StoreError>;

    /// [`FineStages::reserve_resolution_numbers`] for one case.
    async fn reserve_resolution_number(
        &self,
        case_id: CaseId,
        issuer: &str,
        year: i32,
    ) -> Result<u64, StoreError> {
        let numbers = self
            .reserve_resolution_numbers(&[case_id], issuer, year)
            .await?;
        numbers
            .first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no resolution number reserved".into()))
    }

    /// Stores each issued resolution (its PDF already in the evidence store) and moves
    /// its case from `owner_found` to `issued`, audited; `LeaseLost` as for the lookup,
    /// per resolution, in the order given. The same transaction plans their deliveries
    /// (see [`DeliveryOutbox`]): a letter when the owner lookup has an address, and a
    /// message to each contact the owner left, so nothing issued can miss its delivery.
    /// All of them go in one transaction (one commit for an issuing batch): an error
    /// writes none of them.
    async fn record_resolutions(
        &self,
        worker: &str,
        resolutions: &[NewResolution],
    ) -> Result<Vec<CompleteResult>, StoreError>;

    /// [`FineStages::record_resolutions`] for one resolution.
    async fn record_resolution(
        &self,
        worker: &str,
        resolution: &NewResolution,
    ) -> Result<CompleteResult, StoreError> {
        let results = self
            .record_resolutions(worker, std::slice::from_ref(resolution))
            .await?;
        results
            .first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("no resolution recorded".into()))
    }

    /// How many times a stage claimed the case since it last moved (0 for none).
    async fn stage_attempts(&self, case_id: CaseId) -> Result<u32, StoreError>;

    /// Moves a case the stage cannot finish from `from` to `to` (where a person takes
    /// it up, e.g. `supervisor_review`), keeping `reason` on the case and in the audit;
    /// `LeaseLost` when `worker` does not hold the case in `from`.
    async fn set_aside(
        &self,
        worker: &str,
        case_id: CaseId,
        from: kozomol_core::CaseState,
        to: kozomol_core::CaseState,
        reason: &str,
    ) -> Result<CompleteResult, StoreError>;

    async fn resolution(&self, number: &str) -> Result<Option<ResolutionRecord>, StoreError>;
    async fn resolution_of_case(
        &self,
        case_id: CaseId,
    ) -> Result<Option<ResolutionRecord>, StoreError>;

    /// The resolutions of those of `cases` that have one, in no order.
    async fn resolutions_of_cases(
        &self,
        cases: &[CaseId],
    ) -> Result<Vec<ResolutionRecord>, StoreError>;
}

/// The delivery outbox of issued resolutions, and the contacts citizens leave for it.
///
/// A delivery is one resolution to one address by one channel: a letter (`post`, the
/// owner's address from the lookup), a text (`sms`) or an e-mail (`email`) to a contact
/// on file, or one another system reports (`portal`). Workers claim the due rows of a
/// channel under a lease exactly as the stages claim cases (concurrent claims never
/// take the same row; an expired lease makes it claimable again; a worker name must
/// not be shared by two live processes). Sending is at least once: a worker that dies
/// after the channel took a message but before recording it leaves the row to be sent
/// again when the lease ends, so senders pass the delivery id on as an idempotency key.
/// Proofs are idempotent: the first proof of a row marks it delivered, the first proof
/// of a resolution sets its `delivered_at` (which starts the clocks), and the same
/// proof again changes nothing.
#[async_trait]
pub trait DeliveryOutbox: Send + Sync {
    /// Stores a contact and queues a delivery to it for each of the owner's resolutions
    /// no delivery has proven yet; the same contact again changes nothing.
    async fn add_contact(&self, contact: &NewContact) -> Result<ContactAdded, StoreError>;
    /// The owner's contacts, oldest first.
    async fn contacts(&self, owner_id: &str) -> Result<Vec<ContactRecord>, StoreError>;
    /// Keeps a portal contact waiting for its code, unless its address was sent
    /// [`CODES_PER_ADDRESS_HOUR`] codes in the last hour (and drops requests lapsed a
    /// day ago: they hold an address no one confirmed).
    async fn request_contact_confirmation(
        &self,
        request: &NewContactConfirmation,
    ) -> Result<CodeRequest, StoreError>;
    /// Counts one try of the code whose SHA-256 (with the handle) is `code_sha256`
    /// against the request `handle` of resolution `number`; the right code, within
    /// [`CONFIRMATION_TRIES`] and before it expires, stores the contact as
    /// [`DeliveryOutbox::add_contact`] does, with its audit row
    /// (`owner.contact_confirmed`, actor `by`: who typed the code), in the same
    /// transaction.
    async fn confirm_contact(
        &self,
        number: &str,
        handle: &str,
        code_sha256: &str,
        by: &str,
    ) -> Result<ContactConfirmed, StoreError>;

    /// Extends `worker`'s lease on a delivery it claimed for sending to `lease` from now;
    /// `false` when it no longer holds it (the lease ran out, and another worker may have
    /// claimed it): then it must not be sent. Asked before each send, so a batch whose
    /// sends run long never sends a message another worker sends too.
    async fn renew_delivery_lease(
        &self,
        worker: &str,
        id: DeliveryId,
        lease: Duration,
    ) -> Result<bool, StoreError>;

    /// Gives back deliveries `worker` claimed for sending and never tried (a lease that
    /// ran out before their turn): queued again, due at once, their claim not counted
    /// as an attempt. Rows another worker holds now are
    /// left as they are.
    async fn release_deliveries(&self, worker: &str, ids: &[DeliveryId]) -> Result<(), StoreError>;

    /// Takes up to `limit` due deliveries of `channel` (queued with their attempt time
    /// passed, or left `sending` by a worker whose lease ran out), earliest due first,
    /// leases them to `worker` and counts the attempt.
    async fn claim_deliveries(
        &self,
        channel: kozomol_core::DeliveryChannel,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>, StoreError>;

    /// Takes up to `limit` `sent` deliveries of `channel` whose status check is due and
    /// leases them to `worker`; the attempt count stays.
    async fn claim_unconfirmed(
        &self,
        channel: kozomol_core::DeliveryChannel,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>, StoreError>;

    /// Records an attempt on a delivery `worker` holds and ends the lease: `Sent` (from
    /// `sending` only) keeps the channel's id and answer; `Failed` queues the delivery
    /// again after its delay, or gives up (state `failed`) once it was claimed
    /// `max_attempts` times or when no retry is asked for; `Deferred` queues it again
    /// without counting the attempt (the channel was down, not the delivery at fault).
    async fn record_attempt(
        &self,
        worker: &str,
        id: DeliveryId,
        outcome: &AttemptOutcome,
        max_attempts: u32,
    ) -> Result<AttemptResult, StoreError>;

    /// After a status check that proved nothing: the next check is due after
    /// `next_check`, or, with `None`, the worker stops asking and records the delivery
    /// as unconfirmed with `note` (it stays `sent`; a proof may still come from outside).
    async fn check_later(
        &self,
        worker: &str,
        id: DeliveryId,
        next_check: Option<Duration>,
        note: &str,
    ) -> Result<crate::CompleteResult, StoreError>;

    /// Records a proof of delivery (see [`DeliveryRecorded`]), with its attempt row and
    /// an audit row, in one transaction. `NotFound` when the resolution or the outbox
    /// row does not exist; `Invalid` when the row is another resolution's, or the
    /// instant lies before issuing or in the future.
    async fn record_delivery(&self, proof: &ProvenDelivery)
        -> Result<DeliveryRecorded, StoreError>;

    /// Records a print batch of postal deliveries `worker` holds: the batch, and each
    /// letter `sent` with its page, in one transaction.
    async fn record_print_batch(
        &self,
        worker: &str,
        batch: &NewPrintBatch,
    ) -> Result<PrintBatchWrite, StoreError>;

    /// A resolution's deliveries, by id.
    async fn deliveries(&self, resolution_number: &str) -> Result<Vec<DeliveryRecord>, StoreError>;
    async fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError>;
    /// A delivery's attempts, oldest first.
    async fn delivery_attempts(&self, id: DeliveryId) -> Result<Vec<AttemptRecord>, StoreError>;
    async fn print_batch(&self, id: PrintBatchId) -> Result<Option<PrintBatchRecord>, StoreError>;

    /// Print batches by id after `after`, at most `limit`; where `printed` is given,
    /// only those recorded printed (`true`) or not yet (`false`).
    async fn print_batches(
        &self,
        printed: Option<bool>,
        after: Option<PrintBatchId>,
        limit: u32,
    ) -> Result<Vec<PrintBatchSummary>, StoreError>;

    /// Records the batch printed by `by`, once, with its audit row; `None` when there is
    /// no such batch.
    async fn record_print_batch_printed(
        &self,
        id: PrintBatchId,
        by: &str,
    ) -> Result<Option<PrintBatchPrinted>, StoreError>;
}

/// A delivered case's clocks: dated once delivery is proven (and again after a
/// rejected appeal), then moved on by the deadlines scheduler.
#[async_trait]
pub trait CaseClocks: Send + Sync {
    /// Takes up to `limit` cases whose clocks need dating — `delivered` without a clock,
    /// or `appeal_rejected` — that hold no live stage lease, and leases them.
    async fn claim_undated(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<CaseId>, StoreError>;

    /// Stores the case's clock and moves it from `from` to `to` (the same state when
    /// only the clock is new), audited, in one transaction; `LeaseLost` when `worker`
    /// does not hold the case in `from`.
    async fn record_clock(
        &self,
        worker: &str,
        from: kozomol_core::CaseState,
        to: kozomol_core::CaseState,
        clock: &StoredClock,
        detail: &str,
    ) -> Result<CompleteResult, StoreError>;

    async fn clock(&self, case_id: CaseId) -> Result<Option<StoredClock>, StoreError>;

    /// Up to `limit` clocks whose wake-up day is `today` or earlier, earliest first.
    async fn due_clocks(
        &self,
        today: chrono::NaiveDate,
        limit: u32,
    ) -> Result<Vec<DueClock>, StoreError>;

    /// Applies one deadline move with its audit row if the case and its clock are
    /// still as the scheduler read them; false (nothing written) otherwise.
    async fn apply_deadline(&self, write: &DeadlineWrite<'_>) -> Result<bool, StoreError>;
}

/// Appeals against resolutions, bulk voids, and the refund requests they queue.
#[async_trait]
pub trait Appeals: Send + Sync {
    /// Files an appeal (attachments already in the evidence store) and moves the case
    /// to `appealed`, pausing its clocks, in one transaction.
    async fn file_appeal(&self, appeal: &NewAppeal) -> Result<AppealFiled, StoreError>;

    async fn appeal(&self, id: i64) -> Result<Option<AppealRecord>, StoreError>;

    async fn appeals_of_case(&self, case_id: CaseId) -> Result<Vec<AppealRecord>, StoreError>;

    /// Decides an open appeal: `Rejected` (the case goes to `appeal_rejected`, whose
    /// clocks are dated again) or `Annulled` (to `annulled`, with a refund request when
    /// money was taken), audited, in one transaction.
    async fn decide_appeal(
        &self,
        id: i64,
        decision: AppealState,
        decided_by: &str,
        note: &str,
    ) -> Result<AppealDecided, StoreError>;

    /// Voids every case not yet closed whose event names the device and whose capture
    /// falls in the range, queues refunds where money was taken, and records the void.
    async fn bulk_void(&self, request: &BulkVoidRequest) -> Result<BulkVoidResult, StoreError>;

    /// Refund requests after `after_id`, in id order.
    async fn refund_requests(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<RefundRequestRecord>, StoreError>;

    /// Settles a queued refund request (`refunded` with the transfer's reference, or
    /// `cancelled` with why), audited, once: a settled one is answered as it stands.
    async fn settle_refund(
        &self,
        settlement: &RefundSettlement,
    ) -> Result<RefundSettled, StoreError>;
}

/// What officers file themselves: violations they saw, which become cases in
/// `approved` with no camera behind them, and road accidents, whose investigation is
/// a flow of its own.
#[async_trait]
pub trait OfficerFilings: Send + Sync {
    /// Stores the report as a case in `approved` (its plate the decided one), the
    /// photos as its frames, who filed it and under which accident, and its audit row,
    /// in one transaction. Dedupe is by the report id: the same report again gives
    /// `Duplicate`, another report under that id `Conflict`; neither writes anything.
    /// Nothing is filed under an accident that does not exist or whose investigation
    /// is closed.
    async fn file_officer_violation(
        &self,
        filing: &NewOfficerViolation,
    ) -> Result<OfficerFiled, StoreError>;

    /// Stores an accident in `registered` with its vehicles, participants and files
    /// (already in the evidence store), its first move and audit row, in one
    /// transaction; a report id seen before gives `Duplicate` and writes nothing.
    async fn register_accident(
        &self,
        accident: &NewAccident,
    ) -> Result<AccidentRegistered, StoreError>;

    async fn accident(&self, id: i64) -> Result<Option<AccidentRecord>, StoreError>;

    async fn accidents(&self, query: &AccidentQuery) -> Result<Vec<AccidentSummary>, StoreError>;

    /// Moves an accident from `step.from` to `step.to` with its history row and audit
    /// row, in one transaction, or, when it is no longer in `step.from`, writes nothing
    /// and says where it is.
    async fn move_accident(&self, step: &AccidentMove) -> Result<AccidentMoved, StoreError>;
}

/// The payments ledger (`payments`).
#[async_trait]
pub trait PaymentLedger: Send + Sync {
    /// Records `payment` for the fine with its payment code and applies it, in one
    /// transaction with the case's move and its audit row; the same reporter's same id
    /// again changes nothing (`AlreadyPosted`), and a payment the fine cannot take is
    /// refused, not recorded.
    async fn post_payment(&self, payment: &NewPayment) -> Result<PaymentPosted, StoreError>;

    /// What the fine with `payment_code` would take from a payer paying at `at`
    /// (a bank's check before it pays), or why it would take nothing.
    async fn payment_quote(
        &self,
        payment_code: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Result<PaymentQuote, PaymentRefusal>, StoreError>;

    /// Marks a payment reversed (it stays in the ledger and no longer counts) and moves
    /// the case back as the remaining money decides, in one transaction with its audit
    /// row; a case back in a state whose clocks run has them restarted by
    /// `reversal.restart_clock`. Reversing it again changes nothing.
    async fn reverse_payment(
        &self,
        reversal: &PaymentReversal,
    ) -> Result<PaymentReversed, StoreError>;

    /// The payments of a resolution, oldest first.
    async fn payments(&self, resolution_number: &str) -> Result<Vec<PaymentRecord>, StoreError>;

    /// The fine with resolution `number` as its payer sees it, paying at `at`, read in
    /// one snapshot (on PostgreSQL in one statement: the portal's lookups are many);
    /// none when no resolution has the number, or when its case's personal data were
    /// purged (the portal no longer shows a fine settled years ago).
    async fn payer_view(
        &self,
        number: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<PayerView>, StoreError>;
}

/// What the REST payment API of payment providers keeps: intents, idempotency keys and
/// the callbacks received.
#[async_trait]
pub trait PaymentIntents: Send + Sync {
    /// Records an intent; `Conflict` when its id is taken.
    async fn create_intent(&self, intent: &NewPaymentIntent) -> Result<PaymentIntent, StoreError>;

    /// The provider's intent with `id`.
    async fn payment_intent(
        &self,
        provider: &str,
        id: &str,
    ) -> Result<Option<PaymentIntent>, StoreError>;

    /// Cancels the provider's intent unless it was paid; `None` when it has none such.
    /// The intent's row is locked, so a payment reported for it at the same moment is
    /// either taken before (and the intent stays paid) or refused after.
    async fn cancel_intent(
        &self,
        provider: &str,
        id: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<IntentCancelled>, StoreError>;

    /// Claims `key` for a request of `scope` (the provider) whose parameters hash to
    /// `fingerprint`, or says why it cannot be answered afresh. A key older than
    /// [`payment_intents::IDEMPOTENCY_KEY_HOURS`] is new again, and so is one whose first
    /// request went unanswered for [`payment_intents::IDEMPOTENCY_IN_FLIGHT_SECONDS`].
    async fn begin_idempotent(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<IdempotentStart, StoreError>;

    /// Keeps the response to the request that holds `claim`; `false` when the key was
    /// claimed again since (the request took longer than the in-flight time): nothing
    /// is kept then.
    async fn finish_idempotent(
        &self,
        claim: &IdempotencyClaim,
        response: &StoredResponse,
    ) -> Result<bool, StoreError>;

    /// Frees the key `claim` holds when its request could not be answered (a server
    /// error): the same request may be tried again. A key claimed again since stays.
    async fn abandon_idempotent(&self, claim: &IdempotencyClaim) -> Result<(), StoreError>;

    /// Records a callback as received and answered.
    async fn record_callback(&self, callback: &NewCallback) -> Result<i64, StoreError>;

    /// Callbacks after `after_id`, in id order; only the refused ones if `refused_only`.
    async fn callbacks(
        &self,
        refused_only: bool,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<CallbackRecord>, StoreError>;
}

/// Subscriptions to an owner's new violations ([`subscriptions`]).
#[async_trait]
pub trait Subscriptions: Send + Sync {
    /// Records a subscription; `Exists` when the client has one for this owner and
    /// plate already.
    async fn subscribe(&self, subscription: &NewSubscription) -> Result<Subscribed, StoreError>;
    /// Ends the client's subscription for this owner and plate (by its key), if it is
    /// the one under `unique_number`. Notices of it still queued are not sent.
    async fn unsubscribe(
        &self,
        client: &str,
        pin: &str,
        plate_key: &str,
        unique_number: &str,
    ) -> Result<Unsubscribed, StoreError>;
    /// A subscription by its id (a notice's address names it); `None` once it ended.
    async fn subscription(&self, id: i64) -> Result<Option<SubscriptionRecord>, StoreError>;
}

/// Bank statements reconciled with the ledger ([`reconciliation`]).
#[async_trait]
pub trait Reconciliation: Send + Sync {
    /// Takes one credit of a statement: matched to the payment a bank or provider
    /// reported earlier, applied as a payment of its own, or queued for finance, in one
    /// transaction under the lock of the fine it names. The same account and reference
    /// again changes nothing (`repeat`).
    async fn reconcile_credit(&self, line: &NewStatementLine)
        -> Result<LineReconciled, StoreError>;

    /// Takes a queued credit off the queue: applied to the fine with a code finance
    /// names (matched, as above, where it is a payment reported earlier), or dismissed;
    /// `None` when no credit has the id.
    async fn resolve_statement_line(
        &self,
        id: i64,
        resolution: &LineResolution,
        by: &str,
        note: &str,
    ) -> Result<Option<LineResolved>, StoreError>;

    /// Credits after `after_id`, in id order; only the queued ones if `queued_only`.
    async fn statement_lines(
        &self,
        queued_only: bool,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<StatementLineRecord>, StoreError>;

    /// The credits to `account` of `amount` that named `payment_code`, oldest first,
    /// each with the payment it became (its own, or the reported payment it was
    /// matched to, whichever fine finance applied it to): where a credit the bank took
    /// back finds the credit it was.
    async fn credits_naming(
        &self,
        account: &str,
        payment_code: &str,
        amount: kozomol_core::Money,
    ) -> Result<Vec<(StatementLineRecord, Option<PaymentRecord>)>, StoreError>;

    /// Credits booked from `from` to `to`, both included.
    async fn statement_lines_booked(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<StatementLineRecord>, StoreError>;

    /// Standing payments paid in `[from, to)`, by every channel.
    async fn payments_paid(
        &self,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<PaymentRecord>, StoreError>;
}

/// Retention of personal data (see `retention`).
#[async_trait]
pub trait PersonalDataRetention: Send + Sync {
    /// One pass of the purge, in one transaction: the personal data of at most `limit`
    /// settled cases (`retention::settled`, nothing owed back, no notice on its way, no
    /// re-issued fine of theirs still holding personal data)
    /// with no lifecycle row (`case.*`) in the audit log since `quiet_since`, oldest
    /// first; the participants of at most `limit` accidents closed with no move since;
    /// and at most `limit` contacts added before it, of owners no case still holding
    /// personal data names. Each case and accident gets an audit row, the contacts one
    /// for the pass. Several processes may run it at once.
    async fn purge_personal_data(
        &self,
        quiet_since: chrono::DateTime<chrono::Utc>,
        limit: u32,
        actor: &str,
    ) -> Result<PurgeReport, StoreError>;
}

/// Destroying case files at the end of their archive period (see `destruction`). A
/// pass runs under the archive lease, one process at a time.
#[async_trait]
pub trait CaseFileDestruction: Send + Sync {
    /// Takes the archive lease for `holder` for `lease`; false while another holder's
    /// lease runs.
    async fn claim_archive(&self, holder: &str, lease: Duration) -> Result<bool, StoreError>;

    /// Gives the archive lease back, if `holder` holds it.
    async fn release_archive(&self, holder: &str) -> Result<(), StoreError>;

    /// In one transaction: marks the files of at most `limit` purged cases with no move
    /// since before `quiet_before` destroyed (longest quiet first; a case waits for the
    /// cases re-issued from it), marks erased every blob of theirs that nothing still
    /// kept refers to, and queues where those bytes lie. Each case gets an audit row.
    async fn destroy_case_files(
        &self,
        quiet_before: chrono::DateTime<chrono::Utc>,
        limit: u32,
        actor: &str,
    ) -> Result<DestructionReport, StoreError>;

    /// Erased bytes still to overwrite and not put off, oldest first, at most `limit`.
    async fn erasures_due(&self, limit: u32) -> Result<Vec<Erasure>, StoreError>;

    /// Records that these erasures' bytes were overwritten.
    async fn erasures_overwritten(&self, erasures: &[Erasure]) -> Result<(), StoreError>;

    /// Queues for overwriting bytes stored that no row will keep (the PDF of a
    /// resolution the store refused), or records them as copies where a blob holds
    /// them elsewhere; bytes a blob holds at that very place stay as they are, so a
    /// record whose commit only seemed to fail loses nothing. One transaction.
    async fn queue_unkept(&self, unkept: &[EvidenceRef]) -> Result<(), StoreError>;

    /// Puts these erasures off until `retry_at` (their segment could not be rewritten).
    async fn erasures_put_off(
        &self,
        erasures: &[Erasure],
        retry_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError>;

    /// The segments swept for records no row names, each with the last write the sweep
    /// saw of it ([`CaseFileDestruction::sweep_segment`]).
    async fn swept_segments(
        &self,
    ) -> Result<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>, StoreError>;

    /// What a sweep read in `segment`, last written at `written_at`: its frames, each
    /// taken as [`CaseFileDestruction::queue_unkept`] takes bytes (those no row names
    /// are queued for overwriting, copies of kept blobs recorded, the rest left), and
    /// the segment recorded swept as of that write. One transaction.
    async fn sweep_segment(
        &self,
        segment: &str,
        written_at: chrono::DateTime<chrono::Utc>,
        frames: &[EvidenceRef],
    ) -> Result<(), StoreError>;
}

/// Everything kozomol persists in its database.
pub trait Store:
    CameraRegister
    + CaseStore
    + DeadLetterStore
    + AccountStore
    + RecognitionQueue
    + ReviewLog
    + FineStages
    + DeliveryOutbox
    + CaseClocks
    + Appeals
    + PreIssueChecks
    + Offenders
    + OfficerFilings
    + PaymentLedger
    + PaymentIntents
    + Reconciliation
    + Subscriptions
    + AuditTrail
    + PersonalDataRetention
    + CaseFileDestruction
{
    fn backend(&self) -> Backend;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Opens (and migrates) the database at `url`: `sqlite://PATH` or `postgres://...`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = sqlite_path(url) {
        let store = sqlite::SqliteStore::open(std::path::Path::new(path)).await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PgStore::open(url).await?;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::UnsupportedUrl(redact(url)))
    }
}

/// [`connect`] to a database that must already exist: a command that only checks or
/// cleans one must not make an empty SQLite file where a path was mistyped and then
/// report on it.
pub async fn connect_existing(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = sqlite_path(url) {
        if !tokio::fs::try_exists(path).await.unwrap_or(false) {
            return Err(StoreError::NoDatabase(path.to_owned()));
        }
    }
    connect(url).await
}

/// The file of a `sqlite://PATH` (or `sqlite:PATH`) url.
fn sqlite_path(url: &str) -> Option<&str> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|path| !path.is_empty())
}

/// The url without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("mysql://u:secret@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact("mysql://u@h/db"), "mysql://u@h/db");
        assert_eq!(redact("nonsense"), "nonsense");
    }

    #[tokio::test]
    async fn a_check_finds_a_database_or_makes_none() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("mistyped.db");
        let url = format!("sqlite://{}", path.display());
        match connect_existing(&url).await {
            Err(StoreError::NoDatabase(shown)) => assert!(shown.ends_with("mistyped.db")),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a missing database was opened"),
        }
        assert!(!path.exists(), "no file is made");
        connect(&url).await.expect("made by connect");
        connect_existing(&url).await.expect("then found");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        for url in ["mysql://u:secret@h/db", "sqlite://", "", "/tmp/x.db"] {
            match connect(url).await {
                Err(StoreError::UnsupportedUrl(shown)) => assert!(!shown.contains("secret")),
                Err(other) => panic!("{url}: {other}"),
                Ok(_) => panic!("{url} was accepted"),
            }
        }
    }
}
