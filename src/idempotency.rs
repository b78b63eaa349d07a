//! Safe retries: a write made with an `idempotency_key` is applied at most once per studio,
//! tool and key.
//!
//! The first call claims the key (a `pending` row, inserted atomically), makes the upstream call
//! and stores its final answer. A repeat with the same arguments gets the stored answer without
//! an upstream call; with other arguments it is refused; while the first is still running, a
//! repeat waits for its answer (up to a limit), then is told to retry. Answers that are not final
//! (timeouts, 5xx, unreachable) are not stored, so a retry goes through; the key is forwarded
//! upstream too, so a change that did land is not applied twice there either.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, Timestamp};
use crate::upstream::UpstreamError;

/// A final answer, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Ok(Value),
    Rejected {
        status: u16,
        code: Option<String>,
        message: String,
    },
}

impl Stored {
    /// The final answer a call's result is, if it is final: a success or a refusal. A timeout, a
    /// 5xx, an unreachable upstream, or the upstream still working on the same key is not: a
    /// retry must be allowed to go through.
    pub fn of(result: &Result<Value, UpstreamError>) -> Option<Stored> {
        match result {
            Ok(v) => Some(Stored::Ok(v.clone())),
            Err(UpstreamError::Rejected {
                status: 409,
                code: Some(code),
                ..
            }) if code == "idempotency_in_progress" => None,
            Err(UpstreamError::Rejected {
                status,
                code,
                message,
            }) => Some(Stored::Rejected {
                status: *status,
                code: code.clone(),
                message: message.clone(),
            }),
            Err(_) => None,
        }
    }

    /// The answer as the original call gave it.
    pub fn into_result(self) -> Result<Value, UpstreamError> {
        match self {
            Stored::Ok(v) => Ok(v),
            Stored::Rejected {
                status,
                code,
                message,
            } => Err(UpstreamError::Rejected {
                status,
                code,
                message,
            }),
        }
    }
}

/// How a call guarded by [`Idempotency::guard`] went.
#[derive(Debug)]
pub enum Guarded {
    /// This call made the upstream request: its result (stored if final).
    Called(Result<Value, UpstreamError>),
    /// An earlier call with the key answered this: its stored answer, no upstream request.
    Replayed(Result<Value, UpstreamError>),
    /// The key was used with other arguments.
    Mismatch,
    /// Another call with the key is still running (past the wait).
    InProgress,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// First use: make the call, then [`Idempotency::complete`] or [`Idempotency::release`].
    Fresh,
    /// Already answered: return this without calling upstream.
    Replay(Stored),
    /// The key was used with different arguments.
    Mismatch,
    /// Another call with this key is still running.
    InProgress,
}

/// The idempotency records in the gateway's store.
#[derive(Debug, Clone)]
pub struct Idempotency {
    store: Store,
    /// How long a stored answer is kept (24 h by default).
    ttl: Duration,
    /// How long a repeat waits for a running first call.
    wait: Duration,
    /// A `pending` row older than this belongs to a call that died (process killed) and may be
    /// taken over.
    stale_after: Duration,
}

/// The hash of a call's arguments, idempotency key excluded: the same for the same call however
/// it is spelt. Object keys are sorted, and numbers equal in value hash the same (`60`, `60.0`
/// and `6e1`); strings are kept exactly. The gateway hashes the typed input
/// ([`crate::tool::Decoded::canonical`]), which already fixes field order and number types.
pub fn args_hash(args: &Value) -> String {
    let mut text = String::new();
    match args {
        Value::Object(o) => {
            let rest: serde_json::Map<String, Value> = o
                .iter()
                .filter(|(k, _)| *k != "idempotency_key")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            canonical(&Value::Object(rest), &mut text);
        }
        other => canonical(other, &mut text),
    }
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whole numbers up to this magnitude are exact in a float, so `60.0` and `60` are one value.
const EXACT_INTEGER: f64 = 9_007_199_254_740_992.0; // 2^53

/// Writes a value as canonical JSON text: keys sorted, numbers by value.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&o[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() <= EXACT_INTEGER => {
                out.push_str(&(f as i64).to_string());
            }
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&other.to_string()),
    }
}

/// The `Idempotency-Key` sent upstream for a caller's key: derived from the tool and the key, so
/// it is scoped per tool upstream too and always a valid header value, whatever the caller sent.
pub fn upstream_key(tool: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{tool}\0{key}").as_bytes());
    let hex: String = digest.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("flowgate-{hex}")
}

impl Idempotency {
    pub fn new(store: Store, ttl: Duration, wait: Duration, stale_after: Duration) -> Self {
        Self {
            store,
            ttl,
            wait,
            stale_after,
        }
    }

    /// Claims `key` for this call, or reports what an earlier call with it left.
    pub async fn claim(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        hash: &str,
    ) -> Result<Claim, StoreError> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let now = Timestamp::now();
            // Through the group-commit writer: committed when it returns.
            if self.store.claim_key(studio, tool, key, hash, now).await? {
                return Ok(Claim::Fresh);
            }
            let Some(row) = self.store.idempotency_row(studio, tool, key).await? else {
                continue; // released in between: claim again
            };
            let age = now
                .0
                .signed_duration_since(row.created_at.0)
                .to_std()
                .unwrap_or_default();
            let expired = age > self.ttl || (row.state == "pending" && age > self.stale_after);
            if expired {
                self.store
                    .drop_key(studio, tool, key, row.created_at)
                    .await?;
                continue;
            }
            if row.args_hash != hash {
                return Ok(Claim::Mismatch);
            }
            if row.state == "done"
                && let Some(stored) = row.result.and_then(|r| serde_json::from_str(&r).ok())
            {
                return Ok(Claim::Replay(stored));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Claim::InProgress);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The whole protocol around one upstream call made with `key`: claim it, then replay,
    /// refuse, or make the call with `call` and store its answer when final (give the key back
    /// when not). `claimed` is told how long the claim took (a stage of the call). A store
    /// failure after the call is logged, never turned into a second call.
    pub async fn guard<F>(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        args_hash: &str,
        claimed: impl FnOnce(std::time::Instant),
        call: F,
    ) -> Result<Guarded, StoreError>
    where
        F: Future<Output = Result<Value, UpstreamError>>,
    {
        let claiming = std::time::Instant::now();
        let claim = self.claim(studio, tool, key, args_hash).await;
        claimed(claiming);
        match claim? {
            Claim::Replay(stored) => return Ok(Guarded::Replayed(stored.into_result())),
            Claim::Mismatch => return Ok(Guarded::Mismatch),
            Claim::InProgress => return Ok(Guarded::InProgress),
            Claim::Fresh => {}
        }
        let result = call.await;
        let kept = match Stored::of(&result) {
            Some(stored) => self.complete(studio, tool, key, &stored).await,
            None => self.release(studio, tool, key).await,
        };
        if let Err(e) = kept {
            tracing::error!(error = %e, tool, "cannot store the idempotent answer");
        }
        Ok(Guarded::Called(result))
    }

    /// Stores the final answer of a claimed call.
    pub async fn complete(
        &self,
        studio: &str,
        tool: &str,
        key: &str,
        stored: &Stored,
    ) -> Result<(), StoreError> {
        let result = serde_json::to_string(stored).unwrap_or_default();
        self.store.complete_key(studio, tool, key, &result).await
    }

    /// Gives a claimed key back (the call's outcome is not final), so a retry can proceed.
    pub async fn release(&self, studio: &str, tool: &str, key: &str) -> Result<(), StoreError> {
        self.store.release_key(studio, tool, key).await
    }

    /// Deletes answers older than the retention; returns how many.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::days(1));
        self.store.prune_keys(Timestamp::now() - ttl).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::args_hash;

    fn hash(text: &str) -> String {
        args_hash(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn numbers_equal_in_value_hash_the_same() {
        let a = hash(r#"{"minutes": 60, "price": 25.5}"#);
        assert_eq!(a, hash(r#"{"minutes": 60.0, "price": 25.50}"#));
        assert_eq!(a, hash(r#"{"minutes": 6e1, "price": 2.55e1}"#));
        assert_eq!(a, hash(r#"{"price": 25.5, "minutes": 60}"#));
        assert_ne!(a, hash(r#"{"minutes": 61, "price": 25.5}"#));
        assert_ne!(a, hash(r#"{"minutes": 60, "price": 25.51}"#));
    }

    #[test]
    fn nested_values_are_canonical_and_strings_stay_exact() {
        let a = hash(r#"{"x": {"b": [1, 2.0], "a": "Yoga"}}"#);
        assert_eq!(a, hash(r#"{"x": {"a": "Yoga", "b": [1.0, 2]}}"#));
        assert_ne!(a, hash(r#"{"x": {"a": "yoga", "b": [1, 2]}}"#));
        assert_ne!(a, hash(r#"{"x": {"a": "Yoga ", "b": [1, 2]}}"#));
        assert_ne!(a, hash(r#"{"x": {"a": "Yoga", "b": [2, 1]}}"#));
        // A number and the string of it are different arguments.
        assert_ne!(hash(r#"{"n": 60}"#), hash(r#"{"n": "60"}"#));
    }

    #[test]
    fn the_key_is_left_out_and_large_integers_keep_their_value() {
        assert_eq!(
            args_hash(&json!({"a": 1, "idempotency_key": "k1"})),
            args_hash(&json!({"a": 1, "idempotency_key": "k2"}))
        );
        assert_ne!(
            args_hash(&json!({"n": u64::MAX})),
            args_hash(&json!({"n": u64::MAX - 1}))
        );
        assert_ne!(
            args_hash(&json!({"n": 9_007_199_254_740_993_i64})),
            args_hash(&json!({"n": 9_007_199_254_740_992_i64}))
        );
    }
}
