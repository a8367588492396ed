//! Checks one message against the protocol and the device register, without I/O:
//! the caller looks the camera up and passes its register record.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use kozomol_core::envelope::{named_event, DecodedEnvelope, MAX_ENVELOPE_BYTES};
use kozomol_core::topics::{self, TopicKind};
use kozomol_core::{CameraId, CoreError, DeadLetterReason};
use kozomol_store::CameraRecord;

/// What ingest does with one violation message.
#[derive(Debug)]
pub enum Verdict {
    /// Verified: store it as a case.
    Accept(Box<AcceptedEvent>),
    /// Refuse it: dead-letter with this reason.
    Refuse(Refusal),
}

#[derive(Debug)]
pub struct AcceptedEvent {
    pub envelope: DecodedEnvelope,
    pub enforceable: bool,
    pub enforceability_note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub reason: DeadLetterReason,
    pub detail: String,
    pub camera_id: Option<String>,
    pub event_id: Option<String>,
}

impl Refusal {
    fn new(reason: DeadLetterReason, detail: impl Into<String>) -> Self {
        Refusal {
            reason,
            detail: detail.into(),
            camera_id: None,
            event_id: None,
        }
    }
}

/// Decodes a message far enough to know which camera it claims to come from.
pub fn decode(topic: &str, payload: &[u8]) -> Result<(CameraId, DecodedEnvelope), Refusal> {
    let topic_camera = match topics::parse(topic) {
        Some((camera, TopicKind::Violations)) => Some(camera),
        _ => None,
    };
    let with_camera = |mut r: Refusal| {
        r.camera_id = topic_camera.as_ref().map(|c| c.to_string());
        r
    };
    if payload.len() > MAX_ENVELOPE_BYTES {
        let e = CoreError::Oversize {
            len: payload.len(),
            limit: MAX_ENVELOPE_BYTES,
        };
        return Err(with_camera(Refusal::new(
            e.dead_letter_reason(),
            e.to_string(),
        )));
    }
    let envelope = DecodedEnvelope::decode(payload).map_err(|e| {
        let mut refusal = with_camera(Refusal::new(e.dead_letter_reason(), e.to_string()));
        // Where the body still names the event, and as the topic's camera's, the
        // receipt names it: a camera hears of no refusal without the event's id, and
        // would send it again for ever.
        if let Some((camera, event_id)) = named_event(payload) {
            if topic_camera.as_ref() == Some(&camera) {
                refusal.event_id = Some(event_id.to_string());
            }
        }
        refusal
    })?;
    let event_id = Some(envelope.event.event_id.to_string());
    let Some(topic_camera) = topic_camera else {
        return Err(Refusal {
            camera_id: Some(envelope.event.camera_id.to_string()),
            event_id,
            ..Refusal::new(
                DeadLetterReason::TopicMismatch,
                format!("not a violations topic: {topic}"),
            )
        });
    };
    if topic_camera != envelope.event.camera_id {
        return Err(Refusal {
            camera_id: Some(topic_camera.to_string()),
            event_id,
            ..Refusal::new(
                DeadLetterReason::TopicMismatch,
                format!(
                    "topic names camera `{topic_camera}` but the event names `{}`",
                    envelope.event.camera_id
                ),
            )
        });
    }
    Ok((topic_camera, envelope))
}

/// How far ahead of its arrival a capture may be dated before its time is not trusted:
/// clocks kept by NTP or GNSS agree within a second; this leaves room for a camera's
/// drift between synchronisations.
pub const MAX_CLOCK_AHEAD_MS: i64 = 2 * 60 * 1000;

/// Verifies a decoded envelope against the camera's register record (`None`: the
/// camera is not registered). `local_offset` is the jurisdiction's UTC offset, used to
/// find the capture's calendar date for the calibration check; a capture dated more
/// than [`MAX_CLOCK_AHEAD_MS`] after `received_at` is kept but not enforceable.
pub fn check_event(
    envelope: DecodedEnvelope,
    camera: Option<&CameraRecord>,
    local_offset: FixedOffset,
    received_at: DateTime<Utc>,
) -> Verdict {
    let event = &envelope.event;
    let refuse = |reason, detail: String| {
        Verdict::Refuse(Refusal {
            reason,
            detail,
            camera_id: Some(event.camera_id.to_string()),
            event_id: Some(event.event_id.to_string()),
        })
    };
    let Some(camera) = camera else {
        return refuse(
            DeadLetterReason::UnknownCamera,
            format!("camera `{}` is not in the device register", event.camera_id),
        );
    };
    let key = match ed25519_dalek::VerifyingKey::from_bytes(&camera.public_key) {
        Ok(key) => key,
        Err(e) => {
            return refuse(
                DeadLetterReason::BadSignature,
                format!("registered key is invalid: {e}"),
            )
        }
    };
    if let Err(e) = envelope.verify(&key) {
        return refuse(e.dead_letter_reason(), e.to_string());
    }
    if event.device.serial != camera.device_serial {
        return refuse(
            DeadLetterReason::RegisterMismatch,
            format!(
                "device `{}` is not the device `{}` registered for this camera",
                event.device.serial, camera.device_serial
            ),
        );
    }
    if event.site.id != camera.site.id {
        return refuse(
            DeadLetterReason::RegisterMismatch,
            format!(
                "site `{}` is not the site `{}` registered for this camera",
                event.site.id, camera.site.id
            ),
        );
    }
    let claimed = &event.device.certificate.number;
    let Some(certificate) = camera.certificates.iter().find(|c| &c.number == claimed) else {
        return refuse(
            DeadLetterReason::RegisterMismatch,
            format!(
                "calibration certificate `{claimed}` is not registered for device `{}`",
                camera.device_serial
            ),
        );
    };
    // The register's dates are the truth, not the camera's copy of them.
    let capture_date = event
        .captured_at()
        .map(|t| local_offset.from_utc_datetime(&t.naive_utc()).date_naive());
    let (enforceable, note) = match capture_date {
        Some(date) => match certificate.not_covering(date) {
            None => (true, None),
            Some(why) => (false, Some(format!("{why}, the capture date"))),
        },
        None => {
            return refuse(
                DeadLetterReason::Malformed,
                "capture time is out of range".to_owned(),
            )
        }
    };
    // A capture can reach kozomol late (a camera's outbox keeps it while the link is
    // down), never early: one dated after its own arrival has a clock that runs ahead,
    // and its time — the offence's time — cannot be trusted. Kept, for a person.
    let ahead_ms = event.captured_at_ms - received_at.timestamp_millis();
    let (enforceable, note) = if ahead_ms > MAX_CLOCK_AHEAD_MS {
        let why = format!(
            "the capture time is {} s after the event was received: the camera's clock runs ahead",
            ahead_ms / 1000
        );
        let note = match note {
            Some(earlier) => format!("{earlier}; {why}"),
            None => why,
        };
        (false, Some(note))
    } else {
        (enforceable, note)
    };
    Verdict::Accept(Box::new(AcceptedEvent {
        envelope,
        enforceable,
        enforceability_note: note,
    }))
}
