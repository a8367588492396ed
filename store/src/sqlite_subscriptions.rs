//! Subscriptions to an owner's violations on SQLite: one row per client, owner and
//! plate, claimed by `INSERT … ON CONFLICT DO NOTHING` on the one writer.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::audit::now_millis;
use crate::decode;
use crate::sqlite::{ms, SqliteStore};
use crate::subscriptions::{NewSubscription, Subscribed, SubscriptionRecord, Unsubscribed};
use crate::{StoreError, Subscriptions};

fn record(row: &SqliteRow) -> Result<SubscriptionRecord, StoreError> {
    Ok(SubscriptionRecord {
        id: row.try_get("id")?,
        client: row.try_get("client")?,
        pin: row.try_get("pin")?,
        plate: row.try_get("plate")?,
        unique_number: row.try_get("unique_number")?,
        created_at: decode::millis(row.try_get("created_at")?)?,
        xroad_id: row.try_get("xroad_id")?,
    })
}

#[async_trait]
impl Subscriptions for SqliteStore {
    async fn subscribe(&self, new: &NewSubscription) -> Result<Subscribed, StoreError> {
        let created = sqlx::query(
            "INSERT INTO violation_subscriptions (client, pin, plate, unique_number, \
             created_at, xroad_id) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (client, pin, plate) DO NOTHING RETURNING id, client, pin, plate, unique_number, \
             created_at, xroad_id",
        )
        .bind(&new.client)
        .bind(&new.pin)
        .bind(&new.plate)
        .bind(&new.unique_number)
        .bind(ms(now_millis()))
        .bind(&new.xroad_id)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = created {
            return Ok(Subscribed::Created(record(&row)?));
        }
        let row = sqlx::query(
            "SELECT id, client, pin, plate, unique_number, created_at, xroad_id \
             FROM violation_subscriptions \
             WHERE client = ? AND pin = ? AND plate = ?",
        )
        .bind(&new.client)
        .bind(&new.pin)
        .bind(&new.plate)
        .fetch_one(&self.writer)
        .await?;
        Ok(Subscribed::Exists(record(&row)?))
    }

    async fn unsubscribe(
        &self,
        client: &str,
        pin: &str,
        plate: &str,
        unique_number: &str,
    ) -> Result<Unsubscribed, StoreError> {
        let ended = sqlx::query(
            "DELETE FROM violation_subscriptions WHERE client = ? AND pin = ? \
             AND plate = ? AND unique_number = ? RETURNING id, client, pin, plate, unique_number, \
             created_at, xroad_id",
        )
        .bind(client)
        .bind(pin)
        .bind(plate)
        .bind(unique_number)
        .fetch_optional(&self.writer)
        .await?;
        Ok(match ended {
            Some(row) => Unsubscribed::Ended(record(&row)?),
            None => Unsubscribed::NotFound,
        })
    }

    async fn subscription_for(
        &self,
        client: &str,
        resolution_number: &str,
    ) -> Result<Option<SubscriptionRecord>, StoreError> {
        sqlx::query(
            "SELECT s.id, s.client, s.pin, s.plate, s.unique_number, \
             s.created_at, s.xroad_id \
             FROM violation_subscriptions s \
             JOIN owner_lookups l ON l.owner_id = s.pin \
             JOIN cases c ON c.id = l.case_id AND c.decided_plate = s.plate \
             JOIN resolutions r ON r.case_id = c.id \
             WHERE s.client = ? AND r.number = ?",
        )
        .bind(client)
        .bind(resolution_number)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }
}
