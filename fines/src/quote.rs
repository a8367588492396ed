//! Pricing and dating one case: which article, how much, the discounted amount, and
//! every deadline its delivery starts. Pure functions over the catalogue and the
//! calendars; `kozomol quote` prints [`Quote`] as JSON.

use chrono::{Days, Months, NaiveDate};
use kozomol_core::{Jurisdiction, Money, ViolationKind};
use serde::Serialize;

use crate::calendar::Calendars;
use crate::catalogue::{Catalogue, Classification, FineUnit, Sanction};
use crate::FinesError;

/// The facts a fine depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offence {
    pub jurisdiction: Jurisdiction,
    pub kind: ViolationKind,
    /// Measured speed and the limit, km/h (speeding).
    pub speed: Option<Speed>,
    /// The offence's calendar date in the jurisdiction's time zone.
    pub date: NaiveDate,
    /// The date of proven delivery; the clocks start there.
    pub delivered: Option<NaiveDate>,
    /// Again within a year of a penalty for the same offence, counted per offender.
    pub repeat: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Speed {
    pub measured_kmh: u16,
    pub limit_kmh: u16,
}

/// A fine, priced and dated. Dates that run from delivery are `None` until then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub jurisdiction: Jurisdiction,
    pub kind: ViolationKind,
    pub article: String,
    #[serde(skip)]
    pub title: String,
    pub unit: FineUnit,
    pub units: u32,
    pub amount: Money,
    pub discounted_amount: Option<Money>,
    pub discount_until: Option<NaiveDate>,
    pub due: Option<NaiveDate>,
    pub appeal_until: Option<NaiveDate>,
    pub lapses: Option<NaiveDate>,
    /// The day the decision takes effect.
    #[serde(skip)]
    pub effective: Option<NaiveDate>,
    /// The last day by which an unpaid fine goes to enforcement.
    #[serde(skip)]
    pub enforcement_by: Option<NaiveDate>,
    /// What the computation rests on that is not confirmed against the statute.
    pub unconfirmed: Vec<String>,
}

/// Why a violation gets no fine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NoFine {
    pub jurisdiction: Jurisdiction,
    pub kind: ViolationKind,
    pub article: Option<String>,
    pub reason: String,
}

/// The result of pricing: a fine, or a reason there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pricing {
    Fine(Quote),
    NoFine(NoFine),
}

/// Prices and dates `offence` under `catalogue`, counting working days in `calendars`.
pub fn quote(
    catalogue: &Catalogue,
    calendars: &Calendars,
    offence: &Offence,
) -> Result<Pricing, FinesError> {
    let excess = match (offence.kind, offence.speed) {
        (ViolationKind::Speeding, Some(s)) if s.measured_kmh > s.limit_kmh && s.limit_kmh > 0 => {
            Some(s.measured_kmh - s.limit_kmh)
        }
        (ViolationKind::Speeding, _) => return Err(FinesError::SpeedMissing),
        _ => None,
    };
    if let Some(delivered) = offence.delivered {
        if delivered < offence.date {
            return Err(FinesError::DeliveryBeforeOffence {
                offence: offence.date,
                delivered,
            });
        }
    }
    let no_fine = |article: Option<&str>, reason: String| {
        Ok(Pricing::NoFine(NoFine {
            jurisdiction: offence.jurisdiction,
            kind: offence.kind,
            article: article.map(str::to_owned),
            reason,
        }))
    };
    let article = match catalogue.classify(offence.kind, excess, offence.date)? {
        Classification::Article(article) => article,
        Classification::BelowThreshold { excess, lowest } => {
            return no_fine(
                None,
                format!(
                "{excess} km/h over the limit is below the lowest fined excess of {lowest} km/h"
            ),
            )
        }
    };
    match article.sanction {
        Sanction::Fine => {}
        Sanction::LicenceSuspension => {
            return no_fine(
                Some(&article.article),
                format!(
                    "article {} imposes a licence suspension, not a fine",
                    article.article
                ),
            )
        }
        Sanction::Unknown => {
            return Err(FinesError::UnknownAmount {
                jurisdiction: catalogue.jurisdiction,
                article: article.article.clone(),
                title: article.title.clone(),
            })
        }
    }
    let mut unconfirmed = article.unconfirmed.clone();
    let base_units = article.units.ok_or_else(|| FinesError::UnknownAmount {
        jurisdiction: catalogue.jurisdiction,
        article: article.article.clone(),
        title: article.title.clone(),
    })?;
    let (article_name, units) = if offence.repeat {
        if article.repeat_units.is_none() && !catalogue.repeat_amounts_confirmed {
            unconfirmed.push("repeat".into());
        }
        if catalogue.repeat_window.unconfirmed {
            unconfirmed.push("repeat_window".into());
        }
        (
            article
                .repeat_article
                .clone()
                .unwrap_or_else(|| article.article.clone()),
            article.repeat_units.unwrap_or(base_units),
        )
    } else {
        (article.article.clone(), base_units)
    };
    let unit_value = catalogue.unit_value(offence.date)?;
    let amount = Money::new(unit_value.minor * i64::from(units), unit_value.currency);
    let procedure = catalogue.procedure(offence.date)?;
    unconfirmed.extend(procedure.unconfirmed.iter().cloned());
    let discounted_amount =
        (procedure.discount_percent > 0).then(|| amount.percent(100 - procedure.discount_percent));

    let mut dates = Dates::default();
    if let Some(delivered) = offence.delivered {
        let add_days = |date: NaiveDate, n: u32| {
            date.checked_add_days(Days::new(u64::from(n)))
                .ok_or(FinesError::DateOverflow)
        };
        dates.discount_until = Some(if procedure.discount_working_days {
            let until = calendars.add_working_days(
                offence.jurisdiction,
                delivered,
                procedure.discount_days,
            )?;
            note_calendars(
                calendars,
                offence.jurisdiction,
                delivered,
                until,
                &mut unconfirmed,
            )?;
            until
        } else {
            add_days(delivered, procedure.discount_days)?
        });
        dates.appeal_until = Some(add_days(delivered, procedure.appeal_days)?);
        let effective = add_days(delivered, procedure.effective_days)?;
        let due = add_days(effective, procedure.due_days)?;
        dates.effective = Some(effective);
        dates.due = Some(due);
        dates.enforcement_by = Some(add_days(due, procedure.enforcement_days)?);
        dates.lapses = Some(
            effective
                .checked_add_months(Months::new(procedure.lapse_months))
                .ok_or(FinesError::DateOverflow)?,
        );
    }
    unconfirmed.dedup();
    Ok(Pricing::Fine(Quote {
        jurisdiction: offence.jurisdiction,
        kind: offence.kind,
        article: article_name,
        title: article.title.clone(),
        unit: catalogue.unit,
        units,
        amount,
        discounted_amount,
        discount_until: dates.discount_until,
        due: dates.due,
        appeal_until: dates.appeal_until,
        lapses: dates.lapses,
        effective: dates.effective,
        enforcement_by: dates.enforcement_by,
        unconfirmed,
    }))
}

#[derive(Default)]
struct Dates {
    discount_until: Option<NaiveDate>,
    due: Option<NaiveDate>,
    appeal_until: Option<NaiveDate>,
    lapses: Option<NaiveDate>,
    effective: Option<NaiveDate>,
    enforcement_by: Option<NaiveDate>,
}

/// Names each calendar year a working-day count crossed that is not confirmed.
fn note_calendars(
    calendars: &Calendars,
    jurisdiction: Jurisdiction,
    from: NaiveDate,
    until: NaiveDate,
    unconfirmed: &mut Vec<String>,
) -> Result<(), FinesError> {
    use chrono::Datelike;
    for year in from.year()..=until.year() {
        if !calendars.year(jurisdiction, year)?.confirmed {
            unconfirmed.push(format!("calendar {jurisdiction} {year}"));
        }
    }
    Ok(())
}
