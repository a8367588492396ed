//! Bank statements of the city's account, read into the credits they list: ISO 20022
//! `camt.053` (any `camt.053.001.xx`, read by namespace URI) and kozomol's CSV layout.
//! A statement is taken whole or not at all: every problem is reported with its line
//! or entry, so finance gets the file fixed rather than half of it posted. A camt.053
//! debit marked as a reversal (`CdtDbtInd` `DBIT` with `RvslInd`) is a credit the bank
//! took back: it is read as credits are, into [`Statement::reversals`]. Other debits,
//! reversed debits and entries not yet booked are counted and left out. Pure: the store
//! matches the credits to fines.
//!
//! CSV: UTF-8 (a byte-order mark is skipped), comma- or semicolon-separated (the
//! header's first separator decides), RFC 4180 quoting, a header naming the columns
//! in any order: `booking_date` (`YYYY-MM-DD` or `DD.MM.YYYY`), `amount` (major units,
//! `.` or, with `;` separators, `,` as the decimal mark; negative for a debit),
//! `currency`, `reference` (the bank's unique id of the entry), `remittance` (the
//! payer's text, where the payment code is), and optionally `payer` and `paid_date`
//! (the day the payer paid, as `booking_date` is written).
//!
//! When the payer paid (camt: a transaction's `RltdDts/AccptncDtTm`, the payer's bank
//! accepting it, an instant whose day is the jurisdiction's; CSV: the day) is kept where
//! its day is the booking day or up to [`BOOKING_LAG_DAYS`] before it
//! ([`StatementCredit::paid_on`]): money paid on a discount's last day and booked the
//! next keeps the discount. A day further back is not taken (the booking day stands);
//! a CSV `paid_date` that is no day, or after the booking, is a problem of the file.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use kozomol_core::{Currency, Jurisdiction, Money};

use crate::decimal::parse_decimal;

/// One credit to the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementCredit {
    /// The bank's own id of the entry, unique within the account.
    pub bank_reference: String,
    pub booked_on: NaiveDate,
    /// When the payer paid, where the statement says ([`StatementCredit::paid_on`]).
    pub paid: Option<PayerTime>,
    pub amount: Money,
    /// What the payer wrote: the payment code is looked for here.
    pub remittance: String,
    pub payer: Option<String>,
}

/// When a statement says the payer paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayerTime {
    /// An instant with its offset (camt's `AccptncDtTm`): its day is the jurisdiction's.
    Instant(DateTime<Utc>),
    /// A day (CSV's `paid_date`, or a date-time written without an offset): as written.
    Day(NaiveDate),
}

impl StatementCredit {
    /// The day the payer paid on `jurisdiction`'s calendar, where the statement says
    /// and it could be this money's day ([`paid_day`]).
    pub fn paid_on(&self, jurisdiction: Jurisdiction) -> Option<NaiveDate> {
        let stated = self.paid.map(|paid| match paid {
            PayerTime::Instant(at) => jurisdiction.local_date(at),
            PayerTime::Day(day) => day,
        });
        paid_day(stated, self.booked_on)
    }
}

/// A statement as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The account's id (IBAN or the bank's number); for CSV, as the importer names it.
    pub account: String,
    /// The bank's id of the statement; for CSV, the file's SHA-256.
    pub id: String,
    pub credits: Vec<StatementCredit>,
    /// Credits the bank took back (camt.053 only), read as the credits they reverse
    /// are: the money named left the account.
    pub reversals: Vec<StatementCredit>,
    /// Debits, reversed debits and entries not booked, left out.
    pub skipped: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("the statement is not UTF-8")]
    NotText,
    #[error("the statement is not XML: {0}")]
    NotXml(String),
    #[error("not a camt.053 statement (the root is {0})")]
    NotCamt053(String),
    #[error("the statement lists no entries and no header")]
    Empty,
    #[error("the statement has problems: {}", .0.join("; "))]
    Problems(Vec<String>),
}

/// How many days after the payer paid the bank may book the money on the city's
/// account (weekends and holidays in between).
pub const BOOKING_LAG_DAYS: u64 = 5;

/// Whether money booked on `booked_on` can be the payment a bank or provider reported
/// as paid on `paid_on` (the same amount and fine): booked that day or within
/// [`BOOKING_LAG_DAYS`] after, never before.
pub fn books_the_payment(paid_on: NaiveDate, booked_on: NaiveDate) -> bool {
    booked_on >= paid_on
        && paid_on
            .checked_add_days(chrono::Days::new(BOOKING_LAG_DAYS))
            .is_none_or(|last| booked_on <= last)
}

/// The day a statement says the payer paid, taken where the money could be that day's
/// payment ([`books_the_payment`]); another day is the bank's mistake, not the payer's
/// day, and the booking day stands.
pub fn paid_day(stated: Option<NaiveDate>, booked_on: NaiveDate) -> Option<NaiveDate> {
    stated.filter(|paid_on| books_the_payment(*paid_on, booked_on))
}

/// `YYYY-MM-DD` or `DD.MM.YYYY`, as statements write days.
fn statement_day(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(text, "%d.%m.%Y"))
        .ok()
}

/// An ISO date-time: with an offset (or `Z`) an instant; without one, or a bare date,
/// the day as written.
fn payer_time(text: &str) -> Option<PayerTime> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(PayerTime::Instant(at.with_timezone(&Utc)));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .map(|at| at.date())
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .ok()
        .map(PayerTime::Day)
}

/// The most lines or entries one statement may hold.
pub const MAX_STATEMENT_CREDITS: usize = 100_000;

fn reference_ok(text: &str) -> bool {
    !text.is_empty() && text.len() <= 140
}

/// Reads kozomol's CSV layout; `account` names the account, `id` the file.
pub fn parse_csv(bytes: &[u8], account: &str, id: &str) -> Result<Statement, StatementError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StatementError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let header_line = text.lines().next().ok_or(StatementError::Empty)?;
    let separator = header_line
        .chars()
        .find(|c| *c == ',' || *c == ';')
        .unwrap_or(',');
    let rows = csv_rows(text, separator).map_err(|e| StatementError::Problems(vec![e]))?;
    let mut rows = rows.into_iter();
    let (_, header) = rows.next().ok_or(StatementError::Empty)?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let mut problems = Vec::new();
    let mut required = |name: &str| {
        let found = column(name);
        if found.is_none() {
            problems.push(format!("the header has no `{name}` column"));
        }
        found.unwrap_or(0)
    };
    let (date_at, amount_at, currency_at, reference_at, remittance_at) = (
        required("booking_date"),
        required("amount"),
        required("currency"),
        required("reference"),
        required("remittance"),
    );
    let payer_at = column("payer");
    let paid_at = column("paid_date");
    if !problems.is_empty() {
        return Err(StatementError::Problems(problems));
    }
    let mut credits = Vec::new();
    let mut skipped = 0;
    for (line, row) in rows {
        if row.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if row.len() != header.len() {
            problems.push(format!(
                "line {line}: {} fields, the header has {}",
                row.len(),
                header.len()
            ));
            continue;
        }
        let field = |at: usize| row[at].trim();
        let booked_on = NaiveDate::parse_from_str(field(date_at), "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(field(date_at), "%d.%m.%Y"));
        let currency: Result<Currency, _> = field(currency_at).parse();
        let amount_text = if separator == ';' {
            field(amount_at).replace(',', ".")
        } else {
            field(amount_at).to_owned()
        };
        let reference = field(reference_at);
        if let Some(at) = paid_at.filter(|at| !field(*at).is_empty()) {
            match (statement_day(field(at)), &booked_on) {
                (None, _) => problems.push(format!(
                    "line {line}: paid_date `{}` is not YYYY-MM-DD or DD.MM.YYYY",
                    clip(field(at))
                )),
                (Some(paid), Ok(booked)) if paid > *booked => problems.push(format!(
                    "line {line}: paid_date {paid} is after booking_date {booked}"
                )),
                _ => {}
            }
        }
        match (booked_on, currency) {
            (Err(_), _) => problems.push(format!(
                "line {line}: booking_date `{}` is not YYYY-MM-DD or DD.MM.YYYY",
                clip(field(date_at))
            )),
            (_, Err(_)) => problems.push(format!(
                "line {line}: currency `{}` is not KGS or KZT",
                clip(field(currency_at))
            )),
            (Ok(booked_on), Ok(currency)) => match parse_decimal(&amount_text, currency) {
                Err(e) => problems.push(format!("line {line}: amount {e}")),
                Ok(amount) if amount.minor <= 0 => skipped += 1,
                Ok(_) if !reference_ok(reference) => problems.push(format!(
                    "line {line}: reference must be 1 to 140 characters"
                )),
                Ok(amount) => credits.push(StatementCredit {
                    bank_reference: reference.to_owned(),
                    booked_on,
                    paid: paid_at
                        .and_then(|at| statement_day(field(at)))
                        .map(PayerTime::Day),
                    amount,
                    remittance: field(remittance_at).to_owned(),
                    payer: payer_at
                        .map(|at| field(at).to_owned())
                        .filter(|p| !p.is_empty()),
                }),
            },
        }
    }
    finish(account, id, credits, Vec::new(), skipped, problems)
}

fn finish(
    account: &str,
    id: &str,
    credits: Vec<StatementCredit>,
    reversals: Vec<StatementCredit>,
    skipped: usize,
    mut problems: Vec<String>,
) -> Result<Statement, StatementError> {
    if credits.len() + reversals.len() > MAX_STATEMENT_CREDITS {
        problems.push(format!(
            "{} credits and reversals: at most {MAX_STATEMENT_CREDITS} per statement",
            credits.len() + reversals.len()
        ));
    }
    // Apart: a bank may give a reversal the reference of the credit it takes back.
    for entries in [&credits, &reversals] {
        let mut seen = std::collections::HashSet::new();
        for credit in entries {
            if !seen.insert(credit.bank_reference.as_str()) {
                problems.push(format!(
                    "reference `{}` is listed twice",
                    clip(&credit.bank_reference)
                ));
            }
        }
    }
    if account.trim().is_empty() {
        problems.push("the statement names no account".into());
    }
    if !problems.is_empty() {
        problems.truncate(50);
        return Err(StatementError::Problems(problems));
    }
    Ok(Statement {
        // One account however a statement spells it (`KG12 BANK …` and `kg12bank…`).
        account: account
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect(),
        id: id.to_owned(),
        credits,
        reversals,
        skipped,
    })
}

/// RFC 4180 rows with the line each starts on (1-based).
fn csv_rows(text: &str, separator: char) -> Result<Vec<(usize, Vec<String>)>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, c) if c == separator => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {row_line}: a quoted field is not closed"));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((row_line, row));
    }
    Ok(rows)
}

fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

const CAMT053_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:camt.053.";

/// Elements of one camt namespace, by name.
struct Camt<'n> {
    ns: &'n str,
}

impl Camt<'_> {
    fn children<'a, 'i>(
        &self,
        node: roxmltree::Node<'a, 'i>,
        name: &'static str,
    ) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + use<'a, 'i, '_> {
        node.children().filter(move |c| {
            c.is_element()
                && c.tag_name().name() == name
                && c.tag_name().namespace() == Some(self.ns)
        })
    }

    fn child<'a, 'i>(
        &self,
        node: roxmltree::Node<'a, 'i>,
        name: &str,
    ) -> Option<roxmltree::Node<'a, 'i>> {
        node.children().find(|c| {
            c.is_element()
                && c.tag_name().name() == name
                && c.tag_name().namespace() == Some(self.ns)
        })
    }

    fn path<'a, 'i>(
        &self,
        node: roxmltree::Node<'a, 'i>,
        names: &[&str],
    ) -> Option<roxmltree::Node<'a, 'i>> {
        names.iter().try_fold(node, |at, name| self.child(at, name))
    }

    /// The trimmed text at `names` under `node`, if any.
    fn text(&self, node: roxmltree::Node<'_, '_>, names: &[&str]) -> Option<String> {
        self.path(node, names)
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    }
}

/// Reads an ISO 20022 `camt.053` statement: its booked credit entries, one credit per
/// transaction of a batch-booked entry. A booking written as an instant (`DtTm` with
/// an offset) is booked on its day on `jurisdiction`'s calendar.
pub fn parse_camt053(
    bytes: &[u8],
    jurisdiction: Jurisdiction,
) -> Result<Statement, StatementError> {
    let text = std::str::from_utf8(bytes).map_err(|_| StatementError::NotText)?;
    let doc =
        roxmltree::Document::parse(text).map_err(|e| StatementError::NotXml(e.to_string()))?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    if root.tag_name().name() != "Document" || !ns.starts_with(CAMT053_PREFIX) {
        return Err(StatementError::NotCamt053(format!(
            "{{{ns}}}{}",
            root.tag_name().name()
        )));
    }
    let camt = Camt { ns };
    let statements: Vec<_> = camt
        .path(root, &["BkToCstmrStmt"])
        .map(|report| camt.children(report, "Stmt").collect())
        .unwrap_or_default();
    let statement = match statements.as_slice() {
        [one] => *one,
        [] => {
            return Err(StatementError::Problems(vec![
                "no BkToCstmrStmt/Stmt".into()
            ]))
        }
        several => {
            return Err(StatementError::Problems(vec![format!(
                "{} statements in one file: import each on its own",
                several.len()
            )]))
        }
    };
    let account = camt
        .text(statement, &["Acct", "Id", "IBAN"])
        .or_else(|| camt.text(statement, &["Acct", "Id", "Othr", "Id"]))
        .unwrap_or_default();
    let id = camt.text(statement, &["Id"]).unwrap_or_default();
    let mut problems = Vec::new();
    if id.is_empty() {
        problems.push("the statement has no Id".into());
    }
    let mut credits = Vec::new();
    let mut reversals = Vec::new();
    let mut skipped = 0;
    let entries = camt.children(statement, "Ntry");
    for (n, entry) in entries.enumerate() {
        let at = format!("entry {}", n + 1);
        // camt.053.001.02 writes the status as text, later versions as `Sts/Cd`.
        let status = camt
            .text(entry, &["Sts", "Cd"])
            .or_else(|| camt.text(entry, &["Sts"]));
        let direction = camt.text(entry, &["CdtDbtInd"]);
        let reversal = camt
            .text(entry, &["RvslInd"])
            .is_some_and(|r| r == "true" || r == "1");
        // A credit, or a credit taken back (a debit marking the reversal of one).
        let (found, indicator) = match (direction.as_deref(), reversal) {
            (Some("CRDT"), false) => (&mut credits, "CRDT"),
            (Some("DBIT"), true) => (&mut reversals, "DBIT"),
            _ => {
                skipped += 1;
                continue;
            }
        };
        if status.as_deref() != Some("BOOK") {
            skipped += 1;
            continue;
        }
        let booked_on = camt
            .text(entry, &["BookgDt", "Dt"])
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
            .or_else(|| {
                camt.text(entry, &["BookgDt", "DtTm"])
                    .and_then(|t| payer_time(&t))
                    .map(|at| match at {
                        PayerTime::Instant(at) => jurisdiction.local_date(at),
                        PayerTime::Day(day) => day,
                    })
            });
        let Some(booked_on) = booked_on else {
            problems.push(format!("{at}: no booking date (BookgDt/Dt)"));
            continue;
        };
        let entry_reference = camt
            .text(entry, &["AcctSvcrRef"])
            .or_else(|| camt.text(entry, &["NtryRef"]));
        // Every transaction of every NtryDtls block of the entry.
        let transactions: Vec<_> = camt
            .children(entry, "NtryDtls")
            .flat_map(|details| camt.children(details, "TxDtls"))
            .collect();
        let amount_of =
            |node: roxmltree::Node<'_, '_>, names: &[&str]| -> Option<Result<Money, String>> {
                let amount = camt.path(node, names)?;
                let currency = amount.attribute("Ccy").unwrap_or("");
                Some(match currency.parse::<Currency>() {
                    Err(_) => Err(format!("currency `{}` is not KGS or KZT", clip(currency))),
                    Ok(currency) => parse_decimal(amount.text().unwrap_or(""), currency)
                        .map_err(|e| format!("amount {e}")),
                })
            };
        let remittance_of = |node: roxmltree::Node<'_, '_>| {
            camt.path(node, &["RmtInf"])
                .map(|rmt| {
                    rmt.children()
                        .filter(|c| c.is_element() && c.tag_name().name() == "Ustrd")
                        .filter_map(|c| c.text())
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        };
        let paid_of = |node: roxmltree::Node<'_, '_>| {
            camt.text(node, &["RltdDts", "AccptncDtTm"])
                .and_then(|t| payer_time(&t))
        };
        let payer_of = |node: roxmltree::Node<'_, '_>| {
            camt.text(node, &["RltdPties", "Dbtr", "Nm"])
                .or_else(|| camt.text(node, &["RltdPties", "Dbtr", "Pty", "Nm"]))
        };
        let entry_amount = match amount_of(entry, &["Amt"]) {
            Some(Ok(amount)) if amount.minor > 0 => amount,
            Some(Ok(_)) => {
                problems.push(format!("{at}: a credit of nothing or less"));
                continue;
            }
            Some(Err(e)) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
            None => {
                problems.push(format!("{at}: no Amt"));
                continue;
            }
        };
        if transactions.len() <= 1 {
            let detail = transactions.first().copied();
            let amount = entry_amount;
            let reference = entry_reference
                .clone()
                .or_else(|| detail.and_then(|d| camt.text(d, &["Refs", "AcctSvcrRef"])));
            let Some(reference) = reference.filter(|r| reference_ok(r)) else {
                problems.push(format!(
                    "{at}: no reference of 1 to 140 characters (AcctSvcrRef)"
                ));
                continue;
            };
            found.push(StatementCredit {
                bank_reference: reference,
                booked_on,
                paid: detail.and_then(paid_of),
                amount,
                remittance: detail.map(remittance_of).unwrap_or_default(),
                payer: detail.and_then(payer_of),
            });
            continue;
        }
        // A batch: each transaction is a payment of its own, and together they are the
        // entry's amount.
        let mut batch_total = Some(0i64);
        let found_before = found.len();
        for (t, detail) in transactions.iter().enumerate() {
            let at = format!("{at}, transaction {}", t + 1);
            if camt
                .text(*detail, &["CdtDbtInd"])
                .is_some_and(|own| own != indicator)
            {
                problems.push(format!(
                    "{at}: {}",
                    if indicator == "CRDT" {
                        "a debit inside a credit entry"
                    } else {
                        "a credit inside the entry of a reversal"
                    }
                ));
                continue;
            }
            let amount = match amount_of(*detail, &["Amt"])
                .or_else(|| amount_of(*detail, &["AmtDtls", "TxAmt", "Amt"]))
            {
                Some(Ok(amount))
                    if amount.minor > 0 && amount.currency == entry_amount.currency =>
                {
                    batch_total = batch_total.and_then(|t| t.checked_add(amount.minor));
                    amount
                }
                Some(Ok(_)) => {
                    problems.push(format!(
                        "{at}: not a credit in the entry's currency of more than nothing"
                    ));
                    continue;
                }
                Some(Err(e)) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
                None => {
                    problems.push(format!("{at}: no Amt"));
                    continue;
                }
            };
            let reference = camt.text(*detail, &["Refs", "AcctSvcrRef"]).or_else(|| {
                entry_reference
                    .as_ref()
                    .map(|entry| format!("{entry}/{}", t + 1))
            });
            let Some(reference) = reference.filter(|r| reference_ok(r)) else {
                problems.push(format!(
                    "{at}: no reference of 1 to 140 characters (AcctSvcrRef)"
                ));
                continue;
            };
            found.push(StatementCredit {
                bank_reference: reference,
                booked_on,
                paid: paid_of(*detail),
                amount,
                remittance: remittance_of(*detail),
                payer: payer_of(*detail),
            });
        }
        if found.len() - found_before == transactions.len()
            && batch_total != Some(entry_amount.minor)
        {
            problems.push(format!(
                "{at}: its transactions add up to {} minor units, not the entry's {}",
                batch_total.map_or("too many".to_owned(), |t| t.to_string()),
                entry_amount.minor
            ));
        }
    }
    finish(&account, &id, credits, reversals, skipped, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn som(minor: i64) -> Money {
        Money::new(minor, Currency::KGS)
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a day")
    }

    #[test]
    fn money_is_booked_on_the_day_paid_or_a_few_days_after() {
        for (paid, booked, same) in [
            ("2026-03-10", "2026-03-10", true),
            ("2026-03-10", "2026-03-11", true),
            ("2026-03-06", "2026-03-11", true),
            ("2026-03-05", "2026-03-11", false),
            ("2026-03-11", "2026-03-10", false),
            ("2026-12-30", "2027-01-04", true),
        ] {
            assert_eq!(
                books_the_payment(day(paid), day(booked)),
                same,
                "{paid} {booked}"
            );
        }
    }

    #[test]
    fn the_payers_day_is_taken_where_the_money_could_be_that_days() {
        for (stated, booked, taken) in [
            (None, "2026-03-11", None),
            (Some("2026-03-10"), "2026-03-11", Some("2026-03-10")),
            (Some("2026-03-11"), "2026-03-11", Some("2026-03-11")),
            (Some("2026-03-06"), "2026-03-11", Some("2026-03-06")),
            (Some("2026-03-05"), "2026-03-11", None),
            (Some("2026-03-12"), "2026-03-11", None),
        ] {
            assert_eq!(
                paid_day(stated.map(day), day(booked)),
                taken.map(day),
                "{stated:?} {booked}"
            );
        }
        for (text, read) in [
            ("2026-03-10", Some("2026-03-10")),
            ("10.03.2026", Some("2026-03-10")),
            ("2026-03-10T23:59:00+06:00", None),
            ("2026-03-10xyz", None),
            ("", None),
            ("yesterday", None),
        ] {
            assert_eq!(statement_day(text), read.map(day), "{text}");
        }
    }

    #[test]
    fn the_payers_instant_is_a_day_of_the_jurisdictions_calendar() {
        // (what camt says, the day in Kyrgyzstan (UTC+6), in Kazakhstan (UTC+5)); booked
        // on the 10th.
        for (stated, kg, kz) in [
            (
                "2026-03-09T18:30:00+06:00",
                Some("2026-03-09"),
                Some("2026-03-09"),
            ),
            (
                "2026-03-09T19:00:00Z",
                Some("2026-03-10"),
                Some("2026-03-10"),
            ),
            (
                "2026-03-10T00:30:00+06:00",
                Some("2026-03-10"),
                Some("2026-03-09"),
            ),
            (
                "2026-03-09T23:59:59.5+05:00",
                Some("2026-03-10"),
                Some("2026-03-09"),
            ),
            // No offset: the day as written.
            (
                "2026-03-09T23:30:00",
                Some("2026-03-09"),
                Some("2026-03-09"),
            ),
            ("2026-03-09", Some("2026-03-09"), Some("2026-03-09")),
            ("the 9th", None, None),
        ] {
            let credit = StatementCredit {
                bank_reference: "E-1".into(),
                booked_on: day("2026-03-10"),
                paid: payer_time(stated),
                amount: som(100),
                remittance: String::new(),
                payer: None,
            };
            assert_eq!(
                (
                    credit.paid_on(Jurisdiction::Kg),
                    credit.paid_on(Jurisdiction::Kz)
                ),
                (kg.map(day), kz.map(day)),
                "{stated}"
            );
        }
    }

    #[test]
    fn a_csv_statement_may_say_when_the_payer_paid() {
        let csv = "booking_date,paid_date,amount,currency,reference,remittance\n\
            2026-03-11,10.03.2026,2500,KGS,BR-1,x\n\
            2026-03-11,,2500,KGS,BR-2,x\n\
            2026-03-11,2026-03-01,2500,KGS,BR-3,x\n";
        let statement = parse_csv(csv.as_bytes(), "KG001", "sha").expect("read");
        let paid: Vec<_> = statement
            .credits
            .iter()
            .map(|c| c.paid_on(Jurisdiction::Kg))
            .collect();
        // Ten days before the booking: not this money's day, the booking day stands.
        assert_eq!(paid, [Some(day("2026-03-10")), None, None]);
        // A day that is none, or after the booking: the file is refused.
        let wrong = "booking_date,paid_date,amount,currency,reference,remittance\n\
            2026-03-11,2026/03/10,2500,KGS,BR-1,x\n\
            2026-03-11,2026-03-12,2500,KGS,BR-2,x\n";
        assert_eq!(
            parse_csv(wrong.as_bytes(), "KG001", "sha"),
            Err(StatementError::Problems(vec![
                "line 2: paid_date `2026/03/10` is not YYYY-MM-DD or DD.MM.YYYY".into(),
                "line 3: paid_date 2026-03-12 is after booking_date 2026-03-11".into(),
            ]))
        );
    }

    #[test]
    fn csv_statements_are_read_whole() {
        let comma = "booking_date,amount,currency,reference,remittance,payer\n\
            2026-03-10,2500.00,KGS,BR-1,\"Штраф, код 1126 0010 0000 1234 54\",Асанов А.\n\
            2026-03-10,-100.00,KGS,BR-2,commission,\n\
            \n\
            2026-03-11,5000,KGS,BR-3,\"a \"\"quoted\"\" text\nover two lines\",\n";
        let statement = parse_csv(comma.as_bytes(), "KG001", "sha").expect("read");
        assert_eq!(statement.skipped, 1);
        assert_eq!(
            statement.credits,
            vec![
                StatementCredit {
                    bank_reference: "BR-1".into(),
                    booked_on: day("2026-03-10"),
                    paid: None,
                    amount: som(250_000),
                    remittance: "Штраф, код 1126 0010 0000 1234 54".into(),
                    payer: Some("Асанов А.".into()),
                },
                StatementCredit {
                    bank_reference: "BR-3".into(),
                    booked_on: day("2026-03-11"),
                    paid: None,
                    amount: som(500_000),
                    remittance: "a \"quoted\" text\nover two lines".into(),
                    payer: None,
                },
            ]
        );
        // Semicolons, a decimal comma, day-first dates, a byte-order mark, columns in
        // another order and no payer column.
        let semicolon = "\u{feff}reference;remittance;amount;currency;booking_date\r\n\
            BR-9;code 112600100000123454;2500,50;KGS;10.03.2026\r\n";
        let statement = parse_csv(semicolon.as_bytes(), "KG001", "sha").expect("read");
        assert_eq!(statement.credits[0].amount, som(250_050));
        assert_eq!(statement.credits[0].booked_on, day("2026-03-10"));
        assert_eq!(statement.credits[0].payer, None);
    }

    #[test]
    fn a_csv_statement_with_problems_is_refused_with_every_one() {
        let cases: [(&str, Vec<&str>); 4] = [
            (
                "booking_date,amount,currency,reference\n",
                vec!["the header has no `remittance` column"],
            ),
            (
                "booking_date,amount,currency,reference,remittance\n\
                 2026-13-01,1.00,KGS,R1,x\n\
                 2026-03-01,1.001,KGS,R2,x\n\
                 2026-03-01,1.00,USD,R3,x\n\
                 2026-03-01,1.00,KGS,,x\n\
                 2026-03-01,1.00,KGS,R5\n\
                 2026-03-01,1.00,KGS,R6,x\n\
                 2026-03-01,2.00,KGS,R6,y\n",
                vec![
                    "line 2: booking_date `2026-13-01` is not YYYY-MM-DD or DD.MM.YYYY",
                    "line 3: amount `1.001` has more than two decimals: amounts are exact to the tyiyn",
                    "line 4: currency `USD` is not KGS or KZT",
                    "line 5: reference must be 1 to 140 characters",
                    "line 6: 4 fields, the header has 5",
                    "reference `R6` is listed twice",
                ],
            ),
            (
                "booking_date,amount,currency,reference,remittance\n2026-03-01,1.00,KGS,R1,\"open\n",
                vec!["line 2: a quoted field is not closed"],
            ),
            (
                "booking_date,amount,currency,reference,remittance\n2026-03-01,abc,KGS,R1,x\n",
                vec!["line 2: amount `abc` is not a decimal number"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_csv(text.as_bytes(), "KG001", "sha"),
                Err(StatementError::Problems(
                    want.iter().map(|s| s.to_string()).collect()
                )),
                "{text}"
            );
        }
        assert_eq!(parse_csv(b"", "KG001", "sha"), Err(StatementError::Empty));
        assert_eq!(
            parse_csv(&[0xff, 0xfe], "KG001", "sha"),
            Err(StatementError::NotText)
        );
        assert_eq!(
            parse_csv(
                b"booking_date,amount,currency,reference,remittance\n",
                " ",
                "sha"
            ),
            Err(StatementError::Problems(vec![
                "the statement names no account".into()
            ]))
        );
    }

    /// A camt.053.001.02 statement as a bank sends it: a single credit, a batch of two,
    /// a debit, a pending credit, a reversed debit and a credit taken back.
    const CAMT_V2: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>MSG-20260311</MsgId><CreDtTm>2026-03-11T06:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>STMT-2026-070</Id>
      <Acct><Id><IBAN>KG12BANK0000000001234567</IBAN></Id></Acct>
      <Ntry>
        <Amt Ccy="KGS">2500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-10</Dt></BookgDt>
        <AcctSvcrRef>E-1</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
          <RltdPties><Dbtr><Nm>Асанов Алмаз</Nm></Dbtr></RltdPties>
          <RmtInf><Ustrd>Штраф код 112600100000123454</Ustrd><Ustrd>постановление</Ustrd></RmtInf>
          <RltdDts><AccptncDtTm>2026-03-09T18:30:00+06:00</AccptncDtTm></RltdDts>
        </TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="KGS">7500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-10</Dt></BookgDt>
        <AcctSvcrRef>E-2</AcctSvcrRef>
        <NtryDtls>
          <TxDtls><Refs><AcctSvcrRef>E-2-A</AcctSvcrRef></Refs>
            <AmtDtls><TxAmt><Amt Ccy="KGS">2500.00</Amt></TxAmt></AmtDtls>
            <RmtInf><Ustrd>112600100000123454</Ustrd></RmtInf></TxDtls>
          <TxDtls>
            <Amt Ccy="KGS">5000.00</Amt>
            <RmtInf><Ustrd>fine</Ustrd></RmtInf></TxDtls>
        </NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="KGS">100.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-10</Dt></BookgDt><AcctSvcrRef>E-3</AcctSvcrRef>
      </Ntry>
      <Ntry>
        <Amt Ccy="KGS">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>PDNG</Sts>
        <BookgDt><Dt>2026-03-10</Dt></BookgDt><AcctSvcrRef>E-4</AcctSvcrRef>
      </Ntry>
      <Ntry>
        <Amt Ccy="KGS">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-10</Dt></BookgDt><AcctSvcrRef>E-5</AcctSvcrRef>
      </Ntry>
      <Ntry>
        <Amt Ccy="KGS">2500.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><RvslInd>true</RvslInd><Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-11</Dt></BookgDt><AcctSvcrRef>E-1</AcctSvcrRef>
        <NtryDtls><TxDtls>
          <RmtInf><Ustrd>Штраф код 112600100000123454</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>"#;

    #[test]
    fn camt053_credits_are_read_by_namespace() {
        let statement = parse_camt053(CAMT_V2.as_bytes(), Jurisdiction::Kg).expect("read");
        assert_eq!(statement.account, "KG12BANK0000000001234567");
        assert_eq!(statement.id, "STMT-2026-070");
        assert_eq!(statement.skipped, 3);
        let credits: Vec<(&str, i64, &str, Option<&str>)> = statement
            .credits
            .iter()
            .map(|c| {
                (
                    c.bank_reference.as_str(),
                    c.amount.minor,
                    c.remittance.as_str(),
                    c.payer.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            credits,
            vec![
                (
                    "E-1",
                    250_000,
                    "Штраф код 112600100000123454 постановление",
                    Some("Асанов Алмаз")
                ),
                ("E-2-A", 250_000, "112600100000123454", None),
                ("E-2/2", 500_000, "fine", None),
            ]
        );
        assert!(statement
            .credits
            .iter()
            .all(|c| c.booked_on == day("2026-03-10")));
        // The payer's bank took the first the evening before.
        let paid: Vec<_> = statement
            .credits
            .iter()
            .map(|c| c.paid_on(Jurisdiction::Kg))
            .collect();
        assert_eq!(paid, [Some(day("2026-03-09")), None, None]);
        // The credit the bank took back the next day, read as a credit is (under the
        // credit's own reference, as some banks number a reversal).
        let reversals: Vec<(&str, i64, &str, NaiveDate)> = statement
            .reversals
            .iter()
            .map(|r| {
                (
                    r.bank_reference.as_str(),
                    r.amount.minor,
                    r.remittance.as_str(),
                    r.booked_on,
                )
            })
            .collect();
        assert_eq!(
            reversals,
            [(
                "E-1",
                250_000,
                "Штраф код 112600100000123454",
                day("2026-03-11")
            )]
        );

        // A later version, other prefixes, the status as a code, the debtor as a party.
        let v8 = CAMT_V2
            .replace("camt.053.001.02\"", "camt.053.001.08\"")
            .replace("<Document xmlns=", "<c:Document xmlns:c=")
            .replace("</Document>", "</c:Document>")
            .replace('<', "<c:")
            .replace("<c:/", "</c:")
            .replace("<c:?xml", "<?xml")
            .replace("</c:c:", "</c:")
            .replace("<c:c:", "<c:")
            .replace("<c:Sts>BOOK</c:Sts>", "<c:Sts><c:Cd>BOOK</c:Cd></c:Sts>")
            .replace(
                "<c:Dbtr><c:Nm>Асанов Алмаз</c:Nm></c:Dbtr>",
                "<c:Dbtr><c:Pty><c:Nm>Асанов Алмаз</c:Nm></c:Pty></c:Dbtr>",
            );
        let later = parse_camt053(v8.as_bytes(), Jurisdiction::Kg).expect("read v8");
        assert_eq!(later.credits, statement.credits);
        assert_eq!(later.reversals, statement.reversals);

        // A booking written as an instant is booked on the city's day: 19:00 UTC on
        // the 9th is the 10th in Bishkek; one written without an offset, as written.
        for (written, day) in [
            ("<DtTm>2026-03-09T19:00:00Z</DtTm>", "2026-03-10"),
            ("<DtTm>2026-03-10T01:00:00+06:00</DtTm>", "2026-03-10"),
            ("<DtTm>2026-03-10T23:30:00</DtTm>", "2026-03-10"),
        ] {
            let instant = CAMT_V2.replacen(
                "<Dt>2026-03-10</Dt></BookgDt>",
                &format!("{written}</BookgDt>"),
                1,
            );
            assert_ne!(instant, CAMT_V2);
            let read = parse_camt053(instant.as_bytes(), Jurisdiction::Kg).expect("read");
            assert_eq!(read.credits[0].booked_on.to_string(), day, "{written}");
        }
    }

    #[test]
    fn camt053_problems_are_reported() {
        assert!(matches!(
            parse_camt053(
                b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.052.001.02\"/>",
                Jurisdiction::Kg
            ),
            Err(StatementError::NotCamt053(_))
        ));
        assert!(matches!(
            parse_camt053(b"<Document", Jurisdiction::Kg),
            Err(StatementError::NotXml(_))
        ));
        // Elements of another namespace are not camt's.
        let foreign = CAMT_V2.replace("<Stmt>", "<Stmt xmlns=\"urn:example\">");
        assert_eq!(
            parse_camt053(foreign.as_bytes(), Jurisdiction::Kg),
            Err(StatementError::Problems(vec![
                "no BkToCstmrStmt/Stmt".into()
            ]))
        );
        // Two statements in one file; a batch not adding up, or with a debit in it; a
        // credit of nothing.
        let two = CAMT_V2.replace("</Stmt>", "</Stmt><Stmt><Id>S2</Id></Stmt>");
        assert_eq!(
            parse_camt053(two.as_bytes(), Jurisdiction::Kg),
            Err(StatementError::Problems(vec![
                "2 statements in one file: import each on its own".into()
            ]))
        );
        let short = CAMT_V2.replace(
            "<Amt Ccy=\"KGS\">5000.00</Amt>",
            "<Amt Ccy=\"KGS\">4999.99</Amt>",
        );
        assert_eq!(
            parse_camt053(short.as_bytes(), Jurisdiction::Kg),
            Err(StatementError::Problems(vec![
                "entry 2: its transactions add up to 749999 minor units, not the entry's 750000"
                    .into()
            ]))
        );
        let debit = CAMT_V2.replace(
            "<Amt Ccy=\"KGS\">5000.00</Amt>",
            "<Amt Ccy=\"KGS\">5000.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>",
        );
        assert_eq!(
            parse_camt053(debit.as_bytes(), Jurisdiction::Kg),
            Err(StatementError::Problems(vec![
                "entry 2, transaction 2: a debit inside a credit entry".into()
            ]))
        );
        let nothing = CAMT_V2.replace(
            "<Amt Ccy=\"KGS\">2500.00</Amt><CdtDbtInd>CRDT",
            "<Amt Ccy=\"KGS\">0.00</Amt><CdtDbtInd>CRDT",
        );
        assert_eq!(
            parse_camt053(nothing.as_bytes(), Jurisdiction::Kg),
            Err(StatementError::Problems(vec![
                "entry 1: a credit of nothing or less".into()
            ]))
        );
        // An account however spelt is one account.
        let spaced = CAMT_V2.replace(
            "KG12BANK0000000001234567",
            " kg12 bank 0000 0000 0123 4567 ",
        );
        assert_eq!(
            parse_camt053(spaced.as_bytes(), Jurisdiction::Kg).map(|s| s.account),
            Ok("KG12BANK0000000001234567".to_owned())
        );
        let broken = CAMT_V2
            .replace(
                "<Dt>2026-03-10</Dt></BookgDt>\n        <AcctSvcrRef>E-1",
                "<Dt>10.03.2026</Dt></BookgDt>\n        <AcctSvcrRef>E-1",
            )
            .replace(
                "<Amt Ccy=\"KGS\">5000.00</Amt>",
                "<Amt Ccy=\"EUR\">5000.00</Amt>",
            )
            .replace("<IBAN>KG12BANK0000000001234567</IBAN>", "<IBAN></IBAN>");
        assert_eq!(
            parse_camt053(broken.as_bytes(), Jurisdiction::Kg),
            Err(StatementError::Problems(vec![
                "entry 1: no booking date (BookgDt/Dt)".into(),
                "entry 2, transaction 2: currency `EUR` is not KGS or KZT".into(),
                "the statement names no account".into(),
            ]))
        );
    }
}
