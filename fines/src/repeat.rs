//! Whether an offence is a repeat: the same offence (the same article, or one sharing
//! its repeat part) again within the catalogue's window after a penalty that still
//! stands was imposed on the same offender. Offenders are counted by whom the earlier
//! resolutions were addressed to (a person's PIN, a company's INN, a named driver's
//! PIN), never by plate; the store finds them (`Offenders::offenders_resolutions`).

use chrono::{DateTime, Months, Utc};
use kozomol_core::CaseState;
use kozomol_store::OffenderResolution;

use crate::catalogue::Catalogue;

/// States in which an earlier resolution no longer stands: it imposed no penalty.
pub const WITHDRAWN: [CaseState; 3] = [CaseState::Annulled, CaseState::Voided, CaseState::Refunded];

/// The earlier penalty that makes an offence under `article` committed at `at` a
/// repeat, the latest one when several do; `None` for a first offence.
///
/// A penalty counts from the day it was imposed (its resolution's issue date, in the
/// jurisdiction's time zone) for `repeat_window.months`, the last day included; the
/// offence must come after the imposition, since only a penalised person can offend
/// again.
pub fn earlier_penalty<'r>(
    catalogue: &Catalogue,
    article: &str,
    at: DateTime<Utc>,
    earlier: &'r [OffenderResolution],
) -> Option<&'r OffenderResolution> {
    let jurisdiction = catalogue.jurisdiction;
    let group = catalogue.repeat_group(article);
    let offence_date = jurisdiction.local_date(at);
    earlier
        .iter()
        .filter(|r| r.jurisdiction == jurisdiction && !WITHDRAWN.contains(&r.state))
        .filter(|r| r.issued_at < at && catalogue.repeat_group(&r.article) == group)
        .filter(|r| {
            jurisdiction
                .local_date(r.issued_at)
                .checked_add_months(Months::new(catalogue.repeat_window.months))
                .is_none_or(|last| offence_date <= last)
        })
        .max_by_key(|r| r.issued_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kozomol_core::{CaseId, Jurisdiction};

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        // Noon in Almaty and Bishkek is 06:00 or 07:00 UTC: the same calendar day.
        Utc.with_ymd_and_hms(y, m, d, 6, 0, 0).unwrap()
    }

    fn earlier(
        jurisdiction: Jurisdiction,
        article: &str,
        issued_at: DateTime<Utc>,
        state: CaseState,
    ) -> OffenderResolution {
        OffenderResolution {
            number: format!("{article}@{issued_at}"),
            case_id: CaseId(1),
            jurisdiction,
            article: article.to_owned(),
            issued_at,
            state,
        }
    }

    #[test]
    fn repeats_follow_the_law() {
        let kz = Catalogue::bundled(Jurisdiction::Kz);
        let kg = Catalogue::bundled(Jurisdiction::Kg);
        use CaseState::*;
        use Jurisdiction::{Kg, Kz};
        // (catalogue, article now, offence at, earlier penalty, repeat?)
        let table: Vec<(&Catalogue, &str, DateTime<Utc>, OffenderResolution, bool)> = vec![
            // Same article within the year.
            (
                &kz,
                "599.1",
                at(2026, 3, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Paid),
                true,
            ),
            // The last day of the year still counts; the day after does not.
            (
                &kz,
                "599.1",
                at(2026, 6, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Paid),
                true,
            ),
            (
                &kz,
                "599.1",
                at(2026, 6, 2),
                earlier(Kz, "599.1", at(2025, 6, 1), Paid),
                false,
            ),
            // Unpaid, overdue, appealed: the penalty still stands.
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Overdue),
                true,
            ),
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Appealed),
                true,
            ),
            // Annulled, voided, refunded: no penalty was imposed.
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Annulled),
                false,
            ),
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Voided),
                false,
            ),
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Refunded),
                false,
            ),
            // Another offence is no repeat.
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "593.2", at(2025, 6, 1), Paid),
                false,
            ),
            // Parts 2 and 3 of art. 592 share the repeat part 4 ...
            (
                &kz,
                "592.2",
                at(2026, 1, 1),
                earlier(Kz, "592.3", at(2025, 6, 1), Paid),
                true,
            ),
            // ... and a penalty under part 4 itself counts again.
            (
                &kz,
                "592.3",
                at(2026, 1, 1),
                earlier(Kz, "592.4", at(2025, 6, 1), Paid),
                true,
            ),
            // Part 1 has no repeat part; part 3-1's is part 5, not part 4.
            (
                &kz,
                "592.1",
                at(2026, 1, 1),
                earlier(Kz, "592.2", at(2025, 6, 1), Paid),
                false,
            ),
            (
                &kz,
                "592.3-1",
                at(2026, 1, 1),
                earlier(Kz, "592.3", at(2025, 6, 1), Paid),
                false,
            ),
            // A red light after a repeated red light (priced under 599.2) is again a
            // repeat; a bus lane after a stop line is one too (both 601.1, repeat 601.2).
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kz, "599.2", at(2025, 6, 1), Paid),
                true,
            ),
            (
                &kz,
                "601.1",
                at(2026, 1, 1),
                earlier(Kz, "601.2", at(2025, 6, 1), Paid),
                true,
            ),
            // The penalty must come before the offence.
            (
                &kz,
                "599.1",
                at(2025, 5, 1),
                earlier(Kz, "599.1", at(2025, 6, 1), Paid),
                false,
            ),
            // Another jurisdiction's penalty does not count.
            (
                &kz,
                "599.1",
                at(2026, 1, 1),
                earlier(Kg, "599.1", at(2025, 6, 1), Paid),
                false,
            ),
            // Kyrgyzstan: by article, with its (unconfirmed) year.
            (
                &kg,
                "red light",
                at(2026, 1, 1),
                earlier(Kg, "red light", at(2025, 6, 1), Delivered),
                true,
            ),
            (
                &kg,
                "red light",
                at(2026, 7, 1),
                earlier(Kg, "red light", at(2025, 6, 1), Delivered),
                false,
            ),
        ];
        for (i, (catalogue, article, when, penalty, repeat)) in table.iter().enumerate() {
            let found = earlier_penalty(catalogue, article, *when, std::slice::from_ref(penalty));
            assert_eq!(
                found.is_some(),
                *repeat,
                "row {i}: {article} at {when} after {penalty:?}"
            );
        }
    }

    #[test]
    fn the_latest_standing_penalty_is_named() {
        let kz = Catalogue::bundled(Jurisdiction::Kz);
        let history = [
            earlier(Jurisdiction::Kz, "599.1", at(2025, 3, 1), CaseState::Paid),
            earlier(Jurisdiction::Kz, "599.1", at(2025, 9, 1), CaseState::Paid),
            earlier(
                Jurisdiction::Kz,
                "599.1",
                at(2025, 11, 1),
                CaseState::Annulled,
            ),
        ];
        let found = earlier_penalty(&kz, "599.1", at(2026, 1, 1), &history);
        assert_eq!(found.map(|r| r.issued_at), Some(at(2025, 9, 1)));
        assert_eq!(earlier_penalty(&kz, "599.1", at(2026, 1, 1), &[]), None);
    }

    #[test]
    fn the_window_is_data() {
        let kz = Catalogue::bundled(Jurisdiction::Kz);
        let kg = Catalogue::bundled(Jurisdiction::Kg);
        assert_eq!(kz.repeat_window.months, 12);
        assert!(!kz.repeat_window.unconfirmed);
        assert!(
            kg.repeat_window.unconfirmed,
            "the KG Code was not reachable"
        );
    }
}
