//! The demo's card acquirer: a stand-in payment provider with a hosted card page,
//! for the tests and the demo only (a real acquirer cannot run here). It speaks
//! kozomol's REST payment API as any provider does (docs/payments.md): it opens a
//! payment intent for the payment code the portal sends the payer with (signed, with
//! an Idempotency-Key), takes a card — any number that passes the Luhn check, except
//! `4000 0000 0000 0002`, which is declined — reports the payment with a signed
//! `payment.succeeded` callback, and sends the payer back to the portal.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{escape_html, request_signing_payload, IDEMPOTENCY_HEADER, SIGNATURE_HEADER};

/// The card number the stand-in declines.
pub const DECLINED_CARD: &str = "4000000000000002";

/// Where the stand-in reaches kozomol and as whom.
#[derive(Clone, Debug)]
pub struct CardAcquirerConfig {
    /// kozomol's public base URL: the API it calls, and the only place it sends payers
    /// back to.
    pub kozomol_base_url: String,
    /// Its id among kozomol's `[[payment_providers]]`.
    pub provider: String,
    pub secret: String,
}

/// A running stand-in; it stops when dropped.
pub struct CardAcquirer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CardAcquirer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An order the hosted page is taking a card for: kozomol's intent and where the
/// payer goes afterwards.
#[derive(Clone)]
struct Order {
    payment_code: String,
    resolution_number: String,
    amount_minor: i64,
    currency: String,
    return_url: String,
}

#[derive(Clone)]
struct Acquirer {
    config: Arc<CardAcquirerConfig>,
    http: reqwest::Client,
    orders: Arc<Mutex<HashMap<String, Order>>>,
}

impl CardAcquirer {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(config: CardAcquirerConfig) -> std::io::Result<CardAcquirer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Acquirer {
            config: Arc::new(config),
            http: reqwest::Client::new(),
            orders: Arc::default(),
        };
        let app = Router::new()
            .route("/checkout", get(checkout))
            .route("/checkout/{intent}", get(card_page).post(pay))
            .with_state(state);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::warn!(error = %e, "card acquirer stand-in stopped");
            }
        });
        Ok(CardAcquirer { addr, task })
    }

    /// The page the portal sends payers to.
    pub fn checkout_url(&self) -> String {
        format!("http://{}/checkout", self.addr)
    }
}

#[derive(Deserialize)]
struct CheckoutQuery {
    payment_code: String,
    return_url: String,
}

/// `GET /checkout?payment_code=&return_url=`: opens an intent at kozomol for what is
/// due and shows the card page.
async fn checkout(
    State(acquirer): State<Acquirer>,
    Query(query): Query<CheckoutQuery>,
) -> Response {
    let base = acquirer.config.kozomol_base_url.trim_end_matches('/');
    if !query.return_url.starts_with(&format!("{base}/")) {
        return page(
            StatusCode::BAD_REQUEST,
            "Refused",
            "<p>The return address is not the merchant's.</p>",
        );
    }
    let path = format!(
        "/api/v1/providers/{}/payment-intents",
        acquirer.config.provider
    );
    let body = json!({ "payment_code": query.payment_code }).to_string();
    let key = format!("order-{}", uuid::Uuid::now_v7().simple());
    let payload = request_signing_payload("POST", &path, Some(&key), body.as_bytes());
    let answer = acquirer
        .http
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header(IDEMPOTENCY_HEADER, &key)
        .header(
            SIGNATURE_HEADER,
            signature(&acquirer.config.secret, &payload),
        )
        .body(body)
        .send()
        .await;
    let intent: Value = match answer {
        Ok(response) if response.status() == StatusCode::CREATED => match response.json().await {
            Ok(intent) => intent,
            Err(e) => return failure(&query.return_url, &e.to_string()),
        },
        Ok(response) => {
            let status = response.status();
            let detail = response
                .json::<Value>()
                .await
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_owned))
                .unwrap_or_else(|| status.to_string());
            return failure(&query.return_url, &detail);
        }
        Err(e) => return failure(&query.return_url, &e.to_string()),
    };
    let (Some(id), Some(amount_minor), Some(currency), Some(number)) = (
        intent["id"].as_str(),
        intent["amount_minor"].as_i64(),
        intent["currency"].as_str(),
        intent["resolution_number"].as_str(),
    ) else {
        return failure(&query.return_url, "the merchant's answer lacks the intent");
    };
    let order = Order {
        payment_code: query.payment_code,
        resolution_number: number.to_owned(),
        amount_minor,
        currency: currency.to_owned(),
        return_url: query.return_url,
    };
    acquirer
        .orders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.to_owned(), order.clone());
    card_form(id, &order, None)
}

/// `GET /checkout/{intent}`: the card page again.
async fn card_page(State(acquirer): State<Acquirer>, Path(intent): Path<String>) -> Response {
    match order(&acquirer, &intent) {
        Some(order) => card_form(&intent, &order, None),
        None => page(
            StatusCode::NOT_FOUND,
            "Unknown order",
            "<p>No such order.</p>",
        ),
    }
}

#[derive(Deserialize)]
struct CardForm {
    card_number: String,
    expiry: String,
    cvc: String,
}

/// `POST /checkout/{intent}`: takes the card, tells kozomol, sends the payer back.
async fn pay(
    State(acquirer): State<Acquirer>,
    Path(intent): Path<String>,
    Form(card): Form<CardForm>,
) -> Response {
    let Some(order) = order(&acquirer, &intent) else {
        return page(
            StatusCode::NOT_FOUND,
            "Unknown order",
            "<p>No such order.</p>",
        );
    };
    let digits: String = card
        .card_number
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let problem = if !card_number_valid(&digits) {
        Some("The card number is not valid.")
    } else if !expiry_valid(card.expiry.trim()) {
        Some("The expiry date is not valid (MM/YY, not past).")
    } else if !(3..=4).contains(&card.cvc.trim().len())
        || !card.cvc.trim().bytes().all(|b| b.is_ascii_digit())
    {
        Some("The CVC is 3 or 4 digits.")
    } else if digits == DECLINED_CARD {
        Some("The card was declined.")
    } else {
        None
    };
    if let Some(problem) = problem {
        return card_form(&intent, &order, Some(problem));
    }
    let base = acquirer.config.kozomol_base_url.trim_end_matches('/');
    let body = json!({
        "id": format!("evt_{}", uuid::Uuid::now_v7().simple()),
        "type": "payment.succeeded",
        "data": {
            "payment_id": format!("card_{}", uuid::Uuid::now_v7().simple()),
            "payment_code": order.payment_code,
            "intent": intent,
            "amount_minor": order.amount_minor,
            "currency": order.currency,
            "paid_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    })
    .to_string();
    let reported = acquirer
        .http
        .post(format!(
            "{base}/api/v1/providers/{}/callbacks",
            acquirer.config.provider
        ))
        .header("content-type", "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(&acquirer.config.secret, body.as_bytes()),
        )
        .body(body)
        .send()
        .await;
    match reported {
        Ok(response) if response.status().is_success() => {
            acquirer
                .orders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&intent);
            Redirect::to(&order.return_url).into_response()
        }
        Ok(response) => failure(
            &order.return_url,
            &format!("the merchant answered {}", response.status()),
        ),
        Err(e) => failure(&order.return_url, &e.to_string()),
    }
}

fn order(acquirer: &Acquirer, intent: &str) -> Option<Order> {
    acquirer
        .orders
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(intent)
        .cloned()
}

fn signature(secret: &str, payload: &[u8]) -> String {
    kozomol_payments::signature_header(secret.as_bytes(), chrono::Utc::now().timestamp(), payload)
}

/// 13 to 19 digits passing the Luhn check.
fn card_number_valid(digits: &str) -> bool {
    if !(13..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `MM/YY`, this month or later.
fn expiry_valid(text: &str) -> bool {
    use chrono::Datelike;
    let Some((month, year)) = text.split_once('/') else {
        return false;
    };
    let (Ok(month), Ok(year)) = (month.trim().parse::<u32>(), year.trim().parse::<i32>()) else {
        return false;
    };
    let today = chrono::Utc::now().date_naive();
    (1..=12).contains(&month) && (2000 + year, month) >= (today.year(), today.month())
}

fn card_form(intent: &str, order: &Order, problem: Option<&str>) -> Response {
    let amount = format!(
        "{}.{:02} {}",
        order.amount_minor / 100,
        order.amount_minor % 100,
        order.currency
    );
    let problem = problem
        .map(|p| {
            format!(
                "<p role=\"alert\" id=\"card-problem\">{}</p>",
                escape_html(p)
            )
        })
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "Card payment",
        &format!(
            "<p>Fine <b id=\"order-number\">{number}</b>, payment code {code}</p>\
             <p>Amount: <b id=\"order-amount\">{amount}</b></p>{problem}\
             <form method=\"post\" action=\"/checkout/{intent}\">\
             <label for=\"card_number\">Card number</label><input id=\"card_number\" name=\"card_number\" inputmode=\"numeric\" autocomplete=\"cc-number\" required>\
             <label for=\"expiry\">Expiry (MM/YY)</label><input id=\"expiry\" name=\"expiry\" autocomplete=\"cc-exp\" required>\
             <label for=\"cvc\">CVC</label><input id=\"cvc\" name=\"cvc\" inputmode=\"numeric\" autocomplete=\"cc-csc\" required>\
             <p><button type=\"submit\" id=\"pay\">Pay {amount}</button></p></form>\
             <p><a href=\"{back}\">Cancel and return</a></p>",
            number = escape_html(&order.resolution_number),
            code = escape_html(&order.payment_code),
            amount = escape_html(&amount),
            intent = escape_html(intent),
            back = escape_html(&order.return_url),
        ),
    )
}

fn failure(return_url: &str, detail: &str) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "Payment not possible",
        &format!(
            "<p id=\"card-problem\">The payment cannot be taken: {}</p><p><a href=\"{}\">Return</a></p>",
            escape_html(detail),
            escape_html(return_url)
        ),
    )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} — card acquirer (stand-in)</title></head><body>\
             <h1>{title}</h1><p><i>Stand-in acquirer: no real card is charged.</i></p>{body}</body></html>"
        )),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_pass_luhn() {
        for (number, valid) in [
            ("4111111111111111", true),
            ("5555555555554444", true),
            (DECLINED_CARD, true),
            ("4111111111111112", false),
            ("411111111111", false),
            ("41111111111111111111", false),
            ("4111a11111111111", false),
        ] {
            assert_eq!(card_number_valid(number), valid, "{number}");
        }
    }

    #[test]
    fn expiries() {
        for (text, valid) in [
            ("12/99", true),
            ("01/20", false),
            ("13/30", false),
            ("00/30", false),
            ("1230", false),
            ("ab/cd", false),
        ] {
            assert_eq!(expiry_valid(text), valid, "{text}");
        }
    }
}
