//! The crate's one error type, and X-Road faults normalised across their spellings.

use std::fmt;
use std::time::Duration;

/// Everything that can go wrong in an exchange over the bus, or before one starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TundukError {
    #[error("invalid x-road identifier `{value}`: {reason}")]
    InvalidIdentifier { value: String, reason: String },
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("invalid registry configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A SOAP `Fault` or a REST error body (`type`, `message`, `detail`).
    #[error(transparent)]
    Fault(XRoadFault),
    /// A non-success HTTP status whose body carried no X-Road fault.
    #[error("security server answered http {status}")]
    HttpStatus { status: u16 },
    /// Connecting, sending or reading failed before a reply was complete.
    #[error("transport error: {0}")]
    Transport(String),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("malformed reply: {0}")]
    MalformedReply(String),
    /// The reply's X-Road header does not repeat what the request sent.
    #[error("reply does not echo the request's `{field}`: sent `{sent}`, got `{got}`")]
    HeaderMismatch {
        field: &'static str,
        sent: String,
        got: String,
    },
    /// The registry's own `status` was neither 200 (found) nor 203 (not found).
    #[error("registry answered status {0}")]
    RegistryStatus(i64),
    /// The registry said "found" but the reply does not say who the owner is.
    #[error("registry reply has no usable data: {0}")]
    NoUsableData(String),
    /// The circuit breaker is open: the bus failed too often; no request was sent.
    #[error("circuit breaker open, next try in {retry_in:?}")]
    CircuitOpen { retry_in: Duration },
}

impl TundukError {
    /// Whether trying the same request again may succeed: transport errors, time-outs,
    /// HTTP 5xx without a definite fault, and X-Road faults that say a server or the
    /// service behind it is unavailable. A definite answer (access denied, a bad
    /// request, a registry reply) is never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            TundukError::Transport(_) | TundukError::Timeout(_) => true,
            TundukError::HttpStatus { status } => *status >= 500,
            TundukError::Fault(fault) => fault.kind == FaultKind::ServiceUnavailable,
            _ => false,
        }
    }
}

/// What an X-Road fault means to a client, whatever its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The client may not use the service (`Server.ServerProxy.AccessDenied`).
    AccessDenied,
    /// The service is not known (`...UnknownService`).
    UnknownService,
    /// A member or client is not known (`...UnknownMember`).
    UnknownMember,
    /// The request broke the protocol (`Client.*`, `...Invalid*`, `...Missing*`,
    /// `...Malformed*`, `...Duplicate*`).
    InvalidRequest,
    /// A security server or the service behind it could not answer now
    /// (`ServiceFailed`, `NetworkError`, `Timeout`, `DatabaseError`, `InternalError`,
    /// `IoError`, `ServiceUnavailable` under `Server.ServerProxy` or
    /// `Server.ClientProxy`): the only kind worth retrying.
    ServiceUnavailable,
    /// Anything else, e.g. a fault raised by the service itself.
    Other,
}

impl FaultKind {
    /// Classifies a fault code in either spelling: `Server.ServerProxy.AccessDenied`
    /// (X-Road before 7.8) and `server.serverproxy.access_denied` (7.8 on) are the
    /// same fault.
    pub fn classify(code: &str) -> FaultKind {
        let normalised = normalise_fault_code(code);
        let parts: Vec<&str> = normalised.split('.').collect();
        let any = |names: &[&str]| parts.iter().any(|part| names.contains(part));
        let any_prefix = |prefixes: &[&str]| {
            parts
                .iter()
                .skip(1)
                .any(|part| prefixes.iter().any(|prefix| part.starts_with(prefix)))
        };
        if any(&["accessdenied"]) {
            FaultKind::AccessDenied
        } else if any(&["unknownservice"]) {
            FaultKind::UnknownService
        } else if any(&["unknownmember"]) {
            FaultKind::UnknownMember
        } else if parts.first() == Some(&"client")
            || any_prefix(&["invalid", "missing", "malformed", "duplicate"])
        {
            FaultKind::InvalidRequest
        } else if parts.first() == Some(&"server")
            && matches!(parts.get(1), Some(&"serverproxy") | Some(&"clientproxy"))
            && any(&[
                "servicefailed",
                "networkerror",
                "timeout",
                "databaseerror",
                "internalerror",
                "ioerror",
                "serviceunavailable",
            ])
        {
            FaultKind::ServiceUnavailable
        } else {
            FaultKind::Other
        }
    }
}

/// A fault code reduced to one spelling: a QName prefix (`SOAP-ENV:`) dropped, lower
/// case, `_` and `-` removed within each dot-separated part.
pub fn normalise_fault_code(code: &str) -> String {
    let code = code.trim();
    let code = match code.split_once(':') {
        Some((prefix, rest)) if !prefix.contains('.') => rest,
        _ => code,
    };
    code.chars()
        .filter(|c| *c != '_' && *c != '-' && !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A fault as the bus reported it, with its meaning and the original code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XRoadFault {
    pub kind: FaultKind,
    /// The code exactly as received.
    pub code: String,
    pub message: String,
    /// X-Road puts an error id here; other services may put text.
    pub detail: Option<String>,
}

impl XRoadFault {
    pub fn new(
        code: impl Into<String>,
        message: impl Into<String>,
        detail: Option<String>,
    ) -> Self {
        let code = code.into();
        XRoadFault {
            kind: FaultKind::classify(&code),
            code,
            message: message.into(),
            detail,
        }
    }
}

impl fmt::Display for XRoadFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x-road fault `{}`: {}", self.code, self.message)
    }
}

impl std::error::Error for XRoadFault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_codes_in_both_spellings() {
        let cases = [
            ("Server.ServerProxy.AccessDenied", FaultKind::AccessDenied),
            ("server.serverproxy.access_denied", FaultKind::AccessDenied),
            ("SERVER.SERVERPROXY.ACCESS_DENIED", FaultKind::AccessDenied),
            (
                "SOAP-ENV:Server.ServerProxy.AccessDenied",
                FaultKind::AccessDenied,
            ),
            (
                "Server.ClientProxy.UnknownService",
                FaultKind::UnknownService,
            ),
            (
                "server.clientproxy.unknown_service",
                FaultKind::UnknownService,
            ),
            ("Server.ServerProxy.UnknownMember", FaultKind::UnknownMember),
            ("Client.InvalidSoap", FaultKind::InvalidRequest),
            ("client.bad_request", FaultKind::InvalidRequest),
            (
                "Server.ClientProxy.ServiceFailed.MissingBody",
                FaultKind::InvalidRequest,
            ),
            (
                "Server.ServerProxy.ServiceFailed",
                FaultKind::ServiceUnavailable,
            ),
            (
                "server.serverproxy.service_failed.http_error",
                FaultKind::ServiceUnavailable,
            ),
            (
                "Server.ServerProxy.NetworkError",
                FaultKind::ServiceUnavailable,
            ),
            (
                "server.clientproxy.network_error",
                FaultKind::ServiceUnavailable,
            ),
            (
                "Server.ServerProxy.DatabaseError",
                FaultKind::ServiceUnavailable,
            ),
            ("Server.ServerProxy.ServiceDisabled", FaultKind::Other),
            ("Server.ClientProxy.OutdatedGlobalConf", FaultKind::Other),
            ("soap:Server", FaultKind::Other),
            ("", FaultKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(FaultKind::classify(code), kind, "{code}");
        }
    }

    #[test]
    fn only_unavailability_is_transient() {
        let fault = |code: &str| TundukError::Fault(XRoadFault::new(code, "m", None));
        let cases = [
            (TundukError::Transport("reset".into()), true),
            (TundukError::Timeout(Duration::from_secs(1)), true),
            (TundukError::HttpStatus { status: 500 }, true),
            (TundukError::HttpStatus { status: 503 }, true),
            (TundukError::HttpStatus { status: 404 }, false),
            (fault("Server.ServerProxy.ServiceFailed"), true),
            (fault("server.serverproxy.access_denied"), false),
            (fault("Client.InvalidSoap"), false),
            (TundukError::MalformedReply("x".into()), false),
            (TundukError::NoUsableData("x".into()), false),
        ];
        for (error, transient) in cases {
            assert_eq!(error.is_transient(), transient, "{error}");
        }
    }

    #[test]
    fn normalised_codes_meet() {
        assert_eq!(
            normalise_fault_code("Server.ServerProxy.AccessDenied"),
            normalise_fault_code("server.serverproxy.access_denied")
        );
    }
}
