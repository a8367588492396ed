//! kozomol-payments: how a fine is paid.
//!
//! It owns the payment code of a resolution (18 digits with a mod-11 check digit, the
//! Tunduk `paymentNumber`), receipt codes that pay several fines at once, and the
//! payment QR payloads: parsing and verifying EMVCo TLV text in its Kyrgyz national form
//! (SHA-256 checksum) and its EMVCo form (CRC-16), and building kozomol's own payment QR
//! for a fine in either; what a payment does to a fine (`settlement`: the amount due on
//! a day, the discount's window, part payments and excess); and amounts as Tunduk's
//! `xsd:decimal` text, read exactly (`decimal`); and the signatures of payment
//! providers' callbacks (`callback`: HMAC-SHA256, Stripe's header); and the credits
//! a bank statement lists (`statement`: camt.053 and CSV). It does no I/O.

pub mod callback;
pub mod code;
pub mod decimal;
mod error;
pub mod qr;
pub mod settlement;
pub mod statement;

pub use callback::{signature_header, verify_signature, SignatureError, DEFAULT_TOLERANCE_S};
pub use code::{check_digit, CodeKind, PaymentCode, Receipt, PAYMENT_CODE_LEN};
pub use decimal::{format_decimal, parse_decimal, DecimalError};
pub use error::{PaymentCodeError, QrError};
pub use qr::{
    emvco_payment_payload, kg_payment_payload, parse_tlv, payment_payload, verify, Checksum,
    MerchantAccount, TlvField,
};
pub use settlement::{
    check_payment, settle, Due, PaidSoFar, Settlement, SettlementError, MAX_PAYMENT_MINOR,
};
pub use statement::{
    books_the_payment, parse_camt053, parse_csv, PayerTime, Statement, StatementCredit,
    StatementError,
};
