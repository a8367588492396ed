//! What a payment does to a fine: how much is due on a given day (the discounted amount
//! while its window is open, the full amount after), and whether a payment settles
//! the fine, settles it at the discount, or leaves a remainder. Pure: the ledger in
//! the store applies it inside the transaction that records the payment.
//!
//! The discount belongs to the day the payer paid (the bank's date), not to the day
//! the payment reached kozomol: a payment made on the last day of the window and
//! reported a day later still earns it. Before delivery is proven no window has
//! started, so the discount applies. It is earned only when the discounted amount is
//! paid in full within the window; money paid earlier counts towards it.

use chrono::NaiveDate;
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
}

impl Due {
    /// Whether a payment made on `day` is within the discount's window.
    pub fn discount_applies(&self, day: NaiveDate) -> bool {
        self.discounted.is_some() && self.discount_until.is_none_or(|until| day <= until)
    }

    /// The whole amount a payment on `day` must reach, before anything paid earlier.
    pub fn target(&self, day: NaiveDate) -> Money {
        match self.discounted {
            Some(discounted) if self.discount_applies(day) => discounted,
            _ => self.amount,
        }
    }

    /// What is left to pay on `day`, after `paid_before` (in the fine's currency);
    /// zero once settled.
    pub fn outstanding(&self, paid_before: i64, day: NaiveDate) -> i64 {
        (self.target(day).minor - paid_before).max(0)
    }
}

/// What one more payment made of the fine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Settled at the full amount; `excess` paid beyond it (to be refunded).
    Paid { excess: i64 },
    /// Settled at the discounted amount, within its window.
    PaidDiscounted { excess: i64 },
    /// Not settled: `outstanding` remains, as of the payment's day.
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
}

/// Applies `payment`, made on `day`, to a fine of which `paid_before` (minor units,
/// its currency) was paid already.
pub fn settle(
    due: &Due,
    paid_before: i64,
    payment: Money,
    day: NaiveDate,
) -> Result<Settlement, SettlementError> {
    if payment.currency != due.amount.currency {
        return Err(SettlementError::Currency {
            paid: payment.currency,
            due: due.amount.currency,
        });
    }
    if payment.minor <= 0 {
        return Err(SettlementError::NotPositive(payment.minor));
    }
    let total = paid_before.saturating_add(payment.minor);
    let target = due.target(day);
    Ok(if total < target.minor {
        Settlement::PartiallyPaid {
            outstanding: target.minor - total,
        }
    } else if Some(target) == due.discounted && due.discount_applies(day) {
        Settlement::PaidDiscounted {
            excess: total - target.minor,
        }
    } else {
        Settlement::Paid {
            excess: total - target.minor,
        }
    })
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
                0,
                250_000,
                day(10),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            (
                window,
                0,
                250_000,
                day(15),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            // A day late, the same money is a part payment of the full amount.
            (
                window,
                0,
                250_000,
                day(16),
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            (window, 0, 500_000, day(16), Settlement::Paid { excess: 0 }),
            // Paying the full amount within the window overpays the discounted one.
            (
                window,
                0,
                500_000,
                day(10),
                Settlement::PaidDiscounted { excess: 250_000 },
            ),
            // Earlier money counts towards the discount.
            (
                window,
                100_000,
                150_000,
                day(12),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            (
                window,
                100_000,
                100_000,
                day(12),
                Settlement::PartiallyPaid {
                    outstanding: 50_000,
                },
            ),
            // ... and towards the full amount after the window.
            (
                window,
                250_000,
                250_000,
                day(20),
                Settlement::Paid { excess: 0 },
            ),
            (
                window,
                250_000,
                250_001,
                day(20),
                Settlement::Paid { excess: 1 },
            ),
            // Before delivery no window has started: the discount applies.
            (
                kg_speeding(None),
                0,
                250_000,
                day(1),
                Settlement::PaidDiscounted { excess: 0 },
            ),
            // Where the law grants none, only the full amount settles.
            (
                no_discount,
                0,
                250_000,
                day(1),
                Settlement::PartiallyPaid {
                    outstanding: 250_000,
                },
            ),
            (
                no_discount,
                0,
                500_000,
                day(1),
                Settlement::Paid { excess: 0 },
            ),
            // One tyiyn short is short.
            (
                window,
                0,
                249_999,
                day(1),
                Settlement::PartiallyPaid { outstanding: 1 },
            ),
        ];
        for (due, before, now, on, want) in cases {
            assert_eq!(
                settle(&due, before, som(now), on),
                Ok(want),
                "{before} + {now} on {on} of {due:?}"
            );
        }
    }

    #[test]
    fn outstanding_follows_the_window() {
        let due = kg_speeding(Some(day(15)));
        for (before, on, want) in [
            (0, day(15), 250_000),
            (0, day(16), 500_000),
            (100_000, day(1), 150_000),
            (300_000, day(1), 0),
            (300_000, day(16), 200_000),
        ] {
            assert_eq!(due.outstanding(before, on), want, "{before} on {on}");
        }
    }

    #[test]
    fn foreign_money_and_nothing_are_refused() {
        let due = kg_speeding(None);
        assert_eq!(
            settle(&due, 0, Money::new(250_000, Currency::KZT), day(1)),
            Err(SettlementError::Currency {
                paid: Currency::KZT,
                due: Currency::KGS
            })
        );
        for minor in [0, -1] {
            assert_eq!(
                settle(&due, 0, som(minor), day(1)),
                Err(SettlementError::NotPositive(minor))
            );
        }
    }
}
