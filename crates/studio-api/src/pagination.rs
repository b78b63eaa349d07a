//! Keyset pagination: `limit` and opaque, stable cursors.
//!
//! Contract: a list is ordered by `(sort key, id)`; `next_cursor` encodes the last row's pair
//! (base64url of a small JSON array, tagged with the list's name), so a page never skips or repeats a
//! row when rows are added elsewhere. `limit` is 1..100 (default 25). A cursor that does not decode,
//! or belongs to another list, is a `400` on `cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite};

use crate::error::ApiError;
use crate::input::Params;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 25;
/// Largest page size.
pub const MAX_LIMIT: i64 = 100;

/// Sort direction of a list.
#[derive(Clone, Copy)]
pub enum Order {
    Asc,
    Desc,
}

/// A requested page of the list `list`.
pub struct Page {
    list: &'static str,
    limit: i64,
    after: Option<(String, String)>,
}

impl Page {
    /// Read `cursor` and `limit` from the query.
    pub fn from_params(list: &'static str, params: &Params) -> Result<Page, ApiError> {
        let limit = match params.str("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => {
                let n: i64 = raw
                    .parse()
                    .map_err(|_| ApiError::invalid("limit", "must be an integer from 1 to 100"))?;
                if !(1..=MAX_LIMIT).contains(&n) {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be between 1 and 100 (got {n})"),
                    ));
                }
                n
            }
        };
        let after = params.str("cursor").map(|c| decode(list, c)).transpose()?;
        Ok(Page { list, limit, after })
    }

    /// Append the keyset condition (`AND ...`), `ORDER BY` and `LIMIT` (one extra row to know
    /// whether there is a next page). `sort` and `id` are SQL column expressions.
    pub fn push(&self, qb: &mut QueryBuilder<'_, Sqlite>, sort: &str, id: &str, order: Order) {
        let (cmp, dir) = match order {
            Order::Asc => (">", "ASC"),
            Order::Desc => ("<", "DESC"),
        };
        if let Some((key, last_id)) = &self.after {
            qb.push(format!(" AND ({sort} {cmp} "));
            qb.push_bind(key.clone());
            qb.push(format!(" OR ({sort} = "));
            qb.push_bind(key.clone());
            qb.push(format!(" AND {id} {cmp} "));
            qb.push_bind(last_id.clone());
            qb.push("))");
        }
        qb.push(format!(" ORDER BY {sort} {dir}, {id} {dir} LIMIT "));
        qb.push_bind(self.limit + 1);
    }

    /// Cut the extra row and build `{"data": [...], "next_cursor": ...}`. `key` gives a row's
    /// `(sort key, id)`.
    pub fn finish<R>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> (String, String),
        render: impl Fn(R) -> Value,
    ) -> Value {
        let more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        let next = if more {
            rows.last().map(|r| encode(self.list, &key(r)))
        } else {
            None
        };
        json!({"data": rows.into_iter().map(render).collect::<Vec<_>>(), "next_cursor": next})
    }
}

fn encode(list: &str, (key, id): &(String, String)) -> String {
    URL_SAFE_NO_PAD.encode(json!([list, key, id]).to_string())
}

fn decode(list: &str, cursor: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::invalid(
            "cursor",
            "not a cursor from this list; pass `next_cursor` back unchanged",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let (tag, key, id): (String, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if tag != list {
        return Err(bad());
    }
    Ok((key, id))
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn cursors_round_trip_and_belong_to_one_list() {
        let key = ("2026-12-01T19:00:00Z".to_owned(), "occ_1".to_owned());
        let cursor = encode("schedule", &key);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode("schedule", &cursor).unwrap(), key);
        assert!(decode("members", &cursor).is_err());
        assert!(decode("schedule", "not-a-cursor").is_err());
        assert!(decode("schedule", &cursor[1..]).is_err());
    }
}
