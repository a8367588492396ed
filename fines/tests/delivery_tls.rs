//! The delivery channels over TLS: the SMS gateway behind HTTPS and an SMTP relay with
//! STARTTLS, with TLS from the first byte and with AUTH, each presenting a certificate
//! made for this run. A client told to trust it hands the notice over encrypted; one
//! that is not, or a relay that offers no TLS where TLS is required, sends nothing and
//! reports the channel unavailable (an operator's matter, no message at fault), as does
//! a gateway or relay whose host never answers the connection.

use kozomol_fines::delivery::standin::StandInGateway;
use kozomol_fines::delivery::{
    MessageSender, Notice, SendError, SmsGateway, SmsGatewayConfig, SmtpConfig, SmtpCredentials,
    SmtpMailer, SmtpSecurity, TrustedCertificates,
};
use kozomol_testkit::{TestCertificate, TlsFront};
use smtp::{Offer, TestSmtp};

#[path = "support/smtp.rs"]
mod smtp;

const TOKEN: &str = "tls-gateway-token";

fn notice(to: &str) -> Notice {
    Notice {
        to: to.to_owned(),
        number: "KG-BSK-2026-0000001".to_owned(),
        text: "Постановление № KG-BSK-2026-0000001 о штрафе 7 500,00 сом.".to_owned(),
        subject: "Постановление № KG-BSK-2026-0000001".to_owned(),
        reference: "kozomol-delivery-1".to_owned(),
        pdf: Some(b"%PDF-1.7 test".to_vec()),
        subscription: None,
    }
}

fn trusting(certificate: &TestCertificate) -> TrustedCertificates {
    TrustedCertificates::from_pem(certificate.pem.clone().into_bytes()).expect("a certificate")
}

fn unavailable(result: Result<impl std::fmt::Debug, SendError>) -> String {
    match result {
        Err(SendError::Unavailable(why)) => why,
        other => panic!("expected the channel unavailable, got {other:?}"),
    }
}

// ---- SMS over HTTPS ---------------------------------------------------------------

/// The stand-in gateway behind a TLS front: `https://127.0.0.1:{port}`.
async fn https_gateway(certificate: &TestCertificate) -> (StandInGateway, TlsFront, String) {
    let gateway = StandInGateway::start(TOKEN).await.expect("stand-in");
    let behind = gateway
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("the stand-in's address");
    let front = TlsFront::start(behind, certificate.acceptor()).await;
    let url = format!("https://127.0.0.1:{}", front.port());
    (gateway, front, url)
}

#[tokio::test]
async fn an_sms_goes_over_https_to_a_gateway_whose_certificate_is_trusted() {
    let certificate = TestCertificate::new();
    let (gateway, front, url) = https_gateway(&certificate).await;
    let mut config = SmsGatewayConfig::new(url, TOKEN);
    config.trusted = Some(trusting(&certificate));
    let client = SmsGateway::new(config).expect("client");

    let handover = client.send(&notice("+996555000101")).await.expect("sent");
    let id = handover.external_id.expect("the gateway's id");
    let sent = gateway.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].id.as_str(), sent[0].to.as_str()),
        (id.as_str(), "+996555000101")
    );
    // And its fate is read back the same way.
    client.status(&id).await.expect("status");
    assert!(front.handshakes() >= 1);
}

#[tokio::test]
async fn an_sms_gateway_with_an_untrusted_certificate_gets_nothing() {
    let certificate = TestCertificate::new();
    let (gateway, _front, url) = https_gateway(&certificate).await;
    // Trusting another certificate is not trusting this one.
    let mut config = SmsGatewayConfig::new(url, TOKEN);
    config.trusted = Some(trusting(&TestCertificate::new()));
    let client = SmsGateway::new(config).expect("client");

    let why = unavailable(client.send(&notice("+996555000101")).await);
    assert!(why.contains("invalid peer certificate"), "{why}");
    assert!(gateway.messages().is_empty());
}

// ---- e-mail over SMTP with TLS ----------------------------------------------------

fn mail_config(port: u16, security: SmtpSecurity) -> SmtpConfig {
    let mut config = SmtpConfig::new("127.0.0.1", port, "Козомол <noreply@kozomol.kg>");
    config.hello_name = "kozomol.test".into();
    config.security = security;
    config
}

fn account() -> SmtpCredentials {
    SmtpCredentials {
        username: "kozomol".into(),
        password: "relay-secret".into(),
    }
}

/// A relay offering STARTTLS and requiring AUTH as `account()`.
async fn relay_with_account(certificate: &TestCertificate) -> TestSmtp {
    let account = account();
    TestSmtp::offering(Offer {
        starttls: Some(certificate.acceptor()),
        account: Some((account.username, account.password)),
        ..Offer::default()
    })
    .await
}

#[tokio::test]
async fn an_email_goes_through_starttls_and_authenticates() {
    let certificate = TestCertificate::new();
    let server = relay_with_account(&certificate).await;
    let mut config = mail_config(server.port(), SmtpSecurity::StartTls);
    config.trusted = Some(trusting(&certificate));
    config.credentials = Some(account());
    let mailer = SmtpMailer::new(config).expect("mailer");

    let handover = mailer.send(&notice("asanov@mail.kg")).await.expect("sent");
    assert_eq!(handover.proof["security"], "starttls");
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the message came in clear");
    assert_eq!(received[0].authenticated_as.as_deref(), Some("kozomol"));
    assert_eq!(received[0].to, ["asanov@mail.kg"]);
}

#[tokio::test]
async fn an_email_goes_over_tls_from_the_first_byte() {
    let certificate = TestCertificate::new();
    let server = TestSmtp::offering(Offer {
        implicit_tls: Some(certificate.acceptor()),
        ..Offer::default()
    })
    .await;
    let mut config = mail_config(server.port(), SmtpSecurity::Tls);
    config.trusted = Some(trusting(&certificate));
    let mailer = SmtpMailer::new(config).expect("mailer");

    let handover = mailer.send(&notice("asanov@mail.kg")).await.expect("sent");
    assert_eq!(handover.proof["security"], "tls");
    let received = server.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
}

#[tokio::test]
async fn a_relay_offering_no_starttls_gets_nothing_in_clear() {
    let server = TestSmtp::start().await;
    let mut config = mail_config(server.port(), SmtpSecurity::StartTls);
    config.trusted = Some(trusting(&TestCertificate::new()));
    let mailer = SmtpMailer::new(config).expect("mailer");

    let why = unavailable(mailer.send(&notice("asanov@mail.kg")).await);
    assert!(why.to_ascii_lowercase().contains("starttls"), "{why}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_relay_with_an_untrusted_certificate_gets_nothing() {
    let certificate = TestCertificate::new();
    for (security, offer) in [
        (
            SmtpSecurity::StartTls,
            Offer {
                starttls: Some(certificate.acceptor()),
                ..Offer::default()
            },
        ),
        (
            SmtpSecurity::Tls,
            Offer {
                implicit_tls: Some(certificate.acceptor()),
                ..Offer::default()
            },
        ),
    ] {
        let server = TestSmtp::offering(offer).await;
        // Only the public roots: a self-signed certificate chains to none of them.
        let mailer = SmtpMailer::new(mail_config(server.port(), security)).expect("mailer");
        let why = unavailable(mailer.send(&notice("asanov@mail.kg")).await);
        assert!(
            why.contains("invalid peer certificate"),
            "{security:?}: {why}"
        );
        assert!(server.messages().is_empty(), "{security:?}");
    }
}

#[tokio::test]
async fn refused_credentials_make_the_channel_unavailable_not_the_message_failed() {
    let certificate = TestCertificate::new();
    let server = relay_with_account(&certificate).await;
    for (credentials, code) in [
        (
            Some(SmtpCredentials {
                password: "last-year's".into(),
                ..account()
            }),
            "(535)",
        ),
        // None at all, where the relay requires them.
        (None, "(530)"),
    ] {
        let mut config = mail_config(server.port(), SmtpSecurity::StartTls);
        config.trusted = Some(trusting(&certificate));
        config.credentials = credentials.clone();
        let mailer = SmtpMailer::new(config).expect("mailer");
        let why = unavailable(mailer.send(&notice("asanov@mail.kg")).await);
        assert!(why.contains(code), "{credentials:?}: {why}");
    }
    assert!(server.messages().is_empty());
}

#[test]
fn plain_connections_take_neither_credentials_nor_certificates() {
    let mut with_credentials = mail_config(25, SmtpSecurity::None);
    with_credentials.credentials = Some(account());
    let error = SmtpMailer::new(with_credentials)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("in clear"), "{error}");

    let mut with_certificates = mail_config(25, SmtpSecurity::None);
    with_certificates.trusted = Some(trusting(&TestCertificate::new()));
    let error = SmtpMailer::new(with_certificates)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("no TLS"), "{error}");

    // Nor does a plain-http SMS gateway take certificates.
    let mut plain_sms = SmsGatewayConfig::new("http://127.0.0.1:9", TOKEN);
    plain_sms.trusted = Some(trusting(&TestCertificate::new()));
    let error = SmsGateway::new(plain_sms)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("not https://"), "{error}");

    // The password never shows in logs.
    assert!(!format!("{:?}", account()).contains("relay-secret"));
}

// ---- A host that never answers the connection ---------------------------------------

/// A port on this machine whose connections stall: a listener with a backlog of none,
/// its queue filled by connections nobody accepts, so the kernel drops further SYNs
/// (as a firewall in front of a host that is down does). The listener and fillers are
/// kept alive by the caller.
fn stalled_port() -> (socket2::Socket, Vec<std::net::TcpStream>, u16) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().expect("address");
    listener.bind(&any.into()).expect("bind");
    listener.listen(0).expect("listen");
    let port = listener
        .local_addr()
        .expect("address")
        .as_socket()
        .expect("an inet address")
        .port();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_millis(300))
        {
            Ok(stream) => fillers.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return (listener, fillers, port),
            Err(e) => panic!("filling the listen queue: {e}"),
        }
    }
    panic!("connections to a full listen queue never stalled");
}

#[tokio::test]
async fn a_gateway_or_relay_whose_host_never_answers_is_unavailable() {
    let (_listener, _fillers, port) = stalled_port();

    let mut sms = SmsGatewayConfig::new(format!("http://127.0.0.1:{port}"), TOKEN);
    sms.timeout = std::time::Duration::from_secs(2);
    let gateway = SmsGateway::new(sms).expect("client");
    let why = unavailable(gateway.send(&notice("+996555000101")).await);
    assert!(why.contains("sms gateway"), "{why}");

    let mut mail = mail_config(port, SmtpSecurity::None);
    mail.timeout = std::time::Duration::from_secs(1);
    let mailer = SmtpMailer::new(mail).expect("mailer");
    let why = unavailable(mailer.send(&notice("asanov@mail.kg")).await);
    assert!(why.contains("smtp"), "{why}");
}
