//! The errors of this crate: one enum per concept, because a caller handles them in
//! different places (a payment code arrives from a bank or a citizen; a QR payload is
//! built for a resolution or checked when scanned) and never needs both at once.

use kozomol_core::{Currency, Jurisdiction};

use crate::code::PaymentCode;

/// Why a value is not a payment code, or a set of codes is not a valid receipt.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum PaymentCodeError {
    #[error("payment code must contain only the digits 0-9")]
    NotDigits,
    #[error("payment code has {len} digits, it must have 18")]
    WrongLength { len: usize },
    #[error("payment code must not start with 0")]
    LeadingZero,
    #[error("payment code check digit {found} does not match the other digits")]
    BadCheckDigit { found: u8 },
    #[error("unknown payment code kind {0}: 1 (fine) or 2 (receipt)")]
    UnknownKind(u8),
    #[error("unknown payment code jurisdiction {0}: 1 (kg) or 2 (kz)")]
    UnknownJurisdiction(u8),
    #[error("payment code year {0} is outside 2000-2099")]
    YearOutOfRange(u16),
    #[error("payment code issuer {0} is above 999")]
    IssuerOutOfRange(u16),
    #[error("payment code sequence {0} is above 9999999999")]
    SequenceOutOfRange(u64),
    #[error("code {0} is a {kind} code, a receipt needs a receipt code", kind = .0.kind())]
    NotReceiptCode(PaymentCode),
    #[error("code {0} is a {kind} code, a receipt covers only fine codes", kind = .0.kind())]
    NotFineCode(PaymentCode),
    #[error("a receipt covers at least 2 fines, got {count}")]
    TooFewFines { count: usize },
    #[error("fine {0} is listed twice in the receipt")]
    DuplicateFine(PaymentCode),
    #[error("fine {code} is for {found}, the receipt is for {expected}")]
    MixedJurisdictions {
        code: PaymentCode,
        expected: Jurisdiction,
        found: Jurisdiction,
    },
}

/// Why a QR payload does not parse or verify, or cannot be built.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    #[error("payload ends inside the header of the field at offset {at}")]
    TruncatedHeader { at: usize },
    #[error("tag at offset {at} is not two digits")]
    NonDigitTag { at: usize },
    #[error("length of field {tag:02} at offset {at} is not two digits")]
    NonDigitLength { tag: u8, at: usize },
    #[error("field {tag:02} at offset {at} declares {len} characters but only {left} remain")]
    TruncatedValue {
        tag: u8,
        at: usize,
        len: usize,
        left: usize,
    },
    #[error("payload does not start with the payload format indicator (field 00)")]
    MissingFormatIndicator,
    #[error("payload has no checksum field 63")]
    MissingChecksum,
    #[error("checksum field 63 is not the last field")]
    ChecksumNotLast,
    #[error("checksum field 63 must hold four hex digits")]
    BadChecksumFormat,
    #[error("checksum `{found}` matches neither the kg sha-256 form nor the emvco crc-16 form")]
    ChecksumMismatch { found: String },
    #[error("field {field} is empty")]
    EmptyField { field: String },
    #[error("field {field} is {len} characters, above the limit of {max}")]
    FieldTooLong {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("field {field} holds a control character")]
    ControlCharacter { field: String },
    #[error("merchant sub-field tag {0} is not 01-99")]
    InvalidSubTag(u8),
    #[error("merchant sub-field {0:02} is given twice")]
    DuplicateSubField(u8),
    #[error("the emvco form needs the merchant city (field 60)")]
    MissingCity,
    #[error("amount is in {found}, this form takes {expected}")]
    WrongCurrency { expected: Currency, found: Currency },
    #[error("amount must be above zero, got {minor} minor units")]
    NonPositiveAmount { minor: i64 },
    #[error("payment code is a {found} code, this form is for {expected}")]
    WrongJurisdiction {
        expected: Jurisdiction,
        found: Jurisdiction,
    },
}
