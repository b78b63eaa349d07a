//! Authentication: secret keys (`flow_sk_…`) and the principal they stand for.
//!
//! A secret is `flow_sk_` followed by 32 random bytes (base64url). Only its SHA-256 is stored
//! (the secret has full entropy, so a fast hash is the right tool), and it is shown once.
//!
//! A credential that authenticated is remembered for at most [`REMEMBER`] ([`Remembered`]), so
//! the hot path does not query the store. Revocation still takes effect on the very next
//! request, whichever process revoked: revoking or rotating rewrites the store's revocation
//! marker, and a remembered credential is only used while the marker is unchanged since it was
//! looked up.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::authz::{Principal, PrincipalKind};
use crate::store::{RevocationMarker, Store, StoreError};
use crate::tool::catalog::SCOPES;

/// The prefix of every secret key.
pub const KEY_PREFIX: &str = "flow_sk_";

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub studio: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// The first characters of the secret, to recognise it.
    pub hint: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A key just created or rotated: the only time its secret exists outside the caller's hands.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub info: KeyInfo,
    pub secret: String,
}

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown scope `{0}` (known: {known})", known = SCOPES.iter().map(|s| s.name).collect::<Vec<_>>().join(", "))]
    UnknownScope(String),
    #[error("a key needs at least one scope")]
    NoScopes,
    #[error("no key with id `{0}`")]
    NotFound(String),
    #[error("key `{0}` is already revoked")]
    Revoked(String),
    #[error("the studio id must be 1 to 64 characters of letters, digits, `_` and `-`")]
    BadStudio,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Store(StoreError::Query(e))
    }
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

/// Parses `all`, `read` (every `:read` scope) or a comma/space separated list of scopes.
pub fn parse_scopes(spec: &str) -> Result<BTreeSet<String>, KeyError> {
    let mut out = BTreeSet::new();
    for part in spec
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match part {
            "all" => out.extend(SCOPES.iter().map(|s| s.name.to_string())),
            "read" => out.extend(
                SCOPES
                    .iter()
                    .filter(|s| s.name.ends_with(":read"))
                    .map(|s| s.name.to_string()),
            ),
            s if SCOPES.iter().any(|d| d.name == s) => {
                out.insert(s.to_string());
            }
            s => return Err(KeyError::UnknownScope(s.to_string())),
        }
    }
    if out.is_empty() {
        return Err(KeyError::NoScopes);
    }
    Ok(out)
}

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

fn hint(secret: &str) -> String {
    format!("{}…", &secret[..KEY_PREFIX.len() + 4])
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn valid_studio(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Secret keys in the gateway's store.
#[derive(Debug, Clone)]
pub struct Keys {
    store: Store,
}

impl Keys {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Creates a key and returns its secret (shown once).
    pub async fn create(
        &self,
        studio: &str,
        name: &str,
        scopes: &BTreeSet<String>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewKey, KeyError> {
        let scopes_text = key_scopes(studio, scopes)?;
        let id = new_key_id();
        let secret = random_secret(KEY_PREFIX);
        let expires = expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let row = NewRow {
            id: &id,
            studio,
            name,
            scopes: &scopes_text,
            secret: &secret,
            created_at: &now(),
            expires_at: expires.as_deref(),
        };
        row.insert(&mut *self.store.pool().acquire().await?).await?;
        let info = self.get(&id).await?;
        Ok(NewKey { info, secret })
    }

    pub async fn get(&self, id: &str) -> Result<KeyInfo, KeyError> {
        let row = sqlx::query(
            "SELECT id, studio, name, scopes, hint, created_at, expires_at, last_used_at, revoked_at
             FROM api_keys WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| KeyError::NotFound(id.to_string()))?;
        Ok(info(&row))
    }

    /// Every key, optionally of one studio, newest first.
    pub async fn list(&self, studio: Option<&str>) -> Result<Vec<KeyInfo>, KeyError> {
        let rows = sqlx::query(
            "SELECT id, studio, name, scopes, hint, created_at, expires_at, last_used_at, revoked_at
             FROM api_keys WHERE (?1 IS NULL OR studio = ?1) ORDER BY created_at DESC, id",
        )
        .bind(studio)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows.iter().map(info).collect())
    }

    /// Revokes a key: its next request is refused.
    pub async fn revoke(&self, id: &str) -> Result<KeyInfo, KeyError> {
        let key = self.get(id).await?;
        if key.revoked_at.is_some() {
            return Err(KeyError::Revoked(id.to_string()));
        }
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
            .bind(now())
            .bind(id)
            .execute(self.store.pool())
            .await?;
        self.store.credentials_changed()?;
        self.get(id).await
    }

    /// Replaces a key's secret: the old secret stops working at once, the id, name, scopes and
    /// expiry stay.
    pub async fn rotate(&self, id: &str) -> Result<NewKey, KeyError> {
        let key = self.get(id).await?;
        if key.revoked_at.is_some() {
            return Err(KeyError::Revoked(id.to_string()));
        }
        let secret = random_secret(KEY_PREFIX);
        sqlx::query("UPDATE api_keys SET secret_hash = ?, hint = ? WHERE id = ?")
            .bind(secret_hash(&secret))
            .bind(hint(&secret))
            .bind(id)
            .execute(self.store.pool())
            .await?;
        self.store.credentials_changed()?;
        Ok(NewKey {
            info: self.get(id).await?,
            secret,
        })
    }

    /// The id of the key whose secret this is, whatever its state (for auditing a refusal).
    pub async fn id_of_secret(&self, secret: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query("SELECT id FROM api_keys WHERE secret_hash = ?")
            .bind(secret_hash(secret))
            .fetch_optional(self.store.pool())
            .await?
            .map(|r| r.get("id")))
    }

    /// Checks a bearer secret in the store and returns the principal it stands for.
    pub async fn authenticate(
        &self,
        secret: &str,
    ) -> Result<Result<Authenticated, Rejection>, StoreError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Ok(Err(Rejection::Unknown));
        }
        let row = sqlx::query(
            "SELECT id, studio, name, scopes, expires_at, revoked_at, last_used_at
             FROM api_keys WHERE secret_hash = ?",
        )
        .bind(secret_hash(secret))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Err(Rejection::Unknown));
        };
        if row.get::<Option<String>, _>("revoked_at").is_some() {
            return Ok(Err(Rejection::Revoked));
        }
        let now = Utc::now();
        let expires_at = row
            .get::<Option<String>, _>("expires_at")
            .map(|exp| DateTime::parse_from_rfc3339(&exp).map(|e| e.with_timezone(&Utc)));
        match expires_at {
            // An expiry that cannot be read is treated as past.
            Some(Err(_)) => return Ok(Err(Rejection::Expired)),
            Some(Ok(e)) if e <= now => return Ok(Err(Rejection::Expired)),
            _ => {}
        }
        let id: String = row.get("id");
        // `last_used_at` is kept to the minute: no write on every call.
        let stale = row
            .get::<Option<String>, _>("last_used_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .is_none_or(|t| now.signed_duration_since(t) > chrono::Duration::seconds(60));
        if stale {
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .bind(&id)
                .execute(self.store.pool())
                .await?;
        }
        Ok(Ok(Authenticated {
            principal: Principal {
                kind: PrincipalKind::Key,
                id,
                studio: row.get("studio"),
                name: row.get("name"),
                scopes: scope_list(&row.get::<String, _>("scopes")),
            },
            expires_at: expires_at.and_then(Result::ok),
        }))
    }

    /// Creates `count` keys named `{name_prefix}-{i}` (no expiry) and returns their secrets, in
    /// order. For fixtures such as the load benchmark's key scaling: the rows are those of
    /// [`Keys::create`], inserted in transactions of 10,000 instead of one statement each.
    pub async fn create_many(
        &self,
        studio: &str,
        name_prefix: &str,
        scopes: &BTreeSet<String>,
        count: usize,
    ) -> Result<Vec<String>, KeyError> {
        const BATCH: usize = 10_000;
        let scopes_text = key_scopes(studio, scopes)?;
        let created_at = now();
        let mut secrets = Vec::with_capacity(count);
        while secrets.len() < count {
            let mut tx = self.store.pool().begin().await?;
            for i in secrets.len()..count.min(secrets.len() + BATCH) {
                let secret = random_secret(KEY_PREFIX);
                let row = NewRow {
                    id: &new_key_id(),
                    studio,
                    name: &format!("{name_prefix}-{i}"),
                    scopes: &scopes_text,
                    secret: &secret,
                    created_at: &created_at,
                    expires_at: None,
                };
                row.insert(&mut tx).await?;
                secrets.push(secret);
            }
            tx.commit().await?;
        }
        Ok(secrets)
    }
}

/// Checks a new key's studio and scopes; the scopes as stored (space-separated).
fn key_scopes(studio: &str, scopes: &BTreeSet<String>) -> Result<String, KeyError> {
    if !valid_studio(studio) {
        return Err(KeyError::BadStudio);
    }
    if scopes.is_empty() {
        return Err(KeyError::NoScopes);
    }
    Ok(scopes.iter().cloned().collect::<Vec<_>>().join(" "))
}

/// One `api_keys` row, as [`Keys::create`] and [`Keys::create_many`] insert it.
struct NewRow<'a> {
    id: &'a str,
    studio: &'a str,
    name: &'a str,
    scopes: &'a str,
    secret: &'a str,
    created_at: &'a str,
    expires_at: Option<&'a str>,
}

impl NewRow<'_> {
    async fn insert(&self, conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO api_keys (id, studio, name, scopes, secret_hash, hint, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(self.id)
        .bind(self.studio)
        .bind(self.name)
        .bind(self.scopes)
        .bind(secret_hash(self.secret))
        .bind(hint(self.secret))
        .bind(self.created_at)
        .bind(self.expires_at)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// A new key id: `key_` and 16 random hex digits.
fn new_key_id() -> String {
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("key_{hex}")
}

/// A credential the store accepted.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// When the credential stops being valid, if it does.
    pub expires_at: Option<DateTime<Utc>>,
}

/// How long an authenticated credential is remembered at most. Revocation does not wait for
/// this (see [`Remembered`]); it bounds how stale `last_used_at` can get, and is the backstop if
/// a revoking process could not rewrite the revocation marker.
pub const REMEMBER: std::time::Duration = std::time::Duration::from_secs(15);

/// Credentials that authenticated recently, by the SHA-256 of the bearer token.
///
/// An entry is used only while (1) the store's revocation marker holds what it held when the
/// credential was looked up, (2) the credential has not expired, and (3) it is younger than
/// [`REMEMBER`]. The marker is read *before* the store is queried, so a revocation that commits
/// during a lookup leaves an entry that is already out of date. Rejections are never remembered.
#[derive(Debug, Clone)]
pub struct Remembered {
    entries: moka::sync::Cache<[u8; 32], Arc<Entry>>,
    /// The marker of the store the credentials are looked up in.
    marker: RevocationMarker,
}

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    expires_at: Option<DateTime<Utc>>,
    mark: [u8; 16],
}

impl Remembered {
    /// Remembers credentials of the store whose revocation marker this is.
    pub fn new(marker: RevocationMarker) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .name("credentials")
                .max_capacity(100_000)
                .time_to_live(REMEMBER)
                .build(),
            marker,
        }
    }

    /// The principal of `token`, from memory if still valid, otherwise from `lookup` (the store).
    /// The second value says whether memory answered.
    pub async fn authenticate<F>(
        &self,
        token: &str,
        lookup: F,
    ) -> Result<(Result<Arc<Principal>, Rejection>, bool), StoreError>
    where
        F: Future<Output = Result<Result<Authenticated, Rejection>, StoreError>>,
    {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mark = self.marker.read();
        if let Some(mark) = mark
            && let Some(entry) = self.entries.get(&digest)
        {
            if entry.mark == mark && entry.expires_at.is_none_or(|e| e > Utc::now()) {
                return Ok((Ok(entry.principal.clone()), true));
            }
            self.entries.invalidate(&digest);
        }
        let principal = match lookup.await? {
            Err(rejection) => return Ok((Err(rejection), false)),
            Ok(a) => {
                let principal = Arc::new(a.principal);
                if let Some(mark) = mark {
                    self.entries.insert(
                        digest,
                        Arc::new(Entry {
                            principal: principal.clone(),
                            expires_at: a.expires_at,
                            mark,
                        }),
                    );
                }
                principal
            }
        };
        Ok((Ok(principal), false))
    }
}

fn info(row: &sqlx::sqlite::SqliteRow) -> KeyInfo {
    KeyInfo {
        id: row.get("id"),
        studio: row.get("studio"),
        name: row.get("name"),
        scopes: scope_list(&row.get::<String, _>("scopes")),
        hint: row.get("hint"),
        created_at: row.get("created_at"),
        expires_at: row.get("expires_at"),
        last_used_at: row.get("last_used_at"),
        revoked_at: row.get("revoked_at"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys made in bulk (for the load benchmark) authenticate like keys made one at a time.
    #[tokio::test]
    async fn keys_created_in_bulk_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(Store::open(&dir.path().join("k.sqlite")).await.unwrap());
        let scopes = parse_scopes("classes:read").unwrap();
        let secrets = keys
            .create_many("std_a", "bulk", &scopes, 25)
            .await
            .unwrap();
        assert_eq!(secrets.len(), 25);
        assert_eq!(keys.list(Some("std_a")).await.unwrap().len(), 25);
        for secret in [&secrets[0], &secrets[24]] {
            let a = keys.authenticate(secret).await.unwrap().unwrap();
            assert_eq!(a.principal.studio, "std_a");
            assert_eq!(a.principal.scopes, scopes);
        }
    }
}
