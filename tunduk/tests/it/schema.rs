//! The stand-in answers in the registry's contract and kozomol asks in X-Road's: bodies
//! and header fields are validated with `xmllint` (Debian package `libxml2-utils`)
//! against the schema in `wsdl/vehicles-service.wsdl` and against `wsdl/xroad.xsd`.

use std::path::{Path, PathBuf};
use std::process::Command;

use kozomol_tunduk::registry::transport_current_info_request;
use kozomol_tunduk::soap::{build_envelope, RequestHeader};
use kozomol_tunduk::standin::{EntryOwner, FaultStyle, RegistryEntry, StandIn};
use kozomol_tunduk::xml::{self, SOAP_ENV_NS, XROAD_NS};
use kozomol_tunduk::{XRoadService, DEFAULT_SERVICE};
use roxmltree::Node;

use crate::common::{context, kozomol, standin, PLATE};

const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

fn wsdl_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("wsdl")
}

/// Ok, or xmllint's complaint.
fn xmllint(schema: &Path, document: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("document.xml");
    std::fs::write(&path, document).expect("the document is written");
    let output = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint did not run ({e}); install it: apt-get install -y libxml2-utils")
        });
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// `node` as a document of its own: the namespaces in scope declared on its start tag.
fn standalone(text: &str, node: Node<'_, '_>) -> String {
    let element = &text[node.range()];
    let start_tag = &element[..element.find('>').expect("a start tag")];
    let qname_end = 1 + element[1..]
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .expect("a name");
    let mut seen: Vec<Option<&str>> = Vec::new();
    let mut declarations = String::new();
    for scope in node.ancestors().filter(|n| n.is_element()) {
        for ns in scope.namespaces() {
            if ns.name() == Some("xml") || seen.contains(&ns.name()) {
                continue;
            }
            seen.push(ns.name());
            let attribute = match ns.name() {
                Some(prefix) => format!("xmlns:{prefix}="),
                None => "xmlns=".to_owned(),
            };
            if !start_tag.contains(&attribute) {
                declarations.push_str(&format!(" {attribute}\"{}\"", ns.uri()));
            }
        }
    }
    format!(
        "{}{declarations}{}",
        &element[..qname_end],
        &element[qname_end..]
    )
}

/// A schema holding only the WSDL's global element `name`, written to `dir`.
fn element_schema(dir: &Path, name: &str) -> PathBuf {
    let wsdl = std::fs::read_to_string(wsdl_dir().join("vehicles-service.wsdl"))
        .expect("the WSDL is in wsdl/");
    let doc = roxmltree::Document::parse(&wsdl).expect("the WSDL is well-formed");
    let element = doc
        .descendants()
        .find(|n| {
            xml::is(*n, XSD_NS, "element")
                && n.attribute("name") == Some(name)
                && n.parent().is_some_and(|p| xml::is(p, XSD_NS, "schema"))
        })
        .unwrap_or_else(|| panic!("the WSDL declares {name}"));
    let target = element
        .parent()
        .and_then(|schema| schema.attribute("targetNamespace"))
        .expect("a target namespace");
    let schema = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><xs:schema xmlns:xs="{XSD_NS}" targetNamespace="{target}" elementFormDefault="qualified">{}</xs:schema>"#,
        standalone(&wsdl, element)
    );
    let path = dir.join(format!("{name}.xsd"));
    std::fs::write(&path, schema).expect("the schema is written");
    path
}

fn request() -> (RequestHeader, String) {
    let service = XRoadService::parse(DEFAULT_SERVICE).expect("valid service");
    let header = RequestHeader::new(kozomol(), service.clone(), &context());
    let envelope = build_envelope(
        &header,
        &transport_current_info_request(service.service_code(), PLATE),
    );
    (header, envelope)
}

/// The body element of the stand-in's reply to a lookup of `plate`.
async fn reply_body(standin: &StandIn) -> String {
    let (_, envelope) = request();
    let reply = reqwest::Client::new()
        .post(standin.url())
        .header("content-type", "text/xml; charset=utf-8")
        .body(envelope)
        .send()
        .await
        .expect("the stand-in answers")
        .text()
        .await
        .expect("a body");
    let doc = xml::parse(&reply).expect("a well-formed reply");
    let body = doc
        .descendants()
        .find(|n| xml::is(*n, SOAP_ENV_NS, "Body"))
        .and_then(|b| b.children().find(|n| n.is_element()))
        .expect("a body element");
    standalone(&reply, body)
}

#[tokio::test]
async fn standin_replies_validate_against_the_wsdl() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let schema = element_schema(dir.path(), "transportCurrentInfoResponse");
    let standin = standin(FaultStyle::Legacy).await;
    let entries = [
        (
            "person",
            Some(RegistryEntry::person(
                PLATE,
                "21234567890123",
                "Асанов",
                "Бакыт",
                "Маратович",
            )),
        ),
        (
            "company",
            Some(RegistryEntry::company(
                PLATE,
                "01234567891011",
                "ОсОО «Ромашка & Ко»",
            )),
        ),
        ("not found", None),
    ];
    for (what, entry) in entries {
        match entry {
            Some(entry) => standin.set_entry(PLATE, entry),
            None => standin.remove(PLATE),
        }
        let body = reply_body(&standin).await;
        if let Err(complaint) = xmllint(&schema, &body) {
            panic!("{what}: the stand-in's reply breaks the WSDL:\n{complaint}\n{body}");
        }
    }

    // Several owners repeat `person`, which the WSDL does not allow: a documented
    // departure, checked so that it stays the only one.
    standin.set_entry(
        PLATE,
        RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", "").with_owner(
            EntryOwner {
                pin: Some("11234567890123".to_owned()),
                surname: "Асанова".to_owned(),
                name: "Айгуль".to_owned(),
                ..EntryOwner::default()
            },
        ),
    );
    let body = reply_body(&standin).await;
    let complaint = xmllint(&schema, &body).expect_err("two persons break the schema");
    assert!(complaint.contains("person"), "{complaint}");
}

#[test]
fn requests_validate_against_the_wsdl_and_xroad_xsd() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (_, envelope) = request();
    let doc = xml::parse(&envelope).expect("a well-formed request");

    let body_schema = element_schema(dir.path(), "transportCurrentInfo");
    let body = doc
        .descendants()
        .find(|n| xml::is(*n, SOAP_ENV_NS, "Body"))
        .and_then(|b| b.children().find(|n| n.is_element()))
        .expect("a body element");
    if let Err(complaint) = xmllint(&body_schema, &standalone(&envelope, body)) {
        panic!("the request body breaks the WSDL:\n{complaint}");
    }

    let xroad = wsdl_dir().join("xroad.xsd");
    let head = doc
        .descendants()
        .find(|n| xml::is(*n, SOAP_ENV_NS, "Header"))
        .expect("a header");
    let fields: Vec<Node<'_, '_>> = head.children().filter(|n| n.is_element()).collect();
    let names: Vec<&str> = fields.iter().map(|n| n.tag_name().name()).collect();
    assert_eq!(
        names,
        [
            "client",
            "service",
            "id",
            "userId",
            "issue",
            "protocolVersion"
        ]
    );
    for field in fields {
        assert_eq!(field.tag_name().namespace(), Some(XROAD_NS));
        if let Err(complaint) = xmllint(&xroad, &standalone(&envelope, field)) {
            panic!(
                "header field {} breaks xroad.xsd:\n{complaint}",
                field.tag_name().name()
            );
        }
    }
}
