//! The SMS channel: a JSON-over-HTTP gateway with a bearer token (the protocol is in
//! docs/fines.md, "Delivery"). A message is sent with `POST /v1/messages` and an
//! idempotency reference, and its fate read back with `GET /v1/messages/{id}`: the
//! gateway's `delivered` status, with its timestamp, is the proof that starts the
//! clocks. Over `https://` the gateway's certificate must chain to a public root or to
//! one of [`SmsGatewayConfig::trusted`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kozomol_core::DeliveryChannel;
use serde::{Deserialize, Serialize};
use tracing::error;

use super::message::Notice;
use super::sender::{Handover, MessageSender, SendError, Status};
use super::tls::TrustedCertificates;
use super::DeliveryError;

/// Longer answers are not the gateway's: refuse to buffer them.
const ANSWER_LIMIT: usize = 64 * 1024;

/// Where the gateway is and how to talk to it.
#[derive(Clone)]
pub struct SmsGatewayConfig {
    /// The gateway's base URL, e.g. `https://sms.example.kg`; `/v1/messages` is
    /// appended. Plain `http://` only for a gateway on the same trusted network: the
    /// texts carry citizens' numbers and fines.
    pub url: String,
    /// The bearer token; read from the environment or a file, never from the repo.
    pub token: String,
    /// The sender name shown on the phone (alphanumeric, registered with the gateway).
    pub sender: Option<String>,
    /// For each request, connecting included.
    pub timeout: Duration,
    /// Roots trusted besides the public ones (a city's own CA).
    pub trusted: Option<TrustedCertificates>,
}

impl std::fmt::Debug for SmsGatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsGatewayConfig")
            .field("url", &self.url)
            .field("token", &"***")
            .field("sender", &self.sender)
            .field("timeout", &self.timeout)
            .field("trusted", &self.trusted)
            .finish()
    }
}

impl SmsGatewayConfig {
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        SmsGatewayConfig {
            url: url.into(),
            token: token.into(),
            sender: Some("KOZOMOL".to_owned()),
            timeout: Duration::from_secs(10),
            trusted: None,
        }
    }
}

/// `POST /v1/messages`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendRequest {
    pub to: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The same reference again is the same message: the gateway answers its id and
    /// sends nothing.
    pub reference: String,
}

/// The answer to a send and to a status request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageStatus {
    pub id: String,
    /// `accepted`, `sent`, `delivered`, `failed` or `expired`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The SMS gateway's client.
pub struct SmsGateway {
    config: SmsGatewayConfig,
    messages_url: String,
    http: reqwest::Client,
}

impl SmsGateway {
    pub fn new(config: SmsGatewayConfig) -> Result<Self, DeliveryError> {
        let base = config.url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DeliveryError::Config(format!(
                "sms gateway url `{base}` is not http:// or https://"
            )));
        }
        if config.trusted.is_some() && !base.starts_with("https://") {
            return Err(DeliveryError::Config(format!(
                "sms gateway certificates are given but `{base}` is not https://"
            )));
        }
        if config.token.trim().is_empty() {
            return Err(DeliveryError::Config("sms gateway token is empty".into()));
        }
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout)
            // Shorter than the whole exchange's: a gateway host that drops the
            // connection's packets is then reported as not reached (the channel is
            // away), not as a time-out that may have sent the message and counts.
            .connect_timeout((config.timeout / 2).min(Duration::from_secs(5)))
            .https_only(base.starts_with("https://"));
        if let Some(trusted) = &config.trusted {
            for certificate in trusted.for_http()? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http
            .build()
            .map_err(|e| DeliveryError::Config(format!("sms gateway client: {e}")))?;
        Ok(SmsGateway {
            messages_url: format!("{base}/v1/messages"),
            config,
            http,
        })
    }

    /// Sends the request and reads a bounded JSON answer; the status decides whether a
    /// failure is worth repeating.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<MessageStatus, SendError> {
        let response = request.bearer_auth(&self.config.token).send().await;
        self.read_answer(response).await
    }

    /// Reads a bounded JSON answer to a request sent; the status decides whether a
    /// failure is worth repeating.
    async fn read_answer(
        &self,
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<MessageStatus, SendError> {
        let response = response.map_err(|e| {
            let text = format!("sms gateway: {}", chain(&e));
            // Not reached at all: the gateway is down, no message is at fault. A
            // time-out may have sent it, so that counts (and resends by reference).
            if e.is_connect() {
                SendError::Unavailable(text)
            } else {
                SendError::Temporary(text)
            }
        })?;
        let status = response.status();
        let body = read_bounded(response).await?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                SendError::Temporary(format!("sms gateway answer does not read: {e}"))
            });
        }
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        let message = format!("sms gateway answered {status}: {reason}");
        match status.as_u16() {
            // The token or our account: an operator must act; the messages wait,
            // their attempts uncounted.
            401 | 403 => {
                error!(
                    status = status.as_u16(),
                    "sms gateway refuses our credentials"
                );
                Err(SendError::Unavailable(message))
            }
            408 | 425 | 429 => Err(SendError::Temporary(message)),
            400..=499 => Err(SendError::Permanent(message)),
            _ => Err(SendError::Temporary(message)),
        }
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, SendError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SendError::Temporary(format!("sms gateway answer cut off: {}", chain(&e))))?
    {
        if body.len() + chunk.len() > ANSWER_LIMIT {
            return Err(SendError::Temporary(format!(
                "sms gateway answer longer than {ANSWER_LIMIT} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[async_trait]
impl MessageSender for SmsGateway {
    fn channel(&self) -> DeliveryChannel {
        DeliveryChannel::Sms
    }

    fn reports_delivery(&self) -> bool {
        true
    }

    async fn send(&self, notice: &Notice) -> Result<Handover, SendError> {
        let request = SendRequest {
            to: notice.to.clone(),
            text: notice.text.clone(),
            sender: self.config.sender.clone(),
            reference: notice.reference.clone(),
        };
        let answer = self
            .exchange(self.http.post(&self.messages_url).json(&request))
            .await?;
        if answer.id.trim().is_empty() {
            return Err(SendError::Temporary(
                "sms gateway accepted the message without an id".into(),
            ));
        }
        Ok(Handover {
            external_id: Some(answer.id.clone()),
            proof: serde_json::json!({ "gateway": answer, "reference": notice.reference }),
        })
    }

    async fn status(&self, external_id: &str) -> Result<Status, SendError> {
        // The id is one path segment, percent-encoded: gateways hand out ids of any
        // characters (base64's `/+=`), and refusing one resent a delivered text.
        let mut url = reqwest::Url::parse(&self.messages_url)
            .map_err(|e| SendError::Unavailable(format!("sms gateway url: {e}")))?;
        if external_id.trim().is_empty() || external_id.chars().any(char::is_control) {
            return Ok(Status::Failed {
                reason: format!(
                    "sms gateway id `{}` cannot be asked about",
                    external_id.escape_debug()
                ),
            });
        }
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(external_id);
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.config.token)
            .send()
            .await;
        // Only "no such message" means the gateway lost it: send it again. Any other
        // refusal of the question is no news of the text; ask again later.
        if let Ok(response) = &response {
            if matches!(response.status().as_u16(), 404 | 410) {
                return Ok(Status::Failed {
                    reason: format!(
                        "sms gateway answered {}: no such message",
                        response.status()
                    ),
                });
            }
        }
        let answer = match self.read_answer(response).await {
            Ok(answer) => answer,
            Err(SendError::Permanent(reason)) => return Err(SendError::Temporary(reason)),
            Err(other) => return Err(other),
        };
        if answer.id != external_id {
            return Err(SendError::Temporary(format!(
                "sms gateway answered about message `{}` when asked about `{external_id}`",
                answer.id
            )));
        }
        Ok(match answer.status.as_str() {
            "delivered" => match answer.delivered_at {
                Some(at) => Status::Delivered {
                    at,
                    proof: serde_json::json!({ "gateway": answer }),
                },
                // A delivery without its time proves nothing a clock can start from.
                None => Status::Pending,
            },
            "failed" | "expired" | "rejected" | "undeliverable" => Status::Failed {
                reason: format!(
                    "sms gateway: {}{}",
                    answer.status,
                    answer
                        .error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
            },
            _ => Status::Pending,
        })
    }
}
