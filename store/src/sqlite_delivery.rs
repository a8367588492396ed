//! The delivery outbox on SQLite: claims under a lease (one writer at a time, so a
//! claim's single `UPDATE ... RETURNING` never races another), attempts, proofs and
//! print batches, each written with its attempt and audit rows in one `BEGIN
//! IMMEDIATE` transaction. Instants are unix milliseconds by the process's clock.

use std::time::Duration;

use async_trait::async_trait;
use kozomol_core::{CaseId, DeliveryChannel, DeliveryState};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::audit::now_millis;
use crate::delivery::{self, AttemptRow, DeliveryColumns, JobColumns};
use crate::recognition::delay_millis;
use crate::sqlite::{location_from_row, ms, rows_per_statement, SqliteStore};
use crate::sqlite_recognition::{insert_audit, insert_evidence};
use crate::subscriptions::{decided_plate_key, notice_prefix};
use crate::{
    decode, AttemptOutcome, AttemptRecord, AttemptResult, CodeRequest, CompleteResult,
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

fn job_from_row(row: &SqliteRow) -> Result<DeliveryJob, StoreError> {
    JobColumns {
        id: row.try_get("id")?,
        resolution_number: row.try_get("resolution_number")?,
        case_id: row.try_get("case_id")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        attempts: row.try_get("attempts")?,
        external_id: row.try_get("external_id")?,
        sent_at: decode::opt_millis(row.try_get("sent_at")?)?,
        leased_until: decode::millis(row.try_get("lease_until")?)?,
        last_error: row.try_get("last_error")?,
    }
    .job()
}

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    DeliveryColumns {
        id: row.try_get("id")?,
        resolution_number: row.try_get("resolution_number")?,
        case_id: row.try_get("case_id")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: decode::opt_millis(row.try_get("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        external_id: row.try_get("external_id")?,
        batch_id: row.try_get("batch_id")?,
        batch_page: row.try_get("batch_page")?,
        created_at: decode::millis(row.try_get("created_at")?)?,
        sent_at: decode::opt_millis(row.try_get("sent_at")?)?,
        delivered_at: decode::opt_millis(row.try_get("delivered_at")?)?,
        proof: delivery::json_text(row.try_get("proof")?)?,
    }
    .record()
}

/// Plans just-recorded resolutions' deliveries, given as (number, case): a letter to
/// the owner's address when the lookup has one, and a message to each contact the
/// owner left, in that order for each resolution in turn. Runs inside
/// `record_resolutions`' transaction.
pub(crate) async fn plan_deliveries(
    tx: &mut SqliteConnection,
    resolutions: &[(&str, CaseId)],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in resolutions.chunks(rows_per_statement(3) - 1) {
        let mut qb = QueryBuilder::<Sqlite>::new("WITH planned (idx, number, case_id) AS (");
        qb.push_values(
            chunk.iter().enumerate(),
            |mut row, (idx, (number, case_id))| {
                row.push_bind(idx as i64)
                    .push_bind(*number)
                    .push_bind(case_id.0);
            },
        );
        qb.push(concat!(
            ") INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
             next_attempt_at, created_at) \
             SELECT number, case_id, channel, address, 'queued', at, at FROM (\
             SELECT p.idx, 0 AS kind, 0 AS contact, p.number, l.case_id, 'post' AS channel, \
             trim(l.owner_address) AS address FROM planned p \
             JOIN owner_lookups l ON l.case_id = p.case_id \
             WHERE l.owner_id IS NOT NULL AND trim(coalesce(l.owner_address, '')) <> '' \
             UNION ALL \
             SELECT p.idx, 1, o.id, p.number, l.case_id, o.channel, o.address FROM planned p \
             JOIN owner_lookups l ON l.case_id = p.case_id \
             JOIN cases c ON c.id = l.case_id \
             JOIN owner_contacts o ON o.owner_id = l.owner_id AND (o.plate_key = '' OR o.plate_key = ",
            decided_plate_key!(),
            ") \
             UNION ALL \
             SELECT p.idx, 2, s.id, p.number, l.case_id, 'portal', '",
            notice_prefix!(),
            "' || s.id \
             FROM planned p JOIN owner_lookups l ON l.case_id = p.case_id \
             JOIN cases c ON c.id = l.case_id \
             JOIN violation_subscriptions s ON s.pin = l.owner_id AND s.plate_key = ",
            decided_plate_key!(),
            ") JOIN (SELECT "
        ));
        qb.push_bind(now);
        // The post first, then the owner's contacts, then subscribed systems.
        // One address may serve the owner's every vehicle and this one besides.
        qb.push(
            " AS at) ORDER BY idx, kind, contact \
             ON CONFLICT (resolution_number, channel, address) DO NOTHING",
        );
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

async fn insert_attempt(tx: &mut SqliteConnection, row: AttemptRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, actor, outcome, at, external_id, \
         error, proof) SELECT id, attempts, ?, ?, ?, ?, ?, ? FROM deliveries WHERE id = ?",
    )
    .bind(row.actor)
    .bind(row.outcome.as_str())
    .bind(ms(row.at))
    .bind(row.external_id)
    .bind(row.error)
    .bind(row.proof)
    .bind(row.id.0)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn pending_from_row(row: &SqliteRow) -> Result<delivery::PendingConfirmation, StoreError> {
    Ok(delivery::PendingConfirmation {
        case_id: CaseId(row.try_get("case_id")?),
        owner_id: row.try_get("owner_id")?,
        plate_key: row.try_get("plate_key")?,
        channel: row.try_get("channel")?,
        address: row.try_get("address")?,
        code_sha256: row.try_get("code_sha256")?,
        requested_by: row.try_get("requested_by")?,
        expires_at: decode::millis(row.try_get("expires_at")?)?,
        tries: row.try_get("tries")?,
        confirmed: row.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
    })
}

/// Stores a contact and queues a delivery to it for each resolution it serves that no
/// delivery has proven yet; the same contact again changes nothing.
async fn insert_contact(
    tx: &mut SqliteConnection,
    contact: &NewContact,
    now: i64,
) -> Result<ContactAdded, StoreError> {
    let channel = contact.address.channel().as_str();
    let address = contact.address.as_str();
    let plate_key = contact.plate_key.as_deref().unwrap_or_default();
    let known: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM owner_contacts WHERE owner_id = ? AND channel = ? AND address = ? \
         AND plate_key = ?",
    )
    .bind(&contact.owner_id)
    .bind(channel)
    .bind(address)
    .bind(plate_key)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = known {
        return Ok(ContactAdded::AlreadyKnown { id });
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO owner_contacts (owner_id, channel, address, added_at, added_by, plate_key) \
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&contact.owner_id)
    .bind(channel)
    .bind(address)
    .bind(now)
    .bind(&contact.added_by)
    .bind(plate_key)
    .fetch_one(&mut *tx)
    .await?;
    // Resolutions already out but not yet proven delivered get the new contact too:
    // a citizen who leaves a number after the letter went still gets the text.
    let planned = sqlx::query(concat!(
        "INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
         next_attempt_at, created_at) \
         SELECT r.number, r.case_id, ?1, ?2, 'queued', ?3, ?3 FROM resolutions r \
         JOIN owner_lookups l ON l.case_id = r.case_id \
         JOIN cases c ON c.id = r.case_id \
         WHERE l.owner_id = ?4 AND r.delivered_at IS NULL AND c.state = 'issued' \
         AND (?5 = '' OR ?5 = ",
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
impl DeliveryOutbox for SqliteStore {
    async fn add_contact(&self, contact: &NewContact) -> Result<ContactAdded, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let added = insert_contact(&mut tx, contact, ms(now_millis())).await?;
        tx.commit().await?;
        Ok(added)
    }

    async fn contacts(&self, owner_id: &str) -> Result<Vec<ContactRecord>, StoreError> {
        sqlx::query(
            "SELECT id, owner_id, channel, address, added_at, added_by, plate_key \
             FROM owner_contacts WHERE owner_id = ? ORDER BY id",
        )
        .bind(owner_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(ContactRecord {
                id: row.try_get("id")?,
                owner_id: row.try_get("owner_id")?,
                channel: delivery::channel(row.try_get("channel")?)?,
                address: row.try_get("address")?,
                added_at: decode::millis(row.try_get("added_at")?)?,
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM contact_confirmations WHERE expires_at < ?")
            .bind(ms(now - delivery::LAPSED_KEPT))
            .execute(&mut *tx)
            .await?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM contact_confirmations WHERE channel = ? AND address = ? \
             AND requested_at > ?",
        )
        .bind(channel)
        .bind(address)
        .bind(ms(now - chrono::Duration::hours(1)))
        .fetch_one(&mut *tx)
        .await?;
        if recent >= CODES_PER_ADDRESS_HOUR {
            tx.commit().await?;
            return Ok(CodeRequest::AddressBusy);
        }
        sqlx::query(
            "INSERT INTO contact_confirmations (handle, resolution_number, owner_id, plate_key, \
             channel, address, code_sha256, requested_at, requested_by, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&request.handle)
        .bind(&request.resolution_number)
        .bind(&contact.owner_id)
        .bind(plate_key)
        .bind(channel)
        .bind(address)
        .bind(&request.code_sha256)
        .bind(ms(now))
        .bind(&contact.added_by)
        .bind(ms(request.expires_at))
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
        const SELECT: &str = delivery::pending_confirmation_select!(
            "WHERE k.handle = ? AND k.resolution_number = ?"
        );
        let now = now_millis();
        // Judged first on a reader: a handle unknown or lapsed never takes the one
        // writer's lock (a flood of them would hold up every write).
        let seen = sqlx::query(SELECT)
            .bind(handle)
            .bind(number)
            .fetch_optional(&self.reader)
            .await?;
        let Some(seen) = seen else {
            return Ok(ContactConfirmed::Unknown);
        };
        if matches!(
            pending_from_row(&seen)?.judge(code_sha256, now)?,
            delivery::Judged::Lapsed
        ) {
            return Ok(ContactConfirmed::Lapsed);
        }
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(SELECT)
            .bind(handle)
            .bind(number)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(ContactConfirmed::Unknown);
        };
        let pending = pending_from_row(&row)?;
        let case_id = pending.case_id;
        let contact = match pending.judge(code_sha256, now)? {
            delivery::Judged::Lapsed => {
                tx.rollback().await?;
                return Ok(ContactConfirmed::Lapsed);
            }
            delivery::Judged::Wrong { tries_left } => {
                sqlx::query("UPDATE contact_confirmations SET tries = tries + 1 WHERE handle = ?")
                    .bind(handle)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(ContactConfirmed::WrongCode { tries_left });
            }
            delivery::Judged::Right(contact) => contact,
        };
        sqlx::query(
            "UPDATE contact_confirmations SET tries = tries + 1, confirmed_at = ? WHERE handle = ?",
        )
        .bind(ms(now))
        .bind(handle)
        .execute(&mut *tx)
        .await?;
        let added = insert_contact(&mut tx, &contact, ms(now)).await?;
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
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(delay_millis(lease));
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut jobs = sqlx::query(concat!(
            "UPDATE deliveries SET state = 'sending', worker = ?, lease_until = ?, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM deliveries WHERE channel = ? \
             AND state IN ('queued', 'sending') AND next_attempt_at <= ? \
             AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY next_attempt_at, id LIMIT ?)",
            job_columns!()
        ))
        .bind(worker)
        .bind(until)
        .bind(channel.as_str())
        .bind(now)
        .bind(now)
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
        let now = chrono::Utc::now().timestamp_millis();
        let renewed = sqlx::query(
            "UPDATE deliveries SET lease_until = ? WHERE id = ? AND worker = ? \
             AND state = 'sending' AND lease_until > ?",
        )
        .bind(now.saturating_add(delay_millis(lease)))
        .bind(id.0)
        .bind(worker)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_deliveries(&self, worker: &str, ids: &[DeliveryId]) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for id in ids {
            sqlx::query(
                "UPDATE deliveries SET state = 'queued', worker = NULL, lease_until = NULL, \
                 attempts = max(attempts - 1, 0) WHERE id = ? AND worker = ? AND state = 'sending'",
            )
            .bind(id.0)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
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
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(delay_millis(lease));
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut jobs = sqlx::query(concat!(
            "UPDATE deliveries SET worker = ?, lease_until = ? \
             WHERE id IN (SELECT id FROM deliveries WHERE channel = ? AND state = 'sent' \
             AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY next_attempt_at, id LIMIT ?)",
            job_columns!()
        ))
        .bind(worker)
        .bind(until)
        .bind(channel.as_str())
        .bind(now)
        .bind(now)
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
        let now = ms(at);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) = sqlx::query(
            "SELECT state, attempts, case_id, channel FROM deliveries WHERE id = ? \
             AND worker = ? AND state IN ('sending', 'sent')",
        )
        .bind(id.0)
        .bind(worker)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(AttemptResult::LeaseLost);
        };
        let state = delivery::state(row.try_get("state")?)?;
        let attempts = delivery::count(row.try_get("attempts")?, "delivery attempts")?;
        let actor = crate::stages::actor(worker);
        let result = match outcome {
            AttemptOutcome::Sent {
                external_id,
                check_after,
                ..
            } => {
                if state != DeliveryState::Sending {
                    return Err(StoreError::Invalid(format!(
                        "delivery {id} was sent already"
                    )));
                }
                let proof = delivery::sent_proof_json(outcome);
                sqlx::query(
                    "UPDATE deliveries SET state = 'sent', external_id = ?, sent_at = ?, \
                     proof = ?, last_error = NULL, worker = NULL, lease_until = NULL, \
                     next_attempt_at = ? WHERE id = ?",
                )
                .bind(external_id.as_deref())
                .bind(now)
                .bind(proof.as_deref())
                .bind(check_after.map(|d| now.saturating_add(delay_millis(d))))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                insert_attempt(
                    &mut tx,
                    AttemptRow {
                        id,
                        actor: &actor,
                        outcome: crate::AttemptKind::Sent,
                        at,
                        external_id: external_id.as_deref(),
                        error: None,
                        proof: proof.as_deref(),
                    },
                )
                .await?;
                AttemptResult::Sent
            }
            AttemptOutcome::Failed { error, retry_after } => {
                let error = delivery::bounded(error);
                let retry = retry_after.filter(|_| attempts < max_attempts);
                sqlx::query(
                    "UPDATE deliveries SET state = ?, last_error = ?, worker = NULL, \
                     lease_until = NULL, next_attempt_at = ? WHERE id = ?",
                )
                .bind(if retry.is_some() { "queued" } else { "failed" })
                .bind(&error)
                .bind(retry.map(|d| now.saturating_add(delay_millis(d))))
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
                insert_attempt(
                    &mut tx,
                    AttemptRow {
                        id,
                        actor: &actor,
                        outcome: crate::AttemptKind::Failed,
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
                        outcome: crate::AttemptKind::Failed,
                        at,
                        external_id: None,
                        error: Some(&error),
                        proof: None,
                    },
                )
                .await?;
                sqlx::query(
                    "UPDATE deliveries SET state = 'queued', last_error = ?, worker = NULL, \
                     lease_until = NULL, next_attempt_at = ?, attempts = max(attempts - 1, 0) \
                     WHERE id = ?",
                )
                .bind(&error)
                .bind(now.saturating_add(delay_millis(*retry_after)))
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
        let now = ms(at);
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let moved = sqlx::query(
            "UPDATE deliveries SET next_attempt_at = ?, worker = NULL, lease_until = NULL \
             WHERE id = ? AND state = 'sent' AND worker = ?",
        )
        .bind(next_check.map(|d| now.saturating_add(delay_millis(d))))
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
                    outcome: crate::AttemptKind::Unconfirmed,
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(resolution) = sqlx::query(
            "SELECT case_id, issued_at, delivered_at FROM resolutions WHERE number = ?",
        )
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Err(StoreError::NotFound {
                what: format!("resolution {number}"),
            });
        };
        let case_id = CaseId(resolution.try_get("case_id")?);
        let issued_at = decode::millis(resolution.try_get("issued_at")?)?;
        let resolution_delivered = decode::opt_millis(resolution.try_get("delivered_at")?)?;
        delivery::check_delivered_at(number, issued_at, proof.delivered_at, now)?;

        let (id, channel, state, external_id) = match &proof.target {
            DeliveryTarget::Outbox(id) => {
                let Some(row) = sqlx::query(
                    "SELECT resolution_number, channel, state, external_id, sent_at FROM deliveries \
                     WHERE id = ?",
                )
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Err(StoreError::NotFound {
                        what: format!("delivery {id}"),
                    });
                };
                let row_number: String = row.try_get("resolution_number")?;
                delivery::check_target_row(
                    *id,
                    number,
                    &row_number,
                    decode::opt_millis(row.try_get("sent_at")?)?,
                    proof.delivered_at,
                )?;
                (
                    *id,
                    delivery::channel(row.try_get("channel")?)?,
                    delivery::state(row.try_get("state")?)?,
                    row.try_get::<Option<String>, _>("external_id")?,
                )
            }
            DeliveryTarget::Reported { channel, source } => {
                delivery::check_reported(*channel, source)?;
                // Kept as a row of its own in `sent` (waiting for its proof), so it is
                // recorded below exactly as an outbox delivery is.
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO deliveries (resolution_number, case_id, channel, address, \
                     state, created_at) VALUES (?, ?, ?, ?, 'sent', ?) \
                     ON CONFLICT (resolution_number, channel, address) \
                     DO UPDATE SET address = excluded.address RETURNING id",
                )
                .bind(number)
                .bind(case_id.0)
                .bind(channel.as_str())
                .bind(source.trim())
                .bind(ms(now))
                .fetch_one(&mut *tx)
                .await?;
                let state: String = sqlx::query_scalar("SELECT state FROM deliveries WHERE id = ?")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                (DeliveryId(id), *channel, delivery::state(&state)?, None)
            }
        };
        if state == DeliveryState::Delivered {
            return Ok(DeliveryRecorded::AlreadyRecorded { delivery_id: id });
        }
        let proof_json = proof.proof.to_string();
        sqlx::query(
            "UPDATE deliveries SET state = 'delivered', delivered_at = ?, proof = ?, \
             worker = NULL, lease_until = NULL, next_attempt_at = NULL, last_error = NULL \
             WHERE id = ?",
        )
        .bind(ms(proof.delivered_at))
        .bind(&proof_json)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        insert_attempt(
            &mut tx,
            AttemptRow {
                id,
                actor: &proof.reported_by,
                outcome: crate::AttemptKind::Delivered,
                at: now,
                external_id: external_id.as_deref(),
                error: None,
                proof: Some(&proof_json),
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
                    "UPDATE resolutions SET delivered_at = ?, delivered_via = ? \
                     WHERE number = ? AND delivered_at IS NULL",
                )
                .bind(ms(proof.delivered_at))
                .bind(channel.as_str())
                .bind(number)
                .execute(&mut *tx)
                .await?;
                let moved = sqlx::query(
                    "UPDATE cases SET state = 'delivered' WHERE id = ? AND state = 'issued'",
                )
                .bind(case_id.0)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Paid before the proof came: dating still has its clocks to set (the
                // appeal window among them), without moving it.
                sqlx::query(
                    "INSERT INTO undated_deliveries (case_id) SELECT id FROM cases \
                     WHERE id = ? AND state IN ('paid', 'paid_discounted') \
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
        let now = ms(at);
        let ids: Vec<i64> = batch.letters.iter().map(|(id, _)| id.0).collect();
        let ids_json = serde_json::Value::from(ids.clone()).to_string();
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) \
             AND channel = 'post' AND state = 'sending' AND worker = ?",
        )
        .bind(&ids_json)
        .bind(worker)
        .fetch_one(&mut *tx)
        .await?;
        if usize::try_from(held).ok() != Some(ids.len()) {
            // Its PDF, stored already, names the owners: overwritten, never kept.
            crate::sqlite_recognition::record_unkept(
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
                 VALUES (?, ?, ?, ?) RETURNING id",
            )
            .bind(now)
            .bind(worker)
            .bind(&batch.pdf.sha256[..])
            .bind(i64::from(batch.pages))
            .fetch_one(&mut *tx)
            .await?,
        );
        let actor = crate::stages::actor(worker);
        for (id, page) in &batch.letters {
            let proof = delivery::batch_proof(batch_id, batch, *page);
            let letter = delivery::letter_id(batch_id, *page);
            sqlx::query(
                "UPDATE deliveries SET state = 'sent', batch_id = ?, batch_page = ?, \
                 external_id = ?, sent_at = ?, proof = ?, last_error = NULL, worker = NULL, \
                 lease_until = NULL, next_attempt_at = NULL WHERE id = ?",
            )
            .bind(batch_id.0)
            .bind(i64::from(*page))
            .bind(&letter)
            .bind(now)
            .bind(&proof)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
            insert_attempt(
                &mut tx,
                AttemptRow {
                    id: *id,
                    actor: &actor,
                    outcome: crate::AttemptKind::Sent,
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
        sqlx::query(delivery_select!("WHERE resolution_number = ? ORDER BY id"))
            .bind(resolution_number)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn delivery(&self, id: DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        sqlx::query(delivery_select!("WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(delivery_from_row)
            .transpose()
    }

    async fn delivery_attempts(&self, id: DeliveryId) -> Result<Vec<AttemptRecord>, StoreError> {
        sqlx::query(
            "SELECT id, delivery_id, attempt, actor, outcome, at, external_id, error, proof \
             FROM delivery_attempts WHERE delivery_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(AttemptRecord {
                id: row.try_get("id")?,
                delivery_id: DeliveryId(row.try_get("delivery_id")?),
                attempt: delivery::count(row.try_get("attempt")?, "attempt")?,
                actor: row.try_get("actor")?,
                outcome: delivery::kind(row.try_get("outcome")?)?,
                at: decode::millis(row.try_get("at")?)?,
                external_id: row.try_get("external_id")?,
                error: row.try_get("error")?,
                proof: delivery::json_text(row.try_get("proof")?)?,
            })
        })
        .collect()
    }

    async fn print_batch(&self, id: PrintBatchId) -> Result<Option<PrintBatchRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT p.id, p.created_at, p.created_by, p.pdf_sha256, p.pages, p.printed_at, \
             p.printed_by, b.segment, b.byte_offset, b.byte_len FROM print_batches p \
             JOIN evidence_blobs b ON b.sha256 = p.pdf_sha256 WHERE p.id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT d.id, d.case_id, d.batch_page, \
             c.evidence_destroyed_at IS NOT NULL AS destroyed \
             FROM deliveries d JOIN cases c ON c.id = d.case_id WHERE d.batch_id = ? \
             ORDER BY d.batch_page, d.id",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?;
        let mut letters = Vec::with_capacity(rows.len());
        let mut cases = Vec::with_capacity(rows.len());
        let mut case_file_destroyed = false;
        for r in &rows {
            case_file_destroyed |= r.try_get::<bool, _>("destroyed")?;
            letters.push((
                DeliveryId(r.try_get("id")?),
                delivery::count(r.try_get("batch_page")?, "batch page")?,
            ));
            cases.push(CaseId(r.try_get("case_id")?));
        }
        cases.sort();
        cases.dedup();
        let sha: Vec<u8> = row.try_get("pdf_sha256")?;
        Ok(Some(PrintBatchRecord {
            id: PrintBatchId(row.try_get("id")?),
            created_at: decode::millis(row.try_get("created_at")?)?,
            created_by: row.try_get("created_by")?,
            pdf_sha256: decode::hash32(&sha, "print batch pdf hash")?,
            pdf_location: location_from_row(&row)?,
            pages: delivery::count(row.try_get("pages")?, "pages")?,
            letters,
            cases,
            case_file_destroyed,
            printed_at: row
                .try_get::<Option<i64>, _>("printed_at")?
                .map(decode::millis)
                .transpose()?,
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
             FROM print_batches p WHERE p.id > ?1 \
             AND (?2 IS NULL OR (p.printed_at IS NOT NULL) = ?2) ORDER BY p.id LIMIT ?3",
        )
        .bind(after.map_or(0, |a| a.0))
        .bind(printed)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(PrintBatchSummary {
                id: PrintBatchId(row.try_get("id")?),
                created_at: decode::millis(row.try_get("created_at")?)?,
                pages: delivery::count(row.try_get("pages")?, "pages")?,
                letters: delivery::count(row.try_get("letters")?, "letters")?,
                printed_at: row
                    .try_get::<Option<i64>, _>("printed_at")?
                    .map(decode::millis)
                    .transpose()?,
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let Some(row) =
            sqlx::query("SELECT printed_at, printed_by FROM print_batches WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        if let Some(at) = row.try_get::<Option<i64>, _>("printed_at")? {
            return Ok(Some(PrintBatchPrinted::AlreadyRecorded {
                at: decode::millis(at)?,
                by: row
                    .try_get::<Option<String>, _>("printed_by")?
                    .unwrap_or_default(),
            }));
        }
        let now = now_millis();
        sqlx::query("UPDATE print_batches SET printed_at = ?, printed_by = ? WHERE id = ?")
            .bind(ms(now))
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
