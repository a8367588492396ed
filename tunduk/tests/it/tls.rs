//! The security server over TLS, as X-Road's connection type HTTPS has it: the server
//! presents its own self-signed internal certificate, which kozomol is told to trust,
//! and admits only the information system whose certificate is registered with it.

use std::io::Write as _;

use kozomol_testkit::{TestCertificate, TlsFront};
use kozomol_tunduk::standin::{FaultStyle, RegistryEntry};
use kozomol_tunduk::{BusProtocol, OwnerLookup, PlateOrigin, RegistryConfig, TundukError};

use crate::common::{config, context, registry, standin, PLATE};

fn pem_file(dir: &tempfile::TempDir, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(pem.as_bytes()).expect("write");
    path
}

/// What kozomol presents and trusts: (the server's certificate file, kozomol's
/// certificate file, its key file).
struct Files {
    server: std::path::PathBuf,
    client: std::path::PathBuf,
    client_key: std::path::PathBuf,
}

/// Written into `dir/{name}/`.
fn files(
    dir: &tempfile::TempDir,
    name: &str,
    server: &TestCertificate,
    client: &TestCertificate,
) -> Files {
    std::fs::create_dir_all(dir.path().join(name)).expect("a folder");
    Files {
        server: pem_file(dir, &format!("{name}/security-server.pem"), &server.pem),
        client: pem_file(dir, &format!("{name}/client.pem"), &client.pem),
        client_key: pem_file(dir, &format!("{name}/client.key"), &client.key_pem),
    }
}

#[tokio::test]
async fn lookups_go_over_tls_with_kozomols_certificate_and_nothing_else_gets_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, kozomol, stranger) = (
        TestCertificate::new(),
        TestCertificate::new(),
        TestCertificate::new(),
    );
    let standin = standin(FaultStyle::Legacy).await;
    standin.set_entry(
        PLATE,
        RegistryEntry::person(PLATE, "21234567890123", "Асанов", "Бакыт", ""),
    );
    let behind = standin
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the stand-in's address");
    let front = TlsFront::start(behind, server.acceptor_requiring(&kozomol)).await;
    let url = format!("https://127.0.0.1:{}/", front.port());
    let ours = files(&dir, "ours", &server, &kozomol);
    let theirs = files(&dir, "theirs", &server, &stranger);

    let with = |ca: Option<&std::path::Path>, identity: Option<&Files>| {
        let mut config: RegistryConfig = config(&standin, BusProtocol::Soap);
        config.security_server_url = url.clone();
        config.max_attempts = 1;
        config.security_server_ca_file = ca.map(ToOwned::to_owned);
        config.client_certificate_file = identity.map(|f| f.client.clone());
        config.client_key_file = identity.map(|f| f.client_key.clone());
        registry(config)
    };

    for protocol in [BusProtocol::Soap, BusProtocol::Rest] {
        let mut config = config(&standin, protocol);
        config.security_server_url = url.clone();
        config.security_server_ca_file = Some(ours.server.clone());
        config.client_certificate_file = Some(ours.client.clone());
        config.client_key_file = Some(ours.client_key.clone());
        let found = registry(config)
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert!(
            matches!(found, Ok(OwnerLookup::Found(_))),
            "{protocol:?}: {found:?}"
        );
    }
    assert_eq!(standin.request_count(), 2);

    // Refused before a byte of the request: without kozomol's certificate, with another
    // one, and trusting not the server's certificate but only the public roots.
    for (registry, what) in [
        (with(Some(&ours.server), None), "no client certificate"),
        (
            with(Some(&theirs.server), Some(&theirs)),
            "another client's certificate",
        ),
        (
            with(None, Some(&ours)),
            "the server's certificate untrusted",
        ),
    ] {
        let refused = registry
            .transport_current_info(PLATE, PlateOrigin::Auto, &context())
            .await
            .map(|answer| answer.lookup);
        assert!(
            matches!(refused, Err(TundukError::Transport(_))),
            "{what}: {refused:?}"
        );
    }
    assert_eq!(
        standin.request_count(),
        2,
        "nothing more reached the registry"
    );
}

#[test]
fn tls_files_are_checked_when_the_registry_is_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certificate = TestCertificate::new();
    let good = files(&dir, "good", &certificate, &certificate);
    let junk = pem_file(&dir, "junk.pem", "not a certificate\n");
    let base = || RegistryConfig::new("https://ss.city.example.kg/", crate::common::kozomol());
    let problem = |config: RegistryConfig| match kozomol_tunduk::VehicleRegistry::new(config) {
        Err(TundukError::Config(problems)) => problems.join("; "),
        other => panic!("expected a config error, got {other:?}"),
    };

    let mut only_certificate = base();
    only_certificate.client_certificate_file = Some(good.client.clone());
    assert!(problem(only_certificate).contains("go together"));

    let mut plain = base();
    plain.security_server_url = "http://ss.city.example.kg/".into();
    plain.security_server_ca_file = Some(good.server.clone());
    assert!(problem(plain).contains("not https"));

    let mut not_a_certificate = base();
    not_a_certificate.security_server_ca_file = Some(junk.clone());
    assert!(problem(not_a_certificate).contains("junk.pem"));

    let mut key_for_certificate = base();
    key_for_certificate.client_certificate_file = Some(junk.clone());
    key_for_certificate.client_key_file = Some(junk);
    assert!(problem(key_for_certificate).contains("not a certificate and its key"));

    let mut missing = base();
    missing.security_server_ca_file = Some(dir.path().join("absent.pem"));
    assert!(problem(missing).contains("absent.pem"));

    let mut fine = base();
    fine.security_server_ca_file = Some(good.server);
    fine.client_certificate_file = Some(good.client);
    fine.client_key_file = Some(good.client_key);
    kozomol_tunduk::VehicleRegistry::new(fine).expect("a registry");
}
