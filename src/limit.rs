//! Rate limits per principal, with a quota per studio tier (GCRA, through `governor`).
//!
//! Each tier has calls per minute and a burst of a quarter of a minute's calls. A
//! refused call is told the limit and how many seconds to wait.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub per_minute: u32,
    pub retry_after: Duration,
}

/// One keyed limiter per tier.
pub struct Limits {
    by_tier: BTreeMap<String, (u32, DefaultKeyedRateLimiter<String>)>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.by_tier.iter().map(|(t, (n, _))| (t, n)))
            .finish()
    }
}

impl Limits {
    /// `per_minute` maps a tier name to its calls per minute; tiers not named are unlimited.
    pub fn new(per_minute: &BTreeMap<String, u32>) -> Self {
        let by_tier = per_minute
            .iter()
            .filter_map(|(tier, n)| {
                let rate = NonZeroU32::new(*n)?;
                let burst = NonZeroU32::new((*n / 4).max(1)).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::per_minute(rate).allow_burst(burst);
                Some((tier.clone(), (*n, RateLimiter::keyed(quota))))
            })
            .collect();
        Self {
            by_tier,
            clock: DefaultClock::default(),
        }
    }

    /// Counts one call of `principal` (a `kind:id` key) on a studio of `tier`.
    pub fn check(&self, tier: &str, principal: &str) -> Result<(), Limited> {
        let Some((n, limiter)) = self.by_tier.get(tier) else {
            return Ok(());
        };
        limiter
            .check_key(&principal.to_string())
            .map_err(|not_until| Limited {
                per_minute: *n,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Drops the state of principals that are back to a full bucket (memory stays bounded).
    pub fn shrink(&self) {
        for (_, limiter) in self.by_tier.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
