//! Identity: who is calling, and for which studio. Everything between an `Authorization` header
//! and a [`Principal`] happens here; `http` only answers (the 401 challenge) and audits refusals.
//!
//! - [`bearer`] turns the header into a token, or refuses it (`Missing`, `Malformed`).
//! - [`Credential::of`] tells a token's kind by its prefix: a secret key (`flow_sk_`, [`keys`]),
//!   an OAuth access token (`flow_at_`, checked by `oauth::grants`), or neither (refused without
//!   a store lookup).
//! - [`authenticate`] gives the token's principal: from [`remembered`] while that is still valid
//!   (unrevoked, unexpired, at most 15 s old), otherwise looked up in the store.
//! - [`refused_owner`] names the key or grant a revoked or expired token belonged to, for the
//!   audit log.
//!
//! The [`Studio`] a call acts on (as the upstream describes it, with its tier) is the one studio
//! type: `app` caches it, `call` and `mcp` read its tier, `authz` builds its Cedar entity.
//! Secrets (keys, OAuth codes and tokens) are made and hashed by `random_secret` and
//! `secret_hash`. OAuth grants themselves (codes, refresh, revocation) stay in `oauth::grants`.

pub mod keys;
pub mod remembered;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::oauth::grants::{ACCESS_PREFIX, Grants};
use crate::store::StoreError;
use keys::{KEY_PREFIX, Keys};

/// Who is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A secret key (`flow_sk_…`).
    Key,
    /// An OAuth grant (an MCP client a studio user approved).
    Grant,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Key => "key",
            PrincipalKind::Grant => "grant",
        }
    }
}

/// A caller, as authentication established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The key or grant id (never the secret).
    pub id: String,
    /// The studio it belongs to.
    pub studio: String,
    /// The key's name or the OAuth client's name.
    pub name: String,
    pub scopes: BTreeSet<String>,
}

/// A studio as the upstream describes it (`GET /studio`): the studio a call acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Studio {
    pub id: String,
    /// Its display name; empty when only the tier was asked for (`flowgate policy explain`).
    pub name: String,
    /// Its plan (`free`, `pro`): what the tier-gated policies and rate limits look at.
    pub tier: String,
}

/// Why a bearer credential was refused (the client gets 401 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

impl Rejection {
    /// A short name, for metric labels.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Malformed => "malformed",
            Rejection::Unknown => "unknown",
            Rejection::Revoked => "revoked",
            Rejection::Expired => "expired",
        }
    }

    /// For the `WWW-Authenticate` `error_description` and the audit log.
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::Missing => "no bearer token was sent",
            Rejection::Malformed => "the Authorization header is not a bearer token",
            Rejection::Unknown => "the token is not valid",
            Rejection::Revoked => "the token was revoked",
            Rejection::Expired => "the token has expired",
        }
    }
}

/// A credential the store accepted.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// When the credential stops being valid, if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

// === the bearer token ===

/// The bearer token of a request: the first `Authorization` header, `Bearer <token>` (the scheme
/// in any case, the token trimmed of surrounding spaces). No header is [`Rejection::Missing`];
/// any other scheme, an empty token or a header that is not visible ASCII is
/// [`Rejection::Malformed`].
pub fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(Rejection::Missing)?;
    let value = value.to_str().map_err(|_| Rejection::Malformed)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => match token.trim() {
            "" => Err(Rejection::Malformed),
            token => Ok(token),
        },
        _ => Err(Rejection::Malformed),
    }
}

/// What a bearer token is, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `flow_sk_…`: a secret key, checked by [`Keys`].
    SecretKey(&'a str),
    /// `flow_at_…`: an OAuth access token, checked by [`Grants`].
    AccessToken(&'a str),
    /// Anything else: no store knows it.
    Unknown,
}

impl<'a> Credential<'a> {
    pub fn of(token: &'a str) -> Self {
        if token.starts_with(KEY_PREFIX) {
            Credential::SecretKey(token)
        } else if token.starts_with(ACCESS_PREFIX) {
            Credential::AccessToken(token)
        } else {
            Credential::Unknown
        }
    }
}

// === authentication ===

/// The principal `token` stands for: remembered ([`remembered::Remembered`]) or looked up.
pub async fn authenticate(
    app: &App,
    token: &str,
) -> Result<Result<Arc<Principal>, Rejection>, StoreError> {
    let (result, remembered) = app
        .credentials
        .authenticate(token, async {
            look_up(&app.keys, &app.oauth.grants, &app.mcp_url(), token).await
        })
        .await?;
    if result.is_ok() {
        app.metrics.cache("credentials", remembered);
    }
    Ok(result)
}

/// `token` checked in the store, by its kind: a secret key by `keys`, an access token by
/// `grants` (which also checks it was issued for `resource`), anything else refused unasked.
pub async fn look_up(
    keys: &Keys,
    grants: &Grants,
    resource: &str,
    token: &str,
) -> Result<Result<Authenticated, Rejection>, StoreError> {
    match Credential::of(token) {
        Credential::SecretKey(secret) => keys.authenticate(secret).await,
        Credential::AccessToken(token) => grants.authenticate(token, resource).await,
        Credential::Unknown => Ok(Err(Rejection::Unknown)),
    }
}

/// The key or grant a refused bearer token belongs to, when the store still knows it (a revoked
/// or expired one), for the audit log. A failed lookup is logged and answers `None`.
pub async fn refused_owner(
    app: &App,
    token: &str,
    rejection: Rejection,
) -> Option<(PrincipalKind, String)> {
    if !matches!(rejection, Rejection::Revoked | Rejection::Expired) {
        return None;
    }
    owner(&app.keys, &app.oauth.grants, token)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot look up a refused credential");
            None
        })
}

/// The key or grant `token` belongs to, whatever its state.
pub async fn owner(
    keys: &Keys,
    grants: &Grants,
    token: &str,
) -> Result<Option<(PrincipalKind, String)>, StoreError> {
    Ok(match Credential::of(token) {
        Credential::SecretKey(secret) => keys
            .id_of_secret(secret)
            .await?
            .map(|id| (PrincipalKind::Key, id)),
        Credential::AccessToken(token) => grants
            .grant_of_token(token)
            .await?
            .map(|id| (PrincipalKind::Grant, id)),
        Credential::Unknown => None,
    })
}

// === secrets ===

/// A bearer secret: `prefix` followed by 32 random bytes, base64url. Keys, OAuth codes and
/// tokens are all made this way.
pub(crate) fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a secret: its SHA-256, hex. Secrets have full entropy, so a fast
/// hash is the right tool.
pub(crate) fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A stored space-separated scope list.
pub(crate) fn scope_list<T: FromIterator<String>>(stored: &str) -> T {
    stored
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::grants::{NewGrant, Tokens};
    use crate::store::{Location, Store};
    use axum::http::HeaderValue;

    fn with_authorization(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        headers
    }

    fn bearer_of(value: &[u8]) -> Result<String, Rejection> {
        bearer(&with_authorization(&[value])).map(str::to_string)
    }

    #[test]
    fn no_authorization_header_is_missing() {
        assert_eq!(bearer(&HeaderMap::new()), Err(Rejection::Missing));
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_the_token_trimmed() {
        for (value, token) in [
            (&b"Bearer flow_sk_abc"[..], "flow_sk_abc"),
            (b"bearer flow_sk_abc", "flow_sk_abc"),
            (b"BEARER flow_sk_abc", "flow_sk_abc"),
            (b"Bearer    flow_sk_abc   ", "flow_sk_abc"),
            (b"Bearer \tflow_sk_abc\t", "flow_sk_abc"),
            // Not a token any store issues, but a token: the lookup refuses it (`Unknown`).
            (b"Bearer flow_sk_a b", "flow_sk_a b"),
        ] {
            assert_eq!(
                bearer_of(value).as_deref(),
                Ok(token),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn other_schemes_empty_tokens_and_non_ascii_headers_are_malformed() {
        for value in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"Token flow_sk_abc",
            b"Bearerflow_sk_abc",
            b"Bearer",
            b"Bearer ",
            b"Bearer      ",
            b"Bearer\tflow_sk_abc",
            b"flow_sk_abc",
            b"Bearer flow_sk_\xc3\xa9",
            b"B\xc3\xa9arer flow_sk_abc",
            b"",
        ] {
            assert_eq!(
                bearer_of(value),
                Err(Rejection::Malformed),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn only_the_first_authorization_header_counts() {
        let headers = with_authorization(&[b"Bearer first", b"Bearer second"]);
        assert_eq!(bearer(&headers), Ok("first"));
        let headers = with_authorization(&[b"Basic x", b"Bearer second"]);
        assert_eq!(bearer(&headers), Err(Rejection::Malformed));
    }

    #[test]
    fn a_token_is_told_by_its_prefix() {
        assert_eq!(
            Credential::of("flow_sk_abc"),
            Credential::SecretKey("flow_sk_abc")
        );
        assert_eq!(
            Credential::of("flow_at_abc"),
            Credential::AccessToken("flow_at_abc")
        );
        for other in [
            "flow_rt_abc",
            "flow_ac_abc",
            "FLOW_SK_abc",
            "Flow_at_abc",
            "sk_abc",
            "",
            " flow_sk_abc",
        ] {
            assert_eq!(Credential::of(other), Credential::Unknown, "{other:?}");
        }
    }

    const RESOURCE: &str = "http://127.0.0.1:9/mcp";

    /// A key and an OAuth grant's tokens, in a fresh SQLite store.
    async fn credentials(dir: &std::path::Path) -> (Store, Keys, Grants, String, Tokens) {
        let store = Store::open(&Location::Sqlite(dir.join("identity.sqlite")))
            .await
            .unwrap();
        let keys = Keys::new(store.clone());
        let grants = Grants::new(store.clone(), 3600);
        let scopes = keys::parse_scopes("read").unwrap();
        let secret = keys
            .create("std_a", "front desk", &scopes, None)
            .await
            .unwrap()
            .secret;
        let verifier = "v".repeat(43);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()));
        let redirect = "http://127.0.0.1:9/cb";
        let client = grants
            .register_client("Desk app", &[redirect.to_string()])
            .await
            .unwrap();
        let (_, code) = grants
            .approve(&NewGrant {
                studio: "std_b",
                user_id: "usr_1",
                user_email: "owner@example.com",
                client_id: &client.client_id,
                client_name: &client.client_name,
                scopes: &scopes,
                resource: RESOURCE,
                redirect_uri: redirect,
                code_challenge: &challenge,
            })
            .await
            .unwrap();
        let tokens = grants
            .exchange_code(&code, &client.client_id, redirect, &verifier, None)
            .await
            .unwrap()
            .result
            .unwrap();
        (store, keys, grants, secret, tokens)
    }

    /// A secret key goes to the keys, an access token to the grants (for this resource only),
    /// anything else is refused without asking the store.
    #[tokio::test]
    async fn each_kind_of_token_is_checked_where_it_was_issued() {
        let dir = tempfile::tempdir().unwrap();
        let (store, keys, grants, secret, tokens) = credentials(dir.path()).await;
        let check = |token: String, resource: &'static str| {
            let (keys, grants) = (&keys, &grants);
            async move { look_up(keys, grants, resource, &token).await.unwrap() }
        };

        let key = check(secret.clone(), RESOURCE).await.unwrap().principal;
        assert_eq!(
            (key.kind, key.studio.as_str(), key.name.as_str()),
            (PrincipalKind::Key, "std_a", "front desk")
        );
        let grant = check(tokens.access_token.clone(), RESOURCE)
            .await
            .unwrap()
            .principal;
        assert_eq!(
            (grant.kind, grant.studio.as_str(), grant.name.as_str()),
            (PrincipalKind::Grant, "std_b", "Desk app")
        );

        // A token with the other kind's prefix is looked up where that kind lives: not found.
        let swapped_key = secret.replacen(KEY_PREFIX, ACCESS_PREFIX, 1);
        let swapped_token = tokens.access_token.replacen(ACCESS_PREFIX, KEY_PREFIX, 1);
        for (token, resource) in [
            (swapped_key, RESOURCE),
            (swapped_token, RESOURCE),
            // The refresh token is a bearer of nothing.
            (tokens.refresh_token.clone(), RESOURCE),
            // Issued for another resource.
            (tokens.access_token.clone(), "http://127.0.0.1:10/mcp"),
            (secret[KEY_PREFIX.len()..].to_string(), RESOURCE),
        ] {
            assert_eq!(
                check(token.clone(), resource).await.err(),
                Some(Rejection::Unknown),
                "{token}"
            );
        }

        // Whose is a refused token: the key's or the grant's id, by prefix.
        let key_owner = owner(&keys, &grants, &secret).await.unwrap();
        assert_eq!(key_owner, Some((PrincipalKind::Key, key.id.clone())));
        let grant_owner = owner(&keys, &grants, &tokens.access_token).await.unwrap();
        assert_eq!(grant_owner, Some((PrincipalKind::Grant, grant.id.clone())));
        let nobody = owner(&keys, &grants, &tokens.refresh_token).await.unwrap();
        assert_eq!(nobody, None);

        // With the store closed, a key or token lookup fails, but an unknown kind is refused
        // all the same: it never reached the store.
        store.close().await.unwrap();
        assert!(look_up(&keys, &grants, RESOURCE, &secret).await.is_err());
        assert!(
            look_up(&keys, &grants, RESOURCE, &tokens.access_token)
                .await
                .is_err()
        );
        assert_eq!(
            look_up(&keys, &grants, RESOURCE, "ghp_0123456789")
                .await
                .unwrap()
                .err(),
            Some(Rejection::Unknown)
        );
        assert_eq!(owner(&keys, &grants, "ghp_0123456789").await.unwrap(), None);
    }
}
