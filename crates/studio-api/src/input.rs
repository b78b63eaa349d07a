//! Reading and checking request input: JSON bodies, query parameters, and field rules.
//!
//! Contract: bad input is always a `400` naming the field, never a `500`. [`Body`] parses JSON with
//! the path of the offending field (malformed JSON, wrong types and unknown fields all included);
//! an empty body reads as `{}`. [`Params`] reads the query string and rejects parameters the route
//! does not know. The `check_*` functions enforce ranges and formats with the field named.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

// === impl Body ===

/// A JSON request body of type `T` (inputs use `deny_unknown_fields`).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::TooLarge)?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        parse_json(bytes).map(Body)
    }
}

/// Parse JSON, reporting the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::Validation {
                field: None,
                message: format!("malformed JSON body: {inner}"),
            };
        }
        let message = {
            // serde's message without the " at line 1 column 17" suffix
            let text = inner.to_string();
            match text.rfind(" at line ") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        };
        let field = if path == "." || path.is_empty() {
            unknown_field_name(&message)
        } else {
            Some(path)
        };
        ApiError::Validation { field, message }
    })
}

/// serde reports an unknown top-level field without a path; take its name from the message.
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

// === impl Params ===

/// The query string of a request, as single-valued parameters.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query)?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(ApiError::invalid(k, "query parameter given more than once"));
            }
        }
        Ok(Params(map))
    }
}

fn serde_urlencoded_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let k = percent_decode(k).ok_or_else(|| ApiError::invalid(k, "bad percent-encoding"))?;
        let v = percent_decode(v).ok_or_else(|| ApiError::invalid(&k, "bad percent-encoding"))?;
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl Params {
    /// Reject any parameter not in `known` (pagination parameters are always known).
    pub fn allow(&self, known: &[&str]) -> Result<(), ApiError> {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        for name in names {
            if !known.contains(&name.as_str()) && name != "cursor" && name != "limit" {
                return Err(ApiError::invalid(
                    name.as_str(),
                    format!("unknown query parameter `{name}`"),
                ));
            }
        }
        Ok(())
    }

    /// A non-empty string parameter.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A parameter that must be one of `allowed`.
    pub fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        self.str(name)
            .map(|v| check_one_of(name, v, allowed).map(|()| v.to_owned()))
            .transpose()
    }

    /// An RFC 3339 time or a `YYYY-MM-DD` date (read as midnight UTC). An offset whose `+` was
    /// not percent-encoded (and so arrived as a space) is read as `+`.
    pub fn time(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.str(name)
            .map(|v| time_or_date(name, &v.replace(' ', "+")))
            .transpose()
    }

    /// A `YYYY-MM-DD` date (an RFC 3339 time is cut to its UTC date).
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.str(name)
            .map(|v| {
                if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    return Ok(d);
                }
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.to_utc().date_naive())
                    .map_err(|_| ApiError::invalid(name, "expected a date (YYYY-MM-DD)"))
            })
            .transpose()
    }
}

// === field rules ===

/// Parse an RFC 3339 time with offset; return it in UTC, to the second (`2026-12-01T19:00:00Z`).
pub fn time(field: &str, value: &str) -> Result<String, ApiError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| fmt_time(t.to_utc()))
        .map_err(|_| {
            ApiError::invalid(
                field,
                "expected an RFC 3339 time with offset, e.g. 2026-12-01T19:00:00Z",
            )
        })
}

fn time_or_date(field: &str, value: &str) -> Result<String, ApiError> {
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(fmt_time(
            d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
        ));
    }
    time(field, value)
}

/// The wire form of a time.
pub fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parse a stored time (always valid, written by [`fmt_time`]).
pub fn parse_stored(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// The current time in wire form.
pub fn now() -> String {
    fmt_time(Utc::now())
}

/// A `YYYY-MM-DD` date.
pub fn date(field: &str, value: &str) -> Result<String, ApiError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| ApiError::invalid(field, "expected a date (YYYY-MM-DD)"))
}

/// `lo <= value <= hi`.
pub fn check_range(field: &str, value: i64, lo: i64, hi: i64) -> Result<(), ApiError> {
    if value < lo || value > hi {
        return Err(ApiError::invalid(
            field,
            format!("must be between {lo} and {hi} (got {value})"),
        ));
    }
    Ok(())
}

/// `value >= lo`.
pub fn check_min(field: &str, value: i64, lo: i64) -> Result<(), ApiError> {
    if value < lo {
        let what = if lo == 1 {
            "must be greater than 0".to_owned()
        } else {
            format!("must be at least {lo}")
        };
        return Err(ApiError::invalid(field, format!("{what} (got {value})")));
    }
    Ok(())
}

/// A trimmed string of `lo..=hi` characters.
pub fn check_text(field: &str, value: &str, lo: usize, hi: usize) -> Result<(), ApiError> {
    let n = value.trim().chars().count();
    if n < lo || n > hi {
        return Err(if n == 0 {
            ApiError::invalid(field, "must not be empty")
        } else {
            ApiError::invalid(field, format!("must be {lo} to {hi} characters"))
        });
    }
    Ok(())
}

/// One of a fixed set.
pub fn check_one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if !allowed.contains(&value) {
        return Err(ApiError::invalid(
            field,
            format!("must be one of {} (got `{value}`)", allowed.join(", ")),
        ));
    }
    Ok(())
}

/// An ISO 4217 code: three upper-case letters.
pub fn check_currency(field: &str, value: &str) -> Result<(), ApiError> {
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            field,
            "must be an ISO 4217 code of three upper-case letters, e.g. USD",
        ));
    }
    Ok(())
}

/// A plausible e-mail address.
pub fn check_email(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = value.len() <= 254
        && value.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
        })
        && !value.contains(char::is_whitespace);
    if !ok {
        return Err(ApiError::invalid(field, "must be an e-mail address"));
    }
    Ok(())
}

/// A list of short tags.
pub fn check_tags(field: &str, tags: &[String], max: usize) -> Result<(), ApiError> {
    if tags.len() > max {
        return Err(ApiError::invalid(field, format!("at most {max} entries")));
    }
    for t in tags {
        check_text(field, t, 1, 40)?;
    }
    Ok(())
}

/// The level of a class or video.
pub const LEVELS: &[&str] = &["all_levels", "beginner", "intermediate", "advanced"];

#[cfg(test)]
mod tests {
    use super::{check_email, parse_json, time};
    use crate::error::ApiError;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        rooms: Option<Vec<Room>>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Room {
        capacity: i64,
    }

    fn field(e: ApiError) -> Option<String> {
        match e {
            ApiError::Validation { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(
            field(parse_json::<Input>(br#"{"name": 1}"#).unwrap_err()),
            Some("name".into())
        );
        assert_eq!(
            field(parse_json::<Input>(br#"{"name": "a", "x": 1}"#).unwrap_err()),
            Some("x".into())
        );
        assert_eq!(
            field(
                parse_json::<Input>(br#"{"name": "a", "rooms": [{"capacity": "big"}]}"#)
                    .unwrap_err()
            ),
            Some("rooms[0].capacity".into())
        );
        assert_eq!(field(parse_json::<Input>(b"{").unwrap_err()), None);
    }

    #[test]
    fn times_come_back_in_utc_to_the_second() {
        assert_eq!(
            time("t", "2026-12-01T11:00:00.789-08:00").unwrap(),
            "2026-12-01T19:00:00Z"
        );
        assert!(time("t", "2026-12-01 19:00").is_err());
        assert!(
            time("t", "2026-12-01T19:00:00").is_err(),
            "an offset is required"
        );
    }

    #[test]
    fn email_shapes() {
        assert!(check_email("e", "ana@example.com").is_ok());
        for bad in [
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a na@example.com",
        ] {
            assert!(check_email("e", bad).is_err(), "{bad}");
        }
    }
}
