//! The resolution document (постановление): what it shows ([`Resolution`]), its number
//! ([`ResolutionNumber`]), its one-page PDF ([`render_pdf`]) and its detached signature
//! ([`Signer`], [`verify`]).
//!
//! The PDF embeds the camera's JPEG bytes unchanged (the evidence keeps its hash, and
//! rendering costs milliseconds), uses the bundled DejaVu Sans subset to the glyphs on
//! the page, carries two QR codes (pay; verify), and is byte-for-byte the same for the
//! same resolution. Rendering and signing are CPU work: call them from a blocking pool,
//! not on the async executor.

mod error;
mod fonts;
mod jpeg;
mod layout;
mod number;
pub(crate) mod pdf;
mod qr;
pub mod signature;
pub(crate) mod wording;

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::{Jurisdiction, MeasuringDevice, Money, ViolationKind};

pub use error::ResolutionError;

/// Whether `bytes` is a JPEG the document can embed unchanged, as it embeds every
/// photo (an officer's photos are checked with this when he files them).
pub fn embeddable_photo(bytes: &[u8]) -> Result<(), &'static str> {
    jpeg::read_info(bytes).map(|_| ())
}
pub use number::{ResolutionNumber, MAX_SEQUENCE};
pub use qr::QrMatrix;
pub use signature::{
    key_id, verify, DetachedSignature, Ed25519Signer, SignError, SignatureAlgorithm, Signer,
    SignerIdentity, Verdict, VerifyingKeys,
};
/// What a violation is called on the resolution (and where other systems show it).
pub use wording::violation as violation_wording;

/// Everything the document shows; the issuing code fills it from the case, the
/// catalogue's quote, the owner lookup and the payment code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub number: ResolutionNumber,
    pub jurisdiction: Jurisdiction,
    /// The body that issues it, e.g. "Управление патрульной милиции ГУВД г. Бишкек".
    pub authority: String,
    /// When it was issued; also the PDF's creation date.
    pub issued_at: DateTime<Utc>,
    /// When the offence was captured; shown in the jurisdiction's local time.
    pub offence_at: DateTime<Utc>,
    pub place: Place,
    /// The plate as registered, e.g. `01KG123ABC`.
    pub plate: String,
    pub vehicle: Vehicle,
    pub owner: Owner,
    pub article: Article,
    pub violation: ViolationKind,
    /// The measurement in words, e.g. "96 км/ч при ограничении 60 км/ч".
    pub measurement: String,
    /// How the offence was detected: the document's title says so.
    pub detection: Detection,
    /// The measuring device and its calibration certificate; none when an officer saw
    /// the violation himself (he is then the one who confirms it).
    pub device: Option<MeasuringDevice>,
    /// The officer who confirmed the violation.
    pub officer: Officer,
    pub amount: Money,
    /// The reduced amount for early payment, where the law grants one.
    pub discount: Option<Discount>,
    /// When the fine is due.
    pub due: Term,
    /// Until when an appeal may be lodged.
    pub appeal_until: Term,
    /// Who may appeal, where and how; printed as given (`\n` starts a new line).
    pub appeal_rights: String,
    /// The payment code, decimal digits.
    pub payment_code: String,
    /// The national payment QR payload, encoded as given into the "pay" QR code.
    pub payment_qr: String,
    /// Where anyone can check the document; encoded into the "verify" QR code.
    pub verification_url: String,
    pub photos: Photos,
}

/// How an offence was detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    /// A camera working in automatic mode captured it.
    AutomaticCamera,
    /// An officer on duty saw it (by eye, or measuring with a speed gun).
    Officer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub address: String,
    /// Latitude in micro-degrees (WGS 84); an officer on foot may have given none.
    pub lat_e6: Option<i32>,
    /// Longitude in micro-degrees (WGS 84).
    pub lon_e6: Option<i32>,
}

/// Make and model as the vehicle register gives them, when known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vehicle {
    pub make: Option<String>,
    pub model: Option<String>,
}

impl Vehicle {
    /// "Toyota Camry", or `None` when neither is known.
    pub fn describe(&self) -> Option<String> {
        let parts: Vec<&str> = [&self.make, &self.model]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// The person or organisation the resolution is addressed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// A person's full name or an organisation's name.
    pub name: String,
    /// May be empty when the register has none; printed as "не указан".
    pub address: String,
    pub liable_as: Liability,
}

/// Why the addressee answers for the offence, as the document names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liability {
    /// The vehicle's owner of record.
    Owner,
    /// The driver the owner named (KZ art. 31): the resolution was re-issued to them.
    NamedDriver,
}

/// The article applied, e.g. number "592.2" with its title.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Article {
    pub number: String,
    pub title: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Officer {
    pub name: String,
    pub badge: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discount {
    /// e.g. 50 for "50 %".
    pub percent: u32,
    pub amount: Money,
    /// Until when the discounted amount is accepted.
    pub until: Term,
}

/// A deadline as the document states it. A resolution is issued before it is
/// delivered, and the clocks start at proven delivery: until then the document states
/// the period the law gives, afterwards the date it ends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Term {
    /// The last day (local calendar date), inclusive.
    Until(NaiveDate),
    /// Within `days` (working days when `working_days`) from the day of delivery.
    FromDelivery { days: u32, working_days: bool },
    /// Within `days` from the day the decision takes effect.
    FromEffect { days: u32 },
}

/// The camera's JPEG files, embedded in the PDF byte for byte.
#[derive(Clone, PartialEq, Eq)]
pub struct Photos {
    /// The overview frame showing the vehicle in the scene.
    pub overview: Vec<u8>,
    /// The plate crop.
    pub plate: Vec<u8>,
}

impl fmt::Debug for Photos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Photos")
            .field("overview_bytes", &self.overview.len())
            .field("plate_bytes", &self.plate.len())
            .finish()
    }
}

/// A rendered and signed resolution: the PDF to deliver and archive, and its detached
/// signature (which also carries the PDF's SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedResolution {
    pub pdf: Vec<u8>,
    pub signature: DetachedSignature,
}

impl Resolution {
    /// Checks what the types do not: matching jurisdiction and currencies, amounts,
    /// digits, coordinates and the texts the document cannot go without. The photos and
    /// QR payloads are checked by [`render_pdf`].
    pub fn check(&self) -> Result<(), ResolutionError> {
        if self.number.jurisdiction() != self.jurisdiction {
            return Err(ResolutionError::JurisdictionMismatch {
                number: self.number.jurisdiction(),
                resolution: self.jurisdiction,
            });
        }
        let required = [
            ("authority", &self.authority),
            ("place.address", &self.place.address),
            ("plate", &self.plate),
            ("owner.name", &self.owner.name),
            ("article.number", &self.article.number),
            ("article.title", &self.article.title),
            ("measurement", &self.measurement),
            ("officer.name", &self.officer.name),
            ("officer.badge", &self.officer.badge),
            ("appeal_rights", &self.appeal_rights),
            ("payment_qr", &self.payment_qr),
            ("verification_url", &self.verification_url),
        ];
        let device = self.device.iter().flat_map(|d| {
            [
                ("device.serial", &d.serial),
                ("device.certificate.number", &d.certificate.number),
            ]
        });
        if let Some((field, _)) = required
            .into_iter()
            .chain(device)
            .find(|(_, v)| v.trim().is_empty())
        {
            return Err(ResolutionError::EmptyField { field });
        }
        let currency = self.jurisdiction.currency();
        let in_currency = |field, money: Money| {
            if money.currency == currency {
                Ok(())
            } else {
                Err(ResolutionError::CurrencyMismatch {
                    field,
                    jurisdiction: self.jurisdiction,
                    expected: currency,
                    found: money.currency,
                })
            }
        };
        in_currency("amount", self.amount)?;
        if self.amount.minor <= 0 {
            return Err(ResolutionError::InvalidAmount {
                field: "amount",
                reason: "it must be positive",
            });
        }
        if let Some(discount) = &self.discount {
            in_currency("discount.amount", discount.amount)?;
            if discount.amount.minor <= 0 || discount.amount.minor >= self.amount.minor {
                return Err(ResolutionError::InvalidAmount {
                    field: "discount.amount",
                    reason: "it must be positive and below the amount",
                });
            }
            if !(1..=99).contains(&discount.percent) {
                return Err(ResolutionError::InvalidAmount {
                    field: "discount.percent",
                    reason: "it must be 1 to 99",
                });
            }
        }
        let code = &self.payment_code;
        if code.is_empty() || code.len() > 64 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ResolutionError::InvalidPaymentCode);
        }
        match (self.place.lat_e6, self.place.lon_e6) {
            (None, None) => {}
            (Some(lat), Some(lon))
                if (-90_000_000..=90_000_000).contains(&lat)
                    && (-180_000_000..=180_000_000).contains(&lon) => {}
            (lat, lon) => {
                return Err(ResolutionError::InvalidCoordinates {
                    lat_e6: lat.unwrap_or(i32::MIN),
                    lon_e6: lon.unwrap_or(i32::MIN),
                })
            }
        }
        Ok(())
    }
}

/// Renders the one-page A4 PDF. Deterministic: the same resolution gives the same
/// bytes. Takes a few milliseconds (the photos are not decoded); still CPU work.
pub fn render_pdf(resolution: &Resolution) -> Result<Vec<u8>, ResolutionError> {
    pdf::render(resolution)
}

/// Renders the PDF and signs it.
pub fn issue(
    resolution: &Resolution,
    signer: &dyn Signer,
) -> Result<IssuedResolution, ResolutionError> {
    let pdf = render_pdf(resolution)?;
    let signature = signer.sign(&pdf)?;
    Ok(IssuedResolution { pdf, signature })
}
