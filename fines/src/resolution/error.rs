//! What can go wrong building, rendering and signing a resolution.

use kozomol_core::{Currency, Jurisdiction};

use super::signature::SignError;

/// Errors of the resolution document: its number, its data, its PDF and its signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolutionError {
    #[error("invalid resolution number `{raw}`: {reason}")]
    InvalidNumber { raw: String, reason: &'static str },
    #[error("resolution number is for {number} but the resolution is issued in {resolution}")]
    JurisdictionMismatch {
        number: Jurisdiction,
        resolution: Jurisdiction,
    },
    #[error("`{field}` is empty")]
    EmptyField { field: &'static str },
    #[error("`{field}` is in {found}, but {jurisdiction} fines are in {expected}")]
    CurrencyMismatch {
        field: &'static str,
        jurisdiction: Jurisdiction,
        expected: Currency,
        found: Currency,
    },
    #[error("`{field}` is not a valid amount: {reason}")]
    InvalidAmount {
        field: &'static str,
        reason: &'static str,
    },
    #[error("payment code must be 1 to 64 decimal digits")]
    InvalidPaymentCode,
    #[error("coordinates {lat_e6}, {lon_e6} (micro-degrees) are out of range")]
    InvalidCoordinates { lat_e6: i32, lon_e6: i32 },
    #[error("the {photo} photo is not a usable jpeg: {reason}")]
    NotJpeg {
        photo: &'static str,
        reason: &'static str,
    },
    #[error("the {what} does not fit in a qr code: {reason}")]
    Qr { what: &'static str, reason: String },
    #[error("the resolution does not fit on one page ({overflow_pt} pt too long): shorten the longest texts")]
    PageOverflow { overflow_pt: u32 },
    #[error("writing the pdf failed: {reason}")]
    PdfWrite { reason: String },
    #[error(transparent)]
    Sign(#[from] SignError),
}

impl ResolutionError {
    /// Whether the document's own content fails it (its number, data, photos, length):
    /// the same on every try, so a person must see it; signing and writing may pass.
    pub fn is_the_documents(&self) -> bool {
        !matches!(
            self,
            ResolutionError::PdfWrite { .. } | ResolutionError::Sign(_)
        )
    }
}
