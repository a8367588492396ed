//! kozomol-fines: from an approved violation to a resolution that stands in court.
//!
//! It owns the offence catalogue (articles, amounts in РП/МРП, speed bands, discount
//! and deadline rules, as data with effective dates), the public-holiday calendars the
//! deadlines count in, the pure functions that price a case and date its deadlines,
//! the resolution document (its PDF and signature), where a review decision sends a
//! case, and the stages after review: auto-approval, the checks before issuing and the
//! owner lookup over Tunduk, issuing, delivery, dating a delivered case's clocks and
//! moving them on (the deadlines scheduler), the rules around appeals, destroying case
//! files at the end of their archive period, and the worker that runs the stages. A case an officer filed himself (no camera, no device) reads
//! through [`officer::case_facts`] like a camera's.

pub mod accidents;
pub mod appeals;
pub mod approval;
pub mod archive;
pub mod calendar;
pub mod catalogue;
pub mod checks;
pub mod clocks;
pub mod deadlines;
pub mod delivery;
mod error;
pub mod issuing;
pub mod lookup;
pub mod officer;
pub mod pre_issue;
pub mod quote;
pub mod repeat;
pub mod resolution;
pub mod review;
pub mod worker;

pub use error::FinesError;
