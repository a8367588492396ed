//! The channel senders behind one trait, so the outbox worker treats SMS and e-mail
//! alike: send a notice and say what the channel answered; where the channel reports
//! delivery (the SMS gateway), ask it later how the message fared.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::DeliveryChannel;

use super::message::Notice;

/// What the channel answered when it took a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Handover {
    /// The channel's id of the message (the gateway's message id, the mail server's
    /// queue id), for status checks and for people tracing it.
    pub external_id: Option<String>,
    /// The answer itself, kept as the proof of hand-over.
    pub proof: serde_json::Value,
}

/// Why a message was not handed over.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: a time-out, a refused connection, a 5xx, a 429.
    #[error("{0}")]
    Temporary(String),
    /// Never worth repeating: the channel refused the address or the message itself.
    #[error("refused for good: {0}")]
    Permanent(String),
    /// The channel cannot be used at all just now (unreachable, our credentials
    /// refused): no message of it is at fault, so no attempt is counted.
    #[error("channel unavailable: {0}")]
    Unavailable(String),
}

/// How a handed-over message fared, as the channel reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Not yet known; ask again later.
    Pending,
    /// Delivered to the addressee: `at` is the channel's own time of delivery, `proof`
    /// its report, kept as the proof that starts the clocks.
    Delivered {
        at: DateTime<Utc>,
        proof: serde_json::Value,
    },
    /// The channel gave up on it (unreachable number, expired): send it again while
    /// attempts remain.
    Failed { reason: String },
}

/// One delivery channel that sends notices one at a time.
#[async_trait]
pub trait MessageSender: Send + Sync {
    /// `sms` or `email`: which outbox rows this sender takes.
    fn channel(&self) -> DeliveryChannel;

    /// Whether notices should carry the resolution PDF (read from the evidence store).
    fn attaches_pdf(&self) -> bool {
        false
    }

    /// Whether the channel reports delivery, so the worker asks [`Self::status`].
    fn reports_delivery(&self) -> bool {
        false
    }

    async fn send(&self, notice: &Notice) -> Result<Handover, SendError>;

    /// How the message `external_id` fared. Channels that never say answer `Pending`.
    async fn status(&self, external_id: &str) -> Result<Status, SendError> {
        let _ = external_id;
        Ok(Status::Pending)
    }
}
