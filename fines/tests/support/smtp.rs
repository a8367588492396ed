//! A tiny SMTP server for the e-mail tests: it binds 127.0.0.1:0, speaks just enough
//! ESMTP (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, and as told STARTTLS, TLS from
//! the first byte and AUTH PLAIN), answers every message `250 2.0.0 Ok: queued as Q<n>`,
//! and keeps what it received.

// Not every test binary that shares this server uses all it offers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use kozomol_testkit::TlsAcceptor;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server offers beyond plain ESMTP.
#[derive(Clone, Default)]
pub struct Offer {
    /// STARTTLS with this certificate.
    pub starttls: Option<TlsAcceptor>,
    /// TLS from the first byte with this certificate (instead of STARTTLS).
    pub implicit_tls: Option<TlsAcceptor>,
    /// AUTH PLAIN, required before MAIL, for this user and password; offered over TLS
    /// only.
    pub account: Option<(String, String)>,
}

/// One message as the server received it.
#[derive(Clone, Debug, Default)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message (headers and body), dot-unstuffed, with CRLF line ends.
    pub data: String,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The user it was submitted as.
    pub authenticated_as: Option<String>,
}

pub struct TestSmtp {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl TestSmtp {
    pub async fn start() -> TestSmtp {
        Self::offering(Offer::default()).await
    }

    pub async fn offering(offer: Offer) -> TestSmtp {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("smtp bind");
        let addr = listener.local_addr().expect("smtp address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (offer, kept) = (offer.clone(), Arc::clone(&kept));
                tokio::spawn(async move {
                    match &offer.implicit_tls {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                session(Box::new(tls), true, &offer, kept).await;
                            }
                        }
                        None => session(Box::new(stream), false, &offer, kept).await,
                    }
                });
            }
        });
        TestSmtp {
            addr,
            received,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().expect("smtp messages").clone()
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The address inside `<...>` of `MAIL FROM:` / `RCPT TO:`.
fn path(line: &str) -> String {
    match (line.find('<'), line.rfind('>')) {
        (Some(open), Some(close)) if open < close => line[open + 1..close].to_owned(),
        _ => String::new(),
    }
}

trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// `\0user\0password` in base64, as AUTH PLAIN sends it.
fn plain_login(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let mut parts = text.split('\0').skip(1);
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// Writes a reply out through TLS's buffers; false once the client is gone.
async fn say(lines: &mut BufReader<Box<dyn Connection>>, reply: &[u8]) -> bool {
    let stream = lines.get_mut();
    stream.write_all(reply).await.is_ok() && stream.flush().await.is_ok()
}

async fn session(
    stream: Box<dyn Connection>,
    mut tls: bool,
    offer: &Offer,
    kept: Arc<Mutex<Vec<Received>>>,
) {
    let mut lines = BufReader::new(stream);
    let mut current = Received::default();
    let mut user: Option<String> = None;
    if !say(&mut lines, b"220 test.local ESMTP\r\n").await {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                let mut reply = "250-test.local\r\n250-8BITMIME\r\n".to_owned();
                if offer.starttls.is_some() && !tls {
                    reply.push_str("250-STARTTLS\r\n");
                }
                if offer.account.is_some() && tls {
                    reply.push_str("250-AUTH PLAIN\r\n");
                }
                reply.push_str("250 SIZE 20971520\r\n");
                reply
            }
            "HELO" => "250 test.local\r\n".into(),
            "STARTTLS" => match (&offer.starttls, tls) {
                (Some(acceptor), false) => {
                    if !say(&mut lines, b"220 2.0.0 Ready to start TLS\r\n").await {
                        return;
                    }
                    // The client sends nothing more until the handshake: no buffered
                    // plain bytes are lost here.
                    let Ok(upgraded) = acceptor.accept(lines.into_inner()).await else {
                        return;
                    };
                    lines = BufReader::new(Box::new(upgraded));
                    tls = true;
                    // RFC 3207: everything learnt before is forgotten.
                    current = Received::default();
                    user = None;
                    continue;
                }
                _ => "502 5.5.1 STARTTLS not offered\r\n".into(),
            },
            "AUTH" => match (&offer.account, tls) {
                (Some((name, password)), true) => {
                    let mut words = command.split_whitespace().skip(1);
                    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                    match (mechanism.as_str(), words.next().and_then(plain_login)) {
                        ("PLAIN", Some((given, secret)))
                            if given == *name && secret == *password =>
                        {
                            user = Some(given);
                            "235 2.7.0 Authentication successful\r\n".into()
                        }
                        ("PLAIN", _) => "535 5.7.8 Authentication credentials invalid\r\n".into(),
                        _ => "504 5.5.4 Unrecognized authentication type\r\n".into(),
                    }
                }
                _ => "502 5.5.1 AUTH not offered\r\n".into(),
            },
            "MAIL" if offer.account.is_some() && user.is_none() => {
                "530 5.7.0 Authentication required\r\n".into()
            }
            "MAIL" => {
                current = Received {
                    from: path(&command),
                    tls,
                    authenticated_as: user.clone(),
                    ..Received::default()
                };
                "250 2.1.0 Ok\r\n".into()
            }
            "RCPT" => {
                current.to.push(path(&command));
                "250 2.1.5 Ok\r\n".into()
            }
            "DATA" => {
                if !say(&mut lines, b"354 End data with <CR><LF>.<CR><LF>\r\n").await {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(unstuffed);
                }
                current.data = data;
                let n = {
                    let mut kept = kept.lock().expect("smtp messages");
                    kept.push(std::mem::take(&mut current));
                    kept.len()
                };
                format!("250 2.0.0 Ok: queued as Q{n}\r\n")
            }
            "RSET" => {
                current = Received::default();
                "250 2.0.0 Ok\r\n".into()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "QUIT" => {
                if say(&mut lines, b"221 2.0.0 Bye\r\n").await {
                    let _ = lines.get_mut().shutdown().await;
                }
                return;
            }
            _ => "502 5.5.2 Command not recognized\r\n".into(),
        };
        if !say(&mut lines, reply.as_bytes()).await {
            return;
        }
    }
}
