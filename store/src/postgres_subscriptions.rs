//! Subscriptions to an owner's violations on PostgreSQL: one row per client, owner and
//! plate, claimed by `INSERT … ON CONFLICT DO NOTHING`, so two subscribes at once
//! create one.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::audit::now_millis;
use crate::postgres::PgStore;
use crate::subscriptions::{NewSubscription, Subscribed, SubscriptionRecord, Unsubscribed};
use crate::{StoreError, Subscriptions};

fn record(row: &PgRow) -> Result<SubscriptionRecord, StoreError> {
    Ok(SubscriptionRecord {
        id: row.try_get("id")?,
        client: row.try_get("client")?,
        pin: row.try_get("pin")?,
        plate: row.try_get("plate")?,
        plate_key: row.try_get("plate_key")?,
        unique_number: row.try_get("unique_number")?,
        created_at: row.try_get("created_at")?,
        xroad_id: row.try_get("xroad_id")?,
    })
}

#[async_trait]
impl Subscriptions for PgStore {
    async fn subscribe(&self, new: &NewSubscription) -> Result<Subscribed, StoreError> {
        let created = sqlx::query(
            "INSERT INTO violation_subscriptions (client, pin, plate, plate_key, unique_number, \
             created_at, xroad_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (client, pin, plate_key) DO NOTHING RETURNING id, client, pin, plate, plate_key, unique_number, \
             created_at, xroad_id",
        )
        .bind(&new.client)
        .bind(&new.pin)
        .bind(&new.plate)
        .bind(&new.plate_key)
        .bind(&new.unique_number)
        .bind(now_millis())
        .bind(&new.xroad_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = created {
            return Ok(Subscribed::Created(record(&row)?));
        }
        let row = sqlx::query(
            "SELECT id, client, pin, plate, plate_key, unique_number, created_at, xroad_id \
             FROM violation_subscriptions \
             WHERE client = $1 AND pin = $2 AND plate_key = $3",
        )
        .bind(&new.client)
        .bind(&new.pin)
        .bind(&new.plate_key)
        .fetch_one(&self.pool)
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
            "DELETE FROM violation_subscriptions WHERE client = $1 AND pin = $2 \
             AND plate_key = $3 AND unique_number = $4 RETURNING id, client, pin, plate, plate_key, unique_number, \
             created_at, xroad_id",
        )
        .bind(client)
        .bind(pin)
        .bind(plate_key)
        .bind(unique_number)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match ended {
            Some(row) => Unsubscribed::Ended(record(&row)?),
            None => Unsubscribed::NotFound,
        })
    }

    async fn subscription(&self, id: i64) -> Result<Option<SubscriptionRecord>, StoreError> {
        sqlx::query(
            "SELECT id, client, pin, plate, plate_key, unique_number, created_at, xroad_id \
             FROM violation_subscriptions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(record)
        .transpose()
    }
}
