//! OAuth state in the gateway's store: registered clients, grants, authorization codes and
//! tokens. Secrets (codes, tokens) are stored as SHA-256 hashes only.

use std::collections::BTreeSet;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::auth::{Authenticated, Rejection};
use crate::authz::{Principal, PrincipalKind};
use crate::store::{Store, StoreError};

pub const ACCESS_PREFIX: &str = "flow_at_";
pub const REFRESH_PREFIX: &str = "flow_rt_";

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
}

/// A grant, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantInfo {
    pub id: String,
    pub studio: String,
    pub user_email: String,
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A token pair, as handed to the client once.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub scopes: Vec<String>,
}

/// Why a token request failed, as RFC 6749 error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// A code or refresh token used a second time: it leaked, so its grant was revoked
    /// (`invalid_grant` on the wire).
    #[error("invalid_grant: {0}")]
    Reused(String),
}

/// The grant a code or token belongs to, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRef {
    pub id: String,
    pub studio: String,
    pub client_name: String,
}

/// What a token request did: the grant it concerned, when the code or token was known.
#[derive(Debug, Clone)]
pub struct TokenOutcome {
    pub grant: Option<GrantRef>,
    pub result: Result<Tokens, TokenError>,
}

impl TokenOutcome {
    fn refused(grant: &GrantRef, e: TokenError) -> Self {
        Self {
            grant: Some(grant.clone()),
            result: Err(e),
        }
    }

    fn unknown(description: &str) -> Self {
        Self {
            grant: None,
            result: Err(TokenError::InvalidGrant(description.to_string())),
        }
    }
}

/// A dynamically registered client, as `flowgate clients list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub created_at: String,
    /// Grants approved for it, revoked ones included.
    pub grants: i64,
    /// Grants not revoked.
    pub active_grants: i64,
}

/// How long a registration that never led to a grant is kept.
pub const UNUSED_CLIENT_TTL: Duration = Duration::hours(24);

use crate::auth::scope_list;
pub(crate) use crate::auth::{random_secret as random_token, secret_hash as hash};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn grant_ref(row: &sqlx::sqlite::SqliteRow, id_column: &str) -> GrantRef {
    GrantRef {
        id: row.get(id_column),
        studio: row.get("studio"),
        client_name: row.get("client_name"),
    }
}

/// The S256 PKCE check: `BASE64URL(SHA256(verifier)) == challenge`.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let valid = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    valid
        && base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes()))
            == challenge
}

/// What a new grant is made of.
#[derive(Debug, Clone)]
pub struct NewGrant<'a> {
    pub studio: &'a str,
    pub user_id: &'a str,
    pub user_email: &'a str,
    pub client_id: &'a str,
    pub client_name: &'a str,
    pub scopes: &'a BTreeSet<String>,
    pub resource: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
}

/// OAuth rows in the gateway's store.
#[derive(Debug, Clone)]
pub struct Grants {
    store: Store,
    access_ttl: Duration,
    code_ttl: Duration,
}

impl Grants {
    pub fn new(store: Store, access_ttl_secs: u64) -> Self {
        Self {
            store,
            access_ttl: Duration::seconds(i64::try_from(access_ttl_secs).unwrap_or(3600)),
            code_ttl: Duration::seconds(60),
        }
    }

    /// Registered clients that count against the cap: those that led to a grant, and those
    /// registered less than [`UNUSED_CLIENT_TTL`] ago.
    pub async fn live_client_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM oauth_clients c
             WHERE c.created_at >= ?
                OR EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = c.client_id)",
        )
        .bind(ts(Utc::now() - UNUSED_CLIENT_TTL))
        .fetch_one(self.store.pool())
        .await?
        .get("n"))
    }

    /// Deletes registrations older than [`UNUSED_CLIENT_TTL`] that never led to a grant;
    /// returns how many.
    pub async fn expire_unused_clients(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM oauth_clients
             WHERE created_at < ?
               AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)",
        )
        .bind(ts(Utc::now() - UNUSED_CLIENT_TTL))
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Every registered client, newest first.
    pub async fn list_clients(&self) -> Result<Vec<ClientInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.client_id, c.client_name, c.redirect_uris, c.created_at,
                    (SELECT COUNT(*) FROM oauth_grants g WHERE g.client_id = c.client_id) AS grants,
                    (SELECT COUNT(*) FROM oauth_grants g
                      WHERE g.client_id = c.client_id AND g.revoked_at IS NULL) AS active_grants
             FROM oauth_clients c ORDER BY c.created_at DESC, c.client_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| ClientInfo {
                client_id: r.get("client_id"),
                client_name: r.get("client_name"),
                redirect_uris: serde_json::from_str(&r.get::<String, _>("redirect_uris"))
                    .unwrap_or_default(),
                created_at: r.get("created_at"),
                grants: r.get("grants"),
                active_grants: r.get("active_grants"),
            })
            .collect())
    }

    /// Deletes a registered client and revokes its grants (their tokens are refused on their
    /// next request). Returns the client and how many grants were revoked, or `None` if unknown.
    pub async fn delete_client(
        &self,
        client_id: &str,
    ) -> Result<Option<(Client, usize)>, StoreError> {
        let Some(client) = self.client(client_id).await? else {
            return Ok(None);
        };
        let active: Vec<String> =
            sqlx::query("SELECT id FROM oauth_grants WHERE client_id = ? AND revoked_at IS NULL")
                .bind(client_id)
                .fetch_all(self.store.pool())
                .await?
                .iter()
                .map(|r| r.get("id"))
                .collect();
        let mut revoked = 0;
        for id in &active {
            if self.revoke_grant(id, "its client was deleted").await? {
                revoked += 1;
            }
        }
        sqlx::query("DELETE FROM oauth_clients WHERE client_id = ?")
            .bind(client_id)
            .execute(self.store.pool())
            .await?;
        Ok(Some((client, revoked)))
    }

    /// The grant an access or refresh token belongs to, whatever its state (for auditing a
    /// rejected token).
    pub async fn grant_of_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query("SELECT grant_id FROM oauth_tokens WHERE token_hash = ?")
                .bind(hash(token))
                .fetch_optional(self.store.pool())
                .await?
                .map(|r| r.get("grant_id")),
        )
    }

    pub async fn register_client(
        &self,
        client_name: &str,
        redirect_uris: &[String],
    ) -> Result<Client, StoreError> {
        let client_id = format!("fgc_{}", &random_token("")[..24]);
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, client_name, redirect_uris, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&client_id)
        .bind(client_name)
        .bind(serde_json::to_string(redirect_uris).unwrap_or_default())
        .bind(ts(Utc::now()))
        .execute(self.store.pool())
        .await?;
        Ok(Client {
            client_id,
            client_name: client_name.to_string(),
            redirect_uris: redirect_uris.to_vec(),
        })
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, client_name, redirect_uris FROM oauth_clients WHERE client_id = ?",
        )
        .bind(client_id)
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.map(|r| Client {
            client_id: r.get("client_id"),
            client_name: r.get("client_name"),
            redirect_uris: serde_json::from_str(&r.get::<String, _>("redirect_uris"))
                .unwrap_or_default(),
        }))
    }

    /// Records an approval and returns the authorization code for it.
    pub async fn approve(&self, g: &NewGrant<'_>) -> Result<(String, String), StoreError> {
        let id = format!("grt_{}", &random_token("")[..20]);
        let now = Utc::now();
        let mut tx = self.store.pool().begin().await?;
        sqlx::query(
            "INSERT INTO oauth_grants (id, studio, user_id, user_email, client_id, client_name, scopes, resource, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(g.studio)
        .bind(g.user_id)
        .bind(g.user_email)
        .bind(g.client_id)
        .bind(g.client_name)
        .bind(g.scopes.iter().cloned().collect::<Vec<_>>().join(" "))
        .bind(g.resource)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let code = random_token("flow_ac_");
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(hash(&code))
        .bind(&id)
        .bind(g.client_id)
        .bind(g.redirect_uri)
        .bind(g.code_challenge)
        .bind(ts(now + self.code_ttl))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, code))
    }

    /// `grant_type=authorization_code`: single use, bound to client, redirect and PKCE verifier.
    pub async fn exchange_code(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
        resource: Option<&str>,
    ) -> Result<TokenOutcome, StoreError> {
        let now = Utc::now();
        // Mark the code used first, atomically: a second exchange finds it used.
        let used = sqlx::query(
            "UPDATE oauth_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(hash(code))
        .execute(self.store.pool())
        .await?;
        let row = sqlx::query(
            "SELECT c.grant_id, c.client_id, c.redirect_uri, c.code_challenge, c.expires_at, g.resource, g.scopes,
                    g.studio, g.client_name
             FROM oauth_codes c JOIN oauth_grants g ON g.id = c.grant_id WHERE c.code_hash = ?",
        )
        .bind(hash(code))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(TokenOutcome::unknown("unknown authorization code"));
        };
        let grant = grant_ref(&row, "grant_id");
        let fail = |e: TokenError| Ok(TokenOutcome::refused(&grant, e));
        let bad = |m: &str| fail(TokenError::InvalidGrant(m.to_string()));
        if used.rows_affected() == 0 {
            // A code used twice means it leaked: revoke everything issued from it.
            self.revoke_grant(&grant.id, "authorization code reused")
                .await?;
            return fail(TokenError::Reused(
                "the authorization code was already used; the whole grant is revoked".into(),
            ));
        }
        if parse_ts(&row.get::<String, _>("expires_at")).is_none_or(|e| e < now) {
            return bad("the authorization code has expired");
        }
        if row.get::<String, _>("client_id") != client_id {
            return bad("the authorization code was issued to another client");
        }
        if row.get::<String, _>("redirect_uri") != redirect_uri {
            return bad("redirect_uri does not match the authorization request");
        }
        if !pkce_matches(verifier, &row.get::<String, _>("code_challenge")) {
            return bad("the PKCE code_verifier does not match the code_challenge");
        }
        let audience: String = row.get("resource");
        if let Some(r) = resource
            && r.trim_end_matches('/') != audience
        {
            return fail(TokenError::InvalidTarget(format!(
                "this grant is for {audience}"
            )));
        }
        let scopes: Vec<String> = scope_list(&row.get::<String, _>("scopes"));
        let tokens = self.issue(&grant.id, scopes).await?;
        Ok(TokenOutcome {
            grant: Some(grant),
            result: Ok(tokens),
        })
    }

    /// `grant_type=refresh_token`: rotates on every use; reuse of an old one revokes the grant.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
        resource: Option<&str>,
    ) -> Result<TokenOutcome, StoreError> {
        let now = Utc::now();
        let row = sqlx::query(
            "SELECT t.grant_id, t.used_at, t.revoked_at, t.expires_at, g.client_id, g.revoked_at AS grant_revoked,
                    g.scopes, g.resource, g.studio, g.client_name
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
             WHERE t.token_hash = ? AND t.kind = 'refresh'",
        )
        .bind(hash(refresh_token))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(TokenOutcome::unknown("unknown refresh token"));
        };
        let grant = grant_ref(&row, "grant_id");
        let fail = |e: TokenError| Ok(TokenOutcome::refused(&grant, e));
        let bad = |m: &str| fail(TokenError::InvalidGrant(m.to_string()));
        if row.get::<Option<String>, _>("grant_revoked").is_some()
            || row.get::<Option<String>, _>("revoked_at").is_some()
        {
            return bad("the grant was revoked");
        }
        if row.get::<String, _>("client_id") != client_id {
            return bad("the refresh token was issued to another client");
        }
        if let Some(r) = resource
            && r.trim_end_matches('/') != row.get::<String, _>("resource")
        {
            return fail(TokenError::InvalidTarget(
                "the refresh token is for another resource".into(),
            ));
        }
        let used = sqlx::query(
            "UPDATE oauth_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        )
        .bind(ts(now))
        .bind(hash(refresh_token))
        .execute(self.store.pool())
        .await?;
        if used.rows_affected() == 0 || row.get::<Option<String>, _>("used_at").is_some() {
            self.revoke_grant(&grant.id, "refresh token reused").await?;
            return fail(TokenError::Reused(
                "the refresh token was already used; the whole grant is revoked".into(),
            ));
        }
        if parse_ts(&row.get::<String, _>("expires_at")).is_none_or(|e| e < now) {
            return bad("the refresh token has expired");
        }
        let scopes = scope_list(&row.get::<String, _>("scopes"));
        let tokens = self.issue(&grant.id, scopes).await?;
        Ok(TokenOutcome {
            grant: Some(grant),
            result: Ok(tokens),
        })
    }

    async fn issue(&self, grant_id: &str, scopes: Vec<String>) -> Result<Tokens, StoreError> {
        let now = Utc::now();
        let access = random_token(ACCESS_PREFIX);
        let refresh = random_token(REFRESH_PREFIX);
        let mut tx = self.store.pool().begin().await?;
        for (token, kind, expires) in [
            (&access, "access", now + self.access_ttl),
            (&refresh, "refresh", now + Duration::days(30)),
        ] {
            sqlx::query(
                "INSERT INTO oauth_tokens (token_hash, kind, grant_id, expires_at) VALUES (?, ?, ?, ?)",
            )
            .bind(hash(token))
            .bind(kind)
            .bind(grant_id)
            .bind(ts(expires))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Tokens {
            access_token: access,
            refresh_token: refresh,
            expires_in: self.access_ttl.num_seconds(),
            scopes,
        })
    }

    /// RFC 7009: revoking either token of a grant revokes the whole grant. Returns the grant
    /// when this request revoked it (not when the token was unknown or already revoked).
    pub async fn revoke_token(&self, token: &str) -> Result<Option<GrantRef>, StoreError> {
        let row = sqlx::query(
            "SELECT t.grant_id, g.studio, g.client_name
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.token_hash = ?",
        )
        .bind(hash(token))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let grant = grant_ref(&row, "grant_id");
        Ok(self
            .revoke_grant(&grant.id, "revoked by the client")
            .await?
            .then_some(grant))
    }

    /// Revokes a grant and every token it issued; returns `false` if it was unknown or already revoked.
    pub async fn revoke_grant(&self, id: &str, why: &str) -> Result<bool, StoreError> {
        let now = ts(Utc::now());
        let done = sqlx::query(
            "UPDATE oauth_grants SET revoked_at = ?, revoked_why = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(&now)
        .bind(why)
        .bind(id)
        .execute(self.store.pool())
        .await?;
        sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
        )
        .bind(&now)
        .bind(id)
        .execute(self.store.pool())
        .await?;
        self.store.credentials_changed()?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn list(&self, studio: Option<&str>) -> Result<Vec<GrantInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM oauth_grants WHERE (?1 IS NULL OR studio = ?1) ORDER BY created_at DESC",
        )
        .bind(studio)
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| GrantInfo {
                id: r.get("id"),
                studio: r.get("studio"),
                user_email: r.get("user_email"),
                client_id: r.get("client_id"),
                client_name: r.get("client_name"),
                scopes: scope_list(&r.get::<String, _>("scopes")),
                resource: r.get("resource"),
                created_at: r.get("created_at"),
                last_used_at: r.get("last_used_at"),
                revoked_at: r.get("revoked_at"),
            })
            .collect())
    }

    /// Checks an access token for `resource` and returns the grant's principal.
    pub async fn authenticate(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<Result<Authenticated, Rejection>, StoreError> {
        let row = sqlx::query(
            "SELECT t.expires_at, t.revoked_at, g.id, g.studio, g.client_name, g.scopes, g.resource,
                    g.revoked_at AS grant_revoked, g.last_used_at
             FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id
             WHERE t.token_hash = ? AND t.kind = 'access'",
        )
        .bind(hash(token))
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Err(Rejection::Unknown));
        };
        if row.get::<Option<String>, _>("revoked_at").is_some()
            || row.get::<Option<String>, _>("grant_revoked").is_some()
        {
            return Ok(Err(Rejection::Revoked));
        }
        let now = Utc::now();
        let expires_at = parse_ts(&row.get::<String, _>("expires_at"));
        if expires_at.is_none_or(|e| e <= now) {
            return Ok(Err(Rejection::Expired));
        }
        // Audience: a token issued for another resource is not valid here.
        if row.get::<String, _>("resource") != resource {
            return Ok(Err(Rejection::Unknown));
        }
        let id: String = row.get("id");
        let stale = row
            .get::<Option<String>, _>("last_used_at")
            .and_then(|t| parse_ts(&t))
            .is_none_or(|t| now.signed_duration_since(t) > Duration::seconds(60));
        if stale {
            sqlx::query("UPDATE oauth_grants SET last_used_at = ? WHERE id = ?")
                .bind(ts(now))
                .bind(&id)
                .execute(self.store.pool())
                .await?;
        }
        Ok(Ok(Authenticated {
            principal: Principal {
                kind: PrincipalKind::Grant,
                id,
                studio: row.get("studio"),
                name: row.get("client_name"),
                scopes: scope_list(&row.get::<String, _>("scopes")),
            },
            expires_at,
        }))
    }

    /// Test support: makes every access token of a grant expire now.
    pub async fn expire_access_tokens(&self, grant_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE oauth_tokens SET expires_at = ? WHERE grant_id = ? AND kind = 'access'",
        )
        .bind(ts(Utc::now() - Duration::seconds(1)))
        .bind(grant_id)
        .execute(self.store.pool())
        .await?;
        self.store.credentials_changed()
    }
}
