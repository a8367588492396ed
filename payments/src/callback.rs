//! Signed callbacks between kozomol and payment providers: a header
//! `t=<unix seconds>,v1=<hex>` whose `v1` is HMAC-SHA256 over `"{t}.{body}"` with a
//! shared secret, as Stripe signs its webhooks. A callback is taken only if one `v1`
//! matches one of the secrets in force (several during a key rotation: the provider
//! may sign with old and new, kozomol may hold both) and `t` is within the tolerance
//! of now, so a captured callback cannot be replayed later. Pure: the caller gives the
//! time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a callback's `t` may be from now, either way.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed: {0}")]
    Malformed(String),
    #[error("the signature header has no timestamp `t`")]
    NoTimestamp,
    #[error("the signature header has no `v1` signature")]
    NoSignature,
    #[error("the callback's time {t} is {off} s from now, more than {tolerance} s")]
    Stale { t: i64, off: i64, tolerance: i64 },
    #[error("no signature matches a secret in force")]
    NoMatch,
    #[error("no secret is configured")]
    NoSecret,
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value signing `body` at `t` with `secret`.
pub fn signature_header(secret: &[u8], t: i64, body: &[u8]) -> String {
    let signature = mac(secret, t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(signature))
}

/// Checks `header` for `body` at `now` (unix seconds) against `secrets`; on success
/// the callback's `t`.
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance: i64,
) -> Result<i64, SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            SignatureError::Malformed(format!("`{}` is not key=value", clip(part)))
        })?;
        match key {
            "t" => {
                if t.is_some() {
                    return Err(SignatureError::Malformed("`t` given twice".into()));
                }
                let parsed = value
                    .parse::<i64>()
                    .ok()
                    .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        SignatureError::Malformed(format!(
                            "`t={}` is not unix seconds",
                            clip(value)
                        ))
                    })?;
                t = Some(parsed);
            }
            // A signature that is not 32 bytes of hex can match nothing: skipped, as
            // are schemes other than v1 (a provider may add newer ones).
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::NoTimestamp)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    let off = now.saturating_sub(t).saturating_abs();
    if off > tolerance {
        return Err(SignatureError::Stale { t, off, tolerance });
    }
    // Every pair is compared in constant time (`verify_slice`).
    let matched = secrets.iter().any(|secret| {
        signatures
            .iter()
            .any(|signature| mac(secret, t, body).verify_slice(signature).is_ok())
    });
    if matched {
        Ok(t)
    } else {
        Err(SignatureError::NoMatch)
    }
}

fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &[u8] = b"whsec_old_2025";
    const NEW: &[u8] = b"whsec_new_2026";
    const BODY: &[u8] = br#"{"intent":"pi_1","status":"succeeded","amount":250000}"#;
    const NOW: i64 = 1_772_000_000;

    fn v1(secret: &[u8], t: i64, body: &[u8]) -> String {
        signature_header(secret, t, body)
            .split_once(",v1=")
            .map(|(_, hex)| hex.to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_known_vector() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") is the
        // published f7bc83f4...; here the message is "{t}.{body}".
        let header = signature_header(b"key", 0, b"The quick brown fox jumps over the lazy dog");
        let want = {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").expect("a key");
            mac.update(b"0.The quick brown fox jumps over the lazy dog");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(header, format!("t=0,v1={want}"));
        let plain = {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").expect("a key");
            mac.update(b"The quick brown fox jumps over the lazy dog");
            hex::encode(mac.finalize().into_bytes())
        };
        assert_eq!(
            plain,
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    /// (header, body, secrets in force, outcome)
    type Case<'a> = (String, &'a [u8], Vec<&'a [u8]>, Result<i64, SignatureError>);

    #[test]
    fn callbacks_are_taken_or_refused() {
        let signed = signature_header(NEW, NOW - 10, BODY);
        let both = format!(
            "t={},v1={},v1={}",
            NOW,
            v1(OLD, NOW, BODY),
            v1(NEW, NOW, BODY)
        );
        let cases: Vec<Case> = vec![
            (signed.clone(), BODY, vec![NEW], Ok(NOW - 10)),
            // During a rotation kozomol holds both secrets, the provider signs with
            // either or both.
            (signed.clone(), BODY, vec![OLD, NEW], Ok(NOW - 10)),
            (both.clone(), BODY, vec![OLD], Ok(NOW)),
            (both.clone(), BODY, vec![NEW], Ok(NOW)),
            // Unknown schemes and spaces are ignored.
            (
                format!("t={NOW}, v0=abc, v1={}", v1(NEW, NOW, BODY)),
                BODY,
                vec![NEW],
                Ok(NOW),
            ),
            // A secret no longer in force, a changed body, a changed time.
            (
                signed.clone(),
                BODY,
                vec![OLD],
                Err(SignatureError::NoMatch),
            ),
            (
                signed.clone(),
                br#"{"intent":"pi_1","status":"succeeded","amount":250001}"#,
                vec![NEW],
                Err(SignatureError::NoMatch),
            ),
            (
                signed.replace(&format!("t={}", NOW - 10), &format!("t={}", NOW - 9)),
                BODY,
                vec![NEW],
                Err(SignatureError::NoMatch),
            ),
            // Stale either way.
            (
                signature_header(NEW, NOW - 301, BODY),
                BODY,
                vec![NEW],
                Err(SignatureError::Stale {
                    t: NOW - 301,
                    off: 301,
                    tolerance: 300,
                }),
            ),
            (
                signature_header(NEW, NOW + 301, BODY),
                BODY,
                vec![NEW],
                Err(SignatureError::Stale {
                    t: NOW + 301,
                    off: 301,
                    tolerance: 300,
                }),
            ),
            (
                signature_header(NEW, NOW - 300, BODY),
                BODY,
                vec![NEW],
                Ok(NOW - 300),
            ),
            // Malformed headers.
            (
                format!("v1={}", v1(NEW, NOW, BODY)),
                BODY,
                vec![NEW],
                Err(SignatureError::NoTimestamp),
            ),
            (
                format!("t={NOW}"),
                BODY,
                vec![NEW],
                Err(SignatureError::NoSignature),
            ),
            (
                format!("t={NOW},v1=zz"),
                BODY,
                vec![NEW],
                Err(SignatureError::NoSignature),
            ),
            (
                format!("t={NOW},t={NOW},v1=00"),
                BODY,
                vec![NEW],
                Err(SignatureError::Malformed("`t` given twice".into())),
            ),
            (
                "t=-5,v1=00".to_owned(),
                BODY,
                vec![NEW],
                Err(SignatureError::Malformed(
                    "`t=-5` is not unix seconds".into(),
                )),
            ),
            (
                "garbage".to_owned(),
                BODY,
                vec![NEW],
                Err(SignatureError::Malformed(
                    "`garbage` is not key=value".into(),
                )),
            ),
            (signed, BODY, vec![], Err(SignatureError::NoSecret)),
        ];
        for (header, body, secrets, want) in cases {
            assert_eq!(
                verify_signature(&header, body, &secrets, NOW, DEFAULT_TOLERANCE_S),
                want,
                "{header}"
            );
        }
    }
}
