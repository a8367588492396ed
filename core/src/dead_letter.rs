//! Why a message from a camera was refused; stored with the raw bytes and sent back
//! in the `rejected` receipt.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// The camera id is not in the device register.
    UnknownCamera,
    /// The Ed25519 signature does not verify with the registered key.
    BadSignature,
    /// A frame's bytes do not hash to the SHA-256 the signed event lists.
    FrameHashMismatch,
    /// Not a well-formed envelope (truncated, wrong CBOR, missing fields).
    Malformed,
    /// Larger than the documented maximum.
    Oversize,
    /// An envelope version this ingest does not speak.
    UnsupportedVersion,
    /// An event id seen before from this camera, with other bytes.
    ConflictingDuplicate,
    /// The topic names another camera than the signed event.
    TopicMismatch,
    /// Device, certificate or site differ from the device register.
    RegisterMismatch,
    /// A verified event the database refuses to store for what it holds (while it
    /// stores others): kept whole, to be sent again once the store takes it.
    Unstorable,
    /// Stands for the messages of one topic refused beyond the minute's allowance of
    /// kept letters: counted by reason in its detail, not kept one by one. Never in a
    /// receipt (each of those messages is answered with its own reason).
    Flood,
}

impl DeadLetterReason {
    pub const ALL: [DeadLetterReason; 11] = [
        DeadLetterReason::UnknownCamera,
        DeadLetterReason::BadSignature,
        DeadLetterReason::FrameHashMismatch,
        DeadLetterReason::Malformed,
        DeadLetterReason::Oversize,
        DeadLetterReason::UnsupportedVersion,
        DeadLetterReason::ConflictingDuplicate,
        DeadLetterReason::TopicMismatch,
        DeadLetterReason::RegisterMismatch,
        DeadLetterReason::Unstorable,
        DeadLetterReason::Flood,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::UnknownCamera => "unknown_camera",
            DeadLetterReason::BadSignature => "bad_signature",
            DeadLetterReason::FrameHashMismatch => "frame_hash_mismatch",
            DeadLetterReason::Malformed => "malformed",
            DeadLetterReason::Oversize => "oversize",
            DeadLetterReason::UnsupportedVersion => "unsupported_version",
            DeadLetterReason::ConflictingDuplicate => "conflicting_duplicate",
            DeadLetterReason::TopicMismatch => "topic_mismatch",
            DeadLetterReason::RegisterMismatch => "register_mismatch",
            DeadLetterReason::Unstorable => "unstorable",
            DeadLetterReason::Flood => "flood",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
