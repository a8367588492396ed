use chrono::NaiveDate;
use kozomol_core::{Jurisdiction, ViolationKind};

/// What can go wrong pricing and dating a case.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FinesError {
    #[error("catalogue `{file}` does not parse: {reason}")]
    Catalogue { file: String, reason: String },
    #[error("calendar `{file}` does not parse: {reason}")]
    Calendar { file: String, reason: String },
    #[error("no {jurisdiction} working-day calendar for {year}: add its file before dating a deadline in that year")]
    NoCalendar {
        jurisdiction: Jurisdiction,
        year: i32,
    },
    #[error("no {jurisdiction} catalogue article for `{kind}` on {date}")]
    NoArticle {
        jurisdiction: Jurisdiction,
        kind: ViolationKind,
        date: NaiveDate,
    },
    #[error("the {jurisdiction} catalogue names no amount for {article} ({title}): it was not confirmed, so it is not guessed")]
    UnknownAmount {
        jurisdiction: Jurisdiction,
        article: String,
        title: String,
    },
    #[error("no {jurisdiction} fine unit value in force on {date}")]
    NoUnitValue {
        jurisdiction: Jurisdiction,
        date: NaiveDate,
    },
    #[error("no {jurisdiction} procedure rules in force on {date}")]
    NoProcedure {
        jurisdiction: Jurisdiction,
        date: NaiveDate,
    },
    #[error("speeding needs the measured speed and the limit, the speed above the limit")]
    SpeedMissing,
    #[error("delivery on {delivered} is before the offence on {offence}")]
    DeliveryBeforeOffence {
        offence: NaiveDate,
        delivered: NaiveDate,
    },
    #[error("date arithmetic left the calendar")]
    DateOverflow,
}
