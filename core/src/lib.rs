//! kozomol-core: the domain types every part shares.
//!
//! It owns the identifiers (cameras, events, cases), violation kinds and their
//! measurements, the device register's vocabulary (measuring devices and their
//! calibration certificates), case states, review decisions and owner lookups,
//! delivery channels and the contacts citizens give, money and jurisdictions, and the
//! camera wire protocol: the signed evidence envelope, receipts, status and config
//! messages, the trace context an event carries, the report an officer files for a violation he saw, and what the
//! pipeline's stages count for operators. It does no I/O.

pub mod access;
pub mod case_state;
pub mod cose;
pub mod dead_letter;
pub mod delivery;
pub mod device;
pub mod envelope;
mod error;
pub mod ids;
pub mod messages;
pub mod money;
pub mod officer;
pub mod owner;
pub mod review;
pub mod stage_metrics;
pub mod topics;
pub mod trace;
pub mod violation;

pub use access::Role;
pub use case_state::CaseState;
pub use dead_letter::DeadLetterReason;
pub use delivery::{ContactAddress, DeliveryChannel, DeliveryState};
pub use device::{CalibrationCertificate, MeasuringDevice};
pub use envelope::{DecodedEnvelope, FrameRef, FrameRole, ViolationEvent};
pub use error::CoreError;
pub use ids::{CameraId, CaseId, EventId};
pub use money::{Currency, Jurisdiction, Money};
pub use officer::{OfficerReport, ReportedPlace, OFFICER_SOURCE};
pub use owner::{OwnerKind, OwnerOfRecord, OwnerOutcome};
pub use review::{RejectReason, ReviewDecision, ReviewTier};
pub use trace::TraceParent;
pub use violation::{
    decimal_degrees, latin_lookalike, ClockSource, Measurement, PlateRead, Site, ViolationKind,
};
