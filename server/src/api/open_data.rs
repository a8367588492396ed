//! Open data: how many violations each camera site recorded per day, hour and kind,
//! and how many became fines, as JSON or CSV, for anyone. No plate, no person, nothing
//! finer than an hour at a site; days and hours are the jurisdiction's.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use kozomol_core::{decimal_degrees, Jurisdiction, ViolationKind};
use kozomol_store::HourlyCount;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, FieldProblem};

/// The longest range one request covers.
pub const MAX_DAYS: i64 = 92;

#[derive(Deserialize)]
pub struct OpenDataQuery {
    /// First day, `YYYY-MM-DD` (default: six days before `to`).
    from: Option<String>,
    /// Last day, inclusive (default: today).
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// One day, hour, site and kind, with its counts: every count for staff (`i64`); as
/// published, a count of 1 to [`WITHHELD_BELOW`]` - 1` withheld (`Option<i64>`, see
/// [`published`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenDataRow<Count = i64> {
    pub day: NaiveDate,
    /// 0-23, the jurisdiction's clock.
    pub hour: u32,
    /// The site's id in the device register; none for violations officers filed.
    pub site_id: Option<String>,
    pub site: Option<String>,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub kind: ViolationKind,
    pub recorded: Count,
    pub fined: Count,
}

/// A row as it is published.
pub type PublicRow = OpenDataRow<Option<i64>>;

/// The smallest count published: fewer violations of a kind at a site in an hour
/// point at the few who drove past (someone who saw the car learns it was fined).
pub const WITHHELD_BELOW: i64 = 5;

/// What of a row is published. `recorded` is withheld when it is 1 to 4; `fined` then
/// too, and when it, or the violations not fined (an exempt car), is 1 to 4. Zero is
/// published: it points at no one.
pub fn published(row: OpenDataRow) -> PublicRow {
    let small = |n: i64| (1..WITHHELD_BELOW).contains(&n);
    let recorded = (!small(row.recorded)).then_some(row.recorded);
    let fined = (recorded.is_some() && !small(row.fined) && !small(row.recorded - row.fined))
        .then_some(row.fined);
    OpenDataRow {
        day: row.day,
        hour: row.hour,
        site_id: row.site_id,
        site: row.site,
        latitude: row.latitude,
        longitude: row.longitude,
        kind: row.kind,
        recorded,
        fined,
    }
}

#[derive(Serialize)]
pub struct OpenData {
    from: NaiveDate,
    to: NaiveDate,
    rows: Vec<PublicRow>,
}

/// `GET /api/v1/open-data/violations`.
pub async fn violations(
    State(state): State<ApiState>,
    Query(query): Query<OpenDataQuery>,
) -> Result<Response, ApiError> {
    let jurisdiction = state.app.jurisdiction;
    let mut problems = Vec::new();
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            problems.push(FieldProblem::new("format", "json or csv"));
            false
        }
    };
    let range = DayRange::parse(jurisdiction, query.from, query.to, &mut problems);
    let (
        Some(DayRange {
            from,
            to,
            start,
            end,
        }),
        true,
    ) = (range, problems.is_empty())
    else {
        return Err(ApiError::InvalidQuery(problems));
    };
    let counts = state.app.store.hourly_counts(start, end).await?;
    let rows: Vec<PublicRow> = by_site(jurisdiction, &counts)
        .into_iter()
        .map(published)
        .collect();
    if csv {
        let mut response = to_csv(&rows).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&format!(
            "attachment; filename=\"kozomol-violations-{from}-{to}.csv\""
        )) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
        return Ok(response);
    }
    Ok(Json(OpenData { from, to, rows }).into_response())
}

/// A range of whole local days, `from` to `to` inclusive, and the instants it spans.
pub(crate) struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl DayRange {
    /// `from` and `to` as `YYYY-MM-DD` (default: the last seven days up to today), at
    /// most [`MAX_DAYS`]; what is wrong goes into `problems`.
    pub(crate) fn parse(
        jurisdiction: Jurisdiction,
        from: Option<String>,
        to: Option<String>,
        problems: &mut Vec<FieldProblem>,
    ) -> Option<DayRange> {
        let today = jurisdiction.local_date(Utc::now());
        let day = |field: &str, text: Option<String>, problems: &mut Vec<FieldProblem>| {
            text.and_then(|t| match NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d") {
                // Years far out would overflow the arithmetic on days below.
                Ok(day) if (2000..=2100).contains(&day.year()) => Some(day),
                _ => {
                    problems.push(FieldProblem::new(
                        field,
                        "a day as YYYY-MM-DD, 2000 to 2100",
                    ));
                    None
                }
            })
        };
        let to = day("to", to, problems).unwrap_or(today);
        let from = day("from", from, problems).unwrap_or(to - Duration::days(6));
        if from > to {
            problems.push(FieldProblem::new("from", "on or before `to`"));
            return None;
        }
        if (to - from).num_days() >= MAX_DAYS {
            problems.push(FieldProblem::new(
                "to",
                format!("at most {MAX_DAYS} days from `from`"),
            ));
            return None;
        }
        Some(DayRange {
            from,
            to,
            start: local_midnight(jurisdiction, from)?,
            end: local_midnight(jurisdiction, to + Duration::days(1))?,
        })
    }
}

/// The instant a local day starts.
fn local_midnight(jurisdiction: Jurisdiction, day: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    Some(midnight.and_utc() - Duration::seconds(i64::from(jurisdiction.utc_offset_seconds())))
}

/// Hourly counts as rows per local day, hour, site and kind; cases officers filed
/// count under no site.
pub fn by_site(jurisdiction: Jurisdiction, counts: &[HourlyCount]) -> Vec<OpenDataRow> {
    // Kinds by their code: ordered, as rows are.
    let mut rows: BTreeMap<(NaiveDate, u32, Option<String>, &'static str), OpenDataRow> =
        BTreeMap::new();
    for count in counts {
        let local = jurisdiction.local_time(count.hour);
        let site = count.site.as_ref();
        let key = (
            local.date_naive(),
            local.hour(),
            site.map(|s| s.id.clone()),
            count.kind.as_str(),
        );
        let row = rows.entry(key).or_insert_with(|| OpenDataRow {
            day: local.date_naive(),
            hour: local.hour(),
            site_id: site.map(|s| s.id.clone()),
            site: site.map(|s| s.address.clone()),
            latitude: site.map(|s| decimal_degrees(s.lat_e6)),
            longitude: site.map(|s| decimal_degrees(s.lon_e6)),
            kind: count.kind,
            recorded: 0,
            fined: 0,
        });
        row.recorded += count.recorded;
        row.fined += count.fined;
    }
    rows.into_values().collect()
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. Text
/// a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab or CR first: the
/// register's addresses are free text) starts with an apostrophe, as spreadsheets
/// expect; only text fields go through here, so negative coordinates stay numbers.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

pub fn to_csv(rows: &[PublicRow]) -> String {
    let mut out = String::from("day,hour,site_id,site,latitude,longitude,kind,recorded,fined\r\n");
    for row in rows {
        let fields = [
            row.day.to_string(),
            row.hour.to_string(),
            csv_field(row.site_id.as_deref().unwrap_or("")),
            csv_field(row.site.as_deref().unwrap_or("")),
            row.latitude.clone().unwrap_or_default(),
            row.longitude.clone().unwrap_or_default(),
            row.kind.as_str().to_owned(),
            row.recorded.map(|n| n.to_string()).unwrap_or_default(),
            row.fined.map(|n| n.to_string()).unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        for (text, field) in [
            ("plain", "plain"),
            ("проспект Чуй, Бишкек", "\"проспект Чуй, Бишкек\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("+996", "'+996"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("a-b", "a-b"),
        ] {
            assert_eq!(csv_field(text), field, "{text}");
        }
    }

    #[test]
    fn utc_hours_become_local_days_and_hours() {
        let site = kozomol_store::CountedSite {
            id: "site-chuy".to_owned(),
            address: "пр. Чуй".to_owned(),
            lat_e6: 42_874_621,
            lon_e6: 74_603_000,
        };
        let at = |h: u32| {
            NaiveDate::from_ymd_opt(2026, 3, 10)
                .and_then(|d| d.and_hms_opt(h, 0, 0))
                .expect("instant")
                .and_utc()
        };
        let counts = [
            // 18:00 UTC is midnight in Bishkek (UTC+6): the next local day.
            HourlyCount {
                hour: at(18),
                site: Some(site.clone()),
                kind: ViolationKind::Speeding,
                recorded: 7,
                fined: 1,
            },
            HourlyCount {
                hour: at(2),
                site: None,
                kind: ViolationKind::RedLight,
                recorded: 1,
                fined: 0,
            },
        ];
        let rows = by_site(Jurisdiction::Kg, &counts);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].day.to_string(), rows[0].hour),
            ("2026-03-10".into(), 8)
        );
        assert_eq!(rows[0].site_id, None);
        assert_eq!(
            (rows[1].day.to_string(), rows[1].hour),
            ("2026-03-11".into(), 0)
        );
        assert_eq!((rows[1].recorded, rows[1].fined), (7, 1));
        let public: Vec<PublicRow> = rows.into_iter().map(published).collect();
        let csv = to_csv(&public);
        assert!(csv.starts_with("day,hour,site_id,site,latitude,longitude,kind,recorded,fined\r\n"));
        // One red light at 08:00 is withheld whole; of seven speeders one fine is.
        assert!(csv.contains("2026-03-10,8,,,,,red_light,,\r\n"), "{csv}");
        assert!(
            csv.contains("2026-03-11,0,site-chuy,пр. Чуй,42.874621,74.603000,speeding,7,\r\n"),
            "{csv}"
        );
    }

    #[test]
    fn counts_that_point_at_a_few_are_withheld() {
        let row = |recorded, fined| OpenDataRow {
            day: NaiveDate::from_ymd_opt(2026, 3, 10).expect("day"),
            hour: 3,
            site_id: None,
            site: None,
            latitude: None,
            longitude: None,
            kind: ViolationKind::Speeding,
            recorded,
            fined,
        };
        for (recorded, fined, shown) in [
            (0, 0, (Some(0), Some(0))),
            (1, 1, (None, None)),
            (4, 0, (None, None)),
            (5, 5, (Some(5), Some(5))),
            (5, 0, (Some(5), Some(0))),
            // One fined, or one not (an exempt car): the fines are withheld.
            (12, 1, (Some(12), None)),
            (12, 11, (Some(12), None)),
            (12, 7, (Some(12), Some(7))),
            (12, 8, (Some(12), None)),
        ] {
            let public = published(row(recorded, fined));
            assert_eq!((public.recorded, public.fined), shown, "{recorded} {fined}");
        }
    }
}
