//! The stand-in enforces the protocol as a security server would: raw requests that
//! break a rule get the proper fault.

use kozomol_tunduk::registry::transport_current_info_request;
use kozomol_tunduk::soap::{build_envelope, RequestHeader};
use kozomol_tunduk::standin::{FaultStyle, RegistryEntry, StandIn};
use kozomol_tunduk::xml::{self, SOAP_ENV_NS, XROAD_NS};
use kozomol_tunduk::{XRoadService, DEFAULT_SERVICE};

use crate::common::{context, kozomol, standin, PLATE};

fn valid_envelope() -> (RequestHeader, String) {
    let service = XRoadService::parse(DEFAULT_SERVICE).expect("valid service");
    let header = RequestHeader::new(kozomol(), service.clone(), &context());
    let payload = transport_current_info_request(service.service_code(), PLATE);
    let envelope = build_envelope(&header, &payload);
    (header, envelope)
}

async fn post(standin: &StandIn, content_type: &str, body: String) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(standin.url())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("the stand-in answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

fn fault_code(body: &str) -> Option<String> {
    let doc = xml::parse(body).ok()?;
    let fault = doc
        .descendants()
        .find(|n| xml::is(*n, SOAP_ENV_NS, "Fault"))?;
    let code = fault
        .children()
        .find(|n| n.tag_name().name() == "faultcode")?;
    Some(xml::text(code))
}

#[tokio::test]
async fn soap_rules_are_enforced() {
    let (header, valid) = valid_envelope();
    let xml_type = "text/xml; charset=utf-8";
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "json",
            "application/json",
            valid.clone(),
            "Client.InvalidContentType",
        ),
        (
            "latin-1",
            "text/xml; charset=iso-8859-1",
            valid.clone(),
            "Client.InvalidContentType",
        ),
        (
            "not xml",
            xml_type,
            "<a><b></a>".to_owned(),
            "Client.InvalidSoap",
        ),
        (
            "not soap",
            xml_type,
            "<a/>".to_owned(),
            "Client.InvalidSoap",
        ),
        (
            "no id",
            xml_type,
            valid.replace(&format!("<xrd:id>{}</xrd:id>", header.id), ""),
            "Client.MissingHeaderField",
        ),
        (
            "two ids",
            xml_type,
            valid.replace("<xrd:issue>", "<xrd:id>again</xrd:id><xrd:issue>"),
            "Client.DuplicateHeaderField",
        ),
        (
            "protocol 3.0",
            xml_type,
            valid.replace(">4.0<", ">3.0<"),
            "Client.InvalidProtocolVersion",
        ),
        (
            "member client",
            xml_type,
            valid.replace(r#"objectType="SUBSYSTEM""#, r#"objectType="MEMBER""#),
            "Client.InvalidClientIdentifier",
        ),
        (
            "body for another service",
            xml_type,
            valid
                .replace("<transportCurrentInfo ", "<transportByPin ")
                .replace("</transportCurrentInfo>", "</transportByPin>"),
            "Client.InvalidBody",
        ),
        (
            "unknown service",
            xml_type,
            valid.replace(">vehicles-service<", ">other-service<"),
            "Server.ServerProxy.UnknownService",
        ),
        (
            "unknown client",
            xml_type,
            valid.replace(">70000099<", ">70000098<"),
            "Server.ServerProxy.AccessDenied",
        ),
    ];
    let standin = standin(FaultStyle::Legacy).await;
    for (what, content_type, body, code) in cases {
        let (status, reply) = post(&standin, content_type, body).await;
        assert_eq!(status, 500, "{what}");
        assert_eq!(fault_code(&reply).as_deref(), Some(code), "{what}: {reply}");
    }

    let get = reqwest::get(standin.url())
        .await
        .expect("the stand-in answers");
    assert_eq!(get.status().as_u16(), 405);
    let body = get.text().await.expect("a body");
    assert_eq!(
        fault_code(&body).as_deref(),
        Some("Client.InvalidHttpMethod")
    );

    standin.set_fault_style(FaultStyle::Modern);
    let (_, reply) = post(&standin, xml_type, valid.replace(">4.0<", ">3.0<")).await;
    assert_eq!(
        fault_code(&reply).as_deref(),
        Some("client.invalid_protocol_version")
    );
}

#[tokio::test]
async fn soap_replies_copy_the_header_and_add_the_request_hash() {
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(
        PLATE,
        RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", ""),
    );
    let (header, valid) = valid_envelope();
    let (status, reply) = post(&standin, "text/xml; charset=utf-8", valid.clone()).await;
    assert_eq!(status, 200, "{reply}");
    let field_texts = |text: &str| -> Vec<(String, String)> {
        let doc = xml::parse(text).expect("well-formed");
        let head = doc
            .descendants()
            .find(|n| xml::is(*n, SOAP_ENV_NS, "Header"))
            .expect("a header");
        head.children()
            .filter(|n| n.is_element() && n.tag_name().name() != "requestHash")
            .map(|n| (n.tag_name().name().to_owned(), xml::text(n)))
            .collect()
    };
    assert_eq!(field_texts(&reply), field_texts(&valid));
    let doc = xml::parse(&reply).expect("well-formed");
    let hash = doc
        .descendants()
        .find(|n| xml::is(*n, XROAD_NS, "requestHash"))
        .expect("requestHash");
    assert_eq!(
        hash.attribute("algorithmId"),
        Some("http://www.w3.org/2001/04/xmlenc#sha512")
    );
    assert!(reply.contains(&header.id));
}

#[tokio::test]
async fn rest_rules_are_enforced() {
    let standin = standin(FaultStyle::Legacy).await;
    let base = format!(
        "{}r1/central-server/GOV/70000005/vehicles-service/transportCurrentInfo",
        standin.url()
    );
    let client = "central-server/GOV/70000099/kozomol";
    let http = reqwest::Client::new();
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, Option<&str>)> = vec![
        (
            "no client",
            http.get(format!("{base}/v1/{PLATE}")),
            400,
            Some("Client.BadRequest"),
        ),
        (
            "two clients",
            http.get(format!("{base}/v1/{PLATE}"))
                .header("X-Road-Client", client)
                .header("X-Road-Client", client),
            400,
            Some("Client.BadRequest"),
        ),
        (
            "unknown client",
            http.get(format!("{base}/v1/{PLATE}"))
                .header("X-Road-Client", "central-server/GOV/1/other"),
            500,
            Some("Server.ServerProxy.AccessDenied"),
        ),
        (
            "unknown service",
            http.get(format!(
                "{}r1/central-server/GOV/70000005/vehicles-service/other/v1/{PLATE}",
                standin.url()
            ))
            .header("X-Road-Client", client),
            500,
            Some("Server.ServerProxy.UnknownService"),
        ),
        (
            "post",
            http.post(format!("{base}/v1/{PLATE}"))
                .header("X-Road-Client", client),
            405,
            None,
        ),
        (
            "other version",
            http.get(format!("{base}/v2/{PLATE}"))
                .header("X-Road-Client", client),
            404,
            None,
        ),
        (
            "found",
            http.get(format!("{base}/v1/{PLATE}"))
                .header("X-Road-Client", client)
                .header("X-Road-Id", "id-1"),
            200,
            None,
        ),
    ];
    for (what, request, status, error) in cases {
        let response = request.send().await.expect("the stand-in answers");
        assert_eq!(response.status().as_u16(), status, "{what}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(header("x-road-error").as_deref(), error, "{what}");
        if status == 200 {
            assert_eq!(header("x-road-id").as_deref(), Some("id-1"));
            assert_eq!(header("x-road-client").as_deref(), Some(client));
        }
        let body: serde_json::Value = response.json().await.expect("json");
        if let Some(code) = error {
            assert_eq!(body["type"], code, "{what}");
            assert!(
                body["message"].is_string() && body["detail"].is_string(),
                "{what}"
            );
        }
    }
}
