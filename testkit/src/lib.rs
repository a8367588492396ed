//! What kozomol's tests share (a dev-dependency, never shipped; the benchmarks use it
//! too): fines as the stages leave them (`fines`), scratch databases on PostgreSQL
//! (`postgres`), an S3-compatible bucket (`s3`), and TLS peers: certificates made
//! per run for 127.0.0.1 — a server's, which the client under test is told to trust or
//! not, and a client's, which a server may require — and a front that takes TLS
//! connections and passes their plain bytes to a stand-in behind it (the stand-ins
//! speak plain HTTP). Every certificate signs itself: trusting one means naming it.
//! Also where this machine's `mosquitto` is, for the tests that start a broker of
//! their own.

pub mod fines;
pub mod postgres;
pub mod s3;

/// This machine's `mosquitto`: Debian puts it in /usr/sbin, which a user's PATH lacks.
pub fn mosquitto_bin() -> std::path::PathBuf {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| std::path::PathBuf::from("mosquitto"))
}

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
pub use tokio_rustls::TlsAcceptor;

/// A certificate with its key, for `127.0.0.1` and `localhost`.
pub struct TestCertificate {
    /// The certificate as PEM: what a peer is told to trust.
    pub pem: String,
    /// The private key as PEM (PKCS #8).
    pub key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Default for TestCertificate {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCertificate {
    pub fn new() -> TestCertificate {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("a certificate");
        TestCertificate {
            pem: certified.cert.pem(),
            key_pem: certified.key_pair.serialize_pem(),
            der: certified.cert.der().clone(),
            key_der: certified.key_pair.serialize_der(),
        }
    }

    /// Key and certificate in one PEM, as clients load their own identity.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.pem)
    }

    /// A server presenting this certificate to anyone.
    pub fn acceptor(&self) -> TlsAcceptor {
        // ring is the one provider built in (as for the clients).
        self.server(ServerConfig::builder().with_no_client_auth())
    }

    /// A server presenting this certificate that admits only clients presenting
    /// `client`'s.
    pub fn acceptor_requiring(&self, client: &TestCertificate) -> TlsAcceptor {
        let mut roots = RootCertStore::empty();
        roots.add(client.der.clone()).expect("a client root");
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .expect("a client verifier");
        self.server(ServerConfig::builder().with_client_cert_verifier(verifier))
    }

    fn server(
        &self,
        builder: tokio_rustls::rustls::ConfigBuilder<
            ServerConfig,
            tokio_rustls::rustls::server::WantsServerCert,
        >,
    ) -> TlsAcceptor {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = builder
            .with_single_cert(vec![self.der.clone()], key)
            .expect("a server config");
        TlsAcceptor::from(Arc::new(config))
    }
}

/// Takes TLS on 127.0.0.1 and relays each connection's plain bytes to `behind`.
pub struct TlsFront {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(behind: SocketAddr, acceptor: TlsAcceptor) -> TlsFront {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, counted) = (acceptor.clone(), Arc::clone(&counted));
                tokio::spawn(async move {
                    // A client refusing the certificate, or refused, ends here.
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = TcpStream::connect(behind).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            addr,
            handshakes,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections whose handshake completed.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
