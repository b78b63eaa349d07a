//! The remembered-credential cache: a credential that authenticated is remembered for at most
//! [`REMEMBER`], so the hot path does not query the store. Revocation still takes effect on the
//! very next request, whichever process or replica revoked: revoking or rotating changes the
//! store's revocation mark (`store::coordination`), and a remembered credential is only used
//! while the mark is unchanged since it was looked up.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Authenticated, Principal, Rejection};
use crate::store::{Revocations, StoreError};

/// How long an authenticated credential is remembered at most. Revocation does not wait for
/// this (see [`Remembered`]); it bounds how stale `last_used_at` can get, and is the backstop if
/// a revoking process could not announce the revocation.
pub const REMEMBER: std::time::Duration = std::time::Duration::from_secs(15);

/// Credentials that authenticated recently, by the SHA-256 of the bearer token.
///
/// An entry is used only while (1) the store's revocation mark is what it was when the
/// credential was looked up, (2) the credential has not expired, and (3) it is younger than
/// [`REMEMBER`]. The mark is read *before* the store is queried, so a revocation that commits
/// during a lookup leaves an entry that is already out of date. Rejections are never remembered.
#[derive(Debug, Clone)]
pub struct Remembered {
    entries: moka::sync::Cache<[u8; 32], Arc<Entry>>,
    /// How the store the credentials are looked up in announces revocations.
    revocations: Revocations,
}

#[derive(Debug)]
struct Entry {
    principal: Arc<Principal>,
    expires_at: Option<DateTime<Utc>>,
    mark: u128,
}

impl Remembered {
    /// Remembers credentials of the store that announces revocations this way.
    pub fn new(revocations: Revocations) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .name("credentials")
                .max_capacity(100_000)
                .time_to_live(REMEMBER)
                .build(),
            revocations,
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
        let mark = self.revocations.mark();
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
