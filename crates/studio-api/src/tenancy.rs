//! The acting studio of a request.
//!
//! Contract: the gateway names the studio in `X-Flow-Studio`. A handler that takes [`Tenant`] gets a
//! studio that exists (missing header: `400` on `X-Flow-Studio`; unknown studio: `404`), and every
//! query it makes filters on `tenant.id`, so a row of another studio is a `404`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::error::ApiError;

/// The studio a request acts for.
pub struct Tenant {
    pub id: String,
    pub currency: String,
}

/// The header naming the acting studio.
pub const STUDIO_HEADER: &str = "x-flow-studio";

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Tenant, ApiError> {
        let id = parts
            .headers
            .get(STUDIO_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "X-Flow-Studio",
                    "the X-Flow-Studio header (acting studio id) is required",
                )
            })?;
        let currency: Option<String> =
            sqlx::query_scalar("SELECT currency FROM studios WHERE id = ?")
                .bind(id)
                .fetch_optional(&state.db)
                .await?;
        match currency {
            Some(currency) => Ok(Tenant {
                id: id.to_owned(),
                currency,
            }),
            None => Err(ApiError::not_found("studio", id)),
        }
    }
}
