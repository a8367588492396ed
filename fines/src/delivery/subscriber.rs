//! Notices of new violations to the systems subscribed to an owner's violations
//! (smartcity-service's `subscribeViolations`): the outbox's `portal` rows addressed
//! `subscription:{id}` go to the subscriber's `violationNotification` service through
//! kozomol's security server, as kozomol's `[tunduk]` client. The body names the subscription (PIN, plate, the
//! subscriber's unique number), the resolution and the notice's reference, so a notice
//! sent twice (a crash between sending and recording) is recognisably the same.

use std::time::Duration;

use async_trait::async_trait;
use kozomol_core::DeliveryChannel;
use kozomol_store::SubscriptionRecord;
use kozomol_tunduk::smartcity::{Subscriber, SMARTCITY_NS};
use kozomol_tunduk::soap::SoapClient;
use kozomol_tunduk::xml::{self, Element};
use kozomol_tunduk::{ExchangeContext, TundukError, XRoadClient, SYSTEM_USER_ID};

use super::message::Notice;
use super::sender::{Handover, MessageSender, SendError};

/// Sends notices to the members of the notification service.
pub struct SubscriberNotifier {
    soap: SoapClient,
    subscribers: Vec<Subscriber>,
    timeout: Duration,
}

impl SubscriberNotifier {
    /// `soap` speaks as kozomol's subsystem to its security server; `subscribers` are
    /// the members (`[smartcity] subscribers`).
    pub fn new(soap: SoapClient, subscribers: Vec<Subscriber>, timeout: Duration) -> Self {
        SubscriberNotifier {
            soap,
            subscribers,
            timeout,
        }
    }
}

/// The body of one notice: `violationNotification/request`.
pub fn notification(notice: &Notice, subscription: &SubscriptionRecord) -> Element {
    Element::new(kozomol_tunduk::smartcity::NOTIFICATION_SERVICE)
        .in_namespace(SMARTCITY_NS)
        .child(
            Element::new("request")
                .child(Element::text("pin", &subscription.pin))
                .child(Element::text("plate", &subscription.plate))
                .child(Element::text("uniqueNumber", &subscription.unique_number))
                .child(Element::text("protocolNumber", &notice.number))
                .child(Element::text("notificationId", &notice.reference))
                .child(Element::text("message", &notice.text)),
        )
}

/// The answer's `response/code` and `message`.
fn read_answer(response: xml::Node<'_, '_>) -> Result<(i64, String), TundukError> {
    let field = |name: &str| {
        response
            .descendants()
            .find(|n| xml::is(*n, SMARTCITY_NS, name))
            .map(xml::text)
    };
    let code = field("code")
        .and_then(|c| c.trim().parse::<i64>().ok())
        .ok_or_else(|| TundukError::MalformedReply("the answer has no numeric code".into()))?;
    Ok((code, field("message").unwrap_or_default()))
}

#[async_trait]
impl MessageSender for SubscriberNotifier {
    fn channel(&self) -> DeliveryChannel {
        DeliveryChannel::Portal
    }

    async fn send(&self, notice: &Notice) -> Result<Handover, SendError> {
        let subscription = notice
            .subscription
            .as_ref()
            .ok_or_else(|| SendError::Permanent("the notice names no subscription".into()))?;
        let client = XRoadClient::parse(&subscription.client)
            .map_err(|e| SendError::Permanent(format!("not an X-Road client: {e}")))?;
        let subscriber = self
            .subscribers
            .iter()
            .find(|s| s.client == client)
            .ok_or_else(|| {
                SendError::Permanent(format!(
                    "{client} is no longer a member of the notification service"
                ))
            })?;
        let context = ExchangeContext::new(SYSTEM_USER_ID, notice.number.clone());
        let answer = self
            .soap
            .call(
                &subscriber.service,
                &notification(notice, subscription),
                &context,
                self.timeout,
                read_answer,
            )
            .await;
        match answer.map(|exchanged| (exchanged.id, exchanged.value)) {
            // The X-Road message id finds the exchange in both sides' bus logs.
            Ok((id, (200, message))) => Ok(Handover {
                external_id: Some(id),
                proof: serde_json::json!({
                    "service": subscriber.service.to_string(),
                    "code": 200,
                    "message": message,
                }),
            }),
            Ok((_, (code, message))) if code >= 500 => {
                Err(SendError::Temporary(format!("{code} {message}")))
            }
            // The subscriber read the notice and refused it.
            Ok((_, (code, message))) => Err(SendError::Permanent(format!("{code} {message}"))),
            // kozomol's own security server not reached: no notice is at fault.
            Err(TundukError::Transport(e)) => Err(SendError::Unavailable(e)),
            // A notice kozomol cannot even write is never worth sending again.
            Err(
                e @ (TundukError::InvalidInput(_)
                | TundukError::InvalidIdentifier { .. }
                | TundukError::Config(_)),
            ) => Err(SendError::Permanent(e.to_string())),
            // Anything else (time-outs, 5xx, the bus's faults, access to the
            // subscriber's service not granted yet among them) is tried again with the
            // outbox's backoff, each notice on its own, until its attempts run out.
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}
