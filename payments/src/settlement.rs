//! What a payment does to a fine: how much is due on a given day (the discounted amount
//! while its window is open, the full amount after), and whether a payment settles
//! the fine, settles it at the discount, or leaves a remainder. Pure: the ledger in
//! the store applies it inside the transaction that records the payment.
//!
//! Each payment belongs to the day its payer paid (the bank's date), not to the day the
//! report reached kozomol: a payment made on the last day of the window and reported a
//! day later, or reported after a later one, still counts as made within the window.
//! Before delivery is proven no window has started, so every payment is within it. The
//! discount is earned when the money paid on days within the window reaches the
//! discounted amount; otherwise everything paid counts towards the full amount.
//!
//! An appeal forfeits the discount from the moment it is filed: money paid before it
//! keeps what it earned (a fine paid at the discount and then appealed in vain stays
//! paid), money paid after it counts towards the full amount only.

use chrono::{DateTime, NaiveDate, Utc};
use kozomol_core::Money;

/// What a resolution asks for, as issued and as its clocks date it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub amount: Money,
    /// The amount if paid within the window; `None` where the law grants no discount.
    pub discounted: Option<Money>,
    /// The last day of the window; `None` until delivery is proven (the window has
    /// not started).
    pub discount_until: Option<NaiveDate>,
    /// When the first appeal was filed: the discount is forfeited for money paid from
    /// then on.
    pub forfeited_from: Option<DateTime<Utc>>,
}

/// What was paid towards a fine: in all, and on days within the discount's window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaidSoFar {
    pub total: i64,
    pub within_window: i64,
}

impl Due {
    /// Whether the fine still offers a discount: the law grants one and no appeal
    /// forfeited it.
    pub fn offers_discount(&self) -> bool {
        self.discounted.is_some() && self.forfeited_from.is_none()
    }

    /// Whether money paid at `paid_at`, on `day` (its local day), earns the discount:
    /// the law grants one, `day` is within its window, and no appeal was filed before.
    fn earns_discount(&self, paid_at: DateTime<Utc>, day: NaiveDate) -> bool {
        self.discounted.is_some()
            && self.discount_until.is_none_or(|until| day <= until)
            && self.forfeited_from.is_none_or(|from| paid_at < from)
    }

    /// `paid` with one more payment of `minor` paid at `paid_at`, on `day` (its local
    /// day in the fine's jurisdiction).
    pub fn with_payment(
        &self,
        paid: PaidSoFar,
        minor: i64,
        paid_at: DateTime<Utc>,
        day: NaiveDate,
    ) -> PaidSoFar {
        let earned = if self.earns_discount(paid_at, day) {
            minor
        } else {
            0
        };
        PaidSoFar {
            total: paid.total.saturating_add(minor),
            within_window: paid.within_window.saturating_add(earned),
        }
    }

    /// What `payments` — each (minor units, paid at, its local day) — paid towards the
    /// fine.
    pub fn paid_by(
        &self,
        payments: impl IntoIterator<Item = (i64, DateTime<Utc>, NaiveDate)>,
    ) -> PaidSoFar {
        payments
            .into_iter()
            .fold(PaidSoFar::default(), |paid, (minor, at, day)| {
                self.with_payment(paid, minor, at, day)
            })
    }

    /// What a payment made at `paid_at`, on `day`, must bring to settle the fine after
    /// `paid`: the rest of the discounted amount while that payment earns it (or of the
    /// full amount, if that is less), the rest of the full amount otherwise; zero once
    /// settled (also at the discount by money paid before the window closed or an
    /// appeal was filed).
    pub fn outstanding(&self, paid: PaidSoFar, paid_at: DateTime<Utc>, day: NaiveDate) -> i64 {
        if !matches!(self.settlement(paid), Settlement::PartiallyPaid { .. }) {
            return 0;
        }
        let full = self.amount.minor - paid.total;
        let owed = match self.discounted {
            Some(discounted) if self.earns_discount(paid_at, day) => {
                full.min(discounted.minor - paid.within_window)
            }
            _ => full,
        };
        owed.max(0)
    }

    /// Where `paid` leaves the fine.
    pub fn settlement(&self, paid: PaidSoFar) -> Settlement {
        match self.discounted {
            Some(discounted) if paid.within_window >= discounted.minor => {
                Settlement::PaidDiscounted {
                    excess: paid.total - discounted.minor,
                }
            }
            _ if paid.total >= self.amount.minor => Settlement::Paid {
                excess: paid.total - self.amount.minor,
            },
            _ => Settlement::PartiallyPaid {
                outstanding: self.amount.minor - paid.total,
            },
        }
    }
}

/// Where the payments made so far leave a fine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Settled at the full amount; `excess` paid beyond it (to be refunded).
    Paid { excess: i64 },
    /// Settled at the discounted amount, paid within its window; `excess` beyond it.
    PaidDiscounted { excess: i64 },
    /// Not settled: `outstanding` of the full amount remains (less while the
    /// discount's window is open: [`Due::outstanding`]).
    PartiallyPaid { outstanding: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettlementError {
    #[error("a payment in {paid} cannot pay a fine in {due}")]
    Currency {
        paid: kozomol_core::Currency,
        due: kozomol_core::Currency,
    },
    #[error("a payment must be above zero, not {0}")]
    NotPositive(i64),
    #[error("a payment of {0} minor units is no fine's: at most {MAX_PAYMENT_MINOR}")]
    TooLarge(i64),
}

/// The most one payment may bring, in minor units (ten trillion major units): far
/// beyond any fine, and low enough that the sums of a fine's payments, a day's or a
/// statement's never overflow.
pub const MAX_PAYMENT_MINOR: i64 = 1_000_000_000_000_000;

/// Whether `payment` can pay the fine at all: its currency, and more than nothing.
pub fn check_payment(due: &Due, payment: Money) -> Result<(), SettlementError> {
    if payment.currency != due.amount.currency {
        return Err(SettlementError::Currency {
            paid: payment.currency,
            due: due.amount.currency,
        });
    }
    if payment.minor <= 0 {
        return Err(SettlementError::NotPositive(payment.minor));
    }
    if payment.minor > MAX_PAYMENT_MINOR {
        return Err(SettlementError::TooLarge(payment.minor));
    }
    Ok(())
}

/// Applies `payment`, paid at `paid_at` on `day`, to a fine after `paid` (in its
/// currency).
pub fn settle(
    due: &Due,
    paid: PaidSoFar,
    payment: Money,
    paid_at: DateTime<Utc>,
    day: NaiveDate,
) -> Result<Settlement, SettlementError> {
    check_payment(due, payment)?;
    Ok(due.settlement(due.with_payment(paid, payment.minor, paid_at, day)))
}

#[cfg(test)]
mod tests {
    use kozomol_core::Currency;

    use super::*;

    fn som(minor: i64) -> Money {
        Money::new(minor, Currency::KGS)
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("a day")
    }

    /// 5,000 som, 2,500 within the window to 15 March.
    fn kg_speeding(until: Option<NaiveDate>) -> Due {
        Due {
            amount: som(500_000),
            discounted: Some(som(250_000)),
            discount_until: until,
            forfeited_from: None,
        }
    }

    /// Noon (UTC) on `day`.
    fn noon(day: NaiveDate) -> DateTime<Utc> {
        day.and_hms_opt(12, 0, 0).expect("noon").and_utc()
    }

    /// Paid so far: all of it within the window.
    fn within(minor: i64) -> PaidSoFar {
        PaidSoFar {
            total: minor,
            within_window: minor,
        }
    }

    /// Paid so far: none of it within the window.
    fn late(minor: i64) -> PaidSoFar {
        PaidSoFar {
            total: minor,
            within_window: 0,
        }
    }

    #[test]
    fn payments_settle_as_the_day_and_the_amount_say() {
        let window = kg_speeding(Some(day(15)));
        let no_discount = Due {
            discounted: None,
            ..window
        };
        // (due, paid before, paid now, day, settlement)
        let cases = [
            // Within the window, the discounted amount settles it; on its last day too.
            (
                window,
                within(0),
                250_000,
                day(10),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            (
                window,
                within(0),
                250_000,
                day(15),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            // A day late, the same money is a part payment of the full amount.
            (
                window,
                within(0),
                250_000,
                day(16),
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            (
                window,
                within(0),
                500_000,
                day(16),
                Settlement::Paid { excess: 0 },
            ),
            // Paying the full amount within the window overpays the discounted one.
            (
                window,
                within(0),
                500_000,
                day(10),
                Settlement::PaidDiscounted { excess: 250_000 },
            ),
            // Earlier money within the window counts towards the discount.
            (
                window,
                within(100_000),
                150_000,
                day(12),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            (
                window,
                within(100_000),
                100_000,
                day(12),
                Settlement::PartiallyPaid {
                    outstanding: 300_000,
                },
            ),
            // ... and all money towards the full amount after the window.
            (
                window,
                within(250_000),
                250_000,
                day(20),
                Settlement::PaidDiscounted { excess: 250_000 },
            ),
            (
                window,
                late(250_000),
                250_000,
                day(20),
                Settlement::Paid { excess: 0 },
            ),
            (
                window,
                late(250_000),
                250_001,
                day(20),
                Settlement::Paid { excess: 1 },
            ),
            // Reported out of order: money paid late does not earn the discount for
            // money paid in time...
            (
                window,
                late(100_000),
                150_000,
                day(10),
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            // ... and money paid in time, reported after later money, is still taken.
            (
                window,
                late(250_000),
                100_000,
                day(10),
                Settlement::PartiallyPaid {
                    outstanding: 150_000,
                },
            ),
            // Before delivery no window has started: the discount applies.
            (
                kg_speeding(None),
                within(0),
                250_000,
                day(1),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            // Where the law grants none, only the full amount settles.
            (
                no_discount,
                within(0),
                250_000,
                day(1),
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            (
                no_discount,
                within(0),
                500_000,
                day(1),
                Settlement::Paid { excess: 0 },
            ),
            // One tyiyn short is short.
            (
                window,
                within(0),
                249_999,
                day(1),
                Settlement::PartiallyPaid {
                    outstanding: 250_001,
                },
            ),
        ];
        for (due, before, now, on, want) in cases {
            assert_eq!(
                settle(&due, before, som(now), noon(on), on),
                Ok(want),
                "{before:?} + {now} on {on} of {due:?}"
            );
        }
    }

    #[test]
    fn outstanding_follows_the_window() {
        let due = kg_speeding(Some(day(15)));
        for (before, on, want) in [
            (within(0), day(15), 250_000),
            (within(0), day(16), 500_000),
            (within(100_000), day(1), 150_000),
            (within(300_000), day(1), 0),
            // Settled at the discount within the window: nothing, also after it.
            (within(300_000), day(16), 0),
            (within(100_000), day(16), 400_000),
            // Late money counts only towards the full amount, whichever is less.
            (late(100_000), day(1), 250_000),
            (late(400_000), day(1), 100_000),
        ] {
            assert_eq!(
                due.outstanding(before, noon(on), on),
                want,
                "{before:?} on {on}"
            );
        }
    }

    #[test]
    fn an_appeal_forfeits_the_discount_for_money_paid_after_it_was_filed() {
        let appealed_at = noon(day(12));
        let due = Due {
            forfeited_from: Some(appealed_at),
            ..kg_speeding(Some(day(15)))
        };
        let second = chrono::Duration::seconds(1);
        // (paid before, paid now, paid at, settlement)
        let cases = [
            // Paid at the discount before the appeal: it stays paid at the discount.
            (
                within(0),
                250_000,
                appealed_at - second,
                Settlement::PaidDiscounted { excess: 0 },
            ),
            // The same money from the moment of filing, within the window: a part.
            (
                within(0),
                250_000,
                appealed_at,
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            // Half the discount before, the rest after: the full amount is owed.
            (
                within(125_000),
                125_000,
                appealed_at + second,
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            (
                within(125_000),
                375_000,
                appealed_at + second,
                Settlement::Paid { excess: 0 },
            ),
        ];
        for (before, now, at, want) in cases {
            let on = at.date_naive();
            assert_eq!(
                settle(&due, before, som(now), at, on),
                Ok(want),
                "{before:?} + {now} at {at}"
            );
        }
        // What a payment must bring: before the filing the rest of the discount, from
        // it the rest of the full amount.
        for (before, at, want) in [
            (within(125_000), appealed_at - second, 125_000),
            (within(125_000), appealed_at, 375_000),
            (within(0), appealed_at + second, 500_000),
            (within(250_000), appealed_at + second, 0),
        ] {
            assert_eq!(
                due.outstanding(before, at, at.date_naive()),
                want,
                "{before:?} at {at}"
            );
        }
    }

    #[test]
    fn foreign_money_and_nothing_are_refused() {
        let due = kg_speeding(None);
        assert_eq!(
            settle(
                &due,
                within(0),
                Money::new(250_000, Currency::KZT),
                noon(day(1)),
                day(1)
            ),
            Err(SettlementError::Currency {
                paid: Currency::KZT,
                due: Currency::KGS
            })
        );
        for minor in [0, -1] {
            assert_eq!(
                settle(&due, within(0), som(minor), noon(day(1)), day(1)),
                Err(SettlementError::NotPositive(minor))
            );
        }
        assert!(settle(
            &due,
            within(0),
            som(MAX_PAYMENT_MINOR),
            noon(day(1)),
            day(1)
        )
        .is_ok());
        for minor in [MAX_PAYMENT_MINOR + 1, i64::MAX] {
            assert_eq!(
                settle(&due, within(0), som(minor), noon(day(1)), day(1)),
                Err(SettlementError::TooLarge(minor))
            );
        }
    }
}
