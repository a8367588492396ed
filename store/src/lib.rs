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

pub mod audit;
mod batch;
mod decode;
mod error;
pub mod evidence;
mod migrate;
mod model;
mod postgres;
mod postgres_recognition;
mod postgres_review;
mod postgres_stages;
mod recognition;
mod review;
mod sqlite;
mod sqlite_recognition;
mod sqlite_review;
mod sqlite_stages;
mod stages;

pub use error::StoreError;
pub use evidence::{scan_segment, EvidenceStore, FrameLocation, SegmentScan};
pub use model::*;

use std::collections::HashSet;
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
    /// Which of these frame hashes already have evidence stored.
    async fn known_frames(&self, sha256s: &[[u8; 32]]) -> Result<HashSet<[u8; 32]>, StoreError>;
    /// The audit rows of one case, oldest first.
    async fn case_audit(&self, id: CaseId) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Messages that were refused, with the reason and (bounded) raw bytes.
#[async_trait]
pub trait DeadLetterStore: Send + Sync {
    async fn record_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError>;
    /// By ascending id, after `after`.
    async fn dead_letters(
        &self,
        limit: u32,
        after: Option<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError>;
}

/// Accounts, roles and API tokens (only token hashes are stored).
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_account(&self, account: &NewAccount) -> Result<AccountId, StoreError>;
    async fn account_by_login(&self, login: &str) -> Result<Option<Account>, StoreError>;
    async fn store_token(
        &self,
        account: AccountId,
        token_sha256: &[u8; 32],
        label: &str,
    ) -> Result<(), StoreError>;
    async fn account_by_token(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<Account>, StoreError>;
    /// Every account, by login (for the admin's account list).
    async fn accounts(&self) -> Result<Vec<Account>, StoreError>;
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
    /// `retry_after` has passed. `LeaseLost` as for `complete_recognition`.
    async fn fail_recognition(
        &self,
        worker: &str,
        case_id: CaseId,
        error: &str,
        retry_after: Duration,
        max_attempts: u32,
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

    /// The sequence number of the case's resolution for `issuer` and `year`: the one
    /// reserved for it before, or the next free one, reserved now. Numbers never
    /// repeat; a retry of the same case gets the same one.
    async fn reserve_resolution_number(
        &self,
        case_id: CaseId,
        issuer: &str,
        year: i32,
    ) -> Result<u64, StoreError>;

    /// Stores the issued resolution (its PDF already in the evidence store) and moves
    /// the case from `owner_found` to `issued`, audited, in one transaction;
    /// `LeaseLost` as for the lookup.
    async fn record_resolution(
        &self,
        worker: &str,
        resolution: &NewResolution,
    ) -> Result<CompleteResult, StoreError>;

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
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|path| !path.is_empty())
    {
        let store = sqlite::SqliteStore::open(std::path::Path::new(path)).await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PgStore::open(url).await?;
        Ok(Arc::new(store))
    } else {
        Err(StoreError::UnsupportedUrl(redact(url)))
    }
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
