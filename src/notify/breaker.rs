//! A receiver endpoint's circuit breaker (`autoheal.receiver_breaker`):
//! the outbox defers the rows of an integration that keeps failing instead
//! of failing them. A pure state machine over an injected clock
//! (milliseconds), so the outbox keeps its own locking.

use std::time::Duration;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `autoheal.receiver_breaker`: a receiver integration whose deliveries
/// fail `failures` times in a row waits `cooldown` (doubling up to
/// `max_cooldown`) before the next attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures: 5,
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(600),
        }
    }
}

/// A receiver endpoint's circuit breaker: after `threshold` consecutive
/// failures the endpoint is in cooldown (sends wait; the caller keeps its
/// queue) for `base`, doubling on each failure after it reopens, up to
/// `max`. A success closes it; an admin can clear it.
#[derive(Debug, Clone)]
pub struct Breaker {
    pub threshold: u32,
    pub base: Duration,
    pub max: Duration,
    failures: u32,
    open_until: Option<i64>,
    trips: u32,
}

/// What a failure did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Unchanged,
    /// The endpoint entered cooldown until this time (ms).
    Opened {
        until: i64,
    },
}

impl Breaker {
    pub fn new(threshold: u32, base: Duration, max: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            base,
            max,
            failures: 0,
            open_until: None,
            trips: 0,
        }
    }

    /// Whether a send may go out at `now`.
    pub fn allows(&self, now: i64) -> bool {
        self.open_until.is_none_or(|u| now >= u)
    }

    /// The end of the current cooldown, if the endpoint is in one at `now`.
    pub fn cooldown_until(&self, now: i64) -> Option<i64> {
        self.open_until.filter(|u| now < *u)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    pub fn record_success(&mut self) {
        self.failures = 0;
        self.open_until = None;
        self.trips = 0;
    }

    pub fn record_failure(&mut self, now: i64) -> Transition {
        self.failures = self.failures.saturating_add(1);
        // Sends that were already out when it opened fail too: they do not
        // make the cooldown longer.
        if self.failures < self.threshold || self.cooldown_until(now).is_some() {
            return Transition::Unchanged;
        }
        // Every failure from the threshold on (the probe after a cooldown
        // included) opens it again, each time for twice as long.
        let factor = 1u32.checked_shl(self.trips.min(16)).unwrap_or(u32::MAX);
        let wait = self.base.saturating_mul(factor).min(self.max);
        self.trips = self.trips.saturating_add(1);
        let until = now.saturating_add(ms(wait));
        self.open_until = Some(until);
        Transition::Opened { until }
    }

    /// `POST /api/v1/autoheal/clear_endpoint_cooldown`: sends may go out at
    /// once; the failure count starts over.
    pub fn clear(&mut self) {
        self.record_success();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_n_failures_backs_off_and_recovers() {
        let mut b = Breaker::new(5, Duration::from_secs(30), Duration::from_secs(300));
        for i in 0..4 {
            assert_eq!(b.record_failure(i), Transition::Unchanged);
            assert!(b.allows(i));
        }
        assert_eq!(b.record_failure(10), Transition::Opened { until: 30_010 });
        assert!(!b.allows(30_009));
        assert_eq!(b.cooldown_until(20_000), Some(30_010));
        assert!(b.allows(30_010));
        // The probe after the cooldown fails: twice as long.
        assert_eq!(
            b.record_failure(30_010),
            Transition::Opened { until: 90_010 }
        );
        b.record_success();
        assert!(b.allows(30_011));
        assert_eq!(b.consecutive_failures(), 0);
        for i in 0..5 {
            b.record_failure(100_000 + i);
        }
        assert!(!b.allows(100_010));
        b.clear();
        assert!(b.allows(100_010));
    }

    #[test]
    fn failures_of_sends_already_out_do_not_lengthen_the_cooldown() {
        let mut b = Breaker::new(2, Duration::from_secs(10), Duration::from_secs(60));
        b.record_failure(0);
        assert_eq!(b.record_failure(1), Transition::Opened { until: 10_001 });
        // Concurrent sends fail after it opened: same cooldown.
        assert_eq!(b.record_failure(5), Transition::Unchanged);
        assert_eq!(b.cooldown_until(5), Some(10_001));
        // The probe after it fails: twice as long.
        assert_eq!(
            b.record_failure(10_001),
            Transition::Opened { until: 30_001 }
        );
    }
}
