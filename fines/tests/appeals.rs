//! After delivery, on SQLite and PostgreSQL: a delivered case's clocks are dated and
//! the deadlines scheduler moves it on (once, however many schedulers run); an appeal
//! pauses the clocks, its rejection dates them again, an annulment of a paid case
//! queues a refund; a bulk void ends every open case of a device in a time range.

use std::time::Duration;

use chrono::{Days, TimeZone, Utc};
use kozomol_core::{CaseId, CaseState, Jurisdiction};
use kozomol_fines::clocks::{run_dating, run_deadlines, Dated, DatingStage};
use kozomol_store::{
    AppealDecided, AppealFiled, AppealState, BulkVoidRequest, NewAppeal, NewAttachment,
    PaymentChannel, PaymentPosted, PaymentRefusal, PaymentReversal, PaymentReversed, RefundOutcome,
    RefundSettled, RefundSettlement,
};
use support::issued::{
    audit_actions, issued_speeding, issuer, paid_in_full, paid_in_full_at, state, world, World,
};
use support::Backend;

mod support;

fn dating() -> DatingStage {
    DatingStage {
        worker: "dating-1".into(),
        batch: 8,
        lease: Duration::from_secs(60),
        jurisdiction: Jurisdiction::Kg,
    }
}

async fn date_all(w: &World) -> Vec<(CaseId, Dated)> {
    let issuer = issuer(w);
    run_dating(
        &dating(),
        &issuer.catalogue,
        &issuer.calendars,
        w.store.as_ref(),
    )
    .await
    .expect("dating")
}

/// A speeding case issued, delivered through the portal now, and dated.
async fn delivered(w: &World) -> (CaseId, String) {
    let (id, number) = issued_speeding(w).await;
    support::issued::deliver(w, &number, Utc::now()).await;
    assert_eq!(state(w.store.as_ref(), id).await, CaseState::Delivered);
    assert_eq!(
        date_all(w).await,
        vec![(id, Dated::Clock(CaseState::Delivered))]
    );
    (id, number)
}

#[tokio::test]
async fn a_fine_paid_before_its_delivery_is_dated_when_the_proof_comes_on_sqlite() {
    a_fine_paid_before_its_delivery_is_dated_when_the_proof_comes(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_fine_paid_before_its_delivery_is_dated_when_the_proof_comes_on_postgres() {
    a_fine_paid_before_its_delivery_is_dated_when_the_proof_comes(Backend::Postgres).await;
}

/// Paid while `issued`, then delivered: its appeal window runs from the delivery and
/// ends (it never closed before); the discount it was paid at stands, though the proof
/// dates the delivery so early that the window would have ended before the payment; a
/// reversal of the payment afterwards puts it in `delivered` with its clocks running,
/// not back in `issued` with nothing to move it.
async fn a_fine_paid_before_its_delivery_is_dated_when_the_proof_comes(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (id, number) = issued_speeding(&w).await;
    // Signed for today; paid forty days on, still at the discount (no clock yet); the
    // receipt reaches the office after that.
    let signed_for = Utc::now();
    let paid_at = signed_for + chrono::Duration::days(40);
    let amount = paid_in_full_at(&w, &number, paid_at).await;
    assert_eq!(state(store, id).await, CaseState::PaidDiscounted);
    assert!(date_all(&w).await.is_empty(), "nothing is delivered yet");
    support::issued::deliver(&w, &number, signed_for).await;
    assert_eq!(
        state(store, id).await,
        CaseState::PaidDiscounted,
        "the proof leaves it paid"
    );
    assert_eq!(
        date_all(&w).await,
        vec![(id, Dated::Clock(CaseState::PaidDiscounted))]
    );
    assert!(date_all(&w).await.is_empty(), "dated once");
    let clock = store.clock(id).await.expect("read").expect("clock");
    let day = |at: chrono::DateTime<Utc>| Jurisdiction::Kg.local_date(at);
    assert_eq!(clock.runs_from, day(signed_for));
    assert_eq!(clock.next_wakeup, None, "a paid case's clocks do not wake");
    assert_eq!(clock.discount_until, Some(day(paid_at)), "{clock:?}");
    let appeal_until = clock.appeal_until.expect("an appeal window");
    assert!(appeal_until < day(paid_at), "{clock:?}");
    let after = appeal_until.succ_opt().expect("day");
    assert_eq!(
        kozomol_fines::appeals::appeal_in_time(Some(&clock), after),
        Err(kozomol_fines::appeals::AppealRefusal::Late(appeal_until))
    );

    // The provider takes the money back: the case is delivered, and its deadlines come.
    let reversed = chargeback(&w, &number, amount).await;
    assert!(
        matches!(
            reversed,
            PaymentReversed::Reversed {
                to_state: CaseState::Delivered,
                ..
            }
        ),
        "{reversed:?}"
    );
    let restarted = store.clock(id).await.expect("read").expect("clock");
    let wakeup = restarted.next_wakeup.expect("the clocks run again");
    let noon = Utc.from_utc_datetime(&wakeup.and_hms_opt(6, 0, 0).expect("time"));
    let pass = run_deadlines(store, "fines:deadlines", noon, 100)
        .await
        .expect("pass");
    assert!(
        pass.moved.iter().any(|(case, _)| *case == id),
        "{restarted:?}: {pass:?}"
    );
}

/// A fine paid while `issued`, appealed and rejected (its clocks dated from the
/// decision, the discount forgone), then proven delivered: it is not dated again from
/// the delivery (which would give the discount back).
#[tokio::test]
async fn a_paid_fine_dated_after_its_appeal_is_not_dated_again_on_delivery() {
    let w = world(Backend::Sqlite).await;
    let store = w.store.as_ref();
    let (id, number) = issued_speeding(&w).await;
    paid_in_full(&w, &number).await;
    let filed = match store.file_appeal(&appeal(id, &w)).await.expect("file") {
        AppealFiled::Filed(record) => record,
        other => panic!("{other:?}"),
    };
    store
        .decide_appeal(filed.id, AppealState::Rejected, "supervisor-1", "нет")
        .await
        .expect("decide");
    let dated = date_all(&w).await;
    assert_eq!(dated.len(), 1, "{dated:?}");
    let clock = store.clock(id).await.expect("read").expect("clock");
    assert!(!clock.discount_open, "{clock:?}");
    support::issued::deliver(&w, &number, Utc::now()).await;
    assert!(
        date_all(&w).await.is_empty(),
        "dated once, from the decision"
    );
    assert_eq!(store.clock(id).await.expect("read").expect("clock"), clock);
}

#[tokio::test]
async fn a_case_the_catalogue_cannot_date_stays_delivered_until_it_can_on_sqlite() {
    a_case_the_catalogue_cannot_date_stays_delivered_until_it_can(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_case_the_catalogue_cannot_date_stays_delivered_until_it_can_on_postgres() {
    a_case_the_catalogue_cannot_date_stays_delivered_until_it_can(Backend::Postgres).await;
}

/// A delivered case the catalogue cannot date stays `delivered` (never handed back to
/// review, where a decision could reject or re-plate a resolution that stands) and is
/// dated once the catalogue is mended and its lease has ended — also when it was paid
/// in full meanwhile, however often it was tried before: it stays paid, and its appeal
/// window is dated.
async fn a_case_the_catalogue_cannot_date_stays_delivered_until_it_can(backend: Backend) {
    let w = world(backend).await;
    let bundled =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalogue/kg.toml"))
            .expect("the Kyrgyz catalogue");
    // 52 km/h over: the 40–60 article, its amount unknown now.
    let broken = bundled.replacen(
        "over_below = 60\nunits = 75\n",
        "over_below = 60\nsanction = \"unknown\"\n",
        1,
    );
    assert_ne!(broken, bundled);
    let broken = kozomol_fines::catalogue::Catalogue::parse("kg.toml", &broken).expect("parses");
    let mut stage = dating();
    stage.lease = Duration::from_millis(200);
    let issuer = issuer(&w);
    let date_with = |catalogue| run_dating(&stage, catalogue, &issuer.calendars, w.store.as_ref());

    let (unpaid, number) = issued_speeding(&w).await;
    support::issued::deliver(&w, &number, Utc::now()).await;
    let dated = date_with(&broken).await.expect("dating");
    assert!(
        matches!(&dated[..], [(case, Dated::LeftUndated(_))] if *case == unpaid),
        "{dated:?}"
    );
    assert_eq!(state(w.store.as_ref(), unpaid).await, CaseState::Delivered);
    assert!(w.store.clock(unpaid).await.expect("read").is_none());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dated = date_with(&issuer.catalogue).await.expect("dating");
    assert_eq!(dated, vec![(unpaid, Dated::Clock(CaseState::Delivered))]);

    // Tried five times, then paid in full: dated once the catalogue is mended.
    let (paid, number) = issued_speeding(&w).await;
    support::issued::deliver(&w, &number, Utc::now()).await;
    for _ in 0..5 {
        let dated = date_with(&broken).await.expect("dating");
        assert!(
            matches!(&dated[..], [(_, Dated::LeftUndated(_))]),
            "{dated:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    paid_in_full(&w, &number).await;
    assert_eq!(
        state(w.store.as_ref(), paid).await,
        CaseState::PaidDiscounted
    );
    let dated = date_with(&issuer.catalogue).await.expect("dating");
    assert_eq!(dated, vec![(paid, Dated::Clock(CaseState::PaidDiscounted))]);
    assert!(w.store.clock(paid).await.expect("read").is_some());
}

#[tokio::test]
async fn clocks_are_dated_at_delivery_and_deadlines_move_cases_on_sqlite() {
    clocks_are_dated_at_delivery_and_deadlines_move_cases(Backend::Sqlite).await;
}

#[tokio::test]
async fn clocks_are_dated_at_delivery_and_deadlines_move_cases_on_postgres() {
    clocks_are_dated_at_delivery_and_deadlines_move_cases(Backend::Postgres).await;
}

async fn clocks_are_dated_at_delivery_and_deadlines_move_cases(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (id, _) = delivered(&w).await;
    let clock = store.clock(id).await.expect("read").expect("clock");
    let today = Jurisdiction::Kg.local_date(Utc::now());
    assert_eq!(clock.runs_from, today);
    assert!(clock.discount_open, "{clock:?}");
    let discount_until = clock.discount_until.expect("KG has a discount");
    let due = clock.due.expect("a due date");
    assert!(
        discount_until >= today && due >= discount_until,
        "{clock:?}"
    );
    assert!(clock.appeal_until.is_some(), "{clock:?}");
    assert_eq!(
        clock.next_wakeup,
        discount_until.checked_add_days(Days::new(1))
    );
    // Dated once: nothing more to claim.
    assert!(date_all(&w).await.is_empty());

    // Nothing is due today, nor on the discount's last day (it is still within time).
    let noon = |d: chrono::NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(6, 0, 0).expect("time"));
    for day in [today, discount_until] {
        let pass = run_deadlines(store, "fines:deadlines", noon(day), 100)
            .await
            .expect("pass");
        assert!(pass.moved.is_empty(), "{day}: {pass:?}");
    }

    // The day after: the discount ends; two schedulers at once move it once.
    let after_discount = noon(discount_until.checked_add_days(Days::new(1)).expect("day"));
    let (a, b) = tokio::join!(
        run_deadlines(store, "fines:deadlines-a", after_discount, 100),
        run_deadlines(store, "fines:deadlines-b", after_discount, 100)
    );
    let (a, b) = (a.expect("a"), b.expect("b"));
    let moves: Vec<_> = a.moved.iter().chain(&b.moved).collect();
    assert_eq!(moves, vec![&(id, "discount_ended")], "{a:?} {b:?}");
    assert_eq!(state(store, id).await, CaseState::Delivered);
    assert!(
        !store
            .clock(id)
            .await
            .expect("read")
            .expect("clock")
            .discount_open
    );

    // Weeks late: overdue first, then (if the catalogue dates it) enforcement, then
    // the lapse — one move a pass, in the rules' order.
    let far = noon(
        clock
            .lapses
            .expect("a lapse date")
            .checked_add_days(Days::new(1))
            .expect("day"),
    );
    let mut seen = Vec::new();
    for _ in 0..5 {
        let pass = run_deadlines(store, "fines:deadlines", far, 100)
            .await
            .expect("pass");
        seen.extend(pass.moved.iter().map(|(_, m)| *m));
    }
    assert_eq!(seen.first(), Some(&"lapsed"), "lapse wins: {seen:?}");
    assert_eq!(state(store, id).await, CaseState::Lapsed);
    assert_eq!(
        store
            .clock(id)
            .await
            .expect("read")
            .expect("clock")
            .next_wakeup,
        None
    );
    let audit = audit_actions(store, id).await;
    for action in ["case.clocks_dated", "case.deadline_passed"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
}

#[tokio::test]
async fn overdue_comes_after_the_due_date_on_sqlite() {
    overdue_comes_after_the_due_date(Backend::Sqlite).await;
}

#[tokio::test]
async fn overdue_comes_after_the_due_date_on_postgres() {
    overdue_comes_after_the_due_date(Backend::Postgres).await;
}

async fn overdue_comes_after_the_due_date(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (id, _) = delivered(&w).await;
    let clock = store.clock(id).await.expect("read").expect("clock");
    let after_due = Utc.from_utc_datetime(
        &clock
            .due
            .expect("due")
            .checked_add_days(Days::new(1))
            .expect("day")
            .and_hms_opt(6, 0, 0)
            .expect("time"),
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let pass = run_deadlines(store, "fines:deadlines", after_due, 100)
            .await
            .expect("pass");
        seen.extend(pass.moved.iter().map(|(_, m)| *m));
    }
    // The discount ended before the due date, so it goes first.
    assert_eq!(seen, vec!["discount_ended", "overdue"]);
    assert_eq!(state(store, id).await, CaseState::Overdue);
}

#[tokio::test]
async fn an_appeal_pauses_the_clocks_and_a_rejection_dates_them_again_on_sqlite() {
    an_appeal_pauses_the_clocks_and_a_rejection_dates_them_again(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_appeal_pauses_the_clocks_and_a_rejection_dates_them_again_on_postgres() {
    an_appeal_pauses_the_clocks_and_a_rejection_dates_them_again(Backend::Postgres).await;
}

fn appeal(case_id: CaseId, w: &World) -> NewAppeal {
    let scan = b"%PDF-1.7 a scanned letter".to_vec();
    let location = w
        .evidence
        .append_batch(&[scan.as_slice()])
        .expect("stored")
        .remove(0);
    NewAppeal {
        case_id,
        appellant: "Асанов Бакыт Токтогулович".into(),
        contact: Some("+996555123456".into()),
        grounds: "В это время автомобиль находился на ремонте.".into(),
        filed_by: "officer-3".into(),
        attachments: vec![NewAttachment {
            name: "справка.pdf".into(),
            content_type: "application/pdf".into(),
            evidence: kozomol_store::EvidenceRef {
                sha256: sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
                    &scan,
                ))
                .into(),
                location,
            },
        }],
    }
}

async fn an_appeal_pauses_the_clocks_and_a_rejection_dates_them_again(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (id, number) = delivered(&w).await;

    let filed = match store.file_appeal(&appeal(id, &w)).await.expect("file") {
        AppealFiled::Filed(record) => record,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (
            filed.state,
            filed.from_state,
            filed.resolution_number.as_str()
        ),
        (AppealState::Filed, CaseState::Delivered, number.as_str())
    );
    assert_eq!(filed.attachments.len(), 1);
    assert_eq!(
        w.evidence
            .read(&filed.attachments[0].location, &filed.attachments[0].sha256)
            .expect("attachment reads back"),
        b"%PDF-1.7 a scanned letter"
    );
    assert_eq!(state(store, id).await, CaseState::Appealed);
    let paused = store.clock(id).await.expect("read").expect("clock");
    assert_eq!((paused.next_wakeup, paused.discount_open), (None, false));
    // A second appeal while one is open is refused, and nothing changes.
    assert_eq!(
        store.file_appeal(&appeal(id, &w)).await.expect("file"),
        AppealFiled::AlreadyOpen(filed.id)
    );
    // The scheduler does not touch a paused case, whatever the date.
    let far = Utc::now() + chrono::Duration::days(800);
    assert!(run_deadlines(store, "fines:deadlines", far, 100)
        .await
        .expect("pass")
        .moved
        .is_empty());

    assert_eq!(
        store
            .decide_appeal(
                filed.id,
                AppealState::Rejected,
                "supervisor-1",
                "Доводы не подтверждены."
            )
            .await
            .expect("decide"),
        AppealDecided::Decided {
            case_state: CaseState::AppealRejected,
            refund_request: None
        }
    );
    assert_eq!(
        store
            .decide_appeal(filed.id, AppealState::Annulled, "supervisor-1", "again")
            .await
            .expect("decide"),
        AppealDecided::NotOpen(AppealState::Rejected)
    );
    // Dated again from the decision, with no discount: the case runs as delivered.
    assert_eq!(
        date_all(&w).await,
        vec![(id, Dated::Clock(CaseState::Delivered))]
    );
    let again = store.clock(id).await.expect("read").expect("clock");
    assert_eq!(again.runs_from, Jurisdiction::Kg.local_date(Utc::now()));
    assert!(!again.discount_open);
    assert!(again.next_wakeup.is_some());
    let audit = audit_actions(store, id).await;
    for action in ["case.appeal_filed", "case.appeal_decided"] {
        assert!(audit.iter().any(|a| a == action), "{action} in {audit:?}");
    }
    assert!(store
        .refund_requests(0, 10)
        .await
        .expect("refunds")
        .is_empty());
}

#[tokio::test]
async fn annulling_a_paid_resolution_queues_a_refund_on_sqlite() {
    annulling_a_paid_resolution_queues_a_refund(Backend::Sqlite).await;
}

#[tokio::test]
async fn annulling_a_paid_resolution_queues_a_refund_on_postgres() {
    annulling_a_paid_resolution_queues_a_refund(Backend::Postgres).await;
}

async fn annulling_a_paid_resolution_queues_a_refund(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (id, number) = delivered(&w).await;
    let paid = paid_in_full(&w, &number).await;
    assert_eq!(state(store, id).await, CaseState::PaidDiscounted);
    let AppealFiled::Filed(filed) = store.file_appeal(&appeal(id, &w)).await.expect("file") else {
        panic!("not filed");
    };
    assert_eq!(filed.from_state, CaseState::PaidDiscounted);
    let AppealDecided::Decided {
        case_state,
        refund_request: Some(refund),
    } = store
        .decide_appeal(
            filed.id,
            AppealState::Annulled,
            "supervisor-1",
            "Нарушение не доказано.",
        )
        .await
        .expect("decide")
    else {
        panic!("no refund queued");
    };
    assert_eq!(case_state, CaseState::Annulled);
    let refunds = store.refund_requests(0, 10).await.expect("refunds");
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (
            refunds[0].id,
            refunds[0].case_id,
            refunds[0].resolution_number.as_str(),
            refunds[0].cause.as_str(),
            refunds[0].state.as_str(),
            refunds[0].amount
        ),
        (refund, id, number.as_str(), "annulled", "queued", paid)
    );
    // An annulled case takes no new appeal.
    assert_eq!(
        store.file_appeal(&appeal(id, &w)).await.expect("file"),
        AppealFiled::NotAppealable(CaseState::Annulled)
    );
}

/// The provider takes back the payment `paid_in_full` made of `number`.
async fn chargeback(w: &World, number: &str, amount: kozomol_core::Money) -> PaymentReversed {
    let store = w.store.as_ref();
    store
        .reverse_payment(&PaymentReversal {
            payment_code: store
                .resolution(number)
                .await
                .expect("read")
                .expect("issued")
                .payment_code,
            channel: PaymentChannel::Api,
            source: "provider-1".into(),
            external_id: Some(format!("pay-{number}")),
            amount: Some(amount),
            paid_at: None,
            reversal_id: None,
            reason: "chargeback".into(),
            reversed_by: "payments-api".into(),
            restart_clock: kozomol_fines::clocks::restart_clock,
            money_left: false,
        })
        .await
        .expect("reverse")
}

/// A paid, appealed case whose appeal is filed and the case `appealed`.
async fn paid_and_appealed(w: &World) -> (CaseId, String, kozomol_core::Money, i64) {
    let (id, number) = delivered(w).await;
    // Paid a second before: an appeal filed in the same millisecond would take the
    // discount from it.
    let paid = paid_in_full_at(w, &number, Utc::now() - chrono::Duration::seconds(1)).await;
    let AppealFiled::Filed(filed) = w.store.file_appeal(&appeal(id, w)).await.expect("file") else {
        panic!("not filed");
    };
    (id, number, paid, filed.id)
}

#[tokio::test]
async fn money_paid_before_an_appeal_in_vain_keeps_its_discount_on_sqlite() {
    money_paid_before_an_appeal_in_vain_keeps_its_discount(Backend::Sqlite).await;
}

#[tokio::test]
async fn money_paid_before_an_appeal_in_vain_keeps_its_discount_on_postgres() {
    money_paid_before_an_appeal_in_vain_keeps_its_discount(Backend::Postgres).await;
}

/// The appeal forfeits the discount for money paid after it was filed, not before: a
/// fine paid at the discount and appealed in vain stays paid — before its clocks are
/// dated again and after — and takes no second half; a part of the discount paid
/// before the appeal counts towards the full amount.
async fn money_paid_before_an_appeal_in_vain_keeps_its_discount(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let reject = |appeal_id| async move {
        store
            .decide_appeal(appeal_id, AppealState::Rejected, "supervisor-1", "нет")
            .await
            .expect("decide")
    };
    let quote = |number: String| async move {
        let code = support::issued::payment_code(store, &number).await;
        store.payment_quote(&code, Utc::now()).await.expect("read")
    };

    let (settled, number, paid, appeal_id) = paid_and_appealed(&w).await;
    let fine = store
        .resolution(&number)
        .await
        .expect("read")
        .expect("issued");
    assert_eq!(Some(paid), fine.discounted, "paid at the discount");
    reject(appeal_id).await;
    for dated in [false, true] {
        assert_eq!(
            quote(number.clone()).await.map(|q| q.outstanding),
            Err(PaymentRefusal::AlreadyPaid),
            "dated again: {dated}"
        );
        let view = store
            .payer_view(&number, Utc::now())
            .await
            .expect("read")
            .expect("the fine");
        assert_eq!((view.outstanding, view.paid_minor), (None, paid.minor));
        if !dated {
            assert_eq!(
                date_all(&w).await,
                vec![(settled, Dated::Clock(CaseState::PaidDiscounted))]
            );
        }
    }

    // Half the discounted amount before the appeal: the rest of the full fine after.
    let (part, number) = delivered(&w).await;
    let half = kozomol_core::Money::new(paid.minor / 2, paid.currency);
    let posted = support::issued::pay(&w, &number, "half", half, Utc::now(), false).await;
    assert!(
        matches!(posted, PaymentPosted::Applied(ref p) if p.to_state == CaseState::PartiallyPaid),
        "{posted:?}"
    );
    let AppealFiled::Filed(filed) = store.file_appeal(&appeal(part, &w)).await.expect("file")
    else {
        panic!("not filed");
    };
    reject(filed.id).await;
    assert_eq!(
        date_all(&w).await,
        vec![(part, Dated::Clock(CaseState::PartiallyPaid))]
    );
    assert_eq!(
        quote(number).await.map(|q| q.outstanding.minor),
        Ok(fine.amount.minor - half.minor)
    );
}

/// Annuls the appeal's resolution; the refund request it queued.
async fn annulled_with_refund(w: &World, appeal_id: i64) -> i64 {
    match w
        .store
        .decide_appeal(appeal_id, AppealState::Annulled, "supervisor-1", "да")
        .await
        .expect("decide")
    {
        AppealDecided::Decided {
            refund_request: Some(refund),
            ..
        } => refund,
        other => panic!("no refund queued: {other:?}"),
    }
}

#[tokio::test]
async fn a_chargeback_is_taken_under_appeal_and_after_annulment_on_sqlite() {
    a_chargeback_is_taken_under_appeal_and_after_annulment(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_chargeback_is_taken_under_appeal_and_after_annulment_on_postgres() {
    a_chargeback_is_taken_under_appeal_and_after_annulment(Backend::Postgres).await;
}

/// A chargeback is the bank's fact: taken while the case is appealed (a rejection then
/// leaves it unpaid with its clocks running, an annulment owes nothing back) and after
/// an annulment (its queued refund is withdrawn: the payer has the money). Only a case
/// already refunded refuses it (finance recovers the double return by hand).
async fn a_chargeback_is_taken_under_appeal_and_after_annulment(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();

    // Appealed, charged back, rejected: back to `delivered`, not `paid` with no money.
    let (rejected, number, paid, appeal_id) = paid_and_appealed(&w).await;
    let reversed = chargeback(&w, &number, paid).await;
    assert!(
        matches!(
            reversed,
            PaymentReversed::Reversed {
                from_state: CaseState::Appealed,
                to_state: CaseState::Appealed,
                ..
            }
        ),
        "{reversed:?}"
    );
    store
        .decide_appeal(appeal_id, AppealState::Rejected, "supervisor-1", "нет")
        .await
        .expect("decide");
    assert_eq!(
        date_all(&w).await,
        vec![(rejected, Dated::Clock(CaseState::Delivered))]
    );
    let clock = store.clock(rejected).await.expect("read").expect("clock");
    assert!(clock.next_wakeup.is_some(), "its deadlines run: {clock:?}");

    // Appealed, charged back, annulled: nothing left to return.
    let (nothing_owed, number, paid, appeal_id) = paid_and_appealed(&w).await;
    chargeback(&w, &number, paid).await;
    assert_eq!(
        store
            .decide_appeal(appeal_id, AppealState::Annulled, "supervisor-1", "да")
            .await
            .expect("decide"),
        AppealDecided::Decided {
            case_state: CaseState::Annulled,
            refund_request: None
        }
    );
    assert_eq!(state(store, nothing_owed).await, CaseState::Annulled);

    // Annulled with its refund queued, then charged back: the refund is withdrawn.
    let (annulled, number, paid, appeal_id) = paid_and_appealed(&w).await;
    let refund = annulled_with_refund(&w, appeal_id).await;
    let reversed = chargeback(&w, &number, paid).await;
    assert!(
        matches!(
            reversed,
            PaymentReversed::Reversed {
                to_state: CaseState::Annulled,
                ..
            }
        ),
        "{reversed:?}"
    );
    let refunds = store.refund_requests(0, 100).await.expect("refunds");
    let request = refunds.iter().find(|r| r.id == refund).expect("request");
    assert_eq!(request.state, "withdrawn", "{request:?}");
    assert!(audit_actions(store, annulled)
        .await
        .iter()
        .any(|a| a == "case.refund_repriced"));
    assert_eq!(state(store, annulled).await, CaseState::Annulled);

    // Refunded, then charged back: refused, the money went back twice.
    let (refunded, number, paid, appeal_id) = paid_and_appealed(&w).await;
    let refund = annulled_with_refund(&w, appeal_id).await;
    assert!(matches!(
        store
            .settle_refund(&RefundSettlement {
                id: refund,
                outcome: RefundOutcome::Refunded,
                reference: Some("bank-77".into()),
                note: None,
                settled_by: "finance-1".into(),
            })
            .await
            .expect("settle"),
        RefundSettled::Settled(_)
    ));
    assert_eq!(state(store, refunded).await, CaseState::Refunded);
    assert_eq!(
        chargeback(&w, &number, paid).await,
        PaymentReversed::NotReversible(CaseState::Refunded)
    );
}

#[tokio::test]
async fn a_bulk_void_ends_a_devices_open_cases_in_its_range_on_sqlite() {
    a_bulk_void_ends_a_devices_open_cases_in_its_range(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_bulk_void_ends_a_devices_open_cases_in_its_range_on_postgres() {
    a_bulk_void_ends_a_devices_open_cases_in_its_range(Backend::Postgres).await;
}

async fn a_bulk_void_ends_a_devices_open_cases_in_its_range(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let (paid, paid_number) = delivered(&w).await;
    paid_in_full(&w, &paid_number).await;
    let (appealed, _) = issued_speeding(&w).await;
    let AppealFiled::Filed(open) = store
        .file_appeal(&appeal(appealed, &w))
        .await
        .expect("file")
    else {
        panic!("not filed");
    };
    let (rejected, _) = issued_speeding(&w).await;
    w.db.force_state(rejected, CaseState::Rejected).await;

    // Every test case was captured at 2026-03-10 08:30 UTC by device KRIS-P-12345.
    let at = |h: u32| {
        Utc.with_ymd_and_hms(2026, 3, 10, h, 0, 0)
            .single()
            .expect("instant")
    };
    let request = |serial: &str, from, until| BulkVoidRequest {
        device_serial: serial.into(),
        captured_from: from,
        captured_until: until,
        reason: "Свидетельство о поверке признано недействительным".into(),
        requested_by: "supervisor-1".into(),
    };
    for (serial, from, until) in [
        ("KRIS-P-12345", at(9), at(10)),
        ("KRIS-P-99999", at(8), at(9)),
    ] {
        let none = store
            .bulk_void(&request(serial, from, until))
            .await
            .expect("void");
        assert!(none.voided.is_empty(), "{serial}: {none:?}");
    }
    assert!(matches!(
        store
            .bulk_void(&request("KRIS-P-12345", at(9), at(8)))
            .await,
        Err(kozomol_store::StoreError::Invalid(_))
    ));

    let done = store
        .bulk_void(&request("KRIS-P-12345", at(8), at(9)))
        .await
        .expect("void");
    let mut want = vec![paid, appealed];
    want.sort();
    assert_eq!((done.voided.clone(), done.refund_requests), (want, 1));
    for id in [paid, appealed] {
        assert_eq!(state(store, id).await, CaseState::Voided);
        assert!(audit_actions(store, id)
            .await
            .iter()
            .any(|a| a == "case.voided"));
    }
    assert_eq!(
        state(store, rejected).await,
        CaseState::Rejected,
        "closed cases stay"
    );
    let appeal = store.appeal(open.id).await.expect("read").expect("appeal");
    assert_eq!(appeal.state, AppealState::Annulled);
    let refunds = store.refund_requests(0, 10).await.expect("refunds");
    assert_eq!(
        refunds
            .iter()
            .map(|r| (r.case_id, r.cause.as_str()))
            .collect::<Vec<_>>(),
        vec![(paid, "voided")]
    );
    // Again: nothing left to void, nothing refunded twice.
    let again = store
        .bulk_void(&request("KRIS-P-12345", at(8), at(9)))
        .await
        .expect("void");
    assert_eq!((again.voided.len(), again.refund_requests), (0, 0));
}
