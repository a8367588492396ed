//! The delivery outbox end to end, on SQLite and PostgreSQL: resolutions issued through
//! the real stages (owner lookup over the stand-in security server, rendered and
//! signed PDFs), then delivered by the outbox worker through the stand-in SMS gateway,
//! a test SMTP server and print batches; proofs from the gateway, the state portal and
//! postal return receipts; contacts refused when no channel could use them.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use kozomol_core::{
    CameraId, CaseState, ClockSource, CoreError, DeliveryChannel, DeliveryState, EventId, FrameRef,
    FrameRole, Measurement, MeasuringDevice, ReviewDecision, ReviewTier, ViolationEvent,
    ViolationKind,
};
use kozomol_fines::delivery::standin::StandInGateway;
use kozomol_fines::delivery::{
    add_contact, record_portal_delivery, record_return_receipt, DeliveryConfig, DeliveryError,
    DeliveryWorker, PassReport, SmsGateway, SmsGatewayConfig, SmtpConfig, SmtpMailer, SmtpSecurity,
};
use kozomol_fines::issuing::{run_issuing, Issued};
use kozomol_fines::lookup::{run_lookups, LookupStage};
use kozomol_store::audit::RESOLUTION_DELIVERED;
use kozomol_store::{
    AttemptKind, ContactAdded, DeliveryRecord, DeliveryRecorded, DeliveryTarget, NewCase, NewFrame,
    NewReview, PrintBatchId, PrintBatchRecord, ProvenDelivery, ReviewWrite,
};
use kozomol_tunduk::standin::{RegistryEntry, StandIn, StandInConfig};
use kozomol_tunduk::{RegistryConfig, VehicleRegistry};
use sha2::{Digest, Sha256};
use support::issued::{
    certificate, client, issuer, jpeg, register_officer, site, stage, world, World,
};
use support::Backend;

#[path = "support/smtp.rs"]
mod smtp;
mod support;

const TOKEN: &str = "test-gateway-token";
const BASE_URL: &str = "https://kozomol.example.kg";

/// Runs each behaviour on both backends, on a runtime with two threads so that two
/// workers really run at once.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    an_sms_proven_delivered_starts_the_clocks,
    a_gateway_id_of_any_characters_is_asked_about_not_sent_again,
    a_delivery_reported_before_its_text_was_sent_dates_from_the_sending,
    gateway_failures_retry_with_backoff_then_give_up,
    a_text_reported_undeliverable_is_sent_again_as_a_new_message,
    an_unavailable_gateway_counts_no_attempt,
    two_workers_never_send_one_delivery_twice,
    an_email_reaches_the_smtp_server_with_its_pdf,
    a_print_batch_holds_every_letter_and_passes_qpdf,
    a_letter_that_does_not_read_fails_alone_and_the_rest_are_printed,
    a_delivery_whose_claims_end_without_an_outcome_is_given_up,
    portal_reports_and_return_receipts_are_recorded_once,
    contacts_no_channel_could_use_are_refused,
    a_text_of_an_annulled_resolution_is_withdrawn_not_sent,
);

// ---- fixtures ----------------------------------------------------------------------

/// An owner of record: the plate they own, their PIN, their surname.
struct Owner {
    plate: &'static str,
    pin: &'static str,
    surname: &'static str,
}

const OWNERS: [Owner; 6] = [
    Owner {
        plate: "01KG101AAA",
        pin: "21212198000101",
        surname: "Асанов",
    },
    Owner {
        plate: "01KG102AAB",
        pin: "21212198000102",
        surname: "Бекова",
    },
    Owner {
        plate: "01KG103AAC",
        pin: "21212198000103",
        surname: "Жумабаев",
    },
    Owner {
        plate: "01KG104AAD",
        pin: "21212198000104",
        surname: "Исаков",
    },
    Owner {
        plate: "01KG105AAE",
        pin: "21212198000105",
        surname: "Токтогулова",
    },
    Owner {
        plate: "01KG106AAF",
        pin: "21212198000106",
        surname: "Усенов",
    },
];

/// The phone number each owner left: `+99655500010n`.
fn phone(i: usize) -> String {
    format!("+996 555 000 {:03}", 101 + i)
}

fn e164(i: usize) -> String {
    phone(i).replace(' ', "")
}

/// An approved speeding case of `owner`'s car, with real frames.
async fn approved(w: &World, owner: &Owner, seed: u8) {
    let frames = [
        (FrameRole::Overview, jpeg(seed, 640, 360)),
        (FrameRole::Plate, jpeg(seed.wrapping_add(1), 160, 48)),
    ];
    let bytes: Vec<&[u8]> = frames.iter().map(|(_, b)| b.as_slice()).collect();
    let locations = w.evidence.append_batch(&bytes).expect("frames stored");
    let captured_at = Utc
        .with_ymd_and_hms(2026, 3, 10, 8, 30, u32::from(seed) % 60)
        .single()
        .expect("instant");
    let event = ViolationEvent {
        event_id: EventId::new_v7(),
        camera_id: CameraId::parse("cam-1").expect("id"),
        captured_at_ms: captured_at.timestamp_millis(),
        clock_source: ClockSource::Gnss,
        clock_offset_ms: None,
        site: site(),
        kind: ViolationKind::Speeding,
        measurement: Measurement {
            speed_kmh: Some(112),
            limit_kmh: Some(60),
            red_elapsed_ms: None,
        },
        device: MeasuringDevice {
            serial: "KRIS-P-12345".into(),
            certificate: certificate(),
        },
        plate_read: None,
        frames: frames
            .iter()
            .map(|(role, b)| FrameRef {
                role: *role,
                sha256: Sha256::digest(b).to_vec(),
                len: b.len() as u32,
            })
            .collect(),
    };
    let case = NewCase {
        event_id: event.event_id,
        camera_id: event.camera_id.clone(),
        captured_at,
        kind: ViolationKind::Speeding,
        fingerprint: Sha256::digest(event.event_id.0.as_bytes()).into(),
        event: serde_json::to_value(&event).expect("event json"),
        camera_plate: None,
        enforceable: true,
        enforceability_note: None,
        trace_parent: None,
        frames: frames
            .iter()
            .zip(locations)
            .map(|((role, b), location)| NewFrame {
                role: *role,
                sha256: Sha256::digest(b).into(),
                location,
            })
            .collect(),
    };
    let written = w.store.record_cases(&[case], "test").await.expect("case");
    let [kozomol_store::CaseWrite::Created(id)] = written.as_slice() else {
        panic!("{written:?}")
    };
    register_officer(w, "officer-7").await;
    let review = NewReview {
        case_id: *id,
        tier: ReviewTier::Supervisor,
        reviewer: "officer-7".into(),
        decision: ReviewDecision::CorrectPlate,
        reason: None,
        plate: Some(owner.plate.into()),
        note: None,
        from_state: CaseState::Received,
        to_state: CaseState::Approved,
        seen_move: None,
    };
    assert_eq!(
        w.store.record_review(&review).await.expect("review"),
        ReviewWrite::Recorded
    );
}

/// Issues one resolution to each of `owners` (their contacts added first with
/// `contacts`), through the owner lookup and the issuing stage; the numbers, in order.
async fn issue(w: &World, owners: &[&Owner]) -> Vec<String> {
    let registry_server = StandIn::start(StandInConfig::new(vec![client()]))
        .await
        .expect("stand-in security server");
    for (i, owner) in owners.iter().enumerate() {
        approved(w, owner, 10 + 2 * i as u8).await;
        registry_server.set_entry(
            owner.plate,
            RegistryEntry::person(
                owner.plate,
                owner.pin,
                owner.surname,
                "Бакыт",
                "Токтогулович",
            ),
        );
    }
    let mut config = RegistryConfig::new(registry_server.url(), client());
    config.cache_ttl_secs = 0;
    let registry = VehicleRegistry::new(config).expect("registry");
    run_lookups(&LookupStage::new("lookup-1"), w.store.as_ref(), &registry)
        .await
        .expect("lookups");
    let issued = run_issuing(&stage(), &issuer(w), w.store.as_ref())
        .await
        .expect("issuing");
    assert_eq!(issued.len(), owners.len(), "{issued:?}");
    issued
        .into_iter()
        .map(|(case, result)| match result {
            Issued::Resolution(number) => number,
            other => panic!("case {case} not issued: {other:?}"),
        })
        .collect()
}

async fn add_phone(w: &World, i: usize) {
    let added = add_contact(
        w.store.as_ref(),
        OWNERS[i].pin,
        DeliveryChannel::Sms,
        &phone(i),
        "clerk-1",
    )
    .await
    .expect("phone taken");
    assert!(matches!(added, ContactAdded::Added { .. }), "{added:?}");
}

/// A configuration that retries and checks within a test's patience.
fn fast(worker: &str) -> DeliveryConfig {
    let mut config = DeliveryConfig::new(worker, BASE_URL);
    config.first_check = Duration::ZERO;
    config.retry_base = Duration::from_millis(300);
    config.retry_max = Duration::from_secs(2);
    config.max_attempts = 3;
    config.batch = 8;
    config
}

fn sms_worker(w: &World, config: DeliveryConfig, gateway: &StandInGateway) -> DeliveryWorker {
    let sender = SmsGateway::new(SmsGatewayConfig::new(gateway.url(), TOKEN)).expect("gateway");
    DeliveryWorker::new(config, Arc::clone(&w.evidence))
        .expect("worker")
        .with_sender(Arc::new(sender))
}

async fn of_channel(w: &World, number: &str, channel: DeliveryChannel) -> DeliveryRecord {
    w.store
        .deliveries(number)
        .await
        .expect("deliveries")
        .into_iter()
        .find(|d| d.channel == channel)
        .unwrap_or_else(|| panic!("{number} has no {channel} delivery"))
}

async fn state_of(w: &World, number: &str) -> CaseState {
    let resolution = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("resolution");
    w.store
        .case(resolution.case_id)
        .await
        .expect("read")
        .expect("case")
        .state
}

// ---- behaviours --------------------------------------------------------------------

async fn an_sms_proven_delivered_starts_the_clocks(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let number = &numbers[0];
    // Planned with the resolution: a letter to the registry's address and the text.
    let planned = w.store.deliveries(number).await.expect("deliveries");
    assert_eq!(
        planned.iter().map(|d| d.channel).collect::<Vec<_>>(),
        [DeliveryChannel::Post, DeliveryChannel::Sms]
    );

    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    let worker = sms_worker(&w, fast("d1"), &gateway);
    let first = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!((first.sent, first.delivered), (1, 0), "{first:?}");
    let sent = gateway.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, e164(0));
    let resolution = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("stored");
    for want in [
        number.as_str(),
        resolution.payment_code.as_str(),
        &format!("{BASE_URL}/v/{number}"),
        "7 500,00 сом",
    ] {
        assert!(
            sent[0].text.contains(want),
            "`{want}` missing: {}",
            sent[0].text
        );
    }
    // Sent is not delivered: no clock runs.
    assert_eq!(resolution.delivered_at, None);
    assert_eq!(state_of(&w, number).await, CaseState::Issued);
    let sms = of_channel(&w, number, DeliveryChannel::Sms).await;
    assert_eq!(
        (sms.state, sms.external_id.as_deref()),
        (DeliveryState::Sent, Some(sent[0].id.as_str()))
    );

    // The next pass asks the gateway, which reports delivery: the clocks start.
    let second = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!((second.sent, second.delivered), (0, 1), "{second:?}");
    let resolution = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("stored");
    let delivered_at = resolution.delivered_at.expect("delivered");
    assert_eq!(resolution.delivered_via, Some(DeliveryChannel::Sms));
    assert!(delivered_at >= resolution.issued_at && delivered_at <= Utc::now());
    assert_eq!(state_of(&w, number).await, CaseState::Delivered);
    let sms = of_channel(&w, number, DeliveryChannel::Sms).await;
    assert_eq!(sms.state, DeliveryState::Delivered);
    assert_eq!(
        sms.proof.as_ref().expect("proof")["gateway"]["status"],
        "delivered"
    );
    let attempts = w.store.delivery_attempts(sms.id).await.expect("attempts");
    assert_eq!(
        attempts.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        [AttemptKind::Sent, AttemptKind::Delivered]
    );
    let audit = w.store.case_audit(resolution.case_id).await.expect("audit");
    let row = audit
        .iter()
        .find(|a| a.action == RESOLUTION_DELIVERED)
        .expect("delivery audited");
    assert_eq!(
        (row.from_state, row.to_state, row.actor.as_str()),
        (
            Some(CaseState::Issued),
            Some(CaseState::Delivered),
            "fines:d1"
        )
    );

    // The same report again changes nothing and says so; nothing is left to do.
    let again = w
        .store
        .record_delivery(&ProvenDelivery {
            resolution_number: number.clone(),
            target: DeliveryTarget::Outbox(sms.id),
            delivered_at,
            proof: serde_json::json!({"again": true}),
            reported_by: "fines:d1".into(),
        })
        .await
        .expect("recorded");
    assert_eq!(
        again,
        DeliveryRecorded::AlreadyRecorded {
            delivery_id: sms.id
        }
    );
    assert!(worker
        .run_once(w.store.as_ref())
        .await
        .expect("pass")
        .is_idle());
    assert_eq!(
        gateway.requests_for(&format!("kozomol-delivery-{}", sms.id)),
        1
    );
}

/// A resolution issued days ago, its owner's phone confirmed and texted only now: a
/// report dating the delivery between the two (a gateway's clock off, a stale report)
/// would start the appeal and discount windows before the text existed. The delivery
/// is dated no earlier than its sending.
async fn a_delivery_reported_before_its_text_was_sent_dates_from_the_sending(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let number = &numbers[0];
    w.db.force_issued_at(number, Utc::now() - chrono::Duration::days(10))
        .await;
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    gateway.report_delivered_at(Some(Utc::now() - chrono::Duration::days(5)));
    let worker = sms_worker(&w, fast("d1"), &gateway);
    let first = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(first.sent, 1, "{first:?}");
    let sent_at = of_channel(&w, number, DeliveryChannel::Sms)
        .await
        .sent_at
        .expect("sent");
    let second = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(second.delivered, 1, "{second:?}");
    let delivered_at = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("stored")
        .delivered_at
        .expect("delivered");
    assert!(
        delivered_at >= sent_at && delivered_at <= Utc::now(),
        "{delivered_at} before {sent_at}"
    );
}

/// A gateway whose message ids hold base64's `/+=`: the id is asked about as one
/// percent-encoded path segment, and the text proven delivered, not sent again.
async fn a_gateway_id_of_any_characters_is_asked_about_not_sent_again(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    gateway.set_id_prefix("Zm9v/Ym+Fy=");
    let worker = sms_worker(&w, fast("d1"), &gateway);
    let first = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(first.sent, 1, "{first:?}");
    let second = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!((second.sent, second.delivered), (0, 1), "{second:?}");
    assert_eq!(gateway.messages().len(), 1, "sent once");
    let sms = of_channel(&w, &numbers[0], DeliveryChannel::Sms).await;
    assert_eq!(sms.state, DeliveryState::Delivered);
    assert!(sms
        .external_id
        .is_some_and(|id| id.starts_with("Zm9v/Ym+Fy=")));
}

async fn gateway_failures_retry_with_backoff_then_give_up(backend: Backend) {
    let w = world(backend).await;
    for i in 0..3 {
        add_phone(&w, i).await;
    }
    let numbers = issue(&w, &[&OWNERS[0], &OWNERS[1], &OWNERS[2]]).await;
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    // Owner 0's operator route is down; owner 2's number is refused for good.
    gateway.fail_to(&e164(0));
    gateway.refuse_to(&e164(2));
    let config = fast("d1");
    let worker = sms_worker(&w, config.clone(), &gateway);
    let failing = of_channel(&w, &numbers[0], DeliveryChannel::Sms).await.id;
    for _ in 0..40 {
        worker.run_once(w.store.as_ref()).await.expect("pass");
        let row = w.store.delivery(failing).await.expect("read").expect("row");
        if row.state == DeliveryState::Failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = w.store.delivery(failing).await.expect("read").expect("row");
    assert_eq!((row.state, row.attempts), (DeliveryState::Failed, 3));
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("503"),
        "{row:?}"
    );
    let attempts = w.store.delivery_attempts(failing).await.expect("attempts");
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.outcome))
            .collect::<Vec<_>>(),
        [
            (1, AttemptKind::Failed),
            (2, AttemptKind::Failed),
            (3, AttemptKind::Failed)
        ]
    );
    // Each wait was at least the backoff: 300 ms, then 600 ms.
    for (pair, attempt) in attempts.windows(2).zip(1u32..) {
        let waited = (pair[1].at - pair[0].at).to_std().expect("ordered");
        let backoff = Duration::from_millis(300) * 2u32.pow(attempt - 1);
        assert!(
            waited >= backoff,
            "attempt {attempt}: waited {waited:?}, backoff {backoff:?}"
        );
    }
    assert_eq!(
        gateway.requests_for(&format!("kozomol-delivery-{failing}")),
        3
    );
    assert_eq!(
        w.store
            .resolution(&numbers[0])
            .await
            .expect("read")
            .expect("r")
            .delivered_at,
        None
    );

    // The refused number failed at once, without retries.
    let refused = of_channel(&w, &numbers[2], DeliveryChannel::Sms).await;
    assert_eq!(
        (refused.state, refused.attempts),
        (DeliveryState::Failed, 1)
    );
    assert!(refused.last_error.as_deref().unwrap_or("").contains("422"));
    // Both failures stand in their case's history for an operator to act on.
    for (number, delivery) in [(&numbers[0], failing), (&numbers[2], refused.id)] {
        let failed = failed_audit(&w, number).await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(failed[0]["delivery_id"], delivery.0);
        assert_eq!(failed[0]["channel"], "sms");
    }

    // The others went on regardless: owner 1 was reached and proven delivered.
    let fine = of_channel(&w, &numbers[1], DeliveryChannel::Sms).await;
    assert_eq!((fine.state, fine.attempts), (DeliveryState::Delivered, 1));
    assert_eq!(state_of(&w, &numbers[1]).await, CaseState::Delivered);
}

/// A resolution annulled before its text went out: the text is never sent, and the
/// pass counts it withdrawn, not failed (no one has to act on it).
async fn a_text_of_an_annulled_resolution_is_withdrawn_not_sent(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let case_id = w
        .store
        .resolution(&numbers[0])
        .await
        .expect("read")
        .expect("resolution")
        .case_id;
    let kozomol_store::AppealFiled::Filed(appeal) = w
        .store
        .file_appeal(&kozomol_store::NewAppeal {
            case_id,
            appellant: "Асанов Бакыт".into(),
            contact: None,
            grounds: "Автомобиль продан до нарушения.".into(),
            filed_by: "officer-3".into(),
            attachments: Vec::new(),
        })
        .await
        .expect("file")
    else {
        panic!("not filed");
    };
    w.store
        .decide_appeal(
            appeal.id,
            kozomol_store::AppealState::Annulled,
            "supervisor-1",
            "да",
        )
        .await
        .expect("decide");
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    let worker = sms_worker(&w, fast("d1"), &gateway);
    let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(
        (pass.sent, pass.failed, pass.withdrawn),
        (0, 0, 1),
        "{pass:?}"
    );
    assert!(gateway.messages().is_empty());
    let row = of_channel(&w, &numbers[0], DeliveryChannel::Sms).await;
    assert_eq!(row.state, DeliveryState::Failed, "{row:?}");
    assert_eq!(
        row.last_error.as_deref(),
        Some("not sent: the case is annulled")
    );
}

/// The gateway reports a text undeliverable: the resend goes out under a reference of
/// its own (the gateway sends nothing for one it has seen), once, and is delivered.
async fn a_text_reported_undeliverable_is_sent_again_as_a_new_message(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    gateway.undeliverable_once(&e164(0));
    let worker = sms_worker(&w, fast("d1"), &gateway);
    let sms = of_channel(&w, &numbers[0], DeliveryChannel::Sms).await.id;
    for _ in 0..40 {
        worker.run_once(w.store.as_ref()).await.expect("pass");
        let row = w.store.delivery(sms).await.expect("read").expect("row");
        if matches!(row.state, DeliveryState::Delivered | DeliveryState::Failed) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = w.store.delivery(sms).await.expect("read").expect("row");
    assert_eq!(
        (row.state, row.attempts),
        (DeliveryState::Delivered, 2),
        "{row:?}"
    );
    let sent = gateway.messages();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|m| m.to == e164(0)));
    assert_ne!(sent[0].reference, sent[1].reference);
    assert_eq!(row.external_id.as_deref(), Some(sent[1].id.as_str()));
    for message in &sent {
        assert_eq!(gateway.requests_for(&message.reference), 1, "{message:?}");
    }
    assert_eq!(state_of(&w, &numbers[0]).await, CaseState::Delivered);
}

async fn an_unavailable_gateway_counts_no_attempt(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    add_phone(&w, 1).await;
    let numbers = issue(&w, &[&OWNERS[0], &OWNERS[1]]).await;
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    let mut config = fast("d1");
    config.max_attempts = 1;
    // Nobody listens on port 1; then the gateway refuses our token.
    let unreachable = SmsGateway::new(SmsGatewayConfig::new("http://127.0.0.1:1", TOKEN))
        .expect("gateway client");
    let bad_token = SmsGateway::new(SmsGatewayConfig::new(gateway.url(), "wrong-token"))
        .expect("gateway client");
    for sender in [unreachable, bad_token] {
        let worker = DeliveryWorker::new(config.clone(), Arc::clone(&w.evidence))
            .expect("worker")
            .with_sender(Arc::new(sender));
        let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
        assert_eq!(
            (pass.deferred, pass.failed, pass.sent),
            (2, 0, 0),
            "{pass:?}"
        );
        tokio::time::sleep(config.retry_base + Duration::from_millis(100)).await;
    }
    assert!(gateway.messages().is_empty());
    for number in &numbers {
        let sms = of_channel(&w, number, DeliveryChannel::Sms).await;
        // Two passes, neither counted: one attempt allowed is still left.
        assert_eq!((sms.state, sms.attempts), (DeliveryState::Queued, 0));
        let attempts = w.store.delivery_attempts(sms.id).await.expect("attempts");
        assert_eq!(attempts.len(), 2);
        assert!(attempts[1].error.as_deref().unwrap_or("").contains("401"));
    }
    // The gateway back, everything goes out at its first counted attempt.
    let worker = sms_worker(&w, config, &gateway);
    let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(pass.sent, 2, "{pass:?}");
    for number in &numbers {
        let sms = of_channel(&w, number, DeliveryChannel::Sms).await;
        assert_eq!((sms.state, sms.attempts), (DeliveryState::Sent, 1));
    }
}

async fn two_workers_never_send_one_delivery_twice(backend: Backend) {
    let w = world(backend).await;
    for i in 0..OWNERS.len() {
        add_phone(&w, i).await;
    }
    let owners: Vec<&Owner> = OWNERS.iter().collect();
    let numbers = issue(&w, &owners).await;
    let gateway = Arc::new(StandInGateway::start(TOKEN).await.expect("gateway"));
    let mut tasks = Vec::new();
    for name in ["d-a", "d-b"] {
        let mut config = fast(name);
        config.batch = 2;
        let worker = sms_worker(&w, config, &gateway);
        let store = Arc::clone(&w.store);
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            for _ in 0..20 {
                let pass = worker.run_once(store.as_ref()).await.expect("pass");
                sent += pass.sent;
                if pass.is_idle() {
                    break;
                }
            }
            sent
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.expect("worker task");
    }
    assert_eq!(total as usize, numbers.len());
    let requests = gateway.requests();
    assert_eq!(requests.len(), numbers.len(), "{requests:?}");
    assert!(
        requests.values().all(|n| *n == 1),
        "a message was sent twice: {requests:?}"
    );
    let mut to: Vec<String> = gateway.messages().into_iter().map(|m| m.to).collect();
    to.sort();
    assert_eq!(to, (0..OWNERS.len()).map(e164).collect::<Vec<_>>());
    for number in &numbers {
        let sms = of_channel(&w, number, DeliveryChannel::Sms).await;
        assert_eq!(sms.attempts, 1);
        assert!(matches!(
            sms.state,
            DeliveryState::Sent | DeliveryState::Delivered
        ));
    }
}

/// The parts of a MIME multipart message: each one's headers and body.
fn mime_parts(data: &str) -> Vec<(String, String)> {
    let boundary = data
        .split("boundary=")
        .nth(1)
        .map(|rest| {
            rest.trim_start_matches('"')
                .split(['"', '\r', '\n', ';'])
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .expect("a multipart message");
    data.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|part| !part.starts_with("--"))
        .filter_map(|part| {
            let (headers, body) = part.split_once("\r\n\r\n")?;
            Some((headers.to_owned(), body.to_owned()))
        })
        .collect()
}

fn base64_body(body: &str) -> Vec<u8> {
    let joined: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(joined)
        .expect("a base64 body")
}

async fn an_email_reaches_the_smtp_server_with_its_pdf(backend: Backend) {
    let w = world(backend).await;
    add_contact(
        w.store.as_ref(),
        OWNERS[0].pin,
        DeliveryChannel::Email,
        "Asanov@Mail.KG",
        "clerk-1",
    )
    .await
    .expect("e-mail taken");
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let number = &numbers[0];
    let server = smtp::TestSmtp::start().await;
    let mut mail = SmtpConfig::new("127.0.0.1", server.port(), "Козомол <noreply@kozomol.kg>");
    mail.hello_name = "kozomol.test".into();
    mail.security = SmtpSecurity::None;
    let worker = DeliveryWorker::new(fast("mail-1"), Arc::clone(&w.evidence))
        .expect("worker")
        .with_sender(Arc::new(SmtpMailer::new(mail).expect("mailer")));
    let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(pass.sent, 1, "{pass:?}");

    let received = server.messages();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.to, ["asanov@mail.kg"]);
    assert_eq!(message.from, "noreply@kozomol.kg");
    let resolution = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("stored");
    let parts = mime_parts(&message.data);
    let (_, text) = parts
        .iter()
        .find(|(h, _)| h.contains("text/plain"))
        .expect("a text part");
    let text = String::from_utf8(base64_body(text)).expect("utf-8 text");
    for want in [
        number.as_str(),
        resolution.payment_code.as_str(),
        &format!("{BASE_URL}/v/{number}"),
        "Сумма штрафа: 7 500,00 сом",
    ] {
        assert!(text.contains(want), "`{want}` missing: {text}");
    }
    // The attachment is the resolution's PDF, byte for byte.
    let (headers, pdf) = parts
        .iter()
        .find(|(h, _)| h.contains("application/pdf"))
        .expect("the pdf attached");
    assert!(headers.contains(&format!("{number}.pdf")), "{headers}");
    let pdf: [u8; 32] = Sha256::digest(base64_body(pdf)).into();
    assert_eq!(pdf, resolution.pdf_sha256);

    // Accepted by the server is sent, not delivered: no clock starts, nobody asks.
    let email = of_channel(&w, number, DeliveryChannel::Email).await;
    assert_eq!(
        (email.state, email.next_attempt_at),
        (DeliveryState::Sent, None)
    );
    assert!(email.proof.as_ref().expect("proof")["smtp_reply"]
        .as_str()
        .unwrap_or("")
        .contains("queued as Q1"));
    assert_eq!(resolution.delivered_at, None);
    assert!(worker
        .run_once(w.store.as_ref())
        .await
        .expect("pass")
        .is_idle());
    assert_eq!(server.messages().len(), 1);
}

fn qpdf(args: &[&str], path: &std::path::Path) -> String {
    let out = Command::new("qpdf")
        .args(args)
        .arg(path)
        .output()
        .expect("qpdf runs (apt-get install qpdf)");
    assert!(
        out.status.success(),
        "qpdf {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A worker that prints the letters, up to 10 a batch.
fn print_worker(w: &World) -> DeliveryWorker {
    let mut config = fast("print-1");
    config.print_batch_max = 10;
    DeliveryWorker::new(config, Arc::clone(&w.evidence))
        .expect("worker")
        .with_post()
}

/// The one print batch `pass` made.
async fn only_batch(w: &World, pass: &PassReport) -> (PrintBatchId, PrintBatchRecord) {
    let [batch_id] = pass.print_batches.as_slice() else {
        panic!("{pass:?}")
    };
    let batch = w
        .store
        .print_batch(*batch_id)
        .await
        .expect("read")
        .expect("batch");
    (*batch_id, batch)
}

async fn a_print_batch_holds_every_letter_and_passes_qpdf(backend: Backend) {
    let w = world(backend).await;
    let numbers = issue(&w, &[&OWNERS[0], &OWNERS[1], &OWNERS[2]]).await;
    let worker = print_worker(&w);
    let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!(pass.letters, 3, "{pass:?}");
    let (batch_id, batch) = only_batch(&w, &pass).await;
    assert_eq!(batch.pages, 3);
    let pdf = w
        .evidence
        .read(&batch.pdf_location, &batch.pdf_sha256)
        .expect("batch pdf reads");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("batch.pdf");
    std::fs::write(&path, &pdf).expect("written");
    qpdf(&["--check"], &path);
    assert_eq!(qpdf(&["--show-npages"], &path).trim(), "3");
    // Each letter is on its page, in the order the batch lists them.
    let mut on_page = HashMap::new();
    for (id, page) in &batch.letters {
        let row = w.store.delivery(*id).await.expect("read").expect("letter");
        assert_eq!(
            (row.state, row.batch_id, row.batch_page),
            (DeliveryState::Sent, Some(batch_id), Some(*page))
        );
        on_page.insert(*page, row.resolution_number);
    }
    for page in 1..=3u32 {
        let text = Command::new("pdftotext")
            .args([
                "-enc",
                "UTF-8",
                "-f",
                &page.to_string(),
                "-l",
                &page.to_string(),
            ])
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext runs");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains(&on_page[&page]),
            "page {page} lacks {}",
            on_page[&page]
        );
    }
    let mut printed: Vec<&String> = on_page.values().collect();
    printed.sort();
    assert_eq!(printed, numbers.iter().collect::<Vec<_>>());
    // Printed is sent, not delivered.
    for number in &numbers {
        assert_eq!(state_of(&w, number).await, CaseState::Issued);
    }
    assert!(worker
        .run_once(w.store.as_ref())
        .await
        .expect("pass")
        .is_idle());

    // The return receipt proves the letter; a second copy of it changes nothing.
    let signed = Utc::now();
    let receipt = serde_json::json!({"receipt": "RR123456789KG", "signed_by": "Асанов Б. Т."});
    let first = record_return_receipt(
        w.store.as_ref(),
        &numbers[0],
        signed,
        receipt.clone(),
        "post:kyrgyzpochtasy",
    )
    .await
    .expect("receipt");
    assert!(matches!(first, DeliveryRecorded::First { .. }), "{first:?}");
    let again = record_return_receipt(w.store.as_ref(), &numbers[0], signed, receipt, "post:x")
        .await
        .expect("receipt");
    assert!(
        matches!(again, DeliveryRecorded::AlreadyRecorded { .. }),
        "{again:?}"
    );
    let resolution = w
        .store
        .resolution(&numbers[0])
        .await
        .expect("read")
        .expect("r");
    assert_eq!(resolution.delivered_via, Some(DeliveryChannel::Post));
    assert_eq!(state_of(&w, &numbers[0]).await, CaseState::Delivered);
}

/// The cases whose resolution waits for a person (no delivery under way or proven),
/// as the operators' list and the metric count them.
async fn undeliverable(w: &World) -> Vec<kozomol_core::CaseId> {
    let query = kozomol_store::CaseQuery {
        undeliverable: true,
        limit: 100,
        ..Default::default()
    };
    let cases: Vec<_> = w
        .store
        .cases(&query)
        .await
        .expect("cases")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(
        w.store.count_cases(&query).await.expect("count"),
        cases.len() as u64
    );
    cases
}

/// The delivery-failed audit entries of `number`'s case, as JSON.
async fn failed_audit(w: &World, number: &str) -> Vec<serde_json::Value> {
    let case_id = w
        .store
        .resolution(number)
        .await
        .expect("read")
        .expect("resolution")
        .case_id;
    w.store
        .case_audit(case_id)
        .await
        .expect("audit")
        .into_iter()
        .filter(|e| e.action == kozomol_store::audit::DELIVERY_FAILED)
        .map(|e| serde_json::from_str(e.detail.as_deref().unwrap_or("")).expect("json"))
        .collect()
}

/// A letter whose PDF does not read fails for good on its own (a person must look);
/// the batch is printed with the others.
async fn a_letter_that_does_not_read_fails_alone_and_the_rest_are_printed(backend: Backend) {
    let w = world(backend).await;
    let numbers = issue(&w, &[&OWNERS[0], &OWNERS[1], &OWNERS[2]]).await;
    let garbage: &[u8] = b"%PDF-1.7 these bytes are not a document";
    let location = w
        .evidence
        .append_batch(&[garbage])
        .expect("stored")
        .pop()
        .expect("location");
    w.db.force_resolution_pdf(&numbers[1], Sha256::digest(garbage).into(), &location)
        .await;
    let worker = print_worker(&w);
    let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!((pass.letters, pass.failed), (2, 1), "{pass:?}");
    let (batch_id, batch) = only_batch(&w, &pass).await;
    assert_eq!(batch.pages, 2);
    let bad = of_channel(&w, &numbers[1], DeliveryChannel::Post).await;
    assert_eq!(
        (bad.state, bad.attempts, bad.batch_id),
        (DeliveryState::Failed, 1, None)
    );
    assert!(
        bad.last_error
            .as_deref()
            .unwrap_or("")
            .contains("does not read"),
        "{bad:?}"
    );
    assert_eq!(failed_audit(&w, &numbers[1]).await.len(), 1);
    // Its only delivery failed: the case is on the operators' list of resolutions
    // waiting for a person, and the others are not.
    let bad_case = w
        .store
        .resolution(&numbers[1])
        .await
        .expect("read")
        .expect("resolution")
        .case_id;
    assert_eq!(undeliverable(&w).await, [bad_case]);
    // A notice to a system subscribed to the owner's violations (a bank's app) reaches
    // no one in person: the case still waits for a person.
    let notice = |created_at: &str| {
        format!(
            "INSERT INTO deliveries (resolution_number, case_id, channel, address, state, \
             created_at) VALUES ('{}', {}, 'portal', 'subscription:1', 'sent', {created_at})",
            numbers[1], bad_case.0
        )
    };
    w.db.execute(notice("now()"), notice("0")).await;
    assert_eq!(undeliverable(&w).await, [bad_case]);
    for number in [&numbers[0], &numbers[2]] {
        let letter = of_channel(&w, number, DeliveryChannel::Post).await;
        assert_eq!(
            (letter.state, letter.batch_id),
            (DeliveryState::Sent, Some(batch_id))
        );
    }
    assert!(worker
        .run_once(w.store.as_ref())
        .await
        .expect("pass")
        .is_idle());
}

/// Claims that end with no outcome (a worker that stopped mid-send, its lease run out)
/// count as attempts: past the last, the delivery fails for good instead of being
/// sent, so one that stops every worker taking it is not taken for ever.
async fn a_delivery_whose_claims_end_without_an_outcome_is_given_up(backend: Backend) {
    let w = world(backend).await;
    add_phone(&w, 0).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let gateway = StandInGateway::start(TOKEN).await.expect("gateway");
    let config = fast("d1");
    let sms = of_channel(&w, &numbers[0], DeliveryChannel::Sms).await.id;
    // A claim given back untried does not count; only its holder can give it back.
    let claimed = w
        .store
        .claim_deliveries(DeliveryChannel::Sms, "slow", 8, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    w.store
        .release_deliveries("another", &[sms])
        .await
        .expect("release");
    let row = w.store.delivery(sms).await.expect("read").expect("row");
    assert_eq!((row.state, row.attempts), (DeliveryState::Sending, 1));
    w.store
        .release_deliveries("slow", &[sms])
        .await
        .expect("release");
    let row = w.store.delivery(sms).await.expect("read").expect("row");
    assert_eq!((row.state, row.attempts), (DeliveryState::Queued, 0));
    for claim in 1..=config.max_attempts {
        let claimed = w
            .store
            .claim_deliveries(
                DeliveryChannel::Sms,
                "stopped",
                8,
                Duration::from_millis(20),
            )
            .await
            .expect("claim");
        assert_eq!(
            claimed
                .iter()
                .map(|j| (j.id, j.attempt))
                .collect::<Vec<_>>(),
            [(sms, claim)]
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let worker = sms_worker(&w, config, &gateway);
    let pass = worker.run_once(w.store.as_ref()).await.expect("pass");
    assert_eq!((pass.sent, pass.failed), (0, 1), "{pass:?}");
    assert!(gateway.messages().is_empty());
    let row = w.store.delivery(sms).await.expect("read").expect("row");
    assert_eq!(row.state, DeliveryState::Failed, "{row:?}");
    assert!(
        row.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no outcome"),
        "{row:?}"
    );
    let failed = failed_audit(&w, &numbers[0]).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["delivery_id"], sms.0);
    // The owner's letter is still to go: nothing waits for a person yet.
    assert_eq!(undeliverable(&w).await, []);
}

async fn portal_reports_and_return_receipts_are_recorded_once(backend: Backend) {
    let w = world(backend).await;
    let numbers = issue(&w, &[&OWNERS[0]]).await;
    let number = &numbers[0];
    let worker = DeliveryWorker::new(fast("print-1"), Arc::clone(&w.evidence))
        .expect("worker")
        .with_post();
    assert_eq!(
        worker
            .run_once(w.store.as_ref())
            .await
            .expect("pass")
            .letters,
        1
    );

    // Milliseconds: what both backends keep, so the instant reads back equal.
    let at =
        chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("instant");
    let report = serde_json::json!({"portal_message": "EGOV-778812", "status": "read"});
    let first = record_portal_delivery(
        w.store.as_ref(),
        number,
        "egov.kg",
        at,
        report.clone(),
        "portal:egov",
    )
    .await
    .expect("portal report");
    assert!(matches!(first, DeliveryRecorded::First { delivered_at, .. } if delivered_at == at));
    let again = record_portal_delivery(
        w.store.as_ref(),
        number,
        "egov.kg",
        at,
        report,
        "portal:egov",
    )
    .await
    .expect("portal report");
    assert!(
        matches!(again, DeliveryRecorded::AlreadyRecorded { .. }),
        "{again:?}"
    );
    // A receipt dated days before the letter's batch was sent is refused, however long
    // before that the resolution was issued.
    w.db.force_issued_at(number, Utc::now() - chrono::Duration::days(10))
        .await;
    let early = record_return_receipt(
        w.store.as_ref(),
        number,
        Utc::now() - chrono::Duration::days(5),
        serde_json::json!({"receipt": "RR000000001KG"}),
        "post:k",
    )
    .await;
    assert!(
        matches!(&early, Err(e) if e.to_string().contains("cannot have been delivered")),
        "{early:?}"
    );
    // The letter's receipt comes later: recorded, the clocks stay where they started.
    let receipt = serde_json::json!({"receipt": "RR000000001KG"});
    let later = record_return_receipt(
        w.store.as_ref(),
        number,
        Utc::now(),
        receipt.clone(),
        "post:k",
    )
    .await
    .expect("receipt");
    assert!(
        matches!(later, DeliveryRecorded::Additional { resolution_delivered_at, .. } if resolution_delivered_at == at),
        "{later:?}"
    );
    let twice = record_return_receipt(w.store.as_ref(), number, Utc::now(), receipt, "post:k")
        .await
        .expect("receipt");
    assert!(
        matches!(twice, DeliveryRecorded::AlreadyRecorded { .. }),
        "{twice:?}"
    );
    let resolution = w.store.resolution(number).await.expect("read").expect("r");
    assert_eq!(
        (resolution.delivered_at, resolution.delivered_via),
        (Some(at), Some(DeliveryChannel::Portal))
    );
    let audit = w.store.case_audit(resolution.case_id).await.expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == RESOLUTION_DELIVERED)
            .count(),
        2,
        "one row per recorded proof"
    );
    // A resolution nobody issued has nothing to prove.
    assert!(matches!(
        record_return_receipt(
            w.store.as_ref(),
            "KG-BSK-2026-9999999",
            Utc::now(),
            serde_json::json!({}),
            "x"
        )
        .await,
        Err(DeliveryError::NoLetter(_))
    ));
}

async fn contacts_no_channel_could_use_are_refused(backend: Backend) {
    let w = world(backend).await;
    let store = w.store.as_ref();
    let pin = OWNERS[0].pin;
    for (channel, raw, says) in [
        (DeliveryChannel::Sms, "0555 123 456", "international form"),
        (DeliveryChannel::Sms, "+996 555", "8 to 15 digits"),
        (DeliveryChannel::Sms, "+996 555 12x 456", "only digits"),
        (DeliveryChannel::Email, "asanov.mail.kg", "has an @"),
        (DeliveryChannel::Email, "asanov@mail", "domain"),
        (DeliveryChannel::Email, "асанов@почта.кг", "ASCII"),
        (
            DeliveryChannel::Post,
            "Бишкек, ул. Киевская 96",
            "takes no contacts",
        ),
    ] {
        let err = add_contact(store, pin, channel, raw, "clerk-1")
            .await
            .expect_err(raw);
        assert!(
            matches!(
                err,
                DeliveryError::Contact(CoreError::InvalidContact { .. })
            ),
            "{raw}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(says), "{raw}: `{text}` does not say `{says}`");
        assert!(
            text.starts_with(&format!("invalid {channel} contact")),
            "{text}"
        );
    }
    assert!(matches!(
        add_contact(
            store,
            "  ",
            DeliveryChannel::Sms,
            "+996555123456",
            "clerk-1"
        )
        .await,
        Err(DeliveryError::NoOwner)
    ));
    assert!(
        store.contacts(pin).await.expect("read").is_empty(),
        "nothing refused was kept"
    );

    // Valid ones are kept in one spelling, once.
    add_contact(
        store,
        pin,
        DeliveryChannel::Sms,
        "00996 (555) 12-34-56",
        "clerk-1",
    )
    .await
    .expect("phone");
    add_contact(
        store,
        pin,
        DeliveryChannel::Email,
        " Asanov@Mail.KG ",
        "portal:self",
    )
    .await
    .expect("e-mail");
    let again = add_contact(store, pin, DeliveryChannel::Sms, "+996555123456", "clerk-2")
        .await
        .expect("phone again");
    assert!(matches!(again, ContactAdded::AlreadyKnown { .. }));
    let kept: Vec<(DeliveryChannel, String)> = store
        .contacts(pin)
        .await
        .expect("read")
        .into_iter()
        .map(|c| (c.channel, c.address))
        .collect();
    assert_eq!(
        kept,
        [
            (DeliveryChannel::Sms, "+996555123456".to_owned()),
            (DeliveryChannel::Email, "asanov@mail.kg".to_owned()),
        ]
    );
}
