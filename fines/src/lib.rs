//! kozomol-fines: from an approved violation to a resolution that stands in court.
//!
//! It owns the offence catalogue (articles, amounts in РП/МРП, speed bands, discount
//! and deadline rules, as data with effective dates), the public-holiday calendars the
//! deadlines count in, the pure functions that price a case and date its deadlines,
//! the resolution document (its PDF and signature), where a review decision sends a
//! case, and the stages after review: auto-approval, owner lookup over Tunduk, issuing,
//! and the worker that runs them.

pub mod approval;
pub mod calendar;
pub mod catalogue;
pub mod checks;
pub mod deadlines;
mod error;
pub mod issuing;
pub mod lookup;
pub mod quote;
pub mod resolution;
pub mod review;
pub mod worker;

pub use error::FinesError;
