//! The violation envelope, version 1 (see `docs/protocol.md`):
//!
//! ```text
//! message = [1, COSE_Sign1(payload = canonical CBOR of ViolationEvent), [* frame bstr]]
//! ```
//!
//! Frames travel as raw JPEG bytes outside the signed payload; the payload lists each
//! frame's SHA-256 and length, so the signature covers the frames through their
//! hashes. One implementation encodes, decodes and verifies, for cameras and ingest.

use ciborium::Value;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cose::{to_canonical_cbor, Sign1};
use crate::{
    CameraId, ClockSource, CoreError, EventId, Measurement, MeasuringDevice, PlateRead, Site,
    TraceParent, ViolationKind,
};

/// The envelope version this code speaks.
pub const ENVELOPE_VERSION: u64 = 1;
/// The largest envelope accepted, in bytes (brokers are configured above it).
pub const MAX_ENVELOPE_BYTES: usize = 2 * 1024 * 1024;
/// The most frames one event may carry.
pub const MAX_FRAMES: usize = 8;
/// Longest text field accepted in an event (addresses, serials, ids).
const MAX_TEXT: usize = 256;
/// Captures are taken between these instants (2000-01-01 and 2100-01-01 UTC): far
/// outside is a broken clock or a forged event, and databases refuse some such dates.
const EARLIEST_CAPTURE_MS: i64 = 946_684_800_000;
const LATEST_CAPTURE_MS: i64 = 4_102_444_800_000;

/// What a frame shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameRole {
    /// The whole scene: vehicle, signal or lane markings.
    Overview,
    /// A close-up of the plate.
    Plate,
}

impl FrameRole {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameRole::Overview => "overview",
            FrameRole::Plate => "plate",
        }
    }
}

/// A frame as the signed event lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRef {
    pub role: FrameRole,
    #[serde(with = "serde_bytes")]
    pub sha256: Vec<u8>,
    pub len: u32,
}

impl FrameRef {
    /// Describes a JPEG's bytes.
    pub fn of(role: FrameRole, jpeg: &[u8]) -> Self {
        FrameRef {
            role,
            sha256: Sha256::digest(jpeg).to_vec(),
            len: u32::try_from(jpeg.len()).unwrap_or(u32::MAX),
        }
    }
}

/// The camera and event an envelope's signed body names, read on their own: for an
/// envelope that does not decode whole (an event that fails its checks, frames that do
/// not match its list, a version this side does not speak), so that its refusal can
/// name the event and its camera stop sending it. Nothing here is verified.
pub fn named_event(bytes: &[u8]) -> Option<(CameraId, EventId)> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(with = "event_id_text")]
        event_id: EventId,
        camera_id: CameraId,
    }
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return None;
    }
    let Value::Array(items) = ciborium::from_reader::<Value, _>(bytes).ok()? else {
        return None;
    };
    let sign1 = Sign1::from_value(items.into_iter().nth(1)?).ok()?;
    let named: Named = ciborium::from_reader(&sign1.payload[..]).ok()?;
    Some((named.camera_id, named.event_id))
}

/// The signed body of a violation event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationEvent {
    #[serde(with = "event_id_text")]
    pub event_id: EventId,
    pub camera_id: CameraId,
    /// Capture instant, milliseconds since the Unix epoch, UTC.
    pub captured_at_ms: i64,
    pub clock_source: ClockSource,
    /// The camera's estimate of its clock's offset from true time, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<i64>,
    pub site: Site,
    pub kind: ViolationKind,
    pub measurement: Measurement,
    pub device: MeasuringDevice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate_read: Option<PlateRead>,
    pub frames: Vec<FrameRef>,
}

mod event_id_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::EventId;

    pub fn serialize<S: Serializer>(id: &EventId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&id.0.hyphenated())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EventId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl ViolationEvent {
    /// Checks the event's own consistency (not its signature, nor the register).
    pub fn check(&self) -> Result<(), CoreError> {
        let invalid = |m: String| Err(CoreError::InvalidEvent(m));
        if self.event_id.0.get_version_num() != 7 {
            return invalid("event_id must be a UUIDv7".into());
        }
        self.measurement.check(self.kind)?;
        if self.frames.is_empty() || self.frames.len() > MAX_FRAMES {
            return invalid(format!("an event carries 1 to {MAX_FRAMES} frames"));
        }
        if !self.frames.iter().any(|f| f.role == FrameRole::Overview) {
            return invalid("an event needs an overview frame".into());
        }
        if self.frames.iter().any(|f| f.sha256.len() != 32) {
            return invalid("frame sha256 must be 32 bytes".into());
        }
        if !(EARLIEST_CAPTURE_MS..LATEST_CAPTURE_MS).contains(&self.captured_at_ms) {
            return invalid("captured_at_ms is not between the years 2000 and 2100".into());
        }
        let read = self.plate_read.as_ref();
        let texts = [
            Some(&self.site.id),
            Some(&self.site.address),
            Some(&self.site.direction),
            Some(&self.device.serial),
            Some(&self.device.certificate.number),
            read.map(|r| &r.text),
            read.and_then(|r| r.country.as_ref()),
        ];
        let texts = texts.into_iter().flatten();
        if texts.clone().any(|t| t.len() > MAX_TEXT) {
            return invalid(format!("text fields are at most {MAX_TEXT} bytes"));
        }
        // A NUL or other control character is no part of an address, serial or plate
        // (and PostgreSQL refuses a NUL in text).
        if texts.clone().any(|t| t.chars().any(char::is_control)) {
            return invalid("text fields hold no control characters".into());
        }
        if let Some(read) = &self.plate_read {
            if read.text.is_empty() || read.text.chars().count() > 16 {
                return invalid("plate_read.text is 1 to 16 characters".into());
            }
            if read.confidence_milli > 1000 {
                return invalid("plate_read.confidence_milli is at most 1000".into());
            }
        }
        Ok(())
    }

    /// The capture instant.
    pub fn captured_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.captured_at_ms)
    }
}

/// Builds and signs a version-1 envelope. `frames` are in the order of `event.frames`;
/// `trace`, the capture's place in a trace, travels unsigned beside the signature.
pub fn encode_signed(
    event: &ViolationEvent,
    frames: &[Vec<u8>],
    key: &SigningKey,
    trace: Option<TraceParent>,
) -> Result<Vec<u8>, CoreError> {
    event.check()?;
    if frames.len() != event.frames.len() {
        return Err(CoreError::FrameCountMismatch {
            listed: event.frames.len(),
            carried: frames.len(),
        });
    }
    let payload = to_canonical_cbor(event)?;
    let mut sign1 = Sign1::sign(payload, event.camera_id.as_str(), key)?;
    sign1.trace_parent = trace;
    let encode = |sign1: &Sign1| -> Result<Vec<u8>, CoreError> {
        let message = Value::Array(vec![
            Value::Integer(ENVELOPE_VERSION.into()),
            sign1.to_value(),
            Value::Array(frames.iter().map(|f| Value::Bytes(f.clone())).collect()),
        ]);
        let mut out = Vec::with_capacity(frames.iter().map(Vec::len).sum::<usize>() + 1024);
        ciborium::into_writer(&message, &mut out)
            .map_err(|e| CoreError::Malformed(e.to_string()))?;
        Ok(out)
    };
    let mut out = encode(&sign1)?;
    if out.len() > MAX_ENVELOPE_BYTES && sign1.trace_parent.take().is_some() {
        // The trace is a hint: an event that fits without it goes without it.
        out = encode(&sign1)?;
    }
    if out.len() > MAX_ENVELOPE_BYTES {
        return Err(CoreError::Oversize {
            len: out.len(),
            limit: MAX_ENVELOPE_BYTES,
        });
    }
    Ok(out)
}

/// An envelope whose structure was decoded; [`DecodedEnvelope::verify`] must pass
/// before anything in it is trusted.
#[derive(Clone, Debug)]
pub struct DecodedEnvelope {
    pub sign1: Sign1,
    pub event: ViolationEvent,
    pub frames: Vec<Vec<u8>>,
}

impl DecodedEnvelope {
    /// Decodes `bytes`, enforcing the size limit, the version and the event's shape.
    pub fn decode(bytes: &[u8]) -> Result<Self, CoreError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(CoreError::Oversize {
                len: bytes.len(),
                limit: MAX_ENVELOPE_BYTES,
            });
        }
        let malformed = |m: &str| CoreError::Malformed(m.to_owned());
        let value: Value = ciborium::from_reader(bytes)
            .map_err(|e| CoreError::Malformed(format!("envelope: {e}")))?;
        let Value::Array(items) = value else {
            return Err(malformed("envelope is not an array"));
        };
        let mut items = items.into_iter();
        let version = items
            .next()
            .and_then(|v| v.as_integer())
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| malformed("envelope has no version"))?;
        if version != ENVELOPE_VERSION {
            return Err(CoreError::UnsupportedVersion(version));
        }
        let (Some(sign1), Some(Value::Array(frame_values)), None) =
            (items.next(), items.next(), items.next())
        else {
            return Err(malformed(
                "a version-1 envelope is [1, COSE_Sign1, [frames]]",
            ));
        };
        let sign1 = Sign1::from_value(sign1)?;
        let event: ViolationEvent = ciborium::from_reader(&sign1.payload[..])
            .map_err(|e| CoreError::Malformed(format!("event: {e}")))?;
        event.check()?;
        let mut frames = Vec::with_capacity(frame_values.len());
        for frame in frame_values {
            match frame {
                Value::Bytes(b) => frames.push(b),
                _ => return Err(malformed("frames must be byte strings")),
            }
        }
        if frames.len() != event.frames.len() {
            return Err(CoreError::FrameCountMismatch {
                listed: event.frames.len(),
                carried: frames.len(),
            });
        }
        Ok(DecodedEnvelope {
            sign1,
            event,
            frames,
        })
    }

    /// Checks the signature with the camera's registered key, then every frame's hash.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CoreError> {
        self.sign1.verify(key)?;
        for (index, (frame, listed)) in self.frames.iter().zip(&self.event.frames).enumerate() {
            let len_ok = u32::try_from(frame.len()).ok() == Some(listed.len);
            if !len_ok || Sha256::digest(frame).as_slice() != listed.sha256.as_slice() {
                return Err(CoreError::FrameHashMismatch { index });
            }
        }
        Ok(())
    }

    /// SHA-256 of the signed payload: two messages with the same event id and the same
    /// fingerprint are the same event (the payload covers every frame's hash).
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.sign1.payload).into()
    }
}

/// Parses a camera's Ed25519 public key from 64 hex characters.
pub fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, CoreError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .map_err(|e| CoreError::InvalidKey(e.to_string()))?
        .try_into()
        .map_err(|_| CoreError::InvalidKey("an Ed25519 public key is 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| CoreError::InvalidKey(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::CalibrationCertificate;

    pub fn sample_event(frames: &[Vec<u8>]) -> ViolationEvent {
        ViolationEvent {
            event_id: "01936f0e-1c2a-7b3d-8e4f-5a6b7c8d9e0f"
                .parse()
                .expect("uuid"),
            camera_id: CameraId::parse("bishkek-chuy-001").expect("camera id"),
            captured_at_ms: 1_795_000_000_123,
            clock_source: ClockSource::Gnss,
            clock_offset_ms: Some(-3),
            site: Site {
                id: "site-chuy-manas".into(),
                lat_e6: 42_876_000,
                lon_e6: 74_604_000,
                address: "проспект Чуй / проспект Манаса, Бишкек".into(),
                direction: "eastbound".into(),
                lane: 2,
            },
            kind: ViolationKind::Speeding,
            measurement: Measurement {
                speed_kmh: Some(97),
                limit_kmh: Some(60),
                red_elapsed_ms: None,
            },
            device: MeasuringDevice {
                serial: "KRIS-P-12345".into(),
                certificate: CalibrationCertificate {
                    number: "KG-CSM-2026-0042".into(),
                    valid_from: "2026-01-15".parse().expect("date"),
                    valid_until: "2027-01-14".parse().expect("date"),
                },
            },
            plate_read: Some(PlateRead {
                text: "01KG123ABC".into(),
                confidence_milli: 930,
                country: Some("KG".into()),
            }),
            frames: vec![
                FrameRef::of(FrameRole::Overview, &frames[0]),
                FrameRef::of(FrameRole::Plate, &frames[1]),
            ],
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[42; 32])
    }

    fn frames() -> Vec<Vec<u8>> {
        vec![
            vec![0xff, 0xd8, 1, 2, 3, 0xff, 0xd9],
            vec![0xff, 0xd8, 9, 0xff, 0xd9],
        ]
    }

    #[test]
    fn round_trip_verifies() {
        let frames = frames();
        let event = sample_event(&frames);
        let bytes = encode_signed(&event, &frames, &key(), None).expect("encode");
        let decoded = DecodedEnvelope::decode(&bytes).expect("decode");
        assert_eq!(decoded.event, event);
        assert_eq!(decoded.frames, frames);
        decoded.verify(&key().verifying_key()).expect("verify");
        // deterministic: the same event signs to the same bytes
        assert_eq!(
            encode_signed(&event, &frames, &key(), None).expect("encode"),
            bytes
        );
    }

    #[test]
    fn a_traced_envelope_carries_its_trace_and_the_same_signature() {
        let frames = frames();
        let event = sample_event(&frames);
        let trace: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .expect("traceparent");
        let plain =
            DecodedEnvelope::decode(&encode_signed(&event, &frames, &key(), None).expect("encode"))
                .expect("decode");
        let traced = DecodedEnvelope::decode(
            &encode_signed(&event, &frames, &key(), Some(trace)).expect("encode"),
        )
        .expect("decode");
        assert_eq!(traced.sign1.trace_parent, Some(trace));
        assert_eq!(plain.sign1.trace_parent, None);
        traced.verify(&key().verifying_key()).expect("verify");
        // Same event, same signature: ingest's duplicate check does not see the trace.
        assert_eq!(traced.fingerprint(), plain.fingerprint());
        assert_eq!(traced.sign1.signature, plain.sign1.signature);
    }

    #[test]
    fn an_event_that_fits_only_without_its_trace_goes_without_it() {
        let trace: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            .parse()
            .expect("traceparent");
        let sized = |fill: usize| {
            let mut frames = frames();
            frames[0] = vec![7; fill];
            let event = sample_event(&frames);
            (event, frames)
        };
        // Lengths above 65,535 take the same header bytes whatever their size.
        let (event, frames) = sized(1 << 20);
        let base = encode_signed(&event, &frames, &key(), None)
            .expect("encode")
            .len();
        // Grow the first frame until the untraced envelope is exactly at the limit.
        let (event, frames) = sized((1 << 20) + MAX_ENVELOPE_BYTES - base);
        let untraced = encode_signed(&event, &frames, &key(), None).expect("fits");
        assert_eq!(untraced.len(), MAX_ENVELOPE_BYTES);
        let traced = encode_signed(&event, &frames, &key(), Some(trace)).expect("still fits");
        assert_eq!(traced, untraced);
        let (event, frames) = sized((1 << 20) + 1 + MAX_ENVELOPE_BYTES - base);
        assert!(matches!(
            encode_signed(&event, &frames, &key(), Some(trace)),
            Err(CoreError::Oversize { .. })
        ));
    }

    #[test]
    fn events_with_control_characters_or_impossible_times_are_refused() {
        let frames = frames();
        type Spoil = fn(&mut ViolationEvent);
        let table: [(Spoil, Option<&str>); 8] = [
            (|_| {}, None),
            (|e| e.site.address.push('\0'), Some("control characters")),
            (
                |e| e.device.serial.push('\u{1b}'),
                Some("control characters"),
            ),
            (
                |e| {
                    if let Some(read) = &mut e.plate_read {
                        read.text = "01KG\0".into();
                    }
                },
                Some("control characters"),
            ),
            (
                |e| {
                    if let Some(read) = &mut e.plate_read {
                        read.country = Some("KG\n".into());
                    }
                },
                Some("control characters"),
            ),
            (
                |e| e.captured_at_ms = -300_000_000_000_000,
                Some("between the years"),
            ),
            (
                |e| e.captured_at_ms = EARLIEST_CAPTURE_MS - 1,
                Some("between the years"),
            ),
            (
                |e| e.captured_at_ms = LATEST_CAPTURE_MS,
                Some("between the years"),
            ),
        ];
        for (i, (spoil, want)) in table.into_iter().enumerate() {
            let mut event = sample_event(&frames);
            if event.plate_read.is_none() {
                event.plate_read = Some(PlateRead {
                    text: "01KG123ABC".into(),
                    confidence_milli: 900,
                    country: None,
                });
            }
            spoil(&mut event);
            match (event.check(), want) {
                (Ok(()), None) => {}
                (Err(CoreError::InvalidEvent(m)), Some(words)) if m.contains(words) => {}
                (got, _) => panic!("row {i}: {got:?}, wanted {want:?}"),
            }
        }
    }

    #[test]
    fn tampered_frame_is_caught() {
        let frames = frames();
        let event = sample_event(&frames);
        let mut bytes = encode_signed(&event, &frames, &key(), None).expect("encode");
        let last_frame_byte = bytes.len() - 3;
        bytes[last_frame_byte] ^= 0x55;
        let decoded = DecodedEnvelope::decode(&bytes).expect("decode");
        assert_eq!(
            decoded.verify(&key().verifying_key()),
            Err(CoreError::FrameHashMismatch { index: 1 })
        );
    }

    #[test]
    fn wrong_key_is_caught() {
        let frames = frames();
        let bytes = encode_signed(&sample_event(&frames), &frames, &key(), None).expect("encode");
        let decoded = DecodedEnvelope::decode(&bytes).expect("decode");
        let other = SigningKey::from_bytes(&[1; 32]).verifying_key();
        assert_eq!(decoded.verify(&other), Err(CoreError::BadSignature));
    }

    #[test]
    fn bad_inputs_are_classified() {
        let frames = frames();
        let bytes = encode_signed(&sample_event(&frames), &frames, &key(), None).expect("encode");
        let truncated = DecodedEnvelope::decode(&bytes[..bytes.len() / 2]).map(|_| ());
        assert!(matches!(truncated, Err(CoreError::Malformed(_))));
        let mut v2 = bytes.clone();
        v2[1] = 0x02; // [1, ...] → [2, ...]
        assert_eq!(
            DecodedEnvelope::decode(&v2).map(|_| ()),
            Err(CoreError::UnsupportedVersion(2))
        );
        let huge = vec![0u8; MAX_ENVELOPE_BYTES + 1];
        assert!(matches!(
            DecodedEnvelope::decode(&huge).map(|_| ()),
            Err(CoreError::Oversize { .. })
        ));
        assert!(matches!(
            DecodedEnvelope::decode(b"").map(|_| ()),
            Err(CoreError::Malformed(_))
        ));
    }
}
