//! Limits that keep sign-in and registration from being abused: who is asking
//! ([`ClientAddr`]), failed sign-ins per account ([`SharedAttempts`], in the store) and per
//! address ([`Attempts`], in this process) with a growing back-off, how many password checks run
//! at once ([`Checks`]), and registrations per address ([`Buckets`]).
//!
//! Contract: every piece of state here is bounded (moka caches with a capacity and a time to
//! live; store rows forgotten after an hour and pruned by housekeeping), keyed by a normalised
//! e-mail or by a client address (IPv4 whole, IPv6 by its /64, so one host cannot pose as many).
//! A refusal says how long to wait, and says once per back-off period that it is the first
//! refusal (so callers audit refusals without a flood of rows).
//!
//! Across replicas: the per-account back-off is shared through the store, so N replicas allow
//! an account no more guesses than one does. The per-address back-off, the concurrent checks and
//! the buckets stay per process: behind N replicas an address gets up to N times their
//! allowance (they protect each process and the upstream from floods, which are per process too).

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::app::App;
use crate::identity::secret_hash;
use crate::store::{Store, StoreError, Timestamp};

// === client address ===

/// The address a request came from: the connection's peer, or (when `client_ip_header` is
/// configured, behind a trusted proxy) the right-most address in that header. `None` only when
/// neither is known (routers driven without a listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub fn of(app: &App, headers: &HeaderMap, extensions: &Extensions) -> Self {
        let from_header = app
            .config
            .client_ip_header
            .as_deref()
            .and_then(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| parse_ip(last.trim()));
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        Self(from_header.or(peer).map(canonical))
    }

    /// The key limits count under: IPv4 whole, IPv6 by its /64; all unknown addresses share one.
    pub fn key(self) -> u128 {
        match self.0 {
            Some(IpAddr::V4(v4)) => u128::from(u32::from(v4)),
            Some(IpAddr::V6(v6)) => (u128::from(v6) & !u128::from(u64::MAX)) | 1,
            None => u128::MAX,
        }
    }

    /// As stored in the audit log: the address without a port.
    pub fn audit(self) -> Option<String> {
        self.0.map(|ip| ip.to_string())
    }
}

/// An address, or `address:port` / `[v6]:port` as some proxies write it.
fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromRequestParts<Arc<App>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(app, &parts.headers, &parts.extensions))
    }
}

// === refusals ===

/// Why an attempt may not go ahead now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// How long until the next attempt is allowed (at least one second).
    pub retry_after: Duration,
    /// Whether this is the first refusal since the last counted attempt (audit only these).
    pub first: bool,
}

impl Refused {
    /// Whole seconds for `Retry-After`, rounded up.
    pub fn secs(&self) -> u64 {
        let s = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        s.max(1)
    }

    /// "5 seconds", "2 minutes", for sentences.
    pub fn wait_text(&self) -> String {
        let s = self.secs();
        match s {
            1 => "1 second".into(),
            2..60 => format!("{s} seconds"),
            _ => {
                let m = s.div_ceil(60);
                if m == 1 {
                    "1 minute".into()
                } else {
                    format!("{m} minutes")
                }
            }
        }
    }
}

// === failed attempts with back-off ===

/// How failures are forgiven: `free` failures cost nothing, then each further attempt waits
/// `base`, doubled with every failure, up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The wait after the last failure before another attempt, given `failures` so far.
    pub fn delay(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.free)?;
        let factor = 1u32.checked_shl(over.min(30)).unwrap_or(u32::MAX);
        Some(self.base.saturating_mul(factor).min(self.cap))
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    refusal_seen: bool,
}

/// Failed attempts by key, forgotten an hour after the last one.
#[derive(Debug)]
pub struct Attempts<K: Hash + Eq + Send + Sync + 'static> {
    cache: moka::sync::Cache<K, Failures>,
    policy: Backoff,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Attempts<K> {
    pub fn new(name: &str, policy: Backoff, capacity: u64) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .name(name)
                .max_capacity(capacity)
                .time_to_live(policy.cap.max(Duration::from_secs(3600)))
                .build(),
            policy,
        }
    }

    /// Whether `key` may try now.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Refused> {
        let Some(f) = self.cache.get(key) else {
            return Ok(());
        };
        let Some(delay) = self.policy.delay(f.count) else {
            return Ok(());
        };
        let until = f.last + delay;
        if now >= until {
            return Ok(());
        }
        let first = !f.refusal_seen;
        if first {
            self.cache.entry(key.clone()).and_upsert_with(|e| {
                let mut f = e.map_or(f, |e| e.into_value());
                f.refusal_seen = true;
                f
            });
        }
        Err(Refused {
            retry_after: until - now,
            first,
        })
    }

    /// Counts a failure of `key`.
    pub fn failed(&self, key: K, now: Instant) {
        self.cache.entry(key).and_upsert_with(|e| Failures {
            count: e.map_or(0, |e| e.value().count).saturating_add(1),
            last: now,
            refusal_seen: false,
        });
    }

    /// Forgets `key`'s failures (after a success).
    pub fn reset(&self, key: &K) {
        self.cache.invalidate(key);
    }
}

// === failed attempts shared by every replica ===

/// Failed attempts by key (an e-mail, kept as its SHA-256) in the store, with the same back-off
/// as [`Attempts`]: every replica sees every failure, and of concurrent refusals on any replicas
/// one is told it is the first. Failures are forgotten an hour after the last one.
#[derive(Debug, Clone)]
pub struct SharedAttempts {
    store: Store,
    policy: Backoff,
}

impl SharedAttempts {
    pub fn new(store: Store, policy: Backoff) -> Self {
        Self { store, policy }
    }

    /// How long failures are remembered after the last one.
    fn memory(&self) -> chrono::Duration {
        let keep = self.policy.cap.max(Duration::from_secs(3600));
        chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::hours(1))
    }

    /// Whether `key` may try at `now`.
    pub async fn check(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Result<(), Refused>, StoreError> {
        let hashed = secret_hash(key);
        let Some(row) = self
            .store
            .sign_in_failures(&hashed, now - self.memory())
            .await?
        else {
            return Ok(Ok(()));
        };
        let count = u32::try_from(row.failures).unwrap_or(u32::MAX);
        let Some(delay) = self.policy.delay(count) else {
            return Ok(Ok(()));
        };
        let until = row.last_failed_at + chrono::Duration::from_std(delay).unwrap_or_default();
        let Ok(retry_after) = until.0.signed_duration_since(now.0).to_std() else {
            return Ok(Ok(()));
        };
        if retry_after.is_zero() {
            return Ok(Ok(()));
        }
        let first = !row.refusal_seen && self.store.first_sign_in_refusal(&hashed).await?;
        Ok(Err(Refused { retry_after, first }))
    }

    /// Counts a failure of `key` at `now`.
    pub async fn failed(&self, key: &str, now: Timestamp) -> Result<(), StoreError> {
        self.store
            .sign_in_failed(&secret_hash(key), now, now - self.memory())
            .await
            .map(drop)
    }

    /// Forgets `key`'s failures (after a success).
    pub async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.store.clear_sign_in_failures(&secret_hash(key)).await
    }

    /// Deletes failures older than the memory; how many.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        self.store
            .prune_sign_in_failures(Timestamp::now() - self.memory())
            .await
    }
}

// === concurrent checks ===

/// Bounds how many password checks run at once; a few more may wait briefly, the rest are
/// refused at once.
#[derive(Debug)]
pub struct Checks {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
}

impl Checks {
    pub fn new(concurrent: usize, max_waiting: usize, wait: Duration) -> Self {
        Self {
            permits: Semaphore::new(concurrent),
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
        }
    }

    /// A permit to run one check, or how long to wait before trying again.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, Refused> {
        let busy = Refused {
            retry_after: self.wait,
            first: false,
        };
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(p);
        }
        // Counted as waiting until this returns or is dropped (a client that goes away).
        let waiting = Waiting(&self.waiting);
        if waiting.0.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            return Err(busy);
        }
        let got = tokio::time::timeout(self.wait, self.permits.acquire()).await;
        drop(waiting);
        match got {
            Ok(Ok(p)) => Ok(p),
            _ => Err(busy),
        }
    }
}

/// One waiter, uncounted when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

// === token buckets ===

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    refusal_seen: bool,
}

/// A token bucket per key: `burst` at once, refilled at `per_hour`. A key whose bucket would be
/// full again is forgotten.
#[derive(Debug)]
pub struct Buckets<K: Hash + Eq + Send + Sync + 'static> {
    cache: moka::sync::Cache<K, Bucket>,
    burst: f64,
    per_sec: f64,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Buckets<K> {
    pub fn new(name: &str, burst: u32, per_hour: u32, capacity: u64) -> Self {
        let per_sec = f64::from(per_hour.max(1)) / 3600.0;
        let refill = Duration::from_secs_f64(f64::from(burst) / per_sec);
        Self {
            cache: moka::sync::Cache::builder()
                .name(name)
                .max_capacity(capacity)
                .time_to_live(refill)
                .build(),
            burst: f64::from(burst),
            per_sec,
        }
    }

    /// Takes one token of `key`'s bucket, or says how long until one is there.
    pub fn take(&self, key: K, now: Instant) -> Result<(), Refused> {
        let mut outcome = Ok(());
        self.cache.entry(key).and_upsert_with(|e| {
            let mut b = e.map_or(
                Bucket {
                    tokens: self.burst,
                    at: now,
                    refusal_seen: false,
                },
                |e| e.into_value(),
            );
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
            b.at = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                b.refusal_seen = false;
            } else {
                outcome = Err(Refused {
                    retry_after: Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec),
                    first: !b.refusal_seen,
                });
                b.refusal_seen = true;
            }
            b
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: Backoff = Backoff {
        free: 5,
        base: Duration::from_secs(5),
        cap: Duration::from_secs(900),
    };

    /// Free failures cost nothing; then each failure doubles the wait, up to the cap.
    #[test]
    fn the_back_off_grows_with_each_failure_and_is_capped() {
        let a: Attempts<String> = Attempts::new("t", ACCOUNT, 100);
        let key = "a@example.com".to_string();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(a.check(&key, t0), Ok(()));
            a.failed(key.clone(), t0);
        }
        let r = a.check(&key, t0).unwrap_err();
        assert_eq!((r.retry_after, r.first), (Duration::from_secs(5), true));
        // Told once; the next refusals are not "first".
        assert!(
            !a.check(&key, t0 + Duration::from_secs(1))
                .unwrap_err()
                .first
        );
        assert_eq!(a.check(&key, t0 + Duration::from_secs(5)), Ok(()));
        let mut expected = 5;
        let mut t = t0 + Duration::from_secs(5);
        for _ in 0..12 {
            a.failed(key.clone(), t);
            expected = (expected * 2).min(900);
            let r = a.check(&key, t).unwrap_err();
            assert_eq!(r.retry_after, Duration::from_secs(expected));
            assert!(r.first);
            t += Duration::from_secs(expected);
            assert_eq!(a.check(&key, t), Ok(()));
        }
        assert_eq!(expected, 900);
        a.reset(&key);
        assert_eq!(a.check(&key, t), Ok(()));
    }

    #[test]
    fn buckets_refuse_past_the_burst_and_refill() {
        let b: Buckets<u128> = Buckets::new("t", 3, 3600, 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take(1, t0), Ok(()));
        }
        let r = b.take(1, t0).unwrap_err();
        assert!(r.first && r.retry_after <= Duration::from_secs(1));
        assert!(!b.take(1, t0).unwrap_err().first);
        assert_eq!(b.take(2, t0), Ok(()), "another key has its own bucket");
        assert_eq!(b.take(1, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a = |s: &str| ClientAddr(Some(s.parse().unwrap())).key();
        assert_eq!(a("2001:db8:1:2::1"), a("2001:db8:1:2:ffff::9"));
        assert_ne!(a("2001:db8:1:2::1"), a("2001:db8:1:3::1"));
        assert_ne!(a("10.0.0.1"), a("10.0.0.2"));
        assert_eq!(
            canonical("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn checks_run_a_bounded_number_at_once() {
        let c = Checks::new(2, 1, Duration::from_millis(50));
        let p1 = c.enter().await.unwrap();
        let _p2 = c.enter().await.unwrap();
        // The third waits, then is refused.
        assert!(c.enter().await.is_err());
        drop(p1);
        assert!(c.enter().await.is_ok());
    }

    /// A waiter that goes away (its request was dropped) no longer counts as waiting.
    #[tokio::test]
    async fn a_waiter_that_goes_away_frees_its_place() {
        let c = Checks::new(1, 1, Duration::from_secs(60));
        let _busy = c.enter().await.unwrap();
        for _ in 0..3 {
            let gone = tokio::time::timeout(Duration::from_millis(10), c.enter()).await;
            assert!(gone.is_err(), "it was still waiting when dropped");
        }
        assert_eq!(c.waiting.load(Ordering::Acquire), 0);
    }
}
