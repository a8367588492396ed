//! The offence catalogue: per jurisdiction, the articles a camera violation falls
//! under (with speed bands), their amounts in the country's fine unit, the unit's value
//! and the procedure periods, each with the date from which it is in force. It is data
//! (`fines/catalogue/{kg,kz}.toml`); what is not confirmed against the statute is
//! marked so and travels with every quote.

use chrono::NaiveDate;
use kozomol_core::{Jurisdiction, Money, ViolationKind};
use serde::{Deserialize, Serialize};

use crate::FinesError;

/// The unit fines are counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FineUnit {
    /// Kazakhstan's месячный расчетный показатель.
    MRP,
    /// Kyrgyzstan's расчетный показатель.
    RP,
}

/// What the article imposes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sanction {
    #[default]
    Fine,
    /// Not a fine: a camera case under this article is not issued as a fine.
    LicenceSuspension,
    /// A fine whose amount was not found in a confirmed source.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitValue {
    pub from: NaiveDate,
    /// One unit in the currency's major units (tenge, som).
    pub value: i64,
    #[serde(default)]
    pub source: String,
}

/// The periods of a case's clocks, in force from `from`. Days are calendar days unless
/// the rule says working days.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub from: NaiveDate,
    pub discount_percent: u32,
    pub discount_days: u32,
    pub discount_working_days: bool,
    /// Days from delivery to lodge an appeal.
    pub appeal_days: u32,
    /// Days from delivery until the decision takes effect.
    pub effective_days: u32,
    /// Days from the decision taking effect until the fine is due.
    pub due_days: u32,
    /// Days after the due date by which an unpaid fine goes to enforcement.
    pub enforcement_days: u32,
    /// Months from the decision taking effect after which it is no longer executed.
    pub lapse_months: u32,
    /// Months from the day of the offence after which no one may be fined for it
    /// (the limitation period); none where the catalogue knows of none.
    #[serde(default)]
    pub limitation_months: Option<u32>,
    #[serde(default)]
    pub unconfirmed: Vec<String>,
    #[serde(default)]
    pub source: String,
}

impl Procedure {
    /// The last day a penalty may be imposed for an offence of `offence_day`: a period
    /// of months ends on the same date of its last month (the month's last day where it
    /// has no such date). None without a limitation period.
    pub fn last_day_to_impose(&self, offence_day: NaiveDate) -> Option<NaiveDate> {
        let months = self.limitation_months?;
        Some(
            offence_day
                .checked_add_months(chrono::Months::new(months))
                .unwrap_or(NaiveDate::MAX),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub kind: ViolationKind,
    pub article: String,
    pub title: String,
    /// Speed bands: lowest excess over the limit in the band, km/h.
    pub over_from: Option<u16>,
    /// First excess above the band; none for the top band.
    pub over_below: Option<u16>,
    #[serde(default)]
    pub sanction: Sanction,
    pub units: Option<u32>,
    /// The article part for a repeat within a year, where it is another part.
    pub repeat_article: Option<String>,
    pub repeat_units: Option<u32>,
    pub from: NaiveDate,
    pub until: Option<NaiveDate>,
    #[serde(default)]
    pub unconfirmed: Vec<String>,
    #[serde(default)]
    pub source: String,
}

impl Article {
    fn in_force(&self, date: NaiveDate) -> bool {
        self.from <= date && self.until.is_none_or(|until| date <= until)
    }

    fn covers_excess(&self, excess: Option<u16>) -> bool {
        match (self.over_from, excess) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(from), Some(over)) => {
                from <= over && self.over_below.is_none_or(|below| over < below)
            }
        }
    }
}

/// How long a penalty makes a new offence of its kind a repeat: the months after the
/// day it was imposed (the earlier resolution's issue date). Both codes count a person
/// as penalised for a year; a file that names no window gets that year, unconfirmed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatWindow {
    pub months: u32,
    #[serde(default)]
    pub unconfirmed: bool,
    #[serde(default)]
    pub source: String,
}

impl Default for RepeatWindow {
    fn default() -> Self {
        RepeatWindow {
            months: 12,
            unconfirmed: true,
            source: String::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    jurisdiction: Jurisdiction,
    unit: FineUnit,
    /// Whether an article without `repeat_units` is known to have no separate repeat
    /// amount (false: the repeat amounts were not found, and a repeat quote says so).
    #[serde(default = "confirmed")]
    repeat_amounts_confirmed: bool,
    #[serde(default)]
    repeat_window: RepeatWindow,
    unit_values: Vec<UnitValue>,
    procedure: Vec<Procedure>,
    articles: Vec<Article>,
}

fn confirmed() -> bool {
    true
}

/// One jurisdiction's catalogue.
#[derive(Clone, Debug)]
pub struct Catalogue {
    pub jurisdiction: Jurisdiction,
    pub unit: FineUnit,
    pub repeat_amounts_confirmed: bool,
    pub repeat_window: RepeatWindow,
    unit_values: Vec<UnitValue>,
    procedure: Vec<Procedure>,
    articles: Vec<Article>,
}

/// Which article a violation falls under on a date, or why none imposes a fine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classification<'a> {
    Article(&'a Article),
    /// Below the lowest band: the excess is not an offence the catalogue fines.
    BelowThreshold {
        excess: u16,
        lowest: u16,
    },
}

impl Catalogue {
    /// The bundled catalogue of a jurisdiction.
    pub fn bundled(jurisdiction: Jurisdiction) -> Self {
        let (file, text) = match jurisdiction {
            Jurisdiction::Kg => ("kg.toml", include_str!("../catalogue/kg.toml")),
            Jurisdiction::Kz => ("kz.toml", include_str!("../catalogue/kz.toml")),
        };
        Catalogue::parse(file, text).expect("bundled catalogues parse (a test checks them)")
    }

    /// Parses and checks a catalogue file: dates in order, bands that neither overlap
    /// nor leave gaps, a fine's units present.
    pub fn parse(file: &str, text: &str) -> Result<Self, FinesError> {
        let bad = |reason: String| FinesError::Catalogue {
            file: file.to_owned(),
            reason,
        };
        let parsed: CatalogueFile =
            toml::from_str(text).map_err(|e| bad(e.message().to_owned()))?;
        let expected_unit = match parsed.jurisdiction {
            Jurisdiction::Kg => FineUnit::RP,
            Jurisdiction::Kz => FineUnit::MRP,
        };
        if parsed.unit != expected_unit {
            return Err(bad(format!(
                "{} counts fines in {expected_unit:?}",
                parsed.jurisdiction
            )));
        }
        if !parsed.unit_values.windows(2).all(|w| w[0].from < w[1].from) {
            return Err(bad("unit_values must be in date order".into()));
        }
        if parsed.repeat_window.months == 0 {
            return Err(bad("repeat_window.months must be positive".into()));
        }
        if !parsed.procedure.windows(2).all(|w| w[0].from < w[1].from) {
            return Err(bad("procedure entries must be in date order".into()));
        }
        if let Some(v) = parsed.unit_values.iter().find(|v| v.value <= 0) {
            return Err(bad(format!("unit value from {} must be positive", v.from)));
        }
        for a in &parsed.articles {
            let name = &a.article;
            match (a.sanction, a.units) {
                (Sanction::Fine, None) => return Err(bad(format!("{name}: a fine needs units"))),
                (Sanction::Fine, Some(0)) => {
                    return Err(bad(format!("{name}: units must be positive")))
                }
                (Sanction::LicenceSuspension | Sanction::Unknown, Some(_)) => {
                    return Err(bad(format!("{name}: only a fine names units")))
                }
                _ => {}
            }
            if a.repeat_article.is_some() && a.repeat_units.is_none() {
                return Err(bad(format!("{name}: repeat_article without repeat_units")));
            }
            if let (Some(from), Some(below)) = (a.over_from, a.over_below) {
                if from >= below {
                    return Err(bad(format!("{name}: empty speed band")));
                }
            }
            if a.over_below.is_some() && a.over_from.is_none() {
                return Err(bad(format!("{name}: over_below without over_from")));
            }
            if a.until.is_some_and(|until| until < a.from) {
                return Err(bad(format!("{name}: until before from")));
            }
        }
        let catalogue = Catalogue {
            jurisdiction: parsed.jurisdiction,
            unit: parsed.unit,
            repeat_amounts_confirmed: parsed.repeat_amounts_confirmed,
            repeat_window: parsed.repeat_window,
            unit_values: parsed.unit_values,
            procedure: parsed.procedure,
            articles: parsed.articles,
        };
        catalogue.check_bands().map_err(bad)?;
        Ok(catalogue)
    }

    /// Every article's start date: on each, the articles of one kind in force must
    /// either be one unbanded article or speed bands that tile the excess without
    /// overlaps or gaps.
    fn check_bands(&self) -> Result<(), String> {
        for date in self.articles.iter().map(|a| a.from) {
            for kind in ViolationKind::ALL {
                let mut in_force: Vec<&Article> = self
                    .articles
                    .iter()
                    .filter(|a| a.kind == kind && a.in_force(date))
                    .collect();
                if in_force.len() <= 1 && in_force.iter().all(|a| a.over_below.is_none()) {
                    continue;
                }
                in_force.sort_by_key(|a| a.over_from);
                if in_force.iter().any(|a| a.over_from.is_none()) {
                    return Err(format!(
                        "{kind} on {date}: several articles and not all banded"
                    ));
                }
                for pair in in_force.windows(2) {
                    if pair[0].over_below != pair[1].over_from {
                        return Err(format!(
                            "{kind} on {date}: bands {} and {} overlap or leave a gap",
                            pair[0].article, pair[1].article
                        ));
                    }
                }
                if in_force.last().is_some_and(|a| a.over_below.is_some()) {
                    return Err(format!("{kind} on {date}: the top band must be open-ended"));
                }
            }
        }
        Ok(())
    }

    /// The article a violation of `kind` on `date` falls under; `excess` is the measured
    /// speed minus the limit for speeding.
    pub fn classify(
        &self,
        kind: ViolationKind,
        excess: Option<u16>,
        date: NaiveDate,
    ) -> Result<Classification<'_>, FinesError> {
        let in_force = || {
            self.articles
                .iter()
                .filter(move |a| a.kind == kind && a.in_force(date))
        };
        if let Some(article) = in_force().find(|a| a.covers_excess(excess)) {
            return Ok(Classification::Article(article));
        }
        let lowest = in_force().filter_map(|a| a.over_from).min();
        match (lowest, excess) {
            (Some(lowest), Some(excess)) if excess < lowest => {
                Ok(Classification::BelowThreshold { excess, lowest })
            }
            (Some(_), None) => Err(FinesError::SpeedMissing),
            _ => Err(FinesError::NoArticle {
                jurisdiction: self.jurisdiction,
                kind,
                date,
            }),
        }
    }

    /// The value of one fine unit in force on `date`.
    pub fn unit_value(&self, date: NaiveDate) -> Result<Money, FinesError> {
        self.unit_values
            .iter()
            .rev()
            .find(|v| v.from <= date)
            .map(|v| Money::major(v.value, self.jurisdiction.currency()))
            .ok_or(FinesError::NoUnitValue {
                jurisdiction: self.jurisdiction,
                date,
            })
    }

    /// The procedure rules in force on `date`.
    pub fn procedure(&self, date: NaiveDate) -> Result<&Procedure, FinesError> {
        self.procedure
            .iter()
            .rev()
            .find(|p| p.from <= date)
            .ok_or(FinesError::NoProcedure {
                jurisdiction: self.jurisdiction,
                date,
            })
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    /// The offences that count as one for repeats: an article's repeat part when it
    /// has one (parts 2 and 3 of KZ art. 592 share part 4), else the article itself.
    /// An issued resolution records the part it was priced under, so a repeat part
    /// maps to itself and to the articles that lead to it.
    pub fn repeat_group<'a>(&'a self, article: &'a str) -> &'a str {
        self.articles
            .iter()
            .find(|a| a.article == article)
            .and_then(|a| a.repeat_article.as_deref())
            .unwrap_or(article)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    #[test]
    fn a_limitation_period_ends_on_the_same_date_of_its_last_month() {
        let kz = Catalogue::bundled(Jurisdiction::Kz);
        let procedure = kz.procedure(day("2026-01-01")).expect("procedure");
        assert_eq!(procedure.limitation_months, Some(2));
        for (offence, last) in [
            ("2026-03-10", "2026-05-10"),
            // No such date in the last month: its last day.
            ("2026-01-31", "2026-03-31"),
            ("2025-12-31", "2026-02-28"),
            ("2027-12-31", "2028-02-29"),
            ("2026-11-30", "2027-01-30"),
        ] {
            assert_eq!(
                procedure.last_day_to_impose(day(offence)),
                Some(day(last)),
                "{offence}"
            );
        }
        // Kyrgyzstan's catalogue names no period.
        let kg = Catalogue::bundled(Jurisdiction::Kg);
        let procedure = kg.procedure(day("2026-01-01")).expect("procedure");
        assert_eq!(procedure.last_day_to_impose(day("2026-03-10")), None);
    }
}
