//! SIP transports: UDP, TCP and TLS listeners that turn bytes into whole
//! SIP messages for the driver, and send what it gives back. All protocol
//! decisions live elsewhere; this is the I/O edge.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use super::flood::{FloodGuard, Verdict};
use super::log_window::LogWindow;
use crate::sip::framing;
use crate::sip::txn::{Peer, Transport};

/// Largest SIP message over a stream (matches the parser's default limit).
const MAX_STREAM_MESSAGE: usize = 256 * 1024;

/// A message (or what claims to be one) from a peer.
#[derive(Debug)]
pub struct Inbound {
    pub bytes: Vec<u8>,
    pub peer: Peer,
}

/// An IP prefix in the source ACL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.len.min(32) as u32)
                };
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.len.min(128) as u32)
                };
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The ACL as the listeners read it; SIGHUP swaps its contents.
pub type SharedAcl = Arc<std::sync::RwLock<Acl>>;

/// Which transport errors are logged now: one line per kind per source
/// per window, shared by every listener.
pub type SharedLogWindow = Arc<Mutex<LogWindow>>;

/// Whether to log an error of `kind` from `from` now: `Some(suppressed)`
/// with how many were not logged since the previous line.
fn log_due(logs: &SharedLogWindow, kind: &'static str, from: SocketAddr) -> Option<u64> {
    logs.lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(kind, from.ip(), std::time::Instant::now())
}

/// Whether `from` passes the ACL; a refused source is counted, and logged
/// once per window.
fn permits(acl: &SharedAcl, logs: &SharedLogWindow, from: SocketAddr, what: &str) -> bool {
    let ok = acl
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .permits(from.ip());
    if !ok {
        crate::metrics::sip_dropped("acl");
        if let Some(suppressed) = log_due(logs, "acl", from) {
            tracing::warn!(source = %from.ip(), peer = %from, suppressed, "SIP {what} from a source outside sip.allowed_sources dropped (logged once per source per 10 s)");
        }
    }
    ok
}

/// The per-source flood guard the listeners share.
pub type SharedGuard = Arc<Mutex<FloodGuard>>;

/// Whether a message from `from` may be queued; a flooding source is cut
/// to its rate, with one log line per source per window.
fn admit(guard: &SharedGuard, from: SocketAddr) -> bool {
    let v = guard
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(from.ip(), std::time::Instant::now());
    match v {
        Verdict::Pass => true,
        Verdict::Drop { log, dropped } => {
            crate::metrics::sip_dropped("rate_limited");
            if log {
                tracing::warn!(source = %from.ip(), dropped, suppressed = dropped.saturating_sub(1), "SIP flood: messages from this source over sip.flood_rate are dropped (other sources are not affected)");
            }
            false
        }
    }
}

/// Who may send us SIP. Empty = anyone.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    pub allow: Vec<Prefix>,
}

impl Acl {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|p| p.contains(ip))
    }
}

/// The send side of the transports, shared with the driver.
#[derive(Clone)]
pub struct Sender {
    udp: Arc<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    conns: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>>,
}

impl Sender {
    /// Send `bytes` to `peer`: over its connection for TCP/TLS, from the UDP
    /// socket it reached us on (or the first of its family) otherwise.
    pub async fn send(&self, peer: &Peer, bytes: Vec<u8>) {
        if let Some(conn) = peer.conn {
            let tx = self
                .conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&conn)
                .cloned();
            match tx {
                Some(tx) => {
                    let _ = tx.send(bytes);
                }
                None => tracing::debug!(conn, "connection gone; message dropped"),
            }
            return;
        }
        let sock = self
            .udp
            .iter()
            .find(|(local, _)| local.is_ipv4() == peer.addr.is_ipv4())
            .or_else(|| self.udp.first())
            .map(|(_, s)| s.clone());
        if let Some(s) = sock {
            if let Err(e) = s.send_to(&bytes, peer.addr).await {
                tracing::warn!(peer = %peer.addr, error = %e, "cannot send SIP over UDP");
            }
        }
    }
}

/// Listening transports.
pub struct Listeners {
    pub sender: Sender,
    pub local: Vec<(Transport, SocketAddr)>,
}

/// TLS server settings.
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

/// Load a certificate chain and key (PEM) into a TLS acceptor.
/// `client_ca`: when given, every client must present a certificate that
/// chains to one of its CAs (mutual TLS); the handshake fails otherwise.
pub fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certs = {
        let f = std::fs::File::open(cert)
            .map_err(|e| format!("sip.tls.cert {}: {e}", cert.display()))?;
        rustls_pemfile::certs(&mut std::io::BufReader::new(f))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("sip.tls.cert {}: {e}", cert.display()))?
    };
    if certs.is_empty() {
        return Err(format!(
            "sip.tls.cert {}: no certificate in the file",
            cert.display()
        ));
    }
    let key = {
        let f =
            std::fs::File::open(key).map_err(|e| format!("sip.tls.key {}: {e}", key.display()))?;
        rustls_pemfile::private_key(&mut std::io::BufReader::new(f))
            .map_err(|e| format!("sip.tls.key {}: {e}", key.display()))?
            .ok_or_else(|| format!("sip.tls.key {}: no private key in the file", key.display()))?
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("sip.tls: certificate and key do not match: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A verifier that accepts client certificates issued by the CAs in `ca`.
fn client_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, String> {
    let f =
        std::fs::File::open(ca).map_err(|e| format!("sip.tls.client_ca {}: {e}", ca.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut std::io::BufReader::new(f)) {
        let c = c.map_err(|e| format!("sip.tls.client_ca {}: {e}", ca.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("sip.tls.client_ca {}: {e}", ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "sip.tls.client_ca {}: no CA certificate in the file",
            ca.display()
        ));
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("sip.tls.client_ca {}: {e}", ca.display()))
}

/// Bind UDP and TCP on each address of `listen`, and TLS if given. Every
/// received message goes to `inbound`, after the ACL.
pub async fn listen(
    listen: &[SocketAddr],
    tcp: bool,
    tls: Option<TlsSettings>,
    acl: SharedAcl,
    guard: SharedGuard,
    inbound: mpsc::Sender<Inbound>,
) -> std::io::Result<Listeners> {
    let conns: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>> = Arc::default();
    let next_conn = Arc::new(AtomicU64::new(1));
    let logs: SharedLogWindow = Arc::default();
    let mut udp = Vec::new();
    let mut local = Vec::new();
    for addr in listen {
        let sock = UdpSocket::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot bind SIP UDP {addr}: {e}"))
        })?;
        let bound = sock.local_addr()?;
        let sock = Arc::new(sock);
        udp.push((bound, sock.clone()));
        local.push((Transport::Udp, bound));
        tokio::spawn(udp_loop(
            sock,
            acl.clone(),
            logs.clone(),
            guard.clone(),
            inbound.clone(),
        ));
        if tcp {
            let l = TcpListener::bind(bound).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot bind SIP TCP {bound}: {e}"))
            })?;
            local.push((Transport::Tcp, l.local_addr()?));
            tokio::spawn(accept_loop(
                l,
                None,
                Guards {
                    acl: acl.clone(),
                    logs: logs.clone(),
                    flood: guard.clone(),
                },
                inbound.clone(),
                conns.clone(),
                next_conn.clone(),
            ));
        }
    }
    if let Some(t) = tls {
        let l = TcpListener::bind(t.listen).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot bind SIP TLS {}: {e}", t.listen))
        })?;
        local.push((Transport::Tls, l.local_addr()?));
        tokio::spawn(accept_loop(
            l,
            Some(t.acceptor),
            Guards {
                acl: acl.clone(),
                logs: logs.clone(),
                flood: guard.clone(),
            },
            inbound.clone(),
            conns.clone(),
            next_conn.clone(),
        ));
    }
    Ok(Listeners {
        sender: Sender {
            udp: Arc::new(udp),
            conns,
        },
        local,
    })
}

async fn udp_loop(
    sock: Arc<UdpSocket>,
    acl: SharedAcl,
    logs: SharedLogWindow,
    guard: SharedGuard,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable from a previous send shows up here on
                // Linux; it is not fatal for the listener.
                tracing::debug!(error = %e, "SIP UDP receive error");
                continue;
            }
        };
        if !permits(&acl, &logs, from, "datagram") {
            continue;
        }
        if !admit(&guard, from) {
            continue;
        }
        let peer = Peer {
            addr: from,
            transport: Transport::Udp,
            conn: None,
        };
        if inbound
            .send(Inbound {
                bytes: buf[..n].to_vec(),
                peer,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// What a stream listener checks its peers against.
struct Guards {
    acl: SharedAcl,
    logs: SharedLogWindow,
    flood: SharedGuard,
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    guards: Guards,
    inbound: mpsc::Sender<Inbound>,
    conns: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<u8>>>>>,
    next_conn: Arc<AtomicU64>,
) {
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            continue;
        };
        if !permits(&guards.acl, &guards.logs, from, "connection") {
            continue;
        }
        // A connection counts as a message: a source opening connections
        // in a loop is limited like one sending datagrams.
        if !admit(&guards.flood, from) {
            continue;
        }
        let _ = stream.set_nodelay(true);
        let id = next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let inbound = inbound.clone();
        let conns = conns.clone();
        let tls = tls.clone();
        let guard = guards.flood.clone();
        let logs = guards.logs.clone();
        tokio::spawn(async move {
            let io = StreamIo {
                from,
                conn: id,
                guard,
                logs,
                inbound,
            };
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(s) => serve_stream(s, Transport::Tls, io, rx).await,
                    Err(e) => {
                        crate::metrics::sip_dropped("tls_handshake");
                        if let Some(suppressed) = log_due(&io.logs, "tls_handshake", from) {
                            tracing::warn!(source = %from.ip(), peer = %from, error = %e, suppressed, "TLS handshake failed (logged once per source per 10 s)");
                        }
                    }
                },
                None => serve_stream(stream, Transport::Tcp, io, rx).await,
            }
            conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        });
    }
}

/// Read whole SIP messages off a stream (Content-Length framing, RFC 3261
/// §18.3) and write what the driver sends back.
/// Where a stream's messages come from and go to.
struct StreamIo {
    from: SocketAddr,
    conn: u64,
    guard: SharedGuard,
    logs: SharedLogWindow,
    inbound: mpsc::Sender<Inbound>,
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    transport: Transport,
    io: StreamIo,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let StreamIo {
        from,
        conn,
        guard,
        logs,
        inbound,
    } = io;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = outbound.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match framing::message_length(&buf) {
                Ok(Some(len)) => {
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    if msg.iter().all(|b| *b == b'\r' || *b == b'\n') {
                        continue; // keep-alive
                    }
                    if !admit(&guard, from) {
                        continue;
                    }
                    let peer = Peer {
                        addr: from,
                        transport,
                        conn: Some(conn),
                    };
                    if inbound.send(Inbound { bytes: msg, peer }).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => {
                    if buf.len() > MAX_STREAM_MESSAGE {
                        crate::metrics::sip_dropped("oversized");
                        if let Some(suppressed) = log_due(&logs, "oversized", from) {
                            tracing::warn!(source = %from.ip(), peer = %from, suppressed, "SIP message over {MAX_STREAM_MESSAGE} bytes on a stream; closing (logged once per source per 10 s)");
                        }
                        break 'read;
                    }
                    break;
                }
                Err(e) => {
                    // The stream cannot be re-synchronised after a framing error.
                    crate::metrics::sip_dropped("unframeable");
                    if let Some(suppressed) = log_due(&logs, "unframeable", from) {
                        tracing::warn!(source = %from.ip(), peer = %from, error = %e, suppressed, "unframeable SIP on a stream; closing (logged once per source per 10 s)");
                    }
                    break 'read;
                }
            }
        }
    }
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = Prefix {
            addr: "192.0.2.0".parse().unwrap(),
            len: 24,
        };
        assert!(p.contains("192.0.2.77".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(p.contains("::ffff:192.0.2.9".parse().unwrap()));
        let v6 = Prefix {
            addr: "2001:db8::".parse().unwrap(),
            len: 32,
        };
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("2001:db9::5".parse().unwrap()));
        let all = Prefix {
            addr: "0.0.0.0".parse().unwrap(),
            len: 0,
        };
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert!(Acl::default().permits("198.51.100.1".parse().unwrap()));
    }
}
