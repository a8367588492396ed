use std::io;

use chrono::NaiveTime;
use kozomol_core::CoreError;

/// Everything that can go wrong in the edge agent.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("invalid broker address `{0}`: expected host:port")]
    InvalidBroker(String),
    #[error("capture is not valid: {0}")]
    InvalidCapture(String),
    #[error(transparent)]
    Envelope(#[from] CoreError),
    #[error("no speed limit in force for lane {lane} at {local_time} local time")]
    NoSpeedLimit { lane: u8, local_time: NaiveTime },
    #[error("measured speed {speed_kmh} km/h is not above the limit of {limit_kmh} km/h")]
    BelowLimit { speed_kmh: u16, limit_kmh: u16 },
    #[error("envelope of {len} bytes does not fit the outbox limit of {limit} bytes")]
    TooLargeForOutbox { len: u64, limit: u64 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid sidecar: {0}")]
    Sidecar(String),
    #[error("the agent is shutting down")]
    ShuttingDown,
    #[error("background task failed: {0}")]
    Task(String),
}

impl EdgeError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(io::Error) -> EdgeError {
        let context = context.into();
        move |source| EdgeError::Io { context, source }
    }

    /// Whether the capture itself is at fault (re-trying it cannot help), as opposed to
    /// the agent's disk or state.
    pub fn is_capture_fault(&self) -> bool {
        matches!(
            self,
            EdgeError::InvalidCapture(_)
                | EdgeError::Envelope(_)
                | EdgeError::Sidecar(_)
                | EdgeError::TooLargeForOutbox { .. }
        )
    }
}

impl From<tokio::task::JoinError> for EdgeError {
    fn from(e: tokio::task::JoinError) -> Self {
        EdgeError::Task(e.to_string())
    }
}
