//! The delivery outbox on PostgreSQL: claims under a lease (`FOR UPDATE SKIP LOCKED`;
//! leases, retry and check times on the server's clock, the one every worker host
//! shares), attempts, proofs and print batches, each written with its attempt and
//! audit rows in one transaction. A proof locks its resolution's row first, so two
//! reports of one resolution arriving together are recorded one after the other.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, DeliveryChannel, DeliveryState};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::audit::now_millis;
use crate::delivery::{self, AttemptRow, DeliveryColumns, JobColumns};
use crate::postgres::{finish_unchanged, location_from_row, PgStore};
use crate::postgres_recognition::{insert_audit, insert_evidence};
use crate::recognition::delay_millis;
use crate::subscriptions::{decided_plate_key, notice_prefix};
use crate::{
    decode, AttemptKind, AttemptOutcome, AttemptRecord, AttemptResult, CodeRequest, CompleteResult,
    ContactAdded, ContactConfirmed, ContactRecord, DeliveryId, DeliveryJob, DeliveryOutbox,
    DeliveryRecord, DeliveryRecorded, DeliveryTarget, NewContact, NewContactConfirmation,
    NewPrintBatch, PrintBatchId, PrintBatchPrinted, PrintBatchRecord, PrintBatchSummary,
    PrintBatchWrite, ProvenDelivery, StoreError, CODES_PER_ADDRESS_HOUR,
};

/// What a claim returns. A macro because `query()` takes only `&'static str`.
macro_rules! job_columns {
    () => {
        " RETURNING id, resolution_number, case_id, channel, address, attempts, external_id, \
         sent_at, lease_until, last_error"
    };
}

/// An outbox row's columns. A macro because `query()` takes only `&'static str`.
macro_rules! delivery_select {
    ($where:literal) => {
        concat!(
            "SELECT id, resolution_number, case_id, channel, address, state, attempts, \
             next_attempt_at, last_error, external_id, batch_id, batch_page, created_at, \
             sent_at, delivered_at, proof FROM deliveries ",
            $where
        )
    };
}

/// Milliseconds as PostgreSQL multiplies an interval by them. Exact: delays are capped
/// at a year, some 3.2e10 milliseconds.
fn millis_f64(delay: Duration) -> f64 {
    delay_millis(delay) as f64
}

fn job_from_row(row: &PgRow) -> Result<DeliveryJob, StoreError> {
    JobColumns {
        id: row.try_get("id")?,
        resolution_number: row.try_get("resolution_number")?,
        case_id: row.try_get("case_id")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        attempts: i64::from(row.try_get::<i32, _>("attempts")?),
        external_id: row.try_get("external_id")?,
        sent_at: row.try_get("sent_at")?,
        leased_until: row.try_get("lease_until")?,
        last_error: row.try_get("last_error")?,
    }
    .job()
}

fn delivery_from_row(row: &PgRow) -> Result<DeliveryRecord, StoreError> {
    DeliveryColumns {
        id: row.try_get("id")?,
        resolution_number: row.try_get("resolution_number")?,
        case_id: row.try_get("case_id")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        state: row.try_get("state")?,
        attempts: i64::from(row.try_get::<i32, _>("attempts")?),
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        external_id: row.try_get("external_id")?,
        batch_id: row.try_get("batch_id")?,
        batch_page: row.try_get::<Option<i32>, _>("batch_page")?.map(i64::from),
        created_at: row.try_get("created_at")?,
        sent_at: row.try_get("sent_at")?,
        delivered_at: row.try_get("delivered_at")?,
        proof: row.try_get("proof")?,
    }
    .record()
}

/// Plans a just-recorded resolution's deliveries: a letter to the owner's address
/// when the lookup has one, and a message to each contact the owner left. Runs inside
/// `record_resolution`'s transaction; due at once by the server's clock.
pub(crate) async fn plan_deliveries(
    tx: &mut PgConnection,
    number: &str,
    case_id: CaseId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
         next_attempt_at, created_at) \
         SELECT $1, case_id, 'post', btrim(owner_address), 'queued', now(), $2 \
         FROM owner_lookups WHERE case_id = $3 AND owner_id IS NOT NULL \
         AND btrim(coalesce(owner_address, '')) <> ''",
    )
    .bind(number)
    .bind(now)
    .bind(case_id.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query(concat!(
        "INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
         next_attempt_at, created_at) \
         SELECT $1, l.case_id, o.channel, o.address, 'queued', now(), $2 \
         FROM owner_contacts o JOIN owner_lookups l ON l.owner_id = o.owner_id \
         JOIN cases c ON c.id = l.case_id \
         WHERE l.case_id = $3 AND (o.plate_key = '' OR o.plate_key = ",
        decided_plate_key!(),
        // One address may serve the owner's every vehicle and this one besides.
        ") ORDER BY o.id ON CONFLICT (resolution_number, channel, address) DO NOTHING"
    ))
    .bind(number)
    .bind(now)
    .bind(case_id.0)
    .execute(&mut *tx)
    .await?;
    // A notice to each system subscribed to the owner's violations for this plate.
    sqlx::query(concat!(
        "INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
         next_attempt_at, created_at) \
         SELECT $1, l.case_id, 'portal', '",
        notice_prefix!(),
        "' || s.id, 'queued', now(), $2 \
         FROM violation_subscriptions s JOIN owner_lookups l ON l.owner_id = s.pin \
         JOIN cases c ON c.id = l.case_id AND s.plate_key = ",
        decided_plate_key!(),
        " WHERE l.case_id = $3 ORDER BY s.id"
    ))
    .bind(number)
    .bind(now)
    .bind(case_id.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_attempt(tx: &mut PgConnection, row: AttemptRow<'_>) -> Result<(), StoreError> {
    let proof: Option<serde_json::Value> = row
        .proof
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("delivery proof json: {e}")))?;
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, actor, outcome, at, external_id, \
         error, proof) SELECT id, attempts, $1, $2, $3, $4, $5, $6 FROM deliveries WHERE id = $7",
    )
    .bind(row.actor)
    .bind(row.outcome.as_str())
    .bind(row.at)
    .bind(row.external_id)
    .bind(row.error)
    .bind(proof)
    .bind(row.id.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn pending_from_row(row: &PgRow) -> Result<delivery::PendingConfirmation, StoreError> {
    Ok(delivery::PendingConfirmation {
        case_id: CaseId(row.try_get("case_id")?),
        owner_id: row.try_get("owner_id")?,
        plate_key: row.try_get("plate_key")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        code_sha256: row.try_get("code_sha256")?,
        requested_by: row.try_get("requested_by")?,
        expires_at: row.try_get("expires_at")?,
        tries: i64::from(row.try_get::<i32, _>("tries")?),
        confirmed: row
            .try_get::<Option<DateTime<Utc>>, _>("confirmed_at")?
            .is_some(),
    })
}

/// Stores a contact and queues a delivery to it for each resolution it serves that no
/// delivery has proven yet; the same contact again changes nothing.
async fn insert_contact(
    tx: &mut PgConnection,
    contact: &NewContact,
    now: DateTime<Utc>,
) -> Result<ContactAdded, StoreError> {
    let channel = contact.address.channel().as_str();
    let address = contact.address.as_str();
    let plate_key = contact.plate_key.as_deref().unwrap_or_default();
    // Two clerks adding the same contact at once: one inserts, the other's insert
    // does nothing, and it reads the row the first one wrote.
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO owner_contacts (owner_id, channel, address, added_at, added_by, plate_key) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (owner_id, channel, address, plate_key) DO NOTHING RETURNING id",
    )
    .bind(&contact.owner_id)
    .bind(channel)
    .bind(address)
    .bind(now)
    .bind(&contact.added_by)
    .bind(plate_key)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = inserted else {
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM owner_contacts WHERE owner_id = $1 AND channel = $2 AND address = $3 \
             AND plate_key = $4",
        )
        .bind(&contact.owner_id)
        .bind(channel)
        .bind(address)
        .bind(plate_key)
        .fetch_one(&mut *tx)
        .await?;
        return Ok(ContactAdded::AlreadyKnown { id });
    };
    // Resolutions already out but not yet proven delivered get the new contact too:
    // a citizen who leaves a number after the letter went still gets the text.
    let planned = sqlx::query(concat!(
        "INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
         next_attempt_at, created_at) \
         SELECT r.number, r.case_id, $1, $2, 'queued', now(), $3 FROM resolutions r \
         JOIN owner_lookups l ON l.case_id = r.case_id \
         JOIN cases c ON c.id = r.case_id \
         WHERE l.owner_id = $4 AND r.delivered_at IS NULL AND c.state = 'issued' \
         AND ($5 = '' OR $5 = ",
        decided_plate_key!(),
        ") ON CONFLICT (resolution_number, channel, address) DO NOTHING"
    ))
    .bind(channel)
    .bind(address)
    .bind(now)
    .bind(&contact.owner_id)
    .bind(plate_key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(ContactAdded::Added {
        id,
        planned: u32::try_from(planned).unwrap_or(u32::MAX),
    })
}

#[async_trait]
impl DeliveryOutbox for PgStore {
    async fn add_contact(&self, contact: &NewContact) -> Result<ContactAdded, StoreError> {
        let mut tx = self.pool.begin().await?;
        let added = insert_contact(&mut tx, contact, now_millis()).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn contacts(&self, owner_id: &str) -> Result<Vec<ContactRecord>, StoreError> {
        sqlx::query(
            "SELECT id, owner_id, channel, address, added_at, added_by, plate_key \
             FROM owner_contacts WHERE owner_id = $1 ORDER BY id",
        )
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(ContactRecord {
                id: row.try_get("id")?,
                owner_id: row.try_get("owner_id")?,
                channel: delivery::channel(row.try_get("channel")?)?,
                address: row.try_get("address")?,
                added_at: row.try_get("added_at")?,
                added_by: row.try_get("added_by")?,
                plate_key: delivery::contact_scope(row.try_get("plate_key")?),
            })
        })
        .collect()
    }

    async fn request_contact_confirmation(
        &self,
        request: &NewContactConfirmation,
    ) -> Result<CodeRequest, StoreError> {
        let contact = &request.contact;
        let plate_key = delivery::confirmation_plate_key(request)?;
        let (channel, address) = (contact.address.channel().as_str(), contact.address.as_str());
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        // Requests for one address one at a time: two counted together could both pass
        // the hourly cap.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("contact-code:{channel}:{address}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM contact_confirmations WHERE expires_at < $1")
            .bind(now - delivery::LAPSED_KEPT)
            .execute(&mut *tx)
            .await?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM contact_confirmations WHERE channel = $1 AND address = $2 \
             AND requested_at > $3",
        )
        .bind(channel)
        .bind(address)
        .bind(now - chrono::Duration::hours(1))
        .fetch_one(&mut *tx)
        .await?;
        if recent >= CODES_PER_ADDRESS_HOUR {
            tx.commit().await?;
            return Ok(CodeRequest::AddressBusy);
        }
        sqlx::query(
            "INSERT INTO contact_confirmations (handle, resolution_number, owner_id, plate_key, \
             channel, address, code_sha256, requested_at, requested_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&request.handle)
        .bind(&request.resolution_number)
        .bind(&contact.owner_id)
        .bind(plate_key)
        .bind(channel)
        .bind(address)
        .bind(&request.code_sha256)
        .bind(now)
        .bind(&contact.added_by)
        .bind(request.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(CodeRequest::Kept)
    }

    async fn confirm_contact(
        &self,
        number: &str,
        handle: &str,
        code_sha256: &str,
        by: &str,
    ) -> Result<ContactConfirmed, StoreError> {
        let now = now_millis();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(delivery::pending_confirmation_select!(
            "WHERE k.handle = $1 AND k.resolution_number = $2 FOR UPDATE OF k"
        ))
        .bind(handle)
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return finish_unchanged(tx, Ok(ContactConfirmed::Unknown)).await;
        };
        let pending = pending_from_row(&row)?;
        let case_id = pending.case_id;
        let contact = match pending.judge(code_sha256, now)? {
            delivery::Judged::Lapsed => {
                return finish_unchanged(tx, Ok(ContactConfirmed::Lapsed)).await
            }
            delivery::Judged::Wrong { tries_left } => {
                sqlx::query("UPDATE contact_confirmations SET tries = tries + 1 WHERE handle = $1")
                    .bind(handle)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(ContactConfirmed::WrongCode { tries_left });
            }
            delivery::Judged::Right(contact) => contact,
        };
        sqlx::query(
            "UPDATE contact_confirmations SET tries = tries + 1, confirmed_at = $2 \
             WHERE handle = $1",
        )
        .bind(handle)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let added = insert_contact(&mut tx, &contact, now).await?;
        let detail = delivery::contact_confirmed_detail(number, &contact);
        insert_audit(
            &mut tx,
            &delivery::contact_confirmed_audit(case_id, by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(ContactConfirmed::Confirmed(added))
    }

    async fn claim_deliveries(
        &self,
        channel: DeliveryChannel,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut jobs = sqlx::query(concat!(
            "UPDATE deliveries SET state = 'sending', worker = $1, \
             lease_until = now() + $2::double precision * interval '1 millisecond', \
             attempts = attempts + 1 \
             WHERE id = ANY (ARRAY (SELECT id FROM deliveries WHERE channel = $3 \
             AND state IN ('queued', 'sending') AND next_attempt_at <= now() \
             AND (lease_until IS NULL OR lease_until <= now()) \
             ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED))",
            job_columns!()
        ))
        .bind(worker)
        .bind(millis_f64(lease))
        .bind(channel.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(job_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    async fn renew_delivery_lease(
        &self,
        worker: &str,
        id: DeliveryId,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE deliveries \
             SET lease_until = now() + $1::double precision * interval '1 millisecond' \
             WHERE id = $2 AND worker = $3 AND state = 'sending' AND lease_until > now()",
        )
        .bind(millis_f64(lease))
        .bind(id.0)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_deliveries(&self, worker: &str, ids: &[DeliveryId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'queued', worker = NULL, lease_until = NULL, \
             attempts = GREATEST(attempts - 1, 0) \
             WHERE id = ANY($1) AND worker = $2 AND state = 'sending'",
        )
        .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_unconfirmed(
        &self,
        channel: DeliveryChannel,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let mut jobs = sqlx::query(concat!(
            "UPDATE deliveries SET worker = $1, \
             lease_until = now() + $2::double precision * interval '1 millisecond' \
             WHERE id = ANY (ARRAY (SELECT id FROM deliveries WHERE channel = $3 \
             AND state = 'sent' AND next_attempt_at <= now() \
             AND (lease_until IS NULL OR lease_until <= now()) \
             ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED))",
            job_columns!()
        ))
        .bind(worker)
        .bind(millis_f64(lease))
        .bind(channel.as_str())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(job_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        tx.commit().await?;
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    async fn record_attempt(
        &self,
        worker: &str,
        id: DeliveryId,
        outcome: &AttemptOutcome,
        max_attempts: u32,
    ) -> Result<AttemptResult, StoreError> {
        let at = now_millis();
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT state, attempts, case_id, channel FROM deliveries WHERE id = $1 \
             AND worker = $2 AND state IN ('sending', 'sent') FOR UPDATE",
        )
        .bind(id.0)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return finish_unchanged(tx, Ok(AttemptResult::LeaseLost)).await;
        };
        let state = delivery::state(row.try_get("state")?)?;
        let attempts = delivery::count(
            i64::from(row.try_get::<i32, _>("attempts")?),
            "delivery attempts",
        )?;
        let actor = crate::stages::actor(worker);
        let result = match outcome {
            AttemptOutcome::Sent {
                external_id,
                proof,
                check_after,
            } => {
                if state != DeliveryState::Sending {
                    let refused = StoreError::Invalid(format!("delivery {id} was sent already"));
                    return finish_unchanged(tx, Err(refused)).await;
                }
                sqlx::query(
                    "UPDATE deliveries SET state = 'sent', external_id = $1, sent_at = $2, \
                     proof = $3, last_error = NULL, worker = NULL, lease_until = NULL, \
                     next_attempt_at = CASE WHEN $4::double precision IS NULL THEN NULL \
                     ELSE now() + $4::double precision * interval '1 millisecond' END \
                     WHERE id = $5",
                )
                .bind(external_id.as_deref())
                .bind(at)
                .bind(proof)
                .bind(check_after.map(millis_f64))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                let proof_text = proof.to_string();
                insert_attempt(
                    &mut tx,
                    AttemptRow {
                        id,
                        actor: &actor,
                        outcome: AttemptKind::Sent,
                        at,
                        external_id: external_id.as_deref(),
                        error: None,
                        proof: Some(&proof_text),
                    },
                )
                .await?;
                AttemptResult::Sent
            }
            AttemptOutcome::Failed { error, retry_after } => {
                let error = delivery::bounded(error);
                let retry = retry_after.filter(|_| attempts < max_attempts);
                sqlx::query(
                    "UPDATE deliveries SET state = $1, last_error = $2, worker = NULL, \
                     lease_until = NULL, \
                     next_attempt_at = CASE WHEN $3::double precision IS NULL THEN NULL \
                     ELSE now() + $3::double precision * interval '1 millisecond' END \
                     WHERE id = $4",
                )
                .bind(if retry.is_some() { "queued" } else { "failed" })
                .bind(&error)
                .bind(retry.map(millis_f64))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                insert_attempt(
                    &mut tx,
                    AttemptRow {
                        id,
                        actor: &actor,
                        outcome: AttemptKind::Failed,
                        at,
                        external_id: None,
                        error: Some(&error),
                        proof: None,
                    },
                )
                .await?;
                match retry {
                    Some(_) => AttemptResult::WillRetry { attempts },
                    None => {
                        let channel: String = row.try_get("channel")?;
                        let detail = delivery::failed_detail(id, &channel, attempts, &error);
                        let case_id = CaseId(row.try_get("case_id")?);
                        insert_audit(
                            &mut tx,
                            &delivery::failed_audit(case_id, &actor, &detail, at),
                        )
                        .await?;
                        AttemptResult::GaveUp { attempts }
                    }
                }
            }
            AttemptOutcome::Deferred { error, retry_after } => {
                let error = delivery::bounded(error);
                // Written before the count goes back, so the row names the claim it ended.
                insert_attempt(
                    &mut tx,
                    AttemptRow {
                        id,
                        actor: &actor,
                        outcome: AttemptKind::Failed,
                        at,
                        external_id: None,
                        error: Some(&error),
                        proof: None,
                    },
                )
                .await?;
                sqlx::query(
                    "UPDATE deliveries SET state = 'queued', last_error = $1, worker = NULL, \
                     lease_until = NULL, \
                     next_attempt_at = now() + $2::double precision * interval '1 millisecond', \
                     attempts = greatest(attempts - 1, 0) WHERE id = $3",
                )
                .bind(&error)
                .bind(millis_f64(*retry_after))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                AttemptResult::Deferred {
                    attempts: attempts.saturating_sub(1),
                }
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn check_later(
        &self,
        worker: &str,
        id: DeliveryId,
        next_check: Option<Duration>,
        note: &str,
    ) -> Result<CompleteResult, StoreError> {
        let at = now_millis();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE deliveries SET worker = NULL, lease_until = NULL, \
             next_attempt_at = CASE WHEN $1::double precision IS NULL THEN NULL \
             ELSE now() + $1::double precision * interval '1 millisecond' END \
             WHERE id = $2 AND state = 'sent' AND worker = $3",
        )
        .bind(next_check.map(millis_f64))
        .bind(id.0)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(CompleteResult::LeaseLost);
        }
        if next_check.is_none() {
            let note = delivery::bounded(note);
            insert_attempt(
                &mut tx,
                AttemptRow {
                    id,
                    actor: &crate::stages::actor(worker),
                    outcome: AttemptKind::Unconfirmed,
                    at,
                    external_id: None,
                    error: Some(&note),
                    proof: None,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(CompleteResult::Completed)
    }

    async fn record_delivery(
        &self,
        proof: &ProvenDelivery,
    ) -> Result<DeliveryRecorded, StoreError> {
        let now = now_millis();
        let number = proof.resolution_number.as_str();
        let mut tx = self.pool.begin().await?;
        let Some(resolution) = sqlx::query(
            "SELECT case_id, issued_at, delivered_at FROM resolutions WHERE number = $1 \
             FOR UPDATE",
        )
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?
        else {
            let missing = StoreError::NotFound {
                what: format!("resolution {number}"),
            };
            return finish_unchanged(tx, Err(missing)).await;
        };
        let case_id = CaseId(resolution.try_get("case_id")?);
        let issued_at: DateTime<Utc> = resolution.try_get("issued_at")?;
        let resolution_delivered: Option<DateTime<Utc>> = resolution.try_get("delivered_at")?;
        if let Err(refused) =
            delivery::check_delivered_at(number, issued_at, proof.delivered_at, now)
        {
            return finish_unchanged(tx, Err(refused)).await;
        }

        let (id, channel, state, external_id) = match &proof.target {
            DeliveryTarget::Outbox(id) => {
                let Some(row) = sqlx::query(
                    "SELECT resolution_number, channel, state, external_id, sent_at FROM deliveries \
                     WHERE id = $1 FOR UPDATE",
                )
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    let missing = StoreError::NotFound {
                        what: format!("delivery {id}"),
                    };
                    return finish_unchanged(tx, Err(missing)).await;
                };
                let row_number: String = row.try_get("resolution_number")?;
                if let Err(refused) = delivery::check_target_row(
                    *id,
                    number,
                    &row_number,
                    row.try_get::<Option<DateTime<Utc>>, _>("sent_at")?,
                    proof.delivered_at,
                ) {
                    return finish_unchanged(tx, Err(refused)).await;
                }
                (
                    *id,
                    delivery::channel(row.try_get("channel")?)?,
                    delivery::state(row.try_get("state")?)?,
                    row.try_get::<Option<String>, _>("external_id")?,
                )
            }
            DeliveryTarget::Reported { channel, source } => {
                if let Err(refused) = delivery::check_reported(*channel, source) {
                    return finish_unchanged(tx, Err(refused)).await;
                }
                // Kept as a row of its own in `sent` (waiting for its proof), so it is
                // recorded below exactly as an outbox delivery is. The resolution's row
                // lock makes the insert and the read one step.
                let row = sqlx::query(
                    "INSERT INTO deliveries (resolution_number, case_id, channel, address, \
                     state, created_at) VALUES ($1, $2, $3, $4, 'sent', $5) \
                     ON CONFLICT (resolution_number, channel, address) \
                     DO UPDATE SET address = excluded.address RETURNING id, state",
                )
                .bind(number)
                .bind(case_id.0)
                .bind(channel.as_str())
                .bind(source.trim())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                (
                    DeliveryId(row.try_get("id")?),
                    *channel,
                    delivery::state(row.try_get("state")?)?,
                    None,
                )
            }
        };
        if state == DeliveryState::Delivered {
            let recorded = DeliveryRecorded::AlreadyRecorded { delivery_id: id };
            return finish_unchanged(tx, Ok(recorded)).await;
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'delivered', delivered_at = $1, proof = $2, \
             worker = NULL, lease_until = NULL, next_attempt_at = NULL, last_error = NULL \
             WHERE id = $3",
        )
        .bind(proof.delivered_at)
        .bind(&proof.proof)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        let proof_text = proof.proof.to_string();
        insert_attempt(
            &mut tx,
            AttemptRow {
                id,
                actor: &proof.reported_by,
                outcome: AttemptKind::Delivered,
                at: now,
                external_id: external_id.as_deref(),
                error: None,
                proof: Some(&proof_text),
            },
        )
        .await?;
        let (recorded, moved) = match resolution_delivered {
            Some(at) => (
                DeliveryRecorded::Additional {
                    delivery_id: id,
                    resolution_delivered_at: at,
                },
                false,
            ),
            None => {
                sqlx::query(
                    "UPDATE resolutions SET delivered_at = $1, delivered_via = $2 \
                     WHERE number = $3 AND delivered_at IS NULL",
                )
                .bind(proof.delivered_at)
                .bind(channel.as_str())
                .bind(number)
                .execute(&mut *tx)
                .await?;
                let moved = sqlx::query(
                    "UPDATE cases SET state = 'delivered' WHERE id = $1 AND state = 'issued'",
                )
                .bind(case_id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Paid before the proof came: dating still has its clocks to set (the
                // appeal window among them), without moving it.
                sqlx::query(
                    "INSERT INTO undated_deliveries (case_id) SELECT id FROM cases \
                     WHERE id = $1 AND state IN ('paid', 'paid_discounted') \
                     AND NOT EXISTS (SELECT 1 FROM case_clocks k WHERE k.case_id = cases.id) \
                     ON CONFLICT (case_id) DO NOTHING",
                )
                .bind(case_id.0)
                .execute(&mut *tx)
                .await?;
                (
                    DeliveryRecorded::First {
                        delivery_id: id,
                        delivered_at: proof.delivered_at,
                    },
                    moved > 0,
                )
            }
        };
        let first = matches!(recorded, DeliveryRecorded::First { .. });
        let detail = delivery::delivered_detail(proof, id, channel, first);
        insert_audit(
            &mut tx,
            &delivery::delivered_audit(case_id, moved, &proof.reported_by, &detail, now),
        )
        .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn record_print_batch(
        &self,
        worker: &str,
        batch: &NewPrintBatch,
    ) -> Result<PrintBatchWrite, StoreError> {
        delivery::check_batch(batch)?;
        let at = now_millis();
        let ids: Vec<i64> = batch.letters.iter().map(|(id, _)| id.0).collect();
        let pages = i32::try_from(batch.pages)
            .map_err(|_| StoreError::Invalid(format!("{} pages", batch.pages)))?;
        let mut tx = self.pool.begin().await?;
        // Locked in id order, so two workers' batches never deadlock on each other.
        let held: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM deliveries WHERE id = ANY ($1) AND channel = 'post' \
             AND state = 'sending' AND worker = $2 ORDER BY id FOR UPDATE",
        )
        .bind(&ids)
        .bind(worker)
        .fetch_all(&mut *tx)
        .await?;
        if held.len() != ids.len() {
            // Its PDF, stored already, names the owners: overwritten, never kept.
            crate::postgres_recognition::record_unkept(
                &mut tx,
                &[(&batch.pdf.sha256, &batch.pdf.location)],
            )
            .await?;
            tx.commit().await?;
            return Ok(PrintBatchWrite::LeaseLost);
        }
        insert_evidence(&mut tx, &batch.pdf).await?;
        let batch_id = PrintBatchId(
            sqlx::query_scalar(
                "INSERT INTO print_batches (created_at, created_by, pdf_sha256, pages) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(at)
            .bind(worker)
            .bind(&batch.pdf.sha256[..])
            .bind(pages)
            .fetch_one(&mut *tx)
            .await?,
        );
        let actor = crate::stages::actor(worker);
        for (id, page) in &batch.letters {
            let proof = delivery::batch_proof(batch_id, batch, *page);
            let proof_json: serde_json::Value = serde_json::from_str(&proof)
                .map_err(|e| StoreError::Invalid(format!("batch proof json: {e}")))?;
            let letter = delivery::letter_id(batch_id, *page);
            let page_i32 =
                i32::try_from(*page).map_err(|_| StoreError::Invalid(format!("page {page}")))?;
            sqlx::query(
                "UPDATE deliveries SET state = 'sent', batch_id = $1, batch_page = $2, \
                 external_id = $3, sent_at = $4, proof = $5, last_error = NULL, worker = NULL, \
                 lease_until = NULL, next_attempt_at = NULL WHERE id = $6",
            )
            .bind(batch_id.0)
            .bind(page_i32)
            .bind(&letter)
            .bind(at)
            .bind(&proof_json)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            insert_attempt(
                &mut tx,
                AttemptRow {
                    id: *id,
                    actor: &actor,
                    outcome: AttemptKind::Sent,
                    at,
                    external_id: Some(&letter),
                    error: None,
                    proof: Some(&proof),
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(PrintBatchWrite::Recorded(batch_id))
    }

    async fn deliveries(&self, resolution_number: &str) -> Result<Vec<DeliveryRecord>, StoreError> {
        sqlx::query(delivery_select!("WHERE resolution_number = $1 ORDER BY id"))
            .bind(resolution_number)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        sqlx::query(delivery_select!("WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(delivery_from_row)
            .transpose()
    }

    async fn delivery_attempts(&self, id: DeliveryId) -> Result<Vec<AttemptRecord>, StoreError> {
        sqlx::query(
            "SELECT id, delivery_id, attempt, actor, outcome, at, external_id, error, proof \
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(AttemptRecord {
                id: row.try_get("id")?,
                delivery_id: DeliveryId(row.try_get("delivery_id")?),
                attempt: delivery::count(i64::from(row.try_get::<i32, _>("attempt")?), "attempt")?,
                actor: row.try_get("actor")?,
                outcome: delivery::kind(row.try_get("outcome")?)?,
                at: row.try_get("at")?,
                external_id: row.try_get("external_id")?,
                error: row.try_get("error")?,
                proof: row.try_get("proof")?,
            })
        })
        .collect()
    }

    async fn print_batch(&self, id: PrintBatchId) -> Result<Option<PrintBatchRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT p.id, p.created_at, p.created_by, p.pdf_sha256, p.pages, p.printed_at, \
             p.printed_by, b.segment, b.byte_offset, b.byte_len FROM print_batches p \
             JOIN evidence_blobs b ON b.sha256 = p.pdf_sha256 WHERE p.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT d.id, d.case_id, d.batch_page, \
             c.evidence_destroyed_at IS NOT NULL AS destroyed \
             FROM deliveries d JOIN cases c ON c.id = d.case_id WHERE d.batch_id = $1 \
             ORDER BY d.batch_page, d.id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        let mut letters = Vec::with_capacity(rows.len());
        let mut cases = Vec::with_capacity(rows.len());
        let mut case_file_destroyed = false;
        for r in &rows {
            case_file_destroyed |= r.try_get::<bool, _>("destroyed")?;
            letters.push((
                DeliveryId(r.try_get("id")?),
                delivery::count(i64::from(r.try_get::<i32, _>("batch_page")?), "batch page")?,
            ));
            cases.push(CaseId(r.try_get("case_id")?));
        }
        cases.sort();
        cases.dedup();
        let sha: Vec<u8> = row.try_get("pdf_sha256")?;
        Ok(Some(PrintBatchRecord {
            id: PrintBatchId(row.try_get("id")?),
            created_at: row.try_get("created_at")?,
            created_by: row.try_get("created_by")?,
            pdf_sha256: decode::hash32(&sha, "print batch pdf hash")?,
            pdf_location: location_from_row(&row)?,
            pages: delivery::count(i64::from(row.try_get::<i32, _>("pages")?), "pages")?,
            letters,
            cases,
            case_file_destroyed,
            printed_at: row.try_get("printed_at")?,
            printed_by: row.try_get("printed_by")?,
        }))
    }

    async fn print_batches(
        &self,
        printed: Option<bool>,
        after: Option<PrintBatchId>,
        limit: u32,
    ) -> Result<Vec<PrintBatchSummary>, StoreError> {
        sqlx::query(
            "SELECT p.id, p.created_at, p.pages, p.printed_at, p.printed_by, \
             (SELECT count(*) FROM deliveries d WHERE d.batch_id = p.id) AS letters \
             FROM print_batches p WHERE p.id > $1 \
             AND ($2::BOOLEAN IS NULL OR (p.printed_at IS NOT NULL) = $2) \
             ORDER BY p.id LIMIT $3",
        )
        .bind(after.map_or(0, |a| a.0))
        .bind(printed)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(PrintBatchSummary {
                id: PrintBatchId(row.try_get("id")?),
                created_at: row.try_get("created_at")?,
                pages: delivery::count(i64::from(row.try_get::<i32, _>("pages")?), "pages")?,
                letters: delivery::count(row.try_get("letters")?, "letters")?,
                printed_at: row.try_get("printed_at")?,
                printed_by: row.try_get("printed_by")?,
            })
        })
        .collect()
    }

    async fn record_print_batch_printed(
        &self,
        id: PrintBatchId,
        by: &str,
    ) -> Result<Option<PrintBatchPrinted>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT printed_at, printed_by FROM print_batches WHERE id = $1 FOR UPDATE",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return finish_unchanged(tx, Ok(None)).await;
        };
        if let Some(at) = row.try_get::<Option<DateTime<Utc>>, _>("printed_at")? {
            let by = row
                .try_get::<Option<String>, _>("printed_by")?
                .unwrap_or_default();
            return finish_unchanged(tx, Ok(Some(PrintBatchPrinted::AlreadyRecorded { at, by })))
                .await;
        }
        let now = now_millis();
        sqlx::query("UPDATE print_batches SET printed_at = $1, printed_by = $2 WHERE id = $3")
            .bind(now)
            .bind(by)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let detail = delivery::printed_detail(id);
        insert_audit(
            &mut tx,
            &crate::recognition::audit_row(
                None,
                crate::audit::PRINT_BATCH_PRINTED,
                None,
                None,
                by,
                &detail,
                now,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(PrintBatchPrinted::Recorded(now)))
    }
}
