//! The rules around appeals that are not the store's: whether an appeal is still in
//! time, whether the case takes another, and what an appellant may attach.

use chrono::NaiveDate;
use kozomol_store::{AppealRecord, AppealState, StoredClock};

/// Attachments an appeal takes: photos and documents, each at most this size.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_ATTACHMENTS: usize = 10;
pub const ATTACHMENT_TYPES: [&str; 3] = ["image/jpeg", "image/png", "application/pdf"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppealRefusal {
    #[error("the appeal window closed on {0}")]
    Late(NaiveDate),
    #[error("appeal {0} is still open")]
    StillOpen(i64),
    #[error("appeal {0} was rejected: that decision is appealed in court, not here")]
    AlreadyRejected(i64),
    #[error("at most {MAX_ATTACHMENTS} attachments")]
    TooManyAttachments,
    #[error("attachment `{0}` is larger than 10 MiB")]
    AttachmentTooLarge(String),
    #[error("attachment `{name}` is {content_type}; JPEG, PNG or PDF only")]
    AttachmentType { name: String, content_type: String },
    #[error("attachment `{0}` is not what its type says")]
    AttachmentContent(String),
}

/// An appeal is in time until the end of `appeal_until`; before delivery (no clock)
/// the window has not started, so it is open.
pub fn appeal_in_time(clock: Option<&StoredClock>, today: NaiveDate) -> Result<(), AppealRefusal> {
    match clock.and_then(|c| c.appeal_until) {
        Some(last) if today > last => Err(AppealRefusal::Late(last)),
        _ => Ok(()),
    }
}

/// Whether a case whose appeals so far are `appeals` takes another: not while one is
/// open, and not once one was rejected — the police hear one appeal against a
/// resolution; their decision on it goes to court. (A rejection re-dates the clocks
/// from the decision, which would otherwise open the window again after every one.)
pub fn another_appeal(appeals: &[AppealRecord]) -> Result<(), AppealRefusal> {
    for appeal in appeals {
        match appeal.state {
            AppealState::Filed => return Err(AppealRefusal::StillOpen(appeal.id)),
            AppealState::Rejected => return Err(AppealRefusal::AlreadyRejected(appeal.id)),
            AppealState::Annulled => {}
        }
    }
    Ok(())
}

/// Checks an attachment's declared type, size and first bytes.
pub fn check_attachment(name: &str, content_type: &str, bytes: &[u8]) -> Result<(), AppealRefusal> {
    if !ATTACHMENT_TYPES.contains(&content_type) {
        return Err(AppealRefusal::AttachmentType {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
        });
    }
    if bytes.len() > MAX_ATTACHMENT_BYTES {
        return Err(AppealRefusal::AttachmentTooLarge(name.to_owned()));
    }
    let magic: &[u8] = match content_type {
        "image/jpeg" => &[0xff, 0xd8, 0xff],
        "image/png" => b"\x89PNG\r\n\x1a\n",
        _ => b"%PDF-",
    };
    if !bytes.starts_with(magic) {
        return Err(AppealRefusal::AttachmentContent(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kozomol_core::{CaseId, Jurisdiction};

    fn clock(appeal_until: Option<NaiveDate>) -> StoredClock {
        let d = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        StoredClock {
            case_id: CaseId(1),
            jurisdiction: Jurisdiction::Kz,
            runs_from: d,
            discount_until: None,
            due: None,
            appeal_until,
            enforcement_by: None,
            lapses: None,
            discount_open: false,
            next_wakeup: None,
        }
    }

    #[test]
    fn the_window_includes_its_last_day() {
        let last = NaiveDate::from_ymd_opt(2026, 3, 12).expect("date");
        let cases = [
            (None, last, Ok(())),
            (Some(clock(None)), last, Ok(())),
            (
                Some(clock(Some(last))),
                last.pred_opt().expect("day"),
                Ok(()),
            ),
            (Some(clock(Some(last))), last, Ok(())),
            (
                Some(clock(Some(last))),
                last.succ_opt().expect("day"),
                Err(AppealRefusal::Late(last)),
            ),
        ];
        for (clock, today, want) in cases {
            assert_eq!(appeal_in_time(clock.as_ref(), today), want, "{today}");
        }
    }

    #[test]
    fn one_appeal_is_heard() {
        let appeal = |id: i64, state: AppealState| AppealRecord {
            id,
            case_id: CaseId(1),
            resolution_number: "KG-BSK-2026-0000001".to_owned(),
            appellant: "А. Б.".to_owned(),
            contact: None,
            grounds: "—".to_owned(),
            filed_at: chrono::Utc::now(),
            filed_by: "portal".to_owned(),
            from_state: kozomol_core::CaseState::Delivered,
            state,
            decided_by: None,
            decided_at: None,
            decision_note: None,
            attachments: Vec::new(),
        };
        let cases = [
            (vec![], Ok(())),
            (vec![appeal(1, AppealState::Annulled)], Ok(())),
            (
                vec![appeal(1, AppealState::Filed)],
                Err(AppealRefusal::StillOpen(1)),
            ),
            (
                vec![appeal(1, AppealState::Rejected)],
                Err(AppealRefusal::AlreadyRejected(1)),
            ),
            (
                vec![
                    appeal(1, AppealState::Annulled),
                    appeal(2, AppealState::Rejected),
                ],
                Err(AppealRefusal::AlreadyRejected(2)),
            ),
        ];
        for (appeals, want) in cases {
            assert_eq!(another_appeal(&appeals), want, "{appeals:?}");
        }
    }

    #[test]
    fn attachments_are_checked_by_type_size_and_content() {
        let cases: [(&str, &[u8], Result<(), &str>); 6] = [
            ("image/jpeg", &[0xff, 0xd8, 0xff, 0xe0], Ok(())),
            ("image/png", b"\x89PNG\r\n\x1a\n....", Ok(())),
            ("application/pdf", b"%PDF-1.7", Ok(())),
            ("image/jpeg", b"%PDF-1.7", Err("content")),
            ("text/html", b"<html>", Err("type")),
            ("application/pdf", b"", Err("content")),
        ];
        for (content_type, bytes, want) in cases {
            let got = check_attachment("a", content_type, bytes);
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(AppealRefusal::AttachmentContent(_)), Err("content")) => {}
                (Err(AppealRefusal::AttachmentType { .. }), Err("type")) => {}
                (got, want) => panic!("{content_type}: {got:?}, want {want:?}"),
            }
        }
        let big = vec![0xffu8; MAX_ATTACHMENT_BYTES + 1];
        assert_eq!(
            check_attachment("big", "image/jpeg", &big),
            Err(AppealRefusal::AttachmentTooLarge("big".into()))
        );
    }
}
