//! Plain HTTPS downloads that are not registry API calls — a Helm chart repository's `index.yaml` and
//! the archives it lists — over the same TLS setup (system roots, `--ca-file`, `CI_SERVER_TLS_CA_FILE`,
//! `--insecure`) and with the same retry policy as registry requests. No credentials are sent: chart
//! repositories served this way are public (private charts live in OCI registries since Harbor 2.8).

use bytes::Bytes;
use url::Url;

use super::client::{build_http, execute, ClientOptions};
use super::error as rerr;
use super::retry::RetryPolicy;
use crate::error::{Error, Result};

/// GETs `url` whole (following redirects), retrying what is worth retrying; at most `limit` bytes.
pub async fn get_url(url: &Url, opts: &ClientOptions, retry: RetryPolicy, limit: u64) -> Result<Bytes> {
    let host = url.host_str().unwrap_or_default().to_string();
    let host = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    if url.scheme() != "https"
        && !(url.scheme() == "http" && (opts.plain_http || crate::model::is_loopback_host(&host)))
    {
        let shown = crate::model::DisplaySafeUrl::new(url.clone());
        return Err(Error::usage(format!("refusing to download {shown} over {}", url.scheme())).with_hint(
            "chart repositories are fetched over https (plain http only for loopback or with --plain-http)",
        ));
    }
    let http = build_http(&host, opts)?;
    let mut attempt = 0;
    loop {
        let result = async {
            let resp = execute(&http, http.get(url.clone())).await.map_err(rerr::from_reqwest)?;
            if !resp.status().is_success() {
                return Err(rerr::from_response(resp).await);
            }
            // Bounded as it streams in, not after: a body without a length cannot fill memory.
            rerr::read_capped(resp, usize::try_from(limit).unwrap_or(usize::MAX)).await
        }
        .await;
        match result {
            Ok(b) => return Ok(b),
            Err(e) => match e.retry() {
                Some(after) if attempt < retry.retries => {
                    tokio::time::sleep(retry.delay(attempt, after)).await;
                    attempt += 1;
                }
                _ => return Err(e.context(format!("downloading {}", crate::model::DisplaySafeUrl::new(url.clone())))),
            },
        }
    }
}
