//! The e-mail channel: SMTP to the organisation's relay through `lettre`, one
//! connection per message, the resolution PDF attached. A message the relay accepted
//! is `sent`, never proven delivered: mail servers do not report delivery, so an
//! e-mail starts no clock (a delivery proven otherwise does).
//!
//! The connection is protected as [`SmtpSecurity`] says: STARTTLS required by default
//! (a relay that does not offer it gets nothing), TLS from the first byte, or plain SMTP
//! for a relay on the same host or trusted network. The relay's certificate must chain
//! to a public root or to one of [`SmtpConfig::trusted`]. Credentials (AUTH) go only
//! over TLS.

use std::time::Duration;

use async_trait::async_trait;
use kozomol_core::DeliveryChannel;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::error;

use super::message::Notice;
use super::sender::{Handover, MessageSender, SendError};
use super::tls::TrustedCertificates;
use super::DeliveryError;

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP, then STARTTLS, required (submission, port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS at all: only for a relay on the same host or a trusted local network.
    None,
}

impl SmtpSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }
}

/// The account kozomol submits mail as (AUTH PLAIN or LOGIN, as the relay offers).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender, e.g. `Козомол <noreply@kozomol.kg>`.
    pub from: String,
    /// The name kozomol greets the relay with (EHLO) and the domain of message ids.
    pub hello_name: String,
    /// For the whole exchange of one message.
    pub timeout: Duration,
    pub security: SmtpSecurity,
    /// Roots trusted besides the public ones (a city's own CA).
    pub trusted: Option<TrustedCertificates>,
    pub credentials: Option<SmtpCredentials>,
}

impl SmtpConfig {
    pub fn new(host: impl Into<String>, port: u16, from: impl Into<String>) -> Self {
        SmtpConfig {
            host: host.into(),
            port,
            from: from.into(),
            hello_name: "kozomol.local".to_owned(),
            timeout: Duration::from_secs(30),
            security: SmtpSecurity::default(),
            trusted: None,
            credentials: None,
        }
    }
}

/// The server name the relay's certificate must carry is `host` (a name or an address).
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, DeliveryError> {
    let mut parameters = TlsParameters::builder(config.host.clone());
    if let Some(trusted) = &config.trusted {
        parameters = parameters.add_root_certificate(trusted.for_smtp()?);
    }
    parameters
        .build_rustls()
        .map_err(|e| DeliveryError::Config(format!("smtp tls: {e}")))
}

fn is_about_credentials(code: &str) -> bool {
    matches!(code, "530" | "534" | "535" | "538")
}

/// Sends notices to the relay.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    hello_name: String,
    security: SmtpSecurity,
}

impl SmtpMailer {
    pub fn new(config: SmtpConfig) -> Result<Self, DeliveryError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| DeliveryError::Config(format!("smtp sender `{}`: {e}", config.from)))?;
        if config.hello_name.is_empty() || config.hello_name.contains(char::is_whitespace) {
            return Err(DeliveryError::Config(format!(
                "smtp hello name `{}` is not a host name",
                config.hello_name
            )));
        }
        // `dangerous` only names the starting point: plain until `tls` below says otherwise.
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .hello_name(ClientId::Domain(config.hello_name.clone()))
            .timeout(Some(config.timeout));
        transport = match config.security {
            SmtpSecurity::None => {
                if config.credentials.is_some() {
                    return Err(DeliveryError::Config(
                        "smtp credentials would cross the network in clear: use starttls or tls"
                            .into(),
                    ));
                }
                if config.trusted.is_some() {
                    return Err(DeliveryError::Config(
                        "smtp certificates are given but the connection has no TLS".into(),
                    ));
                }
                transport
            }
            SmtpSecurity::StartTls => transport.tls(Tls::Required(tls_parameters(&config)?)),
            SmtpSecurity::Tls => transport.tls(Tls::Wrapper(tls_parameters(&config)?)),
        };
        if let Some(c) = &config.credentials {
            transport =
                transport.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        Ok(SmtpMailer {
            transport: transport.build(),
            from,
            hello_name: config.hello_name,
            security: config.security,
        })
    }

    fn message(&self, notice: &Notice) -> Result<Message, SendError> {
        let to: Mailbox = notice
            .to
            .parse()
            .map_err(|e| SendError::Permanent(format!("e-mail address: {e}")))?;
        // Base64 keeps every line short and the Cyrillic text intact through any relay.
        let text = Body::new_with_encoding(notice.text.clone(), ContentTransferEncoding::Base64)
            .map_err(|_| SendError::Permanent("the text does not encode".into()))?;
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(text);
        let body = match &notice.pdf {
            Some(pdf) => {
                let pdf_type = ContentType::parse("application/pdf")
                    .map_err(|e| SendError::Permanent(format!("content type: {e}")))?;
                MultiPart::mixed().singlepart(text).singlepart(
                    Attachment::new(format!("{}.pdf", notice.number)).body(pdf.clone(), pdf_type),
                )
            }
            None => MultiPart::mixed().singlepart(text),
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(notice.subject.clone())
            // One id per delivery: a resent message is recognisably the same one.
            .message_id(Some(format!("<{}@{}>", notice.reference, self.hello_name)))
            .multipart(body)
            .map_err(|e| SendError::Permanent(format!("the message does not build: {e}")))
    }
}

#[async_trait]
impl MessageSender for SmtpMailer {
    fn channel(&self) -> DeliveryChannel {
        DeliveryChannel::Email
    }

    fn attaches_pdf(&self) -> bool {
        true
    }

    async fn send(&self, notice: &Notice) -> Result<Handover, SendError> {
        let message = self.message(notice)?;
        let message_id = format!("<{}@{}>", notice.reference, self.hello_name);
        match self.transport.send(message).await {
            Ok(response) => {
                let reply: Vec<&str> = response.message().collect();
                let reply = reply.join(" ");
                Ok(Handover {
                    external_id: Some(message_id.clone()),
                    proof: serde_json::json!({
                        "smtp_code": response.code().to_string(),
                        "smtp_reply": reply,
                        "message_id": message_id,
                        "security": self.security.as_str(),
                    }),
                })
            }
            // Our account refused or required (530, 534, 535, 538): an operator must act;
            // no message is at fault.
            Err(e)
                if e.status()
                    .is_some_and(|c| is_about_credentials(&c.to_string())) =>
            {
                error!("smtp relay refuses our credentials: {e}");
                Err(SendError::Unavailable(format!("smtp: {e}")))
            }
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("smtp: {e}"))),
            // The relay not connected to in time (its host drops our packets): no
            // message is at fault, as when it refuses the connection. lettre says so
            // only in its text; the channels' tests hold it to that.
            Err(e) if e.to_string().starts_with("Connection error") => {
                Err(SendError::Unavailable(format!("smtp: {e}")))
            }
            // A 4xx reply or a time-out concerns this message: it counts.
            Err(e) if e.is_transient() || e.is_timeout() => {
                Err(SendError::Temporary(format!("smtp: {e}")))
            }
            // The relay not reached at all (refused, unresolvable): no message is at
            // fault, so none is counted.
            Err(e) => Err(SendError::Unavailable(format!("smtp: {e}"))),
        }
    }
}
