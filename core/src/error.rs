use crate::dead_letter::DeadLetterReason;

/// Everything that can be wrong with a value or a message handled by `core`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid camera id `{0}`: 1-64 characters from A-Z a-z 0-9 - _")]
    InvalidCameraId(String),
    #[error("invalid event id: {0}")]
    InvalidEventId(String),
    #[error("unknown case state `{0}`")]
    UnknownCaseState(String),
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    #[error("unknown currency `{0}`")]
    UnknownCurrency(String),
    #[error("unknown jurisdiction `{0}`: kg or kz")]
    UnknownJurisdiction(String),
    #[error("unknown review tier `{0}`")]
    UnknownReviewTier(String),
    #[error("unknown review decision `{0}`")]
    UnknownReviewDecision(String),
    #[error("unknown reject reason `{0}`")]
    UnknownRejectReason(String),
    #[error("unknown violation kind `{0}`")]
    UnknownViolationKind(String),
    #[error("unknown delivery channel `{0}`: sms, email, post or portal")]
    UnknownDeliveryChannel(String),
    #[error("unknown delivery state `{0}`")]
    UnknownDeliveryState(String),
    #[error("invalid {channel} contact: {reason}")]
    InvalidContact {
        channel: &'static str,
        reason: String,
    },
    #[error("message is {len} bytes, above the limit of {limit}")]
    Oversize { len: usize, limit: usize },
    #[error("message is not well-formed: {0}")]
    Malformed(String),
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u64),
    #[error("signature does not verify")]
    BadSignature,
    #[error("invalid public key: {0}")]
    InvalidKey(String),
    #[error("frame {index} does not match its SHA-256")]
    FrameHashMismatch { index: usize },
    #[error("the event lists {listed} frames but {carried} were carried")]
    FrameCountMismatch { listed: usize, carried: usize },
    #[error("event is not valid: {0}")]
    InvalidEvent(String),
    #[error("invalid W3C traceparent: {0}")]
    InvalidTraceParent(String),
    #[error("config is signed for camera `{signed_for}`, not `{expected}`")]
    ConfigForOtherCamera {
        signed_for: String,
        expected: String,
    },
}

impl CoreError {
    /// The dead-letter reason an ingest records for a message failing with this error.
    pub fn dead_letter_reason(&self) -> DeadLetterReason {
        match self {
            CoreError::Oversize { .. } => DeadLetterReason::Oversize,
            CoreError::UnsupportedVersion(_) => DeadLetterReason::UnsupportedVersion,
            CoreError::BadSignature | CoreError::InvalidKey(_) => DeadLetterReason::BadSignature,
            CoreError::FrameHashMismatch { .. } | CoreError::FrameCountMismatch { .. } => {
                DeadLetterReason::FrameHashMismatch
            }
            _ => DeadLetterReason::Malformed,
        }
    }
}
