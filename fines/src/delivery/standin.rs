//! A stand-in for the SMS gateway, for tests and the demo (feature `standin`). It binds
//! 127.0.0.1:0 and speaks the gateway protocol of docs/fines.md: `POST /v1/messages`
//! (bearer token, JSON, idempotent by `reference`) and `GET /v1/messages/{id}`. It
//! reports every message it accepted as delivered at the time it accepted it, unless
//! told never to; it can be told to fail the next sends, to fail every send to one
//! number, to refuse one number for good, or to report one number's next message
//! undeliverable; and it counts the send requests made for
//! each reference, so a test can see that no message went out twice. `GET
//! /v1/inbox/{to}` (no real gateway has it) shows the texts a number got, as a phone
//! would: the browser tests read a contact's confirmation code there, and the demo
//! logs each text it accepts.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::sms::{MessageStatus, SendRequest};

/// A message the stand-in accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub id: String,
    pub to: String,
    pub text: String,
    pub sender: Option<String>,
    pub reference: String,
    pub accepted_at: DateTime<Utc>,
}

#[derive(Default)]
struct Gateway {
    messages: Vec<SentMessage>,
    by_reference: HashMap<String, usize>,
    requests_by_reference: HashMap<String, usize>,
    fail_next: usize,
    fail_to: HashSet<String>,
    refuse_to: HashSet<String>,
    /// Numbers whose next accepted message is reported undeliverable.
    undeliverable_once: HashSet<String>,
    /// Ids of messages reported undeliverable.
    undeliverable: HashSet<String>,
    never_deliver: bool,
    /// Reported as every message's delivery time instead of its acceptance (a
    /// gateway whose clock is off, or a stale report).
    delivered_at: Option<DateTime<Utc>>,
    /// What message ids start with (`sg-` unless set): gateways hand out ids of any
    /// characters, base64's `/+=` among them.
    id_prefix: Option<String>,
}

struct Shared {
    token: String,
    gateway: Mutex<Gateway>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Gateway> {
    // Every change is whole before the guard drops: a poisoned value is still sound.
    shared
        .gateway
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The running stand-in; it stops when shut down or dropped.
pub struct StandInGateway {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl StandInGateway {
    /// Binds 127.0.0.1 on a free port; requests must carry `Bearer {token}`.
    pub async fn start(token: &str) -> std::io::Result<StandInGateway> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            gateway: Mutex::new(Gateway::default()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .route("/v1/messages", post(send))
            .route("/v1/messages/{id}", get(status))
            .route("/v1/inbox/{to}", get(inbox))
            .with_state(Arc::clone(&shared));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(error = %error, "stand-in sms gateway stopped");
            }
        });
        Ok(StandInGateway {
            addr,
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The base URL, for `SmsGatewayConfig::url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` sends answer 503 (counted as requests, nothing accepted).
    pub fn fail_next(&self, n: usize) {
        lock(&self.shared).fail_next += n;
    }

    /// Every send to `to` answers 503 from now on.
    pub fn fail_to(&self, to: &str) {
        lock(&self.shared).fail_to.insert(to.to_owned());
    }

    /// Every send to `to` answers 422: the number is refused for good.
    pub fn refuse_to(&self, to: &str) {
        lock(&self.shared).refuse_to.insert(to.to_owned());
    }

    /// The next message accepted for `to` is reported `undeliverable` (the handset out
    /// of reach until the operator gave up); later ones are delivered.
    pub fn undeliverable_once(&self, to: &str) {
        lock(&self.shared).undeliverable_once.insert(to.to_owned());
    }

    /// With `true`, accepted messages stay `sent` and are never reported delivered.
    pub fn set_never_deliver(&self, never: bool) {
        lock(&self.shared).never_deliver = never;
    }

    /// Reports `at` as every message's delivery time (none: its acceptance).
    pub fn report_delivered_at(&self, at: Option<DateTime<Utc>>) {
        lock(&self.shared).delivered_at = at;
    }

    /// Message ids start with `prefix` from now on.
    pub fn set_id_prefix(&self, prefix: &str) {
        lock(&self.shared).id_prefix = Some(prefix.to_owned());
    }

    /// The messages accepted, in order.
    pub fn messages(&self) -> Vec<SentMessage> {
        lock(&self.shared).messages.clone()
    }

    /// Send requests made with `reference`, failed and repeated ones included.
    pub fn requests_for(&self, reference: &str) -> usize {
        lock(&self.shared)
            .requests_by_reference
            .get(reference)
            .copied()
            .unwrap_or(0)
    }

    /// Every send request made, with its count, by reference.
    pub fn requests(&self) -> HashMap<String, usize> {
        lock(&self.shared).requests_by_reference.clone()
    }

    /// Stops accepting, lets running requests finish for up to a second.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for StandInGateway {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn problem(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}

fn authorised(shared: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == shared.token)
}

fn answer(message: &SentMessage, gateway: &Gateway) -> MessageStatus {
    if gateway.undeliverable.contains(&message.id) {
        return MessageStatus {
            id: message.id.clone(),
            status: "undeliverable".to_owned(),
            delivered_at: None,
            error: Some("subscriber unreachable".to_owned()),
        };
    }
    MessageStatus {
        id: message.id.clone(),
        status: if gateway.never_deliver {
            "sent".to_owned()
        } else {
            "delivered".to_owned()
        },
        delivered_at: (!gateway.never_deliver)
            .then_some(gateway.delivered_at.unwrap_or(message.accepted_at)),
        error: None,
    }
}

async fn send(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorised(&shared, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "bad token");
    }
    let Ok(request) = serde_json::from_slice::<SendRequest>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "body is not a message");
    };
    let mut gateway = lock(&shared);
    *gateway
        .requests_by_reference
        .entry(request.reference.clone())
        .or_default() += 1;
    let valid_number = request
        .to
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    if !valid_number || gateway.refuse_to.contains(&request.to) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "number not reachable");
    }
    if gateway.fail_next > 0 {
        gateway.fail_next -= 1;
        return problem(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
    }
    if gateway.fail_to.contains(&request.to) {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "operator route down");
    }
    if let Some(&index) = gateway.by_reference.get(&request.reference) {
        let status = answer(&gateway.messages[index], &gateway);
        return (StatusCode::OK, Json(status)).into_response();
    }
    let message = SentMessage {
        id: format!(
            "{}{:06}",
            gateway.id_prefix.as_deref().unwrap_or("sg-"),
            gateway.messages.len() + 1
        ),
        to: request.to,
        text: request.text,
        sender: request.sender,
        reference: request.reference.clone(),
        accepted_at: Utc::now(),
    };
    let accepted = MessageStatus {
        id: message.id.clone(),
        status: "accepted".to_owned(),
        delivered_at: None,
        error: None,
    };
    // The demo's visitor has no phone on this gateway: the log is where a code shows.
    tracing::info!(to = %message.to, text = %message.text, "stand-in sms gateway accepted a text");
    if gateway.undeliverable_once.remove(&message.to) {
        gateway.undeliverable.insert(message.id.clone());
    }
    let index = gateway.messages.len();
    gateway.messages.push(message);
    gateway.by_reference.insert(request.reference, index);
    (StatusCode::ACCEPTED, Json(accepted)).into_response()
}

/// The texts accepted for `to`, oldest first.
async fn inbox(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(to): Path<String>,
) -> Response {
    if !authorised(&shared, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "bad token");
    }
    let texts: Vec<String> = lock(&shared)
        .messages
        .iter()
        .filter(|m| m.to == to)
        .map(|m| m.text.clone())
        .collect();
    Json(texts).into_response()
}

async fn status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !authorised(&shared, &headers) {
        return problem(StatusCode::UNAUTHORIZED, "bad token");
    }
    let gateway = lock(&shared);
    match gateway.messages.iter().find(|m| m.id == id) {
        Some(message) => Json(answer(message, &gateway)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "no such message"),
    }
}
