//! COSE_Sign1 (RFC 9052) with Ed25519 over deterministically encoded CBOR (RFC 8949
//! §4.2.1): the one signing scheme of the wire protocol, used for violation events
//! (signed by the camera's key) and camera config (signed by the server's key).

use ciborium::Value;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;

use crate::{CoreError, TraceParent};

/// CBOR tag of COSE_Sign1.
pub const COSE_SIGN1_TAG: u64 = 18;
/// COSE algorithm id of EdDSA.
pub const ALG_EDDSA: i64 = -8;
const HEADER_ALG: i64 = 1;
const HEADER_KID: i64 = 4;
/// The unprotected header's label for a W3C `traceparent` (a text label: COSE allows
/// them for private use; RFC 9052 §3.1).
const HEADER_TRACEPARENT: &str = "traceparent";

/// A COSE_Sign1 structure with its payload attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sign1 {
    /// The protected header, as the exact bytes that were signed.
    pub protected: Vec<u8>,
    /// The payload, as the exact bytes that were signed.
    pub payload: Vec<u8>,
    pub signature: [u8; 64],
    /// The trace the message belongs to, from the unprotected header: unsigned and
    /// only a hint to telemetry, so one that is absent or unreadable is `None` and
    /// never refuses the message.
    pub trace_parent: Option<TraceParent>,
}

impl Sign1 {
    /// Signs `payload` with `key`, naming `kid` (the camera id, or "server") in the
    /// protected header.
    pub fn sign(payload: Vec<u8>, kid: &str, key: &SigningKey) -> Result<Self, CoreError> {
        let header = Value::Map(vec![
            (
                Value::Integer(HEADER_ALG.into()),
                Value::Integer(ALG_EDDSA.into()),
            ),
            (
                Value::Integer(HEADER_KID.into()),
                Value::Bytes(kid.as_bytes().to_vec()),
            ),
        ]);
        let protected = encode_value(&canonicalize(header))?;
        let to_sign = sig_structure(&protected, &payload)?;
        let signature = key.sign(&to_sign).to_bytes();
        Ok(Sign1 {
            protected,
            payload,
            signature,
            trace_parent: None,
        })
    }

    /// Checks the signature with `key`, and that the protected header names EdDSA.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CoreError> {
        let header: Value = ciborium::from_reader(&self.protected[..])
            .map_err(|e| CoreError::Malformed(format!("protected header: {e}")))?;
        let alg = header
            .as_map()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.as_integer() == Some(HEADER_ALG.into()))
                    .and_then(|(_, v)| v.as_integer())
            })
            .ok_or_else(|| CoreError::Malformed("protected header has no alg".into()))?;
        if alg != ALG_EDDSA.into() {
            return Err(CoreError::BadSignature);
        }
        let to_sign = sig_structure(&self.protected, &self.payload)?;
        key.verify(&to_sign, &Signature::from_bytes(&self.signature))
            .map_err(|_| CoreError::BadSignature)
    }

    /// The tagged CBOR value `18([protected, unprotected, payload, signature])`; the
    /// unprotected header is `{}`, or `{"traceparent": tstr}` with a trace.
    pub fn to_value(&self) -> Value {
        let unprotected = self
            .trace_parent
            .iter()
            .map(|trace| {
                (
                    Value::Text(HEADER_TRACEPARENT.into()),
                    Value::Text(trace.to_string()),
                )
            })
            .collect();
        Value::Tag(
            COSE_SIGN1_TAG,
            Box::new(Value::Array(vec![
                Value::Bytes(self.protected.clone()),
                Value::Map(unprotected),
                Value::Bytes(self.payload.clone()),
                Value::Bytes(self.signature.to_vec()),
            ])),
        )
    }

    pub fn from_value(value: Value) -> Result<Self, CoreError> {
        let malformed = |what: &str| CoreError::Malformed(format!("COSE_Sign1: {what}"));
        let inner = match value {
            Value::Tag(COSE_SIGN1_TAG, inner) => *inner,
            Value::Array(_) => value,
            _ => return Err(malformed("not a tag-18 array")),
        };
        let Value::Array(items) = inner else {
            return Err(malformed("not an array"));
        };
        let [protected, unprotected, payload, signature]: [Value; 4] = items
            .try_into()
            .map_err(|_| malformed("needs four items"))?;
        let (Value::Bytes(protected), Value::Bytes(payload), Value::Bytes(signature)) =
            (protected, payload, signature)
        else {
            return Err(malformed(
                "protected, payload and signature must be byte strings",
            ));
        };
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| malformed("signature must be 64 bytes"))?;
        let trace_parent = unprotected.as_map().and_then(|header| {
            header.iter().find_map(|(label, value)| {
                (label.as_text() == Some(HEADER_TRACEPARENT))
                    .then(|| value.as_text()?.parse().ok())
                    .flatten()
            })
        });
        Ok(Sign1 {
            protected,
            payload,
            signature,
            trace_parent,
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, CoreError> {
        encode_value(&self.to_value())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        let value: Value = ciborium::from_reader(bytes)
            .map_err(|e| CoreError::Malformed(format!("COSE_Sign1: {e}")))?;
        Sign1::from_value(value)
    }

    /// The key id from the protected header, as text.
    pub fn kid(&self) -> Option<String> {
        let header: Value = ciborium::from_reader(&self.protected[..]).ok()?;
        header.as_map()?.iter().find_map(|(k, v)| {
            if k.as_integer() == Some(HEADER_KID.into()) {
                v.as_bytes().and_then(|b| String::from_utf8(b.clone()).ok())
            } else {
                None
            }
        })
    }
}

/// `["Signature1", protected, h'', payload]`, encoded: what Ed25519 signs.
fn sig_structure(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, CoreError> {
    encode_value(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

/// Encodes `value` as deterministic CBOR: map keys sorted by their encoded bytes,
/// shortest integer forms (ciborium's default), definite lengths.
pub fn to_canonical_cbor<T: Serialize>(value: &T) -> Result<Vec<u8>, CoreError> {
    let value = Value::serialized(value).map_err(|e| CoreError::Malformed(e.to_string()))?;
    encode_value(&canonicalize(value))
}

fn encode_value(value: &Value) -> Result<Vec<u8>, CoreError> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| CoreError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Sorts every map's entries by the bytes of their encoded keys, recursively.
pub fn canonicalize(value: Value) -> Value {
    match value {
        Value::Map(entries) => {
            let mut keyed: Vec<(Vec<u8>, Value, Value)> = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = canonicalize(k);
                    let encoded = encode_value(&k).unwrap_or_default();
                    (encoded, k, canonicalize(v))
                })
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect()),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(canonicalize(*inner))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let signed = Sign1::sign(b"payload".to_vec(), "cam-1", &key(7)).expect("sign");
        let bytes = signed.to_bytes().expect("encode");
        let back = Sign1::from_bytes(&bytes).expect("decode");
        assert_eq!(back, signed);
        assert_eq!(back.kid().as_deref(), Some("cam-1"));
        back.verify(&key(7).verifying_key()).expect("verifies");
        assert_eq!(
            back.verify(&key(8).verifying_key()),
            Err(CoreError::BadSignature)
        );
        let mut tampered = back.clone();
        tampered.payload[0] ^= 1;
        assert_eq!(
            tampered.verify(&key(7).verifying_key()),
            Err(CoreError::BadSignature)
        );
    }

    #[test]
    fn a_trace_rides_unsigned_in_the_unprotected_header() {
        let trace: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .expect("traceparent");
        let mut signed = Sign1::sign(b"payload".to_vec(), "cam-1", &key(7)).expect("sign");
        signed.trace_parent = Some(trace);
        let back = Sign1::from_bytes(&signed.to_bytes().expect("encode")).expect("decode");
        assert_eq!(back.trace_parent, Some(trace));
        // The trace is not signed: adding, changing or dropping it keeps the signature.
        back.verify(&key(7).verifying_key()).expect("verifies");

        let header = |value: Value| {
            let Value::Tag(_, inner) = signed.to_value() else {
                unreachable!("to_value is tagged")
            };
            let Value::Array(mut items) = *inner else {
                unreachable!("to_value is an array")
            };
            items[1] = value;
            Sign1::from_value(Value::Array(items)).expect("decodes")
        };
        let text = |s: &str| Value::Text(s.into());
        for odd in [
            Value::Map(vec![(text("traceparent"), text("00-nonsense"))]),
            Value::Map(vec![(text("traceparent"), Value::Integer(1.into()))]),
            Value::Map(vec![(Value::Integer(1.into()), text("x"))]),
            Value::Array(vec![text("traceparent")]),
        ] {
            let decoded = header(odd);
            assert_eq!(decoded.trace_parent, None);
            decoded
                .verify(&key(7).verifying_key())
                .expect("still verifies");
        }
    }

    #[test]
    fn canonical_order_is_length_first_then_bytes() {
        #[derive(Serialize)]
        struct Unsorted {
            zz: u8,
            a: u8,
            bb: u8,
        }
        let bytes = to_canonical_cbor(&Unsorted { zz: 1, a: 2, bb: 3 }).expect("encode");
        // {"a": 2, "bb": 3, "zz": 1}
        assert_eq!(hex::encode(bytes), "a361610262626203627a7a01",);
    }
}
