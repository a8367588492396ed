//! Paged lists: `limit` (default 50, at most 1000) and an opaque `cursor` that names
//! the last id of the previous page; answers are `{"items": [...], "next": ...}`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use super::FieldProblem;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Cursor for the next page; `null` on the last one.
    pub next: Option<String>,
}

/// Which list a cursor belongs to, so one list's cursor is refused by another.
#[derive(Clone, Copy)]
pub enum CursorKind {
    Cases,
    DeadLetters,
    Alerts,
}

impl CursorKind {
    fn prefix(self) -> &'static str {
        match self {
            CursorKind::Cases => "case:",
            CursorKind::DeadLetters => "dead-letter:",
            CursorKind::Alerts => "alert:",
        }
    }

    pub fn encode(self, last_id: i64) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}{last_id}", self.prefix()))
    }

    pub fn decode(self, cursor: &str) -> Option<i64> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        text.strip_prefix(self.prefix())?.parse().ok()
    }
}

/// Parses `limit` and `cursor`, adding what is wrong with them to `problems`.
pub fn parse_paging(
    limit: Option<&str>,
    cursor: Option<&str>,
    kind: CursorKind,
    problems: &mut Vec<FieldProblem>,
) -> (u32, Option<i64>) {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                problems.push(FieldProblem::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let after = cursor.and_then(|raw| {
        let id = kind.decode(raw);
        if id.is_none() {
            problems.push(FieldProblem::new("cursor", "is not a cursor of this list"));
        }
        id
    });
    (limit, after)
}

/// Builds a page from up to `limit + 1` rows fetched: the extra row only says there
/// is a next page.
pub fn page<T, U>(
    mut rows: Vec<T>,
    limit: u32,
    kind: CursorKind,
    id_of: impl Fn(&T) -> i64,
    present: impl Fn(T) -> U,
) -> Page<U> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|row| kind.encode(id_of(row)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(present).collect(),
        next,
    }
}

/// The `after`/`limit` lists of finance (refunds, callbacks, statement credits):
/// `limit` 1 to 1000, default 100; `next` is the last id when the page is full.
#[derive(Debug, serde::Deserialize)]
pub struct AfterQuery {
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct AfterPage<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<i64>,
}

impl AfterQuery {
    /// The id to read after and the page size, or what is wrong with the size.
    pub fn bounds(&self) -> Result<(i64, u32), super::ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(super::ApiError::InvalidQuery(vec![FieldProblem::new(
                "limit",
                format!("1 to {MAX_LIMIT}"),
            )]));
        }
        Ok((self.after.unwrap_or(0), limit))
    }
}

/// The page of `items` read with `limit`.
pub fn after_page<T>(items: Vec<T>, limit: u32, id_of: impl Fn(&T) -> i64) -> AfterPage<T> {
    let next = (items.len() == limit as usize)
        .then(|| items.last().map(&id_of))
        .flatten();
    AfterPage { items, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_per_kind() {
        let cursor = CursorKind::Cases.encode(42);
        assert_eq!(CursorKind::Cases.decode(&cursor), Some(42));
        assert_eq!(CursorKind::DeadLetters.decode(&cursor), None);
        assert_eq!(CursorKind::Cases.decode("!!"), None);
    }

    #[test]
    fn limits_are_bounded() {
        let mut problems = Vec::new();
        assert_eq!(
            parse_paging(None, None, CursorKind::Cases, &mut problems).0,
            50
        );
        assert_eq!(
            parse_paging(Some("1000"), None, CursorKind::Cases, &mut problems).0,
            1000
        );
        assert!(problems.is_empty());
        parse_paging(Some("1001"), None, CursorKind::Cases, &mut problems);
        parse_paging(Some("0"), Some("x"), CursorKind::Cases, &mut problems);
        assert_eq!(problems.len(), 3);
    }

    #[test]
    fn after_pages_end_when_short() {
        assert_eq!(after_page(vec![3, 4], 2, |n| *n).next, Some(4));
        assert_eq!(after_page(vec![3], 2, |n| *n).next, None);
        let query = |limit| AfterQuery { after: None, limit };
        assert_eq!(query(None).bounds().ok(), Some((0, 100)));
        assert!(query(Some(0)).bounds().is_err());
        assert!(query(Some(1001)).bounds().is_err());
    }

    #[test]
    fn page_has_next_only_when_more_rows_came() {
        let full = page(vec![1, 2, 3], 2, CursorKind::Cases, |n| *n, |n| n);
        assert_eq!(full.items, vec![1, 2]);
        assert_eq!(full.next, Some(CursorKind::Cases.encode(2)));
        let last = page(vec![1, 2], 2, CursorKind::Cases, |n| *n, |n| n);
        assert_eq!(last.next, None);
    }
}
