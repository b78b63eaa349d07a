//! Secret keys (`flow_sk_…`): created, listed, rotated and revoked by the operator's CLI (and
//! any page that passes `Within::Studio`), and checked when one is presented as a bearer token.
//!
//! A secret is `flow_sk_` followed by 32 random bytes (base64url). Only its SHA-256 is stored
//! (the secret has full entropy, so a fast hash is the right tool), and it is shown once.
//! Revoking or rotating changes the store's revocation mark (`store::coordination`), so a
//! remembered credential ([`super::remembered`]) stops working on its next request.

use std::collections::BTreeSet;

use super::{
    Authenticated, Principal, PrincipalKind, Rejection, random_secret, scope_list, secret_hash,
};
use crate::store::keys::{KeyRow, NewKeyRow};
use crate::store::{Store, StoreError, Timestamp, Within};
use crate::tool::catalog::SCOPES;
use chrono::{DateTime, Utc};
use rand::RngCore;

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
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A key just created or rotated: the only time its secret exists outside the caller's hands.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub info: KeyInfo,
    pub secret: String,
}

/// The most keys [`Keys::create_many`] makes at once (one transaction).
pub const MAX_KEYS_AT_ONCE: usize = 10_000;

/// One of the keys [`Keys::create_many`] made; they share the studio, the scopes and the expiry.
#[derive(Debug, Clone)]
pub struct MadeKey {
    pub id: String,
    pub name: String,
    /// Shown once, like [`NewKey::secret`].
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
    #[error("between 1 and {MAX_KEYS_AT_ONCE} keys can be created at once, not {0}")]
    Count(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
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

fn hint(secret: &str) -> String {
    format!("{}…", &secret[..KEY_PREFIX.len() + 4])
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
        let secret = random_secret(KEY_PREFIX);
        let row = new_row(
            studio,
            name.to_string(),
            &scopes_text,
            &secret,
            Timestamp::now(),
        );
        let id = row.id.clone();
        self.store
            .insert_keys(&[NewKeyRow {
                expires_at: expires_at.map(Timestamp),
                ..row
            }])
            .await?;
        let info = self.get(Within::Studio(studio), &id).await?;
        Ok(NewKey { info, secret })
    }

    pub async fn get(&self, within: Within<'_>, id: &str) -> Result<KeyInfo, KeyError> {
        self.store
            .key(within, id)
            .await?
            .map(KeyInfo::from)
            .ok_or_else(|| KeyError::NotFound(id.to_string()))
    }

    /// Every key within `within`, newest first.
    pub async fn list(&self, within: Within<'_>) -> Result<Vec<KeyInfo>, KeyError> {
        Ok(self
            .store
            .keys(within)
            .await?
            .into_iter()
            .map(KeyInfo::from)
            .collect())
    }

    /// Revokes a key: its next request is refused, by every gateway using the store.
    pub async fn revoke(&self, within: Within<'_>, id: &str) -> Result<KeyInfo, KeyError> {
        if !self.store.revoke_key(within, id, Timestamp::now()).await? {
            // Unknown (within `within`) or already revoked: say which.
            self.get(within, id).await?;
            return Err(KeyError::Revoked(id.to_string()));
        }
        self.store.credentials_changed().await?;
        self.get(within, id).await
    }

    /// Replaces a key's secret: the old secret stops working at once, the id, name, scopes and
    /// expiry stay.
    pub async fn rotate(&self, within: Within<'_>, id: &str) -> Result<NewKey, KeyError> {
        let secret = random_secret(KEY_PREFIX);
        let rotated = self
            .store
            .rotate_key(within, id, &secret_hash(&secret), &hint(&secret))
            .await?;
        if !rotated {
            self.get(within, id).await?;
            return Err(KeyError::Revoked(id.to_string()));
        }
        self.store.credentials_changed().await?;
        Ok(NewKey {
            info: self.get(within, id).await?,
            secret,
        })
    }

    /// The id of the key whose secret this is, whatever its state (for auditing a refusal).
    pub async fn id_of_secret(&self, secret: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .key_by_secret(&secret_hash(secret))
            .await?
            .map(|k| k.key.id))
    }

    /// Checks a bearer secret in the store and returns the principal it stands for.
    pub async fn authenticate(
        &self,
        secret: &str,
    ) -> Result<Result<Authenticated, Rejection>, StoreError> {
        if !secret.starts_with(KEY_PREFIX) {
            return Ok(Err(Rejection::Unknown));
        }
        let Some(found) = self.store.key_by_secret(&secret_hash(secret)).await? else {
            return Ok(Err(Rejection::Unknown));
        };
        self.store.revocations().observe(found.epoch);
        let key = found.key;
        if key.revoked_at.is_some() {
            return Ok(Err(Rejection::Revoked));
        }
        let now = Timestamp::now();
        if key.expires_at.is_some_and(|e| e <= now) {
            return Ok(Err(Rejection::Expired));
        }
        // `last_used_at` is kept to the minute: no write on every call.
        let stale = key
            .last_used_at
            .is_none_or(|t| now.0.signed_duration_since(t.0) > chrono::Duration::seconds(60));
        if stale {
            self.store.touch_key(&key.id, now).await?;
        }
        Ok(Ok(Authenticated {
            principal: Principal {
                kind: PrincipalKind::Key,
                id: key.id,
                studio: key.studio,
                name: key.name,
                scopes: scope_list(&key.scopes),
            },
            expires_at: key.expires_at.map(|t| t.0),
        }))
    }

    /// Creates `count` keys (1 to [`MAX_KEYS_AT_ONCE`]) of one studio with the same scopes and
    /// expiry, named `{name}-1` … `{name}-{count}`, all or none (one transaction), and returns
    /// them with their secrets (shown once), in order. `flowgate keys create --count` offers it,
    /// e.g. to give every machine of a fleet its own key.
    pub async fn create_many(
        &self,
        studio: &str,
        name: &str,
        scopes: &BTreeSet<String>,
        expires_at: Option<DateTime<Utc>>,
        count: usize,
    ) -> Result<Vec<MadeKey>, KeyError> {
        if !(1..=MAX_KEYS_AT_ONCE).contains(&count) {
            return Err(KeyError::Count(count));
        }
        let scopes_text = key_scopes(studio, scopes)?;
        let created_at = Timestamp::now();
        let mut made = Vec::with_capacity(count);
        let mut rows = Vec::with_capacity(count);
        for i in 1..=count {
            let secret = random_secret(KEY_PREFIX);
            let row = NewKeyRow {
                expires_at: expires_at.map(Timestamp),
                ..new_row(
                    studio,
                    format!("{name}-{i}"),
                    &scopes_text,
                    &secret,
                    created_at,
                )
            };
            made.push(MadeKey {
                id: row.id.clone(),
                name: row.name.clone(),
                secret,
            });
            rows.push(row);
        }
        self.store.insert_keys(&rows).await?;
        Ok(made)
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

/// One `api_keys` row with a new id, as [`Keys::create`] and [`Keys::create_many`] insert it.
fn new_row<'a>(
    studio: &'a str,
    name: String,
    scopes: &'a str,
    secret: &str,
    created_at: Timestamp,
) -> NewKeyRow<'a> {
    NewKeyRow {
        id: new_key_id(),
        studio,
        name,
        scopes,
        secret_hash: secret_hash(secret),
        hint: hint(secret),
        created_at,
        expires_at: None,
    }
}

/// A new key id: `key_` and 16 random hex digits.
fn new_key_id() -> String {
    let mut id = [0u8; 8];
    rand::rng().fill_bytes(&mut id);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("key_{hex}")
}

impl From<KeyRow> for KeyInfo {
    fn from(r: KeyRow) -> Self {
        KeyInfo {
            id: r.id,
            studio: r.studio,
            name: r.name,
            scopes: scope_list(&r.scopes),
            hint: r.hint,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Location;

    /// Keys made in bulk authenticate like keys made one at a time, with their names, scopes
    /// and expiry; a count out of bounds makes none.
    #[tokio::test]
    async fn keys_created_in_bulk_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(
            Store::open(&Location::Sqlite(dir.path().join("k.sqlite")))
                .await
                .unwrap(),
        );
        let scopes = parse_scopes("classes:read").unwrap();
        let expires = Utc::now() + chrono::Duration::days(1);
        for count in [0, MAX_KEYS_AT_ONCE + 1] {
            let err = keys
                .create_many("std_a", "bulk", &scopes, None, count)
                .await
                .unwrap_err();
            assert!(matches!(err, KeyError::Count(n) if n == count), "{err}");
        }
        let made = keys
            .create_many("std_a", "bulk", &scopes, Some(expires), 25)
            .await
            .unwrap();
        assert_eq!(made.len(), 25);
        let listed = keys.list(Within::Studio("std_a")).await.unwrap();
        assert_eq!(listed.len(), 25);
        for (k, name) in [(&made[0], "bulk-1"), (&made[24], "bulk-25")] {
            assert_eq!(k.name, name);
            let a = keys.authenticate(&k.secret).await.unwrap().unwrap();
            assert_eq!(a.principal.id, k.id);
            assert_eq!(a.principal.name, name);
            assert_eq!(a.principal.studio, "std_a");
            assert_eq!(a.principal.scopes, scopes);
            let info = listed.iter().find(|i| i.id == k.id).unwrap();
            let millis = info.expires_at.map(|t| t.0.timestamp_millis());
            assert_eq!(millis, Some(expires.timestamp_millis()));
        }
    }
}
