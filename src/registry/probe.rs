//! Network probes below HTTP, for `hoist doctor`: name resolution and a bare TCP connect (the TLS handshake
//! probe is [`super::tls::probe`]). Names are resolved as the transport resolves them: hickory with the system's
//! `resolv.conf` and `/etc/hosts`, both address families, Google's DNS when there is no system configuration
//! (reqwest's hickory-dns setup) — never glibc's NSS, which a static binary lacks.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_resolver::config::{LookupIpStrategy, ResolverConfig, GOOGLE};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

/// The addresses `name` resolves to (deduplicated, in the resolver's order), or the resolver's error.
pub async fn resolve(name: &str, timeout: Duration) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut builder = TokioResolver::builder_tokio().unwrap_or_else(|_| {
        TokioResolver::builder_with_config(ResolverConfig::udp_and_tcp(&GOOGLE), TokioRuntimeProvider::default())
    });
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv6AndIpv4;
    let resolver = builder.build().map_err(|e| e.to_string())?;
    let lookup = tokio::time::timeout(timeout, resolver.lookup_ip(name))
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
        .map_err(|e| match () {
            _ if e.is_nx_domain() => "no such name (NXDOMAIN)".to_string(),
            _ if e.is_no_records_found() => "no address (no A or AAAA record)".to_string(),
            _ => e.to_string(),
        })?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in lookup.iter() {
        if !ips.contains(&ip) {
            ips.push(ip);
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
