//! The issuing stage: `owner_found` cases are claimed under a lease, priced from the
//! catalogue, numbered, given a payment code and QR, rendered to the resolution PDF,
//! signed, stored once as evidence and moved to `issued`. A case the catalogue gives no
//! fine for (or cannot price) is set aside for a supervisor with the reason.
//!
//! The resolution is addressed to the case's offender: the owner of record, or the
//! driver the owner named (a re-issued case, whose recognition and reviews are the
//! original case's). An offence is priced as a repeat when the offender's earlier
//! resolutions say so (`crate::repeat`), and the resolution names the one it repeats.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use kozomol_core::{
    CaseId, CaseState, FrameRole, Jurisdiction, Money, OwnerKind, ReviewTier, ViolationKind,
};
use kozomol_payments::{CodeKind, MerchantAccount, PaymentCode};
use kozomol_store::nominations::OffenderResolution;
use kozomol_store::{
    CaseRecord, CompleteResult, EvidenceRef, EvidenceStore, IssuingRead, NewResolution,
    OfficerIdentity, ReviewRecord, Store, StoreError,
};
use tracing::{error, info, info_span, warn};

use crate::calendar::Calendars;
use crate::catalogue::Catalogue;
use crate::officer::{case_facts, CaseFacts};
use crate::quote::{quote, Offence, Pricing, Quote, Speed};
use crate::repeat::earlier_penalty;
use crate::resolution::{
    self, Article, Detection, Discount, Liability, Officer, Owner, Photos, Resolution,
    ResolutionNumber, Signer, Term, Vehicle,
};

/// Who issues, and how: one issuing authority of one jurisdiction.
#[derive(Clone, Debug)]
pub struct IssuingStage {
    /// Unique among the workers sharing the store.
    pub worker: String,
    pub batch: u32,
    pub lease: Duration,
    pub jurisdiction: Jurisdiction,
    /// The issuer's code in resolution numbers, 2-6 upper-case letters (e.g. `BSK`).
    pub issuer: String,
    /// The issuer's number in payment codes (0-999).
    pub issuer_code: u16,
    /// The issuing body, printed under the coat of arms.
    pub authority: String,
    pub appeal_rights: String,
    /// Joined with `/v/{number}` for the verification QR.
    pub verification_base_url: String,
    pub merchant: MerchantAccount,
    /// Named as confirming officer when the machine approved the case.
    pub duty_officer: Officer,
}

/// What the stage needs besides the store.
pub struct Issuer {
    pub catalogue: Catalogue,
    pub calendars: Calendars,
    pub signer: Arc<dyn Signer>,
    pub evidence: Arc<EvidenceStore>,
}

/// What became of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Issued {
    Resolution(String),
    /// Handed to a supervisor, with the reason.
    SetAside(String),
    /// Closed unfined (`rejected`), with the reason: the limitation period ended, and
    /// no one's decision can fine it any more.
    TimeBarred(String),
    /// Another worker holds the case now; nothing was written.
    LeaseLost,
    /// Not finished (the error is logged); the case is tried again when the lease ends.
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum IssuingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("an issuing task stopped: {0}")]
    Task(String),
}

/// Claims one batch of `owner_found` cases and issues each. The batch's documents are
/// rendered and signed on every core, their PDFs appended to the evidence store with
/// one fsync and the resolutions recorded in one transaction: a commit per resolution
/// bounded issuing far below what rendering allows.
pub async fn run_issuing(
    stage: &IssuingStage,
    issuer: &Arc<Issuer>,
    store: &dyn Store,
) -> Result<Vec<(CaseId, Issued)>, IssuingError> {
    let claimed = store
        .claim_stage(
            CaseState::OwnerFound,
            &stage.worker,
            stage.batch,
            stage.lease,
        )
        .await?;
    // A case's span lasts the batch it is issued in, and joins the case's trace.
    let traces = kozomol_telemetry::parents_of(store.trace_parents(&claimed)).await;
    let spans: HashMap<CaseId, tracing::Span> = claimed
        .iter()
        .map(|&case_id| {
            let span = info_span!("issue", case_id = %case_id, outcome = tracing::field::Empty);
            kozomol_telemetry::follow(&span, traces.get(&case_id).copied());
            (case_id, span)
        })
        .collect();
    let mut results = Vec::with_capacity(claimed.len());
    let mut drafts = Vec::new();
    // The batch's reads in a few queries: one round trip per read and case cost more
    // than rendering the case's document.
    let reads = store.issuing_reads(&claimed).await?;
    let histories = offender_histories(store, &reads).await?;
    let facts: Vec<Option<Result<CaseFacts, String>>> = reads
        .iter()
        .map(|read| read.as_ref().map(|r| case_facts(&r.case)))
        .collect();
    let register = officers_register(store, &reads, &facts).await?;
    let batch = BatchFacts {
        histories,
        register,
        today: stage.jurisdiction.local_date(Utc::now()),
    };
    let attempts: HashMap<CaseId, u32> = reads
        .iter()
        .flatten()
        .map(|read| (read.case.id, read.attempts))
        .collect();
    for ((&case_id, read), facts) in claimed.iter().zip(reads).zip(facts) {
        match prepare(stage, issuer, case_id, read, facts, &batch) {
            Prepared::Fine(draft) => drafts.push(*draft),
            Prepared::SetAside(reason) => {
                results.push((case_id, set_aside(stage, store, case_id, reason).await?));
            }
            Prepared::TimeBarred(reason) => {
                results.push((case_id, time_barred(stage, store, case_id, reason).await?));
            }
            Prepared::Unreadable(reason) => {
                results.push((
                    case_id,
                    failed(stage, store, case_id, reason, &attempts).await?,
                ));
            }
            Prepared::Failed(reason) => {
                error!(case_id = %case_id, error = %reason, "resolution not issued; retried when the lease ends");
                results.push((case_id, Issued::Failed(reason)));
            }
        }
    }
    // Numbers for the whole batch in one transaction, after the cases set aside have
    // left it: a case set aside past this point keeps its reservation (issued later,
    // it takes that number; rejected, the number stays unused, and says whose it was).
    let issued_at = Utc::now();
    let year = u16::try_from(stage.jurisdiction.local_date(issued_at).year()).unwrap_or(0);
    let ids: Vec<CaseId> = drafts.iter().map(|d| d.case.id).collect();
    let sequences = store
        .reserve_resolution_numbers(&ids, &stage.issuer, i32::from(year))
        .await?;
    let mut fines = Vec::with_capacity(drafts.len());
    for (draft, sequence) in drafts.into_iter().zip(sequences) {
        let case_id = draft.case.id;
        match compose(stage, draft, issued_at, year, sequence) {
            Ok(fine) => fines.push(fine),
            Err(reason) => results.push((case_id, set_aside(stage, store, case_id, reason).await?)),
        }
    }
    results.extend(finish(stage, issuer, store, fines).await?);
    // In the order claimed, as each case was before batching.
    results.sort_by_key(|(case_id, _)| claimed.iter().position(|c| c == case_id));
    for (case_id, issued) in &results {
        if let Some(span) = spans.get(case_id) {
            let outcome = match issued {
                // Not the number: a number finds the fine on the portal.
                Issued::Resolution(_) => "issued",
                Issued::SetAside(_) => "set aside",
                Issued::TimeBarred(_) => "time-barred",
                Issued::LeaseLost => "lease lost",
                Issued::Failed(_) => "failed",
            };
            span.record("outcome", outcome);
        }
    }
    Ok(results)
}

/// Hands the case to a supervisor with the reason it cannot be issued.
async fn set_aside(
    stage: &IssuingStage,
    store: &dyn Store,
    case_id: CaseId,
    reason: String,
) -> Result<Issued, IssuingError> {
    leave(stage, store, case_id, CaseState::SupervisorReview, reason).await
}

/// How many times a case whose own evidence fails it (a photo that no longer reads as
/// signed, or was erased) is claimed before a supervisor is asked: it would otherwise
/// be tried every lease for ever, and no one would hear of it. A store or signer that
/// fails is waited for however long it takes.
pub const MAX_ISSUE_ATTEMPTS: u32 = 5;

/// A case whose evidence fails it: tried again when its lease ends (the evidence may
/// be mended), or, its attempts spent, handed to a supervisor with the reason.
async fn failed(
    stage: &IssuingStage,
    store: &dyn Store,
    case_id: CaseId,
    reason: String,
    attempts: &HashMap<CaseId, u32>,
) -> Result<Issued, IssuingError> {
    let tried = attempts.get(&case_id).copied().unwrap_or(0);
    if tried >= MAX_ISSUE_ATTEMPTS {
        let reason = format!("not issued after {tried} attempts: {reason}");
        return set_aside(stage, store, case_id, reason).await;
    }
    error!(case_id = %case_id, error = %reason, attempt = tried, "resolution not issued; retried when the lease ends");
    Ok(Issued::Failed(reason))
}

/// Closes a case past the limitation period unfined: a supervisor's approval could
/// only send it back here.
async fn time_barred(
    stage: &IssuingStage,
    store: &dyn Store,
    case_id: CaseId,
    reason: String,
) -> Result<Issued, IssuingError> {
    leave(stage, store, case_id, CaseState::Rejected, reason).await
}

/// Moves a claimed case that is not issued to `to` with the reason.
async fn leave(
    stage: &IssuingStage,
    store: &dyn Store,
    case_id: CaseId,
    to: CaseState,
    reason: String,
) -> Result<Issued, IssuingError> {
    Ok(
        match store
            .set_aside(&stage.worker, case_id, CaseState::OwnerFound, to, &reason)
            .await?
        {
            CompleteResult::Completed if to == CaseState::Rejected => {
                warn!(case_id = %case_id, reason = %reason, "case time-barred; closed unfined");
                Issued::TimeBarred(reason)
            }
            CompleteResult::Completed => {
                warn!(case_id = %case_id, reason = %reason, "case set aside for a supervisor");
                Issued::SetAside(reason)
            }
            CompleteResult::LeaseLost => Issued::LeaseLost,
        },
    )
}

/// What the stored record says besides the PDF and its signature.
struct Pending {
    number: String,
    case_id: CaseId,
    payment_code: String,
    article: String,
    units: u32,
    amount: Money,
    discounted: Option<Money>,
    issued_at: chrono::DateTime<Utc>,
    repeat_of: Option<String>,
}

enum Prepared {
    Fine(Box<Draft>),
    SetAside(String),
    TimeBarred(String),
    /// The case's own evidence fails it, the same on every try: tried again, and
    /// after [`MAX_ISSUE_ATTEMPTS`] handed to a supervisor.
    Unreadable(String),
    Failed(String),
}

/// Earlier resolutions by offender (kind, PIN or INN), of every offender the reads
/// name, issued before the latest of their offences.
type Histories = HashMap<(OwnerKind, String), Vec<OffenderResolution>>;

/// Repeats count per offender, never per plate: the earlier resolutions of the batch's
/// offenders, in one query.
async fn offender_histories(
    store: &dyn Store,
    reads: &[Option<IssuingRead>],
) -> Result<Histories, IssuingError> {
    let mut offenders: Vec<(OwnerKind, &str)> = reads
        .iter()
        .flatten()
        .filter_map(|read| read.lookup.as_ref()?.owner.as_ref())
        .map(|owner| (owner.kind, owner.id.as_str()))
        .collect();
    offenders.sort_unstable_by_key(|(kind, id)| (kind.as_str(), *id));
    offenders.dedup();
    let Some(before) = reads.iter().flatten().map(|r| r.case.captured_at).max() else {
        return Ok(Histories::new());
    };
    let found = store.offenders_resolutions(&offenders, before).await?;
    Ok(offenders
        .iter()
        .map(|(kind, id)| (*kind, (*id).to_owned()))
        .zip(found)
        .collect())
}

/// The officers' register entries of the officers the batch's documents name, by login.
type Register = HashMap<String, OfficerIdentity>;

/// The register entries of every officer who filed or approved one of the batch's
/// cases, in one query.
async fn officers_register(
    store: &dyn Store,
    reads: &[Option<IssuingRead>],
    facts: &[Option<Result<CaseFacts, String>>],
) -> Result<Register, IssuingError> {
    // A case whose facts do not read is set aside before it names anyone.
    let mut logins: Vec<&str> = reads
        .iter()
        .zip(facts)
        .filter_map(|(read, facts)| match (read, facts) {
            (Some(read), Some(Ok(facts))) => confirming_login(facts, &read.reviews),
            _ => None,
        })
        .collect();
    logins.sort_unstable();
    logins.dedup();
    if logins.is_empty() {
        return Ok(Register::new());
    }
    Ok(store.officers(&logins).await?)
}

/// What every case of a batch is prepared against: the offenders' earlier
/// resolutions, the officers' register entries, and the day it is issued.
struct BatchFacts {
    histories: Histories,
    register: Register,
    today: NaiveDate,
}

/// Gathers everything the document says; the stored record's PDF fields are filled
/// in once it is rendered.
fn prepare(
    stage: &IssuingStage,
    issuer: &Issuer,
    case_id: CaseId,
    read: Option<IssuingRead>,
    facts: Option<Result<CaseFacts, String>>,
    batch: &BatchFacts,
) -> Prepared {
    let BatchFacts {
        histories,
        register,
        today,
    } = batch;
    let today = *today;
    let Some(IssuingRead {
        case,
        decided_plate,
        lookup,
        reissued_from,
        crop,
        reviews,
        ..
    }) = read
    else {
        return Prepared::Failed(format!("case {case_id} vanished"));
    };
    let event = match facts {
        Some(Ok(facts)) => facts,
        Some(Err(reason)) => return Prepared::SetAside(reason),
        None => return Prepared::Failed(format!("case {case_id} has no facts read")),
    };
    let Some(lookup) = lookup else {
        return Prepared::SetAside("no owner lookup is stored".into());
    };
    let Some(owner) = lookup.owner.clone() else {
        return Prepared::SetAside("the owner lookup names no owner".into());
    };
    let plate = match decided_plate {
        Some(plate) => plate,
        None => return Prepared::SetAside("no plate was decided".into()),
    };
    // Ingest keeps a case whose evidence cannot carry a fine (its calibration did not
    // cover the day, its camera's clock ran ahead), and review only rejects one; should
    // one reach here all the same, it is no one's fine.
    if !case.enforceable {
        return Prepared::SetAside(format!(
            "the case is not enforceable: {}",
            case.enforceability_note
                .as_deref()
                .unwrap_or("see its case file")
        ));
    }
    // A camera's calibration was checked against the register at ingest; an officer's
    // speed gun is checked here, on the jurisdiction's calendar day of the offence.
    if let (Some(_), Some(device)) = (&event.witness, &event.device) {
        let day = stage.jurisdiction.local_date(case.captured_at);
        if let Some(why) = device.certificate.not_covering(day) {
            return Prepared::SetAside(format!(
                "speed gun {}: {why}, the offence date",
                device.serial
            ));
        }
    }
    // A re-issued case's evidence and reviews are those of the case it came from.
    let evidence_case = reissued_from.unwrap_or(case_id);
    // A re-issued case is addressed to the driver the owner named.
    let addressee = Owner {
        name: owner.name.clone(),
        address: owner.address.clone().unwrap_or_default(),
        liable_as: if evidence_case == case_id {
            Liability::Owner
        } else {
            Liability::NamedDriver
        },
    };
    let mut offence = offence_of(stage.jurisdiction, &case, &event, None);
    let price = |offence: &Offence| match quote(&issuer.catalogue, &issuer.calendars, offence) {
        Ok(Pricing::Fine(q)) => Ok(q),
        Ok(Pricing::NoFine(none)) => Err(none.reason),
        Err(e) => Err(e.to_string()),
    };
    let mut priced: Quote = match price(&offence) {
        Ok(q) => q,
        Err(reason) => return Prepared::SetAside(reason),
    };
    let history = histories
        .get(&(owner.kind, owner.id.clone()))
        .map_or(&[][..], Vec::as_slice);
    let repeat_of = earlier_penalty(
        &issuer.catalogue,
        &priced.article,
        case.captured_at,
        history,
    )
    .map(|earlier| earlier.number.clone());
    if let Some(earlier) = &repeat_of {
        offence.repeat = true;
        priced = match price(&offence) {
            Ok(q) => q,
            Err(reason) => return Prepared::SetAside(reason),
        };
        priced.title = format!(
            "{} (повторно в течение года, постановление № {earlier})",
            priced.title
        );
    }
    let procedure = match issuer.catalogue.procedure(offence.date) {
        Ok(p) => p.clone(),
        Err(e) => return Prepared::SetAside(e.to_string()),
    };
    // A case that waited (in review, for its owner, for a camera's outbox) past the
    // limitation period is no one's fine any more.
    if let Some(last) = procedure.last_day_to_impose(offence.date) {
        if today > last {
            return Prepared::TimeBarred(format!(
                "the limitation period ended on {last}: an offence of {} can no longer be \
                 fined ({} months)",
                offence.date,
                procedure.limitation_months.unwrap_or_default()
            ));
        }
    }
    let photos = match photos(issuer, &case, crop) {
        Ok(photos) => photos,
        Err(not_read) => return not_read,
    };
    let officer = match confirming_login(&event, &reviews) {
        None => stage.duty_officer.clone(),
        Some(login) => match register.get(login) {
            Some(entry) => Officer {
                name: entry.full_name.clone(),
                badge: entry.badge.clone(),
            },
            // A resolution must name the officer; the case waits for the register.
            None => {
                return Prepared::SetAside(format!(
                    "officer `{login}`, who confirmed the violation, has no entry in the \
                     officers' register (full name and badge number): register him \
                     (PUT /api/v1/accounts/{login}/officer) or approve the case yourself"
                ))
            }
        },
    };
    let vehicle = Vehicle {
        make: lookup
            .vehicle
            .get("make")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        model: lookup
            .vehicle
            .get("model")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    };
    Prepared::Fine(Box::new(Draft {
        case,
        event,
        addressee,
        plate,
        priced,
        procedure,
        repeat_of,
        photos,
        officer,
        vehicle,
    }))
}

/// Everything a resolution says but its number.
struct Draft {
    case: CaseRecord,
    event: CaseFacts,
    addressee: Owner,
    plate: String,
    priced: Quote,
    procedure: crate::catalogue::Procedure,
    repeat_of: Option<String>,
    photos: Photos,
    officer: Officer,
    vehicle: Vehicle,
}

/// The document and its record, once the draft's number is reserved: `Err` with the
/// reason the case is set aside when the number, payment code or QR cannot be made.
fn compose(
    stage: &IssuingStage,
    draft: Draft,
    issued_at: chrono::DateTime<Utc>,
    year: u16,
    sequence: u64,
) -> Result<(Resolution, Pending), String> {
    let case_id = draft.case.id;
    let priced = &draft.priced;
    let procedure = &draft.procedure;
    let built = (|| -> Result<(ResolutionNumber, PaymentCode, String), String> {
        let sequence =
            u32::try_from(sequence).map_err(|_| format!("sequence {sequence} too large"))?;
        let number = ResolutionNumber::new(stage.jurisdiction, &stage.issuer, year, sequence)
            .map_err(|e| e.to_string())?;
        let code = PaymentCode::new(
            CodeKind::Fine,
            stage.jurisdiction,
            year,
            stage.issuer_code,
            u64::try_from(case_id.0).map_err(|_| "negative case id".to_owned())?,
        )
        .map_err(|e| e.to_string())?;
        // The QR asks for what is due while the discount lasts; a bank confirms the
        // amount due through setPaymentLegal before it takes the money.
        let due_now = priced.discounted_amount.unwrap_or(priced.amount);
        let qr = kozomol_payments::payment_payload(&stage.merchant, &code, due_now)
            .map_err(|e| e.to_string())?;
        Ok((number, code, qr))
    })();
    let (number, code, payment_qr) = built?;
    let document = Resolution {
        number: number.clone(),
        jurisdiction: stage.jurisdiction,
        authority: stage.authority.clone(),
        issued_at,
        offence_at: draft.case.captured_at,
        place: draft.event.place.clone(),
        plate: draft.plate,
        vehicle: draft.vehicle,
        owner: draft.addressee,
        article: Article {
            number: priced.article.clone(),
            title: priced.title.clone(),
        },
        violation: draft.case.kind,
        measurement: measurement_text(&draft.event),
        // An officer's own report names him as witness; a camera's event does not.
        detection: if draft.event.witness.is_some() {
            Detection::Officer
        } else {
            Detection::AutomaticCamera
        },
        device: draft.event.device.clone(),
        officer: draft.officer,
        amount: priced.amount,
        discount: priced.discounted_amount.map(|amount| Discount {
            percent: procedure.discount_percent,
            amount,
            until: Term::FromDelivery {
                days: procedure.discount_days,
                working_days: procedure.discount_working_days,
            },
        }),
        due: Term::FromEffect {
            days: procedure.due_days,
        },
        appeal_until: Term::FromDelivery {
            days: procedure.appeal_days,
            working_days: false,
        },
        appeal_rights: stage.appeal_rights.clone(),
        payment_code: code.to_string(),
        payment_qr,
        verification_url: format!(
            "{}/v/{number}",
            stage.verification_base_url.trim_end_matches('/')
        ),
        photos: draft.photos,
    };
    let record = Pending {
        number: number.to_string(),
        case_id,
        payment_code: code.to_string(),
        article: priced.article.clone(),
        units: priced.units,
        amount: priced.amount,
        discounted: priced.discounted_amount,
        issued_at,
        repeat_of: draft.repeat_of,
    };
    Ok((document, record))
}

/// Renders and signs the documents, stores their PDFs once and records the
/// resolutions. A document that does not render fails alone; should the batch's
/// transaction fail, each resolution is recorded on its own, so one bad record (a
/// clashing number, say) holds up no other.
async fn finish(
    stage: &IssuingStage,
    issuer: &Arc<Issuer>,
    store: &dyn Store,
    batch: Vec<(Resolution, Pending)>,
) -> Result<Vec<(CaseId, Issued)>, IssuingError> {
    let mut results = Vec::with_capacity(batch.len());
    let (documents, pendings): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let rendered = {
        let issuer = Arc::clone(issuer);
        tokio::task::spawn_blocking(move || render_all(issuer.signer.as_ref(), &documents))
            .await
            .map_err(|e| IssuingError::Task(e.to_string()))?
    };
    let mut signed = Vec::with_capacity(pendings.len());
    for (pending, rendered) in pendings.into_iter().zip(rendered) {
        match rendered {
            Ok(issued) => signed.push((pending, issued)),
            Err(Unrendered::ForGood(reason)) => {
                let reason = format!("the resolution does not render: {reason}");
                results.push((
                    pending.case_id,
                    set_aside(stage, store, pending.case_id, reason).await?,
                ));
            }
            Err(Unrendered::ForNow(reason)) => {
                error!(case_id = %pending.case_id, error = %reason, "resolution not rendered; retried when the lease ends");
                results.push((pending.case_id, Issued::Failed(reason)));
            }
        }
    }
    if signed.is_empty() {
        return Ok(results);
    }
    let (signed, stored) = {
        let evidence = Arc::clone(&issuer.evidence);
        tokio::task::spawn_blocking(move || {
            // Hashed once already, for the signature.
            let pdfs: Vec<(&[u8], [u8; 32])> = signed
                .iter()
                .map(|(_, i)| (i.pdf.as_slice(), i.signature.document_sha256))
                .collect();
            let stored = evidence.append_hashed(&pdfs).map_err(|e| e.to_string());
            (signed, stored)
        })
        .await
        .map_err(|e| IssuingError::Task(e.to_string()))?
    };
    let locations = match stored {
        Ok(locations) => locations,
        Err(reason) => {
            for (pending, _) in &signed {
                error!(case_id = %pending.case_id, error = %reason, "resolution not stored; retried when the lease ends");
                results.push((pending.case_id, Issued::Failed(reason.clone())));
            }
            return Ok(results);
        }
    };
    let records: Vec<NewResolution> = signed
        .into_iter()
        .zip(locations)
        .map(|((pending, issued), location)| NewResolution {
            number: pending.number,
            case_id: pending.case_id,
            payment_code: pending.payment_code,
            jurisdiction: stage.jurisdiction,
            article: pending.article,
            units: pending.units,
            amount: pending.amount,
            discounted: pending.discounted,
            issued_at: pending.issued_at,
            pdf: EvidenceRef {
                sha256: issued.signature.document_sha256,
                location,
            },
            signature: issued.signature.signature.clone(),
            signature_key_id: issued.signature.key_id.clone(),
            signer: issued.signature.signer.to_string(),
            repeat_of: pending.repeat_of,
        })
        .collect();
    let outcomes: Vec<Result<CompleteResult, String>> = match store
        .record_resolutions(&stage.worker, &records)
        .await
    {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) => {
            warn!(error = %e, cases = records.len(), "the batch's resolutions not recorded together; recording each alone");
            let mut outcomes = Vec::with_capacity(records.len());
            for record in &records {
                outcomes.push(
                    store
                        .record_resolution(&stage.worker, record)
                        .await
                        .map_err(|e| e.to_string()),
                );
            }
            outcomes
        }
    };
    let mut unrecorded = Vec::new();
    for (record, outcome) in records.into_iter().zip(outcomes) {
        let result = match outcome {
            Ok(CompleteResult::Completed) => {
                info!(case_id = %record.case_id, number = %record.number, "resolution issued");
                Issued::Resolution(record.number)
            }
            Ok(CompleteResult::LeaseLost) => Issued::LeaseLost,
            Err(reason) => {
                error!(case_id = %record.case_id, error = %reason, "resolution not recorded; retried when the lease ends");
                unrecorded.push(record.pdf);
                Issued::Failed(reason)
            }
        };
        results.push((record.case_id, result));
    }
    // The retry renders a new PDF; the stored one would otherwise lie in its segment,
    // named by no row, past the case file's destruction.
    if let Err(e) = store.queue_unkept(&unrecorded).await {
        for pdf in &unrecorded {
            error!(
                sha256 = %hex::encode(pdf.sha256),
                segment = %pdf.location.segment,
                offset = pdf.location.offset,
                error = %e,
                "an unrecorded resolution's PDF is in no overwrite queue"
            );
        }
    }
    Ok(results)
}

/// Renders and signs `documents` on as many threads as there are cores, in order.
/// Why a document did not render: its own content (the same on every try: it goes to
/// a supervisor) or something that may pass (signing, writing: tried again).
enum Unrendered {
    ForGood(String),
    ForNow(String),
}

fn render_all(
    signer: &dyn Signer,
    documents: &[Resolution],
) -> Vec<Result<resolution::IssuedResolution, Unrendered>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(documents.len())
        .max(1);
    let chunk = documents.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = documents
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|document| {
                            // One document's panic is that document's: the others of
                            // its thread render as ever.
                            let issued = std::panic::catch_unwind(AssertUnwindSafe(|| {
                                resolution::issue(document, signer)
                            }));
                            match issued {
                                Ok(Ok(issued)) => Ok(issued),
                                Ok(Err(e)) if e.is_the_documents() => {
                                    Err(Unrendered::ForGood(e.to_string()))
                                }
                                Ok(Err(e)) => Err(Unrendered::ForNow(e.to_string())),
                                // A bug meets this document on every try: a person sees it.
                                Err(_) => Err(Unrendered::ForGood(
                                    "rendering the resolution panicked".to_owned(),
                                )),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(documents.chunks(chunk))
            .flat_map(|(handle, part)| {
                handle.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|_| {
                            Err(Unrendered::ForNow(
                                "the rendering thread stopped".to_owned(),
                            ))
                        })
                        .collect()
                })
            })
            .collect()
    })
}

/// The overview frame and the plate: the recognizer's crop (of the evidence case) when
/// it made one, else the camera's plate frame; their bytes re-checked against their
/// hashes.
/// The case's photos, or why not: its own evidence that no longer reads as signed
/// (`Unreadable`, the same on every try) or a store that failed (`Failed`, may pass).
fn photos(
    issuer: &Issuer,
    case: &CaseRecord,
    crop: Option<EvidenceRef>,
) -> Result<Photos, Prepared> {
    let frame = |role: FrameRole| case.frames.iter().find(|f| f.role == role);
    let Some(overview) = frame(FrameRole::Overview).or_else(|| case.frames.first()) else {
        return Err(Prepared::Unreadable("the case has no frames".into()));
    };
    let plate = match (&crop, frame(FrameRole::Plate)) {
        (Some(crop), _) => (crop.location.clone(), crop.sha256),
        (None, Some(f)) => (f.location.clone(), f.sha256),
        (None, None) => (overview.location.clone(), overview.sha256),
    };
    let read = |location: &kozomol_store::FrameLocation, sha: &[u8; 32]| {
        issuer.evidence.read(location, sha).map_err(|e| match e {
            StoreError::EvidenceCorrupt { .. } | StoreError::EvidenceErased { .. } => {
                Prepared::Unreadable(format!("its photo does not read: {e}"))
            }
            e => Prepared::Failed(e.to_string()),
        })
    };
    Ok(Photos {
        overview: read(&overview.location, &overview.sha256)?,
        plate: read(&plate.0, &plate.1)?,
    })
}

/// The login of the officer the resolution names as confirming the violation: the one
/// who filed the case himself (its witness), else the one whose decision approved it
/// (among its `reviews`); `None` when the machine approved it, and the duty officer is
/// named.
fn confirming_login<'a>(facts: &'a CaseFacts, reviews: &'a [ReviewRecord]) -> Option<&'a str> {
    if let Some(witness) = &facts.witness {
        return Some(witness);
    }
    reviews
        .iter()
        .rev()
        .find(|r| r.to_state == CaseState::Approved && r.tier != ReviewTier::Auto)
        .map(|r| r.reviewer.as_str())
}

/// The offence a case records, for the catalogue; `delivered` dates the clocks.
pub(crate) fn offence_of(
    jurisdiction: Jurisdiction,
    case: &CaseRecord,
    event: &CaseFacts,
    delivered: Option<chrono::NaiveDate>,
) -> Offence {
    Offence {
        jurisdiction,
        kind: case.kind,
        speed: match (event.measurement.speed_kmh, event.measurement.limit_kmh) {
            (Some(measured_kmh), Some(limit_kmh)) => Some(Speed {
                measured_kmh,
                limit_kmh,
            }),
            _ => None,
        },
        date: jurisdiction.local_date(case.captured_at),
        delivered,
        // The issuing stage counts the offender's earlier penalties; dates do not
        // depend on them.
        repeat: false,
    }
}

fn measurement_text(event: &CaseFacts) -> String {
    let m = &event.measurement;
    match (event.kind, m.speed_kmh, m.limit_kmh, m.red_elapsed_ms) {
        (ViolationKind::Speeding, Some(speed), Some(limit), _) => format!(
            "{speed} км/ч при разрешенной скорости {limit} км/ч (превышение на {} км/ч)",
            speed.saturating_sub(limit)
        ),
        (ViolationKind::RedLight, _, _, Some(ms)) => format!(
            "стоп-линия пересечена через {},{:03} с после включения красного сигнала",
            ms / 1000,
            ms % 1000
        ),
        _ if event.device.is_none() => "выявлено сотрудником милиции непосредственно".to_owned(),
        _ => "зафиксировано специальным техническим средством".to_owned(),
    }
}
