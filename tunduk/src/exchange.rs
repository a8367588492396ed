//! Who asks and why (X-Road's `userId` and `issue`), and the log line every exchange
//! leaves.

use std::time::Duration;

use kozomol_core::CaseId;

use crate::{TundukError, XRoadService};

/// The user kozomol itself acts as when no officer started the request.
pub const SYSTEM_USER_ID: &str = "kozomol";

const MAX_FIELD_LEN: usize = 255;

/// The optional X-Road header fields kozomol always sends: the user whose action
/// caused the request, and the case it concerns. Every look at an owner's personal
/// data is tied to a case this way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeContext {
    pub user_id: String,
    pub issue: String,
}

impl ExchangeContext {
    pub fn new(user_id: impl Into<String>, issue: impl Into<String>) -> Self {
        ExchangeContext {
            user_id: user_id.into(),
            issue: issue.into(),
        }
    }

    /// kozomol's own system user, for the case `case`.
    pub fn system(case: CaseId) -> Self {
        ExchangeContext::new(SYSTEM_USER_ID, case.to_string())
    }

    /// An officer's action on the case `case`.
    pub fn officer(user_id: impl Into<String>, case: CaseId) -> Self {
        ExchangeContext::new(user_id, case.to_string())
    }

    /// Both fields are 1–255 characters without control characters.
    pub fn validate(&self) -> Result<(), TundukError> {
        for (what, value) in [("user id", &self.user_id), ("issue", &self.issue)] {
            if value.trim().is_empty() {
                return Err(TundukError::InvalidInput(format!("{what} is empty")));
            }
            if value.len() > MAX_FIELD_LEN {
                return Err(TundukError::InvalidInput(format!(
                    "{what} is longer than {MAX_FIELD_LEN} bytes"
                )));
            }
            if value.chars().any(char::is_control) {
                return Err(TundukError::InvalidInput(format!(
                    "{what} contains a control character"
                )));
            }
        }
        Ok(())
    }
}

/// A short word for the log's `outcome` field.
pub(crate) fn outcome_of<T>(result: &Result<T, TundukError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(TundukError::Fault(_)) => "fault",
        Err(TundukError::HttpStatus { .. }) => "http_error",
        Err(TundukError::Transport(_)) => "transport_error",
        Err(TundukError::Timeout(_)) => "timeout",
        Err(TundukError::MalformedReply(_)) => "malformed_reply",
        Err(TundukError::HeaderMismatch { .. }) => "header_mismatch",
        Err(TundukError::RegistryStatus(_)) => "registry_status",
        Err(TundukError::NoUsableData(_)) => "no_usable_data",
        Err(TundukError::CircuitOpen { .. }) => "circuit_open",
        Err(_) => "invalid",
    }
}

/// What an exchange's reply read as, with the X-Road message id the request carried:
/// the bus's own logs (and its proof of the exchange) are found by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchanged<T> {
    pub id: String,
    pub value: T,
}

/// Logs one exchange: INFO when it succeeded, WARN when it failed in a way that may
/// pass, ERROR when an operator must act (access denied, unknown service or member).
pub(crate) fn log_exchange<T>(
    id: &str,
    context: &ExchangeContext,
    service: &XRoadService,
    protocol: &'static str,
    result: &Result<T, TundukError>,
    duration: Duration,
) {
    let outcome = outcome_of(result);
    let duration_ms = duration.as_millis() as u64;
    match result {
        Ok(_) => tracing::info!(
            id = %id,
            user_id = %context.user_id,
            issue = %context.issue,
            service = %service,
            protocol,
            outcome,
            duration_ms,
            "x-road exchange"
        ),
        Err(error) => {
            let operator_must_act = matches!(
                error,
                TundukError::Fault(fault) if matches!(
                    fault.kind,
                    crate::FaultKind::AccessDenied
                        | crate::FaultKind::UnknownService
                        | crate::FaultKind::UnknownMember
                )
            );
            if operator_must_act {
                tracing::error!(
                    id = %id,
                    user_id = %context.user_id,
                    issue = %context.issue,
                    service = %service,
                    protocol,
                    outcome,
                    duration_ms,
                    error = %error,
                    "x-road exchange refused"
                );
            } else {
                tracing::warn!(
                    id = %id,
                    user_id = %context.user_id,
                    issue = %context.issue,
                    service = %service,
                    protocol,
                    outcome,
                    duration_ms,
                    error = %error,
                    "x-road exchange failed"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts() {
        assert_eq!(
            ExchangeContext::system(CaseId(42)),
            ExchangeContext::new("kozomol", "42")
        );
        let cases = [
            (ExchangeContext::new("KG21234567890123", "42"), true),
            (ExchangeContext::new("", "42"), false),
            (ExchangeContext::new("officer", " "), false),
            (ExchangeContext::new("officer\u{0}", "42"), false),
            (ExchangeContext::new("officer", "x".repeat(256)), false),
        ];
        for (context, ok) in cases {
            assert_eq!(context.validate().is_ok(), ok, "{context:?}");
        }
    }
}
