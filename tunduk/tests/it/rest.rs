//! The REST r1 variant: the same lookups, errors as `{"type","message","detail"}`.

use kozomol_tunduk::standin::{Answer, Failure, FaultStyle, RegistryEntry};
use kozomol_tunduk::{BusProtocol, FaultKind, OwnerLookup, PlateOrigin, TundukError};

use crate::common::{config, context, registry, standin, PLATE};

#[tokio::test]
async fn rest_found_and_errors() {
    let standin = standin(FaultStyle::Modern).await;
    standin.set_entry(
        PLATE,
        RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", ""),
    );
    let registry = registry(config(&standin, BusProtocol::Rest));
    let context = context();
    let lookup = || async {
        registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context)
            .await
            .map(|a| a.lookup)
    };

    assert!(matches!(lookup().await, Ok(OwnerLookup::Found(_))));
    assert_eq!(standin.request_count(), 1);

    // An X-Road error body is a typed fault, the original code kept; a definite one
    // is not retried even though it came with HTTP 500.
    standin.fail_next(
        1,
        Failure::Fault {
            code: "server.serverproxy.access_denied".to_owned(),
            message: "Request is not allowed".to_owned(),
        },
    );
    match lookup().await {
        Err(TundukError::Fault(fault)) => {
            assert_eq!(fault.kind, FaultKind::AccessDenied);
            assert_eq!(fault.code, "server.serverproxy.access_denied");
            assert!(fault.detail.is_some());
        }
        other => panic!("expected a fault, got {other:?}"),
    }
    assert_eq!(standin.request_count(), 2);

    // A service-unavailable body is retried.
    standin.fail_next(
        1,
        Failure::Fault {
            code: "Server.ServerProxy.ServiceFailed".to_owned(),
            message: "no answer from the service".to_owned(),
        },
    );
    assert!(matches!(lookup().await, Ok(OwnerLookup::Found(_))));
    assert_eq!(standin.request_count(), 4);

    // Lenient JSON: numbers as strings, odd values, person as an array.
    standin.set_answer(
        PLATE,
        Answer::RawJson(serde_json::json!({
            "response": {
                "status": "200",
                "address": {"fullAddress": "г. Ош", "house": 300},
                "person": [{"pin": "21234567890123", "birthdate": "", "surname": "Асанов", "name": null}],
                "car": {"govPlate": PLATE, "year": "2 012", "brand": "Honda"}
            }
        })),
    );
    let Ok(OwnerLookup::Found(record)) = lookup().await else {
        panic!("expected one owner");
    };
    assert_eq!(record.vehicle.year, Some(2012));
    assert_eq!(
        record.owner.address().and_then(|a| a.house.as_deref()),
        Some("300")
    );

    standin.set_answer(
        PLATE,
        Answer::RawJson(serde_json::json!({"unexpected": true})),
    );
    assert!(matches!(lookup().await, Err(TundukError::NoUsableData(_))));
}
