//! W3C Trace Context's `traceparent` (https://www.w3.org/TR/trace-context/): the one
//! form in which a trace crosses kozomol's boundaries — HTTP headers, the unprotected
//! header of a camera's envelope, and the case row that the pipeline's stages claim.

use std::fmt;
use std::str::FromStr;

use crate::CoreError;

/// A span's place in a trace: `00-{trace id}-{parent span id}-{flags}`, lower-case hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Bit 0: the caller recorded (sampled) its span.
    pub flags: u8,
}

impl TraceParent {
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

impl FromStr for TraceParent {
    type Err = CoreError;

    /// Version 00 exactly as the recommendation writes it; a later version is read by
    /// its first four fields, as the recommendation asks of a version-00 reader.
    fn from_str(text: &str) -> Result<Self, CoreError> {
        let invalid = |why: &str| CoreError::InvalidTraceParent(format!("{why}: `{text}`"));
        let fields: Vec<&str> = text.split('-').collect();
        let [version, trace_id, span_id, flags, rest @ ..] = fields.as_slice() else {
            return Err(invalid("needs version-traceid-parentid-flags"));
        };
        let version = hex_bytes::<1>(version).ok_or_else(|| invalid("version"))?[0];
        if version == 0xff {
            return Err(invalid("version ff is invalid"));
        }
        if version == 0 && (!rest.is_empty() || text.len() != 55) {
            return Err(invalid("version 00 has exactly four fields"));
        }
        let trace_id = hex_bytes::<16>(trace_id).ok_or_else(|| invalid("trace id"))?;
        let span_id = hex_bytes::<8>(span_id).ok_or_else(|| invalid("parent id"))?;
        let flags = hex_bytes::<1>(flags).ok_or_else(|| invalid("flags"))?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return Err(invalid("all-zero ids are invalid"));
        }
        Ok(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-")?;
        self.trace_id
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, "-")?;
        self.span_id.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        write!(f, "-{:02x}", self.flags)
    }
}

/// Exactly `2 * N` lower-case hex digits.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn traceparents_are_read_as_the_recommendation_says() {
        let cases: &[(&str, Option<(&str, u8)>)] = &[
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                Some(("00f067aa0ba902b7", 1)),
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                Some(("00f067aa0ba902b7", 0)),
            ),
            // A later version: its first four fields are read, the rest ignored.
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes",
                Some(("00f067aa0ba902b7", 9)),
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                None,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                None,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                None,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                None,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                None,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                None,
            ),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
                None,
            ),
            (
                "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001",
                None,
            ),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<TraceParent>().ok();
            match (parsed, expected) {
                (Some(p), Some((span, flags))) => {
                    let trace = p
                        .trace_id
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>();
                    let span_hex = p
                        .span_id
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>();
                    assert_eq!(
                        (trace.as_str(), span_hex.as_str(), p.flags),
                        (TRACE, *span, *flags),
                        "{text}"
                    );
                }
                (None, None) => {}
                (parsed, expected) => panic!("{text}: {parsed:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_traceparent_is_written_as_version_00() {
        let p: TraceParent = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-x"
            .parse()
            .expect("parses");
        assert_eq!(
            p.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09"
        );
        assert!(p.sampled());
        assert_eq!(p.to_string().parse::<TraceParent>(), Ok(p));
    }
}
