//! Delivering issued resolutions from the store's outbox (`DeliveryOutbox`).
//!
//! It owns the outbox worker ([`DeliveryWorker`]: claim per channel, send, record), the
//! channel senders behind one trait ([`MessageSender`]: SMS over an HTTP gateway, e-mail
//! over SMTP, both over TLS where they cross networks, [`tls`]), print batches for post (many resolutions merged into one PDF, stored as
//! evidence), the notices' Russian text, and the ways a delivery is proven: the SMS
//! gateway's delivery report, a postal return receipt, a delivery the state portal
//! reports. Only a proven delivery starts the discount and appeal clocks; `sent`
//! (a gateway or a mail server took it, a letter was printed) starts nothing.
//!
//! With the `standin` feature, [`standin`] serves a stand-in SMS gateway for tests and
//! the demo.

pub mod confirmation;
pub mod email;
pub mod message;
pub mod post;
pub mod sender;
pub mod sms;
#[cfg(feature = "standin")]
pub mod standin;
pub mod subscriber;
pub mod tls;
pub mod worker;

use chrono::{DateTime, Utc};
use kozomol_core::{ContactAddress, CoreError, DeliveryChannel, DeliveryState};
use kozomol_store::{
    ContactAdded, DeliveryRecorded, DeliveryTarget, NewContact, ProvenDelivery, Store, StoreError,
};

pub use email::{SmtpConfig, SmtpCredentials, SmtpMailer, SmtpSecurity};
pub use message::Notice;
pub use post::{merge_pdfs, MergedPdf, PrintError};
pub use sender::{Handover, MessageSender, SendError, Status};
pub use sms::{SmsGateway, SmsGatewayConfig};
pub use subscriber::SubscriberNotifier;
pub use tls::TrustedCertificates;
pub use worker::{DeliveryConfig, DeliveryWorker, PassReport};

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A phone number or e-mail address that no channel could use; the message says
    /// what is wrong with it.
    #[error(transparent)]
    Contact(#[from] CoreError),
    #[error("a contact names the owner it belongs to (PIN or INN)")]
    NoOwner,
    #[error("resolution {0} has no letter whose receipt could come back")]
    NoLetter(String),
    #[error("delivery config: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a delivery task stopped: {0}")]
    Task(String),
    /// The channel did not take a contact's confirmation code.
    #[error("the confirmation code could not be sent: {0}")]
    CodeNotSent(SendError),
    #[error("a confirmation code is six digits")]
    CodeMalformed,
    /// The address was sent as many codes as it may be in an hour.
    #[error("this address was sent several codes in the last hour; try again later")]
    AddressBusy,
}

/// Takes a citizen's phone number (`sms`) or e-mail address (`email`) for the owner
/// `owner_id` (PIN or INN, as owner lookups name owners), checks it, and stores it; the
/// owner's resolutions not yet proven delivered are queued to it at once. For an
/// officer who saw the owner's papers: it serves every vehicle of the owner (the
/// portal's contacts are confirmed and scoped, [`confirmation`]).
pub async fn add_contact(
    store: &dyn Store,
    owner_id: &str,
    channel: DeliveryChannel,
    raw: &str,
    added_by: &str,
) -> Result<ContactAdded, DeliveryError> {
    let owner_id = contact_owner(owner_id)?;
    let address = ContactAddress::parse(channel, raw)?;
    Ok(store
        .add_contact(&NewContact {
            owner_id: owner_id.to_owned(),
            address,
            added_by: added_by.to_owned(),
            plate_key: None,
        })
        .await?)
}

/// The owner id (PIN or INN) a contact belongs to, trimmed; none is refused.
fn contact_owner(owner_id: &str) -> Result<&str, DeliveryError> {
    let owner_id = owner_id.trim();
    if owner_id.is_empty() {
        return Err(DeliveryError::NoOwner);
    }
    Ok(owner_id)
}

/// Records a delivery another system reports (the state portal, `source` its name):
/// it proves delivery as any other proof does, and the same report again changes
/// nothing (`AlreadyRecorded`).
pub async fn record_portal_delivery(
    store: &dyn Store,
    number: &str,
    source: &str,
    delivered_at: DateTime<Utc>,
    proof: serde_json::Value,
    reported_by: &str,
) -> Result<DeliveryRecorded, DeliveryError> {
    Ok(store
        .record_delivery(&ProvenDelivery {
            resolution_number: number.to_owned(),
            target: DeliveryTarget::Reported {
                channel: DeliveryChannel::Portal,
                source: source.to_owned(),
            },
            delivered_at,
            proof,
            reported_by: reported_by.to_owned(),
        })
        .await?)
}

/// Records the return receipt of the resolution's letter (the addressee's signature,
/// its date): the letter sent in a print batch, or the one proven already (then
/// nothing changes and it says so).
pub async fn record_return_receipt(
    store: &dyn Store,
    number: &str,
    delivered_at: DateTime<Utc>,
    proof: serde_json::Value,
    reported_by: &str,
) -> Result<DeliveryRecorded, DeliveryError> {
    let letters: Vec<_> = store
        .deliveries(number)
        .await?
        .into_iter()
        .filter(|d| d.channel == DeliveryChannel::Post)
        .collect();
    let letter = letters
        .iter()
        .find(|d| d.state == DeliveryState::Sent)
        .or_else(|| letters.iter().find(|d| d.state == DeliveryState::Delivered))
        .ok_or_else(|| DeliveryError::NoLetter(number.to_owned()))?;
    Ok(store
        .record_delivery(&ProvenDelivery {
            resolution_number: number.to_owned(),
            target: DeliveryTarget::Outbox(letter.id),
            delivered_at,
            proof,
            reported_by: reported_by.to_owned(),
        })
        .await?)
}
