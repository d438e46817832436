//! Network probes below HTTP, for `hoist doctor`: name resolution and a bare TCP connect (the TLS handshake
//! probe is [`super::tls::probe`]). Resolution here is the system's (`getaddrinfo`); the transport resolves with
//! hickory, which reads the same `/etc/hosts` and `resolv.conf` but not other NSS sources.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The addresses `name` resolves to (deduplicated, in the resolver's order), or the resolver's error.
pub async fn resolve(name: &str, port: u16, timeout: Duration) -> Result<Vec<IpAddr>, String> {
    let addrs = tokio::time::timeout(timeout, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    Ok(ips)
}

/// Connects to each address in turn; the first that accepts (or the last error), and the time it all took.
pub async fn connect_first(ips: &[IpAddr], port: u16, timeout: Duration) -> (Result<SocketAddr, String>, Duration) {
    let started = Instant::now();
    let mut outcome = Err("no address to connect to".to_string());
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return (Ok(addr), started.elapsed()),
            Ok(Err(e)) => outcome = Err(e.to_string()),
            Err(_) => outcome = Err(format!("timed out after {timeout:?}")),
        }
    }
    (outcome, started.elapsed())
}
