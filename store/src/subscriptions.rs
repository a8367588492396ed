//! Subscriptions of information systems on the bus to an owner's new violations
//! (smartcity-service's `subscribeViolations`). A resolution issued to the owner (PIN or
//! INN) for the subscribed plate is queued in the outbox, in its issuing transaction,
//! as a `portal` delivery addressed `subscription:{id}` (apart from the rows that
//! record a portal's own delivery reports, which are addressed by its client).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A subscription to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSubscription {
    /// The subscriber's X-Road client, `instance/class/member/subsystem`.
    pub client: String,
    pub pin: String,
    /// As the subscriber wrote it (normalized).
    pub plate: String,
    /// Where its spellings meet (`kozomol_tunduk::plate_key`): decided plates are
    /// compared by [`decided_plate_key`], the same key in SQL.
    pub plate_key: String,
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
    pub plate_key: String,
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

/// The outbox address of a subscription's notices.
pub fn notice_address(id: i64) -> String {
    format!("{NOTICE_PREFIX}{id}")
}

/// The subscription a notice's outbox address names, if it names one.
pub fn noticed_subscription(address: &str) -> Option<i64> {
    address.strip_prefix(NOTICE_PREFIX)?.parse().ok()
}

/// The prefix of a notice's outbox address; a macro so that the backends' SQL, which
/// plans notices, spells it from the same place (`query()` takes only `&'static str`).
macro_rules! notice_prefix {
    () => {
        "subscription:"
    };
}
pub(crate) use notice_prefix;

const NOTICE_PREFIX: &str = notice_prefix!();

/// `kozomol_tunduk::plate_key` of `cases.decided_plate` (aliased `c`), in SQL both
/// backends speak: a 2016-format plate (two digits, `KG`, six more) without its `KG`.
/// Decided plates are stored normalized. A macro because `query()` takes only
/// `&'static str`.
macro_rules! decided_plate_key {
    () => {
        "CASE WHEN length(c.decided_plate) = 10 AND substr(c.decided_plate, 3, 2) = 'KG' \
         AND substr(c.decided_plate, 1, 1) BETWEEN '0' AND '9' \
         AND substr(c.decided_plate, 2, 1) BETWEEN '0' AND '9' \
         THEN substr(c.decided_plate, 1, 2) || substr(c.decided_plate, 5) \
         ELSE c.decided_plate END"
    };
}
pub(crate) use decided_plate_key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_addresses_name_their_subscription() {
        assert_eq!(notice_address(7), "subscription:7");
        for (address, id) in [
            ("subscription:7", Some(7)),
            ("subscription:", None),
            ("subscription:x", None),
            ("central-server/GOV/70000002/portal", None),
        ] {
            assert_eq!(noticed_subscription(address), id, "{address}");
        }
    }
}
