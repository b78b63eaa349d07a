//! Client ID Metadata Documents: a client whose `client_id` is an `https` URL is described by the
//! JSON document at that URL, fetched with SSRF protection (no private, loopback or link-local
//! addresses unless explicitly allowed, the address pinned after the check, no redirects), size
//! and time limits, and a cache. A `client_name` with control or bidirectional formatting
//! characters makes the document unusable (`invalid_client_metadata`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::grants::Client;

/// The largest metadata document accepted.
const MAX_BYTES: usize = 64 * 1024;

/// Fetches and caches client metadata documents.
#[derive(Debug, Clone)]
pub struct Cimd {
    cache: moka::future::Cache<String, Client>,
    /// Allow `http` and private or loopback addresses (`oauth_allow_private_client_metadata`:
    /// developing a client on one machine only).
    allow_private: bool,
}

/// Whether an address is outside the public internet.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
        }
    }
}

impl Cimd {
    pub fn new(allow_private: bool) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .name("client_metadata")
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            allow_private,
        }
    }

    /// Whether a `client_id` names a metadata document.
    pub fn is_document_url(&self, client_id: &str) -> bool {
        client_id.starts_with("https://")
            || (self.allow_private && client_id.starts_with("http://"))
    }

    /// The client a metadata document describes; errors say why it cannot be used.
    pub async fn client(&self, url: &str) -> Result<Client, String> {
        let allow_private = self.allow_private;
        self.cache
            .try_get_with(url.to_string(), fetch(url, allow_private))
            .await
            .map_err(|e| (*e).clone())
    }
}

async fn fetch(url: &str, allow_private: bool) -> Result<Client, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("the client_id is not a URL: {e}"))?;
    if parsed.scheme() != "https" && !(allow_private && parsed.scheme() == "http") {
        return Err("a client metadata document must be served over https".into());
    }
    if parsed.path() == "/" || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err("the client_id URL must have a path and no fragment or credentials".into());
    }
    let host = parsed
        .host_str()
        .ok_or("the client_id URL has no host")?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| "looking up the client_id's host timed out".to_string())?
    .map_err(|e| format!("cannot resolve the client_id's host: {e}"))?
    .collect();
    let Some(addr) = addrs.first().copied() else {
        return Err("the client_id's host has no address".into());
    };
    if !allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err("the client_id points at a private or loopback address".into());
    }
    // Pin the checked address so a second DNS answer cannot point elsewhere.
    let http = reqwest::Client::builder()
        .resolve(&host, addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut response = http
        .get(parsed.clone())
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot fetch the client metadata document: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the client metadata document answered HTTP {}",
            response.status()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            return Err("the client metadata document is larger than 64 KiB".into());
        }
    }
    parse_document(url, &host, &body)
}

/// The client a fetched metadata document describes: pure, so it is tested (and fuzzed) without a
/// network. `url` is the `client_id` it was fetched from, `host` that URL's host (the name shown
/// when the document gives none). Any bytes give a client or a sentence saying why not.
pub fn parse_document(url: &str, host: &str, body: &[u8]) -> Result<Client, String> {
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the client metadata document is not JSON: {e}"))?;
    if doc["client_id"].as_str() != Some(url) {
        return Err("the document's client_id is not its own URL".into());
    }
    let redirect_uris: Vec<String> = doc["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    super::check_redirect_uris(&redirect_uris)?;
    if let Some(name) = doc["client_name"].as_str() {
        super::check_client_name(name)
            .map_err(|e| format!("invalid_client_metadata: the document's {e}"))?;
    }
    let client_name = doc["client_name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(host)
        .chars()
        .take(100)
        .collect();
    Ok(Client {
        client_id: url.to_string(),
        client_name,
        redirect_uris,
    })
}
