//! A TCP link a test can cut: it forwards connections from a local port to a target
//! (a camera's way to the broker) until cut, then drops every connection and refuses
//! new ones until it is mended, as a network partition would.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

pub struct CuttableLink {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl CuttableLink {
    /// Forwards `127.0.0.1:<free port>` to `target`; starts open.
    pub fn start(target: SocketAddr) -> io::Result<CuttableLink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (accept_open, accept_streams) = (Arc::clone(&open), Arc::clone(&streams));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !accept_open.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    let mut kept = accept_streams
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    kept.push(c);
                    kept.push(s);
                }
                pipe(client.try_clone(), server.try_clone());
                pipe(server.try_clone(), client.try_clone());
            }
        });
        Ok(CuttableLink {
            addr,
            open,
            streams,
        })
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        let mut kept = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in kept.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Takes connections again.
    pub fn mend(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn pipe(from: io::Result<TcpStream>, to: io::Result<TcpStream>) {
    let (Ok(mut from), Ok(mut to)) = (from, to) else {
        return;
    };
    thread::spawn(move || {
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
    });
}
