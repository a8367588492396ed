//! The owner-lookup stage: approved cases are claimed under a lease, the checks before
//! issuing run on each ([`crate::pre_issue`]: an exempt vehicle, a duplicate of an act
//! already on its way or a possible cloned plate is set aside and the bus is not
//! asked), the plate the review decided is looked up in the vehicle registry over
//! Tunduk, and each case moves to `owner_found` or, with the reason, to `owner_unknown`
//! — the work queue where an officer deals with no data, several owners and foreign
//! plates. A bus failure leaves the case `approved`, asked again when its lease ends;
//! a store failure mid-pass, on the worker's next pass.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction, OwnerKind, OwnerOfRecord, OwnerOutcome};
use kozomol_store::{CompleteResult, OwnerLookupRecord, Store, StoreError};
use kozomol_tunduk::{
    ExchangeContext, Owner, OwnerAnswer, OwnerLookup, OwnerRecord, PlateOrigin, TundukError,
    VehicleRegistry,
};
use tracing::{info, info_span, warn, Instrument};

use crate::checks::ChecksConfig;
use crate::pre_issue::{check_case, CheckLists, CheckRun, Checked};

/// How the stage runs.
#[derive(Clone, Debug)]
pub struct LookupStage {
    /// Unique among the workers sharing the store.
    pub worker: String,
    pub batch: u32,
    /// Longer than a batch of lookups takes with every retry ([`lease_covering`]).
    pub lease: Duration,
    /// The checks before issuing, run on every case before its owner is looked up.
    pub checks: ChecksConfig,
    /// Whose calendar date an exemption's validity dates are read in.
    pub jurisdiction: Jurisdiction,
    /// Cases this worker claimed that a pass ending on a store error left undone
    /// (shared by the stage's clones): the next pass takes them up, under the claim
    /// it still holds, instead of leaving them until a lease of minutes runs out; the
    /// case a taken-up pass fails on again waits for its lease.
    unfinished: Arc<Mutex<Vec<CaseId>>>,
}

impl LookupStage {
    pub fn new(worker: impl Into<String>) -> Self {
        LookupStage {
            worker: worker.into(),
            batch: 16,
            lease: Duration::from_secs(300),
            checks: ChecksConfig::default(),
            jurisdiction: Jurisdiction::Kg,
            unfinished: Arc::default(),
        }
    }

    fn take_unfinished(&self) -> Vec<CaseId> {
        std::mem::take(&mut *self.unfinished.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn keep_unfinished(&self, cases: &[CaseId]) {
        self.unfinished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(cases);
    }
}

/// The lease a lookup batch is claimed under: at least `configured`, and long enough
/// for `batch` lookups that each take `longest_lookup` (every retry of a bus that times
/// out) with a minute to spare — a lease that ran out mid-batch would let another
/// worker claim the rest and ask the registry about the same people again.
pub fn lease_covering(batch: u32, longest_lookup: Duration, configured: Duration) -> Duration {
    configured.max(
        longest_lookup
            .saturating_mul(batch)
            .saturating_add(Duration::from_secs(60)),
    )
}

/// Claims one batch of approved cases, checks each one and looks up the owner of those
/// the checks let through; returns where each went (`None`: another worker took the
/// case over meanwhile).
pub async fn run_lookups(
    stage: &LookupStage,
    store: &dyn Store,
    registry: &VehicleRegistry,
) -> Result<Vec<(CaseId, Option<CaseState>)>, StoreError> {
    let unfinished = stage.take_unfinished();
    let resumed = !unfinished.is_empty();
    let claimed = if unfinished.is_empty() {
        store
            .claim_stage(CaseState::Approved, &stage.worker, stage.batch, stage.lease)
            .await?
    } else {
        unfinished
    };
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let done = look_up_claimed(stage, store, registry, &claimed).await;
    // A case a taken-up pass failed on again waits for its lease: a store error that
    // comes back on it must not hold the worker (and the registry) to it every pass.
    if let Err(cut) = &done {
        let from = if resumed && cut.on_case {
            cut.undone + 1
        } else {
            cut.undone
        };
        stage.keep_unfinished(claimed.get(from..).unwrap_or_default());
    }
    done.map_err(|cut| cut.error)
}

/// Where a store error cut a pass short.
struct CutShort {
    /// The first claimed case left undone.
    undone: usize,
    /// Whether the error came on that case (not before any case was begun).
    on_case: bool,
    error: StoreError,
}

/// [`run_lookups`] on the cases claimed; on a store error, where it cut the pass.
async fn look_up_claimed(
    stage: &LookupStage,
    store: &dyn Store,
    registry: &VehicleRegistry,
    claimed: &[CaseId],
) -> Result<Vec<(CaseId, Option<CaseState>)>, CutShort> {
    let lists = CheckLists::load(store).await.map_err(|error| CutShort {
        undone: 0,
        on_case: false,
        error,
    })?;
    let run = CheckRun {
        worker: &stage.worker,
        config: &stage.checks,
        jurisdiction: stage.jurisdiction,
        lists: &lists,
    };
    let traces = kozomol_telemetry::parents_of(store.trace_parents(claimed)).await;
    let mut moved = Vec::with_capacity(claimed.len());
    for (n, &case_id) in claimed.iter().enumerate() {
        let span = info_span!("owner_lookup", case_id = %case_id);
        kozomol_telemetry::follow(&span, traces.get(&case_id).copied());
        let to = look_up(&run, stage, store, registry, case_id)
            .instrument(span)
            .await
            .map_err(|error| CutShort {
                undone: n,
                on_case: true,
                error,
            })?;
        moved.push((case_id, to));
    }
    Ok(moved)
}

/// Checks one claimed case and, where the checks let it through, looks up its owner;
/// where the case went (`None`: another worker took it over meanwhile).
async fn look_up(
    run: &CheckRun<'_>,
    stage: &LookupStage,
    store: &dyn Store,
    registry: &VehicleRegistry,
    case_id: CaseId,
) -> Result<Option<CaseState>, StoreError> {
    let record = store.case(case_id).await?;
    let plate = match store.decided_plate(case_id).await? {
        Some(plate) => Some(plate),
        None => record.as_ref().and_then(|c| c.plate.clone()),
    };
    // A case without a plate has nothing to check: its lookup records why.
    if let (Some(record), Some(plate)) = (&record, &plate) {
        match check_case(run, store, record, plate).await? {
            Checked::Proceed(_) => {}
            Checked::SetAside(outcome) => return Ok(outcome.to),
            Checked::LeaseLost => return Ok(None),
        }
    }
    let answer = match &plate {
        Some(plate) => Some(
            registry
                .transport_current_info(plate, PlateOrigin::Auto, &ExchangeContext::system(case_id))
                .await,
        ),
        None => None,
    };
    if let Some(Err(error)) = &answer {
        if asked_again(error) {
            let tried = store.stage_attempts(case_id).await?;
            if answered_amiss(error) && tried >= MAX_AMISS_LOOKUPS {
                // The same answer that cannot be read, about this plate, every time: a
                // person looks, and approves the case again once the registry mends it.
                let reason = format!(
                    "the registry's answer about this plate could not be used {tried} times: {error}"
                );
                return Ok(
                    match store
                        .set_aside(
                            &stage.worker,
                            case_id,
                            CaseState::Approved,
                            CaseState::SupervisorReview,
                            &reason,
                        )
                        .await?
                    {
                        CompleteResult::Completed => {
                            warn!(case_id = %case_id, reason = %reason, "owner lookup set aside for a supervisor");
                            Some(CaseState::SupervisorReview)
                        }
                        CompleteResult::LeaseLost => None,
                    },
                );
            }
            // The bus, not the case: it stays `approved`, claimed, and is asked about
            // again once its lease runs out.
            warn!(case_id = %case_id, error = %error, attempt = tried, "owner lookup failed; asked again when the lease ends");
            return Ok(Some(CaseState::Approved));
        }
    }
    let record = lookup_record(case_id, plate.as_deref(), answer, Utc::now());
    let to = match record.outcome {
        OwnerOutcome::Found => CaseState::OwnerFound,
        _ => CaseState::OwnerUnknown,
    };
    match store.record_owner_lookup(&stage.worker, &record).await? {
        CompleteResult::Completed => {
            if to == CaseState::OwnerUnknown {
                warn!(case_id = %case_id, outcome = record.outcome.as_str(), reason = record.reason.as_deref().unwrap_or(""), "owner unknown");
            } else {
                info!(case_id = %case_id, "owner found");
            }
            Ok(Some(to))
        }
        CompleteResult::LeaseLost => Ok(None),
    }
}

/// Whether a failed lookup is the bus's failure, not an answer about the case: the bus
/// or the registry unreachable, failing or refusing kozomol (a fault, a time-out, the
/// circuit breaker open, a reply that does not parse or echo the request, a registry
/// status of 500 or above). Such a case must not be closed as `owner_unknown`: a short
/// outage would close every approved case unfined. What the case itself brings (a
/// plate the request cannot carry, a found vehicle with no owner, a registry status
/// below 500) is recorded as its lookup.
pub fn asked_again(error: &TundukError) -> bool {
    match error {
        TundukError::InvalidInput(_) | TundukError::NoUsableData(_) => false,
        TundukError::RegistryStatus(status) => *status >= 500,
        TundukError::InvalidIdentifier { .. }
        | TundukError::Config(_)
        | TundukError::Fault(_)
        | TundukError::HttpStatus { .. }
        | TundukError::Transport(_)
        | TundukError::Timeout(_)
        | TundukError::MalformedReply(_)
        | TundukError::HeaderMismatch { .. }
        | TundukError::CircuitOpen { .. } => true,
    }
}

/// How many times a case is asked about when the registry answers amiss each time
/// ([`answered_amiss`]) before a supervisor is asked to look.
pub const MAX_AMISS_LOOKUPS: u32 = 5;

/// Whether a failure is an answer that came but could not be used (a reply that does
/// not parse or echo the request, a fault of the service, a registry status of 500 or
/// above): it may be this plate's, the same on every try. The bus or kozomol's own
/// settings failing (no answer, a time-out, the circuit breaker, the service
/// unavailable) is waited out however long it lasts.
pub fn answered_amiss(error: &TundukError) -> bool {
    match error {
        TundukError::MalformedReply(_)
        | TundukError::HeaderMismatch { .. }
        | TundukError::RegistryStatus(_) => true,
        // Kozomol's own access (denied, an unknown service or member) is its settings'.
        TundukError::Fault(fault) => matches!(
            fault.kind,
            kozomol_tunduk::FaultKind::InvalidRequest | kozomol_tunduk::FaultKind::Other
        ),
        _ => false,
    }
}

/// What to store for a case's lookup: `plate` is the plate asked about (none: the
/// review decided none), `answer` the registry's (none when not asked).
pub fn lookup_record(
    case_id: CaseId,
    plate: Option<&str>,
    answer: Option<Result<OwnerAnswer, TundukError>>,
    now: DateTime<Utc>,
) -> OwnerLookupRecord {
    let exchange_id = match &answer {
        Some(Ok(answer)) => answer.exchange_id.clone(),
        _ => None,
    };
    let unknown =
        |outcome: OwnerOutcome, reason: String, vehicle: serde_json::Value| OwnerLookupRecord {
            case_id,
            outcome,
            owner: None,
            vehicle,
            registry_owner: serde_json::Value::Null,
            reason: Some(reason),
            exchange_id: exchange_id.clone(),
            looked_up_at: now,
        };
    let plate_text = plate.unwrap_or("");
    match answer.map(|a| a.map(|a| a.lookup)) {
        None => unknown(
            OwnerOutcome::NoData,
            "no plate was decided for this case".into(),
            serde_json::Value::Null,
        ),
        Some(Ok(OwnerLookup::Found(record))) => match owner_of_record(&record) {
            Some(owner) => OwnerLookupRecord {
                case_id,
                outcome: OwnerOutcome::Found,
                owner: Some(owner),
                vehicle: vehicle_json(&record),
                registry_owner: registry_owner_json(&record),
                reason: None,
                exchange_id: exchange_id.clone(),
                looked_up_at: now,
            },
            None => unknown(
                OwnerOutcome::NoData,
                format!("the registry names no PIN or INN for {plate_text}"),
                vehicle_json(&record),
            ),
        },
        Some(Ok(OwnerLookup::SeveralOwners(records))) => unknown(
            OwnerOutcome::SeveralOwners,
            format!(
                "the registry names {} owners for {plate_text}",
                records.len()
            ),
            serde_json::Value::Array(records.iter().map(vehicle_json).collect()),
        ),
        Some(Ok(OwnerLookup::NoData)) => unknown(
            OwnerOutcome::NoData,
            format!("the registry has no vehicle with plate {plate_text}"),
            serde_json::Value::Null,
        ),
        Some(Ok(OwnerLookup::ForeignPlate)) => unknown(
            OwnerOutcome::ForeignPlate,
            format!("{plate_text} is not a Kyrgyz plate: the registry was not asked"),
            serde_json::Value::Null,
        ),
        Some(Err(error)) => unknown(
            OwnerOutcome::BusError,
            format!("vehicle registry: {error}"),
            serde_json::Value::Null,
        ),
    }
}

/// The owner a resolution can be addressed to: needs the PIN or INN, which repeat
/// offences are counted by.
fn owner_of_record(record: &OwnerRecord) -> Option<OwnerOfRecord> {
    let (kind, id) = match &record.owner {
        Owner::Person(p) => (OwnerKind::Person, p.pin.clone()),
        Owner::Company(c) => (OwnerKind::Company, c.inn.clone()),
    };
    Some(OwnerOfRecord {
        kind,
        id: id.filter(|id| !id.trim().is_empty())?,
        name: record.owner.display_name().unwrap_or_default(),
        address: record.owner.address().and_then(|a| a.one_line()),
    })
}

/// The registry's owner as smartcity-service's `protocol` answers it (birth date,
/// address by parts); the passport is left out: nothing kozomol does needs it.
fn registry_owner_json(record: &OwnerRecord) -> serde_json::Value {
    let mut owner = record.owner.clone();
    if let Owner::Person(person) = &mut owner {
        person.passport = None;
    }
    serde_json::to_value(&owner).unwrap_or(serde_json::Value::Null)
}

fn vehicle_json(record: &OwnerRecord) -> serde_json::Value {
    serde_json::to_value(&record.vehicle).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_covers_a_batch_of_the_slowest_lookups() {
        let s = Duration::from_secs;
        for (batch, longest, configured, want) in [
            (16, s(36), s(300), s(16 * 36 + 60)),
            (4, s(10), s(300), s(300)),
            (1, s(0), s(30), s(60)),
        ] {
            assert_eq!(lease_covering(batch, longest, configured), want);
        }
    }

    #[test]
    fn only_the_bus_failing_leaves_a_case_to_be_asked_again() {
        let table = [
            (TundukError::Timeout(Duration::from_secs(10)), true),
            (TundukError::Transport("reset".into()), true),
            (TundukError::HttpStatus { status: 502 }, true),
            (
                TundukError::CircuitOpen {
                    retry_in: Duration::from_secs(30),
                },
                true,
            ),
            (TundukError::MalformedReply("no body".into()), true),
            (TundukError::RegistryStatus(500), true),
            (TundukError::RegistryStatus(400), false),
            (TundukError::InvalidInput("plate is empty".into()), false),
            (TundukError::NoUsableData("no PIN".into()), false),
        ];
        for (error, want) in table {
            assert_eq!(asked_again(&error), want, "{error:?}");
        }
    }
}
