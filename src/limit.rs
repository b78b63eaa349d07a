//! Rate limits per principal, with a quota per studio tier (GCRA).
//!
//! Each tier has calls per minute and a burst of a quarter of a minute's calls. A refused call
//! is told the limit and how many seconds to wait.
//!
//! - **One process** (SQLite): a keyed GCRA limiter in memory (`governor`), no store access.
//! - **Replicas** (PostgreSQL): the bucket lives in the store, so two replicas cannot double a
//!   principal's limit. A call does not pay a round trip: a replica takes a **lease** of about a
//!   second's worth of calls (at most a tenth of the burst) from the shared bucket in one atomic
//!   statement ([`Store::take_rate_budget`]) and spends it locally; an unspent lease lapses
//!   after [`LEASE_TTL`]. Budget is taken before it is spent, so replicas together never admit
//!   more than the limit; what a lapsed lease held is lost, so the tolerance is on the strict
//!   side: up to one lease per replica per [`LEASE_TTL`] fewer calls than the limit. If the store
//!   cannot be reached, the in-memory limiter decides (per replica) until it can.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::Store;

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub per_minute: u32,
    pub retry_after: Duration,
}

/// How long budget taken from the shared bucket may wait to be spent.
pub const LEASE_TTL: Duration = Duration::from_secs(1);

/// One tier's quota.
struct Tier {
    per_minute: u32,
    /// The in-memory limiter: the whole limit with one process, the fallback with replicas.
    local: DefaultKeyedRateLimiter<String>,
    /// Microseconds between calls at the sustained rate.
    interval_us: i64,
    /// The burst, as time (microseconds).
    capacity_us: i64,
    /// Calls taken per lease.
    lease: i64,
}

/// Budget a replica took from a shared bucket and has not spent yet.
#[derive(Debug, Default)]
struct Lease {
    calls: i64,
    until: Option<Instant>,
}

/// The limits of every tier.
pub struct Limits {
    by_tier: BTreeMap<String, Tier>,
    clock: DefaultClock,
    /// Set with replicas (PostgreSQL): buckets in the store, spent through leases.
    shared: Option<Shared>,
}

struct Shared {
    store: Store,
    /// One lease per tier and principal. Its lock is held across a refill, so concurrent calls of
    /// one principal wait for one round trip instead of each making one.
    leases: moka::sync::Cache<String, Arc<tokio::sync::Mutex<Lease>>>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.by_tier.iter().map(|(t, tier)| (t, tier.per_minute)))
            .finish()
    }
}

impl Limits {
    /// `per_minute` maps a tier name to its calls per minute; tiers not named are unlimited.
    /// With `shared`, buckets live in that store (replicas); without, in memory.
    pub fn new(per_minute: &BTreeMap<String, u32>, shared: Option<Store>) -> Self {
        let by_tier = per_minute
            .iter()
            .filter_map(|(tier, n)| {
                let rate = NonZeroU32::new(*n)?;
                let burst = NonZeroU32::new((*n / 4).max(1)).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::per_minute(rate).allow_burst(burst);
                let interval_us = (60_000_000 / i64::from(rate.get())).max(1);
                Some((
                    tier.clone(),
                    Tier {
                        per_minute: *n,
                        local: RateLimiter::keyed(quota),
                        interval_us,
                        capacity_us: interval_us * i64::from(burst.get()),
                        lease: (i64::from(*n) / 60).clamp(1, (i64::from(burst.get()) / 10).max(1)),
                    },
                ))
            })
            .collect();
        Self {
            by_tier,
            clock: DefaultClock::default(),
            shared: shared.map(|store| Shared {
                store,
                leases: moka::sync::Cache::builder()
                    .name("rate_limit_leases")
                    .max_capacity(100_000)
                    .time_to_idle(LEASE_TTL * 2)
                    .build(),
            }),
        }
    }

    /// Counts one call of `principal` (a `kind:id` key) on a studio of `tier`.
    pub async fn check(&self, tier: &str, principal: &str) -> Result<(), Limited> {
        let Some(t) = self.by_tier.get(tier) else {
            return Ok(());
        };
        match &self.shared {
            None => self.local(t, principal),
            Some(shared) => match shared.spend(tier, t, principal).await {
                Ok(result) => result,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach the shared rate limits; this replica limits on its own");
                    self.local(t, principal)
                }
            },
        }
    }

    fn local(&self, t: &Tier, principal: &str) -> Result<(), Limited> {
        t.local
            .check_key(&principal.to_string())
            .map_err(|not_until| Limited {
                per_minute: t.per_minute,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Drops in-memory state of principals that are back to a full bucket, and the store's full
    /// buckets (memory and rows stay bounded).
    pub async fn shrink(&self) {
        for t in self.by_tier.values() {
            t.local.retain_recent();
            t.local.shrink_to_fit();
        }
        if let Some(shared) = &self.shared
            && let Err(e) = shared.store.prune_rate_buckets(now_us()).await
        {
            tracing::warn!(error = %e, "cannot prune the shared rate-limit buckets");
        }
    }
}

impl Shared {
    /// Spends one call from this replica's lease, taking a new lease when it is empty or lapsed.
    async fn spend(
        &self,
        tier: &str,
        t: &Tier,
        principal: &str,
    ) -> Result<Result<(), Limited>, crate::store::StoreError> {
        let key = format!("{tier}|{principal}");
        let lease = self
            .leases
            .get_with_by_ref(&key, || Arc::new(tokio::sync::Mutex::new(Lease::default())));
        let mut l = lease.lock().await;
        let now = Instant::now();
        if l.until.is_none_or(|u| u <= now) {
            l.calls = 0;
        }
        if l.calls == 0 {
            let now_us = now_us();
            let grant = self
                .store
                .take_rate_budget(&key, now_us, t.interval_us, t.capacity_us, t.lease)
                .await?;
            if grant.granted == 0 {
                // The next call fits once the bucket has drained below its capacity.
                let wait_us = (grant.tat_us - now_us + t.interval_us - t.capacity_us).max(0);
                return Ok(Err(Limited {
                    per_minute: t.per_minute,
                    retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
                }));
            }
            l.calls = grant.granted;
            l.until = Some(now + LEASE_TTL);
        }
        l.calls -= 1;
        Ok(Ok(()))
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
