//! Retries, time-outs, the circuit breaker and the cache, against the stand-in.

use std::time::{Duration, Instant};

use kozomol_tunduk::standin::{Failure, FaultStyle, RegistryEntry};
use kozomol_tunduk::{BusProtocol, FaultKind, OwnerLookup, PlateOrigin, TundukError};

use crate::common::{config, context, registry, standin, PLATE};

fn person() -> RegistryEntry {
    RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", "")
}

fn fault(code: &str) -> Failure {
    Failure::Fault {
        code: code.to_owned(),
        message: "injected".to_owned(),
    }
}

/// (failures before the answer, attempts allowed, found?, requests made)
#[tokio::test]
async fn unavailability_is_retried_definite_faults_are_not() {
    let cases: [(Vec<Failure>, u32, bool, usize); 7] = [
        (vec![Failure::Http500], 3, true, 2),
        (vec![Failure::Http500, Failure::Http500], 3, true, 3),
        (vec![Failure::Http500; 3], 3, false, 3),
        (vec![fault("Server.ServerProxy.ServiceFailed")], 3, true, 2),
        (vec![fault("server.serverproxy.network_error")], 3, true, 2),
        (vec![fault("Client.InvalidSoap")], 3, false, 1),
        (
            vec![fault("Server.ServerProxy.ServiceDisabled")],
            3,
            false,
            1,
        ),
    ];
    for protocol in [BusProtocol::Soap, BusProtocol::Rest] {
        for (failures, attempts, found, requests) in &cases {
            let standin = standin(FaultStyle::Legacy).await;
            standin.set_entry(PLATE, person());
            for failure in failures {
                standin.fail_next(1, failure.clone());
            }
            let mut config = config(&standin, protocol);
            config.max_attempts = *attempts;
            let result = registry(config)
                .transport_current_info(PLATE, PlateOrigin::Auto, &context())
                .await
                .map(|answer| answer.lookup);
            assert_eq!(
                matches!(result, Ok(OwnerLookup::Found(_))),
                *found,
                "{protocol:?} {failures:?}: {result:?}"
            );
            assert_eq!(
                standin.request_count(),
                *requests,
                "{protocol:?} {failures:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_slow_bus_times_out_is_retried_then_fails() {
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(PLATE, person());
    standin.set_delay(Duration::from_millis(400));
    let mut config = config(&standin, BusProtocol::Soap);
    config.request_timeout_ms = 100;
    config.max_attempts = 2;
    let started = Instant::now();
    let result = registry(config)
        .transport_current_info(PLATE, PlateOrigin::Auto, &context())
        .await
        .map(|answer| answer.lookup);
    assert_eq!(
        result,
        Err(TundukError::Timeout(Duration::from_millis(100)))
    );
    assert_eq!(standin.request_count(), 2);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "each attempt was cut at 100 ms"
    );
}

#[tokio::test]
async fn the_circuit_opens_after_failures_and_closes_after_the_cool_down() {
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(PLATE, person());
    standin.fail_next(3, Failure::Http500);
    let mut config = config(&standin, BusProtocol::Soap);
    config.max_attempts = 1;
    config.breaker_failure_threshold = 3;
    config.breaker_cool_down_ms = 300;
    let registry = registry(config);
    let context = context();
    let lookup = || async {
        registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context)
            .await
            .map(|a| a.lookup)
    };

    for _ in 0..3 {
        assert_eq!(lookup().await, Err(TundukError::HttpStatus { status: 500 }));
    }
    assert_eq!(standin.request_count(), 3);

    // Open: answered at once, nothing sent.
    let started = Instant::now();
    let open = lookup().await;
    assert!(
        matches!(open, Err(TundukError::CircuitOpen { .. })),
        "{open:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(standin.request_count(), 3);

    // After the cool-down a probe goes through, succeeds and closes the circuit.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(matches!(lookup().await, Ok(OwnerLookup::Found(_))));
    assert!(matches!(lookup().await, Ok(OwnerLookup::Found(_))));
    assert_eq!(standin.request_count(), 5);
}

#[tokio::test]
async fn a_failed_probe_opens_the_circuit_again() {
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(PLATE, person());
    standin.fail_next(2, Failure::Http500);
    let mut config = config(&standin, BusProtocol::Soap);
    config.max_attempts = 1;
    config.breaker_failure_threshold = 1;
    config.breaker_cool_down_ms = 200;
    let registry = registry(config);
    let context = context();
    let lookup = || async {
        registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context)
            .await
            .map(|a| a.lookup)
    };

    assert_eq!(lookup().await, Err(TundukError::HttpStatus { status: 500 }));
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(lookup().await, Err(TundukError::HttpStatus { status: 500 }));
    assert!(matches!(
        lookup().await,
        Err(TundukError::CircuitOpen { .. })
    ));
    assert_eq!(standin.request_count(), 2);
}

#[tokio::test]
async fn refusals_do_not_open_the_circuit() {
    let standin = standin(FaultStyle::Modern).await;
    standin.set_allowed_clients(vec![]);
    let mut config = config(&standin, BusProtocol::Soap);
    config.breaker_failure_threshold = 2;
    let registry = registry(config);
    for _ in 0..4 {
        let result = registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert!(
            matches!(&result, Err(TundukError::Fault(f)) if f.kind == FaultKind::AccessDenied),
            "{result:?}"
        );
    }
    assert_eq!(standin.request_count(), 4);
}

#[tokio::test]
async fn answers_are_cached_errors_are_not() {
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(PLATE, person());
    standin.fail_next(1, Failure::Http500);
    let mut config = config(&standin, BusProtocol::Soap);
    config.max_attempts = 1;
    config.cache_ttl_secs = 300;
    let registry = registry(config);

    let failed = registry
        .transport_current_info(PLATE, PlateOrigin::Auto, &context())
        .await
        .map(|answer| answer.lookup);
    assert_eq!(failed, Err(TundukError::HttpStatus { status: 500 }));
    let first = registry
        .transport_current_info(PLATE, PlateOrigin::Auto, &context())
        .await
        .expect("found");
    // Another spelling of the same plate meets the cached answer, with the message id
    // of the exchange that brought it.
    let second = registry
        .transport_current_info("01 123 abc", PlateOrigin::Auto, &context())
        .await
        .expect("cached");
    assert_eq!(first, second);
    assert!(first
        .exchange_id
        .as_deref()
        .is_some_and(|id| !id.is_empty()));
    let foreign = registry
        .transport_current_info("A123BC77", PlateOrigin::Auto, &context())
        .await
        .expect("not asked");
    assert_eq!(
        (foreign.lookup, foreign.exchange_id),
        (OwnerLookup::ForeignPlate, None)
    );
    assert_eq!(standin.request_count(), 2);

    // "Not found" is an answer too, and is cached for the text asked; another spelling
    // of it asks again (the registry may know the plate only spelled that way).
    for _ in 0..2 {
        let lookup = registry
            .transport_current_info("02KG999XYZ", PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert_eq!(lookup, Ok(OwnerLookup::NoData));
    }
    assert_eq!(standin.request_count(), 3);
    let respelled = registry
        .transport_current_info("02 999 XYZ", PlateOrigin::Auto, &context())
        .await
        .map(|answer| answer.lookup);
    assert_eq!(respelled, Ok(OwnerLookup::NoData));
    assert_eq!(standin.request_count(), 4);
}

#[tokio::test]
async fn without_a_cache_every_lookup_asks() {
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(PLATE, person());
    let registry = registry(config(&standin, BusProtocol::Rest));
    for _ in 0..2 {
        registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup)
            .expect("found");
    }
    assert_eq!(standin.request_count(), 2);
}
