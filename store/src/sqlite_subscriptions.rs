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
        plate_key: row.try_get("plate_key")?,
        unique_number: row.try_get("unique_number")?,
        created_at: decode::millis(row.try_get("created_at")?)?,
        xroad_id: row.try_get("xroad_id")?,
    })
}

#[async_trait]
impl Subscriptions for SqliteStore {
    async fn subscribe(&self, new: &NewSubscription) -> Result<Subscribed, StoreError> {
        let created = sqlx::query(
            "INSERT INTO violation_subscriptions (client, pin, plate, plate_key, unique_number, \
             created_at, xroad_id) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (client, pin, plate_key) DO NOTHING RETURNING id, client, pin, plate, plate_key, unique_number, \
             created_at, xroad_id",
        )
        .bind(&new.client)
        .bind(&new.pin)
        .bind(&new.plate)
        .bind(&new.plate_key)
        .bind(&new.unique_number)
        .bind(ms(now_millis()))
        .bind(&new.xroad_id)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = created {
            return Ok(Subscribed::Created(record(&row)?));
        }
        let row = sqlx::query(
            "SELECT id, client, pin, plate, plate_key, unique_number, created_at, xroad_id \
             FROM violation_subscriptions \
             WHERE client = ? AND pin = ? AND plate_key = ?",
        )
        .bind(&new.client)
        .bind(&new.pin)
        .bind(&new.plate_key)
        .fetch_one(&self.writer)
        .await?;
        Ok(Subscribed::Exists(record(&row)?))
    }

    async fn unsubscribe(
        &self,
        client: &str,
        pin: &str,
        plate_key: &str,
        unique_number: &str,
    ) -> Result<Unsubscribed, StoreError> {
        let ended = sqlx::query(
            "DELETE FROM violation_subscriptions WHERE client = ? AND pin = ? \
             AND plate_key = ? AND unique_number = ? RETURNING id, client, pin, plate, plate_key, unique_number, \
             created_at, xroad_id",
        )
        .bind(client)
        .bind(pin)
        .bind(plate_key)
        .bind(unique_number)
        .fetch_optional(&self.writer)
        .await?;
        Ok(match ended {
            Some(row) => Unsubscribed::Ended(record(&row)?),
            None => Unsubscribed::NotFound,
        })
    }

    async fn subscription(&self, id: i64) -> Result<Option<SubscriptionRecord>, StoreError> {
        sqlx::query(
            "SELECT id, client, pin, plate, plate_key, unique_number, created_at, xroad_id \
             FROM violation_subscriptions WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }
}
