//! The audit log's hash chain. Each batch of audit rows is one chain: the first row's
//! `prev_hash` is SHA-256 of the batch id (its hyphenated lower-case text), and every
//! row's `hash` is SHA-256(`prev_hash` || the row's canonical text). The canonical text
//! is a JSON array, so no field value can be mistaken for a separator.
//!
//! Most batches are one row, so the chains alone cannot tell a batch taken out. Seals
//! tie them together: a seal, written in the background every minute or so, covers
//! every row after the previous seal up to an id, in id order, and chains to the seal
//! before it (`seal_hash`). `kozomol audit verify` checks both and names the first
//! break. Rows after the last seal are covered by their own chains until sealed.

use chrono::{DateTime, Utc};
use kozomol_core::{CaseId, CaseState};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Action of the audit row written for every case ingest creates.
pub const CASE_RECEIVED: &str = "case.received";
/// Action of the audit row written when a recognizer stores its result for a case.
pub const RECOGNITION_COMPLETED: &str = "case.recognition_completed";
/// Action of the audit row written when recognition gives up on a case.
pub const RECOGNITION_FAILED: &str = "case.recognition_failed";
/// Action of the audit row written with every review decision (auto-approval too).
pub const CASE_REVIEWED: &str = "case.reviewed";
/// Action of the audit row written when an owner lookup moves a case on.
pub const OWNER_LOOKED_UP: &str = "case.owner_looked_up";
/// Action of the audit row written when a resolution is issued for a case.
pub const RESOLUTION_ISSUED: &str = "case.resolution_issued";
/// Action of the audit row written when a proof of delivery of a case's resolution is
/// recorded (the first one starts the clocks and moves an `issued` case to `delivered`).
pub const RESOLUTION_DELIVERED: &str = "case.resolution_delivered";
/// Action of the audit row written when a delivery of a case's resolution failed for
/// good (its attempts spent, or its address refused): an operator must reach the owner
/// another way; the case history shows it.
pub const DELIVERY_FAILED: &str = "case.delivery_failed";
/// Action of the audit row written when a stage hands a case to a person.
pub const CASE_SET_ASIDE: &str = "case.set_aside";

/// An audit row's content, before it is chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow<'a> {
    pub batch_id: Uuid,
    pub case_id: Option<CaseId>,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub from_state: Option<CaseState>,
    pub to_state: Option<CaseState>,
    pub detail: Option<&'a str>,
}

impl AuditRow<'_> {
    /// The text that is hashed: version tag first, instants in unix milliseconds.
    pub fn canonical_text(&self) -> String {
        serde_json::json!([
            "kozomol-audit-v1",
            self.batch_id.to_string(),
            self.case_id.map(|id| id.0),
            self.at.timestamp_millis(),
            self.actor,
            self.action,
            self.from_state.map(CaseState::as_str),
            self.to_state.map(CaseState::as_str),
            self.detail,
        ])
        .to_string()
    }
}

/// `prev_hash` of a batch's first row.
pub fn chain_start(batch_id: Uuid) -> [u8; 32] {
    Sha256::digest(batch_id.to_string().as_bytes()).into()
}

/// The hash of `row` following `prev_hash`.
pub fn row_hash(prev_hash: &[u8; 32], row: &AuditRow<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(row.canonical_text().as_bytes());
    hasher.finalize().into()
}

/// Chains `rows` (one batch, in order): returns each row's (prev_hash, hash).
pub fn chain(batch_id: Uuid, rows: &[AuditRow<'_>]) -> Vec<([u8; 32], [u8; 32])> {
    let mut prev = chain_start(batch_id);
    rows.iter()
        .map(|row| {
            let hash = row_hash(&prev, row);
            let link = (prev, hash);
            prev = hash;
            link
        })
        .collect()
}

/// A contact left on the portal was confirmed by the code sent to it: who (the portal
/// and the client's address), for which resolution and vehicle, by which channel.
pub const CONTACT_CONFIRMED: &str = "owner.contact_confirmed";

/// The print room recorded a print batch printed (its letters posted): who, which batch.
pub const PRINT_BATCH_PRINTED: &str = "print_batch.printed";

/// Action of the audit row written whenever someone is shown an owner's personal data
/// (a resolution's PDF, the bus's protocol): who saw whose, when.
pub const OWNER_DATA_VIEWED: &str = "owner.viewed";

/// `prev_hash` of the first seal.
pub fn seal_start() -> [u8; 32] {
    Sha256::digest(b"kozomol-audit-seal-v1").into()
}

/// A seal's hash: the previous seal's, the last row id it covers, and the hashes of
/// every row after the previous seal up to that id, in id order. Seals chain the
/// batches' chains into one, so a row taken out (or a whole batch) breaks a seal.
pub fn seal_hash<'a>(
    prev: &[u8; 32],
    up_to_id: i64,
    row_hashes: impl IntoIterator<Item = &'a [u8; 32]>,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev);
    hasher.update(up_to_id.to_be_bytes());
    for hash in row_hashes {
        hasher.update(hash);
    }
    hasher.finalize().into()
}

/// The seal that follows `last` over `rows` (the rows after it, in id order, with when
/// each was written and its hash): up to the first row written at or after `settled`;
/// `None` when no row is settled yet.
pub(crate) fn next_seal(
    last: Option<&crate::AuditSeal>,
    rows: &[(i64, DateTime<Utc>, [u8; 32])],
    settled: DateTime<Utc>,
    sealed_at: DateTime<Utc>,
) -> Result<Option<crate::AuditSeal>, crate::StoreError> {
    let (id, prev) = match last {
        Some(seal) => {
            let mut prev = [0u8; 32];
            hex::decode_to_slice(&seal.hash, &mut prev)
                .map_err(|_| crate::error::corrupt(format!("seal {}'s hash", seal.id)))?;
            (seal.id + 1, prev)
        }
        None => (1, seal_start()),
    };
    // The first row not yet settled ends the seal: the ids after it wait too.
    let settled_rows: Vec<&(i64, DateTime<Utc>, [u8; 32])> =
        rows.iter().take_while(|(_, at, _)| *at < settled).collect();
    let Some((up_to_id, _, _)) = settled_rows.last() else {
        return Ok(None);
    };
    let hash = seal_hash(&prev, *up_to_id, settled_rows.iter().map(|(_, _, h)| h));
    Ok(Some(crate::AuditSeal {
        id,
        up_to_id: *up_to_id,
        rows: settled_rows.len() as i64,
        prev_hash: hex::encode(prev),
        hash: hex::encode(hash),
        sealed_at,
    }))
}

/// Where the audit log stops being what was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditBreak {
    /// A row whose content no longer gives its hash (changed after it was written).
    RowChanged { id: i64 },
    /// A row that does not follow the row before it in its batch (one taken out, or
    /// rows reordered).
    RowOutOfChain { id: i64 },
    /// A seal whose rows are no longer the rows it sealed (one taken out or added).
    SealBroken {
        id: i64,
        after_row: i64,
        up_to_row: i64,
    },
    /// A seal that does not follow the seal before it (a seal taken out).
    SealOutOfChain { id: i64 },
    /// A seal recorded elsewhere (`--expect-seal`) that the log no longer holds, or
    /// holds with another hash: the log was cut back or rewritten from it on.
    SealNotAsRecorded { id: i64 },
}

impl std::fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditBreak::RowChanged { id } => {
                write!(f, "audit row {id} was changed: its content does not give its hash")
            }
            AuditBreak::RowOutOfChain { id } => write!(
                f,
                "audit row {id} does not follow the row before it in its batch: a row was taken out or moved"
            ),
            AuditBreak::SealBroken {
                id,
                after_row,
                up_to_row,
            } => write!(
                f,
                "seal {id} no longer matches audit rows {after_row} (exclusive) to {up_to_row}: a row was taken out or added"
            ),
            AuditBreak::SealNotAsRecorded { id } => write!(
                f,
                "seal {id} is not as recorded outside the log: the log was cut back or rewritten from it on"
            ),
            AuditBreak::SealOutOfChain { id } => {
                write!(f, "seal {id} does not follow the seal before it: a seal was taken out")
            }
        }
    }
}

/// Checks rows in id order, as they are read: each row's hash and its link to the row
/// before it in its batch. Rows of one batch are written in one transaction, so they
/// lie close together: a batch not seen for [`BATCH_HORIZON`] rows is forgotten, and
/// memory stays bounded however long the log.
#[derive(Default)]
pub struct RowVerifier {
    last_of_batch: std::collections::HashMap<Uuid, (i64, [u8; 32])>,
    checked: u64,
}

/// How many rows after its last row a batch is remembered.
pub const BATCH_HORIZON: i64 = 100_000;

impl RowVerifier {
    /// Checks the next row (ids must come in increasing order).
    pub fn check(&mut self, row: &crate::AuditEntry) -> Result<(), AuditBreak> {
        let content = AuditRow {
            batch_id: row.batch_id,
            case_id: row.case_id,
            at: row.at,
            actor: &row.actor,
            action: &row.action,
            from_state: row.from_state,
            to_state: row.to_state,
            detail: row.detail.as_deref(),
        };
        let expected_prev = self
            .last_of_batch
            .get(&row.batch_id)
            .map_or_else(|| chain_start(row.batch_id), |(_, hash)| *hash);
        if hex::encode(expected_prev) != row.prev_hash {
            return Err(AuditBreak::RowOutOfChain { id: row.id });
        }
        let hash = row_hash(&expected_prev, &content);
        if hex::encode(hash) != row.hash {
            return Err(AuditBreak::RowChanged { id: row.id });
        }
        self.last_of_batch.insert(row.batch_id, (row.id, hash));
        self.checked += 1;
        if self.checked.is_multiple_of(BATCH_HORIZON as u64) {
            let horizon = row.id - BATCH_HORIZON;
            self.last_of_batch.retain(|_, (last, _)| *last >= horizon);
        }
        Ok(())
    }

    pub fn checked(&self) -> u64 {
        self.checked
    }
}

/// Checks one seal against the rows it covers (every row after the previous seal's,
/// up to its own, in id order) and the seal before it.
pub fn check_seal(
    seal: &crate::AuditSeal,
    prev: Option<&crate::AuditSeal>,
    rows: &[crate::AuditEntry],
) -> Result<(), AuditBreak> {
    let (prev_hash, after_row) = match prev {
        Some(prev) => (prev.hash.clone(), prev.up_to_id),
        None => (hex::encode(seal_start()), 0),
    };
    if seal.prev_hash != prev_hash {
        return Err(AuditBreak::SealOutOfChain { id: seal.id });
    }
    let broken = AuditBreak::SealBroken {
        id: seal.id,
        after_row,
        up_to_row: seal.up_to_id,
    };
    let hashes: Vec<[u8; 32]> = rows
        .iter()
        .map(|row| {
            hex::decode(&row.hash)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        })
        .collect::<Option<_>>()
        .ok_or_else(|| broken.clone())?;
    let mut prev_bytes = [0u8; 32];
    hex::decode_to_slice(&prev_hash, &mut prev_bytes).map_err(|_| broken.clone())?;
    let in_range = rows
        .iter()
        .all(|row| row.id > after_row && row.id <= seal.up_to_id);
    if !in_range
        || rows.len() as i64 != seal.rows
        || hex::encode(seal_hash(&prev_bytes, seal.up_to_id, &hashes)) != seal.hash
    {
        return Err(broken);
    }
    Ok(())
}

/// What a whole check of the audit log saw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    pub rows: u64,
    pub seals: u64,
    /// The last row a seal covers (0 when none is sealed yet).
    pub sealed_up_to: i64,
    /// The last seal's id and hash: recorded outside the database (`audit verify
    /// --expect-seal ID:HASH` later), they show a log cut back or rewritten whole,
    /// which its own chains cannot.
    pub last_seal: Option<SealMark>,
    /// Rows after the last seal, and when the oldest of them was written: the API
    /// process seals each minute, so an old one says sealing has stopped.
    pub unsealed_rows: u64,
    pub oldest_unsealed_at: Option<DateTime<Utc>>,
}

/// A seal as recorded outside the log; written `ID:HASH`, as `--expect-seal` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealMark {
    pub id: i64,
    /// Hex.
    pub hash: String,
}

impl std::fmt::Display for SealMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.hash)
    }
}

impl serde::Serialize for SealMark {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for SealMark {
    type Err = String;

    /// `ID:HASH`, as `audit verify` prints the last seal.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, hash) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not ID:HASH"))?;
        let id: i64 = id.parse().map_err(|_| format!("`{id}` is not a seal id"))?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{hash}` is not a seal hash (64 hex digits)"));
        }
        Ok(SealMark { id, hash })
    }
}

/// Rows and seals read per query while checking.
const PAGE: u32 = 5_000;

/// Checks the whole log, as one moment sees it: every row against its hash and its
/// batch's chain, in id order, then every seal against the rows it covers and the
/// seal before it, and each of `expected` (seals recorded outside the log) against the
/// seal of its id. The first break found, in that order, is the answer's error.
pub async fn verify(
    trail: &dyn crate::AuditTrail,
    expected: &[SealMark],
) -> Result<Result<Verified, AuditBreak>, crate::StoreError> {
    let snapshot = trail.audit_snapshot().await?;
    let mut rows = RowVerifier::default();
    let mut after = 0;
    loop {
        let page = snapshot.rows(after, PAGE).await?;
        for row in &page {
            if let Err(broken) = rows.check(row) {
                return Ok(Err(broken));
            }
        }
        match page.last() {
            Some(last) => after = last.id,
            None => break,
        }
    }
    let mut seals = 0;
    let mut previous: Option<crate::AuditSeal> = None;
    let mut after_seal = 0;
    let mut unmet: Vec<&SealMark> = expected.iter().collect();
    loop {
        let page = snapshot.seals(after_seal, PAGE).await?;
        for seal in &page {
            let from = previous.as_ref().map_or(0, |p| p.up_to_id);
            // A seal covers `rows` rows; one more is read, so that a row added in its
            // range shows.
            let wanted = u32::try_from(seal.rows.max(0) + 1).unwrap_or(u32::MAX);
            let mut covered: Vec<crate::AuditEntry> = Vec::new();
            let mut cursor = from;
            while covered.len() < wanted as usize {
                let chunk = snapshot
                    .rows(cursor, PAGE.min(wanted - covered.len() as u32))
                    .await?;
                let Some(last) = chunk.last() else { break };
                cursor = last.id;
                covered.extend(chunk.into_iter().filter(|r| r.id <= seal.up_to_id));
                if cursor >= seal.up_to_id {
                    break;
                }
            }
            if let Err(broken) = check_seal(seal, previous.as_ref(), &covered) {
                return Ok(Err(broken));
            }
            if let Some(mark) = unmet.iter().position(|m| m.id == seal.id) {
                if unmet[mark].hash != seal.hash {
                    return Ok(Err(AuditBreak::SealNotAsRecorded { id: seal.id }));
                }
                unmet.swap_remove(mark);
            }
            seals += 1;
            previous = Some(seal.clone());
        }
        match page.last() {
            Some(last) => after_seal = last.id,
            None => break,
        }
    }
    if let Some(mark) = unmet.iter().min_by_key(|m| m.id) {
        return Ok(Err(AuditBreak::SealNotAsRecorded { id: mark.id }));
    }
    let sealed_up_to = previous.as_ref().map_or(0, |p| p.up_to_id);
    let (mut unsealed_rows, mut oldest_unsealed_at) = (0, None);
    let mut after = sealed_up_to;
    loop {
        let page = snapshot.rows(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        unsealed_rows += page.len() as u64;
        for row in &page {
            oldest_unsealed_at =
                Some(oldest_unsealed_at.map_or(row.at, |o: DateTime<Utc>| o.min(row.at)));
        }
    }
    Ok(Ok(Verified {
        rows: rows.checked(),
        seals,
        sealed_up_to,
        last_seal: previous.map(|p| SealMark {
            id: p.id,
            hash: p.hash,
        }),
        unsealed_rows,
        oldest_unsealed_at,
    }))
}

/// The current instant at the precision both backends keep (milliseconds), so that a
/// row's hash can be recomputed from what was stored.
pub(crate) fn now_millis() -> DateTime<Utc> {
    whole_millis(Utc::now())
}

/// `at` at the precision both backends keep.
pub(crate) fn whole_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(batch_id: Uuid, case: i64, detail: Option<&str>) -> AuditRow<'_> {
        AuditRow {
            batch_id,
            case_id: Some(CaseId(case)),
            at: DateTime::from_timestamp_millis(1_767_225_600_123).expect("valid instant"),
            actor: "ingest",
            action: CASE_RECEIVED,
            from_state: None,
            to_state: Some(CaseState::Received),
            detail,
        }
    }

    #[test]
    fn chain_links_rows_in_order() {
        let batch = Uuid::now_v7();
        let rows = [row(batch, 1, None), row(batch, 2, None)];
        let links = chain(batch, &rows);
        assert_eq!(links[0].0, chain_start(batch));
        assert_eq!(links[1].0, links[0].1);
        assert_eq!(links[1].1, row_hash(&links[0].1, &rows[1]));
        // Swapping the rows breaks the chain.
        let swapped = chain(batch, &[rows[1].clone(), rows[0].clone()]);
        assert_ne!(swapped[1].1, links[1].1);
    }

    fn entry(id: i64, batch: Uuid, prev: [u8; 32], case: i64) -> (crate::AuditEntry, [u8; 32]) {
        let r = row(batch, case, None);
        let hash = row_hash(&prev, &r);
        (
            crate::AuditEntry {
                id,
                case_id: r.case_id,
                at: r.at,
                actor: r.actor.to_owned(),
                action: r.action.to_owned(),
                from_state: r.from_state,
                to_state: r.to_state,
                detail: None,
                hash: hex::encode(hash),
                batch_id: batch,
                prev_hash: hex::encode(prev),
            },
            hash,
        )
    }

    /// Rows 1..=4: a batch of two (1, 3) and two batches of one (2, 4).
    fn log() -> Vec<crate::AuditEntry> {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (r1, h1) = entry(1, a, chain_start(a), 10);
        let (r2, _) = entry(2, b, chain_start(b), 11);
        let (r3, _) = entry(3, a, h1, 12);
        let (r4, _) = entry(4, c, chain_start(c), 13);
        vec![r1, r2, r3, r4]
    }

    fn sealed(
        prev: Option<&crate::AuditSeal>,
        id: i64,
        rows: &[crate::AuditEntry],
    ) -> crate::AuditSeal {
        let prev_hash = prev.map_or(seal_start(), |p| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&p.hash, &mut bytes).expect("hex");
            bytes
        });
        let hashes: Vec<[u8; 32]> = rows
            .iter()
            .map(|r| {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(&r.hash, &mut bytes).expect("hex");
                bytes
            })
            .collect();
        let up_to_id = rows.last().map_or(0, |r| r.id);
        crate::AuditSeal {
            id,
            up_to_id,
            rows: rows.len() as i64,
            prev_hash: hex::encode(prev_hash),
            hash: hex::encode(seal_hash(&prev_hash, up_to_id, &hashes)),
            sealed_at: rows[0].at,
        }
    }

    #[test]
    fn rows_verify_until_one_is_changed_or_taken_out() {
        let rows = log();
        let mut verifier = RowVerifier::default();
        for r in &rows {
            verifier.check(r).expect("intact");
        }
        assert_eq!(verifier.checked(), 4);

        let mut changed = rows.clone();
        changed[2].detail = Some("edited".into());
        let mut verifier = RowVerifier::default();
        let first_break = changed.iter().find_map(|r| verifier.check(r).err());
        assert_eq!(first_break, Some(AuditBreak::RowChanged { id: 3 }));

        // Row 1 taken out: row 3 no longer follows its batch.
        let mut verifier = RowVerifier::default();
        let first_break = rows[1..].iter().find_map(|r| verifier.check(r).err());
        assert_eq!(first_break, Some(AuditBreak::RowOutOfChain { id: 3 }));
    }

    #[test]
    fn seals_catch_rows_and_seals_taken_out() {
        let rows = log();
        let first = sealed(None, 1, &rows[..2]);
        let second = sealed(Some(&first), 2, &rows[2..]);
        check_seal(&first, None, &rows[..2]).expect("first intact");
        check_seal(&second, Some(&first), &rows[2..]).expect("second intact");

        // A batch of one taken out (row 4): no row chain can tell, the seal does.
        assert_eq!(
            check_seal(&second, Some(&first), &rows[2..3]),
            Err(AuditBreak::SealBroken {
                id: 2,
                after_row: 2,
                up_to_row: 4
            })
        );
        // A row added inside a sealed range.
        let (extra, _) = entry(4, Uuid::now_v7(), [0; 32], 99);
        assert!(check_seal(&second, Some(&first), &[rows[2].clone(), extra]).is_err());
        // The first seal taken out: the second no longer follows the chain's start.
        assert_eq!(
            check_seal(&second, None, &rows[2..]),
            Err(AuditBreak::SealOutOfChain { id: 2 })
        );
    }

    #[test]
    fn canonical_text_separates_fields() {
        let batch = Uuid::now_v7();
        let a = row(batch, 1, Some("a\",\"b"));
        let mut b = row(batch, 1, Some("a"));
        b.actor = "ingest\",\"b";
        assert_ne!(a.canonical_text(), b.canonical_text());
    }
}
