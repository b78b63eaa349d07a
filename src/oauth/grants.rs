//! OAuth state in the gateway's store: registered clients, grants, authorization codes and
//! tokens. Secrets (codes, tokens) are stored as SHA-256 hashes only.

use std::collections::BTreeSet;

use base64::Engine as _;
use chrono::Duration;
use sha2::{Digest, Sha256};

use crate::identity::{Authenticated, Principal, PrincipalKind, Rejection};
use crate::store::oauth::{GrantRow, NewCode};
use crate::store::{Store, StoreError, Timestamp, Within};

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
    /// Where the approval sent the person back.
    pub redirect_uri: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
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
    pub created_at: Timestamp,
    /// Grants approved for it, revoked ones included.
    pub grants: i64,
    /// Grants not revoked.
    pub active_grants: i64,
}

/// How long a registration that never led to a grant is kept.
pub const UNUSED_CLIENT_TTL: Duration = Duration::hours(24);

use crate::identity::scope_list;
pub(crate) use crate::identity::{random_secret as random_token, secret_hash as hash};

fn grant_ref(id: &str, studio: &str, client_name: &str) -> GrantRef {
    GrantRef {
        id: id.to_string(),
        studio: studio.to_string(),
        client_name: client_name.to_string(),
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
        self.store
            .live_client_count(Timestamp::now() - UNUSED_CLIENT_TTL)
            .await
    }

    /// Deletes registrations older than [`UNUSED_CLIENT_TTL`] that never led to a grant;
    /// returns how many.
    pub async fn expire_unused_clients(&self) -> Result<u64, StoreError> {
        self.store
            .expire_unused_clients(Timestamp::now() - UNUSED_CLIENT_TTL)
            .await
    }

    /// Every registered client, newest first.
    pub async fn list_clients(&self) -> Result<Vec<ClientInfo>, StoreError> {
        Ok(self
            .store
            .clients(None)
            .await?
            .into_iter()
            .map(|r| ClientInfo {
                redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
                client_id: r.client_id,
                client_name: r.client_name,
                created_at: r.created_at,
                grants: r.grants,
                active_grants: r.active_grants,
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
        let mut revoked = 0;
        for id in self.store.active_grants_of_client(client_id).await? {
            if self
                .revoke_grant(Within::AllStudios, &id, "its client was deleted")
                .await?
            {
                revoked += 1;
            }
        }
        self.store.delete_client(client_id).await?;
        Ok(Some((client, revoked)))
    }

    /// The grant an access or refresh token belongs to, whatever its state (for auditing a
    /// rejected token).
    pub async fn grant_of_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        Ok(self.store.token(&hash(token)).await?.map(|t| t.grant_id))
    }

    pub async fn register_client(
        &self,
        client_name: &str,
        redirect_uris: &[String],
    ) -> Result<Client, StoreError> {
        let client_id = format!("fgc_{}", &random_token("")[..24]);
        self.store
            .insert_client(
                &client_id,
                client_name,
                &serde_json::to_string(redirect_uris).unwrap_or_default(),
                Timestamp::now(),
            )
            .await?;
        Ok(Client {
            client_id,
            client_name: client_name.to_string(),
            redirect_uris: redirect_uris.to_vec(),
        })
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        Ok(self
            .store
            .clients(Some(client_id))
            .await?
            .into_iter()
            .next()
            .map(|r| Client {
                redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
                client_id: r.client_id,
                client_name: r.client_name,
            }))
    }

    /// Records an approval and returns the authorization code for it.
    pub async fn approve(&self, g: &NewGrant<'_>) -> Result<(String, String), StoreError> {
        let id = format!("grt_{}", &random_token("")[..20]);
        let now = Timestamp::now();
        let code = random_token("flow_ac_");
        let row = GrantRow {
            id: id.clone(),
            studio: g.studio.to_string(),
            user_id: g.user_id.to_string(),
            user_email: g.user_email.to_string(),
            client_id: g.client_id.to_string(),
            client_name: g.client_name.to_string(),
            scopes: g.scopes.iter().cloned().collect::<Vec<_>>().join(" "),
            resource: g.resource.to_string(),
            redirect_uri: Some(g.redirect_uri.to_string()),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let new_code = NewCode {
            code_hash: hash(&code),
            client_id: g.client_id,
            redirect_uri: g.redirect_uri,
            code_challenge: g.code_challenge,
            expires_at: now + self.code_ttl,
        };
        self.store.insert_grant(&row, &new_code).await?;
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
        let now = Timestamp::now();
        // Mark the code used first, atomically: a second exchange finds it used.
        let first = self.store.use_code(&hash(code), now).await?;
        let Some(row) = self.store.code(&hash(code)).await? else {
            return Ok(TokenOutcome::unknown("unknown authorization code"));
        };
        let grant = grant_ref(&row.grant_id, &row.studio, &row.client_name);
        let fail = |e: TokenError| Ok(TokenOutcome::refused(&grant, e));
        let bad = |m: &str| fail(TokenError::InvalidGrant(m.to_string()));
        if !first {
            // A code used twice means it leaked: revoke everything issued from it.
            self.revoke_grant(Within::AllStudios, &grant.id, "authorization code reused")
                .await?;
            return fail(TokenError::Reused(
                "the authorization code was already used; the whole grant is revoked".into(),
            ));
        }
        if row.expires_at < now {
            return bad("the authorization code has expired");
        }
        if row.client_id != client_id {
            return bad("the authorization code was issued to another client");
        }
        if row.redirect_uri != redirect_uri {
            return bad("redirect_uri does not match the authorization request");
        }
        if !pkce_matches(verifier, &row.code_challenge) {
            return bad("the PKCE code_verifier does not match the code_challenge");
        }
        if let Some(r) = resource
            && r.trim_end_matches('/') != row.resource
        {
            return fail(TokenError::InvalidTarget(format!(
                "this grant is for {}",
                row.resource
            )));
        }
        let tokens = self.issue(&grant.id, scope_list(&row.scopes)).await?;
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
        let now = Timestamp::now();
        let row = self
            .store
            .token(&hash(refresh_token))
            .await?
            .filter(|t| t.kind == "refresh");
        let Some(row) = row else {
            return Ok(TokenOutcome::unknown("unknown refresh token"));
        };
        let grant = grant_ref(&row.grant_id, &row.studio, &row.client_name);
        let fail = |e: TokenError| Ok(TokenOutcome::refused(&grant, e));
        let bad = |m: &str| fail(TokenError::InvalidGrant(m.to_string()));
        if row.grant_revoked.is_some() || row.revoked_at.is_some() {
            return bad("the grant was revoked");
        }
        if row.client_id != client_id {
            return bad("the refresh token was issued to another client");
        }
        if let Some(r) = resource
            && r.trim_end_matches('/') != row.resource
        {
            return fail(TokenError::InvalidTarget(
                "the refresh token is for another resource".into(),
            ));
        }
        let first = self
            .store
            .use_refresh_token(&hash(refresh_token), now)
            .await?;
        if !first || row.used_at.is_some() {
            self.revoke_grant(Within::AllStudios, &grant.id, "refresh token reused")
                .await?;
            return fail(TokenError::Reused(
                "the refresh token was already used; the whole grant is revoked".into(),
            ));
        }
        if row.expires_at < now {
            return bad("the refresh token has expired");
        }
        let tokens = self.issue(&grant.id, scope_list(&row.scopes)).await?;
        Ok(TokenOutcome {
            grant: Some(grant),
            result: Ok(tokens),
        })
    }

    async fn issue(&self, grant_id: &str, scopes: Vec<String>) -> Result<Tokens, StoreError> {
        let now = Timestamp::now();
        let access = random_token(ACCESS_PREFIX);
        let refresh = random_token(REFRESH_PREFIX);
        self.store
            .insert_tokens(
                grant_id,
                &[
                    (hash(&access), "access", now + self.access_ttl),
                    (hash(&refresh), "refresh", now + Duration::days(30)),
                ],
            )
            .await?;
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
        let Some(row) = self.store.token(&hash(token)).await? else {
            return Ok(None);
        };
        let grant = grant_ref(&row.grant_id, &row.studio, &row.client_name);
        Ok(self
            .revoke_grant(Within::AllStudios, &grant.id, "revoked by the client")
            .await?
            .then_some(grant))
    }

    /// Revokes a grant (within `within`) and every token it issued, and tells every gateway
    /// using the store; `false` if it was unknown or already revoked.
    pub async fn revoke_grant(
        &self,
        within: Within<'_>,
        id: &str,
        why: &str,
    ) -> Result<bool, StoreError> {
        let revoked = self
            .store
            .revoke_grant(within, id, why, Timestamp::now())
            .await?;
        if revoked {
            self.store.credentials_changed().await?;
        }
        Ok(revoked)
    }

    pub async fn list(&self, within: Within<'_>) -> Result<Vec<GrantInfo>, StoreError> {
        Ok(self
            .store
            .grants(within)
            .await?
            .into_iter()
            .map(|r| GrantInfo {
                scopes: scope_list(&r.scopes),
                id: r.id,
                studio: r.studio,
                user_email: r.user_email,
                client_id: r.client_id,
                client_name: r.client_name,
                resource: r.resource,
                redirect_uri: r.redirect_uri,
                created_at: r.created_at,
                last_used_at: r.last_used_at,
                revoked_at: r.revoked_at,
            })
            .collect())
    }

    /// Checks an access token for `resource` and returns the grant's principal.
    pub async fn authenticate(
        &self,
        token: &str,
        resource: &str,
    ) -> Result<Result<Authenticated, Rejection>, StoreError> {
        let row = self
            .store
            .token(&hash(token))
            .await?
            .filter(|t| t.kind == "access");
        let Some(row) = row else {
            return Ok(Err(Rejection::Unknown));
        };
        self.store.revocations().observe(row.epoch);
        if row.revoked_at.is_some() || row.grant_revoked.is_some() {
            return Ok(Err(Rejection::Revoked));
        }
        let now = Timestamp::now();
        if row.expires_at <= now {
            return Ok(Err(Rejection::Expired));
        }
        // Audience: a token issued for another resource is not valid here.
        if row.resource != resource {
            return Ok(Err(Rejection::Unknown));
        }
        let stale = row
            .last_used_at
            .is_none_or(|t| now.0.signed_duration_since(t.0) > Duration::seconds(60));
        if stale {
            self.store.touch_grant(&row.grant_id, now).await?;
        }
        Ok(Ok(Authenticated {
            principal: Principal {
                kind: PrincipalKind::Grant,
                id: row.grant_id,
                studio: row.studio,
                name: row.client_name,
                scopes: scope_list(&row.scopes),
            },
            expires_at: Some(row.expires_at.0),
        }))
    }
}
