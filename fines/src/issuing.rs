//! The issuing stage: `owner_found` cases are claimed under a lease, priced from the
//! catalogue, numbered, given a payment code and QR, rendered to the resolution PDF,
//! signed, stored once as evidence and moved to `issued`. A case the catalogue gives no
//! fine for (or cannot price) is set aside for a supervisor with the reason.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Utc};
use kozomol_core::{
    CaseId, CaseState, FrameRole, Jurisdiction, Money, ReviewTier, ViolationEvent, ViolationKind,
};
use kozomol_payments::{CodeKind, MerchantAccount, PaymentCode};
use kozomol_store::{
    CaseRecord, CompleteResult, EvidenceRef, EvidenceStore, NewResolution, Store, StoreError,
};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::calendar::Calendars;
use crate::catalogue::Catalogue;
use crate::quote::{quote, Offence, Pricing, Speed};
use crate::resolution::{
    self, Article, Discount, Officer, Owner, Photos, Place, Resolution, ResolutionNumber, Signer,
    Term, Vehicle,
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

/// Claims one batch of `owner_found` cases and issues each.
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
    let mut results = Vec::with_capacity(claimed.len());
    for case_id in claimed {
        let result = match prepare(stage, issuer, store, case_id).await? {
            Prepared::Fine(resolution, record) => {
                finish(stage, issuer, store, *resolution, *record).await?
            }
            Prepared::SetAside(reason) => {
                match store
                    .set_aside(
                        &stage.worker,
                        case_id,
                        CaseState::OwnerFound,
                        CaseState::SupervisorReview,
                        &reason,
                    )
                    .await?
                {
                    CompleteResult::Completed => {
                        warn!(case_id = %case_id, reason = %reason, "case set aside for a supervisor");
                        Issued::SetAside(reason)
                    }
                    CompleteResult::LeaseLost => Issued::LeaseLost,
                }
            }
            Prepared::Failed(reason) => {
                error!(case_id = %case_id, error = %reason, "resolution not issued; retried when the lease ends");
                Issued::Failed(reason)
            }
        };
        results.push((case_id, result));
    }
    Ok(results)
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
}

enum Prepared {
    Fine(Box<Resolution>, Box<Pending>),
    SetAside(String),
    Failed(String),
}

/// Gathers everything the document says; the stored record's PDF fields are filled
/// in once it is rendered.
async fn prepare(
    stage: &IssuingStage,
    issuer: &Issuer,
    store: &dyn Store,
    case_id: CaseId,
) -> Result<Prepared, IssuingError> {
    let Some(case) = store.case(case_id).await? else {
        return Ok(Prepared::Failed(format!("case {case_id} vanished")));
    };
    let event: ViolationEvent = match serde_json::from_value(case.event.clone()) {
        Ok(event) => event,
        Err(e) => {
            return Ok(Prepared::SetAside(format!(
                "the stored event does not read: {e}"
            )))
        }
    };
    let Some(lookup) = store.owner_lookup(case_id).await? else {
        return Ok(Prepared::SetAside("no owner lookup is stored".into()));
    };
    let Some(owner) = lookup.owner.clone() else {
        return Ok(Prepared::SetAside("the owner lookup names no owner".into()));
    };
    let plate = match store.decided_plate(case_id).await? {
        Some(plate) => plate,
        None => return Ok(Prepared::SetAside("no plate was decided".into())),
    };
    let offence = offence_of(stage.jurisdiction, &case, &event, None);
    let priced = match quote(&issuer.catalogue, &issuer.calendars, &offence) {
        Ok(Pricing::Fine(q)) => q,
        Ok(Pricing::NoFine(none)) => return Ok(Prepared::SetAside(none.reason)),
        Err(e) => return Ok(Prepared::SetAside(e.to_string())),
    };
    let procedure = match issuer.catalogue.procedure(offence.date) {
        Ok(p) => p.clone(),
        Err(e) => return Ok(Prepared::SetAside(e.to_string())),
    };
    let issued_at = Utc::now();
    let year = u16::try_from(stage.jurisdiction.local_date(issued_at).year()).unwrap_or(0);
    let sequence = store
        .reserve_resolution_number(case_id, &stage.issuer, i32::from(year))
        .await?;
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
        let qr = match stage.jurisdiction {
            Jurisdiction::Kg => {
                kozomol_payments::kg_payment_payload(&stage.merchant, &code, due_now)
            }
            Jurisdiction::Kz => {
                kozomol_payments::emvco_payment_payload(&stage.merchant, &code, due_now)
            }
        }
        .map_err(|e| e.to_string())?;
        Ok((number, code, qr))
    })();
    let (number, code, payment_qr) = match built {
        Ok(parts) => parts,
        Err(reason) => return Ok(Prepared::SetAside(reason)),
    };
    let photos = match photos(issuer, store, &case).await? {
        Ok(photos) => photos,
        Err(reason) => return Ok(Prepared::Failed(reason)),
    };
    let officer = confirming_officer(stage, store, case_id).await?;
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
    let document = Resolution {
        number: number.clone(),
        jurisdiction: stage.jurisdiction,
        authority: stage.authority.clone(),
        issued_at,
        offence_at: case.captured_at,
        place: Place {
            address: event.site.address.clone(),
            lat_e6: event.site.lat_e6,
            lon_e6: event.site.lon_e6,
        },
        plate,
        vehicle,
        owner: Owner {
            name: owner.name.clone(),
            address: owner.address.clone().unwrap_or_default(),
        },
        article: Article {
            number: priced.article.clone(),
            title: priced.title.clone(),
        },
        violation: case.kind,
        measurement: measurement_text(&event),
        device: event.device.clone(),
        officer,
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
        photos,
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
    };
    Ok(Prepared::Fine(Box::new(document), Box::new(record)))
}

/// Renders, signs, stores the PDF once and records the resolution.
async fn finish(
    stage: &IssuingStage,
    issuer: &Arc<Issuer>,
    store: &dyn Store,
    document: Resolution,
    pending: Pending,
) -> Result<Issued, IssuingError> {
    let case_id = pending.case_id;
    let rendered = {
        let issuer = Arc::clone(issuer);
        tokio::task::spawn_blocking(move || -> Result<_, String> {
            let issued =
                resolution::issue(&document, issuer.signer.as_ref()).map_err(|e| e.to_string())?;
            let location = issuer
                .evidence
                .append_batch(&[&issued.pdf])
                .map_err(|e| e.to_string())?
                .remove(0);
            Ok((issued, location))
        })
        .await
        .map_err(|e| IssuingError::Task(e.to_string()))?
    };
    let (issued, location) = match rendered {
        Ok(done) => done,
        Err(reason) => {
            error!(case_id = %case_id, error = %reason, "resolution not rendered; retried when the lease ends");
            return Ok(Issued::Failed(reason));
        }
    };
    let record = NewResolution {
        number: pending.number,
        case_id,
        payment_code: pending.payment_code,
        jurisdiction: stage.jurisdiction,
        article: pending.article,
        units: pending.units,
        amount: pending.amount,
        discounted: pending.discounted,
        issued_at: pending.issued_at,
        pdf: EvidenceRef {
            sha256: Sha256::digest(&issued.pdf).into(),
            location,
        },
        signature: issued.signature.signature.clone(),
        signature_key_id: issued.signature.key_id.clone(),
        signer: issued.signature.signer.to_string(),
    };
    Ok(
        match store.record_resolution(&stage.worker, &record).await? {
            CompleteResult::Completed => {
                info!(case_id = %case_id, number = %record.number, "resolution issued");
                Issued::Resolution(record.number)
            }
            CompleteResult::LeaseLost => Issued::LeaseLost,
        },
    )
}

/// The overview frame and the plate: the recognizer's crop when it made one, else
/// the camera's plate frame; their bytes re-checked against their hashes.
async fn photos(
    issuer: &Issuer,
    store: &dyn Store,
    case: &CaseRecord,
) -> Result<Result<Photos, String>, IssuingError> {
    let frame = |role: FrameRole| case.frames.iter().find(|f| f.role == role);
    let Some(overview) = frame(FrameRole::Overview).or_else(|| case.frames.first()) else {
        return Ok(Err("the case has no frames".into()));
    };
    let crop = store.recognition(case.id).await?.and_then(|r| r.crop);
    let plate = match (&crop, frame(FrameRole::Plate)) {
        (Some(crop), _) => (crop.location.clone(), crop.sha256),
        (None, Some(f)) => (f.location.clone(), f.sha256),
        (None, None) => (overview.location.clone(), overview.sha256),
    };
    let read = |location: &kozomol_store::FrameLocation, sha: &[u8; 32]| {
        issuer
            .evidence
            .read(location, sha)
            .map_err(|e| e.to_string())
    };
    Ok((|| {
        Ok(Photos {
            overview: read(&overview.location, &overview.sha256)?,
            plate: read(&plate.0, &plate.1)?,
        })
    })())
}

/// The officer whose decision approved the case, or the duty officer for the machine's.
async fn confirming_officer(
    stage: &IssuingStage,
    store: &dyn Store,
    case_id: CaseId,
) -> Result<Officer, IssuingError> {
    let reviews = store.reviews(case_id).await?;
    Ok(
        match reviews
            .iter()
            .rev()
            .find(|r| r.to_state == CaseState::Approved && r.tier != ReviewTier::Auto)
        {
            // Accounts carry a login only; names and badge numbers come with the
            // officers' register.
            Some(review) => Officer {
                name: review.reviewer.clone(),
                badge: review.reviewer.clone(),
            },
            None => stage.duty_officer.clone(),
        },
    )
}

/// The offence a case records, for the catalogue; `delivered` dates the clocks.
pub(crate) fn offence_of(
    jurisdiction: Jurisdiction,
    case: &CaseRecord,
    event: &ViolationEvent,
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
        // Counting earlier penalties per offender comes with the offender register.
        repeat: false,
    }
}

fn measurement_text(event: &ViolationEvent) -> String {
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
        _ => "зафиксировано специальным техническим средством".to_owned(),
    }
}
