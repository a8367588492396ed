//! Detached signatures over issued resolution PDFs, behind the [`Signer`] trait.
//!
//! The PDF is hashed (SHA-256) and the signature covers a domain-separated message:
//! `"kozomol/resolution-signature/v1" || len(signer) || signer || sha256(pdf)`, so the
//! claimed signer (an officer's badge or the issuing body) cannot be swapped without
//! breaking the signature. The signature travels next to the PDF, never inside it: the
//! PDF bytes, their hash and the archived file stay identical.
//!
//! [`Signer`] is the seam for other ways of signing. A PKCS#11 hardware token (an
//! officer's or the issuing body's key on a smart card or HSM) would implement it by
//! signing the same message on the token; signing with the national PKI as a PAdES
//! signature embedded in the PDF (with its certificate chain, qualified time stamp and
//! a new [`SignatureAlgorithm`]) would implement it too. Neither is implemented here.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a signer returns when it cannot sign.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// The key is not reachable (a token removed, a key file missing, a PIN refused).
    #[error("signing key `{key_id}` is unavailable: {reason}")]
    KeyUnavailable { key_id: String, reason: String },
    /// The signer was reached but refused or failed to sign.
    #[error("signing failed: {reason}")]
    Failed { reason: String },
    /// A stored signer name that reads as no identity.
    #[error("`{0}` names no signer (officer:BADGE or issuer:NAME)")]
    UnknownSigner(String),
}

/// Whose key signed: an officer's personal key or the issuing body's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignerIdentity {
    Officer { badge: String },
    Issuer { name: String },
}

impl SignerIdentity {
    /// The identity as the signed message carries it.
    fn canonical(&self) -> String {
        match self {
            SignerIdentity::Officer { badge } => format!("officer:{badge}"),
            SignerIdentity::Issuer { name } => format!("issuer:{name}"),
        }
    }
}

impl std::str::FromStr for SignerIdentity {
    type Err = SignError;

    /// Reads the canonical form back (`officer:BADGE`, `issuer:NAME`), as stored.
    fn from_str(s: &str) -> Result<Self, SignError> {
        match s.split_once(':') {
            Some(("officer", badge)) if !badge.is_empty() => Ok(SignerIdentity::Officer {
                badge: badge.to_owned(),
            }),
            Some(("issuer", name)) if !name.is_empty() => Ok(SignerIdentity::Issuer {
                name: name.to_owned(),
            }),
            _ => Err(SignError::UnknownSigner(s.to_owned())),
        }
    }
}

impl fmt::Display for SignerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The signature scheme; a PAdES/national-PKI signer would add its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureAlgorithm {
    Ed25519,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signature kept next to the document it signs.
///
/// In JSON the signature is base64 and the hash lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedSignature {
    pub algorithm: SignatureAlgorithm,
    /// First 8 bytes of the SHA-256 of the public key, hex (see [`key_id`]).
    pub key_id: String,
    pub signer: SignerIdentity,
    #[serde(with = "base64_bytes")]
    pub signature: Vec<u8>,
    /// SHA-256 of the signed document.
    #[serde(with = "hex_sha256")]
    pub document_sha256: [u8; 32],
}

/// Signs document bytes. Implementations: [`Ed25519Signer`] (key in memory); a PKCS#11
/// token or a PAdES signer with the national PKI would be others.
pub trait Signer: Send + Sync {
    fn sign(&self, bytes: &[u8]) -> Result<DetachedSignature, SignError>;
}

/// An Ed25519 key held in memory, from its 32-byte seed.
pub struct Ed25519Signer {
    key: SigningKey,
    key_id: String,
    identity: SignerIdentity,
}

impl Ed25519Signer {
    pub fn from_seed(seed: &[u8; 32], identity: SignerIdentity) -> Self {
        let key = SigningKey::from_bytes(seed);
        let key_id = key_id(&key.verifying_key());
        Ed25519Signer {
            key,
            key_id,
            identity,
        }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn identity(&self) -> &SignerIdentity {
        &self.identity
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the seed.
        f.debug_struct("Ed25519Signer")
            .field("key_id", &self.key_id)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Signer for Ed25519Signer {
    fn sign(&self, bytes: &[u8]) -> Result<DetachedSignature, SignError> {
        let document_sha256: [u8; 32] = Sha256::digest(bytes).into();
        let message = signed_message(&self.identity, &document_sha256);
        let signature = self.key.sign(&message);
        Ok(DetachedSignature {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: self.key_id.clone(),
            signer: self.identity.clone(),
            signature: signature.to_bytes().to_vec(),
            document_sha256,
        })
    }
}

/// The key id of a public key: the first 8 bytes of its SHA-256, lower-case hex.
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..8])
}

const DOMAIN: &[u8] = b"kozomol/resolution-signature/v1";

fn signed_message(signer: &SignerIdentity, document_sha256: &[u8; 32]) -> Vec<u8> {
    let identity = signer.canonical();
    let mut message = Vec::with_capacity(DOMAIN.len() + 4 + identity.len() + 32);
    message.extend_from_slice(DOMAIN);
    // An identity longer than 4 GiB cannot be signed meaningfully; saturate.
    let len = u32::try_from(identity.len()).unwrap_or(u32::MAX);
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(identity.as_bytes());
    message.extend_from_slice(document_sha256);
    message
}

/// The public keys a verifier trusts, by key id.
#[derive(Clone, Debug, Default)]
pub struct VerifyingKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl VerifyingKeys {
    pub fn new() -> Self {
        VerifyingKeys::default()
    }

    /// Trusts `key`; returns its key id.
    pub fn insert(&mut self, key: VerifyingKey) -> String {
        let id = key_id(&key);
        self.keys.insert(id.clone(), key);
        id
    }

    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The trusted keys with their ids, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &VerifyingKey)> {
        self.keys.iter().map(|(id, key)| (id.as_str(), key))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl FromIterator<VerifyingKey> for VerifyingKeys {
    fn from_iter<I: IntoIterator<Item = VerifyingKey>>(iter: I) -> Self {
        let mut keys = VerifyingKeys::new();
        for key in iter {
            keys.insert(key);
        }
        keys
    }
}

/// The outcome of checking a document against its detached signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The signature is by a trusted key, over these exact bytes.
    Valid,
    /// The signature is genuine, but the document is not the one signed.
    HashMismatch,
    /// The signature does not verify with the key it names (forged or altered).
    BadSignature,
    /// The signature names a key that is not trusted.
    UnknownKey,
}

impl Verdict {
    pub fn is_valid(self) -> bool {
        self == Verdict::Valid
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::HashMismatch => "hash_mismatch",
            Verdict::BadSignature => "bad_signature",
            Verdict::UnknownKey => "unknown_key",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks `bytes` against `signature`: first the key (is it trusted?), then the
/// signature over the claimed hash and signer, then the hash of these bytes.
pub fn verify(bytes: &[u8], signature: &DetachedSignature, keys: &VerifyingKeys) -> Verdict {
    let Some(key) = keys.get(&signature.key_id) else {
        return Verdict::UnknownKey;
    };
    match signature.algorithm {
        SignatureAlgorithm::Ed25519 => {
            let Ok(raw) = <[u8; 64]>::try_from(signature.signature.as_slice()) else {
                return Verdict::BadSignature;
            };
            let sig = ed25519_dalek::Signature::from_bytes(&raw);
            let message = signed_message(&signature.signer, &signature.document_sha256);
            if key.verify(&message, &sig).is_err() {
                return Verdict::BadSignature;
            }
        }
    }
    let actual: [u8; 32] = Sha256::digest(bytes).into();
    if actual != signature.document_sha256 {
        return Verdict::HashMismatch;
    }
    Verdict::Valid
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

mod hex_sha256 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn officer() -> Ed25519Signer {
        Ed25519Signer::from_seed(
            &[7u8; 32],
            SignerIdentity::Officer {
                badge: "0457".into(),
            },
        )
    }

    #[test]
    fn signs_and_verifies() {
        let signer = officer();
        let keys: VerifyingKeys = [signer.verifying_key()].into_iter().collect();
        let doc = b"%PDF-1.3 stand-in";
        let sig = signer.sign(doc).expect("in-memory signing cannot fail");
        assert_eq!(sig.algorithm.as_str(), "ed25519");
        assert_eq!(sig.key_id.len(), 16);
        assert_eq!(sig.key_id, signer.key_id());
        assert_eq!(verify(doc, &sig, &keys), Verdict::Valid);
        assert_eq!(
            verify(b"%PDF-1.3 stand-In", &sig, &keys),
            Verdict::HashMismatch
        );
    }

    #[test]
    fn tampering_is_caught() {
        let signer = officer();
        let keys: VerifyingKeys = [signer.verifying_key()].into_iter().collect();
        let doc = b"document";
        let sig = signer.sign(doc).expect("signs");

        let mut relabelled = sig.clone();
        relabelled.signer = SignerIdentity::Issuer {
            name: "someone else".into(),
        };
        assert_eq!(verify(doc, &relabelled, &keys), Verdict::BadSignature);

        let mut rehashed = sig.clone();
        rehashed.document_sha256 = Sha256::digest(b"other").into();
        assert_eq!(verify(b"other", &rehashed, &keys), Verdict::BadSignature);

        let mut short = sig.clone();
        short.signature.truncate(10);
        assert_eq!(verify(doc, &short, &keys), Verdict::BadSignature);

        let other = Ed25519Signer::from_seed(&[8u8; 32], sig.signer.clone());
        let other_keys: VerifyingKeys = [other.verifying_key()].into_iter().collect();
        assert_eq!(verify(doc, &sig, &other_keys), Verdict::UnknownKey);
    }

    #[test]
    fn json_form_is_readable_and_round_trips() {
        let sig = officer().sign(b"x").expect("signs");
        let json = serde_json::to_value(&sig).expect("serializes");
        assert_eq!(json["algorithm"], "ed25519");
        assert_eq!(json["signer"]["kind"], "officer");
        assert_eq!(json["signer"]["badge"], "0457");
        assert_eq!(
            json["document_sha256"],
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        );
        let back: DetachedSignature = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, sig);
    }

    #[test]
    fn debug_hides_the_seed() {
        let text = format!("{:?}", officer());
        assert!(text.contains("key_id"));
        assert!(!text.contains("[7, 7"));
    }
}
