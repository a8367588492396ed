//! Lookups through the stand-in: the registry's answers, over SOAP (and REST where the
//! same table fits).

use kozomol_tunduk::standin::{Answer, EchoTamper, EntryOwner, FaultStyle, RegistryEntry};
use kozomol_tunduk::xml::VEHICLES_NS;
use kozomol_tunduk::{
    BusProtocol, FaultKind, Owner, OwnerLookup, PlateOrigin, TundukError, XRoadService,
};

use crate::common::{config, context, registry, standin, PLATE};

const PROTOCOLS: [BusProtocol; 2] = [BusProtocol::Soap, BusProtocol::Rest];

#[tokio::test]
async fn found_person() {
    for protocol in PROTOCOLS {
        let standin = standin(FaultStyle::Legacy).await;
        standin.set_entry(
            PLATE,
            RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", "Маратович"),
        );
        let registry = registry(config(&standin, protocol));
        let lookup = registry
            .transport_current_info("01 kg 123 abc", PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup)
            .expect("lookup succeeds");
        let OwnerLookup::Found(record) = lookup else {
            panic!("{protocol:?}: expected one owner, got {lookup:?}");
        };
        let Owner::Person(person) = &record.owner else {
            panic!("{protocol:?}: expected a person, got {:?}", record.owner);
        };
        assert_eq!(person.pin.as_deref(), Some("21234567890123"));
        assert_eq!(
            record.owner.display_name().as_deref(),
            Some("Асанов Бакыт Маратович")
        );
        assert_eq!(
            person.birth_date,
            chrono::NaiveDate::from_ymd_opt(1985, 7, 3)
        );
        assert_eq!(
            person.passport.as_ref().map(|p| p.number.as_str()),
            Some("AN1234567")
        );
        assert_eq!(
            person.address.as_ref().and_then(|a| a.full.as_deref()),
            Some("г. Бишкек, ул. Киевская, д. 96, кв. 12")
        );
        let vehicle = &record.vehicle;
        assert_eq!(vehicle.plate.as_deref(), Some(PLATE));
        assert_eq!(vehicle.make.as_deref(), Some("TOYOTA"));
        assert_eq!(vehicle.model.as_deref(), Some("CAMRY"));
        assert_eq!(vehicle.colour.as_deref(), Some("Белый"));
        assert_eq!(vehicle.year, Some(2015));
        assert_eq!(vehicle.vin.as_deref(), Some("JTNBE46K173012345"));
        assert_eq!(
            vehicle.registration_certificate.as_deref(),
            Some("KG 0123456")
        );
        assert_eq!(standin.request_count(), 1, "{protocol:?}");
    }
}

#[tokio::test]
async fn found_company() {
    for protocol in PROTOCOLS {
        let standin = standin(FaultStyle::Legacy).await;
        standin.set_entry(
            PLATE,
            RegistryEntry::company(PLATE, "01234567891011", "ОсОО «Ромашка»"),
        );
        let lookup = registry(config(&standin, protocol))
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup)
            .expect("lookup succeeds");
        let OwnerLookup::Found(record) = lookup else {
            panic!("{protocol:?}: expected one owner, got {lookup:?}");
        };
        let Owner::Company(company) = &record.owner else {
            panic!("{protocol:?}: expected a company, got {:?}", record.owner);
        };
        assert_eq!(company.inn.as_deref(), Some("01234567891011"));
        assert_eq!(company.name.as_deref(), Some("ОсОО «Ромашка»"));
        assert_eq!(
            company.address.as_ref().and_then(|a| a.full.as_deref()),
            Some("г. Бишкек, ул. Киевская, д. 96")
        );
    }
}

#[tokio::test]
async fn no_data() {
    for protocol in PROTOCOLS {
        let standin = standin(FaultStyle::Legacy).await;
        let lookup = registry(config(&standin, protocol))
            .transport_current_info("02KG999XYZ", PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert_eq!(lookup, Ok(OwnerLookup::NoData), "{protocol:?}");
        assert_eq!(standin.request_count(), 1);
    }
}

#[tokio::test]
async fn several_owners() {
    for protocol in PROTOCOLS {
        let standin = standin(FaultStyle::Legacy).await;
        let entry = RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", "")
            .with_owner(EntryOwner {
                pin: Some("11234567890123".to_owned()),
                surname: "Асанова".to_owned(),
                name: "Айгуль".to_owned(),
                ..EntryOwner::default()
            });
        standin.set_entry(PLATE, entry);
        let lookup = registry(config(&standin, protocol))
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup)
            .expect("lookup succeeds");
        let OwnerLookup::SeveralOwners(records) = lookup else {
            panic!("{protocol:?}: expected several owners, got {lookup:?}");
        };
        let pins: Vec<_> = records
            .iter()
            .map(|r| match &r.owner {
                Owner::Person(p) => p.pin.clone(),
                Owner::Company(c) => c.inn.clone(),
            })
            .collect();
        assert_eq!(
            pins,
            [
                Some("21234567890123".to_owned()),
                Some("11234567890123".to_owned())
            ]
        );
        assert!(records
            .iter()
            .all(|r| r.vehicle.make.as_deref() == Some("TOYOTA")));
    }
}

#[tokio::test]
async fn foreign_plates_are_not_asked() {
    let standin = standin(FaultStyle::Legacy).await;
    let registry = registry(config(&standin, BusProtocol::Soap));
    let cases = [
        ("123ABC02", PlateOrigin::Auto, true),   // Kazakh
        ("A123BC777", PlateOrigin::Auto, true),  // Russian
        (PLATE, PlateOrigin::Foreign, true),     // the caller knows better
        ("T1234", PlateOrigin::Domestic, false), // a Kyrgyz format this crate does not know
    ];
    for (plate, origin, foreign) in cases {
        let before = standin.request_count();
        let lookup = registry
            .transport_current_info(plate, origin, &context())
            .await
            .map(|answer| answer.lookup)
            .expect("lookup succeeds");
        assert_eq!(
            lookup == OwnerLookup::ForeignPlate,
            foreign,
            "{plate}: {lookup:?}"
        );
        let asked = standin.request_count() - before;
        assert_eq!(asked, usize::from(!foreign), "{plate}");
    }
}

#[tokio::test]
async fn access_denied_in_both_spellings_is_not_retried() {
    let cases = [
        (
            FaultStyle::Legacy,
            BusProtocol::Soap,
            "Server.ServerProxy.AccessDenied",
        ),
        (
            FaultStyle::Modern,
            BusProtocol::Soap,
            "server.serverproxy.access_denied",
        ),
        (
            FaultStyle::Legacy,
            BusProtocol::Rest,
            "Server.ServerProxy.AccessDenied",
        ),
        (
            FaultStyle::Modern,
            BusProtocol::Rest,
            "server.serverproxy.access_denied",
        ),
    ];
    for (style, protocol, code) in cases {
        let standin = standin(style).await;
        standin.set_allowed_clients(vec![]);
        let mut config = config(&standin, protocol);
        config.max_attempts = 3;
        let result = registry(config)
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        match result {
            Err(TundukError::Fault(fault)) => {
                assert_eq!(fault.kind, FaultKind::AccessDenied, "{code}");
                assert_eq!(fault.code, code);
                assert!(fault.message.contains("Request is not allowed"), "{fault}");
            }
            other => panic!("{code} over {protocol:?}: expected access denied, got {other:?}"),
        }
        assert_eq!(
            standin.request_count(),
            1,
            "{code} over {protocol:?} was retried"
        );
    }
}

#[tokio::test]
async fn an_unknown_service_is_a_definite_fault() {
    for protocol in PROTOCOLS {
        let standin = standin(FaultStyle::Modern).await;
        let mut config = config(&standin, protocol);
        config.service = XRoadService::parse(
            "central-server/GOV/70000005/vehicles-service/transportCurrentInfo/v2",
        )
        .expect("valid service");
        if protocol == BusProtocol::Rest {
            config.service = XRoadService::parse(
                "central-server/GOV/70000005/other-service/transportCurrentInfo/v1",
            )
            .expect("valid service");
        }
        let result = registry(config)
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert!(
            matches!(&result, Err(TundukError::Fault(f)) if f.kind == FaultKind::UnknownService),
            "{protocol:?}: {result:?}"
        );
        assert_eq!(standin.request_count(), 1);
    }
}

#[tokio::test]
async fn header_echo_mismatch_is_rejected() {
    let cases = [
        (EchoTamper::Id, "id"),
        (EchoTamper::Client, "client"),
        (EchoTamper::Service, "service"),
    ];
    for protocol in PROTOCOLS {
        for (tamper, field) in cases {
            let standin = standin(FaultStyle::Legacy).await;
            standin.set_entry(
                PLATE,
                RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", ""),
            );
            standin.set_echo_tamper(Some(tamper));
            let result = registry(config(&standin, protocol))
                .transport_current_info(PLATE, PlateOrigin::Auto, &context())
                .await
                .map(|answer| answer.lookup);
            match result {
                Err(TundukError::HeaderMismatch { field: got, .. }) => {
                    assert_eq!(got, field, "{protocol:?}")
                }
                other => panic!("{protocol:?} {tamper:?}: expected a mismatch, got {other:?}"),
            }
            assert_eq!(standin.request_count(), 1, "a mismatch is not retried");
        }
    }
}

/// Real replies break the WSDL's narrow types; only a missing owner identity fails.
#[tokio::test]
async fn odd_fields_are_read_leniently() {
    let standin = standin(FaultStyle::Legacy).await;
    let registry = registry(config(&standin, BusProtocol::Soap));
    let odd = format!(
        r#"<ns7:transportCurrentInfoResponse xmlns:ns7="{VEHICLES_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
             <ns7:request><ns7:govPlate>{PLATE}</ns7:govPlate></ns7:request>
             <ns7:response>
               <ns7:status> 200 </ns7:status>
               <ns7:address><ns7:house>296/1</ns7:house><ns7:flat i:nil="true"/><ns7:fullAddress>  </ns7:fullAddress><ns7:street>ул. Ахунбаева</ns7:street></ns7:address>
               <ns7:person>
                 <ns7:pin> 2123 4567 890123 </ns7:pin><ns7:surname>Асанов</ns7:surname><ns7:name>Бакыт</ns7:name>
                 <ns7:birthdate>0001-01-01</ns7:birthdate><ns7:passportNo></ns7:passportNo><ns7:passportDate/>
                 <ns7:somethingNew>ignored</ns7:somethingNew>
               </ns7:person>
               <ns7:car>
                 <ns7:govPlate>01 KG 123 ABC</ns7:govPlate><ns7:year>2 015</ns7:year><ns7:engineVolume>1 600</ns7:engineVolume>
                 <ns7:carTypeCode>легковой</ns7:carTypeCode><ns7:brand> Lexus </ns7:brand><ns7:color>NULL</ns7:color>
                 <ns7:bodyNo>-</ns7:bodyNo><ns7:chassisNo>JTJBT20X740012345</ns7:chassisNo>
               </ns7:car>
             </ns7:response>
           </ns7:transportCurrentInfoResponse>"#
    );
    standin.set_answer(PLATE, Answer::RawSoapPayload(odd));
    let lookup = registry
        .transport_current_info(PLATE, PlateOrigin::Auto, &context())
        .await
        .map(|answer| answer.lookup)
        .expect("odd fields do not fail the reply");
    let OwnerLookup::Found(record) = lookup else {
        panic!("expected one owner, got {lookup:?}");
    };
    let Owner::Person(person) = &record.owner else {
        panic!("expected a person");
    };
    assert_eq!(person.pin.as_deref(), Some("21234567890123"));
    assert_eq!(person.birth_date, None);
    assert_eq!(person.passport, None);
    let address = person.address.as_ref().expect("an address");
    assert_eq!(address.house.as_deref(), Some("296/1"));
    assert_eq!(address.flat, None);
    assert_eq!(address.one_line().as_deref(), Some("ул. Ахунбаева, 296/1"));
    let vehicle = &record.vehicle;
    assert_eq!(vehicle.year, Some(2015));
    assert_eq!(vehicle.make.as_deref(), Some("Lexus"));
    assert_eq!(vehicle.colour, None);
    assert_eq!(vehicle.body_no, None);
    assert_eq!(vehicle.vin.as_deref(), Some("JTJBT20X740012345"));

    let unusable = [
        // found, but nobody named
        format!(
            r#"<transportCurrentInfoResponse xmlns="{VEHICLES_NS}"><response><status>200</status><person><pin></pin><surname>Асанов</surname></person><car><brand>Lexus</brand></car></response></transportCurrentInfoResponse>"#
        ),
        // no response element at all
        format!(r#"<transportCurrentInfoResponse xmlns="{VEHICLES_NS}"/>"#),
        // another car's record
        format!(
            r#"<transportCurrentInfoResponse xmlns="{VEHICLES_NS}"><response><status>200</status><person><pin>21234567890123</pin></person><car><govPlate>02KG123ABC</govPlate></car></response></transportCurrentInfoResponse>"#
        ),
    ];
    for payload in unusable {
        standin.set_answer(PLATE, Answer::RawSoapPayload(payload.clone()));
        let result = registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert!(
            matches!(result, Err(TundukError::NoUsableData(_))),
            "{payload}: {result:?}"
        );
    }

    // The provider's refusal inside its reply (X-Road annex D) is its fault, words kept.
    standin.set_answer(
        PLATE,
        Answer::RawSoapPayload(format!(
            r#"<transportCurrentInfoResponse xmlns="{VEHICLES_NS}"><request/><fault><faultCode>Server.Registry.Busy</faultCode><faultString>try later</faultString></fault></transportCurrentInfoResponse>"#
        )),
    );
    let result = registry
        .transport_current_info(PLATE, PlateOrigin::Auto, &context())
        .await
        .map(|answer| answer.lookup);
    match result {
        Err(TundukError::Fault(fault)) => {
            assert_eq!(
                (fault.code.as_str(), fault.message.as_str()),
                ("Server.Registry.Busy", "try later")
            )
        }
        other => panic!("{other:?}"),
    }

    // The wrapper in another namespace is not the registry's reply.
    standin.set_answer(
        PLATE,
        Answer::RawSoapPayload(
            r#"<transportCurrentInfoResponse xmlns="urn:elsewhere"/>"#.to_owned(),
        ),
    );
    let result = registry
        .transport_current_info(PLATE, PlateOrigin::Auto, &context())
        .await
        .map(|answer| answer.lookup);
    assert!(
        matches!(result, Err(TundukError::MalformedReply(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_before_the_bus() {
    let standin = standin(FaultStyle::Legacy).await;
    let registry = registry(config(&standin, BusProtocol::Soap));
    let cases = [
        ("", context()),
        ("01KG123<ABC>", context()),
        (PLATE, kozomol_tunduk::ExchangeContext::new("", "case-42")),
        (PLATE, kozomol_tunduk::ExchangeContext::new("officer", "")),
    ];
    for (plate, context) in cases {
        let result = registry
            .transport_current_info(plate, PlateOrigin::Domestic, &context)
            .await
            .map(|answer| answer.lookup);
        assert!(
            matches!(result, Err(TundukError::InvalidInput(_))),
            "{plate:?}: {result:?}"
        );
    }
    assert_eq!(standin.request_count(), 0);
}
