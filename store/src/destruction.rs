//! Destroying case files at the end of their archive period. Years after a case's
//! personal data were purged (`retention`), the signed PDF that still names its owner,
//! the photos, the plate crop, the appeal files and, once every letter in it is gone,
//! the print batch are erased from the evidence store. The case row, its resolution's
//! number, amounts and signature, the payments and the audit trail stay. A road
//! accident's photos and scheme go the same way once its participants were purged and
//! no violation filed under it keeps its file.
//!
//! Evidence is content-addressed, so a blob is erased only when nothing whose file is
//! still kept refers to it. The database marks the blob erased and queues where its
//! bytes lie ([`Erasure`], by location: a blob stored again elsewhere later does not
//! hide the old copy, and a second copy stored while the first was kept is recorded
//! when stored and queued with it); the bytes are overwritten afterwards (`EvidenceStore::erase`)
//! and the erasure recorded done: a crash in between leaves the overwrite to the next
//! pass. One process at a time runs a pass, under the archive lease.

use chrono::{DateTime, Utc};
use kozomol_core::CaseId;
use serde::Serialize;

use crate::batch::ChainedAudit;
use crate::checks::audit;
use crate::evidence::FrameLocation;

/// A case file's evidence was destroyed (detail: blobs erased, the quiet cut-off).
pub const CASE_FILE_DESTROYED: &str = "case.file_destroyed";
/// An accident's photos and scheme were destroyed (detail: the accident, blobs erased,
/// the quiet cut-off).
pub const ACCIDENT_FILE_DESTROYED: &str = "accident.file_destroyed";

/// How an evidence insert meets a blob already stored: the first location wins,
/// unless that blob was erased, when bytes stored again take its place (the same photo
/// or file came back after the case holding it was destroyed). A location with no
/// segment (ingest's for a frame it found stored) never does: the insert then finds
/// the blob still erased and fails, and ingest stores the bytes again.
pub(crate) const ON_STORED_BLOB: &str = " ON CONFLICT (sha256) DO UPDATE SET \
     segment = excluded.segment, byte_offset = excluded.byte_offset, \
     byte_len = excluded.byte_len, erased_at = NULL \
     WHERE evidence_blobs.erased_at IS NOT NULL AND excluded.segment <> ''";

/// Records second copies of stored bytes: each row of `stored` (a relation named `s`
/// of `sha256, segment, byte_offset, byte_len`, the locations just inserted) whose
/// blob's row names another place, the first copy. Run after the blobs'
/// insert ([`ON_STORED_BLOB`]); a location with no segment (bytes found stored, not
/// stored) is none.
pub(crate) fn record_copies(stored: &str) -> String {
    format!(
        "INSERT INTO evidence_copies (sha256, segment, byte_offset, byte_len) \
         SELECT s.sha256, s.segment, s.byte_offset, s.byte_len \
         FROM {stored} JOIN evidence_blobs b ON b.sha256 = s.sha256 \
         WHERE {COPY} \
         ON CONFLICT (sha256, segment, byte_offset) DO NOTHING"
    )
}

/// Queues for overwriting the copies among `stored` (as in [`record_copies`]) of blobs
/// erased already: bytes of a destroyed file stored again and not kept (an event sent
/// again long after its case's file was destroyed comes back a duplicate).
pub(crate) fn queue_erased_copies(stored: &str) -> String {
    format!(
        "INSERT INTO evidence_erasures (segment, byte_offset, byte_len, sha256, erased_at) \
         SELECT s.segment, s.byte_offset, s.byte_len, s.sha256, b.erased_at \
         FROM {stored} JOIN evidence_blobs b ON b.sha256 = s.sha256 \
         WHERE b.erased_at IS NOT NULL AND {COPY} \
         ON CONFLICT (segment, byte_offset, sha256) DO NOTHING"
    )
}

/// Queues for overwriting the locations among `stored` whose hash no blob holds: bytes
/// stored that no row will name (a conflicting duplicate's own photos, the crop or PDF
/// of work whose lease was lost). `now` is the SQL of the time they are queued.
pub(crate) fn queue_unheld(stored: &str, now: &str) -> String {
    format!(
        "INSERT INTO evidence_erasures (segment, byte_offset, byte_len, sha256, erased_at) \
         SELECT s.segment, s.byte_offset, s.byte_len, s.sha256, {now} FROM {stored} \
         WHERE NOT EXISTS (SELECT 1 FROM evidence_blobs b WHERE b.sha256 = s.sha256) \
         ON CONFLICT (segment, byte_offset, sha256) DO NOTHING"
    )
}

/// The statements, in order, that take care of bytes stored that no row keeps
/// (`stored`, as in [`record_copies`]; `now` as in [`queue_unheld`]): queued where no
/// blob holds them, recorded as copies where one does, queued at once where that blob
/// is erased already. Unheld first: on PostgreSQL each statement sees blobs committed
/// since the one before, so bytes another process stores as a blob meanwhile are found
/// queued and recorded as its copy (harmless), never neither.
pub(crate) fn unkept_statements(stored: &str, now: &str) -> [String; 3] {
    [
        queue_unheld(stored, now),
        record_copies(stored),
        queue_erased_copies(stored),
    ]
}

/// One location per distinct hash of `stored`, sorted by hash (the order inserts lock
/// blobs in); the first location of each hash wins, as [`ON_STORED_BLOB`] has it.
pub(crate) fn first_locations<'a>(
    stored: &[(&'a [u8; 32], &'a FrameLocation)],
) -> Vec<(&'a [u8; 32], &'a FrameLocation)> {
    let mut blobs = stored.to_vec();
    // Stable: the first location of each hash stays first.
    blobs.sort_by_key(|(sha, _)| **sha);
    blobs.dedup_by_key(|(sha, _)| **sha);
    blobs
}

/// The locations of `stored` where bytes were written (a location with no segment is
/// bytes ingest found stored, not stored again): the only ones that can be copies.
pub(crate) fn stored_again<'a>(
    stored: &[(&'a [u8; 32], &'a FrameLocation)],
) -> Vec<(&'a [u8; 32], &'a FrameLocation)> {
    stored
        .iter()
        .copied()
        .filter(|(_, location)| !location.segment.is_empty())
        .collect()
}

/// A stored location `s` that is not its blob's `b`, the first copy (a location with no
/// segment is bytes found stored, not stored).
const COPY: &str = "s.segment <> '' AND (b.segment <> s.segment OR b.byte_offset <> s.byte_offset)";

/// Erased bytes still to overwrite: a record in a segment and the blob it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Erasure {
    pub sha256: [u8; 32],
    pub location: FrameLocation,
}

/// What one pass of marking did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DestructionReport {
    /// Cases whose files were destroyed in this pass.
    pub cases: Vec<CaseId>,
    /// Accidents whose files were destroyed in this pass.
    pub accidents: Vec<i64>,
    /// Blobs the pass marked erased (shared blobs some kept file still holds are not).
    pub blobs_erased: u64,
}

/// Since when a purged case has had no move: the purge's cut-off, or for a case purged
/// before it was kept, the purge itself (later, so never too early).
const QUIET_SINCE: &str = "COALESCE(c.personal_data_quiet_since, c.personal_data_purged_at)";

/// Purged cases quiet since before parameter 1, whose file is kept, with no refund
/// still queued (its payment is the file's business), and of which no re-issued case
/// still keeps its file (a re-issued case's evidence is that of the case
/// it came from), longest quiet first, at most parameter 2.
pub(crate) fn cases_due(p1: &str, p2: &str, locked: bool) -> String {
    format!(
        "SELECT c.id FROM cases c \
         WHERE c.personal_data_purged_at IS NOT NULL AND c.evidence_destroyed_at IS NULL \
           AND {QUIET_SINCE} < {p1} \
           AND NOT EXISTS (SELECT 1 FROM refund_requests r WHERE r.case_id = c.id \
                           AND r.state = 'queued') \
           AND NOT EXISTS (SELECT 1 FROM nominations n \
                           JOIN cases r ON r.id = n.reissued_case_id \
                           WHERE n.case_id = c.id AND r.evidence_destroyed_at IS NULL) \
         ORDER BY {QUIET_SINCE}, c.id LIMIT {p2}{}",
        crate::retention::skip_locked("c", locked)
    )
}

/// Purged accidents with no move since before parameter 1, whose file is kept, and
/// none of whose violations still keeps its file (the photos and scheme are their
/// evidence too), at most parameter 2.
pub(crate) fn accidents_due(p1: &str, p2: &str, locked: bool) -> String {
    format!(
        "SELECT a.id FROM accidents a \
         WHERE a.personal_data_purged_at IS NOT NULL AND a.evidence_destroyed_at IS NULL \
           AND NOT EXISTS (SELECT 1 FROM accident_moves m WHERE m.accident_id = a.id \
                           AND m.at >= {p1}) \
           AND NOT EXISTS (SELECT 1 FROM officer_filings f JOIN cases c ON c.id = f.case_id \
                           WHERE f.accident_id = a.id AND c.evidence_destroyed_at IS NULL) \
         ORDER BY a.id LIMIT {p2}{}",
        crate::retention::skip_locked("a", locked)
    )
}

/// Whose file a pass destroys: a case's or an accident's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileHolder {
    Case,
    Accident,
}

impl FileHolder {
    /// Marks the holder with id `id` destroyed at `now`.
    pub(crate) fn mark(self, id: &str, now: &str) -> String {
        let table = match self {
            FileHolder::Case => "cases",
            FileHolder::Accident => "accidents",
        };
        format!("UPDATE {table} SET evidence_destroyed_at = {now} WHERE id = {id}")
    }

    /// The blobs the holder(s) `id` refer to.
    fn blobs(self, id: &str) -> String {
        match self {
            FileHolder::Case => case_blobs(id),
            FileHolder::Accident => {
                format!("SELECT sha256 FROM accident_files WHERE accident_id = {id}")
            }
        }
    }
}

/// The blobs the case `case` refers to: frames, crop, PDF, appeal files, and the print
/// batches its letters went out in.
fn case_blobs(case: &str) -> String {
    format!(
        "SELECT sha256 FROM case_frames WHERE case_id = {case} \
         UNION SELECT crop_sha256 FROM recognitions \
               WHERE case_id = {case} AND crop_sha256 IS NOT NULL \
         UNION SELECT pdf_sha256 FROM resolutions WHERE case_id = {case} \
         UNION SELECT t.sha256 FROM appeal_attachments t \
               JOIN appeals a ON a.id = t.appeal_id WHERE a.case_id = {case} \
         UNION SELECT b.pdf_sha256 FROM print_batches b \
               JOIN deliveries d ON d.batch_id = b.id WHERE d.case_id = {case}"
    )
}

/// PostgreSQL: locks the blobs not erased yet of the cases `cases` and the accidents
/// `accidents` (`ANY($1)`, `ANY($2)`), in one order, before [`erase_blobs`] looks for
/// who else holds them. An insert of the same blob holds the same row lock until it
/// commits (and takes its locks in the same order), so the look (a statement of its
/// own, with a fresh snapshot) sees every case or accident that committed a reference
/// to it.
pub(crate) fn lock_blobs(cases: &str, accidents: &str) -> String {
    format!(
        "SELECT sha256 FROM evidence_blobs WHERE erased_at IS NULL \
         AND sha256 IN ({} UNION {}) ORDER BY sha256 FOR UPDATE",
        FileHolder::Case.blobs(cases),
        FileHolder::Accident.blobs(accidents)
    )
}

/// Marks erased at `now` every blob of the holder `id` that no case or accident whose
/// file is kept and no print batch with a letter of a kept case refers to. Run after
/// [`FileHolder::mark`].
pub(crate) fn erase_blobs(holder: FileHolder, id: &str, now: &str) -> String {
    let kept = "c.evidence_destroyed_at IS NULL";
    format!(
        "UPDATE evidence_blobs SET erased_at = {now} \
         WHERE erased_at IS NULL AND sha256 IN ({}) \
           AND NOT EXISTS (SELECT 1 FROM case_frames f JOIN cases c ON c.id = f.case_id \
                           WHERE f.sha256 = evidence_blobs.sha256 AND {kept}) \
           AND NOT EXISTS (SELECT 1 FROM recognitions r JOIN cases c ON c.id = r.case_id \
                           WHERE r.crop_sha256 = evidence_blobs.sha256 AND {kept}) \
           AND NOT EXISTS (SELECT 1 FROM resolutions s JOIN cases c ON c.id = s.case_id \
                           WHERE s.pdf_sha256 = evidence_blobs.sha256 AND {kept}) \
           AND NOT EXISTS (SELECT 1 FROM appeal_attachments t \
                           JOIN appeals a ON a.id = t.appeal_id \
                           JOIN cases c ON c.id = a.case_id \
                           WHERE t.sha256 = evidence_blobs.sha256 AND {kept}) \
           AND NOT EXISTS (SELECT 1 FROM accident_files x \
                           JOIN accidents a ON a.id = x.accident_id \
                           WHERE x.sha256 = evidence_blobs.sha256 \
                           AND a.evidence_destroyed_at IS NULL) \
           AND NOT EXISTS (SELECT 1 FROM print_batches b \
                           JOIN deliveries d ON d.batch_id = b.id \
                           JOIN cases c ON c.id = d.case_id \
                           WHERE b.pdf_sha256 = evidence_blobs.sha256 AND {kept})",
        holder.blobs(id)
    )
}

/// Queues where the blobs [`erase_blobs`] just erased (at `now`) lie: their first
/// copies and any recorded since ([`record_copies`]).
pub(crate) fn queue_erasures(holder: FileHolder, id: &str, now: &str) -> String {
    let blobs = holder.blobs(id);
    format!(
        "INSERT INTO evidence_erasures (segment, byte_offset, byte_len, sha256, erased_at) \
         SELECT segment, byte_offset, byte_len, sha256, erased_at FROM evidence_blobs \
         WHERE erased_at = {now} AND sha256 IN ({blobs}) \
         UNION ALL \
         SELECT c.segment, c.byte_offset, c.byte_len, c.sha256, b.erased_at \
         FROM evidence_copies c JOIN evidence_blobs b ON b.sha256 = c.sha256 \
         WHERE b.erased_at = {now} AND c.sha256 IN ({blobs}) \
         ON CONFLICT (segment, byte_offset, sha256) DO NOTHING"
    )
}

/// Takes the archive lease for `holder` (parameter 1) until parameter 3, if it is free
/// or expired at parameter 2 or `holder`'s already.
pub(crate) fn claim_lease(holder: &str, now: &str, until: &str) -> String {
    format!(
        "UPDATE archive_lease SET holder = {holder}, until = {until} \
         WHERE id = 1 AND (holder IS NULL OR until < {now} OR holder = {holder})"
    )
}

/// Gives the archive lease back, if `holder` holds it.
pub(crate) fn release_lease(holder: &str) -> String {
    format!(
        "UPDATE archive_lease SET holder = NULL, until = NULL WHERE id = 1 AND holder = {holder}"
    )
}

/// Erasures not overwritten yet and not put off past parameter `now`, oldest first,
/// a segment's together, at most parameter `limit`. Never where a kept blob reads the
/// same bytes: a location is queued by the one that stored it, when no row kept it, so
/// this guards against a caller recording bytes it gave up before (the same PDF given
/// again after a lease was lost).
pub(crate) fn erasures_due(now: &str, limit: &str) -> String {
    format!(
        "SELECT segment, byte_offset, byte_len, sha256 FROM evidence_erasures e \
         WHERE overwritten_at IS NULL AND (retry_at IS NULL OR retry_at <= {now}) \
           AND NOT EXISTS (SELECT 1 FROM evidence_blobs b WHERE b.sha256 = e.sha256 \
                           AND b.erased_at IS NULL AND b.segment = e.segment \
                           AND b.byte_offset = e.byte_offset) \
         ORDER BY erased_at, segment, byte_offset, sha256 LIMIT {limit}"
    )
}

/// What became of erasures: their bytes overwritten, or the segment put off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErasureMark {
    Overwritten,
    RetryAt,
}

impl ErasureMark {
    pub(crate) fn column(self) -> &'static str {
        match self {
            ErasureMark::Overwritten => "overwritten_at",
            ErasureMark::RetryAt => "retry_at",
        }
    }
}

impl FileHolder {
    /// The audit row of the holder `id`'s destruction: a case's names the case.
    pub(crate) fn audit<'a>(
        self,
        id: i64,
        actor: &'a str,
        detail: &'a str,
        at: DateTime<Utc>,
    ) -> ChainedAudit<'a> {
        match self {
            FileHolder::Case => audit(Some(CaseId(id)), CASE_FILE_DESTROYED, actor, detail, at),
            FileHolder::Accident => audit(None, ACCIDENT_FILE_DESTROYED, actor, detail, at),
        }
    }

    /// The audit detail: blobs erased and the quiet cut-off (and the accident's id, as
    /// its row names no case).
    pub(crate) fn detail(self, id: i64, blobs_erased: u64, quiet_before: DateTime<Utc>) -> String {
        match self {
            FileHolder::Case => {
                serde_json::json!({ "blobs_erased": blobs_erased, "quiet_before": quiet_before })
            }
            FileHolder::Accident => serde_json::json!({
                "accident_id": id,
                "blobs_erased": blobs_erased,
                "quiet_before": quiet_before,
            }),
        }
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_bound_to_its_parameters() {
        use FileHolder::{Accident, Case};
        let erase = erase_blobs(Case, "?1", "?2");
        assert_eq!(erase.matches("case_id = ?1").count(), 5, "{erase}");
        assert!(erase.starts_with("UPDATE evidence_blobs SET erased_at = ?2"));
        let queue = queue_erasures(Case, "$1", "$2");
        assert_eq!(queue.matches("case_id = $1").count(), 10, "{queue}");
        assert_eq!(queue.matches("erased_at = $2").count(), 2, "{queue}");
        let copies = record_copies("(VALUES (1)) s");
        assert!(
            copies.contains("FROM (VALUES (1)) s JOIN evidence_blobs b"),
            "{copies}"
        );
        let lock = lock_blobs("ANY($1)", "ANY($2)");
        assert!(lock.ends_with("FOR UPDATE"));
        assert_eq!(lock.matches("case_id = ANY($1)").count(), 5, "{lock}");
        assert!(cases_due("$1", "$2", true).ends_with("LIMIT $2 FOR UPDATE OF c SKIP LOCKED"));
        assert!(cases_due("?1", "?2", false).ends_with("LIMIT ?2"));
        assert_eq!(
            Case.mark("?1", "?2"),
            "UPDATE cases SET evidence_destroyed_at = ?2 WHERE id = ?1"
        );
        assert!(ON_STORED_BLOB.contains("excluded.segment <> ''"));

        let erase = erase_blobs(Accident, "$1", "$2");
        assert!(
            erase.contains("sha256 IN (SELECT sha256 FROM accident_files WHERE accident_id = $1)")
        );
        assert!(!erase.contains("case_id = $1"), "{erase}");
        assert!(erase.contains("a.evidence_destroyed_at IS NULL"), "{erase}");
        assert!(queue_erasures(Accident, "?1", "?2").contains("accident_id = ?1"));
        assert!(
            lock.contains("WHERE accident_id = ANY($2)) ORDER BY sha256"),
            "{lock}"
        );
        assert!(accidents_due("$1", "$2", true).ends_with("LIMIT $2 FOR UPDATE OF a SKIP LOCKED"));
        assert_eq!(
            Accident.mark("$1", "$2"),
            "UPDATE accidents SET evidence_destroyed_at = $2 WHERE id = $1"
        );
    }

    #[test]
    fn an_accident_s_audit_names_the_accident() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let detail = FileHolder::Accident.detail(7, 2, at);
        let row = FileHolder::Accident.audit(7, "archive", &detail, at);
        assert_eq!(row.row.action, ACCIDENT_FILE_DESTROYED);
        assert_eq!(row.row.case_id, None);
        assert!(detail.contains("\"accident_id\":7"), "{detail}");
        let detail = FileHolder::Case.detail(7, 2, at);
        assert!(!detail.contains("accident_id"), "{detail}");
        assert_eq!(
            FileHolder::Case
                .audit(7, "archive", &detail, at)
                .row
                .case_id,
            Some(CaseId(7))
        );
    }
}
