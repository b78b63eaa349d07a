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
