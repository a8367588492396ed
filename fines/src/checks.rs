//! Checks before issuing: what stands between an approved violation and a fine.
//!
//! It owns four pure checks and the order that combines them ([`pre_issue_checks`]):
//!
//! 1. **Exemption** ([`exemption`]): vehicles the law does not fine from a camera
//!    (emergency services on duty, diplomatic missions, listed government vehicles). The
//!    list is data an operator manages, exact plates and whole series as glob patterns
//!    ([`PlatePattern`]); no series is written into the code, because which series are
//!    exempt is a decision of the state, not of this program. An exempt case is `exempt`.
//! 2. **Duplicate** ([`duplicate_of`]): several cameras catching one act make one fine,
//!    not several. The same plate, violation kind and site within
//!    [`ChecksConfig::duplicate_window_s`] is one act; the case that is fined is the
//!    earliest one approved (or one already past the checks), the others are
//!    `duplicate`, whatever order they are checked in.
//! 3. **Cloned plate** ([`clone_conflicts`]): one plate at two sites faster than a car
//!    can travel means one of the two carries a copied plate, and fining the plate's
//!    owner for the copy's act would be wrong. It is a review, not a fine: the case goes
//!    to `supervisor_review` with the conflicting sightings.
//! 4. **Hot list** ([`hot_list_hit`]): stolen or wanted plates. A hit raises an alert
//!    for the police and is reported alongside every outcome; it does **not** by itself
//!    stop the fine (a stolen car's owner shows it was stolen when appealing, KZ
//!    art. 31), so it changes no state.
//!
//! The order is exemption, duplicate, clone: an exempt vehicle needs no duplicate
//! search, and a duplicate of an act already on its way needs no second clone review.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction, ViolationKind};
use serde::{Deserialize, Serialize};

use crate::review::plate_chars;

/// The mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// What can be wrong with the checks' data or settings.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChecksError {
    #[error("plate pattern `{pattern}` is not valid: {reason}")]
    InvalidPattern {
        pattern: String,
        reason: &'static str,
    },
    #[error("max_plausible_kmh must be positive")]
    ZeroMaxSpeed,
    #[error("{what} `{name}` is not known")]
    UnknownName { what: &'static str, name: String },
}

/// The checks' settings; every field has a default, so an empty table is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksConfig {
    /// Captures of one plate, kind and site at most this far apart (inclusive) are one
    /// act. Default 300 s.
    pub duplicate_window_s: u32,
    /// The fastest a car is believed to travel between two sites. Default 200 km/h.
    pub max_plausible_kmh: u32,
    /// Seconds taken off the interval between two sightings for the cameras' clocks
    /// disagreeing (never below zero). Default 2 s.
    pub clock_skew_s: u32,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            duplicate_window_s: 300,
            max_plausible_kmh: 200,
            clock_skew_s: 2,
        }
    }
}

impl ChecksConfig {
    /// Checks the settings at start-up.
    pub fn validate(&self) -> Result<(), ChecksError> {
        if self.max_plausible_kmh == 0 {
            return Err(ChecksError::ZeroMaxSpeed);
        }
        Ok(())
    }
}

/// An exact plate (`01KG123ABC`) or a series as a glob: `*` stands for any run of
/// characters (none included), `?` for exactly one. `D*` is every plate that starts
/// with `D`; `CMD*` every plate that starts with `CMD`; `??D???` every six-character
/// plate with `D` third. Stored normalised: upper case, no spaces or hyphens. A pattern
/// must name at least one letter or digit, so no entry can exempt every plate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlatePattern(String);

impl PlatePattern {
    pub fn parse(raw: &str) -> Result<Self, ChecksError> {
        let bad = |reason| ChecksError::InvalidPattern {
            pattern: raw.chars().take(40).collect(),
            reason,
        };
        let pattern: String = plate_chars(raw).collect();
        if !pattern
            .chars()
            .all(|c| c.is_alphanumeric() || c == '*' || c == '?')
        {
            return Err(bad("only letters, digits, `*` and `?`"));
        }
        if !pattern.chars().any(char::is_alphanumeric) {
            return Err(bad("it must name at least one letter or digit"));
        }
        if pattern.chars().count() > 16 {
            return Err(bad("at most 16 characters"));
        }
        Ok(PlatePattern(pattern))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern names one plate rather than a series.
    pub fn is_exact(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    /// Whether `plate` (normalised here) matches.
    pub fn matches(&self, plate: &str) -> bool {
        self.matches_spelled(&spelled(plate))
    }

    /// Whether any of a plate's spellings ([`spelled`]) matches.
    fn matches_spelled(&self, spellings: &[Vec<char>]) -> bool {
        // Read as typed today: a pattern kept before look-alikes were written in Latin.
        let pattern: Vec<char> = plate_chars(&self.0).collect();
        spellings.iter().any(|spelling| glob(&pattern, spelling))
    }
}

/// A plate's spellings as characters, for [`PlatePattern`]: `01KG123ABC` is exempted by
/// a pattern of `01123ABC` too, and the other way round.
fn spelled(plate: &str) -> Vec<Vec<char>> {
    kozomol_tunduk::plate_spellings(plate)
        .iter()
        .map(|spelling| spelling.chars().collect())
        .collect()
}

/// Glob matching with `*` and `?`, backtracking to the last `*` only (linear in
/// practice, never exponential).
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

impl TryFrom<String> for PlatePattern {
    type Error = ChecksError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PlatePattern::parse(&value)
    }
}

impl From<PlatePattern> for String {
    fn from(value: PlatePattern) -> Self {
        value.0
    }
}

impl std::fmt::Display for PlatePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a vehicle is exempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExemptionCategory {
    Emergency,
    Diplomatic,
    Government,
    Other,
}

impl ExemptionCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            ExemptionCategory::Emergency => "emergency",
            ExemptionCategory::Diplomatic => "diplomatic",
            ExemptionCategory::Government => "government",
            ExemptionCategory::Other => "other",
        }
    }
}

/// One entry of the exemption list: a plate or a series, valid between two dates
/// (both included; an absent bound is open).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    pub plate: PlatePattern,
    pub category: ExemptionCategory,
    /// Who or what the entry rests on (a decree, a registry letter).
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub valid_from: Option<NaiveDate>,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
}

impl Exemption {
    /// Whether the entry is in force on `date` (both bounds included).
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|from| from <= date)
            && self.valid_until.is_none_or(|until| date <= until)
    }
}

/// The entry that exempts `plate` on `date` (the offence's date in the jurisdiction's
/// time zone). An exact plate wins over a series; among several, the first in the list.
pub fn exemption<'a>(list: &'a [Exemption], plate: &str, date: NaiveDate) -> Option<&'a Exemption> {
    // Spelled once for the whole list.
    let spellings = spelled(plate);
    let mut valid = list
        .iter()
        .filter(|e| e.valid_on(date) && e.plate.matches_spelled(&spellings));
    let first = valid.next()?;
    if first.plate.is_exact() {
        return Some(first);
    }
    valid.find(|e| e.plate.is_exact()).or(Some(first))
}

/// Why a plate is on the hot list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HotListReason {
    Stolen,
    Wanted,
    Other,
}

impl HotListReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HotListReason::Stolen => "stolen",
            HotListReason::Wanted => "wanted",
            HotListReason::Other => "other",
        }
    }
}

/// A stolen or wanted plate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotListEntry {
    /// Upper case, no spaces.
    pub plate: String,
    pub reason: HotListReason,
    #[serde(default)]
    pub note: String,
    pub listed_at: DateTime<Utc>,
}

/// The hot-list entry for `plate`, if any. A hit is an alert, not a reason to stop the
/// fine.
pub fn hot_list_hit<'a>(list: &'a [HotListEntry], plate: &str) -> Option<&'a HotListEntry> {
    // The case's plate reduced once, not for every entry of a long list.
    let identity = kozomol_tunduk::plate_identity(plate);
    list.iter()
        .find(|e| kozomol_tunduk::plate_identity(&e.plate) == identity)
}

/// A point in WGS 84, in millionths of a degree (as `Site` carries it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coordinates {
    pub lat_e6: i32,
    pub lon_e6: i32,
}

/// The great-circle distance between two points in metres (haversine on a sphere of
/// [`EARTH_RADIUS_M`]).
pub fn distance_m(a: Coordinates, b: Coordinates) -> f64 {
    let rad = |e6: i32| (f64::from(e6) / 1e6).to_radians();
    let (phi1, phi2) = (rad(a.lat_e6), rad(b.lat_e6));
    let d_phi = phi2 - phi1;
    let d_lambda = rad(b.lon_e6) - rad(a.lon_e6);
    let h = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// What the checks need to know about a case: the one being checked, and the other
/// cases of the same plate around its capture time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFacts {
    pub case_id: CaseId,
    /// Upper case, no spaces (as review decided it).
    pub plate: String,
    pub kind: ViolationKind,
    pub site_id: String,
    #[serde(flatten)]
    pub position: Coordinates,
    pub captured_at: DateTime<Utc>,
    pub state: CaseState,
    /// An `approved` case that passed its checks and is on its way to the owner lookup
    /// (the store's mark, set under the plate's lock): past the checks like a case in a
    /// later state.
    #[serde(default)]
    pub checks_passed: bool,
}

/// Whether a case can be the one a duplicate defers to: it has been approved (a case
/// still before approval may yet be rejected, and the act would then go unfined) and it
/// is not itself rejected, a duplicate or voided.
fn stands(state: CaseState) -> bool {
    !matches!(
        state,
        CaseState::Received
            | CaseState::Recognized
            | CaseState::NeedsReview
            | CaseState::SupervisorReview
            | CaseState::Rejected
            | CaseState::Duplicate
            | CaseState::Voided
    )
}

/// The case `case` duplicates: among `others` of the same plate, kind and site captured
/// at most `duplicate_window_s` before **or after** it (cameras deliver out of order),
/// the earliest (by capture time, then case id) that stands — approved or later, and
/// not rejected, duplicate or voided — and that is either **earlier** than `case` in
/// (capture time, case id) order or already past the checks (a standing state other
/// than `approved`, or `approved` with [`CaseFacts::checks_passed`]).
///
/// A case still `approved` and later than `case`, without the mark, is not deferred
/// to: it is waiting for its own checks, which will make it the duplicate of `case`. So
/// two cases of one act checked at the same time by two workers cannot both defer to
/// each other, nor both proceed: the earlier one proceeds, the later one is the
/// duplicate. A later case that passed while `case` did not yet stand (say, still in
/// review) carries the mark, and `case` defers to it.
pub fn duplicate_of<'a>(
    config: &ChecksConfig,
    case: &CaseFacts,
    others: &'a [CaseFacts],
) -> Option<&'a CaseFacts> {
    let window = TimeDelta::seconds(i64::from(config.duplicate_window_s));
    let order = |c: &CaseFacts| (c.captured_at, c.case_id);
    others
        .iter()
        .filter(|o| {
            o.case_id != case.case_id
                && o.kind == case.kind
                && o.site_id == case.site_id
                && kozomol_tunduk::same_plate(&o.plate, &case.plate)
                && stands(o.state)
                && (o.state != CaseState::Approved || o.checks_passed || order(o) < order(case))
                && (o.captured_at - case.captured_at).abs() <= window
        })
        .min_by_key(|o| order(o))
}

/// A sighting of the same plate that the car could not have reached in time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneConflict {
    pub case_id: CaseId,
    pub site_id: String,
    pub captured_at: DateTime<Utc>,
    /// Great-circle distance between the two sites, whole metres.
    pub distance_m: u64,
    /// Milliseconds between the two captures, less the clock-skew allowance.
    pub interval_ms: u64,
    /// The speed the car would have needed, km/h; none when the interval is zero.
    pub implied_kmh: Option<u64>,
}

/// Sightings in `others` of `case`'s plate at another site that imply travelling faster
/// than `max_plausible_kmh`, in capture order. The interval is the time between the two
/// captures less `clock_skew_s` (never below zero) and the distance is rounded to whole
/// metres; a conflict is an implied speed strictly above the maximum (exactly the
/// maximum is plausible), computed in integers so the edge is exact. A zero interval
/// at a different place is a conflict; the same site, or the same point under another
/// site id, never is. Rejected cases are not sightings (their plate read may be what
/// was wrong); `cleared` lists sightings a supervisor has already weighed for this case.
pub fn clone_conflicts(
    config: &ChecksConfig,
    case: &CaseFacts,
    others: &[CaseFacts],
    cleared: &[CaseId],
) -> Vec<CloneConflict> {
    let mut conflicts: Vec<CloneConflict> = others
        .iter()
        .filter(|o| {
            o.case_id != case.case_id
                && o.site_id != case.site_id
                && o.state != CaseState::Rejected
                && !cleared.contains(&o.case_id)
                && kozomol_tunduk::same_plate(&o.plate, &case.plate)
        })
        .filter_map(|o| conflict(config, case, o))
        .collect();
    conflicts.sort_by_key(|c| (c.captured_at, c.case_id));
    conflicts
}

fn conflict(config: &ChecksConfig, case: &CaseFacts, other: &CaseFacts) -> Option<CloneConflict> {
    let distance = distance_m(case.position, other.position).round() as u64;
    if distance == 0 {
        return None;
    }
    let apart_ms = (other.captured_at - case.captured_at)
        .num_milliseconds()
        .unsigned_abs();
    let interval_ms = apart_ms.saturating_sub(u64::from(config.clock_skew_s) * 1000);
    // km/h = m / ms * 3600: compare distance * 3600 with max * interval, exactly.
    let travelled = u128::from(distance) * 3600;
    let allowed = u128::from(config.max_plausible_kmh) * u128::from(interval_ms);
    if travelled <= allowed {
        return None;
    }
    let implied_kmh = (interval_ms > 0).then(|| {
        let interval = u128::from(interval_ms);
        u64::try_from((travelled + interval / 2) / interval).unwrap_or(u64::MAX)
    });
    Some(CloneConflict {
        case_id: other.case_id,
        site_id: other.site_id.clone(),
        captured_at: other.captured_at,
        distance_m: distance,
        interval_ms,
        implied_kmh,
    })
}

/// What the checks decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// On the exemption list: no fine.
    Exempt { exemption: Exemption },
    /// The same act as a case already on its way.
    Duplicate { of: CaseId },
    /// A possible cloned plate: a supervisor decides; review, not a fine.
    SupervisorReview { conflicts: Vec<CloneConflict> },
    /// Nothing stands in the way: on to the owner lookup.
    Proceed,
}

/// The checks' result: the verdict, the state it sends the case to (`None`: it stays
/// `approved` and goes on), the reason for the audit row, and a hot-list hit to alert on
/// whatever the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub to: Option<CaseState>,
    pub reason: String,
    pub hot_list: Option<HotListEntry>,
}

/// Everything [`pre_issue_checks`] looks at.
#[derive(Clone, Copy, Debug)]
pub struct CheckInput<'a> {
    /// Whose calendar date the exemption's validity is read in.
    pub jurisdiction: Jurisdiction,
    /// The approved case.
    pub case: &'a CaseFacts,
    pub exemptions: &'a [Exemption],
    pub hot_list: &'a [HotListEntry],
    /// Other cases of the same plate: at least those within the duplicate window, and
    /// for the clone check those near enough in time to matter (others are ignored).
    pub others: &'a [CaseFacts],
    /// Sightings a supervisor already weighed when approving this case after a clone
    /// conflict; they do not send it back again.
    pub clone_cleared: &'a [CaseId],
}

/// Runs the checks in order — exemption, duplicate, cloned plate — and stops at the
/// first that decides; the hot list is looked up in every case.
pub fn pre_issue_checks(config: &ChecksConfig, input: &CheckInput<'_>) -> CheckOutcome {
    let case = input.case;
    let hot = hot_list_hit(input.hot_list, &case.plate).cloned();
    let date = input.jurisdiction.local_date(case.captured_at);
    let (verdict, to, mut reason) = if let Some(e) = exemption(input.exemptions, &case.plate, date)
    {
        let reason = exempt_reason(&case.plate, e, date);
        let verdict = Verdict::Exempt {
            exemption: e.clone(),
        };
        (verdict, Some(CaseState::Exempt), reason)
    } else if let Some(first) = duplicate_of(config, case, input.others) {
        let reason = duplicate_reason(config, case, first);
        let verdict = Verdict::Duplicate { of: first.case_id };
        (verdict, Some(CaseState::Duplicate), reason)
    } else {
        let conflicts = clone_conflicts(config, case, input.others, input.clone_cleared);
        if conflicts.is_empty() {
            let reason = "no exemption, duplicate or cloned-plate conflict".to_owned();
            (Verdict::Proceed, None, reason)
        } else {
            let reason = clone_reason(config, &case.plate, &conflicts);
            let verdict = Verdict::SupervisorReview { conflicts };
            (verdict, Some(CaseState::SupervisorReview), reason)
        }
    };
    if let Some(hit) = &hot {
        reason.push_str(&hot_list_note(hit));
    }
    CheckOutcome {
        verdict,
        to,
        reason,
        hot_list: hot,
    }
}

fn exempt_reason(plate: &str, e: &Exemption, date: NaiveDate) -> String {
    let entry = if e.plate.is_exact() {
        "listed".to_owned()
    } else {
        format!("series {}", e.plate)
    };
    let mut reason = format!(
        "plate {plate} is exempt on {date}: {} ({entry})",
        e.category.as_str()
    );
    if !e.note.is_empty() {
        reason.push_str(&format!(": {}", e.note));
    }
    reason
}

/// What a reason says after the verdict's own words when the plate is on the hot list.
pub fn hot_list_note(hit: &HotListEntry) -> String {
    format!(
        "; plate on the hot list ({}, listed {})",
        hit.reason.as_str(),
        hit.listed_at.date_naive()
    )
}

/// The reason a duplicate verdict gives: `case` is the same act as `first`.
pub fn duplicate_reason(config: &ChecksConfig, case: &CaseFacts, first: &CaseFacts) -> String {
    let apart_s = (first.captured_at - case.captured_at)
        .abs()
        .num_milliseconds() as f64
        / 1000.0;
    let when = match first.captured_at.cmp(&case.captured_at) {
        Ordering::Less => format!("{apart_s} s before"),
        Ordering::Greater => format!("{apart_s} s after"),
        Ordering::Equal => "at the same time as".to_owned(),
    };
    format!(
        "duplicate of case {}: {} by plate {} at site {}, captured {when} this one (window {} s)",
        first.case_id, case.kind, case.plate, case.site_id, config.duplicate_window_s
    )
}

fn clone_reason(config: &ChecksConfig, plate: &str, conflicts: &[CloneConflict]) -> String {
    let sightings: Vec<String> = conflicts
        .iter()
        .map(|c| {
            let speed = c
                .implied_kmh
                .map_or("at the same moment".to_owned(), |kmh| format!("{kmh} km/h"));
            format!(
                "case {} at site {} {:.1} km away ({speed})",
                c.case_id,
                c.site_id,
                c.distance_m as f64 / 1000.0
            )
        })
        .collect();
    format!(
        "possible cloned plate {plate}: seen faster than {} km/h allows (clock skew {} s): {}; review, not a fine",
        config.max_plausible_kmh,
        config.clock_skew_s,
        sightings.join(", ")
    )
}
