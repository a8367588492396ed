//! What the fuzz targets feed their bytes to, in one place: the cargo-fuzz binaries call
//! these functions, and `core/tests/fuzz_corpus.rs` (stable Rust, part of the normal
//! test suite) includes this file to replay the corpus through the same calls.
//!
//! Every function must return for any input, without panicking and without allocating
//! far beyond the input's size.

use ed25519_dalek::{SigningKey, VerifyingKey};
use kozomol_core::cose::Sign1;
use kozomol_core::messages::{CameraConfig, CameraStatus, Receipt};
use kozomol_core::{CameraId, DecodedEnvelope};

/// The secret key of `docs/test-vectors/envelope-v1.json`; every valid seed in the
/// corpus is signed with it, so the fuzzer reaches the frame-hash checks behind the
/// signature.
pub const SEED_SECRET: [u8; 32] = [0x5a; 32];

pub fn seed_key() -> SigningKey {
    SigningKey::from_bytes(&SEED_SECRET)
}

pub fn seed_public_key() -> VerifyingKey {
    seed_key().verifying_key()
}

/// The camera the corpus's signed configs are addressed to.
pub fn seed_camera() -> CameraId {
    CameraId::parse("cam-fuzz-01").expect("a valid camera id")
}

/// How far an envelope got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeOutcome {
    Refused,
    Decoded,
    Verified,
}

/// Runs every decoder that may see a camera's message bytes: the envelope decoder (and,
/// when it decodes, `verify`, `fingerprint` and the accessors ingest uses), the bare
/// COSE_Sign1 decoder and the signed-config decoder.
pub fn exercise_envelope(bytes: &[u8], key: &VerifyingKey) -> EnvelopeOutcome {
    let outcome = match DecodedEnvelope::decode(bytes) {
        Ok(envelope) => {
            let verified = envelope.verify(key).is_ok();
            let _ = envelope.fingerprint();
            let _ = envelope.sign1.kid();
            let _ = envelope.event.captured_at();
            let _ = envelope.event.check();
            if verified {
                EnvelopeOutcome::Verified
            } else {
                EnvelopeOutcome::Decoded
            }
        }
        Err(error) => {
            let _ = error.dead_letter_reason();
            EnvelopeOutcome::Refused
        }
    };
    if let Ok(sign1) = Sign1::from_bytes(bytes) {
        let _ = sign1.kid();
        let _ = sign1.verify(key);
    }
    let _ = CameraConfig::verify(bytes, key, &seed_camera());
    // A forged config never gets past the signature, so its payload decoder is
    // also fed directly.
    let _ = CameraConfig::decode_payload(bytes);
    outcome
}

/// Runs the JSON decoders of the small camera messages (receipts and status).
pub fn exercise_receipt(bytes: &[u8]) -> bool {
    let receipt = serde_json::from_slice::<Receipt>(bytes).is_ok();
    let status = serde_json::from_slice::<CameraStatus>(bytes).is_ok();
    receipt || status
}
