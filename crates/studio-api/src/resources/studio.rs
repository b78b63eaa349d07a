//! The acting studio, and sign-in of studio users.
//!
//! Contract: `GET /studio` returns the studio named by `X-Flow-Studio` with its tier.
//! `POST /auth/sign-in` checks a studio user's e-mail and password (argon2) and returns who they
//! are; a wrong pair is `401 invalid_credentials`, with the same work done whether or not the
//! e-mail exists. At most one hash per two cores runs at once; a check that cannot
//! start within 5 s is `503 busy`.

use std::time::Duration;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, check_text};
use crate::tenancy::Tenant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/studio", get(studio))
        .route("/auth/sign-in", post(sign_in))
}

#[derive(sqlx::FromRow)]
struct StudioRow {
    id: String,
    name: String,
    slug: String,
    tier: String,
    timezone: String,
    currency: String,
    city: String,
    country: String,
    description: String,
}

async fn studio(State(s): State<AppState>, t: Tenant) -> ApiResult<Json<Value>> {
    let r: StudioRow = sqlx::query_as(
        "SELECT id, name, slug, tier, timezone, currency, city, country, description FROM studios WHERE id = ?",
    )
    .bind(&t.id)
    .fetch_one(&s.db)
    .await?;
    Ok(Json(json!({
        "id": r.id, "name": r.name, "slug": r.slug, "tier": r.tier, "timezone": r.timezone,
        "currency": r.currency, "city": r.city, "country": r.country, "description": r.description,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    name: String,
    email: String,
    role: String,
    password_hash: String,
    studio_id: String,
    studio_name: String,
    tier: String,
}

/// Verified against when the e-mail is unknown, so both cases take as long.
const DUMMY_HASH: &str = crate::seed::DUMMY_PASSWORD_HASH;

async fn sign_in(State(s): State<AppState>, Body(input): Body<SignIn>) -> ApiResult<Json<Value>> {
    let _in_flight = s.sign_in_started();
    check_text("email", &input.email, 3, 254)?;
    check_text("password", &input.password, 1, 1024)?;
    let user: Option<UserRow> = sqlx::query_as(
        "SELECT u.id, u.name, u.email, u.role, u.password_hash, s.id AS studio_id,
                s.name AS studio_name, s.tier
         FROM users u JOIN studios s ON s.id = u.studio_id WHERE u.email = ?",
    )
    .bind(input.email.trim())
    .fetch_optional(&s.db)
    .await?;
    let hash = user
        .as_ref()
        .map_or(DUMMY_HASH, |u| u.password_hash.as_str())
        .to_owned();
    let password = input.password;
    let busy = || ApiError::Busy("too many sign-ins are being checked; retry shortly".into());
    let permit = tokio::time::timeout(
        Duration::from_secs(5),
        s.password_checks.clone().acquire_owned(),
    )
    .await
    .map_err(|_| busy())?
    .map_err(|_| busy())?;
    let pool = s.password_memory.clone();
    // The permit and the working memory stay with the hash until it is done, even if the
    // request is gone meanwhile: a client that hangs up cannot start more hashes than allowed.
    let ok = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut memory = pool
            .lock()
            .map(|mut pool| pool.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        let ok = verify(&hash, password.as_bytes(), &mut memory);
        if let Ok(mut pool) = pool.lock() {
            pool.push(memory);
        }
        ok
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    match user {
        Some(u) if ok => Ok(Json(json!({
            "user_id": u.id, "name": u.name, "email": u.email, "role": u.role,
            "studio": {"id": u.studio_id, "name": u.studio_name, "tier": u.tier},
        }))),
        _ => Err(ApiError::Unauthorized {
            code: "invalid_credentials",
            message: "wrong e-mail or password".into(),
        }),
    }
}

/// The most argon2 memory a stored hash may ask for (64 MiB).
const MAX_BLOCKS: usize = 64 * 1024;

/// Checks `password` against an argon2 PHC string, computing in `memory` (grown as needed and
/// kept by the caller for the next check).
fn verify(phc: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) =
        (Params::try_from(&hash), Algorithm::try_from(hash.algorithm))
    else {
        return false;
    };
    let version = hash
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reused-memory check agrees with argon2's own hashing, for right and wrong passwords.
    #[test]
    fn verify_agrees_with_argon2() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"a-fixed-test-salt").unwrap();
        let phc = Argon2::default()
            .hash_password(b"the password", &salt)
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(verify(&phc, b"the password", &mut memory));
        assert!(!verify(&phc, b"the passworD", &mut memory));
        assert_eq!(memory.len(), Params::DEFAULT_M_COST as usize);
        assert!(!verify(DUMMY_HASH, b"", &mut memory));
        assert!(!verify("not a hash", b"x", &mut memory));
    }
}
