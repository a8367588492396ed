//! kozomol-payments: how a fine is paid.
//!
//! It owns the payment code of a resolution (18 digits with a mod-11 check digit, the
//! Tunduk `paymentNumber`), receipt codes that pay several fines at once, and the
//! payment QR payloads: parsing and verifying EMVCo TLV text in its Kyrgyz national form
//! (SHA-256 checksum) and its EMVCo form (CRC-16), and building kozomol's own payment QR
//! for a fine in either. It does no I/O.

pub mod code;
mod error;
pub mod qr;

pub use code::{check_digit, CodeKind, PaymentCode, Receipt, PAYMENT_CODE_LEN};
pub use error::{PaymentCodeError, QrError};
pub use qr::{
    emvco_payment_payload, kg_payment_payload, parse_tlv, verify, Checksum, MerchantAccount,
    TlvField,
};
