//! Subscriptions of information systems on the bus to an owner's new violations
//! (smartcity-service's `subscribeViolations`). A resolution issued to the owner (PIN or
//! INN) for the subscribed plate is queued in the outbox, in its issuing transaction,
//! as a `portal` delivery addressed to the subscriber's X-Road client.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A subscription to record. `plate` is normalized (`kozomol_tunduk::normalize_plate`),
/// as decided plates are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSubscription {
    /// The subscriber's X-Road client, `instance/class/member/subsystem`.
    pub client: String,
    pub pin: String,
    pub plate: String,
    /// The subscriber's own reference, sent back with every notice.
    pub unique_number: String,
    /// The X-Road message that subscribed.
    pub xroad_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubscriptionRecord {
    pub id: i64,
    pub client: String,
    pub pin: String,
    pub plate: String,
    pub unique_number: String,
    pub created_at: DateTime<Utc>,
    pub xroad_id: String,
}

/// The answer to `subscribe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subscribed {
    Created(SubscriptionRecord),
    /// The client has a subscription for this owner and plate already (nothing written).
    Exists(SubscriptionRecord),
}

/// The answer to `unsubscribe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsubscribed {
    Ended(SubscriptionRecord),
    /// The client has no subscription for this owner and plate under this number.
    NotFound,
}
