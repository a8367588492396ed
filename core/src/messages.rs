//! The small messages beside the envelope: receipts (ingest → camera), status
//! (camera, retained, with a last will) and config (server → camera, retained, signed).

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::cose::{to_canonical_cbor, Sign1};
use crate::{CameraId, CoreError, DeadLetterReason};

/// Ingest's answer to one violation message, published after its commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The event id, when the message was decodable far enough to have one.
    pub event_id: Option<String>,
    pub status: ReceiptStatus,
    /// A reason this build does not know (a later kozomol's) reads as none: the
    /// receipt still says the event was refused, and a camera that could not read it
    /// would send the event again for ever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "known_reason"
    )]
    pub reason: Option<DeadLetterReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<i64>,
}

/// A receipt's reason, `None` where it names none this build knows.
fn known_reason<'de, D>(deserializer: D) -> Result<Option<DeadLetterReason>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Option<String> = Option::deserialize(deserializer)?;
    Ok(raw.as_deref().and_then(DeadLetterReason::parse))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// A new case was committed.
    Accepted,
    /// The event was committed before; nothing changed.
    Duplicate,
    /// Refused and dead-lettered; re-sending will not help.
    Rejected,
}

/// How long a camera may say nothing (no status, no event) before it is taken for
/// offline whatever its last status said: a broker that restarts, or crashes, loses
/// the last will that would have said so. Cameras send a status at least every
/// minute (the edge agent's `status_interval_secs`, 30 s by default).
pub const CAMERA_SILENT_AFTER_SECS: i64 = 180;

/// A camera's retained status; its last will says `offline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraStatus {
    pub state: CameraLinkState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_depth: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraLinkState {
    Online,
    Offline,
}

/// Settings the server pushes to a camera; applied only with a valid server signature
/// and a version above the one in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraConfig {
    pub version: u64,
    pub issued_at_ms: i64,
    pub speed_limits: Vec<LaneSpeedLimit>,
}

/// A speed limit for one lane in a daily time window (local time, `HH:MM`, end
/// exclusive; a window may wrap past midnight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneSpeedLimit {
    pub lane: u8,
    pub limit_kmh: u16,
    pub from: String,
    pub until: String,
}

/// The key id the server signs camera config with.
pub const SERVER_KID: &str = "server";

/// What the server signs: the config and the camera it is for, so that a config
/// signed for one camera is refused when replayed on another camera's topic.
#[derive(Serialize, Deserialize)]
struct AddressedConfig {
    camera_id: CameraId,
    #[serde(flatten)]
    config: CameraConfig,
}

impl CameraConfig {
    /// Encodes this config for `camera` and signs it with the server's key
    /// (COSE_Sign1 bytes).
    pub fn sign(&self, camera: &CameraId, key: &SigningKey) -> Result<Vec<u8>, CoreError> {
        let addressed = AddressedConfig {
            camera_id: camera.clone(),
            config: self.clone(),
        };
        Sign1::sign(to_canonical_cbor(&addressed)?, SERVER_KID, key)?.to_bytes()
    }

    /// Verifies a signed config with the server's public key, checks it is addressed
    /// to `camera`, and decodes it.
    pub fn verify(bytes: &[u8], key: &VerifyingKey, camera: &CameraId) -> Result<Self, CoreError> {
        let sign1 = Sign1::from_bytes(bytes)?;
        sign1.verify(key)?;
        let (signed_for, config) = Self::decode_payload(&sign1.payload)?;
        if signed_for != *camera {
            return Err(CoreError::ConfigForOtherCamera {
                signed_for: signed_for.to_string(),
                expected: camera.to_string(),
            });
        }
        Ok(config)
    }

    /// Decodes a config payload without any check of who signed it: the camera it is
    /// addressed to and the config.
    pub fn decode_payload(payload: &[u8]) -> Result<(CameraId, Self), CoreError> {
        let addressed: AddressedConfig = ciborium::from_reader(payload)
            .map_err(|e| CoreError::Malformed(format!("camera config: {e}")))?;
        Ok((addressed.camera_id, addressed.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_with_a_reason_this_build_does_not_know_still_reads() {
        for (json, reason) in [
            (
                r#"{"event_id":"e","status":"rejected","reason":"bad_signature"}"#,
                Some(DeadLetterReason::BadSignature),
            ),
            (
                r#"{"event_id":"e","status":"rejected","reason":"a_later_reason"}"#,
                None,
            ),
            (
                r#"{"event_id":"e","status":"rejected","reason":null}"#,
                None,
            ),
            (r#"{"event_id":"e","status":"rejected"}"#, None),
        ] {
            let receipt: Receipt = serde_json::from_str(json).expect(json);
            assert_eq!(
                (receipt.status, receipt.reason),
                (ReceiptStatus::Rejected, reason),
                "{json}"
            );
        }
        let sent = Receipt {
            event_id: Some("e".into()),
            status: ReceiptStatus::Rejected,
            reason: Some(DeadLetterReason::Malformed),
            detail: None,
            case_id: None,
        };
        let read: Receipt =
            serde_json::from_slice(&serde_json::to_vec(&sent).expect("json")).expect("reads");
        assert_eq!(read, sent);
    }

    #[test]
    fn config_needs_the_server_signature() {
        let server = SigningKey::from_bytes(&[3; 32]);
        let config = CameraConfig {
            version: 4,
            issued_at_ms: 1_795_000_000_000,
            speed_limits: vec![LaneSpeedLimit {
                lane: 1,
                limit_kmh: 40,
                from: "07:00".into(),
                until: "20:00".into(),
            }],
        };
        let camera = CameraId::parse("cam-01").expect("id");
        let signed = config.sign(&camera, &server).expect("sign");
        assert_eq!(
            CameraConfig::verify(&signed, &server.verifying_key(), &camera),
            Ok(config)
        );
        let other = SigningKey::from_bytes(&[4; 32]).verifying_key();
        assert_eq!(
            CameraConfig::verify(&signed, &other, &camera),
            Err(CoreError::BadSignature)
        );
        // replayed on another camera's topic
        let elsewhere = CameraId::parse("cam-02").expect("id");
        assert_eq!(
            CameraConfig::verify(&signed, &server.verifying_key(), &elsewhere),
            Err(CoreError::ConfigForOtherCamera {
                signed_for: "cam-01".into(),
                expected: "cam-02".into(),
            })
        );
    }

    #[test]
    fn receipt_json_shape() {
        let receipt = Receipt {
            event_id: Some("e".into()),
            status: ReceiptStatus::Rejected,
            reason: Some(DeadLetterReason::BadSignature),
            detail: None,
            case_id: None,
        };
        let json = serde_json::to_string(&receipt).expect("json");
        assert_eq!(
            json,
            r#"{"event_id":"e","status":"rejected","reason":"bad_signature"}"#
        );
    }
}
